//! Status events: Step Functions' word about an execution, written back.

use super::error::Result;
use super::singleton::Singleton;
use super::telemetry;
use crate::domain::policy::{RefusedRunning, refused_running};
use crate::domain::record::SUPERSEDED_ERROR;
use crate::domain::{ExecutionArn, ExecutionName, InstanceKey, Record, Status};
use crate::ports::{Applied, Conditional, Engine, ExecutionState, ExecutionUpdate, InstanceStore};

/// A Step Functions status change, as the status Lambda receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The execution.
    pub execution_arn: ExecutionArn,
    /// Its name (the record's key is in it, if it is ours).
    pub name: ExecutionName,
    /// What the event says of it.
    pub state: ExecutionState,
    /// The event left the output out (`outputDetails.included: false`: over
    /// the ~248 KB an event carries); DescribeExecution has it.
    pub output_omitted: bool,
}

/// What a status event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// The record now says what the event says.
    Applied,
    /// A duplicate, an older event, or one about an older execution.
    Ignored,
    /// No record for that instance (purged, or never ours).
    UnknownInstance,
    /// The execution name is not one of ours.
    NotOurs,
    /// An older execution of the instance ran again and was stopped.
    StoppedSuperseded,
}

impl EventOutcome {
    /// The outcome's name, as its metric says it.
    pub fn name(self) -> &'static str {
        match self {
            EventOutcome::Applied => "Applied",
            EventOutcome::Ignored => "Ignored",
            EventOutcome::UnknownInstance => "UnknownInstance",
            EventOutcome::NotOurs => "NotOurs",
            EventOutcome::StoppedSuperseded => "StoppedSuperseded",
        }
    }
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Writes Step Functions' word about an execution back, if its condition
    /// holds. A run's end that drops events no wait took says so: logged, and
    /// counted (`EventsDropped.RunEnded`).
    pub(super) async fn apply_update(&self, key: &InstanceKey, update: &ExecutionUpdate) -> Result<Conditional> {
        Ok(match self.store.apply(key, update).await? {
            Applied::Written { dropped_events } => {
                if dropped_events > 0 {
                    tracing::warn!(
                        execution_arn = %update.execution_arn,
                        dropped_events,
                        "the run ended with events no wait took: they are dropped"
                    );
                    telemetry::events_dropped("RunEnded", dropped_events);
                }
                Conditional::Written
            }
            Applied::Refused(current) => Conditional::Refused(current),
        })
    }

    /// Writes a status event back. Idempotent and order-proof: the store's
    /// condition lets only news about the current execution through.
    pub async fn apply_event(&self, change: StatusChange) -> Result<EventOutcome> {
        let Some(key) = ExecutionName::instance_key(change.name.as_str()) else {
            return Ok(EventOutcome::NotOurs);
        };
        let running = change.state.status == Status::Running;
        let mut state = change.state;
        if change.output_omitted && state.output.is_none() && state.status.is_terminal() {
            // Fetched, then cut to what a record keeps, like any output over the bound.
            let described = self.engine.describe(&change.execution_arn).await?;
            state.output = described.and_then(|described| described.output);
        }
        let update = self.update_of(change.execution_arn, state);
        let current = match self.apply_update(&key, &update).await? {
            Conditional::Written => return Ok(EventOutcome::Applied),
            _ if !running => return Ok(EventOutcome::Ignored),
            Conditional::Refused(Some(current)) => Some(*current),
            Conditional::Refused(None) => self.store.get(&key).await?,
        };
        self.running_refused(current, &update).await
    }

    /// The write of Step Functions' word `state` about an execution, as a status event makes it.
    pub(super) fn update_of(&self, execution_arn: ExecutionArn, state: ExecutionState) -> ExecutionUpdate {
        let now = self.now();
        let running = state.status == Status::Running;
        ExecutionUpdate {
            execution_arn,
            expires_at: (!running).then(|| self.expires_at(now)),
            state: state.bounded(),
            observed_at: now,
            // A RUNNING event only confirms a claim; a redrive (higher count) always applies. A claim
            // released as START_FAILED on Step Functions' word (DescribeExecution is eventually
            // consistent) whose execution turns out to exist takes its events: it runs, so the ID is busy.
            // A rewind's REDRIVING record holds the count its redrive will have: the redrive's events
            // take it (its end too, should it come first: SQS does not keep order), never a late or
            // redelivered event of the run it rewinds (a lower count).
            from: if running {
                &[Status::Starting, Status::Redriving, Status::StartFailed]
            } else {
                &[Status::Starting, Status::Running, Status::Redriving, Status::StartFailed]
            },
            rewind_token: None,
        }
    }

    /// A RUNNING event the record refused: old news, or an older run of the ID redriven from outside.
    async fn running_refused(&self, current: Option<Record>, update: &ExecutionUpdate) -> Result<EventOutcome> {
        match refused_running(current.as_ref(), &update.execution_arn, update.state.redrive_count) {
            RefusedRunning::Ignore => Ok(EventOutcome::Ignored),
            RefusedRunning::Unknown => Ok(EventOutcome::UnknownInstance),
            RefusedRunning::StopIfRunning => {
                let still_running = self.engine.describe(&update.execution_arn).await?;
                if still_running.is_none_or(|state| state.status != Status::Running) {
                    return Ok(EventOutcome::Ignored);
                }
                // (A deleted record cannot be recreated for it: the name carries the instance key, a hash.)
                let cause = match current {
                    Some(current) => {
                        format!("superseded by {} of instance {:?}", current.execution_arn, current.instance_id)
                    }
                    None => "redriven after its instance's record was deleted (purged or expired); \
                             the instance ID is free for new starts"
                        .to_owned(),
                };
                self.engine.stop(&update.execution_arn, SUPERSEDED_ERROR, &cause).await?;
                telemetry::superseded_stopped();
                Ok(EventOutcome::StoppedSuperseded)
            }
        }
    }
}
