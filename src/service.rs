//! The singleton algorithms, generic over the two ports.

use crate::domain::launch::{LaunchVerdict, START_ATTEMPTS, StartAttempt, after_attempts};
use crate::domain::policy::{Decision, IdempotencyKey, RefusedRunning, StartPolicy, Trust, decide, refused_running};
use crate::domain::record::{REPLACED_ERROR, START_FAILED_ERROR, SUPERSEDED_ERROR, TERMINATED_ERROR};
use crate::domain::{ExecutionName, InstanceId, Millis, Record, StartToken, StateMachineArn, Status, StoredInput};
use crate::error::{Error, Result};
use crate::ports::{
    ClaimCondition, Conditional, Engine, EngineError, ExecutionState, ExecutionUpdate, InstanceStore, KeyClaim,
    KeyEntry, StoreError, WorkflowType,
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
    /// How long a start's `Idempotency-Key` replays its answer.
    pub idempotency_window_millis: Millis,
}

/// A start of one instance: what to start, with what, and how.
#[derive(Debug, Clone, Copy)]
pub struct StartRequest<'a> {
    pub instance_id: &'a InstanceId,
    pub function_name: &'a str,
    pub state_machine: &'a StateMachineArn,
    /// JSON text.
    pub input: &'a str,
    pub policy: &'a StartPolicy,
    /// The stop cause when `terminateExisting` stops a running execution.
    pub reason: Option<&'a str>,
    /// What the idempotency key's request asked for, when not the function
    /// and input (a restart's come from the record, which may change).
    pub request_digest: Option<&'a str>,
    /// At least this long an idempotency key holds (a schedule's occurrences
    /// can be redelivered for hours), whatever the configured window.
    pub min_key_window_millis: Millis,
}

/// What a start did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new execution.
    Started,
    /// A new execution, after stopping this one (`terminateExisting`).
    Replaced { terminated: String },
    /// None: the request's idempotency key started the current one.
    Replayed,
    /// None: the running one answers (`useExisting`).
    Existing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The execution the answer names: the new one, the running one
    /// (`useExisting`), or the one the request's idempotency key started.
    pub execution_arn: String,
    pub outcome: StartOutcome,
}

/// A Step Functions status change, as the status Lambda receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub execution_arn: String,
    pub name: String,
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

/// Whether an execution Step Functions reports was stopped by a replace: ABORTED with the
/// replace's error, or with none (a console stop is indistinguishable from one whose error
/// Step Functions did not keep).
fn stopped_by_replace(state: &ExecutionState) -> bool {
    state.status == Status::Aborted && state.error.as_deref().is_none_or(|error| error == REPLACED_ERROR)
}

/// What another request's live entry for the same idempotency key means.
enum HeldKey {
    /// Its execution exists: answer as it was answered.
    Replay(Started),
    /// Its request died before starting anything (its lease is over).
    Abandoned,
}

/// Claims can lose to concurrent starts that then turn out to be stale or
/// finished; past this many rounds the caller is told to retry.
const MAX_CLAIM_ROUNDS: usize = 4;

/// Full-jitter backoff before retry `attempt` (1, 2, …): up to 200 ms × 2^attempt, so a
/// throttled call waits up to 1.2 s over three attempts (within the function's time; the
/// SDK's standard backoff, up to 20 s, would not be).
async fn pause(attempt: usize) {
    let ceiling = 200u64 << attempt.min(6);
    tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(0..=ceiling))).await;
}

pub struct Singleton<S, E> {
    store: S,
    engine: E,
    timings: Timings,
    clock: Clock,
    standard: Option<Arc<StandardCheck>>,
}

/// The check that the configured state machines are Standard workflows.
/// Express ones emit no status events (an ID could never be freed) and have
/// no idempotent StartExecution (a retried start could run twice). It runs
/// once per cold start, in the background from init on, so that init does
/// not wait for Step Functions; the first start's claim runs alongside it,
/// and its StartExecution waits for its result. Other requests do not need it.
pub struct StandardCheck {
    state_machines: Vec<(String, StateMachineArn)>,
    /// Only a definite verdict is kept: a throttled or unanswered check is
    /// asked again by the next start, never cached for the container's life.
    verdict: tokio::sync::OnceCell<std::result::Result<(), String>>,
}

impl StandardCheck {
    pub fn new(state_machines: Vec<(String, StateMachineArn)>) -> Self {
        Self { state_machines, verdict: tokio::sync::OnceCell::new() }
    }

    /// Runs the check, or waits for the run under way, or returns its verdict.
    /// A transient failure is this call's error (503 to a start), not a verdict.
    pub async fn run<E: Engine>(&self, engine: &E) -> Result<()> {
        let verdict = self
            .verdict
            .get_or_try_init(|| async {
                for (function, state_machine) in &self.state_machines {
                    if let Err(misconfigured) = check_standard(engine, function, state_machine).await? {
                        tracing::error!(error = %misconfigured, "state machine check failed: starts are refused");
                        return Ok(Err(misconfigured));
                    }
                }
                Ok::<_, EngineError>(Ok(()))
            })
            .await
            .inspect_err(
                |error| tracing::warn!(%error, "state machine check not answered; the next start asks again"),
            )?;
        verdict.clone().map_err(Error::Misconfigured)
    }
}

/// `Ok(Err(why))` is a definite "unusable"; `Err` is Step Functions not answering.
async fn check_standard<E: Engine>(
    engine: &E,
    function: &str,
    state_machine: &StateMachineArn,
) -> std::result::Result<std::result::Result<(), String>, EngineError> {
    Ok(match engine.workflow_type(state_machine).await? {
        Some(WorkflowType::Standard) => Ok(()),
        Some(WorkflowType::Express) => Err(format!(
            "function {function:?}: {state_machine} is an EXPRESS state machine; sfn-singleton needs STANDARD \
             (Express workflows emit no status events and their StartExecution is not idempotent)"
        )),
        None => Err(format!("function {function:?}: state machine {state_machine} does not exist")),
    })
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    pub fn new(store: S, engine: E, timings: Timings, clock: Clock) -> Self {
        Self { store, engine, timings, clock, standard: None }
    }

    pub fn engine(&self) -> &E {
        &self.engine
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    fn now(&self) -> Millis {
        (self.clock)()
    }

    fn expires_at(&self, now: Millis) -> i64 {
        now / 1000 + self.timings.retention_secs
    }

    /// Checks that every one of `functions`' state machines exists and is a
    /// Standard workflow (see [`StandardCheck`]).
    pub async fn check_state_machines<'a>(
        &self,
        functions: impl IntoIterator<Item = (&'a String, &'a StateMachineArn)>,
    ) -> Result<()> {
        for (function, state_machine) in functions {
            check_standard(&self.engine, function, state_machine).await?.map_err(Error::Misconfigured)?;
        }
        Ok(())
    }

    /// Makes every start wait for `check` first.
    pub fn with_standard_check(self, check: Arc<StandardCheck>) -> Self {
        Self { standard: Some(check), ..self }
    }

    /// The claim condition of a fresh start under `policy`.
    fn free(&self, policy: &StartPolicy, now: Millis) -> ClaimCondition {
        ClaimCondition::Free {
            reusable: policy.reuse.reusable(),
            not_started_by: policy.idempotency_key.as_ref().map(|key| (key.hash().to_owned(), now)),
        }
    }

    /// Starts the instance unless an execution of it is starting or running
    /// (or whatever the request's policy says instead).
    /// Happy path: one conditional put, one StartExecution. Refusal: one put.
    /// With an idempotency key, one more put first: the key's own entry.
    pub async fn start(&self, request: StartRequest<'_>) -> Result<Started> {
        let now = self.now();
        let name = ExecutionName::new(request.instance_id, StartToken::generate(now));
        let Some(key) = &request.policy.idempotency_key else {
            return self.claim_and_launch(request, &name, now).await;
        };
        let entry = KeyEntry {
            key_hash: key.hash().to_owned(),
            instance_key: request.instance_id.key(),
            execution_name: name.as_str().to_owned(),
            execution_arn: request.state_machine.execution_arn(&name),
            request_digest: request
                .request_digest
                .map_or_else(|| IdempotencyKey::request_digest(request.function_name, request.input), str::to_owned),
            began: now,
            until: now + self.key_window(request),
        };
        if let Some(replayed) = self.hold_key(&entry, request).await? {
            return Ok(replayed);
        }
        let started = self.claim_and_launch(request, &name, now).await;
        // Started nothing, and no attempt of it may have: the key's retry is evaluated afresh.
        // (A claim or stop that failed may have landed: the record's own key check covers that.)
        let gave_up = match &started {
            Ok(Started { outcome, .. }) => *outcome == StartOutcome::Existing,
            Err(error) => !matches!(error, Error::StartUnconfirmed { .. }),
        };
        if gave_up && let Err(error) = self.store.delete_key(&entry.key_hash, &entry.execution_name).await {
            // Its retry gets 409 StillStarting until the start's lease ends, then starts afresh.
            tracing::warn!(%error, "the idempotency key's entry could not be released");
        }
        started
    }

    /// How long the request's idempotency key holds.
    fn key_window(&self, request: StartRequest<'_>) -> Millis {
        self.timings.idempotency_window_millis.max(request.min_key_window_millis)
    }

    /// The answer an earlier request with this key got, if its entry is live:
    /// read before a restart reads the record (which may have changed since).
    pub async fn replayed(
        &self,
        instance_id: &InstanceId,
        key: &IdempotencyKey,
        digest: &str,
    ) -> Result<Option<Started>> {
        let now = self.now();
        let Some(held) = self.store.get_key(key.hash()).await?.filter(|held| held.until > now) else {
            return Ok(None);
        };
        Ok(match self.judge_held(&held, digest, instance_id, now).await? {
            HeldKey::Replay(started) => Some(started),
            HeldKey::Abandoned => None,
        })
    }

    /// What a live entry of another request with the same key means for this one.
    async fn judge_held(
        &self,
        held: &KeyEntry,
        digest: &str,
        instance_id: &InstanceId,
        now: Millis,
    ) -> Result<HeldKey> {
        if held.request_digest != digest {
            return Err(Error::IdempotencyKeyReused(instance_id.to_string()));
        }
        if self.engine.describe(&held.execution_arn).await?.is_some() {
            let started = Started { execution_arn: held.execution_arn.clone(), outcome: StartOutcome::Replayed };
            return Ok(HeldKey::Replay(started));
        }
        // Not started (yet): the first request may still be at it.
        if now < held.began + self.timings.lease_millis {
            return Err(Error::StillStarting(instance_id.to_string()));
        }
        // It died before starting anything.
        Ok(HeldKey::Abandoned)
    }

    /// Holds the request's idempotency key for its window, or answers as the
    /// key's first request did. The entry is apart from the record, so a key's
    /// retry replays its start even after the record was replaced or purged.
    async fn hold_key(&self, entry: &KeyEntry, request: StartRequest<'_>) -> Result<Option<Started>> {
        for _ in 0..MAX_CLAIM_ROUNDS {
            let now = self.now();
            let held = match self.store.put_key(entry, now).await? {
                KeyClaim::Written => return Ok(None),
                KeyClaim::Taken(Some(held)) => *held,
                // The store did not say what holds it: read it once.
                KeyClaim::Taken(None) => match self.store.get_key(&entry.key_hash).await? {
                    Some(held) if held.until > now => held,
                    _ => continue,
                },
            };
            // Our own put, whose answer was lost to the SDK's retry.
            if held.execution_name == entry.execution_name {
                return Ok(None);
            }
            match self.judge_held(&held, &entry.request_digest, request.instance_id, now).await? {
                HeldKey::Replay(started) => return Ok(Some(started)),
                // The key is this request's now.
                HeldKey::Abandoned if self.store.replace_key(entry, &held.execution_name).await? => return Ok(None),
                HeldKey::Abandoned => {}
            }
        }
        Err(Error::Contention(request.instance_id.to_string()))
    }

    /// The start itself: claim (deciding on whatever is in the way), then launch.
    async fn claim_and_launch(&self, request: StartRequest<'_>, name: &ExecutionName, now: Millis) -> Result<Started> {
        let policy = request.policy;
        let mut record = Record::starting(
            request.instance_id,
            request.function_name,
            request.state_machine,
            name,
            request.input,
            now,
            self.timings.lease_millis,
        );
        if let Some(key) = &policy.idempotency_key {
            record.idempotency_key_hash = Some(key.hash().to_owned());
            record.idempotency_until = Some(now + self.key_window(request));
        }
        let already_exists = || Error::AlreadyExists(request.instance_id.to_string());
        let mut condition = self.free(policy, now);
        // The execution this start stopped (terminateExisting): it stops at most one.
        let mut stopped: Option<String> = None;
        let mut claimed = Some(self.first_claim(&record, name, &condition).await?);
        for _ in 0..MAX_CLAIM_ROUNDS {
            let claim = match claimed.take() {
                Some(first) => first,
                None => self.store.claim(&record, &condition).await?,
            };
            let refused_by = match claim {
                Conditional::Written => None,
                Conditional::Refused(Some(current)) => Some(*current),
                // The store did not say what refused the claim: read it once.
                Conditional::Refused(None) => match self.store.get(&record.key).await? {
                    Some(current) => Some(current),
                    None => {
                        condition = self.free(policy, now);
                        continue;
                    }
                },
            };
            // Refused by our own claim: the SDK retried a put whose first
            // answer was lost, and that first attempt wrote it. It is ours.
            let current = match refused_by {
                Some(current) if !current.is_same_claim(&record) => current,
                _ => {
                    let record = self.launch(record, name, request).await?;
                    let outcome =
                        stopped.map_or(StartOutcome::Started, |terminated| StartOutcome::Replaced { terminated });
                    return Ok(Started { execution_arn: record.execution_arn, outcome });
                }
            };
            let now = self.now();
            let mut decision =
                decide(&current, policy, now, Trust::of(&current, now, self.timings.reconcile_after_millis));
            let current = if decision == Decision::Verify {
                match self.verify(&current).await? {
                    // Not started, and its starter may still be at it.
                    None if current.starter_may_be_alive(now) => {
                        return Err(Error::StillStarting(request.instance_id.to_string()));
                    }
                    // Its starter died before starting it: take the record over.
                    None => {
                        condition = ClaimCondition::takeover(current.execution_name);
                        continue;
                    }
                    Some(known) => {
                        // (A newer claim found in its place is not trusted: found by the model check.)
                        let trust = Trust::after_verifying(&current, &known, now, self.timings.reconcile_after_millis);
                        decision = decide(&known, policy, now, trust);
                        known
                    }
                }
            } else {
                current
            };
            let current = if decision == Decision::Replace && stopped.is_none() {
                // Stop it, then read it back (as terminate does): one that had just ended on its
                // own is an ended run, under the reuse policy, not one this start terminated.
                let cause = request.reason.unwrap_or("replaced by a new start (onConflict=terminateExisting)");
                if self.engine.stop(&current.execution_arn, REPLACED_ERROR, cause).await?.is_none() {
                    // Claimed, not started yet, its starter within its lease.
                    return Err(Error::StillStarting(request.instance_id.to_string()));
                }
                tracing::info!(execution_arn = %current.execution_arn, "stopped, to be replaced");
                match self.engine.describe(&current.execution_arn).await? {
                    // Ended on its own, or stopped by someone else with an error of theirs (a terminate):
                    // record how, and decide as for any ended run.
                    Some(ended) if ended.status.is_terminal() && !stopped_by_replace(&ended) => {
                        let known = self.write_back(&current, ended).await?;
                        if known.execution_arn != current.execution_arn {
                            // A newer start replaced it meanwhile: that one stands.
                            return Err(already_exists());
                        }
                        decision = decide(&known, policy, now, Trust::CONFIRMED);
                        known
                    }
                    // Stopped (or, read too soon, still shown running: the stop stands). Its
                    // ABORTED, with the replace's error, reaches the record by its event unless
                    // this start's claim lands first.
                    Some(_) => {
                        stopped = Some(current.execution_arn.clone());
                        current
                    }
                    None => return Err(Error::StillStarting(request.instance_id.to_string())),
                }
            } else {
                current
            };
            condition = match decision {
                Decision::Replay => {
                    return Ok(Started { execution_arn: current.execution_arn, outcome: StartOutcome::Replayed });
                }
                Decision::UseExisting => {
                    return Ok(Started { execution_arn: current.execution_arn, outcome: StartOutcome::Existing });
                }
                Decision::Reject => return Err(already_exists()),
                Decision::ReuseForbidden => {
                    return Err(Error::ReuseForbidden {
                        instance_id: request.instance_id.to_string(),
                        status: current.status,
                        reuse: policy.reuse,
                    });
                }
                Decision::Reuse | Decision::Verify => self.free(policy, now),
                // The one this start stopped (above): claim conditional on it, under the reuse policy.
                Decision::Replace if stopped.as_deref() == Some(current.execution_arn.as_str()) => {
                    ClaimCondition::replacing(current.execution_name, policy.reuse)
                }
                // A newer start replaced the one this start stopped: that one stands.
                Decision::Replace => return Err(already_exists()),
                Decision::FinishReplace => {
                    stopped = Some(current.execution_arn);
                    ClaimCondition::replacing(current.execution_name, policy.reuse)
                }
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
        self.write_back(record, state).await.map(Some)
    }

    /// Writes what Step Functions says of the record's execution back (if the
    /// record still names it, unended); the record as it now stands.
    async fn write_back(&self, record: &Record, state: ExecutionState) -> Result<Record> {
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
        Ok(current)
    }

    /// A record that has not been confirmed for too long, made true.
    async fn reconcile(&self, record: Record) -> Result<Record> {
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
        };
        let written = match self.store.apply(&record.key, &update).await? {
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

    /// Deletes a terminal instance's record.
    ///
    /// The attempts are the service's own (the store makes one per call): when
    /// an attempt got no answer, its delete may have landed, and a later
    /// attempt that finds nothing found its own work, not a missing instance.
    pub async fn purge(&self, instance_id: &InstanceId) -> Result<()> {
        let key = instance_id.key();
        let (mut failed_attempts, mut rounds, mut may_have_deleted) = (0, 0, false);
        loop {
            let refused = match self.store.purge(&key).await {
                Ok(Conditional::Written) => return Ok(()),
                Ok(Conditional::Refused(refused)) => refused,
                Err(error) => {
                    may_have_deleted |= matches!(error, StoreError::Unavailable(_));
                    failed_attempts += 1;
                    if failed_attempts >= START_ATTEMPTS || !error.is_transient() {
                        return Err(error.into());
                    }
                    pause(failed_attempts).await;
                    continue;
                }
            };
            let current = match refused {
                Some(current) => *current,
                None => match self.store.get(&key).await? {
                    Some(current) => current,
                    None if may_have_deleted => return Ok(()),
                    None => return Err(Error::InstanceNotFound(instance_id.to_string())),
                },
            };
            if !self.reconcile(current).await?.status.is_terminal() {
                return Err(Error::StillRunning(instance_id.to_string()));
            }
            rounds += 1;
            if rounds >= MAX_CLAIM_ROUNDS {
                return Err(Error::Contention(instance_id.to_string()));
            }
        }
    }

    /// Writes a status event back. Idempotent and order-proof: the store's
    /// condition lets only news about the current execution through.
    pub async fn apply_event(&self, change: StatusChange) -> Result<EventOutcome> {
        let Some(key) = ExecutionName::instance_key(&change.name) else {
            return Ok(EventOutcome::NotOurs);
        };
        let now = self.now();
        let running = change.state.status == Status::Running;
        let mut state = change.state;
        if change.output_omitted && state.output.is_none() && state.status.is_terminal() {
            // Fetched, then cut to what a record keeps, like any output over the bound.
            let described = self.engine.describe(&change.execution_arn).await?;
            state.output = described.and_then(|described| described.output);
        }
        let update = ExecutionUpdate {
            execution_arn: change.execution_arn,
            expires_at: (!running).then(|| self.expires_at(now)),
            state: state.bounded(),
            observed_at: now,
            // A RUNNING event only confirms a claim; a redrive (higher count) always applies. A claim
            // released as START_FAILED on Step Functions' word (DescribeExecution is eventually
            // consistent) whose execution turns out to exist takes its events: it runs, so the ID is busy.
            from: if running {
                &[Status::Starting, Status::StartFailed]
            } else {
                &[Status::Starting, Status::Running, Status::StartFailed]
            },
        };
        let current = match self.store.apply(&key, &update).await? {
            Conditional::Written => return Ok(EventOutcome::Applied),
            _ if !running => return Ok(EventOutcome::Ignored),
            Conditional::Refused(Some(current)) => Some(*current),
            Conditional::Refused(None) => self.store.get(&key).await?,
        };
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
                Ok(EventOutcome::StoppedSuperseded)
            }
        }
    }

    /// Gives a claim up (START_FAILED) when its execution will not be started.
    async fn release(&self, record: &Record, name: &ExecutionName, reason: &str) {
        let now = self.now();
        match self.store.mark_start_failed(&record.key, name.as_str(), reason, now, self.expires_at(now)).await {
            Ok(wrote) => tracing::warn!(%reason, wrote, "not started; claim released"),
            // The lease still frees the ID in the end.
            Err(e) => tracing::error!(%reason, error = %e, "not started, and the claim could not be released"),
        }
    }

    /// The first claim of a start, at the same time as the state machine
    /// check on a cold start's first start (later ones find its result).
    async fn first_claim(
        &self,
        record: &Record,
        name: &ExecutionName,
        condition: &ClaimCondition,
    ) -> Result<Conditional> {
        let Some(check) = &self.standard else {
            return Ok(self.store.claim(record, condition).await?);
        };
        let (claimed, checked) = tokio::join!(self.store.claim(record, condition), check.run(&self.engine));
        if let Err(misconfigured) = checked {
            if matches!(claimed, Ok(Conditional::Written)) {
                self.release(record, name, &misconfigured.to_string()).await;
            }
            return Err(misconfigured);
        }
        Ok(claimed?)
    }

    /// The second call of a start. The claim is ours; make the execution exist or give the claim up.
    ///
    /// The attempts are the service's own (the adapter makes one per call), because what
    /// decides is what *each* attempt did (see `domain::launch`).
    async fn launch(&self, record: Record, name: &ExecutionName, request: StartRequest<'_>) -> Result<Record> {
        let mut attempts = Vec::with_capacity(START_ATTEMPTS);
        let mut last_error = None;
        loop {
            let answer = self.engine.start(request.state_machine, name, request.input).await;
            attempts.push(match &answer {
                Ok(()) => StartAttempt::Started,
                Err(EngineError::Ambiguous(_)) => StartAttempt::Unanswered,
                Err(EngineError::ExecutionAlreadyExists) => StartAttempt::AlreadyExists,
                Err(EngineError::Throttled { .. }) => StartAttempt::Throttled,
                Err(EngineError::Refused { caller_fault: true, .. }) => StartAttempt::Invalid,
                Err(EngineError::Refused { .. }) => StartAttempt::Refused,
            });
            if let Err(error) = answer {
                tracing::warn!(%error, attempt = attempts.len(), "StartExecution attempt failed");
                last_error = Some(error);
            }
            match after_attempts(&attempts) {
                LaunchVerdict::Started => return Ok(record),
                LaunchVerdict::Retry => pause(attempts.len()).await,
                LaunchVerdict::AskStepFunctions => {
                    return match self.engine.describe(&record.execution_arn).await {
                        Ok(Some(_)) => Ok(record),
                        // Not (yet) known, or no answer: the lease decides.
                        Ok(None) | Err(_) => Err(Error::StartUnconfirmed {
                            instance_id: record.instance_id,
                            reason: last_error.map_or_else(|| "no answer".to_owned(), |e| e.to_string()),
                        }),
                    };
                }
                LaunchVerdict::Release => {
                    let refusal = last_error.unwrap_or(EngineError::Ambiguous("no answer".to_owned()));
                    self.release(&record, name, &refusal.to_string()).await;
                    return Err(Error::StartRefused(refusal));
                }
            }
        }
    }
}

/// The service's rules on in-memory ports (`crate::memory`): no emulator,
/// the store's real conditions, faults one call at a time.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::{ConflictPolicy, ReusePolicy};
    use crate::memory::{EngineOp, MemoryEngine, MemoryStore, Scripted, StoreFault, StoreOp};
    use std::sync::atomic::{AtomicI64, Ordering};

    const LEASE: Millis = 60_000;

    struct Given {
        service: Singleton<MemoryStore, MemoryEngine>,
        now: Arc<AtomicI64>,
        id: InstanceId,
        machine: StateMachineArn,
    }

    fn given() -> Given {
        let machine = StateMachineArn::parse("arn:aws:states:us-east-1:123456789012:stateMachine:Orders")
            .unwrap_or_else(|e| panic!("{e}"));
        let now = Arc::new(AtomicI64::new(1_000_000));
        let clock_now = now.clone();
        let clock: Clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
        let timings = Timings {
            lease_millis: LEASE,
            reconcile_after_millis: 300_000,
            retention_secs: 86_400,
            idempotency_window_millis: 600_000,
        };
        let engine = MemoryEngine::with_state_machines([&machine]);
        let service = Singleton::new(MemoryStore::new(), engine, timings, clock);
        Given { service, now, id: InstanceId::parse("order-1").unwrap_or_else(|e| panic!("{e}")), machine }
    }

    impl Given {
        async fn start_with(&self, policy: StartPolicy, input: &str) -> Result<Started> {
            self.service
                .start(StartRequest {
                    instance_id: &self.id,
                    function_name: "Orders",
                    state_machine: &self.machine,
                    input,
                    policy: &policy,
                    reason: None,
                    request_digest: None,
                    min_key_window_millis: 0,
                })
                .await
        }

        async fn start(&self) -> Result<Started> {
            self.start_with(StartPolicy::default(), "{}").await
        }

        fn keyed(&self, key: &str) -> StartPolicy {
            let key = IdempotencyKey::parse(key, self.id.key().as_str()).unwrap_or_else(|e| panic!("{e}"));
            StartPolicy { idempotency_key: Some(key), ..StartPolicy::default() }
        }

        fn record(&self) -> Option<Record> {
            self.service.store().record(&self.id.key())
        }

        fn advance(&self, millis: Millis) {
            self.now.fetch_add(millis, Ordering::SeqCst);
        }

        /// The execution ends, and its event is delivered.
        async fn ends(&self, execution_arn: &str, status: Status) {
            self.service.engine().end(execution_arn, status, 0);
            let outcome = self.service.apply_event(self.event(execution_arn)).await;
            assert_eq!(outcome.ok(), Some(EventOutcome::Applied));
        }

        /// The status event Step Functions would send now for the execution.
        fn event(&self, execution_arn: &str) -> StatusChange {
            let state = self.service.engine().state(execution_arn).unwrap_or_else(|| panic!("no {execution_arn}"));
            let name = execution_arn.rsplit(':').next().unwrap_or_default().to_owned();
            StatusChange { execution_arn: execution_arn.to_owned(), name, state, output_omitted: false }
        }
    }

    fn arn_of(started: &Result<Started>) -> String {
        started.as_ref().map(|s| s.execution_arn.clone()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_start_of_a_running_id_is_refused_and_starts_nothing() {
        let given = given();
        let first = given.start().await;
        assert_eq!(first.as_ref().map(|s| &s.outcome).ok(), Some(&StartOutcome::Started));
        assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))));
        assert_eq!(given.service.engine().running(), vec![arn_of(&first)]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_took_effect_then_throttles_never_releases_the_claim() {
        let given = given();
        let engine = given.service.engine();
        engine.script(EngineOp::Start, Scripted::LandsThenFails);
        let throttled = EngineError::Throttled { code: "ThrottlingException".into(), message: "slow down".into() };
        engine.script(EngineOp::Start, Scripted::Fails(throttled.clone()));
        engine.script(EngineOp::Start, Scripted::Fails(throttled));
        let started = given.start().await;
        assert_eq!(given.record().map(|r| r.status), Some(Status::Starting), "never released");
        assert_eq!(engine.running(), vec![arn_of(&started)]);
        assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_no_attempt_survived_releases_the_claim_at_once() {
        let given = given();
        let refused =
            EngineError::Refused { code: "AccessDeniedException".into(), message: "no".into(), caller_fault: false };
        given.service.engine().script(EngineOp::Start, Scripted::Fails(refused));
        assert!(matches!(given.start().await, Err(Error::StartRefused(_))));
        assert_eq!(given.record().map(|r| r.status), Some(Status::StartFailed));
        assert!(given.start().await.is_ok(), "the ID starts again at once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_starters_claim_is_taken_over_after_its_lease_only() {
        let given = given();
        given.service.engine().script(EngineOp::Start, Scripted::Hangs);
        let dying = tokio::time::timeout(std::time::Duration::from_millis(50), given.start()).await;
        assert!(dying.is_err(), "the starter hung");
        assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))), "within the lease");
        given.advance(LEASE);
        let taken = given.start().await;
        assert_eq!(given.service.engine().running(), vec![arn_of(&taken)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_terminal_event_is_healed_by_a_status_read() {
        let given = given();
        let arn = arn_of(&given.start().await);
        given.service.engine().end(&arn, Status::Succeeded, 0);
        assert_eq!(given.service.status(&given.id).await.ok().flatten().map(|r| r.status), Some(Status::Starting));
        given.advance(LEASE);
        assert_eq!(given.service.status(&given.id).await.ok().flatten().map(|r| r.status), Some(Status::Succeeded));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_replays_its_start_after_the_record_was_replaced_or_purged() {
        let given = given();
        let first = arn_of(&given.start_with(given.keyed("k-1"), r#"{"n":1}"#).await);
        given.ends(&first, Status::Succeeded).await;
        let other = arn_of(&given.start_with(StartPolicy::default(), r#"{"n":2}"#).await);
        given.ends(&other, Status::Succeeded).await;
        let retry = given.start_with(given.keyed("k-1"), r#"{"n":1}"#).await;
        assert_eq!(retry.ok(), Some(Started { execution_arn: first.clone(), outcome: StartOutcome::Replayed }));
        assert!(given.service.purge(&given.id).await.is_ok());
        let after_purge = given.start_with(given.keyed("k-1"), r#"{"n":1}"#).await;
        assert_eq!(after_purge.map(|s| s.execution_arn).ok(), Some(first));
        assert!(matches!(
            given.start_with(given.keyed("k-1"), r#"{"n":3}"#).await,
            Err(Error::IdempotencyKeyReused(_))
        ));
        assert_eq!(given.record(), None, "replays write no record");
    }

    #[tokio::test(start_paused = true)]
    async fn a_purge_whose_answer_was_lost_is_done_and_an_unknown_one_is_not_found() {
        let given = given();
        let arn = arn_of(&given.start().await);
        given.ends(&arn, Status::Failed).await;
        given.service.store().fail_next(StoreOp::Purge, StoreFault::LandsThenFails);
        assert!(given.service.purge(&given.id).await.is_ok());
        assert!(matches!(given.service.purge(&given.id).await, Err(Error::InstanceNotFound(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_redrive_after_the_record_was_deleted_is_stopped() {
        let given = given();
        let arn = arn_of(&given.start().await);
        given.ends(&arn, Status::Failed).await;
        given.service.store().expire(&given.id.key());
        given.service.engine().redrive(&arn);
        let outcome = given.service.apply_event(given.event(&arn)).await;
        assert_eq!(outcome.ok(), Some(EventOutcome::StoppedSuperseded));
        assert!(given.service.engine().running().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn terminate_existing_over_a_run_that_just_succeeded_keeps_the_reuse_policy() {
        let given = given();
        let arn = arn_of(&given.start().await);
        given.service.engine().end(&arn, Status::Succeeded, 0);
        let policy = StartPolicy {
            on_conflict: ConflictPolicy::TerminateExisting,
            reuse: ReusePolicy::AllowFailedOnly,
            idempotency_key: None,
        };
        assert!(matches!(given.start_with(policy, "{}").await, Err(Error::ReuseForbidden { .. })));
        assert_eq!(given.record().map(|r| r.status), Some(Status::Succeeded), "its real end");
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_state_machine_check_failure_fails_one_start_only() {
        let mut given = given();
        given.service = given
            .service
            .with_standard_check(Arc::new(StandardCheck::new(vec![("Orders".to_owned(), given.machine.clone())])));
        let throttled = EngineError::Throttled { code: "ThrottlingException".into(), message: "slow down".into() };
        given.service.engine().script(EngineOp::WorkflowType, Scripted::Fails(throttled));
        assert!(matches!(given.start().await, Err(Error::Engine(EngineError::Throttled { .. }))));
        assert!(given.start().await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_claim_whose_execution_turns_up_takes_its_events() {
        let given = given();
        given.service.engine().script(EngineOp::Start, Scripted::Fails(EngineError::Ambiguous("lost".into())));
        given.service.engine().script(EngineOp::Start, Scripted::Fails(EngineError::Ambiguous("lost".into())));
        given.service.engine().script(EngineOp::Start, Scripted::Fails(EngineError::Ambiguous("lost".into())));
        assert!(matches!(given.start().await, Err(Error::StartUnconfirmed { .. })));
        given.advance(LEASE);
        let released = given.service.status(&given.id).await.ok().flatten();
        assert_eq!(released.as_ref().map(|r| r.status), Some(Status::StartFailed));
        // The lost attempt lands after all.
        let record = released.unwrap_or_else(|| panic!("no record"));
        given.service.engine().land(&record.execution_arn, "{}");
        let outcome = given.service.apply_event(given.event(&record.execution_arn)).await;
        assert_eq!(outcome.ok(), Some(EventOutcome::Applied));
        assert_eq!(given.record().map(|r| r.status), Some(Status::Running));
    }
}
