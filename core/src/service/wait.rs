//! A run's task waiting for an event: its token registered in the record
//! (the event-wait entry point's work; Durable's `WaitForExternalEvent`).

use super::delivery::Swept;
use super::error::{Error, Result};
use super::singleton::{MAX_CLAIM_ROUNDS, Singleton, pause};
use crate::domain::mailbox::{EventName, MAX_TASK_TOKEN_CHARS, MAX_WAITS, Wait};
use crate::domain::{ExecutionArn, ExecutionName, InstanceKey, Millis, Record, Status};
use crate::ports::{Conditional, Engine, EngineError, InstanceStore, MailboxWrite};

/// `error` of a wait the service failed: its run is not the instance's current one, or has ended.
pub const WAIT_NOT_CURRENT_ERROR: &str = "SfnSingleton.NotCurrent";
/// `error` of a wait the service failed: its run has as many waits as a record holds.
pub const TOO_MANY_WAITS_ERROR: &str = "SfnSingleton.TooManyWaits";
/// `error` of a wait the service failed: its message is not a wait (no run, no name, a bad name).
pub const INVALID_WAIT_ERROR: &str = "SfnSingleton.InvalidWait";

/// A task's wait for an event, as the wait's message carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitRequest {
    /// `$$.Execution.Id`: the run that waits.
    pub execution_arn: ExecutionArn,
    /// The event name it waits for.
    pub name: EventName,
    /// `$$.Task.Token`.
    pub token: String,
    /// When the task times out, if its message said (see [`Wait::deadline`]).
    pub deadline: Option<Millis>,
}

/// What became of a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Registered: the next event of its name goes to it.
    Waiting,
    /// An event was buffered for it, and it took it.
    Delivered,
    /// Its task had closed (timed out) before it took the event buffered for it: the event is dropped.
    Closed,
    /// Failed with SendTaskFailure: its run is not the instance's current
    /// one, has ended, or holds as many waits as it can.
    Failed,
}

impl WaitOutcome {
    /// The outcome's name, as metrics and logs give it.
    pub fn name(self) -> &'static str {
        match self {
            WaitOutcome::Waiting => "Waiting",
            WaitOutcome::Delivered => "Delivered",
            WaitOutcome::Closed => "Closed",
            WaitOutcome::Failed => "Failed",
        }
    }
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Registers a wait: one conditional write, plus SendTaskSuccess when an
    /// event of its name is buffered already. A redelivered registration
    /// (same token) finds its own entry and sends its pair again, if it has one.
    pub async fn register_wait(&self, request: &WaitRequest) -> Result<WaitOutcome> {
        let arn = &request.execution_arn;
        if request.token.is_empty() || request.token.len() > MAX_TASK_TOKEN_CHARS {
            return Err(Error::InvalidWait(format!("a task token is 1–{MAX_TASK_TOKEN_CHARS} characters")));
        }
        let Some(key) = ExecutionName::instance_key(arn.name()) else {
            return Err(Error::InvalidWait(format!("{arn} is not an execution this service started")));
        };
        let mut wait = Wait {
            id: Wait::id_of(&request.token),
            name: request.name.clone(),
            token: request.token.clone(),
            at: self.now(),
            deadline: request.deadline,
        };
        for attempt in 1..=MAX_CLAIM_ROUNDS {
            // Stamped as it is written: a pair's time is when its later half was (`Wait::takes`).
            wait.at = self.now();
            let record = match self.store.add_wait(&key, arn, &wait).await {
                Ok(MailboxWrite::Added(record)) => {
                    // Its own pair first: a sweep of older pairs may take the rest of the time.
                    let waited = self.waited(&record, &wait.id, false).await;
                    self.sweep_after(&record).await;
                    return waited;
                }
                Ok(MailboxWrite::Refused(Some(record))) => Some(*record),
                Ok(MailboxWrite::Refused(None)) => self.store.get(&key).await?,
                Err(error) if error.is_transient() && attempt < MAX_CLAIM_ROUNDS => {
                    pause(attempt).await;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            let ours = record.filter(|record| record.execution_arn == *arn);
            // Its run ran again (a redrive from outside, or a start released on Step Functions'
            // word that exists after all) and its wait came before its RUNNING event: apply it.
            if let Some(stale) = &ours
                && !stale.status.takes_events()
                && attempt < MAX_CLAIM_ROUNDS
                && self.caught_up(&key, arn).await?
            {
                continue;
            }
            let current = ours.filter(|record| record.status.takes_events());
            let Some(record) = current else {
                let cause = format!("{arn} is not the current run of its instance, or it has ended");
                return self.fail_wait(&request.token, WAIT_NOT_CURRENT_ERROR, &cause).await;
            };
            if record.mailbox.wait_ids.contains(&wait.id) {
                return self.waited(&record, &wait.id, true).await;
            }
            if self.sweep_delivered(&record, self.now()).await? == Swept::Nothing {
                let cause = format!("the run already has {MAX_WAITS} waits, or has taken as many as a run takes");
                return self.fail_wait(&request.token, TOO_MANY_WAITS_ERROR, &cause).await;
            }
        }
        Err(Error::Contention(arn.to_string()))
    }

    /// The wait with ID `id` is in `record`: takes its event, if one is buffered.
    async fn waited(&self, record: &Record, id: &str, replayed: bool) -> Result<WaitOutcome> {
        let Some(pair) = record.mailbox.pair_of_wait(id) else { return Ok(WaitOutcome::Waiting) };
        // Replayed: a redelivered registration, an earlier one may have delivered it.
        let delivered = self.hand_over(&pair, record, replayed).await?;
        Ok(if delivered { WaitOutcome::Delivered } else { WaitOutcome::Closed })
    }

    /// Fails the task of a wait message that names no valid wait (`cause` says
    /// why), so that its run goes on to its error handling instead of waiting
    /// out its timeout. A token Step Functions does not know is no error.
    pub async fn refuse_wait(&self, token: &str, cause: &str) -> Result<WaitOutcome> {
        self.fail_wait(token, INVALID_WAIT_ERROR, cause).await
    }

    async fn fail_wait(&self, token: &str, error: &str, cause: &str) -> Result<WaitOutcome> {
        match self.engine.send_task_failure(token, error, cause).await {
            Ok(_) => Ok(WaitOutcome::Failed),
            // Refused for good (not a guarded state machine's task: the role may not fail it):
            // retrying the message changes nothing, and its task times out on its own.
            Err(EngineError::Refused { code, .. }) => {
                tracing::warn!(code, error, "the wait's task could not be failed; it waits until its timeout");
                Ok(WaitOutcome::Failed)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Whether Step Functions says the run runs again, written back as its RUNNING event
    /// would be (only that write: a wait stops nothing, whatever it finds).
    async fn caught_up(&self, key: &InstanceKey, arn: &ExecutionArn) -> Result<bool> {
        let Some(state) = self.engine.describe(arn).await? else { return Ok(false) };
        if state.status != Status::Running {
            return Ok(false);
        }
        let update = self.update_of(arn.clone(), state);
        Ok(self.apply_update(key, &update).await? == Conditional::Written)
    }
}
