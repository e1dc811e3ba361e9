//! Terminate: stop the instance's execution and record how it ended.

use super::error::{Error, Result};
use super::singleton::Singleton;
use crate::domain::record::TERMINATED_ERROR;
use crate::domain::{InstanceId, Record, Status};
use crate::ports::{Conditional, Engine, ExecutionState, ExecutionUpdate, InstanceStore};

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Stops the instance's execution and records it as `Aborted`.
    pub async fn terminate(&self, instance_id: &InstanceId, reason: &str) -> Result<Record> {
        let not_found = || Error::InstanceNotFound(instance_id.to_string());
        let record = self.store.get(&instance_id.key()).await?.ok_or_else(not_found)?;
        let record = self.reconcile(record).await?;
        if record.status.is_terminal() {
            return Err(Error::AlreadyTerminal { instance_id: instance_id.to_string(), status: record.status });
        }
        if record.status == Status::Redriving {
            // A rewind holds it, its redrive not confirmed yet: stopping now could miss the redrive.
            return Err(Error::StillStarting(instance_id.to_string()));
        }
        let Some(stop_date) = self.engine.stop(&record.execution_arn, TERMINATED_ERROR, reason).await? else {
            // Claimed, and its starter is still within its lease.
            return Err(Error::StillStarting(instance_id.to_string()));
        };
        let aborted = ExecutionState {
            status: Status::Aborted,
            redrive_count: record.redrive_count,
            stop_date: Some(stop_date),
            output: None,
            error: Some(TERMINATED_ERROR.to_owned()),
            cause: Some(reason.to_owned()),
            input: None,
        };
        // Stopping an execution that has just ended changes nothing: record
        // how it really ended, not ABORTED (found by the model check).
        let state = ExecutionState::after_stop(self.engine.describe(&record.execution_arn).await?, aborted);
        let now = self.now();
        let update = ExecutionUpdate {
            execution_arn: record.execution_arn.clone(),
            state: state.bounded(),
            observed_at: now,
            from: &[Status::Starting, Status::Running],
            expires_at: Some(self.expires_at(now)),
            rewind_token: None,
        };
        let written = match self.apply_update(&record.key, &update).await? {
            // Its end was recorded meanwhile (an event): that is its truth.
            Conditional::Refused(Some(current)) if current.execution_arn == record.execution_arn => *current,
            // Written, or the record moved on to a newer execution: report the one stopped.
            _ => update.applied_to(&record),
        };
        if update.state.status != Status::Aborted {
            return Err(Error::AlreadyTerminal { instance_id: instance_id.to_string(), status: update.state.status });
        }
        Ok(written)
    }
}
