//! Model check of the singleton protocol with Stateright: every interleaving
//! of concurrent starts (which may die between their claim and
//! StartExecution), the store's conditional writes, executions that end in
//! any status or are redriven from outside, status events that are lost,
//! duplicated and reordered, status reads that reconcile, terminate, and time
//! passing (leases, the confirmation interval) — for one instance ID.
//!
//! The decisions are the crate's own: `decide` and `Trust` (what a refused
//! start does), `ClaimCondition::permits` (DynamoDB's claim condition),
//! `ExecutionUpdate::permits` / `applied_to` (the status write),
//! `Trust::after_verifying`, `ExecutionState::after_stop`,
//! `Record::is_same_claim` and `Record::starter_may_be_alive`. The steps between
//! them mirror `Singleton::start`, `apply_event`, `reconcile` and
//! `terminate` one AWS call per step, since a step is where another actor
//! can interleave.
//!
//! Bounds: `SINGLETON_MODEL_BOUND=large` checks a larger model (minutes to
//! an hour on 2 cores); the default finishes in a few minutes.

use sfn_singleton_core::domain::launch::{LaunchVerdict, StartAttempt, after_attempts};
use sfn_singleton_core::domain::policy::{
    ConflictPolicy, Decision, IdempotencyKey, RefusedRunning, ReusePolicy, StartPolicy, Trust, decide, refused_running,
};
use sfn_singleton_core::domain::record::REPLACED_ERROR;
use sfn_singleton_core::domain::rewind::check_rewindable;
use sfn_singleton_core::domain::{
    ExecutionArn, ExecutionName, InstanceId, Millis, Record, StartToken, StateMachineArn, Status,
};
use sfn_singleton_core::ports::{ClaimCondition, ExecutionState, ExecutionUpdate};
use stateright::{Checker, Model, Property};
use std::fmt::Write as _;
use std::sync::Arc;

/// One tick of model time is one "second"; only their order matters.
const LEASE: Millis = 2;
const RECONCILE_AFTER: Millis = 2;
/// A starter lives this long at most (its function's timeout), less than the lease.
const STARTER_LIFETIME: Millis = 1;
/// `Singleton::start`'s bound on claim rounds.
const MAX_CLAIM_ROUNDS: u8 = 4;
const IDEMPOTENCY_WINDOW: Millis = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Algorithm {
    /// This project: one conditional claim, then StartExecution.
    ConditionalClaim,
    /// The control: read the record, and start unless it says running.
    ReadThenStart,
}

/// What a start request brings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Client {
    on_conflict: ConflictPolicy,
    reuse: ReusePolicy,
    key: Option<&'static str>,
}

/// The decisions under check: the crate's, or an old one a test shows the model catches.
#[derive(Clone, Copy)]
struct Decisions {
    launch: fn(&[StartAttempt]) -> LaunchVerdict,
    refused_running: fn(Option<&Record>, &ExecutionArn, u32) -> RefusedRunning,
    /// An idempotency key holds an entry of its own, apart from the record (issue 12, hole 4).
    key_entries: bool,
    /// A replace reads the stopped execution back before it claims (issue 18).
    verify_after_stop: bool,
    /// The cold start's state machine check keeps a transient failure for the
    /// container's life (the bug of issue 12, hole 6).
    cache_transient_check: bool,
    /// A rewind holds the record (a conditional claim) before its RedriveExecution (issue 14);
    /// the naive rewind redrives straight away, as the console does.
    guarded_rewind: bool,
}

impl std::fmt::Debug for Decisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decisions")
    }
}

const CRATE: Decisions = Decisions {
    launch: after_attempts,
    refused_running,
    key_entries: true,
    verify_after_stop: true,
    cache_transient_check: false,
    guarded_rewind: true,
};

#[derive(Clone, Debug)]
struct Protocol {
    algorithm: Algorithm,
    decisions: Decisions,
    clients: Vec<Client>,
    max_time: Millis,
    /// What this configuration must reach (`sometimes` properties), so that it checks something.
    expect: Vec<Reach>,
    /// Budgets of the environment's misbehaviour, to keep the model finite.
    losses: u8,
    duplicates: u8,
    redrives: u8,
    reads: u8,
    terminates: u8,
    attempt_faults: u8,
    deletes: u8,
    check_faults: u8,
    rewinds: u8,
    id: InstanceId,
    machine: StateMachineArn,
    /// Per request (the probe last): its execution's name and ARN and its policy, computed
    /// once (each is a digest or a parse, and the checker asks for them in every step).
    names: Vec<ExecutionName>,
    arns: Vec<ExecutionArn>,
    policies: Vec<StartPolicy>,
}

/// How often the environment may misbehave in one run.
#[derive(Clone, Copy, Debug, Default)]
struct Budgets {
    losses: u8,
    duplicates: u8,
    redrives: u8,
    reads: u8,
    terminates: u8,
    /// StartExecution attempts that fail: lost after taking effect, or throttled.
    attempt_faults: u8,
    /// Deletions of a terminal record (purge, or TTL, at any time).
    deletes: u8,
    /// The state machine check (run alongside a container's first claim) not answered.
    check_faults: u8,
    /// Rewinds (`POST /instances/{id}/rewind`), each of which may die between its claim and its redrive.
    rewinds: u8,
}

/// Situations a configuration must reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    Replay,
    Takeover,
    Replace,
    SupersededStop,
    /// A start whose attempts' word was not enough asks Step Functions.
    AskedAfterAttempts,
    /// A rewind redrives the ended execution.
    Rewind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Exec {
    NotStarted,
    Running { redrive: u32 },
    Ended { status: Status, redrive: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Event {
    exec: usize,
    status: StatusOrd,
    redrive: u32,
}

/// `Status`, ordered, so that the event multiset has one representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct StatusOrd(u8);

const STATUSES: [Status; 7] = [
    Status::Starting,
    Status::Running,
    Status::Succeeded,
    Status::Failed,
    Status::TimedOut,
    Status::Aborted,
    Status::StartFailed,
];

impl StatusOrd {
    fn of(status: Status) -> Self {
        StatusOrd(STATUSES.iter().position(|s| *s == status).unwrap_or(0) as u8)
    }
    fn status(self) -> Status {
        STATUSES[self.0 as usize]
    }
}

/// Where a start request is: one step per AWS call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Pc {
    NotBegun,
    Claim {
        condition: ClaimCondition,
    },
    /// `verify`: DescribeExecution of the record that refused the claim.
    Describe {
        current: Arc<Record>,
    },
    /// `verify`: the conditional write of what Step Functions said.
    VerifyWrite {
        current: Arc<Record>,
        state: ExecutionState,
    },
    /// `terminateExisting`: StopExecution of the running one.
    Stop {
        current: Arc<Record>,
    },
    /// `terminateExisting`: DescribeExecution of the stopped one, and the write of what it says.
    StopVerify {
        current: Arc<Record>,
    },
    /// The idempotency key's entry: its conditional put.
    PutKey,
    /// The key is held by another request's entry: DescribeExecution of its execution.
    KeyDescribe {
        held: KeyHeld,
    },
    /// StartExecution attempts of the claim, and what each answered.
    Launch {
        attempts: Vec<StartAttempt>,
    },
    /// The attempts left it open: DescribeExecution of the claim's execution.
    LaunchDescribe,
    /// The control: the read before the start.
    Read,
    /// The control: the (unconditional) write of its record, then StartExecution.
    Put,
    Done,
    Dead,
}

/// The idempotency key's entry (one key per model): whose execution, since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct KeyHeld {
    request: usize,
    began: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Request {
    pc: Pc,
    /// When it began: its claim's time, and its deadline.
    began: Millis,
    rounds: u8,
    stopped: bool,
}

/// A rewind (`Singleton::rewind`), one AWS call per step.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Rewinder {
    Idle,
    /// The record read and its execution described: the conditional claim next, for the
    /// count the redrive will give it (Step Functions' count + 1).
    Claim {
        ended: Arc<Record>,
        redrive_count: u32,
        began: Millis,
    },
    /// The claim written: RedriveExecution next.
    Redrive {
        rewinding: Arc<Record>,
        ended: Arc<Record>,
        began: Millis,
    },
}

/// A status read (`Singleton::status` → `reconcile`) or a terminate, one AWS call per step.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Side {
    Idle,
    /// Read: the record got, DescribeExecution next.
    ReadDescribe {
        record: Arc<Record>,
    },
    /// Read: the conditional write of what DescribeExecution said.
    ReadWrite {
        record: Arc<Record>,
        state: Option<ExecutionState>,
    },
    /// Terminate: the record got, StopExecution next.
    TerminateStop {
        record: Arc<Record>,
    },
    /// Terminate: the conditional write of `Aborted`.
    TerminateWrite {
        record: Arc<Record>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    now: Millis,
    record: Option<Arc<Record>>,
    /// Per start request: its execution (each start names its own).
    execs: Vec<Exec>,
    /// The execution the system started last.
    last_started: Option<usize>,
    /// Status events on their way to the status Lambda (a multiset).
    events: Vec<Event>,
    requests: Vec<Request>,
    reader: Side,
    terminator: Side,
    losses: u8,
    duplicates: u8,
    redrives: u8,
    reads: u8,
    terminates: u8,
    attempt_faults: u8,
    deletes: u8,
    key_entry: Option<KeyHeld>,
    check_faults: u8,
    rewinds: u8,
    rewinder: Rewinder,
    /// Per execution: the redrive count a rewind gave it (0: never rewound).
    rewound: Vec<u32>,
    /// The state machine check's verdict is known (it passed).
    check_passed: bool,
    /// A transient failure of the check was kept as its verdict (the old bug).
    check_broken: bool,
    /// Executions stopped by a replace (their ABORTED carries `REPLACED_ERROR`).
    replaced: Vec<bool>,
    /// A property violation seen in a step (an answer, or an event's handling).
    violation: Option<String>,
    /// Sanity: what the checked runs did reach.
    seen_replay: bool,
    seen_takeover: bool,
    seen_superseded_stop: bool,
    seen_replace: bool,
    seen_asked: bool,
    seen_rewind: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Action {
    Begin(usize),
    Step(usize),
    /// A StartExecution attempt that fails: `Unanswered` (it took effect, its
    /// answer was lost) or `Throttled` (nothing happened).
    AttemptFails(usize, StartAttempt),
    Die(usize),
    Tick,
    End(usize, Status),
    Redrive(usize),
    Deliver(usize),
    Duplicate(usize),
    Lose(usize),
    Read,
    Terminate,
    SideStep {
        terminate: bool,
    },
    /// A terminal record deleted (purge, or TTL).
    Delete,
    /// A rewind begins: it reads the record.
    Rewind,
    RewindStep,
    /// The rewinder dies between its claim and its redrive.
    RewinderDies,
    /// The state machine check run alongside this first claim is not answered (throttled).
    CheckFails(usize),
}

/// An answer a start gives, checked when given.
enum Answer {
    /// 202: a new execution, or a replay (Idempotency-Key).
    Accepted(usize),
    /// 409 naming the record that refused it, or 200 with it (useExisting).
    Refused(Arc<Record>),
    /// 409 StillStarting, 409 reuse forbidden, 503 contention: nothing named.
    RetryLater,
    /// 503 StartUnconfirmed: the claim stays, for the lease to decide.
    Unconfirmed,
}

/// What request `request` brings: the probe request (index `clients.len()`) is a plain start.
fn client_of(clients: &[Client], request: usize) -> Client {
    clients.get(request).cloned().unwrap_or(REJECT)
}

impl Protocol {
    fn new(algorithm: Algorithm, clients: Vec<Client>, max_time: Millis, budgets: Budgets, expect: Vec<Reach>) -> Self {
        let id = InstanceId::parse("order-1").unwrap_or_else(|e| panic!("{e}"));
        let machine = StateMachineArn::parse("arn:aws:states:us-east-1:123456789012:stateMachine:Orders")
            .unwrap_or_else(|e| panic!("{e}"));
        let requests = 0..clients.len() + 1;
        let names: Vec<_> = requests.clone().map(|r| ExecutionName::new(&id, StartToken::new(r as u64, 0))).collect();
        let arns = names.iter().map(|name| machine.execution_arn(name)).collect();
        let policies = requests
            .map(|r| {
                let client = client_of(&clients, r);
                StartPolicy {
                    on_conflict: client.on_conflict,
                    reuse: client.reuse,
                    idempotency_key: client
                        .key
                        .map(|k| IdempotencyKey::parse(k, id.key().as_str()).unwrap_or_else(|e| panic!("{e}"))),
                }
            })
            .collect();
        Protocol {
            algorithm,
            decisions: CRATE,
            clients,
            max_time,
            expect,
            losses: budgets.losses,
            duplicates: budgets.duplicates,
            redrives: budgets.redrives,
            reads: budgets.reads,
            terminates: budgets.terminates,
            attempt_faults: budgets.attempt_faults,
            deletes: budgets.deletes,
            check_faults: budgets.check_faults,
            rewinds: budgets.rewinds,
            id,
            machine,
            names,
            arns,
            policies,
        }
    }

    fn name(&self, request: usize) -> &ExecutionName {
        &self.names[request]
    }

    fn arn(&self, request: usize) -> &ExecutionArn {
        &self.arns[request]
    }

    fn exec_of(&self, record: &Record) -> usize {
        self.arns.iter().position(|arn| *arn == record.execution_arn).unwrap_or(usize::MAX)
    }

    fn policy(&self, request: usize) -> &StartPolicy {
        &self.policies[request]
    }

    fn client(&self, request: usize) -> Client {
        client_of(&self.clients, request)
    }

    /// The claim a request writes (`Singleton::start`).
    fn claim_record(&self, request: usize, began: Millis) -> Record {
        let mut record = Record::starting(&self.id, "Orders", &self.machine, self.name(request), "{}", began, LEASE);
        if let Some(key) = &self.policy(request).idempotency_key {
            record.idempotency_key_hash = Some(key.hash().to_owned());
            record.idempotency_until = Some(began + IDEMPOTENCY_WINDOW);
        }
        record
    }

    /// A replace's claim: conditional on the stopped run's record, under the reuse policy.
    fn replaces(&self, request: usize, current: &Record) -> ClaimCondition {
        ClaimCondition::replacing(current, self.policy(request).reuse)
    }

    fn free(&self, request: usize, began: Millis) -> ClaimCondition {
        let policy = self.policy(request);
        ClaimCondition::Free {
            reusable: policy.reuse.reusable(),
            not_started_by: policy.idempotency_key.as_ref().map(|key| (key.hash().to_owned(), began)),
        }
    }

    fn describe(&self, state: &State, record: &Record) -> Option<ExecutionState> {
        let exec = self.exec_of(record);
        let (status, redrive) = match state.execs.get(exec)? {
            Exec::NotStarted => return None,
            Exec::Running { redrive } => (Status::Running, *redrive),
            Exec::Ended { status, redrive } => (*status, *redrive),
        };
        Some(Self::state_of(state, exec, status, redrive))
    }

    /// What Step Functions says of an execution in `status` (a replace's stop carries its error).
    fn state_of(state: &State, exec: usize, status: Status, redrive: u32) -> ExecutionState {
        let replaced = status == Status::Aborted && state.replaced.get(exec).copied().unwrap_or(false);
        ExecutionState {
            status,
            redrive_count: redrive,
            stop_date: None,
            output: None,
            error: replaced.then(|| REPLACED_ERROR.to_owned()),
            cause: None,
            input: None,
        }
    }

    /// StopExecution: `None` when the execution does not exist.
    fn stop(&self, state: &mut State, exec: usize) -> Option<()> {
        match state.execs[exec] {
            Exec::NotStarted => None,
            Exec::Running { redrive } => {
                state.execs[exec] = Exec::Ended { status: Status::Aborted, redrive };
                emit(state, exec, Status::Aborted, redrive);
                Some(())
            }
            Exec::Ended { .. } => Some(()),
        }
    }

    /// The store's conditional write of Step Functions' word (`InstanceStore::apply`).
    fn apply(state: &mut State, update: &ExecutionUpdate) -> bool {
        match &state.record {
            Some(record) if update.permits(record) => {
                state.record = Some(Arc::new(update.applied_to(record)));
                true
            }
            _ => false,
        }
    }

    fn update(
        &self,
        record: &Record,
        exec_state: ExecutionState,
        now: Millis,
        from: &'static [Status],
    ) -> ExecutionUpdate {
        let terminal = exec_state.status.is_terminal();
        ExecutionUpdate {
            execution_arn: record.execution_arn.clone(),
            state: exec_state,
            observed_at: now,
            from,
            expires_at: terminal.then_some(now),
            rewind_token: None,
        }
    }

    /// `Singleton::write_back`: Step Functions' word on the record's execution, written
    /// if the record still names it; a rewind's hold whose redrive has not happened
    /// takes how the run ended once its lease ends. The record as it now stands.
    fn write_back(&self, state: &mut State, record: &Record, exec_state: ExecutionState) -> Arc<Record> {
        let now = state.now;
        let not_redriven = exec_state.status.is_terminal() && exec_state.redrive_count < record.redrive_count;
        let update = if record.status == Status::Redriving && not_redriven {
            if !record.lease_expired(now) {
                return Arc::new(Record::clone(record));
            }
            ExecutionUpdate { rewind_token: record.rewind_token.clone(), ..self.update(record, exec_state, now, &[]) }
        } else {
            self.update(record, exec_state, now, &[Status::Starting, Status::Running, Status::Redriving])
        };
        if Self::apply(state, &update) {
            Arc::new(update.applied_to(record))
        } else {
            state.record.clone().unwrap_or_else(|| Arc::new(update.applied_to(record)))
        }
    }

    /// One step of the rewind (`Singleton::rewind`, then `redrive`).
    fn rewind_step(&self, state: &mut State) {
        let now = state.now;
        state.rewinder = match state.rewinder.clone() {
            Rewinder::Idle => Rewinder::Idle,
            Rewinder::Claim { ended, redrive_count, began } => {
                if ClaimCondition::rewinds(&ended).permits(state.record.as_deref()) {
                    // Each rewind's own token (random in the service): the budget left names it.
                    let token = format!("rewind-{}", state.rewinds);
                    let rewinding = Arc::new(ended.rewinding(&token, redrive_count, now, LEASE));
                    state.record = Some(Arc::clone(&rewinding));
                    Rewinder::Redrive { rewinding, ended, began }
                } else {
                    Rewinder::Idle
                }
            }
            Rewinder::Redrive { rewinding, ended, .. } => {
                let exec = self.exec_of(&rewinding);
                match state.execs.get(exec).copied() {
                    // RedriveExecution: FAILED, TIMED_OUT and ABORTED executions run again.
                    Some(Exec::Ended { status, redrive }) if status != Status::Succeeded => {
                        state.execs[exec] = Exec::Running { redrive: redrive + 1 };
                        state.rewound[exec] = redrive + 1;
                        state.seen_rewind = true;
                        emit(state, exec, Status::Running, redrive + 1);
                    }
                    // Refused (it runs, or succeeded): the hold given back as the record was read.
                    _ => {
                        let as_read = ExecutionState {
                            status: ended.status,
                            redrive_count: ended.redrive_count,
                            stop_date: ended.stop_date,
                            output: None,
                            error: ended.error.clone(),
                            cause: None,
                            input: None,
                        };
                        let update = ExecutionUpdate {
                            rewind_token: rewinding.rewind_token.clone(),
                            ..self.update(&rewinding, as_read, now, &[])
                        };
                        Self::apply(state, &update);
                    }
                }
                Rewinder::Idle
            }
        };
    }

    fn answer(&self, state: &mut State, request: usize, answer: Answer) {
        state.requests[request].pc = Pc::Done;
        // A keyed start that started nothing gives its entry up (`Singleton::start`).
        let gave_up = match &answer {
            Answer::Accepted(exec) => *exec != request,
            Answer::Refused(_) | Answer::RetryLater => true,
            Answer::Unconfirmed => false,
        };
        if gave_up && state.key_entry.is_some_and(|held| held.request == request) {
            state.key_entry = None;
        }
        let problem = match answer {
            Answer::Accepted(exec) if state.execs.get(exec).is_none_or(|e| *e == Exec::NotStarted) => {
                Some(format!("request {request} answered 202 naming execution {exec}, which was never started"))
            }
            Answer::Refused(record) => {
                let exec = self.exec_of(&record);
                let trusted = !Trust::of(&record, state.now, RECONCILE_AFTER).doubtful();
                match state.execs.get(exec) {
                    _ if record.status.is_terminal() => {
                        Some(format!("request {request} refused by ended execution {exec} ({})", record.status))
                    }
                    Some(Exec::Running { .. } | Exec::NotStarted) => None,
                    // Its end not seen yet: believed for the confirmation interval.
                    Some(Exec::Ended { .. }) if trusted => None,
                    other => Some(format!("request {request} refused by execution {exec} in state {other:?}")),
                }
            }
            _ => None,
        };
        if state.violation.is_none() {
            state.violation = problem;
        }
    }

    /// A refused claim: `Singleton::start`'s answer to the record in the way.
    fn refused(&self, state: &mut State, request: usize, current: Arc<Record>, decision: Decision) {
        let now = state.now;
        let next = match decision {
            Decision::Verify => Pc::Describe { current },
            Decision::Replay => {
                state.seen_replay = true;
                let exec = self.exec_of(&current);
                return self.answer(state, request, Answer::Accepted(exec));
            }
            Decision::UseExisting | Decision::Reject => {
                return self.answer(state, request, Answer::Refused(current));
            }
            Decision::ReuseForbidden => return self.answer(state, request, Answer::RetryLater),
            Decision::Reuse => Pc::Claim { condition: self.free(request, now) },
            Decision::Replace if state.requests[request].stopped => {
                return self.answer(state, request, Answer::Refused(current));
            }
            Decision::Replace => Pc::Stop { current },
            Decision::FinishReplace => {
                state.requests[request].stopped = true;
                Pc::Claim { condition: self.replaces(request, &current) }
            }
        };
        state.requests[request].pc = next;
    }

    fn step(&self, state: &mut State, request: usize) {
        let now = state.now;
        let began = state.requests[request].began;
        match state.requests[request].pc.clone() {
            Pc::Claim { condition } => {
                if state.requests[request].rounds == 0 {
                    // The first claim waits for the state machine check (`first_claim`).
                    if state.check_broken {
                        return self.answer(state, request, Answer::RetryLater);
                    }
                    state.check_passed = true;
                }
                let rounds = &mut state.requests[request].rounds;
                if *rounds == MAX_CLAIM_ROUNDS {
                    return self.answer(state, request, Answer::RetryLater);
                }
                *rounds += 1;
                let claim = self.claim_record(request, began);
                if condition.permits(state.record.as_deref()) {
                    // The reuse policy: the run it overwrites, if it ended on its own, ended in a reusable status.
                    if let Some(old) = &state.record
                        && let Some(Exec::Ended { status, .. }) = state.execs.get(self.exec_of(old))
                        && *status != Status::Aborted
                        && !self.policy(request).reuse.reusable().contains(status)
                    {
                        state.violation.get_or_insert(format!(
                            "request {request} claimed over a run that ended {status}, against its reuse policy"
                        ));
                    }
                    if matches!(condition, ClaimCondition::Replaces { .. }) && !state.requests[request].stopped {
                        state.seen_takeover = true;
                    }
                    state.record = Some(Arc::new(claim));
                    state.requests[request].pc = Pc::Launch { attempts: Vec::new() };
                    return;
                }
                let Some(current) = state.record.clone() else {
                    state.requests[request].pc = Pc::Claim { condition: self.free(request, began) };
                    return;
                };
                if current.is_same_claim(&claim) {
                    state.requests[request].pc = Pc::Launch { attempts: Vec::new() };
                    return;
                }
                let decision = decide(&current, self.policy(request), now, Trust::of(&current, now, RECONCILE_AFTER));
                self.refused(state, request, current, decision);
            }
            Pc::Describe { current } => match self.describe(state, &current) {
                Some(exec_state) => state.requests[request].pc = Pc::VerifyWrite { current, state: exec_state },
                None if current.starter_may_be_alive(now) => self.answer(state, request, Answer::RetryLater),
                None => {
                    state.requests[request].pc =
                        Pc::Claim { condition: ClaimCondition::takeover(current.execution_name.clone()) }
                }
            },
            Pc::VerifyWrite { current, state: exec_state } => {
                let known = self.write_back(state, &current, exec_state);
                let trust = Trust::after_verifying(&current, &known, now, RECONCILE_AFTER);
                let decision = decide(&known, self.policy(request), now, trust);
                let decision = if decision == Decision::Verify { Decision::Reuse } else { decision };
                self.refused(state, request, known, decision);
            }
            Pc::Stop { current } => {
                let exec = self.exec_of(&current);
                // `stop_to_replace`: a rewind's hold on a run that is not running is not stopped.
                if current.status == Status::Redriving
                    && self
                        .describe(state, &current)
                        .is_none_or(|d| d.status.is_terminal() && d.redrive_count < current.redrive_count)
                {
                    return self.answer(state, request, Answer::RetryLater);
                }
                let key = self.client(request).key;
                if key.is_some() && exec != request && self.client(exec).key == key {
                    state.violation.get_or_insert(format!("request {request} stops execution {exec} of its own key"));
                }
                if matches!(state.execs[exec], Exec::Running { .. }) {
                    state.replaced[exec] = true;
                }
                if self.stop(state, exec).is_none() {
                    return self.answer(state, request, Answer::RetryLater);
                }
                state.seen_replace = true;
                if self.decisions.verify_after_stop {
                    state.requests[request].pc = Pc::StopVerify { current };
                } else {
                    // The old replace: claimed on the execution name alone.
                    state.requests[request].stopped = true;
                    let condition = ClaimCondition::takeover(current.execution_name.clone());
                    state.requests[request].pc = Pc::Claim { condition };
                }
            }
            // `Singleton::verify` after the stop: DescribeExecution, the write of what it says.
            Pc::StopVerify { current } => {
                let Some(exec_state) = self.describe(state, &current) else {
                    return self.answer(state, request, Answer::RetryLater);
                };
                if !exec_state.status.is_terminal() || exec_state.status == Status::Aborted {
                    state.requests[request].stopped = true;
                    state.requests[request].pc = Pc::Claim { condition: self.replaces(request, &current) };
                    return;
                }
                // It had ended on its own: `write_back`, then decide as for any ended run.
                let known = self.write_back(state, &current, exec_state);
                if known.execution_arn != current.execution_arn {
                    return self.answer(state, request, Answer::Refused(known));
                }
                let decision = decide(&known, self.policy(request), now, Trust::CONFIRMED);
                self.refused(state, request, known, decision);
            }
            Pc::PutKey => {
                let rounds = &mut state.requests[request].rounds;
                if *rounds == MAX_CLAIM_ROUNDS {
                    return self.answer(state, request, Answer::RetryLater);
                }
                *rounds += 1;
                match state.key_entry {
                    Some(held) if held.request != request && now < held.began + IDEMPOTENCY_WINDOW => {
                        state.requests[request].pc = Pc::KeyDescribe { held };
                    }
                    _ => {
                        state.key_entry = Some(KeyHeld { request, began });
                        state.requests[request].pc = Pc::Claim { condition: self.free(request, began) };
                    }
                }
            }
            Pc::KeyDescribe { held } => {
                if state.execs[held.request] != Exec::NotStarted {
                    state.seen_replay = true;
                    return self.answer(state, request, Answer::Accepted(held.request));
                }
                if now < held.began + LEASE {
                    return self.answer(state, request, Answer::RetryLater);
                }
                // `replace_key`: conditional on the entry still naming that execution.
                if state.key_entry == Some(held) {
                    state.key_entry = Some(KeyHeld { request, began });
                    state.requests[request].pc = Pc::Claim { condition: self.free(request, began) };
                } else {
                    state.requests[request].pc = Pc::PutKey;
                }
            }
            // An attempt that gets its answer: started, or (same name, same input) already
            // running; `ExecutionAlreadyExists` once that execution has ended.
            Pc::Launch { attempts } => {
                let answered = match state.execs[request] {
                    Exec::NotStarted | Exec::Running { .. } => StartAttempt::Started,
                    Exec::Ended { .. } => StartAttempt::AlreadyExists,
                };
                self.attempt(state, request, attempts, answered);
            }
            Pc::LaunchDescribe => {
                state.seen_asked = true;
                match state.execs[request] {
                    Exec::NotStarted => self.answer(state, request, Answer::Unconfirmed),
                    _ => self.answer(state, request, Answer::Accepted(request)),
                }
            }
            Pc::Read => match state.record.clone() {
                Some(current) if !current.status.is_terminal() => self.answer(state, request, Answer::Refused(current)),
                _ => state.requests[request].pc = Pc::Put,
            },
            Pc::Put => {
                state.record = Some(Arc::new(self.claim_record(request, began)));
                state.requests[request].pc = Pc::Launch { attempts: Vec::new() };
            }
            Pc::NotBegun | Pc::Done | Pc::Dead => {}
        }
    }

    /// One StartExecution attempt of `request`'s claim and what it answered
    /// (`Singleton::launch`, with the decisions under check).
    fn attempt(&self, state: &mut State, request: usize, mut attempts: Vec<StartAttempt>, answered: StartAttempt) {
        let takes_effect = matches!(answered, StartAttempt::Started | StartAttempt::Unanswered);
        if takes_effect && state.execs[request] == Exec::NotStarted {
            state.execs[request] = Exec::Running { redrive: 0 };
            state.last_started = Some(request);
            emit(state, request, Status::Running, 0);
        }
        attempts.push(answered);
        match (self.decisions.launch)(&attempts) {
            LaunchVerdict::Started => self.answer(state, request, Answer::Accepted(request)),
            LaunchVerdict::Retry => state.requests[request].pc = Pc::Launch { attempts },
            LaunchVerdict::AskStepFunctions => state.requests[request].pc = Pc::LaunchDescribe,
            LaunchVerdict::Release => {
                // `mark_start_failed`: conditional on the claim still being this `Starting` one.
                let name = self.name(request);
                if let Some(current) = &mut state.record
                    && current.status == Status::Starting
                    && current.execution_name == name.as_str()
                {
                    let current = Arc::make_mut(current);
                    current.status = Status::StartFailed;
                    current.lease_until = None;
                }
                self.answer(state, request, Answer::RetryLater);
            }
        }
    }

    /// The status Lambda handles one event (`Singleton::apply_event`).
    fn deliver(&self, state: &mut State, event: Event) {
        let status = event.status.status();
        let running = status == Status::Running;
        let arn = self.arn(event.exec);
        let applied = match state.record.clone() {
            Some(record) => {
                let target = Record { execution_arn: arn.clone(), ..Record::clone(&record) };
                let exec_state = Self::state_of(state, event.exec, status, event.redrive);
                let from: &'static [Status] = if running {
                    &[Status::Starting, Status::Redriving]
                } else {
                    &[Status::Starting, Status::Running, Status::Redriving]
                };
                Self::apply(state, &self.update(&target, exec_state, state.now, from))
            }
            None => false,
        };
        if !applied && running {
            let decision = (self.decisions.refused_running)(state.record.as_deref(), arn, event.redrive);
            // DescribeExecution, then StopExecution if it still runs.
            if decision == RefusedRunning::StopIfRunning && matches!(state.execs[event.exec], Exec::Running { .. }) {
                self.stop(state, event.exec);
                state.seen_superseded_stop = true;
            }
        }
        // A redrive's event handled: unless the record names it, it must not run on.
        let named = state.record.as_deref().is_some_and(|r| r.execution_arn == *arn);
        if event.redrive > 0 && running && !named && matches!(state.execs[event.exec], Exec::Running { .. }) {
            state.violation.get_or_insert(format!("redriven execution {} runs on after its event", event.exec));
        }
    }

    /// One step of a status read or a terminate.
    fn side_step(&self, state: &mut State, terminate: bool) {
        let now = state.now;
        let side = if terminate { state.terminator.clone() } else { state.reader.clone() };
        let next = match side {
            Side::Idle => Side::Idle,
            Side::ReadDescribe { record } => {
                let described = self.describe(state, &record);
                Side::ReadWrite { record, state: described }
            }
            Side::ReadWrite { record, state: Some(exec_state) } => {
                self.write_back(state, &record, exec_state);
                Side::Idle
            }
            Side::ReadWrite { record, state: None } => {
                // `mark_start_failed`: DynamoDB's condition is `#status = STARTING AND #executionName = :name`.
                if let Some(current) = &mut state.record
                    && current.status == Status::Starting
                    && current.execution_name == record.execution_name
                {
                    let current = Arc::make_mut(current);
                    current.status = Status::StartFailed;
                    current.lease_until = None;
                }
                Side::Idle
            }
            Side::TerminateStop { record } => {
                let exec = self.exec_of(&record);
                match self.stop(state, exec) {
                    None => Side::Idle,
                    Some(()) => Side::TerminateWrite { record },
                }
            }
            Side::TerminateWrite { record } => {
                // `terminate` writes what DescribeExecution says if it ended on its own, else ABORTED.
                let aborted = ExecutionState {
                    status: Status::Aborted,
                    redrive_count: record.redrive_count,
                    stop_date: None,
                    output: None,
                    error: None,
                    cause: None,
                    input: None,
                };
                let ended = ExecutionState::after_stop(self.describe(state, &record), aborted);
                let update = self.update(&record, ended, now, &[Status::Starting, Status::Running]);
                Self::apply(state, &update);
                Side::Idle
            }
        };
        if terminate {
            state.terminator = next;
        } else {
            state.reader = next;
        }
    }

    /// A status read's first step: get, and `reconcile` only a doubtful record.
    fn begin_read(state: &State) -> Side {
        match &state.record {
            Some(record)
                if !record.status.is_terminal() && Trust::of(record, state.now, RECONCILE_AFTER).doubtful() =>
            {
                Side::ReadDescribe { record: Arc::clone(record) }
            }
            _ => Side::Idle,
        }
    }

    fn quiescent(state: &State) -> bool {
        state.requests.iter().all(|r| matches!(r.pc, Pc::Done | Pc::Dead | Pc::NotBegun))
            && state.reader == Side::Idle
            && state.terminator == Side::Idle
            && state.rewinder == Rewinder::Idle
            && !state.execs.iter().any(|e| matches!(e, Exec::Running { .. }))
    }

    /// From a quiescent state, once the events not lost have arrived and
    /// leases and the confirmation interval have passed, a status read
    /// reports the truth and a plain start of the ID succeeds.
    fn probe(&self, state: &State) -> Result<(), String> {
        let mut s = state.clone();
        // Events not lost (explicitly, by `Lose`) arrive in the end: EventBridge retries for a day.
        while let Some(event) = s.events.pop() {
            self.deliver(&mut s, event);
        }
        s.now += LEASE + RECONCILE_AFTER;
        s.reader = Self::begin_read(&s);
        while s.reader != Side::Idle {
            self.side_step(&mut s, false);
        }
        if let Some(record) = &s.record {
            // The truth: Step Functions' status, or START_FAILED for a claim never started.
            let truth = self.describe(&s, record).map(|d| d.status).unwrap_or(Status::StartFailed);
            if record.status != truth {
                return Err(format!("a status read reports {} where Step Functions says {truth}", record.status));
            }
        }
        let probe = self.clients.len();
        s.requests.push(Request {
            pc: Pc::Claim { condition: self.free(probe, s.now) },
            began: s.now,
            rounds: 0,
            stopped: false,
        });
        s.execs.push(Exec::NotStarted);
        while !matches!(s.requests[probe].pc, Pc::Done) {
            self.step(&mut s, probe);
        }
        if s.execs[probe] == Exec::NotStarted {
            return Err(format!(
                "a start after every execution ended was not started: record {:?}",
                s.record.map(|r| r.status)
            ));
        }
        Ok(())
    }
}

fn emit(state: &mut State, exec: usize, status: Status, redrive: u32) {
    state.events.push(Event { exec, status: StatusOrd::of(status), redrive });
    state.events.sort();
}

impl Model for Protocol {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let n = self.clients.len();
        vec![State {
            now: 0,
            record: None,
            execs: vec![Exec::NotStarted; n],
            last_started: None,
            events: Vec::new(),
            requests: vec![Request { pc: Pc::NotBegun, began: 0, rounds: 0, stopped: false }; n],
            reader: Side::Idle,
            terminator: Side::Idle,
            losses: self.losses,
            duplicates: self.duplicates,
            redrives: self.redrives,
            reads: self.reads,
            terminates: self.terminates,
            attempt_faults: self.attempt_faults,
            deletes: self.deletes,
            key_entry: None,
            check_faults: self.check_faults,
            check_passed: false,
            check_broken: false,
            replaced: vec![false; n + 1],
            violation: None,
            seen_replay: false,
            seen_takeover: false,
            seen_superseded_stop: false,
            seen_replace: false,
            seen_asked: false,
            rewinds: self.rewinds,
            rewinder: Rewinder::Idle,
            rewound: vec![0; n + 1],
            seen_rewind: false,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.violation.is_some() {
            return;
        }
        for (i, request) in state.requests.iter().enumerate() {
            match request.pc {
                Pc::NotBegun => actions.push(Action::Begin(i)),
                Pc::Done | Pc::Dead => {}
                // A crash that matters: between the claim and StartExecution, or between a read and its write.
                Pc::Launch { .. } | Pc::VerifyWrite { .. } | Pc::Put => {
                    actions.push(Action::Step(i));
                    actions.push(Action::Die(i));
                    if matches!(request.pc, Pc::Launch { .. }) && state.attempt_faults > 0 {
                        actions.push(Action::AttemptFails(i, StartAttempt::Unanswered));
                        actions.push(Action::AttemptFails(i, StartAttempt::Throttled));
                    }
                }
                _ => actions.push(Action::Step(i)),
            }
        }
        if state.now < self.max_time {
            actions.push(Action::Tick);
        }
        for (exec, e) in state.execs.iter().enumerate() {
            match e {
                Exec::Running { .. } => {
                    actions.push(Action::End(exec, Status::Succeeded));
                    actions.push(Action::End(exec, Status::Failed));
                }
                Exec::Ended { status, .. } if state.redrives > 0 && *status != Status::Succeeded => {
                    actions.push(Action::Redrive(exec))
                }
                _ => {}
            }
        }
        for (i, event) in state.events.iter().enumerate() {
            if i > 0 && state.events[i - 1] == *event {
                continue;
            }
            actions.push(Action::Deliver(i));
            if state.duplicates > 0 {
                actions.push(Action::Duplicate(i));
            }
            if state.losses > 0 {
                actions.push(Action::Lose(i));
            }
        }
        if state.reads > 0 && state.reader == Side::Idle && state.record.is_some() {
            actions.push(Action::Read);
        }
        if state.terminates > 0 && state.terminator == Side::Idle && state.record.is_some() {
            actions.push(Action::Terminate);
        }
        if state.reader != Side::Idle {
            actions.push(Action::SideStep { terminate: false });
        }
        if state.terminator != Side::Idle {
            actions.push(Action::SideStep { terminate: true });
        }
        if state.rewinds > 0 && state.rewinder == Rewinder::Idle && state.record.is_some() {
            actions.push(Action::Rewind);
        }
        if state.rewinder != Rewinder::Idle {
            actions.push(Action::RewindStep);
        }
        if matches!(state.rewinder, Rewinder::Redrive { .. }) {
            actions.push(Action::RewinderDies);
        }
        if state.deletes > 0 && state.record.as_deref().is_some_and(|r| r.status.is_terminal()) {
            actions.push(Action::Delete);
        }
        if state.check_faults > 0 && !state.check_passed {
            for (i, request) in state.requests.iter().enumerate() {
                if matches!(request.pc, Pc::Claim { .. }) && request.rounds == 0 {
                    actions.push(Action::CheckFails(i));
                }
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::Begin(i) => {
                state.requests[i] = Request {
                    pc: match self.algorithm {
                        Algorithm::ConditionalClaim if self.decisions.key_entries && self.client(i).key.is_some() => {
                            Pc::PutKey
                        }
                        Algorithm::ConditionalClaim => Pc::Claim { condition: self.free(i, state.now) },
                        Algorithm::ReadThenStart => Pc::Read,
                    },
                    began: state.now,
                    rounds: 0,
                    stopped: false,
                }
            }
            Action::Step(i) => self.step(&mut state, i),
            Action::AttemptFails(i, answered) => {
                let Pc::Launch { attempts } = state.requests[i].pc.clone() else { return None };
                state.attempt_faults -= 1;
                self.attempt(&mut state, i, attempts, answered);
            }
            Action::Delete => {
                state.deletes -= 1;
                state.record = None;
            }
            Action::Rewind => {
                state.rewinds -= 1;
                // `rewind`: get (a doubtful record's reconcile is the read's), refuse what cannot be
                // rewound, and DescribeExecution: refuse a run Step Functions says runs.
                let described = state.record.as_deref().and_then(|record| self.describe(&state, record));
                // Redriven from outside, its events not in yet: Step Functions' word written back first.
                if let (Some(record), Some(described)) = (state.record.clone(), &described)
                    && check_rewindable(&record, state.now).is_ok()
                    && described.redrive_count > record.redrive_count
                {
                    self.write_back(&mut state, &record, described.clone());
                }
                state.rewinder = match (&state.record, described) {
                    (Some(record), Some(described)) if check_rewindable(record, state.now).is_ok() => {
                        let ended = Arc::clone(record);
                        if self.decisions.guarded_rewind {
                            Rewinder::Claim { ended, redrive_count: described.redrive_count + 1, began: state.now }
                        } else {
                            Rewinder::Redrive { rewinding: ended.clone(), ended, began: state.now }
                        }
                    }
                    _ => Rewinder::Idle,
                };
            }
            Action::RewindStep => self.rewind_step(&mut state),
            Action::RewinderDies => state.rewinder = Rewinder::Idle,
            Action::CheckFails(i) => {
                let Pc::Claim { condition } = state.requests[i].pc.clone() else { return None };
                state.check_faults -= 1;
                // The claim ran alongside and is released (`first_claim`); the start answers 503.
                if condition.permits(state.record.as_deref()) {
                    let mut claim = self.claim_record(i, state.requests[i].began);
                    claim.status = Status::StartFailed;
                    claim.lease_until = None;
                    state.record = Some(Arc::new(claim));
                }
                if self.decisions.cache_transient_check {
                    state.check_broken = true;
                }
                self.answer(&mut state, i, Answer::RetryLater);
            }
            Action::Die(i) => state.requests[i].pc = Pc::Dead,
            Action::Tick => {
                state.now += 1;
                // A starter past its function's timeout is dead (the lease outlasts it).
                for request in &mut state.requests {
                    if !matches!(request.pc, Pc::NotBegun | Pc::Done) && state.now > request.began + STARTER_LIFETIME {
                        request.pc = Pc::Dead;
                    }
                }
                if let Rewinder::Claim { began, .. } | Rewinder::Redrive { began, .. } = state.rewinder
                    && state.now > began + STARTER_LIFETIME
                {
                    state.rewinder = Rewinder::Idle;
                }
            }
            Action::End(exec, status) => {
                let Exec::Running { redrive } = state.execs[exec] else { return None };
                state.execs[exec] = Exec::Ended { status, redrive };
                emit(&mut state, exec, status, redrive);
            }
            Action::Redrive(exec) => {
                let Exec::Ended { redrive, .. } = state.execs[exec] else { return None };
                state.execs[exec] = Exec::Running { redrive: redrive + 1 };
                state.redrives -= 1;
                emit(&mut state, exec, Status::Running, redrive + 1);
            }
            Action::Deliver(i) => {
                let event = state.events.remove(i);
                self.deliver(&mut state, event);
            }
            Action::Duplicate(i) => {
                let event = state.events[i];
                state.duplicates -= 1;
                emit(&mut state, event.exec, event.status.status(), event.redrive);
            }
            Action::Lose(i) => {
                state.events.remove(i);
                state.losses -= 1;
            }
            Action::Read => {
                state.reads -= 1;
                state.reader = Self::begin_read(&state);
            }
            Action::Terminate => {
                state.terminates -= 1;
                // `terminate`: get (and reconcile, not modelled: the read above covers it), refuse an ended one.
                // A rewind's hold answers "still starting".
                state.terminator = match &state.record {
                    Some(record) if !record.status.is_terminal() && record.status != Status::Redriving => {
                        Side::TerminateStop { record: Arc::clone(record) }
                    }
                    _ => Side::Idle,
                };
            }
            Action::SideStep { terminate } => self.side_step(&mut state, terminate),
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut properties = vec![
            Property::always("at most one execution started or rewound by the system runs", |_, s: &State| {
                let ours = |(exec, e): (usize, &Exec)| match e {
                    Exec::Running { redrive } => *redrive == 0 || s.rewound[exec] == *redrive,
                    _ => false,
                };
                s.execs.iter().enumerate().filter(|&run| ours(run)).count() <= 1
            }),
            // Also: a redriven older execution is stopped once its RUNNING event is handled.
            Property::always("answers are true, redriven older executions stopped", |_, s: &State| {
                s.violation.is_none()
            }),
            Property::always(
                "the record never points at an execution older than the latest started",
                |model: &Protocol, s: &State| match (&s.record, s.last_started) {
                    (Some(record), Some(last)) => {
                        let exec = model.exec_of(record);
                        exec == last || s.execs.get(exec) == Some(&Exec::NotStarted)
                    }
                    _ => true,
                },
            ),
            Property::always("an idempotency key starts at most one execution", |model: &Protocol, s: &State| {
                let keyed = |r: usize| model.clients.get(r).and_then(|c| c.key);
                let started: Vec<_> = (0..model.clients.len())
                    .filter(|&r| keyed(r).is_some() && s.execs[r] != Exec::NotStarted)
                    .map(keyed)
                    .collect();
                started.iter().collect::<std::collections::HashSet<_>>().len() == started.len()
            }),
            Property::always(
                "no stuck ID: after every execution ended, reads tell the truth and a start starts",
                |model: &Protocol, s: &State| !Protocol::quiescent(s) || model.probe(s).is_ok(),
            ),
        ];
        for reach in &self.expect {
            properties.push(match reach {
                Reach::Replay => {
                    Property::sometimes("a start replays for its Idempotency-Key", |_, s: &State| s.seen_replay)
                }
                Reach::Takeover => {
                    Property::sometimes("a dead starter's claim is taken over", |_, s: &State| s.seen_takeover)
                }
                Reach::Replace => {
                    Property::sometimes("terminateExisting stops and replaces", |_, s: &State| s.seen_replace)
                }
                Reach::SupersededStop => {
                    Property::sometimes("an older execution found running by its event is stopped", |_, s: &State| {
                        s.seen_superseded_stop
                    })
                }
                Reach::AskedAfterAttempts => {
                    Property::sometimes("a start asks Step Functions after its attempts", |_, s: &State| s.seen_asked)
                }
                Reach::Rewind => {
                    Property::sometimes("a rewind redrives the ended execution", |_, s: &State| s.seen_rewind)
                }
            });
        }
        properties
    }
}

fn bound() -> bool {
    std::env::var("SINGLETON_MODEL_BOUND").is_ok_and(|v| v == "large")
}

fn report<C: Checker<Protocol>>(label: &str, checker: &C) -> String {
    let mut text = format!(
        "{label}: {} states ({} unique), max depth {}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth()
    );
    let mut names: Vec<_> = checker.discoveries().into_keys().collect();
    names.sort();
    let _ = write!(text, "; discoveries: {names:?}");
    text
}

fn check(label: &str, model: Protocol) {
    // The large bound searches depth-first: it keeps fingerprints, not a queue of whole states.
    if bound() {
        let mut stdout = std::io::stdout();
        let mut progress = stateright::report::WriteReporter::new(&mut stdout);
        finish(label, model.checker().threads(2).spawn_dfs().join_and_report(&mut progress));
    } else {
        // One thread per check: the test harness already runs two checks at a time, and two
        // threads sharing one check's queue spent a quarter more CPU on it (measured: 50 s
        // instead of 39 s for "rewind and replace").
        finish(label, model.checker().threads(1).spawn_bfs().join());
    }
}

fn finish(label: &str, checker: impl Checker<Protocol>) {
    println!("{}", report(label, &checker));
    checker.assert_properties();
}

#[path = "model/events.rs"]
mod events;

/// Events into a live run (issue 17): two raises and two waits, a lost answer, a deliverer
/// that dies, a wait message delivered again, a task that times out, time passing and the sweep.
#[test]
fn raises_and_waits_keep_the_promises_over_every_interleaving() {
    let budgets = events::Budgets { lost_answers: 1, crashes: 1, redeliveries: 1, timeouts: 1, next_run: false };
    let model = events::Events::new(events::Variant::Crate, 2, vec![0, 0], budgets);
    println!("{}", events::check("events in one run", model));
}

/// Waits whose messages give their deadline, and whose tasks time out at it while time
/// passes: two raises and two waits, a lost answer, a deliverer that dies, a wait message
/// delivered again. No write that pairs an event with a wait sends it to a task that timed out.
#[test]
fn waits_with_deadlines_keep_the_promises() {
    let budgets = events::Budgets { lost_answers: 1, crashes: 1, redeliveries: 1, timeouts: 0, next_run: false };
    let model = events::Events::new(events::Variant::Crate, 2, vec![0, 0], budgets).with_deadlines();
    println!("{}", events::check("events with deadlines", model));
}

#[test]
fn the_model_finds_an_event_sent_to_a_timed_out_wait_when_the_record_keeps_no_deadline() {
    let budgets = events::Budgets { lost_answers: 0, crashes: 0, redeliveries: 0, timeouts: 0, next_run: false };
    let model = events::Events::new(events::Variant::NoDeadlines, 1, vec![0, 0], budgets).with_deadlines();
    let actions = events::counterexample(
        "no deadlines",
        model,
        "with deadlines, no write's deliverer sends the event it paired to a wait that timed out",
    );
    // The event raised after the wait's deadline goes to it, and is lost
    assert!(actions.contains(&events::Action::Tick), "{actions:?}");
    println!("no deadlines: {actions:?}");
}

/// A keyed raise and its retry (one `Idempotency-Key`, one event): the key's entry names
/// the run the first attempt read, and every attempt raises into that run only, across the
/// run's end and the next run's start, with a lost answer and a crash between any two calls.
#[test]
fn keyed_raises_and_their_retries_keep_the_promises() {
    let budgets = events::Budgets { lost_answers: 1, crashes: 1, redeliveries: 0, timeouts: 0, next_run: true };
    let model = events::Events::new(events::Variant::Crate, 2, vec![0, 1], budgets).with_keyed_raises();
    println!("{}", events::check("keyed raises", model));
}

#[test]
fn the_model_finds_a_keyed_raise_in_two_runs_when_a_retry_goes_to_the_run_it_read() {
    let budgets = events::Budgets { lost_answers: 0, crashes: 0, redeliveries: 0, timeouts: 0, next_run: true };
    let model = events::Events::new(events::Variant::KeyedRaiseOwnRun, 2, vec![0, 1], budgets).with_keyed_raises();
    let actions = events::counterexample("keyed raise, own run", model, "an event lands in one run only");
    // The first attempt lands in the run it read; the run ends, the next starts; the retry lands there
    assert!(actions.contains(&events::Action::NextRunStarts), "{actions:?}");
    println!("keyed raise, own run: {actions:?}");
}

/// Raises across the run's end and the next run's start, with a lost answer and a
/// deliverer that dies: never into the next run, never to its task.
#[test]
fn raises_across_the_next_run_keep_the_promises() {
    let budgets = events::Budgets { lost_answers: 1, crashes: 1, redeliveries: 1, timeouts: 0, next_run: true };
    let model = events::Events::new(events::Variant::Crate, 2, vec![0, 1], budgets);
    println!("{}", events::check("events across runs", model));
}

/// Signal-with-start beside a raise, across the run's end and the next run's start, with
/// a lost answer and a deliverer that dies: the event lands in exactly the run it answers
/// (the live one, or the one it started), once.
#[test]
fn signal_with_start_keeps_the_promises_across_runs() {
    let budgets = events::Budgets { lost_answers: 1, crashes: 1, redeliveries: 0, timeouts: 0, next_run: true };
    let model = events::Events::new(events::Variant::Crate, 1, vec![0, 1], budgets).with_signalers(1);
    println!("{}", events::check("signal-with-start", model));
}

/// A keyed signal and its retry (one key, one event) at once, across the run's end and the
/// next run's start, with a crash between any two of their calls: the event lands in one
/// run, the one each answer names.
#[test]
fn keyed_signal_with_start_and_its_retry_keep_the_promises() {
    let budgets = events::Budgets { lost_answers: 1, crashes: 1, redeliveries: 0, timeouts: 0, next_run: true };
    let model = events::Events::new(events::Variant::Crate, 0, vec![0, 1], budgets).with_signalers(2).keyed();
    println!("{}", events::check("keyed signal-with-start", model));
}

/// A keyed signal that takes a replaced run for gone: its retry had raised the event
/// into that run, and it raises it into the next one too.
#[test]
fn the_model_finds_a_keyed_signal_in_two_runs_when_it_takes_a_replaced_run_for_gone() {
    let budgets = events::Budgets { next_run: true, ..events::Budgets::default() };
    let model =
        events::Events::new(events::Variant::KeyedGoneOnReplace, 0, vec![0, 1], budgets).with_signalers(2).keyed();
    let path = events::counterexample("keyed gone on replace", model, "an event lands in one run only");
    println!("counterexample (keyed signal takes a replaced run for gone): {path:?}");
}

/// A signal whose raise may have landed in a run since replaced must not go on to the
/// run that replaced it: the model finds the event in two runs.
#[test]
fn the_model_finds_a_signal_in_two_runs_when_it_forgets_a_lost_answer() {
    let budgets = events::Budgets { lost_answers: 1, next_run: true, ..events::Budgets::default() };
    let model =
        events::Events::new(events::Variant::SignalForgetsUncertainty, 0, vec![0, 1], budgets).with_signalers(1);
    let path = events::counterexample("signal forgets", model, "an event lands in one run only");
    println!("counterexample (signal forgets a lost answer): {path:?}");
}

/// Without raise IDs, a write retried after its answer was lost raises the event twice.
#[test]
fn the_model_finds_an_event_delivered_twice_without_raise_ids() {
    let budgets = events::Budgets { lost_answers: 1, ..events::Budgets::default() };
    let model = events::Events::new(events::Variant::NoRaiseIds, 1, vec![0, 0], budgets);
    let path = events::counterexample("no raise IDs", model, "an event is delivered at most once");
    println!("counterexample (no raise IDs): {path:?}");
}

/// Without the guard to the run claimed before the raise began, its retry lands in the next run.
#[test]
fn the_model_finds_an_event_in_two_runs_without_the_run_guard() {
    let budgets = events::Budgets { lost_answers: 1, next_run: true, ..events::Budgets::default() };
    let model = events::Events::new(events::Variant::NoRunGuard, 1, vec![0, 1], budgets);
    let path = events::counterexample("no run guard", model, "an event lands in one run only");
    println!("counterexample (no run guard): {path:?}");
}

const REJECT: Client = Client { on_conflict: ConflictPolicy::Reject, reuse: ReusePolicy::AllowAll, key: None };
const KEYED: Client = Client { key: Some("k-1"), ..REJECT };
const REPLACE: Client = Client { on_conflict: ConflictPolicy::TerminateExisting, ..REJECT };
const USE_EXISTING: Client = Client { on_conflict: ConflictPolicy::UseExisting, ..REJECT };
/// A replace under a reuse policy that forbids a new start after a success.
const REPLACE_FAILED_ONLY: Client = Client { reuse: ReusePolicy::AllowFailedOnly, ..REPLACE };
/// One scheduled occurrence under `overlap: replace`, delivered more than once.
const OCCURRENCE_REPLACE: Client = Client { key: Some("occurrence-1"), ..REPLACE };

/// Concurrent plain starts, deaths between claim and start, lost and
/// duplicated events, a status read and a terminate, over leases and the confirmation interval.
#[test]
fn plain_starts_keep_the_promises_over_every_interleaving() {
    let budgets = Budgets { losses: 1, duplicates: 0, reads: 1, terminates: 1, ..Budgets::default() };
    let (clients, max_time) = if bound() { (vec![REJECT, REJECT, REJECT], 3) } else { (vec![REJECT, REJECT], 3) };
    check(
        "plain starts",
        Protocol::new(Algorithm::ConditionalClaim, clients, max_time, budgets, vec![Reach::Takeover]),
    );
}

/// Three starts across a reconciliation: the one that verifies an old
/// execution must not trust the newer claim it finds in its place.
#[test]
fn three_starts_across_a_verification_keep_the_promises() {
    let (max_time, budgets) =
        if bound() { (4, Budgets { losses: 1, ..Budgets::default() }) } else { (3, Budgets::default()) };
    let clients = vec![REJECT, REJECT, REJECT];
    check(
        "three starts",
        Protocol::new(Algorithm::ConditionalClaim, clients, max_time, budgets, vec![Reach::Takeover]),
    );
}

/// Two deliveries of one keyed start, and a terminateExisting against a plain start.
#[test]
fn policies_keep_the_promises_over_every_interleaving() {
    let budgets = Budgets { losses: 1, duplicates: 0, reads: 1, ..Budgets::default() };
    let (keyed, max_time) = if bound() { (vec![KEYED, KEYED, REJECT], 3) } else { (vec![KEYED, KEYED], 4) };
    check("idempotency key", Protocol::new(Algorithm::ConditionalClaim, keyed, max_time, budgets, vec![Reach::Replay]));
    let replace = if bound() { vec![REJECT, REPLACE, REPLACE] } else { vec![REJECT, REPLACE] };
    check("terminateExisting", Protocol::new(Algorithm::ConditionalClaim, replace, 3, budgets, vec![Reach::Replace]));
    check("useExisting", Protocol::new(Algorithm::ConditionalClaim, vec![REJECT, USE_EXISTING], 3, budgets, vec![]));
}

/// An ended execution redriven from outside while a newer one starts.
#[test]
fn redriven_executions_never_run_beside_the_current_one() {
    let budgets = Budgets { redrives: 1, duplicates: 1, ..Budgets::default() };
    let (clients, max_time) = if bound() { (vec![REJECT, REJECT, REJECT], 3) } else { (vec![REJECT, REJECT], 3) };
    check(
        "redrive",
        Protocol::new(Algorithm::ConditionalClaim, clients, max_time, budgets, vec![Reach::SupersededStop]),
    );
}

#[test]
fn the_read_then_start_control_runs_two_executions() {
    let model = Protocol::new(Algorithm::ReadThenStart, vec![REJECT, REJECT], 1, Budgets::default(), vec![]);
    let checker = model.checker().threads(1).spawn_bfs().join();
    println!("{}", report("read-then-start (control)", &checker));
    let path = checker
        .discovery("at most one execution started or rewound by the system runs")
        .unwrap_or_else(|| panic!("the control should run two executions at once"));
    println!("counterexample:");
    for action in path.into_actions() {
        println!("  {action:?}");
    }
}

/// Runs `model` until it finds the counterexample it must find for
/// `property`, and returns it (not always the shortest: the search stops
/// soon after the first, and keeps the last it recorded).
fn counterexample(label: &str, model: Protocol, property: &'static str) -> Vec<Action> {
    let found = stateright::HasDiscoveries::AnyOf(std::collections::BTreeSet::from([property]));
    let checker = model.checker().finish_when(found).threads(1).spawn_bfs().join();
    println!("{}", report(label, &checker));
    let path = checker.discovery(property).unwrap_or_else(|| panic!("{label}: no counterexample to {property:?}"));
    let actions = path.into_actions();
    println!("counterexample ({label}):");
    for action in &actions {
        println!("  {action:?}");
    }
    actions
}

/// SDK-level faults below the service: StartExecution attempts that take
/// effect without an answer, and throttled ones, in every order.
#[test]
fn start_attempts_that_may_have_started_it_never_release_the_claim() {
    let budgets = Budgets { attempt_faults: 3, ..Budgets::default() };
    let (clients, max_time) = if bound() { (vec![REJECT, REJECT, REJECT], 3) } else { (vec![REJECT, REJECT], 2) };
    check(
        "start attempts",
        Protocol::new(Algorithm::ConditionalClaim, clients, max_time, budgets, vec![Reach::AskedAfterAttempts]),
    );
}

/// Before issue 12 the SDK retried StartExecution and the service saw only
/// the last attempt's error: a throttle after a lost answer released the claim.
fn last_attempt_decides(attempts: &[StartAttempt]) -> LaunchVerdict {
    match attempts.last() {
        Some(StartAttempt::Started) => LaunchVerdict::Started,
        Some(StartAttempt::Throttled | StartAttempt::Refused | StartAttempt::AlreadyExists) => LaunchVerdict::Release,
        _ if attempts.len() < 3 => LaunchVerdict::Retry,
        _ => LaunchVerdict::AskStepFunctions,
    }
}

#[test]
fn the_model_finds_two_runs_under_the_old_launch_decision() {
    let budgets = Budgets { attempt_faults: 3, ..Budgets::default() };
    let mut model = Protocol::new(Algorithm::ConditionalClaim, vec![REJECT, REJECT], 2, budgets, vec![]);
    model.decisions.launch = last_attempt_decides;
    let actions =
        counterexample("old launch decision", model, "at most one execution started or rewound by the system runs");
    assert!(actions.iter().any(|a| matches!(a, Action::AttemptFails(_, StartAttempt::Unanswered))), "{actions:?}");
}

/// Terminal records deleted at any time (purge, or TTL) while their ended
/// executions may still be redriven from outside.
#[test]
fn deleted_records_and_late_redrives_keep_the_promises() {
    let budgets = Budgets { redrives: 1, deletes: 1, ..Budgets::default() };
    let (clients, max_time) = if bound() { (vec![REJECT, REJECT, REJECT], 3) } else { (vec![REJECT, REJECT], 3) };
    check(
        "deletion and redrive",
        Protocol::new(Algorithm::ConditionalClaim, clients, max_time, budgets, vec![Reach::SupersededStop]),
    );
}

/// Before issue 12 a RUNNING event whose record was gone was acknowledged
/// as "unknown instance", and the redriven execution ran on.
fn unknown_when_deleted(current: Option<&Record>, execution_arn: &ExecutionArn, redrive_count: u32) -> RefusedRunning {
    match current {
        None => RefusedRunning::Unknown,
        current => refused_running(current, execution_arn, redrive_count),
    }
}

#[test]
fn the_model_finds_a_redrive_running_on_under_the_old_event_decision() {
    let budgets = Budgets { redrives: 1, deletes: 1, ..Budgets::default() };
    let mut model = Protocol::new(Algorithm::ConditionalClaim, vec![REJECT], 2, budgets, vec![]);
    model.decisions.refused_running = unknown_when_deleted;
    let actions = counterexample("old event decision", model, "answers are true, redriven older executions stopped");
    assert!(actions.contains(&Action::Delete), "{actions:?}");
}

/// A key's retries after the record was replaced (another start) or deleted
/// (purge, TTL): the key's own entry answers, never a second run.
#[test]
fn idempotency_keys_outlive_the_record_they_started() {
    let budgets = Budgets { deletes: 1, ..Budgets::default() };
    let (clients, max_time) = if bound() { (vec![KEYED, REJECT, KEYED], 3) } else { (vec![KEYED, REJECT, KEYED], 2) };
    check(
        "keys outlive records",
        Protocol::new(Algorithm::ConditionalClaim, clients, max_time, budgets, vec![Reach::Replay]),
    );
}

#[test]
fn the_model_finds_a_second_run_for_one_key_without_key_entries() {
    let budgets = Budgets { deletes: 1, ..Budgets::default() };
    let mut model = Protocol::new(Algorithm::ConditionalClaim, vec![KEYED, REJECT, KEYED], 2, budgets, vec![]);
    model.decisions.key_entries = false;
    counterexample("no key entries", model, "an idempotency key starts at most one execution");
}

/// terminateExisting under a reuse policy, against a run that ends on its own
/// just before the stop (which then changes nothing, as on AWS).
#[test]
fn replaces_keep_the_reuse_policy() {
    let budgets = Budgets { losses: 1, ..Budgets::default() };
    let clients = if bound() {
        vec![REJECT, REPLACE_FAILED_ONLY, REPLACE_FAILED_ONLY]
    } else {
        vec![REJECT, REPLACE_FAILED_ONLY]
    };
    check(
        "replace under allowFailedOnly",
        Protocol::new(Algorithm::ConditionalClaim, clients, 3, budgets, vec![Reach::Replace]),
    );
}

#[test]
fn the_model_finds_a_replace_over_a_success_without_the_read_after_the_stop() {
    let mut model =
        Protocol::new(Algorithm::ConditionalClaim, vec![REJECT, REPLACE_FAILED_ONLY], 2, Budgets::default(), vec![]);
    model.decisions.verify_after_stop = false;
    counterexample("no read after the stop", model, "answers are true, redriven older executions stopped");
}

/// One scheduled occurrence (`overlap: replace`) delivered twice: the
/// duplicate replays; it never stops the run its own first delivery started.
#[test]
fn duplicate_scheduled_occurrences_never_replace_their_own_run() {
    let budgets = Budgets { attempt_faults: 1, ..Budgets::default() };
    let clients = if bound() {
        vec![OCCURRENCE_REPLACE, OCCURRENCE_REPLACE, REJECT]
    } else {
        vec![OCCURRENCE_REPLACE, OCCURRENCE_REPLACE]
    };
    check(
        "duplicate occurrences",
        Protocol::new(Algorithm::ConditionalClaim, clients, 3, budgets, vec![Reach::Replay]),
    );
}

/// The state machine check run alongside a container's first claim is not
/// answered: that start fails (503), the next one checks again.
#[test]
fn a_state_machine_check_not_answered_breaks_no_later_start() {
    let budgets = Budgets { check_faults: 1, ..Budgets::default() };
    check("check not answered", Protocol::new(Algorithm::ConditionalClaim, vec![REJECT, REJECT], 2, budgets, vec![]));
}

#[test]
fn the_model_finds_a_stuck_id_when_a_transient_check_failure_is_cached() {
    let budgets = Budgets { check_faults: 1, ..Budgets::default() };
    let mut model = Protocol::new(Algorithm::ConditionalClaim, vec![REJECT], 2, budgets, vec![]);
    model.decisions.cache_transient_check = true;
    counterexample(
        "cached check failure",
        model,
        "no stuck ID: after every execution ended, reads tell the truth and a start starts",
    );
}

/// Rewinds (a guarded redrive of the ended run) racing plain starts: a
/// rewinder that dies between its claim and its redrive, duplicated events,
/// and a status read that reconciles a hold whose lease ended.
#[test]
fn rewinds_racing_starts_keep_the_promises() {
    let budgets = if bound() {
        Budgets { rewinds: 2, reads: 1, duplicates: 1, ..Budgets::default() }
    } else {
        Budgets { rewinds: 2, reads: 1, ..Budgets::default() }
    };
    let (clients, max_time) = if bound() { (vec![REJECT, REJECT, REJECT], 4) } else { (vec![REJECT, REJECT], 3) };
    check("rewind", Protocol::new(Algorithm::ConditionalClaim, clients, max_time, budgets, vec![Reach::Rewind]));
}

/// A rewind racing a terminateExisting start, and a terminate.
#[test]
fn rewinds_racing_replaces_keep_the_promises() {
    let budgets = if bound() {
        Budgets { rewinds: 1, terminates: 1, losses: 1, ..Budgets::default() }
    } else {
        Budgets { rewinds: 1, terminates: 1, ..Budgets::default() }
    };
    let clients = if bound() { vec![REJECT, REPLACE, REPLACE] } else { vec![REJECT, REPLACE] };
    check(
        "rewind and replace",
        Protocol::new(Algorithm::ConditionalClaim, clients, 3, budgets, vec![Reach::Rewind, Reach::Replace]),
    );
}

#[test]
fn the_model_finds_two_runs_under_a_naive_rewind() {
    let budgets = Budgets { rewinds: 1, ..Budgets::default() };
    let mut model = Protocol::new(Algorithm::ConditionalClaim, vec![REJECT, REJECT], 2, budgets, vec![]);
    model.decisions.guarded_rewind = false;
    let actions = counterexample("naive rewind", model, "at most one execution started or rewound by the system runs");
    assert!(actions.contains(&Action::Rewind), "{actions:?}");
}

/// A rewind of a record that an outside redrive left behind (its events
/// not in yet: an ended record is not reconciled), racing a replacing start.
/// (No losses: events wait arbitrarily long anyway, and losing every event of
/// an outside redrive is a known limit. Known limit too, found with a second
/// start: an outside redrive *during* a rewind, between its DescribeExecution
/// and its RedriveExecution, whose run ends at once while a start takes the ID,
/// lets the rewind redrive the run beside the new one until its RUNNING event
/// stops it. An outside redrive bypasses the guard by nature; see docs/model-check.md.)
#[test]
fn rewinds_of_a_record_an_outside_redrive_left_behind_keep_the_promises() {
    let budgets = Budgets { rewinds: 1, redrives: 1, ..Budgets::default() };
    check(
        "rewind after an outside redrive",
        Protocol::new(Algorithm::ConditionalClaim, vec![REPLACE], 3, budgets, vec![Reach::Rewind]),
    );
}
