//! Making a record true: DescribeExecution's word written back, a dead
//! starter's claim released; and the reads that reconcile (status, last run).

use super::error::{Error, Result};
use super::rewind::not_redriven;
use super::singleton::Singleton;
use super::telemetry::{self, Reconciliation};
use crate::domain::policy::Trust;
use crate::domain::record::START_FAILED_ERROR;
use crate::domain::{InstanceId, Record, Status, StoredInput};
use crate::ports::{Conditional, Engine, ExecutionState, ExecutionUpdate, InstanceStore};

/// A record behind an end Step Functions made longer ago than this missed its
/// event (events arrive within seconds); a newer end's event is on the way.
const LATE_EVENT_MILLIS: i64 = 30_000;

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Asks Step Functions about the record's execution and writes back what
    /// it says. Returns the record as it now stands, or `None` when Step
    /// Functions knows no such execution.
    pub(super) async fn verify(&self, record: &Record) -> Result<Option<Record>> {
        let Some(state) = self.engine.describe(&record.execution_arn).await? else {
            tracing::warn!(execution_arn = %record.execution_arn, status = %record.status, "the record's execution does not exist");
            telemetry::reconciled(Reconciliation::ExecutionMissing);
            return Ok(None);
        };
        let ended_at = state.stop_date;
        let current = self.write_back(record, state).await?;
        let outcome = if (current.status, current.redrive_count) == (record.status, record.redrive_count) {
            Reconciliation::Current
        } else if ended_at.is_some_and(|at| self.now() - at < LATE_EVENT_MILLIS) {
            Reconciliation::Recent
        } else {
            // (A record is verified only once in doubt: a claim past its lease, a run unconfirmed
            // for the reconcile interval. A RUNNING it missed is that late.)
            Reconciliation::Corrected
        };
        telemetry::reconciled(outcome);
        Ok(Some(current))
    }

    /// As [`Self::verify`], for a record that is not in doubt (a fresh claim a
    /// signal-with-start asks about): nothing counted as a reconciliation.
    pub(super) async fn confirm(&self, record: &Record) -> Result<Option<Record>> {
        let Some(state) = self.engine.describe(&record.execution_arn).await? else { return Ok(None) };
        Ok(Some(self.write_back(record, state).await?))
    }

    /// Writes what Step Functions says of the record's execution back (if the
    /// record still names it, unended); the record as it now stands.
    pub(super) async fn write_back(&self, record: &Record, state: ExecutionState) -> Result<Record> {
        let now = self.now();
        if record.status == Status::Redriving && not_redriven(record, &state) {
            // A rewind holds the record and its redrive has not happened: past the lease its
            // rewinder is presumed dead, and the record goes back to how the run ended.
            if !record.lease_expired(now) {
                return Ok(record.clone());
            }
            if let Some(ended) = self.give_up_rewind(record, state).await? {
                telemetry::reconciled(Reconciliation::RewindReleased);
                return Ok(ended);
            }
            return Ok(self.store.get(&record.key).await?.unwrap_or_else(|| record.clone()));
        }
        let update = ExecutionUpdate {
            execution_arn: record.execution_arn.clone(),
            expires_at: state.status.is_terminal().then(|| self.expires_at(now)),
            state: state.bounded(),
            observed_at: now,
            from: &[Status::Starting, Status::Running, Status::Redriving],
            rewind_token: None,
        };
        let current = match self.apply_update(&record.key, &update).await? {
            Conditional::Written => update.applied_to(record),
            // Someone else wrote first; theirs is at least as new.
            Conditional::Refused(Some(current)) => *current,
            Conditional::Refused(None) => {
                self.store.get(&record.key).await?.unwrap_or_else(|| update.applied_to(record))
            }
        };
        tracing::info!(execution_arn = %record.execution_arn, status = %current.status, "reconciled with Step Functions");
        Ok(current)
    }

    /// A record that has not been confirmed for too long, made true.
    pub(super) async fn reconcile(&self, record: Record) -> Result<Record> {
        if record.status.is_terminal()
            || !Trust::of(&record, self.now(), self.timings.reconcile_after_millis).doubtful()
        {
            return Ok(record);
        }
        if let Some(current) = self.verify(&record).await? {
            return Ok(current);
        }
        // A dead starter's claim whose execution never started: release it.
        if record.status == Status::Starting {
            let now = self.now();
            let reason = "the starter stopped before StartExecution";
            if self
                .store
                .mark_start_failed(&record.key, &record.execution_name, reason, now, self.expires_at(now))
                .await?
            {
                telemetry::reconciled(Reconciliation::ClaimReleased);
                return Ok(Record {
                    status: Status::StartFailed,
                    updated_at: now,
                    lease_until: None,
                    error: Some(START_FAILED_ERROR.to_owned()),
                    cause: Some(reason.to_owned()),
                    expires_at: Some(self.expires_at(now)),
                    ..record
                });
            }
            return Ok(self.store.get(&record.key).await?.unwrap_or(record));
        }
        Ok(record)
    }

    /// The instance's record, reconciled with Step Functions if it has not
    /// been confirmed for longer than the reconcile interval.
    pub async fn status(&self, instance_id: &InstanceId) -> Result<Option<Record>> {
        match self.store.get(&instance_id.key()).await? {
            Some(record) => Ok(Some(self.reconcile(record).await?)),
            None => Ok(None),
        }
    }

    /// The instance's last run and its input (from Step Functions when the
    /// record kept only a digest of it), for a restart.
    pub async fn last_run(&self, instance_id: &InstanceId) -> Result<Option<(Record, String)>> {
        let Some(record) = self.status(instance_id).await? else {
            return Ok(None);
        };
        let input = match &record.input {
            Some(StoredInput::Inline(input)) => input.clone(),
            _ => self
                .engine
                .describe(&record.execution_arn)
                .await?
                .and_then(|state| state.input)
                .ok_or_else(|| Error::InputUnavailable(instance_id.to_string()))?,
        };
        Ok(Some((record, input)))
    }
}
