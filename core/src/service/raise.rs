//! Raising an event into an instance's live run (Durable's `raiseEvent`).

use super::delivery::Swept;
use super::error::{Error, Result};
use super::singleton::{MAX_CLAIM_ROUNDS, Singleton, pause};
use crate::domain::instance_id::hex;
use crate::domain::mailbox::{EventName, RaisedEvent, check_body_size};
use crate::domain::{ExecutionArn, ExecutionName, IdempotencyKey, InstanceId, InstanceKey, Millis, Record};
use crate::ports::{Engine, InstanceStore, KeyClaim, KeyEntry, MailboxWrite, RaiseGuard};
use sha2::{Digest, Sha256};

/// An event for an instance's live run.
#[derive(Debug, Clone, Copy)]
pub struct RaiseRequest<'a> {
    /// The instance.
    pub instance_id: &'a InstanceId,
    /// The event's name.
    pub name: &'a EventName,
    /// Its body, JSON text (the entry point checks the syntax).
    pub body: &'a str,
    /// The client's `Idempotency-Key`: a retry with it is the same raise.
    pub key: Option<&'a IdempotencyKey>,
}

/// Where a raised event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaiseOutcome {
    /// A waiting task of the run took it.
    Delivered,
    /// Matched to a wait whose task was closed when the event was sent: it had timed out
    /// (the event is dropped), or another sender of the same pair (a replay) delivered it.
    WaitClosed,
    /// It landed in the run, which has ended since (an answer lost, then the end): a wait
    /// took it before, or it was dropped with the run's mailbox.
    Ended,
    /// Buffered for the run's next wait of its name; `buffered` events of the run wait so.
    Buffered {
        /// How many events the run's record holds without a wait.
        buffered: usize,
    },
}

impl RaiseOutcome {
    /// Where the event is, as answers say it.
    pub fn name(self) -> &'static str {
        match self {
            RaiseOutcome::Delivered => "delivered",
            RaiseOutcome::Buffered { .. } => "buffered",
            RaiseOutcome::WaitClosed => "waitClosed",
            RaiseOutcome::Ended => "runEnded",
        }
    }
}

/// What a raise did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    /// The run it was raised into.
    pub execution_arn: ExecutionArn,
    /// Where the event is.
    pub outcome: RaiseOutcome,
    /// An earlier attempt or request with the same key had raised it: this is its answer.
    pub replayed: bool,
}

/// A fresh raise ID: 128 random bits.
pub(super) fn fresh_raise_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// What a keyed raise asked for: its event's name and body, as a digest.
fn request_digest(request: RaiseRequest<'_>) -> String {
    hex(&Sha256::new().chain_update(request.name.as_str()).chain_update(b"\n").chain_update(request.body).finalize())
}

/// The event ID of a keyed request (a raise, a signal): the same key and request, the
/// same ID, so that a retry finds what its first attempt wrote; the key reused after its
/// window for another request is another event.
pub(super) fn keyed_event_id(key: &IdempotencyKey, request_digest: &str) -> String {
    hex(&Sha256::new().chain_update(key.hash()).chain_update(request_digest).finalize())
}

/// A keyed raise's entry: apart from starts' keys (`raise` + the key's hash).
fn raise_key_hash(key: &IdempotencyKey) -> String {
    hex(&Sha256::new().chain_update(b"raise\n").chain_update(key.hash()).finalize())
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Raises an event into the instance's live run: one conditional write,
    /// plus SendTaskSuccess when a wait of its name is there already.
    ///
    /// Without a key the write only lands on a run claimed before the raise
    /// began (so that an attempt retried after a lost answer never reaches a
    /// later run than the first one may have). With a key, the key's entry
    /// names the run, and every retry with the key goes to that run only.
    pub async fn raise_event(&self, request: RaiseRequest<'_>) -> Result<Raised> {
        check_body_size(request.body).map_err(Error::InvalidEvent)?;
        let key = request.instance_id.key();
        let began = self.now();
        let (id, guard) = match request.key {
            None => (fresh_raise_id(), RaiseGuard::ClaimedBy(began)),
            Some(idempotency_key) => {
                let run = self.hold_raise_key(&key, request, idempotency_key, began).await?;
                (keyed_event_id(idempotency_key, &request_digest(request)), RaiseGuard::Run(run))
            }
        };
        let event = RaisedEvent { id, name: request.name.clone(), body: request.body.to_owned(), at: began };
        self.add_event(request.instance_id.as_str(), &key, &event, &guard).await
    }

    /// Adds `event` under `guard`, and delivers it if a wait was there.
    pub(super) async fn add_event(
        &self,
        instance_id: &str,
        key: &InstanceKey,
        event: &RaisedEvent,
        guard: &RaiseGuard,
    ) -> Result<Raised> {
        // An attempt failed without an answer: it may have landed. Where the record no
        // longer shows (another run replaced it, a purge deleted it), that cannot be told.
        let mut uncertain = false;
        let mut event = event.clone();
        for attempt in 1..=MAX_CLAIM_ROUNDS {
            // Stamped as it is written: a pair's time is when its later half was (`Wait::takes`).
            event.at = self.now();
            let record = match self.store.add_event(key, &event, guard).await {
                Ok(MailboxWrite::Added(record)) => {
                    // Its own pair first: a sweep of older pairs may take the rest of the time.
                    let placed = self.place(&record, &event.id, false).await;
                    self.sweep_after(&record).await;
                    return placed;
                }
                Ok(MailboxWrite::Refused(Some(record))) => Some(*record),
                Ok(MailboxWrite::Refused(None)) => self.store.get(key).await?,
                // The event's ID makes a retry safe: an attempt that landed is found, not repeated.
                Err(error) if error.is_transient() && attempt < MAX_CLAIM_ROUNDS => {
                    uncertain = true;
                    pause(attempt).await;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            let Some(record) = record else {
                if uncertain {
                    return Err(unconfirmed(
                        instance_id,
                        "its record was deleted after an attempt that may have landed",
                    ));
                }
                return Err(Error::InstanceNotFound(instance_id.to_owned()));
            };
            if guard.admits(&record) && record.mailbox.raise_ids.contains(&event.id) {
                return self.place(&record, &event.id, true).await;
            }
            refused_raise(instance_id, &record, guard, uncertain)?;
            // Full: sweep what was delivered long ago, then try again.
            if self.sweep_delivered(&record, self.now()).await? == Swept::Nothing {
                return Err(Error::MailboxFull {
                    instance_id: instance_id.to_owned(),
                    reason: mailbox_full_reason(&record),
                });
            }
        }
        Err(Error::Contention(instance_id.to_owned()))
    }

    /// The event with ID `id` is in `record` (as a write returned it): delivers it if it has a wait.
    pub(super) async fn place(&self, record: &Record, id: &str, replayed: bool) -> Result<Raised> {
        let execution_arn = record.execution_arn.clone();
        if !record.status.takes_events() {
            // A replay's: its run ended since, its lists with it.
            return Ok(Raised { execution_arn, outcome: RaiseOutcome::Ended, replayed });
        }
        let Some(pair) = record.mailbox.pair_of_event(id) else {
            let buffered = record.mailbox.buffered();
            return Ok(Raised { execution_arn, outcome: RaiseOutcome::Buffered { buffered }, replayed });
        };
        // Replayed: an earlier attempt, or the wait's own registration, may have delivered it.
        let delivered = self.hand_over(&pair, record, replayed).await?;
        let outcome = if delivered { RaiseOutcome::Delivered } else { RaiseOutcome::WaitClosed };
        Ok(Raised { execution_arn, outcome, replayed })
    }

    /// Holds a keyed raise's key: the run it goes to, for the key's whole window.
    async fn hold_raise_key(
        &self,
        key: &InstanceKey,
        request: RaiseRequest<'_>,
        idempotency_key: &IdempotencyKey,
        now: Millis,
    ) -> Result<ExecutionName> {
        let instance_id = request.instance_id.as_str();
        let record = self.store.get(key).await?.ok_or_else(|| Error::InstanceNotFound(instance_id.to_owned()))?;
        let digest = request_digest(request);
        let entry = KeyEntry {
            key_hash: raise_key_hash(idempotency_key),
            instance_key: key.clone(),
            execution_name: record.execution_name.clone(),
            execution_arn: record.execution_arn.clone(),
            request_digest: digest,
            began: now,
            until: now + self.timings.idempotency_window_millis,
        };
        let held = match self.store.put_key(&entry, now).await? {
            KeyClaim::Written => return Ok(entry.execution_name),
            KeyClaim::Taken(Some(held)) => *held,
            KeyClaim::Taken(None) => match self.store.get_key(&entry.key_hash).await? {
                Some(held) => held,
                // Expired meanwhile: the key is free again.
                None if self.store.put_key(&entry, now).await? == KeyClaim::Written => return Ok(entry.execution_name),
                None => return Err(Error::Contention(instance_id.to_owned())),
            },
        };
        if held.request_digest != entry.request_digest {
            return Err(Error::IdempotencyKeyReused(instance_id.to_owned()));
        }
        Ok(held.execution_name)
    }
}

/// An event that may or may not be in a run, for a retry (with its key) to settle.
pub(super) fn unconfirmed(instance_id: &str, reason: &str) -> Error {
    Error::EventUnconfirmed { instance_id: instance_id.to_owned(), reason: reason.to_owned() }
}

/// Why the store refused to add the event, unless the mailbox was full.
/// `uncertain`: an earlier attempt may have landed.
fn refused_raise(instance_id: &str, record: &Record, guard: &RaiseGuard, uncertain: bool) -> Result<()> {
    let id = instance_id.to_owned();
    match guard {
        // The guard's run was replaced since an attempt that may have landed in it.
        RaiseGuard::Run(_) if uncertain && !guard.admits(record) => {
            Err(unconfirmed(instance_id, "its run was replaced after an attempt that may have landed in it"))
        }
        // The guard's run has ended: its record was replaced since.
        RaiseGuard::Run(run) if record.execution_name != *run => Err(Error::RunEnded { instance_id: id }),
        // The instance started again since the raise began. Each attempt is answered (the
        // store's mailbox writes make one attempt per call), so unless one was not, the
        // event is in no run: the run it was for has ended, and a later run does not get it.
        RaiseGuard::ClaimedBy(began) if record.created_at > *began && record.status.takes_events() => {
            if uncertain {
                Err(unconfirmed(
                    instance_id,
                    &format!(
                        "its run changed while the event was raised (now {}) after an attempt that may have \
                         landed in the run before; it was not raised into the new run",
                        record.execution_arn
                    ),
                ))
            } else {
                Err(Error::RunEnded { instance_id: id })
            }
        }
        _ if !record.status.takes_events() => Err(Error::AlreadyTerminal { instance_id: id, status: record.status }),
        _ => Ok(()),
    }
}

fn mailbox_full_reason(record: &Record) -> String {
    use crate::domain::mailbox::{MAX_EVENTS, MAX_IDS_PER_RUN};
    if record.mailbox.raise_ids.len() >= MAX_IDS_PER_RUN {
        format!("its run has taken {MAX_IDS_PER_RUN} events, as many as a run takes")
    } else {
        format!("{MAX_EVENTS} events are buffered or being delivered")
    }
}
