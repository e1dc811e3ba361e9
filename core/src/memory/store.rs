//! Records and idempotency-key entries in memory, with DynamoDB's conditions.

use super::lock::locked;
use crate::domain::ExecutionArn;
use crate::domain::listing::{ListPosition, list_partition};
use crate::domain::mailbox::{RaisedEvent, Wait};
use crate::domain::record::{MAX_STORED_CAUSE_BYTES, START_FAILED_ERROR, bounded};
use crate::domain::{ExecutionName, InstanceKey, Millis, Record, Status};
use crate::ports::{
    Applied, ClaimCondition, Conditional, ExecutionUpdate, InstanceStore, KeyClaim, KeyEntry, ListPage, Listed,
    MailboxWrite, RaiseGuard, StoreError, Sweep,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

/// The store's operations, to aim a fault at one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// The conditional put of a claim.
    Claim,
    /// A read of a record.
    Get,
    /// The release of a claim.
    MarkStartFailed,
    /// A write of Step Functions' word.
    Apply,
    /// The conditional delete of a terminal record.
    Purge,
    /// The conditional put of a key's entry.
    PutKey,
    /// A read of a key's entry.
    GetKey,
    /// The replacement of an abandoned key's entry.
    ReplaceKey,
    /// The deletion of a key's entry.
    DeleteKey,
    /// A page of a list.
    List,
    /// The addition of an event to a mailbox.
    AddEvent,
    /// The addition of a wait to a mailbox.
    AddWait,
    /// A sweep of a mailbox.
    Sweep,
    /// The query of records due for a sweep.
    DueForSweep,
}

/// A fault for the next call of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreFault {
    /// Fails before it takes effect.
    Fails(StoreError),
    /// Takes effect, then fails (its answer lost): `Unavailable`.
    LandsThenFails,
    /// Takes effect, its answer is lost, and the SDK's retry of it is what the caller
    /// is told (a conditional write's retry meets its own first attempt).
    Retried,
    /// Runs after the record's run ended (as the status write-back ends it).
    AfterEnd(Status),
    /// Runs after another start replaced the record with this one.
    AfterReplace(Box<Record>),
}

/// Records and idempotency-key entries, in memory, with DynamoDB's conditions.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<InstanceKey, Record>>,
    keys: Mutex<BTreeMap<String, KeyEntry>>,
    faults: Mutex<VecDeque<(StoreOp, StoreFault)>>,
    /// dynalite's way: a refused write does not return the old item.
    pub hides_old_item: bool,
}

impl MemoryStore {
    /// An empty store that returns the old item with a refusal, as DynamoDB does.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that, like dynalite, returns no old item with a refusal.
    pub fn hiding_old_item() -> Self {
        Self { hides_old_item: true, ..Self::default() }
    }

    /// The next call of `op` meets `fault` (faults queue up in order).
    pub fn fail_next(&self, op: StoreOp, fault: StoreFault) {
        locked(&self.faults).push_back((op, fault));
    }

    /// A record as it stands (for assertions).
    pub fn record(&self, key: &InstanceKey) -> Option<Record> {
        locked(&self.records).get(key).cloned()
    }

    /// Deletes a record whatever its status (what DynamoDB's TTL does to a terminal one).
    pub fn expire(&self, key: &InstanceKey) {
        locked(&self.records).remove(key);
    }

    /// The fault aimed at this call of `op`, if any.
    fn fault(&self, op: StoreOp) -> Option<StoreFault> {
        let mut faults = locked(&self.faults);
        let at = faults.iter().position(|(aimed, _)| *aimed == op)?;
        faults.remove(at).map(|(_, fault)| fault)
    }

    /// Runs `write` unless a fault says otherwise.
    fn write<T>(&self, op: StoreOp, write: impl Fn() -> T) -> Result<T, StoreError> {
        match self.fault(op) {
            None => Ok(write()),
            Some(StoreFault::Retried) => {
                write();
                Ok(write())
            }
            Some(StoreFault::AfterEnd(status)) => {
                for record in locked(&self.records).values_mut() {
                    record.status = status;
                    record.mailbox = record.mailbox.ended();
                }
                Ok(write())
            }
            Some(StoreFault::AfterReplace(record)) => {
                locked(&self.records).insert(record.key.clone(), *record);
                Ok(write())
            }
            Some(StoreFault::Fails(error)) => Err(error),
            Some(StoreFault::LandsThenFails) => {
                write();
                Err(StoreError::Unavailable("injected: the answer was lost".into()))
            }
        }
    }

    fn refused(&self, old: Option<&Record>) -> Conditional {
        Conditional::Refused(self.old_item(old))
    }

    fn old_item(&self, old: Option<&Record>) -> Option<Box<Record>> {
        old.filter(|_| !self.hides_old_item).cloned().map(Box::new)
    }

    /// Adds to a live record's mailbox, as DynamoDB's conditional UpdateItem with `ALL_NEW`.
    fn add_to_mailbox(
        &self,
        op: StoreOp,
        key: &InstanceKey,
        permits: impl Fn(&Record) -> bool,
        add: impl Fn(&mut Record),
    ) -> Result<MailboxWrite, StoreError> {
        self.write(op, || {
            let mut records = locked(&self.records);
            match records.get_mut(key) {
                Some(record) if record.status.takes_events() && permits(record) => {
                    add(record);
                    MailboxWrite::Added(Box::new(record.clone()))
                }
                current => MailboxWrite::Refused(self.old_item(current.as_deref())),
            }
        })
    }
}

impl InstanceStore for MemoryStore {
    async fn claim(&self, record: &Record, condition: &ClaimCondition) -> Result<Conditional, StoreError> {
        self.write(StoreOp::Claim, || {
            let mut records = locked(&self.records);
            let current = records.get(&record.key);
            if condition.permits(current) {
                records.insert(record.key.clone(), record.clone());
                Conditional::Written
            } else {
                self.refused(current)
            }
        })
    }

    async fn get(&self, key: &InstanceKey) -> Result<Option<Record>, StoreError> {
        self.write(StoreOp::Get, || locked(&self.records).get(key).cloned())
    }

    async fn mark_start_failed(
        &self,
        key: &InstanceKey,
        execution_name: &ExecutionName,
        reason: &str,
        now: Millis,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.write(StoreOp::MarkStartFailed, || {
            let mut records = locked(&self.records);
            match records.get_mut(key) {
                Some(record) if record.status == Status::Starting && record.execution_name == *execution_name => {
                    record.status = Status::StartFailed;
                    record.updated_at = now;
                    record.lease_until = None;
                    record.error = Some(START_FAILED_ERROR.to_owned());
                    record.cause = Some(bounded(reason.to_owned(), MAX_STORED_CAUSE_BYTES));
                    record.expires_at = Some(expires_at);
                    record.mailbox = record.mailbox.ended();
                    true
                }
                _ => false,
            }
        })
    }

    async fn apply(&self, key: &InstanceKey, update: &ExecutionUpdate) -> Result<Applied, StoreError> {
        self.write(StoreOp::Apply, || {
            let mut records = locked(&self.records);
            match records.get_mut(key) {
                Some(record) if update.permits(record) => {
                    let ending = update.state.status.is_terminal();
                    let dropped_events = if ending { record.mailbox.buffered() } else { 0 };
                    *record = update.applied_to(record);
                    Applied::Written { dropped_events }
                }
                current => Applied::Refused(self.old_item(current.as_deref())),
            }
        })
    }

    async fn purge(&self, key: &InstanceKey, run: Option<&ExecutionName>) -> Result<Conditional, StoreError> {
        self.write(StoreOp::Purge, || {
            let mut records = locked(&self.records);
            match records.get(key) {
                Some(record) if record.status.is_terminal() && run.is_none_or(|run| record.execution_name == *run) => {
                    records.remove(key);
                    Conditional::Written
                }
                current => self.refused(current),
            }
        })
    }

    async fn add_event(
        &self,
        key: &InstanceKey,
        event: &RaisedEvent,
        guard: &RaiseGuard,
    ) -> Result<MailboxWrite, StoreError> {
        self.add_to_mailbox(
            StoreOp::AddEvent,
            key,
            |record| guard.admits(record) && record.mailbox.takes_event(event),
            |record| record.mailbox = record.mailbox.with_event(event),
        )
    }

    async fn add_wait(
        &self,
        key: &InstanceKey,
        execution_arn: &ExecutionArn,
        wait: &Wait,
    ) -> Result<MailboxWrite, StoreError> {
        self.add_to_mailbox(
            StoreOp::AddWait,
            key,
            |record| record.execution_arn == *execution_arn && record.mailbox.takes_wait(wait),
            |record| record.mailbox = record.mailbox.with_wait(wait),
        )
    }

    async fn sweep(&self, key: &InstanceKey, sweep: &Sweep<'_>) -> Result<Conditional, StoreError> {
        self.write(StoreOp::Sweep, || {
            let mut records = locked(&self.records);
            match records.get_mut(key) {
                Some(record) if sweep.permits(record) => {
                    record.mailbox = record.mailbox.without(sweep.events, sweep.waits);
                    record.mailbox.sweep_at = sweep.due;
                    Conditional::Written
                }
                current => self.refused(current.as_deref()),
            }
        })
    }

    async fn due_for_sweep(&self, now: Millis, limit: usize) -> Result<Vec<InstanceKey>, StoreError> {
        self.write(StoreOp::DueForSweep, || {
            let mut due: Vec<(Millis, InstanceKey)> = locked(&self.records)
                .values()
                .filter_map(|record| record.mailbox.sweep_at.filter(|at| *at <= now).map(|at| (at, record.key.clone())))
                .collect();
            due.sort();
            due.into_iter().take(limit).map(|(_, key)| key).collect()
        })
    }

    async fn put_key(&self, entry: &KeyEntry, now: Millis) -> Result<KeyClaim, StoreError> {
        self.write(StoreOp::PutKey, || {
            let mut keys = locked(&self.keys);
            match keys.get(&entry.key_hash) {
                Some(held) if held.until > now => {
                    KeyClaim::Taken((!self.hides_old_item).then(|| Box::new(held.clone())))
                }
                _ => {
                    keys.insert(entry.key_hash.clone(), entry.clone());
                    KeyClaim::Written
                }
            }
        })
    }

    async fn get_key(&self, key_hash: &str) -> Result<Option<KeyEntry>, StoreError> {
        self.write(StoreOp::GetKey, || locked(&self.keys).get(key_hash).cloned())
    }

    async fn replace_key(&self, entry: &KeyEntry, execution_name: &ExecutionName) -> Result<bool, StoreError> {
        self.write(StoreOp::ReplaceKey, || {
            let mut keys = locked(&self.keys);
            let names_it = keys.get(&entry.key_hash).is_some_and(|held| held.execution_name == *execution_name);
            if names_it {
                keys.insert(entry.key_hash.clone(), entry.clone());
            }
            names_it
        })
    }

    async fn delete_key(&self, key_hash: &str, execution_name: &ExecutionName) -> Result<(), StoreError> {
        self.write(StoreOp::DeleteKey, || {
            let mut keys = locked(&self.keys);
            if keys.get(key_hash).is_some_and(|held| held.execution_name == *execution_name) {
                keys.remove(key_hash);
            }
        })
    }

    async fn list(&self, page: ListPage<'_>) -> Result<Listed, StoreError> {
        self.write(StoreOp::List, || {
            let filter = page.filter;
            // The index, newest first; items of one creation time in key order.
            let mut indexed: Vec<Record> = locked(&self.records)
                .values()
                .filter(|r| list_partition(&r.key, r.status) == page.partition)
                .filter(|r| filter.created_from.is_none_or(|from| r.created_at >= from))
                .filter(|r| filter.created_to.is_none_or(|to| r.created_at <= to))
                .cloned()
                .collect();
            indexed.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.key.as_str().cmp(a.key.as_str())));
            let start = page.after.map_or(0, |after| {
                indexed
                    .iter()
                    .position(|r| (r.created_at, r.key.as_str()) < (after.created_at, after.key.as_str()))
                    .unwrap_or(indexed.len())
            });
            let read: Vec<Record> = indexed.into_iter().skip(start).take(page.limit).collect();
            let next = (read.len() == page.limit)
                .then(|| read.last().map(|r| ListPosition { key: r.key.clone(), created_at: r.created_at }))
                .flatten();
            let records = read
                .into_iter()
                .filter(|r| filter.function_name.as_ref().is_none_or(|f| r.function_name == *f))
                .filter(|r| filter.instance_id_prefix.as_ref().is_none_or(|p| r.instance_id.starts_with(p.as_str())))
                // The index does not project the input.
                .map(|r| Record { input: None, ..r })
                .collect();
            Listed { records, next }
        })
    }
}
