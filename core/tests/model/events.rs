//! The events model (issue 17): raises and waits on one instance's mailbox,
//! every interleaving of them with the store's conditional writes, answers
//! lost after the write took effect (the SDK's and the service's retries),
//! deliverers that die between their write and their SendTaskSuccess, wait
//! messages delivered twice, waiting tasks that time out (whenever, or at the
//! deadline their message gave), the run's end and
//! the next run's start, time passing and the sweep that follows; and
//! signal-with-start: raise into the live run, or start the next run holding
//! the event when none is live.
//!
//! The decisions are the crate's own: `Mailbox::pairs`, `takes_event`,
//! `takes_wait`, `sweepable` and `without`, `RaiseGuard::admits`,
//! `Status::takes_events`, and `ExecutionUpdate::applied_to` (the end drops the
//! mailbox). The steps mirror `Singleton::raise_event`, `register_wait`,
//! `signal_with_start` and `sweep_delivered` one AWS call per step.

use sfn_singleton_core::domain::mailbox::{EventName, Pair, RaisedEvent, SWEEP_AFTER_MILLIS, Wait};
use sfn_singleton_core::domain::{
    ExecutionArn, ExecutionName, InstanceId, Millis, Record, StartToken, StateMachineArn, Status,
};
use sfn_singleton_core::ports::{ExecutionState, ExecutionUpdate, RaiseGuard, Sweep};
use stateright::{Checker, Model, Property};

/// What is under check: the crate's mailbox, or a naive one a test shows the model catches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// This project's.
    Crate,
    /// A raise's write does not refuse an ID it took already (no raise IDs).
    NoRaiseIds,
    /// A raise may land on any live run (no guard to the run claimed before it began).
    NoRunGuard,
    /// A signal-with-start whose raise may have landed in a run since replaced
    /// goes on to the run that replaced it (instead of answering unconfirmed).
    SignalForgetsUncertainty,
    /// A keyed signal whose run was replaced before its raise landed takes the run for
    /// gone and goes on to the next (a retry with its key may have raised it there).
    KeyedGoneOnReplace,
    /// Waits' tasks time out at their deadline, but the record does not keep it
    /// (as before waits' deadlines): events pair with waits that have timed out.
    NoDeadlines,
    /// A keyed raise goes to the run it read itself, not to the one its key's
    /// entry names (the first attempt's).
    KeyedRaiseOwnRun,
}

/// The deadline of every wait when the model gives waits one: after time 0 by more
/// than the margin, before the sweep interval (so that a tick passes it).
const WAIT_DEADLINE: Millis = SWEEP_AFTER_MILLIS / 2;

/// How often the environment misbehaves in one run of the model.
#[derive(Clone, Copy, Debug, Default)]
pub struct Budgets {
    /// Writes whose answer is lost after they took effect.
    pub lost_answers: u8,
    /// Deliverers that die between their write and their SendTaskSuccess.
    pub crashes: u8,
    /// Wait messages delivered a second time.
    pub redeliveries: u8,
    /// Waiting tasks that time out.
    pub timeouts: u8,
    /// Whether the run may end and a second run start.
    pub next_run: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RaisePc {
    NotBegun,
    /// A keyed raise reads the record (GetItem): the run it finds.
    Read,
    /// A keyed raise puts its key's entry naming `run`, or finds the entry held.
    PutKey {
        run: usize,
    },
    /// Its write, the n-th attempt.
    Write(u8),
    /// Sending its pair's event to its pair's task; `replayed`: an earlier attempt may have.
    Deliver {
        replayed: bool,
    },
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Raiser {
    pc: RaisePc,
    began: Millis,
    /// A keyed raise's run: the one its key's entry names.
    pinned: usize,
    /// The pair its write formed (or found): what it delivers.
    pair: Option<Formed>,
}

/// A pair as the write that formed it returned it: the event (ID, body), the task, the run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Formed {
    event: String,
    body: String,
    task: usize,
    run: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum SignalPc {
    NotBegun,
    /// A keyed signal's key: held, or another request's replayed.
    HoldKey,
    /// The claim: a new run holding the event, unless a run is live.
    Claim,
    /// A keyed signal moves its key to the live run it found, before raising into it.
    MoveKey,
    /// Its raise into the live run it found, the n-th attempt.
    Write(u8),
    /// A keyed retry's raise into the run the key names.
    Replay,
    /// A keyed signal moves its key back to a fresh name: its run ended without the event.
    MoveFresh,
    Deliver,
    Done,
}

/// What a keyed signal's key entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Pin {
    /// Signaler i's fresh execution name, not started (yet).
    Fresh(usize),
    /// A run.
    Run(usize),
}

/// What a signal-with-start answered: the run it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Answer {
    Started(usize),
    Raised(usize),
    /// A keyed retry, found in (or raised into) the run its key names.
    Replayed(usize),
    Unconfirmed,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Signaler {
    pc: SignalPc,
    /// The live run it raises into.
    target: usize,
    /// An attempt failed without an answer: it may have landed.
    uncertain: bool,
    pair: Option<Formed>,
    answer: Option<Answer>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum WaitPc {
    NotBegun,
    Register { redelivered: bool },
    Deliver { replayed: bool },
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Waiter {
    pc: WaitPc,
    /// The run whose task waits (0 or 1).
    run: usize,
    /// The pair it delivers (its own, or the one it passed an event on to).
    pair: Option<Formed>,
}

/// A task waiting on its token, in Step Functions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Task {
    run: usize,
    /// The event it took, or `None` while it waits (or after it timed out).
    took: Option<String>,
    closed: bool,
    /// Closed by its timeout.
    timed_out: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    now: Millis,
    record: Record,
    /// Which runs run in Step Functions.
    running: [bool; 2],
    /// The run the record names (0, then 1 once the second started).
    current: usize,
    raisers: Vec<Raiser>,
    signalers: Vec<Signaler>,
    /// The keyed signals' key entry.
    key: Option<Pin>,
    /// The keyed raises' key entry: the run it names.
    raise_key: Option<usize>,
    waiters: Vec<Waiter>,
    tasks: Vec<Task>,
    /// Per event (its first ID): the runs it landed in.
    landed: Vec<(String, usize)>,
    /// Every SendTaskSuccess a task took: (event, task).
    taken: Vec<(String, usize)>,
    /// A deliverer sent its pair's event to a task that had timed out (the event is lost).
    sent_to_timed_out: bool,
    sweep: SweepPc,
    budgets: (u8, u8, u8, u8),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SweepPc {
    Idle,
    /// Sent the pairs again (at `at`); removes them if the lists are as seen.
    Sent {
        at: Millis,
        run: usize,
        seen: (usize, usize, u32, u32),
        events: Vec<usize>,
        waits: Vec<usize>,
    },
    /// Swept at `at`.
    Done {
        at: Millis,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Raise(usize),
    /// The raise's write takes effect and its answer is lost.
    RaiseLost(usize),
    RaiserDies(usize),
    Signal(usize),
    /// The signal's raise takes effect and its answer is lost.
    SignalLost(usize),
    SignalerDies(usize),
    Wait(usize),
    WaitLost(usize),
    WaiterDies(usize),
    Redeliver(usize),
    TimeOut(usize),
    RunEnds,
    NextRunStarts,
    Tick,
    Sweep,
}

#[derive(Clone, Debug)]
pub struct Events {
    pub variant: Variant,
    pub raisers: usize,
    /// Signal-with-start requests.
    pub signalers: usize,
    /// The signalers are one keyed request and its retries (one key, one event).
    pub keyed: bool,
    /// The raisers are one keyed request and its retries (one `Idempotency-Key`, one event).
    pub keyed_raises: bool,
    /// Waits' messages give their deadline, [`WAIT_DEADLINE`], and their tasks time out
    /// at it (the `timeouts` budget is then unused; waits of the first run only).
    pub deadlines: bool,
    /// Per waiter, its run.
    pub waiters: Vec<usize>,
    pub budgets: Budgets,
    machine: StateMachineArn,
    id: InstanceId,
}

fn approval() -> EventName {
    EventName::parse("approval").unwrap_or_else(|e| panic!("{e}"))
}

fn token(waiter: usize) -> String {
    format!("token-{waiter}")
}

impl Events {
    pub fn new(variant: Variant, raisers: usize, waiters: Vec<usize>, budgets: Budgets) -> Self {
        let machine = StateMachineArn::parse("arn:aws:states:us-east-1:123456789012:stateMachine:Orders")
            .unwrap_or_else(|e| panic!("{e}"));
        let id = InstanceId::parse("order-1").unwrap_or_else(|e| panic!("{e}"));
        Self {
            variant,
            raisers,
            signalers: 0,
            keyed: false,
            keyed_raises: false,
            deadlines: false,
            waiters,
            budgets,
            machine,
            id,
        }
    }

    /// With the raisers as one keyed request and its retries.
    pub fn with_keyed_raises(self) -> Self {
        Self { keyed_raises: true, ..self }
    }

    /// With waits whose tasks time out at [`WAIT_DEADLINE`], their messages saying so.
    pub fn with_deadlines(self) -> Self {
        Self { deadlines: true, ..self }
    }

    /// With `signalers` signal-with-start requests besides.
    pub fn with_signalers(self, signalers: usize) -> Self {
        Self { signalers, ..self }
    }

    /// With the signalers as one keyed request and its retries.
    pub fn keyed(self) -> Self {
        Self { keyed: true, ..self }
    }

    /// A signal's event ID: one per request, or the key's for all of a keyed one's.
    fn signal_id(&self, signaler: usize) -> String {
        if self.keyed { "k".to_owned() } else { format!("s{signaler}") }
    }

    fn signal_event(&self, signaler: usize) -> RaisedEvent {
        let id = self.signal_id(signaler);
        RaisedEvent { body: id.clone(), id, name: approval(), at: 0 }
    }

    fn run_name(&self, run: usize) -> ExecutionName {
        ExecutionName::new(&self.id, StartToken::new(run as u64 + 1, 7))
    }

    fn run_arn(&self, run: usize) -> ExecutionArn {
        self.machine.execution_arn(&self.run_name(run))
    }

    fn claim(&self, run: usize, at: Millis) -> Record {
        let mut record = Record::starting(&self.id, "Orders", &self.machine, &self.run_name(run), "{}", at, 60_000);
        record.status = Status::Running;
        record
    }

    /// DynamoDB's conditional UpdateItem of a raise (`add_event`).
    fn add_event(&self, state: &mut State, event: &RaisedEvent, guard: &RaiseGuard) -> bool {
        let record = &state.record;
        let new_id = self.variant == Variant::NoRaiseIds || !record.mailbox.raise_ids.contains(&event.id);
        let admits = self.variant == Variant::NoRunGuard || guard.admits(record);
        // The crate's condition (`takes_event`: a new ID, room), but for the naive variant's ID.
        let takes = if self.variant == Variant::NoRaiseIds {
            record.mailbox.events.len() < sfn_singleton_core::domain::mailbox::MAX_EVENTS
        } else {
            record.mailbox.takes_event(event)
        };
        if !(record.status.takes_events() && admits && new_id && takes) {
            return false;
        }
        state.record.mailbox = state.record.mailbox.with_event(event);
        let base = event.id.split('>').next().unwrap_or_default().to_owned();
        let run = state.current;
        if !state.landed.contains(&(base.clone(), run)) {
            state.landed.push((base, run));
        }
        true
    }

    /// SendTaskSuccess: the task takes it if it waits and its run runs.
    fn send(&self, state: &mut State, event: &str, task: usize) -> bool {
        let Some(t) = state.tasks.get_mut(task) else { return false };
        if t.closed || t.took.is_some() || !state.running[t.run] {
            return false;
        }
        t.took = Some(event.to_owned());
        state.taken.push((event.split('>').next().unwrap_or_default().to_owned(), task));
        true
    }

    fn task_of(pair: &Pair<'_>) -> usize {
        pair.wait.1.token.trim_start_matches("token-").parse().unwrap_or(usize::MAX)
    }

    /// The pair of `event_id` in the record as it is now (what a write returned), if any.
    fn formed(&self, state: &State, event_id: &str) -> Option<Formed> {
        let pair = state.record.mailbox.pair_of_event(event_id)?;
        let run = usize::from(state.record.execution_arn == self.run_arn(1));
        Some(Formed { event: event_id.to_owned(), body: pair.event.1.body.clone(), task: Self::task_of(&pair), run })
    }

    /// The pair's event to its task (`Singleton::deliver`) by the write that formed
    /// it, or found it (`replayed`); a closed task drops it. The one that formed it
    /// finding its task timed out has lost the event. (A replay's may be a
    /// deliverer's that died and a timeout since: the known gap, docs/events.md.)
    fn deliver(&self, state: &mut State, pair: &Formed, replayed: bool) {
        let sent = self.send(state, &pair.body, pair.task);
        if !sent && !replayed && state.tasks.get(pair.task).is_some_and(|t| t.timed_out) {
            state.sent_to_timed_out = true;
        }
    }

    /// A signal's event is in the run `answer` names: it delivers the pair the write formed, if any.
    fn signal_landed(&self, state: &mut State, signaler: usize, event_id: &str, answer: Answer) {
        let pair = self.formed(state, event_id);
        let signaler = &mut state.signalers[signaler];
        signaler.answer = Some(answer);
        signaler.pc = if pair.is_some() { SignalPc::Deliver } else { SignalPc::Done };
        signaler.pair = pair;
    }

    fn raise_event(&self, raiser: usize, state: &State) -> RaisedEvent {
        let r = &state.raisers[raiser];
        debug_assert!(r.pc != RaisePc::NotBegun);
        // The body names the raise: the task's output says which event it took. A keyed
        // raise's retries are the same event: one ID (the key's) for all of them.
        let id = if self.keyed_raises { "k".to_owned() } else { format!("r{raiser}") };
        RaisedEvent { body: id.clone(), id, name: approval(), at: r.began }
    }
}

impl Model for Events {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let b = self.budgets;
        vec![State {
            now: 0,
            record: self.claim(0, 0),
            running: [true, false],
            current: 0,
            raisers: vec![Raiser { pc: RaisePc::NotBegun, began: 0, pinned: 0, pair: None }; self.raisers],
            signalers: vec![
                Signaler { pc: SignalPc::NotBegun, target: 0, uncertain: false, pair: None, answer: None };
                self.signalers
            ],
            key: None,
            raise_key: None,
            waiters: self.waiters.iter().map(|&run| Waiter { pc: WaitPc::NotBegun, run, pair: None }).collect(),
            tasks: self.waiters.iter().map(|&run| Task { run, took: None, closed: false, timed_out: false }).collect(),
            landed: Vec::new(),
            taken: Vec::new(),
            sent_to_timed_out: false,
            sweep: SweepPc::Idle,
            budgets: (b.lost_answers, b.crashes, b.redeliveries, b.timeouts),
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        let (lost, crashes, redeliveries, timeouts) = state.budgets;
        for (i, raiser) in state.raisers.iter().enumerate() {
            match raiser.pc {
                RaisePc::Done => {}
                RaisePc::Write(_) => {
                    actions.push(Action::Raise(i));
                    if lost > 0 {
                        actions.push(Action::RaiseLost(i));
                    }
                }
                RaisePc::Deliver { .. } | RaisePc::Read | RaisePc::PutKey { .. } => {
                    actions.push(Action::Raise(i));
                    if crashes > 0 {
                        actions.push(Action::RaiserDies(i));
                    }
                }
                RaisePc::NotBegun => actions.push(Action::Raise(i)),
            }
        }
        for (i, signaler) in state.signalers.iter().enumerate() {
            match signaler.pc {
                SignalPc::Done => {}
                SignalPc::Write(_) => {
                    actions.push(Action::Signal(i));
                    if lost > 0 {
                        actions.push(Action::SignalLost(i));
                    }
                }
                SignalPc::NotBegun => actions.push(Action::Signal(i)),
                _ => {
                    actions.push(Action::Signal(i));
                    // A crash between any two of its calls.
                    if crashes > 0 {
                        actions.push(Action::SignalerDies(i));
                    }
                }
            }
        }
        for (i, waiter) in state.waiters.iter().enumerate() {
            match waiter.pc {
                WaitPc::NotBegun if state.running[waiter.run] => actions.push(Action::Wait(i)),
                WaitPc::NotBegun => {}
                WaitPc::Register { .. } => {
                    actions.push(Action::Wait(i));
                    if lost > 0 {
                        actions.push(Action::WaitLost(i));
                    }
                }
                WaitPc::Deliver { .. } => {
                    actions.push(Action::Wait(i));
                    if crashes > 0 {
                        actions.push(Action::WaiterDies(i));
                    }
                }
                WaitPc::Done if redeliveries > 0 => actions.push(Action::Redeliver(i)),
                WaitPc::Done => {}
            }
            if timeouts > 0
                && !self.deadlines
                && !state.tasks[i].closed
                && state.tasks[i].took.is_none()
                && waiter.pc != WaitPc::NotBegun
            {
                actions.push(Action::TimeOut(i));
            }
        }
        if self.budgets.next_run && state.current == 0 && state.running[0] {
            actions.push(Action::RunEnds);
        }
        if self.budgets.next_run && state.current == 0 && !state.running[0] {
            actions.push(Action::NextRunStarts);
        }
        // A deliverer lives shorter than the sweep interval (its function's timeout): time
        // passes only between operations (a message waiting in SQS may stay behind).
        let between = state.raisers.iter().all(|r| matches!(r.pc, RaisePc::NotBegun | RaisePc::Done))
            && state.signalers.iter().all(|s| matches!(s.pc, SignalPc::NotBegun | SignalPc::Done))
            && state.waiters.iter().all(|w| !matches!(w.pc, WaitPc::Deliver { .. }));
        if state.now == 0 && between {
            actions.push(Action::Tick);
        }
        if state.sweep == SweepPc::Idle && !state.record.mailbox.sweepable(state.now).is_empty()
            || matches!(state.sweep, SweepPc::Sent { .. })
        {
            actions.push(Action::Sweep);
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::Raise(i) | Action::RaiseLost(i) => {
                let lost = matches!(action, Action::RaiseLost(_));
                match state.raisers[i].pc {
                    RaisePc::NotBegun => {
                        state.raisers[i].began = state.now;
                        state.raisers[i].pc = if self.keyed_raises { RaisePc::Read } else { RaisePc::Write(1) };
                    }
                    RaisePc::Read => {
                        let run = usize::from(state.record.execution_arn == self.run_arn(1));
                        state.raisers[i].pc = RaisePc::PutKey { run };
                    }
                    // (The key's window outlasts the model: an entry, once put, stays.)
                    RaisePc::PutKey { run } => {
                        let held = *state.raise_key.get_or_insert(run);
                        state.raisers[i].pinned = if self.variant == Variant::KeyedRaiseOwnRun { run } else { held };
                        state.raisers[i].pc = RaisePc::Write(1);
                    }
                    RaisePc::Write(attempt) => {
                        let event = self.raise_event(i, &state);
                        let guard = if self.keyed_raises {
                            RaiseGuard::Run(self.run_name(state.raisers[i].pinned))
                        } else {
                            RaiseGuard::ClaimedBy(state.raisers[i].began)
                        };
                        let added = self.add_event(&mut state, &event, &guard);
                        if lost {
                            state.budgets.0 -= 1;
                            // The service retries once more after a lost answer.
                            state.raisers[i].pc = if attempt < 2 { RaisePc::Write(attempt + 1) } else { RaisePc::Done };
                            return Some(state);
                        }
                        // Refused, and the record holds the event: an earlier attempt's (a replay).
                        let replayed = !added
                            && state.record.mailbox.raise_ids.contains(&event.id)
                            && (self.variant == Variant::NoRunGuard || guard.admits(&state.record));
                        // The pair in the record the write returned: none, and the event is buffered.
                        let pair = if added || replayed { self.formed(&state, &event.id) } else { None };
                        state.raisers[i].pc =
                            if pair.is_some() { RaisePc::Deliver { replayed } } else { RaisePc::Done };
                        state.raisers[i].pair = pair;
                    }
                    RaisePc::Deliver { replayed } => {
                        let pair = state.raisers[i].pair.take()?;
                        self.deliver(&mut state, &pair, replayed);
                        state.raisers[i].pc = RaisePc::Done;
                    }
                    RaisePc::Done => return None,
                }
            }
            Action::RaiserDies(i) => {
                state.budgets.1 -= 1;
                state.raisers[i].pc = RaisePc::Done;
            }
            Action::Signal(i) | Action::SignalLost(i) => {
                let lost = matches!(action, Action::SignalLost(_));
                let event = self.signal_event(i);
                match state.signalers[i].pc {
                    SignalPc::NotBegun => {
                        state.signalers[i].pc = if self.keyed { SignalPc::HoldKey } else { SignalPc::Claim };
                    }
                    // The key's put; held by another request: replayed into its run, or (its
                    // name never started) wait for it while it may be at it, or take it over.
                    SignalPc::HoldKey => match state.key {
                        None => {
                            state.key = Some(Pin::Fresh(i));
                            state.signalers[i].pc = SignalPc::Claim;
                        }
                        Some(Pin::Fresh(j)) if j != i && state.signalers[j].pc != SignalPc::Done => {
                            state.signalers[i].pc = SignalPc::Done;
                        }
                        Some(Pin::Fresh(_)) => {
                            state.key = Some(Pin::Fresh(i));
                            state.signalers[i].pc = SignalPc::Claim;
                        }
                        Some(Pin::Run(run)) => {
                            state.signalers[i].target = run;
                            state.signalers[i].pc = SignalPc::Replay;
                        }
                    },
                    // The claim (useExisting): refused by a live run, which it raises into;
                    // else a new run whose record holds the event (run 1: two runs are modelled).
                    SignalPc::Claim if state.record.status.takes_events() => {
                        state.signalers[i].target = state.current;
                        state.signalers[i].pc = if self.keyed { SignalPc::MoveKey } else { SignalPc::Write(1) };
                    }
                    SignalPc::MoveKey | SignalPc::MoveFresh => {
                        let (from, to, next) = match state.signalers[i].pc {
                            SignalPc::MoveKey => {
                                (Pin::Fresh(i), Pin::Run(state.signalers[i].target), SignalPc::Write(1))
                            }
                            _ => (Pin::Run(state.signalers[i].target), Pin::Fresh(i), SignalPc::Claim),
                        };
                        // Conditional on the entry naming what this request last put there.
                        if state.key == Some(from) {
                            state.key = Some(to);
                            state.signalers[i].pc = next;
                        } else {
                            state.signalers[i].pc = SignalPc::Done;
                        }
                    }
                    SignalPc::Replay => {
                        let target = state.signalers[i].target;
                        let guard = RaiseGuard::Run(self.run_name(target));
                        let added = self.add_event(&mut state, &event, &guard);
                        let admits = guard.admits(&state.record);
                        if added || (admits && state.record.mailbox.raise_ids.contains(&event.id)) {
                            self.signal_landed(&mut state, i, &event.id, Answer::Replayed(target));
                        } else if admits {
                            // Its run ended without the event: on to a run that holds it.
                            state.signalers[i].pc = SignalPc::MoveFresh;
                        } else {
                            // Replaced since: answered replayed, where the event is unknown.
                            state.signalers[i].pc = SignalPc::Done;
                        }
                    }
                    SignalPc::Claim => {
                        if state.current != 0 {
                            return None;
                        }
                        state.current = 1;
                        state.running[1] = true;
                        state.record = self.claim(1, state.now + 1);
                        state.record.mailbox = state.record.mailbox.with_event(&event);
                        state.landed.push((event.id.clone(), 1));
                        if self.keyed && state.key == Some(Pin::Fresh(i)) {
                            // The key's fresh name is the run's.
                            state.key = Some(Pin::Run(1));
                        }
                        state.signalers[i].answer = Some(Answer::Started(1));
                        state.signalers[i].pc = SignalPc::Done;
                    }
                    SignalPc::Write(attempt) => {
                        let target = state.signalers[i].target;
                        let guard = RaiseGuard::Run(self.run_name(target));
                        let added = self.add_event(&mut state, &event, &guard);
                        if lost {
                            state.budgets.0 -= 1;
                            state.signalers[i].uncertain = true;
                            state.signalers[i].pc = if attempt < 2 {
                                SignalPc::Write(attempt + 1)
                            } else {
                                state.signalers[i].answer = Some(Answer::Unconfirmed);
                                SignalPc::Done
                            };
                            return Some(state);
                        }
                        let admits = guard.admits(&state.record);
                        let replayed = !added && admits && state.record.mailbox.raise_ids.contains(&event.id);
                        let signaler = &mut state.signalers[i];
                        if added || replayed {
                            self.signal_landed(&mut state, i, &event.id, Answer::Raised(target));
                        } else if !admits && signaler.uncertain && self.variant != Variant::SignalForgetsUncertainty {
                            // Replaced since an attempt that may have landed: it cannot tell.
                            signaler.answer = Some(Answer::Unconfirmed);
                            signaler.pc = SignalPc::Done;
                        } else if !admits && self.keyed && self.variant != Variant::KeyedGoneOnReplace {
                            // Replaced since: a retry with the key may have raised it there.
                            signaler.answer = Some(Answer::Unconfirmed);
                            signaler.pc = SignalPc::Done;
                        } else if self.keyed {
                            // It ended without the event: the key back to a fresh name, the claim again.
                            signaler.pc = SignalPc::MoveFresh;
                        } else {
                            // It ended (its IDs kept: the event is not in it) or was replaced,
                            // and no attempt landed: the claim again.
                            signaler.pc = SignalPc::Claim;
                        }
                    }
                    SignalPc::Deliver => {
                        let pair = state.signalers[i].pair.take()?;
                        // (A keyed retry's may be a replay; the configurations with deadlines have no signals.)
                        let replayed = matches!(state.signalers[i].answer, Some(Answer::Replayed(_)));
                        self.deliver(&mut state, &pair, replayed);
                        state.signalers[i].pc = SignalPc::Done;
                    }
                    SignalPc::Done => return None,
                }
            }
            Action::SignalerDies(i) => {
                state.budgets.1 -= 1;
                state.signalers[i].pc = SignalPc::Done;
            }
            Action::Wait(i) | Action::WaitLost(i) => {
                let lost = matches!(action, Action::WaitLost(_));
                let run = state.waiters[i].run;
                let wait = Wait {
                    id: Wait::id_of(&token(i)),
                    name: approval(),
                    token: token(i),
                    at: state.now,
                    deadline: (self.deadlines && self.variant != Variant::NoDeadlines).then_some(WAIT_DEADLINE),
                };
                match state.waiters[i].pc {
                    WaitPc::NotBegun => state.waiters[i].pc = WaitPc::Register { redelivered: false },
                    WaitPc::Register { redelivered } => {
                        let record = &state.record;
                        let ours = record.execution_arn == self.run_arn(run) && record.status.takes_events();
                        let added = ours && record.mailbox.takes_wait(&wait);
                        if added {
                            state.record.mailbox = state.record.mailbox.with_wait(&wait);
                        }
                        if lost {
                            state.budgets.0 -= 1;
                            // SQS redelivers the message whose handling failed.
                            state.waiters[i].pc = WaitPc::Register { redelivered: true };
                            return Some(state);
                        }
                        let known = ours && state.record.mailbox.wait_ids.contains(&wait.id);
                        let event = state.record.mailbox.pair_of_wait(&wait.id).map(|pair| pair.event.1.id.clone());
                        let pair = event.and_then(|event| self.formed(&state, &event));
                        state.waiters[i].pc = match (known, &pair) {
                            // Not its run's record: the task is failed (SendTaskFailure).
                            (false, _) => {
                                state.tasks[i].closed = true;
                                WaitPc::Done
                            }
                            (true, None) => WaitPc::Done,
                            (true, Some(_)) => WaitPc::Deliver { replayed: !added || redelivered },
                        };
                        state.waiters[i].pair = pair;
                    }
                    WaitPc::Deliver { replayed } => {
                        let pair = state.waiters[i].pair.take()?;
                        self.deliver(&mut state, &pair, replayed);
                        state.waiters[i].pc = WaitPc::Done;
                    }
                    WaitPc::Done => return None,
                }
            }
            Action::WaiterDies(i) => {
                state.budgets.1 -= 1;
                // SQS redelivers the message of a handler that died.
                state.waiters[i].pc = WaitPc::Register { redelivered: true };
            }
            Action::Redeliver(i) => {
                state.budgets.2 -= 1;
                state.waiters[i].pc = WaitPc::Register { redelivered: true };
            }
            Action::TimeOut(i) => {
                state.budgets.3 -= 1;
                state.tasks[i].closed = true;
                state.tasks[i].timed_out = true;
            }
            Action::RunEnds => {
                state.running[0] = false;
                let update = ExecutionUpdate {
                    execution_arn: self.run_arn(0),
                    state: ExecutionState {
                        status: Status::Succeeded,
                        redrive_count: 0,
                        stop_date: Some(state.now),
                        output: None,
                        error: None,
                        cause: None,
                        input: None,
                    },
                    observed_at: state.now,
                    from: &[Status::Starting, Status::Running],
                    expires_at: None,
                    rewind_token: None,
                };
                if update.permits(&state.record) {
                    state.record = update.applied_to(&state.record);
                }
            }
            Action::NextRunStarts => {
                state.current = 1;
                state.running[1] = true;
                state.record = self.claim(1, state.now + 1);
            }
            Action::Tick => {
                state.now += SWEEP_AFTER_MILLIS;
                // Past their deadline, the waiting tasks time out (Step Functions' timer).
                if self.deadlines {
                    for task in state.tasks.iter_mut().filter(|task| !task.closed && task.took.is_none()) {
                        (task.closed, task.timed_out) = (true, true);
                    }
                }
            }
            Action::Sweep => match state.sweep.clone() {
                SweepPc::Idle => {
                    let record = state.record.clone();
                    let pairs = record.mailbox.sweepable(state.now);
                    for pair in &pairs {
                        // Sent again; a task that has it (or closed) refuses.
                        let task = Self::task_of(pair);
                        self.send(&mut state, &pair.event.1.body, task);
                    }
                    let mailbox = &record.mailbox;
                    state.sweep = SweepPc::Sent {
                        at: state.now,
                        run: state.current,
                        seen: (mailbox.events.len(), mailbox.waits.len(), mailbox.sweeps, record.redrive_count),
                        events: pairs.iter().map(|p| p.event.0).collect(),
                        waits: pairs.iter().map(|p| p.wait.0).collect(),
                    };
                }
                SweepPc::Sent { at, run, seen, events, waits } => {
                    let arn = self.run_arn(run);
                    // (`without` sets when what is left is due, as the store does with `due`.)
                    let sweep = Sweep { execution_arn: &arn, seen, events: &events, waits: &waits, due: None };
                    if sweep.permits(&state.record) {
                        state.record.mailbox = state.record.mailbox.without(&events, &waits);
                    }
                    state.sweep = SweepPc::Done { at };
                }
                SweepPc::Done { .. } => return None,
            },
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("an event is delivered at most once", |_, s: &State| {
                s.taken.iter().all(|(event, _)| s.taken.iter().filter(|(e, _)| e == event).count() == 1)
            }),
            Property::always("an event lands in one run only", |_, s: &State| {
                s.landed.iter().all(|(event, _)| s.landed.iter().filter(|(e, _)| e == event).count() == 1)
            }),
            Property::always("an event goes to a task of the run it landed in", |_, s: &State| {
                s.taken.iter().all(|(event, task)| s.landed.contains(&(event.clone(), s.tasks[*task].run)))
            }),
            Property::always("once all is done, a sweep left no event kept from an open wait", |_, s: &State| {
                let SweepPc::Done { at } = s.sweep else { return true };
                let quiet = s.raisers.iter().all(|r| r.pc == RaisePc::Done)
                    && s.waiters.iter().all(|w| matches!(w.pc, WaitPc::Done));
                if !quiet || !s.running[s.current] {
                    return true;
                }
                // Every pair old enough when the sweep ran: its task took its event (or had closed).
                s.record.mailbox.pairs().iter().filter(|pair| at - pair.formed_at() >= SWEEP_AFTER_MILLIS).all(|pair| {
                    let task = Events::task_of(pair);
                    s.tasks[task].took.is_some() || s.tasks[task].closed
                })
            }),
            Property::always("a signal-with-start lands in the run it answers", |m: &Events, s: &State| {
                s.signalers.iter().enumerate().all(|(i, signaler)| match signaler.answer {
                    Some(Answer::Started(run) | Answer::Raised(run) | Answer::Replayed(run)) => {
                        s.landed.contains(&(m.signal_id(i), run))
                    }
                    Some(Answer::Unconfirmed) | None => true,
                })
            }),
            Property::always(
                "with deadlines, no write's deliverer sends the event it paired to a wait that timed out",
                |m: &Events, s: &State| !m.deadlines || !s.sent_to_timed_out,
            ),
            Property::sometimes("an event is delivered", |_, s: &State| !s.taken.is_empty()),
        ]
    }
}

/// Checks the crate's mailbox over every interleaving; returns the checker's report.
pub fn check(label: &str, model: Events) -> String {
    let checker = model.checker().spawn_bfs().join();
    let report = format!(
        "{label}: {} states ({} unique), max depth {}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth()
    );
    checker.assert_properties();
    report
}

/// The counterexample the model must find for `property` under a naive variant.
pub fn counterexample(label: &str, model: Events, property: &'static str) -> Vec<Action> {
    let found = stateright::HasDiscoveries::AnyOf(std::collections::BTreeSet::from([property]));
    let checker = model.checker().finish_when(found).spawn_bfs().join();
    let path = checker.discovery(property).unwrap_or_else(|| panic!("{label}: no counterexample to {property:?}"));
    path.into_actions()
}
