//! Delivering a pair (an event to its wait) and sweeping delivered pairs:
//! what a raise and a wait registration share (see [`crate::domain::mailbox`]).

use super::error::{Error, Result};
use super::singleton::{Singleton, pause};
use super::telemetry;
use crate::domain::mailbox::Pair;
use crate::domain::mailbox::SWEEP_AFTER_MILLIS;
use crate::domain::{InstanceKey, Millis, Record};
use crate::ports::{Engine, EngineError, InstanceStore, Sweep, TaskAnswer};

/// SendTaskSuccess attempts per delivery.
const DELIVERY_ATTEMPTS: usize = 3;

/// What a sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Swept {
    /// No pair was old enough, no wait expired: no room can be made now.
    Nothing,
    /// It wrote: removed entries, or set when the record is due.
    Removed,
    /// Another write changed the lists first: read again.
    Raced,
}

/// What a scheduled sweep did ([`Singleton::sweep_due`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Records due.
    pub due: usize,
    /// Records it wrote (pairs sent again and removed, or set due again).
    pub swept: usize,
    /// Records whose sweep failed (they stay due).
    pub failed: usize,
}

/// How a delivery went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// The wait took the event.
    Taken,
    /// An attempt of ours may have landed: the wait has it, or had closed.
    TakenOrClosed,
    /// The wait had closed (timed out, or its run ended) before it took the event.
    Closed,
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Sends the pair's event to its wait: SendTaskSuccess with the event's
    /// body as the task's output, retried while it fails without an answer.
    /// Every attempt sends the same event to the same token, which a task
    /// takes at most once; once an attempt may have landed, `Closed` is no
    /// longer proof that the wait had closed before.
    async fn deliver(&self, pair: &Pair<'_>, record: &Record) -> Result<Delivery> {
        let mut may_have_landed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.engine.send_task_success(&pair.wait.1.token, &pair.event.1.body).await {
                Ok(TaskAnswer::Taken) => return Ok(Delivery::Taken),
                Ok(TaskAnswer::Closed) if may_have_landed => return Ok(Delivery::TakenOrClosed),
                Ok(TaskAnswer::Closed) => return Ok(Delivery::Closed),
                Err(error @ EngineError::Ambiguous(_)) => {
                    may_have_landed = true;
                    error
                }
                Err(error @ EngineError::Throttled { .. }) => error,
                Err(error) => return Err(Error::Engine(error)),
            };
            if attempt == DELIVERY_ATTEMPTS {
                return Err(Error::DeliveryPending {
                    instance_id: record.instance_id.clone(),
                    execution_arn: record.execution_arn.to_string(),
                    reason: failure.to_string(),
                });
            }
            pause(attempt).await;
        }
    }

    /// The pair's delivery by the write that formed it (or found it, `replayed`):
    /// whether the wait has the event. A wait that had closed before it took it
    /// drops it, counted; unless `replayed`, when an earlier attempt or the
    /// other side may have delivered it (the answer is the same).
    pub(super) async fn hand_over(&self, pair: &Pair<'_>, record: &Record, replayed: bool) -> Result<bool> {
        if self.deliver(pair, record).await? != Delivery::Closed || replayed {
            return Ok(true);
        }
        telemetry::event_dropped("WaitClosed");
        tracing::warn!(execution_arn = %record.execution_arn, "the wait matched to the event had closed before it took it: the event is dropped");
        Ok(false)
    }

    /// After a write that went through: sweeps `record` if it holds pairs old
    /// enough (a later write's work, so that a delivery whose deliverer died
    /// is not left to the wait's timeout). Its failure fails nothing: the next write sweeps.
    pub(super) async fn sweep_after(&self, record: &Record) {
        if let Err(error) = self.sweep_delivered(record, self.now()).await {
            tracing::warn!(%error, "the sweep of delivered events failed; a later write sweeps");
        }
    }

    /// Sends every pair old enough to have lost its deliverer again, then
    /// removes them (see [`crate::domain::mailbox::Mailbox::sweepable`]), and
    /// the waits whose deadline passed without an event
    /// ([`crate::domain::mailbox::Mailbox::expired_waits`]). Says whether it
    /// removed any. A pair a deliverer still sends is sent twice: the same
    /// event to the same token, taken once.
    pub(super) async fn sweep_delivered(&self, record: &Record, now: Millis) -> Result<Swept> {
        let mailbox = &record.mailbox;
        let pairs = mailbox.sweepable(now);
        let expired = mailbox.expired_waits(now);
        if pairs.is_empty() && expired.is_empty() {
            return Ok(Swept::Nothing);
        }
        for pair in &pairs {
            // A wait found closed here may have taken the event from its deliverer: at most once wins.
            match self.deliver(pair, record).await {
                Ok(_) => {}
                // Refused for good (its output, the key, the role): sent again it would be refused
                // again, and kept it would block every later sweep. Dropped, counted.
                Err(Error::Engine(refusal @ EngineError::Refused { .. })) => {
                    telemetry::event_dropped("Refused");
                    tracing::error!(%refusal, "Step Functions refused an event's delivery: the event is dropped");
                }
                Err(error) => return Err(error),
            }
        }
        let events: Vec<usize> = pairs.iter().map(|pair| pair.event.0).collect();
        let waits: Vec<usize> = pairs.iter().map(|pair| pair.wait.0).chain(expired).collect();
        let due = mailbox.without(&events, &waits).sweep_at;
        self.write_sweep(record, &events, &waits, due).await
    }

    /// The sweep's conditional write: removes `events` and `waits` (indices)
    /// and sets when the record is due next, if the lists are as `record` shows them.
    async fn write_sweep(
        &self,
        record: &Record,
        events: &[usize],
        waits: &[usize],
        due: Option<Millis>,
    ) -> Result<Swept> {
        let mailbox = &record.mailbox;
        let sweep = Sweep {
            execution_arn: &record.execution_arn,
            seen: (mailbox.events.len(), mailbox.waits.len(), mailbox.sweeps, record.redrive_count),
            events,
            waits,
            due,
        };
        Ok(match self.store.sweep(&record.key, &sweep).await? {
            crate::ports::Conditional::Written => Swept::Removed,
            crate::ports::Conditional::Refused(_) => Swept::Raced,
        })
    }

    /// The scheduled sweep (the event-wait Lambda's, every minute): every
    /// record whose mailbox is due
    /// ([`crate::domain::mailbox::Mailbox::sweep_at`], at most `limit`),
    /// swept as a later write would, so that a pair whose deliverer died is
    /// sent without waiting for one; a record with nothing old enough is set
    /// due again when its oldest pair will be (or no longer, without pairs).
    /// One record's failure stops none of the others: it is set due again
    /// [`SWEEP_AFTER_MILLIS`] later, so that it cannot keep the records behind
    /// it waiting. No record is begun once `budget` has passed.
    pub async fn sweep_due(&self, limit: usize, budget: std::time::Duration) -> Result<SweepReport> {
        let began = tokio::time::Instant::now();
        let now = self.now();
        let mut report = SweepReport::default();
        for key in self.store.due_for_sweep(now, limit).await? {
            report.due += 1;
            if began.elapsed() >= budget {
                report.failed += 1;
                continue;
            }
            match self.sweep_one(&key, now).await {
                Ok(true) => report.swept += 1,
                Ok(false) => {}
                Err(error) => {
                    report.failed += 1;
                    tracing::warn!(%error, instance_key = %key, "a due sweep failed; it is due again later");
                }
            }
        }
        Ok(report)
    }

    /// One due record's sweep; whether it wrote.
    async fn sweep_one(&self, key: &InstanceKey, now: Millis) -> Result<bool> {
        // A write that changed the record since it was read refuses the sweep: read it again, once.
        for _ in 0..2 {
            // (The index is eventually consistent: the record as it is now decides.)
            let Some(record) = self.store.get(key).await? else { return Ok(false) };
            if record.mailbox.sweep_at.is_none_or(|at| at > now) {
                return Ok(false);
            }
            let swept = match self.sweep_delivered(&record, now).await {
                Ok(Swept::Nothing) => self.write_sweep(&record, &[], &[], record.mailbox.sweep_due()).await,
                Err(error) => {
                    // Due again later, not at the head of the next minute's sweep.
                    let later = Some(now + SWEEP_AFTER_MILLIS);
                    if let Err(rearm) = self.write_sweep(&record, &[], &[], later).await {
                        tracing::warn!(error = %rearm, "a failed sweep's record stays due");
                    }
                    return Err(error);
                }
                swept => swept,
            };
            if swept? != Swept::Raced {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
