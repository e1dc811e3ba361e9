//! The singleton algorithms, generic over the two ports.

use crate::domain::record::{START_FAILED_ERROR, SUPERSEDED_ERROR, TERMINATED_ERROR};
use crate::domain::{ExecutionName, InstanceId, Millis, Record, StartToken, StateMachineArn, Status};
use crate::error::{Error, Result};
use crate::ports::{
    ClaimCondition, Conditional, Engine, EngineError, ExecutionState, ExecutionUpdate, InstanceStore, WorkflowType,
};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The time source; tests move it forward instead of sleeping.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// How long a `Starting` claim is protected; must outlast the start
    /// function's timeout, so that its starter is dead when it expires.
    pub lease_millis: Millis,
    /// How long a non-terminal record is believed without asking Step Functions.
    pub reconcile_after_millis: Millis,
    /// How long terminal records are kept (DynamoDB TTL).
    pub retention_secs: i64,
}

/// A start of one instance: what to start, and with what.
#[derive(Debug, Clone, Copy)]
pub struct StartRequest<'a> {
    pub instance_id: &'a InstanceId,
    pub function_name: &'a str,
    pub state_machine: &'a StateMachineArn,
    /// JSON text.
    pub input: &'a str,
}

/// A Step Functions status change, as the status Lambda receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub execution_arn: String,
    pub name: String,
    pub state: ExecutionState,
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

/// Claims can lose to concurrent starts that then turn out to be stale or
/// finished; past this many rounds the caller is told to retry.
const MAX_CLAIM_ROUNDS: usize = 4;

pub struct Singleton<S, E> {
    store: S,
    engine: E,
    timings: Timings,
    clock: Clock,
}

/// What a refused claim found, and so what the next step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finding {
    /// Terminal by now: claim again.
    Free,
    /// Running or starting, as far as anyone can tell: refuse.
    Busy,
    /// Not confirmed for too long (or its starter's lease ended): ask Step Functions.
    Doubtful,
}

fn assess(record: &Record, now: Millis, timings: &Timings) -> Finding {
    if record.status.is_terminal() {
        return Finding::Free;
    }
    let last_word = record.confirmed_at.unwrap_or(record.created_at);
    let doubtful = match record.status {
        Status::Starting => record.lease_expired(now),
        _ => now - last_word >= timings.reconcile_after_millis,
    };
    if doubtful { Finding::Doubtful } else { Finding::Busy }
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    pub fn new(store: S, engine: E, timings: Timings, clock: Clock) -> Self {
        Self { store, engine, timings, clock }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn engine(&self) -> &E {
        &self.engine
    }

    fn now(&self) -> Millis {
        (self.clock)()
    }

    fn expires_at(&self, now: Millis) -> i64 {
        now / 1000 + self.timings.retention_secs
    }

    /// Cold-start check: every configured state machine exists and is a
    /// Standard workflow. Express ones emit no status events and have no
    /// idempotent start, so an ID could never be freed nor a start retried.
    pub async fn check_state_machines<'a>(
        &self,
        functions: impl IntoIterator<Item = (&'a String, &'a StateMachineArn)>,
    ) -> Result<()> {
        for (function, state_machine) in functions {
            match self.engine.workflow_type(state_machine).await? {
                Some(WorkflowType::Standard) => {}
                Some(WorkflowType::Express) => {
                    return Err(Error::Misconfigured(format!(
                        "function {function:?}: {state_machine} is an EXPRESS state machine; sfn-singleton needs STANDARD \
                         (Express workflows emit no status events and their StartExecution is not idempotent)"
                    )));
                }
                None => {
                    return Err(Error::Misconfigured(format!(
                        "function {function:?}: state machine {state_machine} does not exist"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Starts the instance unless an execution of it is starting or running.
    /// Happy path: one conditional put, one StartExecution. Refusal: one put.
    pub async fn start(&self, request: StartRequest<'_>) -> Result<Record> {
        let now = self.now();
        let name = ExecutionName::new(request.instance_id, StartToken::generate(now));
        let record = Record::starting(
            request.instance_id,
            request.function_name,
            request.state_machine,
            &name,
            request.input,
            now,
            self.timings.lease_millis,
        );
        let mut condition = ClaimCondition::FreeOrTerminal;
        for _ in 0..MAX_CLAIM_ROUNDS {
            let current = match self.store.claim(&record, &condition).await? {
                Conditional::Written => return self.launch(record, &name, request).await,
                Conditional::Refused(Some(current)) => *current,
                // The store did not say what refused the claim: read it once.
                Conditional::Refused(None) => match self.store.get(&record.key).await? {
                    Some(current) => current,
                    None => {
                        condition = ClaimCondition::FreeOrTerminal;
                        continue;
                    }
                },
            };
            condition = match assess(&current, self.now(), &self.timings) {
                Finding::Free => ClaimCondition::FreeOrTerminal,
                Finding::Busy => return Err(Error::AlreadyExists(request.instance_id.to_string())),
                Finding::Doubtful => match self.verify(&current).await? {
                    Some(state) if !state.status.is_terminal() => {
                        return Err(Error::AlreadyExists(request.instance_id.to_string()));
                    }
                    Some(_) => ClaimCondition::FreeOrTerminal,
                    None => {
                        tracing::warn!(
                            execution_arn = %current.execution_arn,
                            status = %current.status,
                            "the record's execution does not exist; taking the instance over"
                        );
                        ClaimCondition::TakeOver {
                            execution_name: current.execution_name.clone(),
                            status: current.status,
                        }
                    }
                },
            };
        }
        Err(Error::Contention(request.instance_id.to_string()))
    }

    /// Asks Step Functions about the record's execution and writes back what
    /// it says. Returns the record as it now stands, or `None` when Step
    /// Functions knows no such execution.
    async fn verify(&self, record: &Record) -> Result<Option<Record>> {
        let Some(state) = self.engine.describe(&record.execution_arn).await? else {
            tracing::warn!(execution_arn = %record.execution_arn, status = %record.status, "the record's execution does not exist");
            return Ok(None);
        };
        let now = self.now();
        let update = ExecutionUpdate {
            execution_arn: record.execution_arn.clone(),
            expires_at: state.status.is_terminal().then(|| self.expires_at(now)),
            state: state.bounded(),
            observed_at: now,
            from: &[Status::Starting, Status::Running],
        };
        let current = match self.store.apply(&record.key, &update).await? {
            Conditional::Written => update.applied_to(record),
            // Someone else wrote first; theirs is at least as new.
            Conditional::Refused(Some(current)) => *current,
            Conditional::Refused(None) => {
                self.store.get(&record.key).await?.unwrap_or_else(|| update.applied_to(record))
            }
        };
        tracing::info!(execution_arn = %record.execution_arn, status = %current.status, "reconciled with Step Functions");
        Ok(Some(current))
    }

    /// A record that has not been confirmed for too long, made true.
    async fn reconcile(&self, record: Record) -> Result<Record> {
        if assess(&record, self.now(), &self.timings) != Finding::Doubtful {
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

    /// Stops the instance's execution and records it as `Aborted`.
    pub async fn terminate(&self, instance_id: &InstanceId, reason: &str) -> Result<Record> {
        let not_found = || Error::InstanceNotFound(instance_id.to_string());
        let record = self.store.get(&instance_id.key()).await?.ok_or_else(not_found)?;
        let record = self.reconcile(record).await?;
        if record.status.is_terminal() {
            return Err(Error::AlreadyTerminal { instance_id: instance_id.to_string(), status: record.status });
        }
        let Some(stop_date) = self.engine.stop(&record.execution_arn, TERMINATED_ERROR, reason).await? else {
            // Claimed, and its starter is still within its lease.
            return Err(Error::StillStarting(instance_id.to_string()));
        };
        let now = self.now();
        let update = ExecutionUpdate {
            execution_arn: record.execution_arn.clone(),
            state: ExecutionState {
                status: Status::Aborted,
                redrive_count: record.redrive_count,
                stop_date: Some(stop_date),
                output: None,
                error: Some(TERMINATED_ERROR.to_owned()),
                cause: Some(reason.to_owned()),
            }
            .bounded(),
            observed_at: now,
            from: &[Status::Starting, Status::Running],
            expires_at: Some(self.expires_at(now)),
        };
        match self.store.apply(&record.key, &update).await? {
            // Its end was recorded meanwhile (an event): that is its truth.
            Conditional::Refused(Some(current)) if current.execution_arn == record.execution_arn => Ok(*current),
            // Written, or the record moved on to a newer execution: report the one stopped.
            _ => Ok(update.applied_to(&record)),
        }
    }

    /// Deletes a terminal instance's record.
    pub async fn purge(&self, instance_id: &InstanceId) -> Result<()> {
        let key = instance_id.key();
        for _ in 0..MAX_CLAIM_ROUNDS {
            let current = match self.store.purge(&key).await? {
                Conditional::Written => return Ok(()),
                Conditional::Refused(Some(current)) => *current,
                Conditional::Refused(None) => match self.store.get(&key).await? {
                    Some(current) => current,
                    None => return Err(Error::InstanceNotFound(instance_id.to_string())),
                },
            };
            if !self.reconcile(current).await?.status.is_terminal() {
                return Err(Error::StillRunning(instance_id.to_string()));
            }
        }
        Err(Error::Contention(instance_id.to_string()))
    }

    /// Writes a status event back. Idempotent and order-proof: the store's
    /// condition lets only news about the current execution through.
    pub async fn apply_event(&self, change: StatusChange) -> Result<EventOutcome> {
        let Some(key) = ExecutionName::instance_key(&change.name) else {
            return Ok(EventOutcome::NotOurs);
        };
        let now = self.now();
        let running = change.state.status == Status::Running;
        let update = ExecutionUpdate {
            execution_arn: change.execution_arn,
            expires_at: (!running).then(|| self.expires_at(now)),
            state: change.state.bounded(),
            observed_at: now,
            // A RUNNING event only confirms a claim; a redrive (higher count) always applies.
            from: if running { &[Status::Starting] } else { &[Status::Starting, Status::Running] },
        };
        let current = match self.store.apply(&key, &update).await? {
            Conditional::Written => return Ok(EventOutcome::Applied),
            _ if !running => return Ok(EventOutcome::Ignored),
            Conditional::Refused(Some(current)) => Some(*current),
            Conditional::Refused(None) => self.store.get(&key).await?,
        };
        match current {
            None => Ok(EventOutcome::UnknownInstance),
            Some(current) if current.execution_arn == update.execution_arn => Ok(EventOutcome::Ignored),
            // An older execution of this ID runs (redriven from outside, or a
            // start that landed late): only the record's execution may run.
            Some(current) => {
                let still_running = self.engine.describe(&update.execution_arn).await?;
                if still_running.is_none_or(|state| state.status != Status::Running) {
                    return Ok(EventOutcome::Ignored);
                }
                let cause = format!("superseded by {} of instance {:?}", current.execution_arn, current.instance_id);
                self.engine.stop(&update.execution_arn, SUPERSEDED_ERROR, &cause).await?;
                Ok(EventOutcome::StoppedSuperseded)
            }
        }
    }

    /// The second call of a start. The claim is ours; make the execution exist or give the claim up.
    async fn launch(&self, record: Record, name: &ExecutionName, request: StartRequest<'_>) -> Result<Record> {
        let first = self.engine.start(request.state_machine, name, request.input).await;
        let outcome = match first {
            // No answer: it may have started. Same name and input again is
            // idempotent, so a second try tells which, and starts it if not.
            Err(EngineError::Ambiguous(reason)) => {
                tracing::warn!(%reason, "StartExecution did not answer; trying once more with the same name");
                match self.engine.start(request.state_machine, name, request.input).await {
                    Err(EngineError::ExecutionAlreadyExists) => Ok(()),
                    other => other,
                }
            }
            other => other,
        };
        match outcome {
            Ok(()) => Ok(record),
            Err(EngineError::Ambiguous(reason)) => {
                // Leave the claim: after its lease, DescribeExecution decides.
                Err(Error::StartUnconfirmed { instance_id: record.instance_id, reason })
            }
            Err(refusal) => {
                let now = self.now();
                let reason = refusal.to_string();
                match self.store.mark_start_failed(&record.key, name.as_str(), &reason, now, self.expires_at(now)).await
                {
                    Ok(wrote) => tracing::warn!(%reason, wrote, "StartExecution refused; claim released"),
                    // The lease still frees the ID in the end.
                    Err(e) => {
                        tracing::error!(%reason, error = %e, "StartExecution refused and the claim could not be released")
                    }
                }
                Err(Error::StartRefused(refusal))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings() -> Timings {
        Timings { lease_millis: 1_000, reconcile_after_millis: 10_000, retention_secs: 60 }
    }

    fn record(status: Status) -> Record {
        let id = InstanceId::parse("a").unwrap_or_else(|e| panic!("{e}"));
        let sm = StateMachineArn::parse("arn:aws:states:us-east-1:1:stateMachine:s").unwrap_or_else(|e| panic!("{e}"));
        let name = ExecutionName::new(&id, StartToken::new(0, 0));
        Record { status, ..Record::starting(&id, "f", &sm, &name, "null", 0, timings().lease_millis) }
    }

    #[test]
    fn starting_records_are_busy_until_their_lease_ends() {
        let starting = record(Status::Starting);
        assert_eq!(assess(&starting, 999, &timings()), Finding::Busy);
        assert_eq!(assess(&starting, 1_000, &timings()), Finding::Doubtful);
    }

    #[test]
    fn running_records_are_believed_for_the_reconcile_interval() {
        let running = Record { confirmed_at: Some(5_000), ..record(Status::Running) };
        assert_eq!(assess(&running, 14_999, &timings()), Finding::Busy);
        assert_eq!(assess(&running, 15_000, &timings()), Finding::Doubtful);
    }

    #[test]
    fn terminal_records_are_free() {
        for status in Status::TERMINAL {
            assert_eq!(assess(&record(status), 0, &timings()), Finding::Free);
        }
    }
}
