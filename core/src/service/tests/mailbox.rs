//! Events into live runs: raises, waits, and what is delivered where.

use super::*;
use crate::domain::mailbox::{
    DEADLINE_MARGIN_MILLIS, EventName, MAX_EVENT_BODY_BYTES, MAX_EVENTS, MAX_WAITS, RaisedEvent, SWEEP_AFTER_MILLIS,
};
use crate::memory::{EngineOp, Scripted, StoreFault, StoreOp, TaskOutcome};
use crate::ports::{RaiseGuard, StoreError};

fn name(raw: &str) -> EventName {
    EventName::parse(raw).unwrap_or_else(|e| panic!("{e}"))
}

impl Given {
    async fn raise_keyed(&self, event: &str, body: &str, key: Option<&str>) -> Result<Raised> {
        let key = key.map(|key| IdempotencyKey::parse(key, self.id.key().as_str()).unwrap_or_else(|e| panic!("{e}")));
        let name = name(event);
        self.service.raise_event(RaiseRequest { instance_id: &self.id, name: &name, body, key: key.as_ref() }).await
    }

    async fn raise(&self, event: &str, body: &str) -> Result<Raised> {
        self.raise_keyed(event, body, None).await
    }

    /// A task of `arn` starts waiting on `token`, and its wait is registered.
    async fn wait(&self, arn: &ExecutionArn, event: &str, token: &str) -> Result<WaitOutcome> {
        self.service.engine().wait_for_task(arn, token);
        self.register(arn, event, token).await
    }

    /// The wait's message (again).
    async fn register(&self, arn: &ExecutionArn, event: &str, token: &str) -> Result<WaitOutcome> {
        self.register_until(arn, event, token, None).await
    }

    /// The wait's message, saying when its task times out.
    async fn register_until(
        &self,
        arn: &ExecutionArn,
        event: &str,
        token: &str,
        deadline: Option<Millis>,
    ) -> Result<WaitOutcome> {
        let request = WaitRequest { execution_arn: arn.clone(), name: name(event), token: token.into(), deadline };
        self.service.register_wait(&request).await
    }

    fn now(&self) -> Millis {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn outcome(&self, token: &str) -> Option<TaskOutcome> {
        self.service.engine().task_outcome(token)
    }

    fn sends(&self) -> usize {
        self.service.engine().calls().iter().filter(|op| **op == EngineOp::SendTaskSuccess).count()
    }
}

/// A started instance whose run waits for `approval` on token `t1`.
async fn waiting() -> (Given, ExecutionArn) {
    let given = given();
    let arn = arn_of(&given.start().await);
    assert_eq!(given.wait(&arn, "approval", "t1").await.ok(), Some(WaitOutcome::Waiting));
    (given, arn)
}

fn delivered(body: &str) -> Option<TaskOutcome> {
    Some(TaskOutcome::Succeeded(body.into()))
}

fn outcome_of(raised: &Result<Raised>) -> Option<RaiseOutcome> {
    raised.as_ref().ok().map(|raised| raised.outcome)
}

#[tokio::test(start_paused = true)]
async fn an_event_raised_before_its_wait_is_buffered_then_taken_by_the_wait() {
    let given = given();
    let arn = arn_of(&given.start().await);
    // When an event is raised before any wait: buffered, with no Step Functions call
    let raised = given.raise("approval", r#"{"approved":true}"#).await;
    assert_eq!(outcome_of(&raised), Some(RaiseOutcome::Buffered { buffered: 1 }));
    assert_eq!(raised.map(|r| r.execution_arn).ok(), Some(arn.clone()));
    assert_eq!(given.sends(), 0);
    // Then the wait takes it: its task's output is the event's body
    assert_eq!(given.wait(&arn, "approval", "t1").await.ok(), Some(WaitOutcome::Delivered));
    assert_eq!(given.outcome("t1"), delivered(r#"{"approved":true}"#));
    assert_eq!(given.sends(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_event_raised_to_a_waiting_run_is_delivered_at_once() {
    let given = given();
    let arn = arn_of(&given.start().await);
    assert_eq!(given.wait(&arn, "approval", "t1").await.ok(), Some(WaitOutcome::Waiting));
    // A wait of another name takes nothing
    assert_eq!(given.wait(&arn, "other", "t2").await.ok(), Some(WaitOutcome::Waiting));
    let raised = given.raise("approval", r#""yes""#).await;
    assert_eq!(outcome_of(&raised), Some(RaiseOutcome::Delivered));
    assert_eq!((given.outcome("t1"), given.outcome("t2")), (delivered(r#""yes""#), None));
    assert_eq!(given.sends(), 1, "one write and one SendTaskSuccess");
}

#[tokio::test(start_paused = true)]
async fn events_of_a_name_go_to_its_waits_in_order_each_once() {
    let given = given();
    let arn = arn_of(&given.start().await);
    for (i, body) in ["1", "2", "3"].iter().enumerate() {
        let raised = given.raise("step", body).await;
        assert_eq!(outcome_of(&raised), Some(RaiseOutcome::Buffered { buffered: i + 1 }));
    }
    for (token, body) in [("t1", "1"), ("t2", "2"), ("t3", "3")] {
        assert_eq!(given.wait(&arn, "step", token).await.ok(), Some(WaitOutcome::Delivered));
        assert_eq!(given.outcome(token), delivered(body));
    }
    assert_eq!(given.wait(&arn, "step", "t4").await.ok(), Some(WaitOutcome::Waiting), "nothing left for a fourth");
    assert_eq!(given.sends(), 3);
}

#[tokio::test(start_paused = true)]
async fn raises_into_no_run_or_an_ended_one_are_refused_and_write_nothing() {
    let given = given();
    let unknown = given.raise("approval", "{}").await;
    assert!(matches!(unknown, Err(Error::InstanceNotFound(_))), "{unknown:?}");
    let arn = arn_of(&given.start().await);
    given.ends(&arn, Status::Succeeded).await;
    let ended = given.raise("approval", "{}").await;
    assert!(matches!(ended, Err(Error::AlreadyTerminal { status: Status::Succeeded, .. })), "{ended:?}");
    assert_eq!(given.record().map(|r| r.mailbox), Some(Default::default()));
}

/// An instance whose run ended and that started again after a keyless raise into it
/// began: the instance, when the raise began, and the new run.
async fn restarted_after_a_raise_began() -> (Given, Millis, ExecutionArn) {
    let given = given();
    let first = arn_of(&given.start().await);
    let began = given.now();
    given.ends(&first, Status::Succeeded).await;
    given.advance(1);
    let second = arn_of(&given.start().await);
    assert!(given.record().is_some_and(|r| r.created_at > began));
    (given, began, second)
}

impl Given {
    /// A keyless raise that began at `began`, written now.
    async fn raise_begun_at(&self, began: Millis) -> Result<Raised> {
        let event = RaisedEvent { id: "raise-1".into(), name: name("approval"), body: "{}".into(), at: began };
        self.service.add_event(self.id.as_str(), &self.id.key(), &event, &RaiseGuard::ClaimedBy(began)).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_raise_whose_instance_started_again_after_it_began_is_refused_run_ended_not_raised_into_the_new_run() {
    // (The API test's two workers raise into and restart the same IDs: this is what they meet.)
    let (given, began, second) = restarted_after_a_raise_began().await;
    // Every attempt was answered: the event is in no run, and certainly so
    let raised = given.raise_begun_at(began).await;
    assert!(matches!(raised, Err(Error::RunEnded { .. })), "{raised:?}");
    assert!(given.record().is_some_and(|r| r.execution_arn == second && r.mailbox.events.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn a_raise_whose_attempt_went_unanswered_before_the_instance_started_again_is_unconfirmed() {
    let (given, began, second) = restarted_after_a_raise_began().await;
    // An attempt unanswered (it might have landed in the first run, for all the service knows)
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::Fails(StoreError::Unavailable("lost".into())));
    let raised = given.raise_begun_at(began).await;
    assert!(matches!(raised, Err(Error::EventUnconfirmed { .. })), "{raised:?}");
    assert!(given.record().is_some_and(|r| r.execution_arn == second && r.mailbox.events.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn an_oversized_body_is_refused_before_any_write() {
    let given = given();
    arn_of(&given.start().await);
    let body = format!("\"{}\"", "x".repeat(MAX_EVENT_BODY_BYTES));
    let refused = given.raise("approval", &body).await;
    assert!(matches!(refused, Err(Error::InvalidEvent(_))), "{refused:?}");
    assert!(given.record().is_some_and(|r| r.mailbox.events.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn a_write_whose_answer_was_lost_is_found_not_repeated() {
    let (given, arn) = waiting().await;
    // The first attempt lands, its answer is lost; the service's retry finds its own event
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::LandsThenFails);
    let raised = given.raise("approval", "1").await;
    assert_eq!(outcome_of(&raised), Some(RaiseOutcome::Delivered));
    assert_eq!(given.record().map(|r| r.mailbox.events.len()), Some(1), "one event, not two");
    assert_eq!(given.outcome("t1"), delivered("1"));
    // and a second wait gets nothing: the event was not raised twice
    assert_eq!(given.wait(&arn, "approval", "t2").await.ok(), Some(WaitOutcome::Waiting));
}

#[tokio::test(start_paused = true)]
async fn a_keyed_retry_replays_and_never_reaches_a_later_run() {
    let given = given();
    let first = arn_of(&given.start().await);
    assert!(given.raise_keyed("approval", "1", Some("k")).await.is_ok());
    let again = given.raise_keyed("approval", "1", Some("k")).await;
    assert_eq!(again.as_ref().map(|r| r.replayed).ok(), Some(true));
    assert_eq!(given.record().map(|r| r.mailbox.events.len()), Some(1));
    let other = given.raise_keyed("approval", "2", Some("k")).await;
    assert!(matches!(other, Err(Error::IdempotencyKeyReused(_))), "{other:?}");
    // When the run ends and a new one starts, the key's retry does not raise into the new run
    given.ends(&first, Status::Succeeded).await;
    let second = arn_of(&given.start().await);
    let late = given.raise_keyed("approval", "1", Some("k")).await;
    assert!(matches!(late, Err(Error::RunEnded { .. })), "{late:?}");
    assert_eq!(given.wait(&second, "approval", "t1").await.ok(), Some(WaitOutcome::Waiting));
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_wait_is_registered_once() {
    let given = given();
    let arn = arn_of(&given.start().await);
    assert_eq!(given.wait(&arn, "approval", "t1").await.ok(), Some(WaitOutcome::Waiting));
    assert_eq!(given.register(&arn, "approval", "t1").await.ok(), Some(WaitOutcome::Waiting));
    assert_eq!(given.record().map(|r| r.mailbox.waits.len()), Some(1));
    // Two events: the first to t1, the second stays buffered (no second wait took it)
    assert_eq!(outcome_of(&given.raise("approval", "1").await), Some(RaiseOutcome::Delivered));
    assert_eq!(outcome_of(&given.raise("approval", "2").await), Some(RaiseOutcome::Buffered { buffered: 1 }));
    // The same message once more, after delivery: sent again to the same token, taken once
    assert_eq!(given.register(&arn, "approval", "t1").await.ok(), Some(WaitOutcome::Delivered));
    assert_eq!(given.outcome("t1"), delivered("1"));
}

#[tokio::test(start_paused = true)]
async fn a_wait_of_another_run_is_failed_not_registered() {
    let given = given();
    let first = arn_of(&given.start().await);
    given.ends(&first, Status::Failed).await;
    let second = arn_of(&given.start().await);
    // The old run, redriven from outside, waits: it is not the instance's run any more
    given.service.engine().redrive_from_outside(&first);
    assert_eq!(given.wait(&first, "approval", "old").await.ok(), Some(WaitOutcome::Failed));
    assert_eq!(given.outcome("old"), Some(TaskOutcome::Failed(WAIT_NOT_CURRENT_ERROR.into())));
    assert!(given.record().is_some_and(|r| r.execution_arn == second && r.mailbox.waits.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn a_wait_of_the_run_redriven_from_outside_before_its_running_event_is_registered() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.ends(&arn, Status::Failed).await;
    // Redriven from outside: its wait's message comes before its RUNNING event
    given.service.engine().redrive_from_outside(&arn);
    assert_eq!(given.wait(&arn, "approval", "again").await.ok(), Some(WaitOutcome::Waiting));
    let record = given.record().unwrap_or_else(|| panic!("no record"));
    assert_eq!((record.status, record.redrive_count, record.mailbox.waits.len()), (Status::Running, 1, 1));
    // And an event raised now reaches it
    assert_eq!(outcome_of(&given.raise("approval", "1").await), Some(RaiseOutcome::Delivered));
    assert_eq!(given.outcome("again"), delivered("1"));
}

#[tokio::test(start_paused = true)]
async fn a_wait_whose_task_the_role_may_not_fail_is_acknowledged_not_retried_forever() {
    let given = given();
    let first = arn_of(&given.start().await);
    given.ends(&first, Status::Failed).await;
    arn_of(&given.start().await);
    given.service.engine().redrive_from_outside(&first);
    let denied =
        EngineError::Refused { code: "AccessDeniedException".into(), message: "no".into(), caller_fault: false };
    given.service.engine().script(EngineOp::SendTaskFailure, Scripted::Fails(denied));
    assert_eq!(given.wait(&first, "approval", "old").await.ok(), Some(WaitOutcome::Failed));
}

#[tokio::test(start_paused = true)]
async fn an_event_matched_to_a_wait_that_had_timed_out_is_dropped_and_counted() {
    // (Whether SendTaskSuccess found the task closed by a timeout or by a concurrent
    // send of the same pair cannot be told apart: passing the event on could deliver it twice.)
    let (counters, _guard) = Counters::install();
    let (given, arn) = waiting().await;
    given.service.engine().time_out_task("t1");
    given.wait(&arn, "approval", "t2").await.ok();
    assert_eq!(outcome_of(&given.raise("approval", "1").await), Some(RaiseOutcome::WaitClosed));
    assert_eq!((given.outcome("t1"), given.outcome("t2")), (Some(TaskOutcome::TimedOut), None));
    assert_eq!(outcome_of(&given.raise("approval", "2").await), Some(RaiseOutcome::Delivered), "to t2");
    // A buffered event whose wait had timed out when it registered: the same
    assert_eq!(outcome_of(&given.raise("approval", "3").await), Some(RaiseOutcome::Buffered { buffered: 1 }));
    given.service.engine().wait_for_task(&arn, "t3");
    given.service.engine().time_out_task("t3");
    assert_eq!(given.register(&arn, "approval", "t3").await.ok(), Some(WaitOutcome::Closed));
    assert_eq!(counters.get("EventsDropped.WaitClosed"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_wait_whose_deadline_passed_takes_no_event_and_the_next_wait_does() {
    // Given a run whose first wait's task times out in 2 min (its message said so)
    let (counters, _guard) = Counters::install();
    let given = given();
    let arn = arn_of(&given.start().await);
    given.service.engine().wait_for_task(&arn, "t1");
    let deadline = given.now() + 120_000;
    assert_eq!(given.register_until(&arn, "approval", "t1", Some(deadline)).await.ok(), Some(WaitOutcome::Waiting));
    // When it has timed out, and the state machine waits again (a reminder loop)
    given.advance(121_000);
    given.service.engine().time_out_task("t1");
    // Then an event raised now is buffered for the next wait, not dropped at the closed one
    let raised = given.raise("approval", r#"{"approved":true}"#).await;
    assert_eq!(outcome_of(&raised), Some(RaiseOutcome::Buffered { buffered: 1 }));
    assert_eq!(given.sends(), 0, "nothing sent to the timed-out task");
    given.service.engine().wait_for_task(&arn, "t2");
    let next = given.register_until(&arn, "approval", "t2", Some(given.now() + 600_000)).await;
    assert_eq!(next.ok(), Some(WaitOutcome::Delivered));
    assert_eq!(given.outcome("t2"), delivered(r#"{"approved":true}"#));
    assert_eq!(counters.get("EventsDropped.WaitClosed"), 0);
    // An event that would reach a wait within the margin of its deadline waits for the next one too
    given.service.engine().wait_for_task(&arn, "t3");
    let close = given.now() + DEADLINE_MARGIN_MILLIS - 1;
    given.register_until(&arn, "approval", "t3", Some(close)).await.ok();
    assert_eq!(outcome_of(&given.raise("approval", "2").await), Some(RaiseOutcome::Buffered { buffered: 1 }));
    assert_eq!(given.outcome("t3"), None);
}

#[tokio::test(start_paused = true)]
async fn a_raise_counts_the_margin_from_its_write_not_from_when_it_began() {
    // (A raise may spend seconds before its write: its key, the store's retries, a sweep;
    // its deliverer follows the write, so the margin before a wait's deadline counts from it.)
    let given = given();
    let arn = arn_of(&given.start().await);
    given.service.engine().wait_for_task(&arn, "t1");
    let deadline = given.now() + DEADLINE_MARGIN_MILLIS + 10_000;
    given.register_until(&arn, "approval", "t1", Some(deadline)).await.ok();
    // When the raise's write goes out 30 s after it began (every clock reading takes 30 s)
    given.tick.store(30_000, std::sync::atomic::Ordering::SeqCst);
    let raised = given.raise("approval", "1").await;
    given.tick.store(0, std::sync::atomic::Ordering::SeqCst);
    // Then its event is not sent to a wait whose deadline is less than the margin away
    assert_eq!(outcome_of(&raised), Some(RaiseOutcome::Buffered { buffered: 1 }));
    assert_eq!(given.outcome("t1"), None);
}

#[tokio::test(start_paused = true)]
async fn waits_that_timed_out_unanswered_are_swept_to_make_room() {
    // Given a run that waited as often as a record holds, each wait timing out unanswered
    let given = given();
    let arn = arn_of(&given.start().await);
    for i in 0..MAX_WAITS {
        let token = format!("t{i}");
        given.service.engine().wait_for_task(&arn, &token);
        given.register_until(&arn, "approval", &token, Some(given.now() + 1_000)).await.ok();
    }
    given.service.engine().wait_for_task(&arn, "next");
    let full = given.register_until(&arn, "approval", "next", Some(given.now() + 1_000)).await;
    assert_eq!(full.ok(), Some(WaitOutcome::Failed), "no room while the deadlines are recent");
    // When their deadlines have passed, the next wait's registration sweeps them
    given.advance(1_000);
    given.service.engine().wait_for_task(&arn, "later");
    let later = given.register_until(&arn, "approval", "later", Some(given.now() + 600_000)).await;
    assert_eq!(later.ok(), Some(WaitOutcome::Waiting));
    let waits = given.record().map(|r| r.mailbox.waits.iter().map(|w| w.token.clone()).collect::<Vec<_>>());
    assert_eq!(
        waits,
        Some(vec!["later".to_string()]),
        "the expired ones were swept; no SendTaskSuccess: {:?}",
        given.sends()
    );
    assert_eq!(given.sends(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_delivery_lost_with_its_deliverer_is_sent_by_the_scheduled_sweep() {
    // Given a raise whose deliverer died between its write and SendTaskSuccess
    let (given, _arn) = waiting().await;
    given.service.engine().script(EngineOp::SendTaskSuccess, Scripted::Hangs);
    let died = tokio::time::timeout(std::time::Duration::from_millis(50), given.raise("approval", "1")).await;
    assert!(died.is_err());
    // Not due yet: the deliverer may still be at it
    assert_eq!(given.service.sweep_due(10, std::time::Duration::from_secs(10)).await.ok().map(|r| r.due), Some(0));
    assert_eq!(given.outcome("t1"), None);
    // Once due, with no later write to the instance, the scheduled sweep sends it and removes the pair
    given.advance(SWEEP_AFTER_MILLIS);
    assert_eq!(
        given.service.sweep_due(10, std::time::Duration::from_secs(10)).await.ok(),
        Some(SweepReport { due: 1, swept: 1, failed: 0 })
    );
    assert_eq!(given.outcome("t1"), delivered("1"));
    let left = given.record().map(|r| (r.mailbox.events.len(), r.mailbox.sweep_at));
    assert_eq!(left, Some((0, None)), "nothing left, nothing due");
}

#[tokio::test(start_paused = true)]
async fn a_due_record_whose_sweep_fails_is_due_again_later_not_first_in_line() {
    let budget = std::time::Duration::from_secs(10);
    let (given, _arn) = waiting().await;
    given.service.engine().script(EngineOp::SendTaskSuccess, Scripted::Hangs);
    let died = tokio::time::timeout(std::time::Duration::from_millis(50), given.raise("approval", "1")).await;
    assert!(died.is_err());
    given.advance(SWEEP_AFTER_MILLIS);
    // When Step Functions throttles every send of the sweep
    let throttled = EngineError::Throttled { code: "ThrottlingException".into(), message: "slow down".into() };
    for _ in 0..3 {
        given.service.engine().script(EngineOp::SendTaskSuccess, Scripted::Fails(throttled.clone()));
    }
    let report = given.service.sweep_due(10, budget).await;
    assert_eq!(report.ok(), Some(SweepReport { due: 1, swept: 0, failed: 1 }));
    // Then the record is due again 5 minutes on (not at the head of the next minute's sweep)
    assert_eq!(given.record().and_then(|r| r.mailbox.sweep_at), Some(given.now() + SWEEP_AFTER_MILLIS));
    given.advance(60_000);
    assert_eq!(given.service.sweep_due(10, budget).await.ok().map(|r| r.due), Some(0));
    given.advance(SWEEP_AFTER_MILLIS);
    assert_eq!(given.service.sweep_due(10, budget).await.ok().map(|r| r.swept), Some(1));
    assert_eq!(given.outcome("t1"), delivered("1"));
}

#[tokio::test(start_paused = true)]
async fn a_mailbox_is_due_for_the_scheduled_sweep_while_it_holds_pairs() {
    // Given an event buffered (a raise cannot tell whether it forms a pair: due in 5 minutes)
    let given = given();
    let arn = arn_of(&given.start().await);
    given.raise("approval", "1").await.ok();
    assert_eq!(given.record().and_then(|r| r.mailbox.sweep_at), Some(given.now() + SWEEP_AFTER_MILLIS));
    // When the sweep finds no pair, the mailbox is no longer due
    given.advance(SWEEP_AFTER_MILLIS);
    assert_eq!(
        given.service.sweep_due(10, std::time::Duration::from_secs(10)).await.ok(),
        Some(SweepReport { due: 1, swept: 1, failed: 0 })
    );
    assert_eq!(given.record().and_then(|r| r.mailbox.sweep_at), None);
    assert_eq!(given.service.sweep_due(10, std::time::Duration::from_secs(10)).await.ok().map(|r| r.due), Some(0));
    // A wait that takes the event makes it due again, 5 minutes on; the sweep before then waits
    assert_eq!(given.wait(&arn, "approval", "t1").await.ok(), Some(WaitOutcome::Delivered));
    let due = given.now() + SWEEP_AFTER_MILLIS;
    assert_eq!(given.record().and_then(|r| r.mailbox.sweep_at), Some(due));
    // and the run's end drops it with the lists
    given.ends(&arn, Status::Succeeded).await;
    assert_eq!(given.record().map(|r| r.mailbox.sweep_at), Some(None));
    given.advance(SWEEP_AFTER_MILLIS);
    assert_eq!(given.service.sweep_due(10, std::time::Duration::from_secs(10)).await.ok().map(|r| r.due), Some(0));
}

#[tokio::test(start_paused = true)]
async fn a_delivery_lost_with_its_deliverer_is_sent_by_a_later_operation() {
    let (given, arn) = waiting().await;
    // The raiser writes the pair, then dies before SendTaskSuccess
    given.service.engine().script(EngineOp::SendTaskSuccess, Scripted::Hangs);
    let died = tokio::time::timeout(std::time::Duration::from_millis(50), given.raise("approval", "1")).await;
    assert!(died.is_err());
    assert_eq!(given.outcome("t1"), None, "not delivered");
    // Too early for a sweep: the deliverer may still be at it
    given.raise("other", "x").await.ok();
    assert_eq!(given.outcome("t1"), None);
    // Past the sweep interval, the next operation sends it and removes the pair
    given.advance(SWEEP_AFTER_MILLIS);
    given.wait(&arn, "later", "t2").await.ok();
    given.raise("other", "y").await.ok();
    assert_eq!(given.outcome("t1"), delivered("1"));
}

#[tokio::test(start_paused = true)]
async fn a_full_mailbox_refuses_until_a_sweep_makes_room() {
    let given = given();
    let arn = arn_of(&given.start().await);
    for i in 0..MAX_EVENTS {
        assert!(given.raise("step", &i.to_string()).await.is_ok());
    }
    let full = given.raise("step", "x").await;
    assert!(matches!(full, Err(Error::MailboxFull { .. })), "{full:?}");
    // Waits take eight; once those pairs are old, a raise sweeps them and fits
    for i in 0..8 {
        assert_eq!(given.wait(&arn, "step", &format!("t{i}")).await.ok(), Some(WaitOutcome::Delivered));
    }
    given.advance(SWEEP_AFTER_MILLIS);
    let fits = given.raise("step", "x").await;
    assert_eq!(outcome_of(&fits), Some(RaiseOutcome::Buffered { buffered: MAX_EVENTS - 8 + 1 }));
    assert_eq!(given.record().map(|r| (r.mailbox.events.len(), r.mailbox.waits.len())), Some((9, 0)));
}

#[tokio::test(start_paused = true)]
async fn the_end_of_a_run_drops_its_buffered_events() {
    let given = given();
    let first = arn_of(&given.start().await);
    given.raise("approval", "1").await.ok();
    given.ends(&first, Status::Succeeded).await;
    assert!(given.record().is_some_and(|r| r.mailbox.events.is_empty() && r.mailbox.waits.is_empty()));
    let second = arn_of(&given.start().await);
    assert_eq!(given.wait(&second, "approval", "t1").await.ok(), Some(WaitOutcome::Waiting), "not the old event");
}

#[tokio::test(start_paused = true)]
async fn a_throttled_delivery_is_retried_and_a_failing_one_reported_pending() {
    let (given, arn) = waiting().await;
    given.service.engine().script(EngineOp::SendTaskSuccess, Scripted::Fails(throttled()));
    assert_eq!(outcome_of(&given.raise("approval", "1").await), Some(RaiseOutcome::Delivered));
    given.wait(&arn, "approval", "t2").await.ok();
    for _ in 0..3 {
        given.service.engine().script(EngineOp::SendTaskSuccess, Scripted::Fails(throttled()));
    }
    let pending = given.raise("approval", "2").await;
    assert!(matches!(pending, Err(Error::DeliveryPending { .. })), "{pending:?}");
    assert_eq!(given.outcome("t2"), None);
    // Its store error kind is not the client's: a transient store failure is retried too
    given.service.store().fail_next(StoreOp::AddEvent, StoreFault::Fails(StoreError::Throttled("slow".into())));
    assert!(given.raise("later", "3").await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_keyed_retry_after_the_run_was_redriven_is_a_replay_not_a_second_delivery() {
    let (given, arn) = waiting().await;
    assert_eq!(outcome_of(&given.raise_keyed("approval", "1", Some("k")).await), Some(RaiseOutcome::Delivered));
    // The run fails, is redriven (same execution), and waits again
    given.ends(&arn, Status::Failed).await;
    given.service.engine().redrive_from_outside(&arn);
    assert_eq!(given.service.apply_event(given.event(&arn)).await.ok(), Some(EventOutcome::Applied));
    assert_eq!(status_of(&given), Some(Status::Running));
    given.wait(&arn, "approval", "t2").await.ok();
    // The client's retry with its key finds its raise: t2 does not get the event again
    let retry = given.raise_keyed("approval", "1", Some("k")).await;
    assert_eq!(retry.as_ref().map(|r| r.replayed).ok(), Some(true), "{retry:?}");
    assert_eq!(given.outcome("t2"), None);
}

#[tokio::test(start_paused = true)]
async fn a_key_reused_after_its_window_for_another_event_raises_it() {
    let given = given();
    arn_of(&given.start().await);
    given.raise_keyed("approval", "1", Some("k")).await.ok();
    given.advance(600_001);
    let other = given.raise_keyed("approval", "2", Some("k")).await;
    assert_eq!(
        other.as_ref().map(|r| (r.replayed, r.outcome)).ok(),
        Some((false, RaiseOutcome::Buffered { buffered: 2 }))
    );
}

#[tokio::test(start_paused = true)]
async fn tokens_up_to_step_functions_limit_are_taken() {
    let given = given();
    let arn = arn_of(&given.start().await);
    let long = "t".repeat(2048);
    assert_eq!(given.wait(&arn, "approval", &long).await.ok(), Some(WaitOutcome::Waiting));
    let too_long = given.wait(&arn, "approval", &"t".repeat(2049)).await;
    assert!(matches!(too_long, Err(Error::InvalidWait(_))), "{too_long:?}");
}

#[tokio::test(start_paused = true)]
async fn a_pair_refused_for_good_is_dropped_by_the_sweep_not_kept_forever() {
    let (counters, _guard) = Counters::install();
    let (given, _) = waiting().await;
    given.service.engine().script(EngineOp::SendTaskSuccess, Scripted::Hangs);
    let died = tokio::time::timeout(std::time::Duration::from_millis(50), given.raise("approval", "1")).await;
    assert!(died.is_err());
    given.advance(SWEEP_AFTER_MILLIS);
    let refusal = EngineError::Refused { code: "InvalidOutput".into(), message: "no".into(), caller_fault: true };
    given.service.engine().script(EngineOp::SendTaskSuccess, Scripted::Fails(refusal));
    assert!(given.raise("other", "x").await.is_ok());
    assert_eq!(counters.get("EventsDropped.Refused"), 1);
    assert_eq!(given.record().map(|r| r.mailbox.pairs().len()), Some(0), "swept");
}

#[tokio::test(start_paused = true)]
async fn events_no_wait_took_are_counted_when_the_run_ends_and_only_once() {
    let (counters, _guard) = Counters::install();
    let (given, arn) = waiting().await;
    for body in ["1", "2", "3"] {
        given.raise("approval", body).await.ok();
    }
    // The first went to the wait; two were buffered when the run ended
    given.ends(&arn, Status::Succeeded).await;
    assert_eq!(counters.get("EventsDropped.RunEnded"), 2);
    // The same status event again changes nothing and counts nothing
    assert_eq!(given.service.apply_event(given.event(&arn)).await.ok(), Some(EventOutcome::Ignored));
    assert_eq!(counters.get("EventsDropped.RunEnded"), 2);
}
