//! Signal-with-start: the event reaches the run that was live when it was
//! written, or the run the request started, and never a second one.

use super::*;
use crate::domain::StartToken;
use crate::domain::mailbox::{EventName, MAX_EVENT_BODY_BYTES};
use crate::memory::{EngineOp, StoreFault, StoreOp, TaskOutcome};

fn approval() -> EventName {
    EventName::parse("approval").unwrap_or_else(|e| panic!("{e}"))
}

impl Given {
    async fn signal_with(&self, policy: StartPolicy, body: &str) -> Result<Signaled> {
        self.signal_through("Orders", &self.machine, policy, body).await
    }

    /// A signal through `function` (its state machine `machine`).
    async fn signal_through(
        &self,
        function: &str,
        machine: &StateMachineArn,
        policy: StartPolicy,
        body: &str,
    ) -> Result<Signaled> {
        let request = StartRequest {
            instance_id: &self.id,
            function_name: function,
            state_machine: machine,
            input: body,
            policy: &policy,
            reason: None,
            request_digest: None,
            min_key_window_millis: 0,
        };
        self.service.signal_with_start(request, &approval()).await
    }

    async fn signal(&self, body: &str) -> Result<Signaled> {
        self.signal_with(StartPolicy::default(), body).await
    }

    fn starts(&self) -> usize {
        self.service.engine().calls().iter().filter(|op| **op == EngineOp::Start).count()
    }

    /// Another request's claim, not started yet.
    fn other_claim(&self) -> Record {
        Record { status: Status::Starting, ..self.other_run() }
    }

    /// A live run of the instance that another start put in the record's place.
    fn other_run(&self) -> Record {
        let name = ExecutionName::new(&self.id, StartToken::new(9, 9));
        let mut record = Record::starting(&self.id, "Orders", &self.machine, &name, "{}", 2_000_000, LEASE);
        record.status = Status::Running;
        record
    }
}

fn raised(signaled: &Result<Signaled>) -> Option<(ExecutionArn, RaiseOutcome)> {
    match signaled {
        Ok(Signaled::Raised { execution_arn, outcome }) => Some((execution_arn.clone(), *outcome)),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn with_nothing_running_it_starts_a_run_whose_first_wait_takes_the_event() {
    let given = given();
    // When the instance signals with nothing running: a new run, the event in its claim
    let signaled = given.signal(r#"{"approved":true}"#).await;
    let Ok(Signaled::Started(started)) = &signaled else { panic!("not started: {signaled:?}") };
    assert_eq!(started.outcome, StartOutcome::Started);
    assert_eq!(given.starts(), 1);
    let record = given.record().unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.mailbox.events.len(), 1, "buffered from the claim on");
    assert_eq!(record.mailbox.events[0].body, r#"{"approved":true}"#);
    // Then its first wait of that name takes it: one write, one SendTaskSuccess
    given.service.engine().wait_for_task(&started.execution_arn, "t1");
    let wait = WaitRequest {
        execution_arn: started.execution_arn.clone(),
        name: approval(),
        token: "t1".into(),
        deadline: None,
    };
    assert_eq!(given.service.register_wait(&wait).await.ok(), Some(WaitOutcome::Delivered));
    assert_eq!(given.service.engine().task_outcome("t1"), Some(TaskOutcome::Succeeded(r#"{"approved":true}"#.into())));
}

#[tokio::test(start_paused = true)]
async fn with_a_run_live_it_raises_into_that_run_and_starts_nothing() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.service.engine().wait_for_task(&arn, "t1");
    let wait = WaitRequest { execution_arn: arn.clone(), name: approval(), token: "t1".into(), deadline: None };
    assert_eq!(given.service.register_wait(&wait).await.ok(), Some(WaitOutcome::Waiting));
    let signaled = given.signal(r#"{"n":1}"#).await;
    assert_eq!(raised(&signaled), Some((arn.clone(), RaiseOutcome::Delivered)));
    assert_eq!(given.starts(), 1, "only the first start");
    assert_eq!(given.service.engine().task_outcome("t1"), Some(TaskOutcome::Succeeded(r#"{"n":1}"#.into())));
    // Not waiting: buffered in it
    let again = given.signal(r#"{"n":2}"#).await;
    assert_eq!(raised(&again), Some((arn, RaiseOutcome::Buffered { buffered: 1 })));
}

#[tokio::test(start_paused = true)]
async fn a_run_that_ends_before_the_event_is_written_gives_way_to_a_new_run_holding_it() {
    let given = given();
    let first = arn_of(&given.start().await);
    // The claim is refused (the run is live), then the run ends before the raise's write
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::AfterEnd(Status::Succeeded));
    let signaled = given.signal(r#"{"late":true}"#).await;
    let Ok(Signaled::Started(started)) = &signaled else { panic!("not started anew: {signaled:?}") };
    assert_ne!(started.execution_arn, first);
    let record = given.record().unwrap_or_else(|| panic!("no record"));
    assert_eq!((record.execution_arn.clone(), record.mailbox.events.len()), (started.execution_arn.clone(), 1));
    assert_eq!(given.starts(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_may_have_landed_in_a_run_since_replaced_is_unconfirmed_not_raised_again() {
    let given = given();
    arn_of(&given.start().await);
    // The first write lands and its answer is lost; then another start replaces the run
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::LandsThenFails);
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::AfterReplace(Box::new(given.other_run())));
    let signaled = given.signal(r#"{"n":1}"#).await;
    assert!(matches!(signaled, Err(Error::EventUnconfirmed { .. })), "{signaled:?}");
    // Neither raised into the new run nor started one
    assert_eq!(given.record().map(|r| r.mailbox.events.len()), Some(0));
    assert_eq!(given.starts(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_landed_in_a_run_that_then_ended_is_answered_as_raised_into_it() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::LandsThenFails);
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::AfterEnd(Status::Succeeded));
    // The ended run's record keeps its raise IDs: the event is known to have landed there,
    // and the answer says the run has ended since (not "buffered")
    let signaled = given.signal(r#"{"n":1}"#).await;
    assert_eq!(raised(&signaled), Some((arn, RaiseOutcome::Ended)));
    assert_eq!(given.starts(), 1, "no second run for an event that reached the first");
}

#[tokio::test(start_paused = true)]
async fn an_oversized_signal_is_refused_before_any_call() {
    let given = given();
    let large = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_EVENT_BODY_BYTES));
    assert!(matches!(given.signal(&large).await, Err(Error::InvalidEvent(_))));
    assert_eq!((given.record(), given.starts()), (None, 0));
}

#[tokio::test(start_paused = true)]
async fn a_keyed_signal_that_started_a_run_replays_into_it_and_starts_nothing_more() {
    let given = given();
    let first = given.signal_with(given.keyed("k-1"), r#"{"n":1}"#).await;
    let Ok(Signaled::Started(started)) = &first else { panic!("not started: {first:?}") };
    // The client retries with its key: the same run, the same event, held once
    let again = given.signal_with(given.keyed("k-1"), r#"{"n":1}"#).await;
    let Ok(Signaled::Replayed { execution_arn, .. }) = &again else { panic!("not replayed: {again:?}") };
    assert_eq!(execution_arn, &started.execution_arn);
    assert_eq!((given.starts(), given.record().map(|r| r.mailbox.events.len())), (1, Some(1)));
    // The same key for another request is refused
    let other = given.signal_with(given.keyed("k-1"), r#"{"n":2}"#).await;
    assert!(matches!(other, Err(Error::IdempotencyKeyReused(_))), "{other:?}");
}

#[tokio::test(start_paused = true)]
async fn a_keyed_signal_goes_to_the_run_its_key_names_and_never_to_a_later_one() {
    let given = given();
    let first_run = arn_of(&given.start().await);
    let raised_once = given.signal_with(given.keyed("k-2"), r#"{"n":1}"#).await;
    assert_eq!(raised(&raised_once), Some((first_run.clone(), RaiseOutcome::Buffered { buffered: 1 })));
    // That run ends and another starts; the client's retry must not raise into the new one
    given.ends(&first_run, Status::Succeeded).await;
    let second_run = arn_of(&given.start().await);
    let retried = given.signal_with(given.keyed("k-2"), r#"{"n":1}"#).await;
    // Answered as replayed into the run it went to, which has ended since
    let replayed = Signaled::Replayed { execution_arn: first_run.clone(), outcome: RaiseOutcome::Ended };
    assert_eq!(retried.ok(), Some(replayed));
    let record = given.record().unwrap_or_else(|| panic!("no record"));
    assert_eq!((record.execution_arn, record.mailbox.events.len()), (second_run, 0));
}

#[tokio::test(start_paused = true)]
async fn a_keyed_signal_whose_live_run_ended_first_moves_its_key_to_the_run_it_starts() {
    let given = given();
    let first_run = arn_of(&given.start().await);
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::AfterEnd(Status::Succeeded));
    let signaled = given.signal_with(given.keyed("k-3"), r#"{"n":1}"#).await;
    let Ok(Signaled::Started(started)) = &signaled else { panic!("not started anew: {signaled:?}") };
    assert_ne!(started.execution_arn, first_run);
    // The retry replays into the run it started, not the one that ended
    let again = given.signal_with(given.keyed("k-3"), r#"{"n":1}"#).await;
    let Ok(Signaled::Replayed { execution_arn, .. }) = &again else { panic!("not replayed: {again:?}") };
    assert_eq!(execution_arn, &started.execution_arn);
    assert_eq!((given.starts(), given.record().map(|r| r.mailbox.events.len())), (2, Some(1)));
}

#[tokio::test(start_paused = true)]
async fn a_signal_meeting_a_claim_not_started_yet_is_told_to_retry_not_buffered_in_it() {
    let given = given();
    // Another request's claim lands first; its start may yet fail (and its mailbox with it)
    given.service.store().fail_next(StoreOp::Claim, StoreFault::AfterReplace(Box::new(given.other_claim())));
    let signaled = given.signal(r#"{"n":1}"#).await;
    assert!(matches!(signaled, Err(Error::StillStarting(_))), "{signaled:?}");
    assert_eq!(given.record().map(|r| (r.status, r.mailbox.events.len())), Some((Status::Starting, 0)));
}

#[tokio::test(start_paused = true)]
async fn a_keyed_signal_through_another_function_pins_the_live_runs_own_execution() {
    let given = given();
    let other = StateMachineArn::parse("arn:aws:states:us-east-1:123456789012:stateMachine:Other")
        .unwrap_or_else(|e| panic!("{e}"));
    given.service.engine().add_state_machine(&other, crate::ports::WorkflowType::Standard);
    let live = arn_of(&given.start().await);
    // Signaled through a function whose state machine is not the live run's
    let first = given.signal_through("Other", &other, given.keyed("k-4"), "{}").await;
    assert_eq!(raised(&first).map(|(arn, _)| arn), Some(live.clone()));
    // The key names the live run's own execution: its retry replays there at once
    let again = given.signal_through("Other", &other, given.keyed("k-4"), "{}").await;
    assert!(matches!(&again, Ok(Signaled::Replayed { execution_arn, .. }) if *execution_arn == live), "{again:?}");
}

#[tokio::test(start_paused = true)]
async fn a_keyed_signal_whose_run_was_replaced_meanwhile_is_unconfirmed_never_raised_into_the_next() {
    let given = given();
    arn_of(&given.start().await);
    // Before its raise lands, a retry with the same key may have raised it into the live run,
    // which then ended and was replaced: the record says nothing of that run any more
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::AfterReplace(Box::new(given.other_run())));
    let signaled = given.signal_with(given.keyed("k-5"), "{}").await;
    assert!(matches!(signaled, Err(Error::EventUnconfirmed { .. })), "{signaled:?}");
    assert_eq!(given.record().map(|r| r.mailbox.events.len()), Some(0), "not raised into the run that replaced it");
}

#[tokio::test(start_paused = true)]
async fn a_keyed_retry_after_its_first_request_died_before_raising_starts_a_run_holding_it() {
    let given = given();
    let live = arn_of(&given.start().await);
    // The first request moves its key to the live run, then fails before its raise lands
    let broken = crate::ports::StoreError::Failed("injected".into());
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::Fails(broken));
    assert!(given.signal_with(given.keyed("k-6"), "{}").await.is_err());
    given.ends(&live, Status::Succeeded).await;
    // Its retry finds the run ended without the event: a new run holds it
    let retried = given.signal_with(given.keyed("k-6"), "{}").await;
    let Ok(Signaled::Started(started)) = &retried else { panic!("not started: {retried:?}") };
    assert_ne!(started.execution_arn, live);
    assert_eq!(given.record().map(|r| r.mailbox.events.len()), Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_key_move_whose_answer_was_lost_to_the_sdks_retry_goes_on() {
    let given = given();
    let live = arn_of(&given.start().await);
    // The move lands, its answer is lost, and the SDK's retry is refused by that very move
    given.service.store().fail_next(StoreOp::ReplaceKey, StoreFault::Retried);
    let signaled = given.signal_with(given.keyed("k-7"), "{}").await;
    assert_eq!(raised(&signaled), Some((live, RaiseOutcome::Buffered { buffered: 1 })));
}

#[tokio::test(start_paused = true)]
async fn a_signal_confirming_a_fresh_claim_counts_no_reconciliation() {
    // (Reconciliations.Corrected feeds the lost-events alarm: a burst of signals right after
    // starts must not look like lost status events.)
    let (counters, _guard) = super::Counters::install();
    let given = given();
    let live = arn_of(&given.start().await);
    assert_eq!(given.record().map(|r| r.status), Some(Status::Starting), "its RUNNING event not in yet");
    assert_eq!(raised(&given.signal("{}").await).map(|(arn, _)| arn), Some(live));
    assert_eq!(counters.get("Reconciliations.Corrected") + counters.get("Reconciliations.Current"), 0);
}
