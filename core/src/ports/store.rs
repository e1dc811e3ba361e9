//! The store port: where records and idempotency keys live (DynamoDB).

use super::engine::ExecutionState;
use crate::domain::listing::{ListFilter, ListPosition};
use crate::domain::mailbox::{RaisedEvent, Wait};
use crate::domain::{ExecutionArn, ExecutionName, InstanceKey, Millis, Record, Status};
use std::future::Future;

/// A write of Step Functions' word back to the record. It applies only to the
/// record's current execution, only from the listed statuses, and never lets
/// an older redrive overwrite a newer one; a newer redrive always applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionUpdate {
    /// The execution it is about: the record must still name it.
    pub execution_arn: ExecutionArn,
    /// What Step Functions says of it.
    pub state: ExecutionState,
    /// When this was learned.
    pub observed_at: Millis,
    /// The statuses the record may be in for the write to apply.
    pub from: &'static [Status],
    /// TTL (epoch seconds) when the new status is terminal.
    pub expires_at: Option<i64>,
    /// Instead of `from`: only the `Redriving` record held by the rewind with
    /// this token (the rewind given up: the record goes back to how its run ended).
    pub rewind_token: Option<String>,
}

impl ExecutionUpdate {
    /// The store's condition, for stores that are not DynamoDB.
    pub fn permits(&self, record: &Record) -> bool {
        if record.execution_arn != self.execution_arn {
            return false;
        }
        if let Some(token) = &self.rewind_token {
            return record.status == Status::Redriving && record.rewind_token.as_deref() == Some(token.as_str());
        }
        (self.from.contains(&record.status) && record.redrive_count <= self.state.redrive_count)
            || record.redrive_count < self.state.redrive_count
    }

    /// The record as the store holds it after this update.
    pub fn applied_to(&self, record: &Record) -> Record {
        let state = &self.state;
        Record {
            status: state.status,
            updated_at: self.observed_at,
            confirmed_at: Some(self.observed_at),
            lease_until: None,
            redrive_count: state.redrive_count,
            stop_date: state.stop_date,
            output: state.output.clone(),
            error: state.error.clone(),
            cause: state.cause.clone(),
            expires_at: self.expires_at,
            rewind_token: None,
            // The run's end drops its events and waits.
            mailbox: if state.status.is_terminal() { record.mailbox.ended() } else { record.mailbox.clone() },
            ..record.clone()
        }
    }
}

/// Which existing record a claim may overwrite.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClaimCondition {
    /// No record, or an ended one whose status is in `reusable`; and, with
    /// `not_started_by`, not a run that this idempotency key (hash) started
    /// whose window is still open at that time (a failed start started nothing).
    Free {
        /// The ended statuses the reuse policy lets start again.
        reusable: &'static [Status],
        /// The request's idempotency key (hash) and now.
        not_started_by: Option<(String, Millis)>,
    },
    /// Exactly the record that names this execution: a takeover (its starter
    /// died before starting it; any status) or a replace (it was stopped; only
    /// in `statuses`, which carry the reuse policy: a run that ended on its own
    /// meanwhile is not replaced against it).
    Replaces {
        /// The execution the record must name.
        execution_name: ExecutionName,
        /// The statuses it may be in (`None`: any).
        statuses: Option<&'static [Status]>,
        /// A replace: the redrive count of the run it stopped. A rewind that
        /// redrove that run since made it run again: not the run stopped.
        redrive_count: Option<u32>,
    },
    /// Exactly the ended record a rewind read (same execution, status, redrive
    /// count and last change): nothing started, ended or was rewound since
    /// (two writes can share a millisecond: the count tells a redrive's apart).
    Rewinds {
        /// The execution the record must name.
        execution_name: ExecutionName,
        /// The status it must still be in.
        status: Status,
        /// Its redrive count, unchanged.
        redrive_count: u32,
        /// Its last change, unchanged.
        updated_at: Millis,
    },
}

impl ClaimCondition {
    /// Taking over the claim of a starter that died before starting it.
    pub fn takeover(execution_name: ExecutionName) -> Self {
        ClaimCondition::Replaces { execution_name, statuses: None, redrive_count: None }
    }

    /// A rewind of exactly `ended`, the record as read.
    pub fn rewinds(ended: &Record) -> Self {
        ClaimCondition::Rewinds {
            execution_name: ended.execution_name.clone(),
            status: ended.status,
            redrive_count: ended.redrive_count,
            updated_at: ended.updated_at,
        }
    }

    /// Replacing `stopped`, the run a `terminateExisting` start stopped, under its reuse policy.
    pub fn replacing(stopped: &Record, reuse: crate::domain::ReusePolicy) -> Self {
        ClaimCondition::Replaces {
            execution_name: stopped.execution_name.clone(),
            statuses: Some(reuse.replaceable()),
            redrive_count: Some(stopped.redrive_count),
        }
    }

    /// The store's condition, for stores that are not DynamoDB.
    pub fn permits(&self, current: Option<&Record>) -> bool {
        match (self, current) {
            (ClaimCondition::Free { .. }, None) => true,
            (ClaimCondition::Free { reusable, not_started_by }, Some(record)) => {
                reusable.contains(&record.status)
                    && not_started_by.as_ref().is_none_or(|(hash, now)| {
                        record.status == Status::StartFailed
                            || record.idempotency_key_hash.as_deref() != Some(hash.as_str())
                            || record.idempotency_until.is_none_or(|until| until <= *now)
                    })
            }
            (ClaimCondition::Replaces { execution_name, statuses, redrive_count }, Some(record)) => {
                record.execution_name == *execution_name
                    && statuses.is_none_or(|s| s.contains(&record.status))
                    && redrive_count.is_none_or(|count| record.redrive_count == count)
            }
            (ClaimCondition::Rewinds { execution_name, status, redrive_count, updated_at }, Some(record)) => {
                record.execution_name == *execution_name
                    && record.status == *status
                    && record.redrive_count == *redrive_count
                    && record.updated_at == *updated_at
            }
            (ClaimCondition::Replaces { .. } | ClaimCondition::Rewinds { .. }, None) => false,
        }
    }
}

/// What a start's `Idempotency-Key` started, kept apart from the record for
/// the key's whole window: a record can be replaced (another start, a
/// restart, a schedule) or purged while a client still retries with the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyEntry {
    /// The key's hash (salted with the instance key; never the key).
    pub key_hash: String,
    /// The instance it is for.
    pub instance_key: InstanceKey,
    /// The execution its request started (or is starting).
    pub execution_name: ExecutionName,
    /// That execution's ARN.
    pub execution_arn: ExecutionArn,
    /// SHA-256 of what the request asked for (function and input): the same
    /// key with another request is refused, not replayed.
    pub request_digest: String,
    /// When the first request with the key began.
    pub began: Millis,
    /// The window's end; the store forgets the entry after it (TTL).
    pub until: Millis,
}

/// The outcome of writing a key's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The entry is written: the key is this request's.
    Written,
    /// A live entry holds the key: the one the store returned with the
    /// refusal, if it did (not every store does).
    Taken(Option<Box<KeyEntry>>),
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conditional {
    /// The condition held and the write is done.
    Written,
    /// The condition failed. The record that made it fail, when the store
    /// returns it with the refusal (DynamoDB's `ALL_OLD`); not every store
    /// does, and there is none when the record does not exist.
    Refused(Option<Box<Record>>),
}

/// What a write of Step Functions' word about an execution did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The condition held and the write is done. `dropped_events`: the events
    /// the record held that no wait had taken, dropped with the run's end.
    Written {
        /// How many.
        dropped_events: usize,
    },
    /// As [`Conditional::Refused`].
    Refused(Option<Box<Record>>),
}

/// Which run a raise may land on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaiseGuard {
    /// A run claimed at or before this time (the raise's start): an attempt
    /// retried after a lost answer never reaches a run claimed after the
    /// first attempt, which may have landed on the run before it.
    ClaimedBy(Millis),
    /// Exactly this run (a keyed raise's, or an event raised again into its run).
    Run(ExecutionName),
}

impl RaiseGuard {
    /// Whether the raise may land on `record`'s run.
    pub fn admits(&self, record: &Record) -> bool {
        match self {
            RaiseGuard::ClaimedBy(began) => record.created_at <= *began,
            RaiseGuard::Run(run) => record.execution_name == *run,
        }
    }
}

/// The outcome of adding an event or a wait to a live run's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxWrite {
    /// Added: the record as it is now (DynamoDB's `ALL_NEW`).
    Added(Box<Record>),
    /// The condition failed: the record that made it fail, when the store
    /// returns it with the refusal (not every store does; none when there is no record).
    Refused(Option<Box<Record>>),
}

/// Which entries a sweep removes, and the record it read them from: the
/// removal applies only while the record's mailbox is that one, or that one grown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep<'a> {
    /// The run whose record it is.
    pub execution_arn: &'a ExecutionArn,
    /// How many events and waits the record held, its sweep count, and its
    /// redrive count (a redriven run's lists are new lists).
    pub seen: (usize, usize, u32, u32),
    /// The indices of the events to remove.
    pub events: &'a [usize],
    /// The indices of the waits to remove.
    pub waits: &'a [usize],
    /// When what is left is due for the next sweep ([`crate::domain::mailbox::Mailbox::sweep_due`]).
    pub due: Option<Millis>,
}

impl Sweep<'_> {
    /// The store's condition, for stores that are not DynamoDB: the same run,
    /// live, swept as often, and its lists as long as seen (they only grow between sweeps).
    pub fn permits(&self, record: &Record) -> bool {
        let mailbox = &record.mailbox;
        record.execution_arn == *self.execution_arn
            && record.status.takes_events()
            && (mailbox.events.len(), mailbox.waits.len(), mailbox.sweeps, record.redrive_count) == self.seen
    }
}

/// One page of one index partition (see [`crate::domain::listing`]).
#[derive(Debug, Clone, Copy)]
pub struct ListPage<'a> {
    /// The `byStatus` partition, `<runtimeStatus>#<shard>`.
    pub partition: &'a str,
    /// The list's filters: the creation range as the key condition, the rest as a filter.
    pub filter: &'a ListFilter,
    /// Go on after this item (`None`: from the partition's newest).
    pub after: Option<&'a ListPosition>,
    /// At most this many items are read (before the filters: a page can hold fewer).
    pub limit: usize,
}

/// What a page read: its records, newest first, and where the partition goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The records read that pass the filters (without their input).
    pub records: Vec<Record>,
    /// The last item read, if the partition may hold more.
    pub next: Option<ListPosition>,
}

/// How a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Throttled: retrying later helps.
    #[error("the instance store is throttling requests: {0}")]
    Throttled(String),
    /// Timeout, connection lost, 5xx: retrying later may help.
    #[error("the instance store is unavailable: {0}")]
    Unavailable(String),
    /// Refused for a reason a retry does not fix (missing table, permissions…).
    #[error("the instance store refused the request: {0}")]
    Failed(String),
    /// A stored item the service cannot read.
    #[error("a stored record is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Throttled(_) | StoreError::Unavailable(_))
    }
}

/// Where records and idempotency keys live: DynamoDB, or [`crate::memory::MemoryStore`].
pub trait InstanceStore: Send + Sync {
    /// Writes `record` if `condition` holds, atomically.
    fn claim(
        &self,
        record: &Record,
        condition: &ClaimCondition,
    ) -> impl Future<Output = Result<Conditional, StoreError>> + Send;

    /// A strongly consistent read.
    fn get(&self, key: &InstanceKey) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Marks the claim that named `execution_name` as `StartFailed`, if the
    /// record is still that `Starting` claim. Returns whether it wrote.
    fn mark_start_failed(
        &self,
        key: &InstanceKey,
        execution_name: &ExecutionName,
        reason: &str,
        now: Millis,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Applies `update` if its condition holds.
    fn apply(
        &self,
        key: &InstanceKey,
        update: &ExecutionUpdate,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send;

    /// Writes a key's entry unless a live one (window still open at `now`) holds the key.
    fn put_key(&self, entry: &KeyEntry, now: Millis) -> impl Future<Output = Result<KeyClaim, StoreError>> + Send;

    /// The key's entry, strongly consistent.
    fn get_key(&self, key_hash: &str) -> impl Future<Output = Result<Option<KeyEntry>, StoreError>> + Send;

    /// Replaces the key's entry by `entry` if it still names `execution_name`. Returns whether it wrote.
    fn replace_key(
        &self,
        entry: &KeyEntry,
        execution_name: &ExecutionName,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One page of a list: one Query of the `byStatus` index, never a Scan.
    fn list(&self, page: ListPage<'_>) -> impl Future<Output = Result<Listed, StoreError>> + Send;

    /// Deletes the key's entry if it still names `execution_name`.
    fn delete_key(
        &self,
        key_hash: &str,
        execution_name: &ExecutionName,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds `event` to the record's mailbox if its run takes events
    /// ([`Status::takes_events`]), `guard` admits it, and its mailbox takes it
    /// ([`crate::domain::mailbox::Mailbox::takes_event`]).
    fn add_event(
        &self,
        key: &InstanceKey,
        event: &RaisedEvent,
        guard: &RaiseGuard,
    ) -> impl Future<Output = Result<MailboxWrite, StoreError>> + Send;

    /// Adds `wait` to the record's mailbox if its run takes events, is
    /// `execution_arn`, and its mailbox takes it.
    fn add_wait(
        &self,
        key: &InstanceKey,
        execution_arn: &ExecutionArn,
        wait: &Wait,
    ) -> impl Future<Output = Result<MailboxWrite, StoreError>> + Send;

    /// Removes a sweep's entries (counting the sweep) and sets when the record
    /// is due next, if [`Sweep::permits`] holds.
    fn sweep(
        &self,
        key: &InstanceKey,
        sweep: &Sweep<'_>,
    ) -> impl Future<Output = Result<Conditional, StoreError>> + Send;

    /// The keys of the records whose mailbox is due for a sweep at `now`
    /// ([`crate::domain::mailbox::Mailbox::sweep_at`]), at most `limit`, the
    /// longest due first: one Query per shard of the `bySweep` index (keys
    /// only, eventually consistent), never a Scan.
    fn due_for_sweep(
        &self,
        now: Millis,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<InstanceKey>, StoreError>> + Send;

    /// Deletes the record if it is terminal (and, with `run`, still names that
    /// execution: a bulk purge deletes exactly the run it listed). One attempt,
    /// never retried below the port: the service retries, knowing whether an
    /// attempt may have landed.
    fn purge(
        &self,
        key: &InstanceKey,
        run: Option<&ExecutionName>,
    ) -> impl Future<Output = Result<Conditional, StoreError>> + Send;
}
