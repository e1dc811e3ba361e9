//! Rewind: a redrive of the ended run through the same guard as a start.

use super::*;
use crate::domain::rewind::{REDRIVE_WINDOW_MILLIS, RewindRefusal};
use crate::memory::{EngineOp, Scripted};
use crate::ports::InstanceStore;

impl Given {
    /// A started run that has ended in `status` (its event delivered).
    async fn ended(&self, status: Status) -> ExecutionArn {
        let arn = arn_of(&self.start().await);
        self.ends(&arn, status).await;
        arn
    }

    /// The redriven execution's RUNNING event, delivered.
    async fn redrive_confirmed(&self, arn: &ExecutionArn) {
        assert_eq!(self.service.apply_event(self.event(arn)).await.ok(), Some(EventOutcome::Applied));
    }
}

fn unanswered() -> Scripted {
    Scripted::Fails(EngineError::Ambiguous("connection reset".into()))
}

#[tokio::test(start_paused = true)]
async fn every_run_that_ended_badly_is_redriven_under_its_own_arn_and_holds_the_id() {
    for status in [Status::Failed, Status::TimedOut, Status::Aborted] {
        let given = given();
        let arn = given.ended(status).await;
        let rewinding = given.service.rewind(&given.id).await.unwrap_or_else(|e| panic!("{status}: {e}"));
        assert_eq!((rewinding.status, &rewinding.execution_arn), (Status::Redriving, &arn), "{status}");
        assert_eq!(given.service.engine().running(), vec![arn.clone()], "{status}: the same execution runs again");
        assert!(given.record().is_some_and(|r| r.expires_at.is_none()), "{status}: no TTL while held");
        assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))), "{status}: held before its event");
        given.redrive_confirmed(&arn).await;
        let running = given.record().unwrap_or_else(|| panic!("no record"));
        assert_eq!((running.status, running.redrive_count, running.rewind_token), (Status::Running, 1, None));
        assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))), "{status}: held while it runs");
        given.ends(&arn, Status::Succeeded).await;
        assert!(given.start().await.is_ok(), "{status}: free once the redriven run ends");
    }
}

#[tokio::test(start_paused = true)]
async fn a_late_or_redelivered_event_of_the_rewound_run_does_not_undo_the_rewind() {
    let given = given();
    let arn = given.ended(Status::Failed).await;
    let failed = given.event(&arn);
    assert!(given.service.rewind(&given.id).await.is_ok());
    assert_eq!(given.service.apply_event(failed).await.ok(), Some(EventOutcome::Ignored));
    assert_eq!(status_of(&given), Some(Status::Redriving));
    assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))));
}

#[tokio::test(start_paused = true)]
async fn runs_that_cannot_be_rewound_are_refused_naming_why_and_nothing_is_called() {
    let given = given();
    assert!(matches!(given.service.rewind(&given.id).await, Err(Error::InstanceNotFound(_))));
    let arn = arn_of(&given.start().await);
    let refusal = |result: Result<Record>| match result {
        Err(Error::NotRewindable { refusal, .. }) => Some(refusal),
        _ => None,
    };
    assert_eq!(refusal(given.service.rewind(&given.id).await), Some(RewindRefusal::NotEnded(Status::Starting)));
    given.ends(&arn, Status::Succeeded).await;
    assert_eq!(refusal(given.service.rewind(&given.id).await), Some(RewindRefusal::Succeeded));
    let other = super::given();
    let arn = other.ended(Status::Failed).await;
    other.advance(REDRIVE_WINDOW_MILLIS);
    assert_eq!(refusal(other.service.rewind(&other.id).await), Some(RewindRefusal::PastWindow));
    assert!(!given.service.engine().calls().contains(&EngineOp::Redrive));
    assert!(!other.service.engine().calls().contains(&EngineOp::Redrive));
    assert_eq!(other.service.engine().state(&arn).map(|s| s.status), Some(Status::Failed));
}

#[tokio::test(start_paused = true)]
async fn a_redrive_step_functions_refuses_puts_the_record_back_as_it_ended() {
    let given = given();
    let arn = given.ended(Status::TimedOut).await;
    let before = given.record();
    let not_redrivable =
        EngineError::Refused { code: "ExecutionNotRedrivable".into(), message: "no".into(), caller_fault: true };
    given.service.engine().script(EngineOp::Redrive, Scripted::Fails(not_redrivable));
    let refused = given.service.rewind(&given.id).await;
    assert!(matches!(refused, Err(Error::RedriveRefused { .. })), "{refused:?}");
    let after = given.record().unwrap_or_else(|| panic!("no record"));
    assert_eq!((after.status, after.redrive_count, &after.rewind_token), (Status::TimedOut, 0, &None));
    assert!(after.expires_at.is_some(), "ended records expire again");
    assert_eq!(after.execution_arn, arn);
    assert_eq!(before.map(|r| r.error), Some(after.error));
    assert!(given.start().await.is_ok(), "the ID is free again");
}

#[tokio::test(start_paused = true)]
async fn unanswered_redrives_are_decided_by_step_functions_or_else_by_the_lease() {
    // Lost answers of a redrive that happened: DescribeExecution shows it.
    let given = given();
    let arn = given.ended(Status::Failed).await;
    given.service.engine().script(EngineOp::Redrive, Scripted::LandsThenFails);
    given.service.engine().script(EngineOp::Redrive, unanswered());
    given.service.engine().script(EngineOp::Redrive, unanswered());
    assert!(given.service.rewind(&given.id).await.is_ok());
    assert_eq!(given.service.engine().state(&arn).map(|s| s.redrive_count), Some(1));
    // No answer and no redrive: the record stays held until the lease ends, then goes back.
    let given = super::given();
    let arn = given.ended(Status::Failed).await;
    for _ in 0..3 {
        given.service.engine().script(EngineOp::Redrive, unanswered());
    }
    assert!(matches!(given.service.rewind(&given.id).await, Err(Error::RewindUnconfirmed { .. })));
    assert_eq!(status_of(&given), Some(Status::Redriving));
    assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))), "held within the lease");
    given.advance(LEASE);
    let read = given.service.status(&given.id).await.ok().flatten();
    assert_eq!(read.map(|r| r.status), Some(Status::Failed), "given back once the lease ends");
    assert!(given.start().await.is_ok());
    assert_ne!(given.service.engine().running(), vec![arn]);
}

#[tokio::test(start_paused = true)]
async fn a_retried_redrive_whose_first_attempt_landed_is_not_a_second_redrive() {
    let given = given();
    let arn = given.ended(Status::Failed).await;
    given.service.engine().script(EngineOp::Redrive, Scripted::LandsThenFails);
    assert!(given.service.rewind(&given.id).await.is_ok(), "the retry, same client token, is answered as done");
    assert_eq!(given.service.engine().state(&arn).map(|s| s.redrive_count), Some(1));
    let redrives = given.service.engine().calls().iter().filter(|op| **op == EngineOp::Redrive).count();
    assert_eq!(redrives, 2);
}

#[tokio::test(start_paused = true)]
async fn a_rewinder_that_dies_before_its_redrive_holds_the_id_only_for_its_lease() {
    let given = given();
    let arn = given.ended(Status::Failed).await;
    given.service.engine().script(EngineOp::Redrive, Scripted::Hangs);
    let dying = tokio::time::timeout(std::time::Duration::from_millis(50), given.service.rewind(&given.id)).await;
    assert!(dying.is_err());
    assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))));
    assert!(matches!(given.service.terminate(&given.id, "r").await, Err(Error::StillStarting(_))));
    given.advance(LEASE);
    let second = arn_of(&given.start().await);
    assert_ne!(second, arn, "a start after the lease runs a new execution");
    // The dead rewinder's redrive lands after all: its RUNNING event stops it.
    given.service.engine().redrive_from_outside(&arn);
    let outcome = given.service.apply_event(given.event(&arn)).await;
    assert_eq!(outcome.ok(), Some(EventOutcome::StoppedSuperseded));
    assert_eq!(given.service.engine().running(), vec![second]);
}

#[tokio::test(start_paused = true)]
async fn a_start_that_replaces_waits_for_the_rewinds_redrive_then_stops_it() {
    let given = given();
    let arn = given.ended(Status::Failed).await;
    given.service.engine().script(EngineOp::Redrive, Scripted::Hangs);
    let dying = tokio::time::timeout(std::time::Duration::from_millis(50), given.service.rewind(&given.id)).await;
    assert!(dying.is_err());
    let replace = policy(ConflictPolicy::TerminateExisting, ReusePolicy::AllowAll);
    let early = given.start_with(replace.clone(), "{}").await;
    assert!(matches!(early, Err(Error::StillStarting(_))), "{early:?}");
    assert!(!given.service.engine().calls().contains(&EngineOp::Stop), "no stop that the redrive would outrun");
    given.service.engine().redrive_from_outside(&arn);
    let replaced = given.start_with(replace, "{}").await;
    assert!(matches!(&replaced, Ok(Started { outcome: StartOutcome::Replaced { .. }, .. })), "{replaced:?}");
    assert_eq!(given.service.engine().running(), vec![arn_of(&replaced)]);
}

#[tokio::test(start_paused = true)]
async fn a_rewind_and_a_start_of_the_same_ended_run_never_both_win() {
    // The start's claim lands between the rewind's read and its claim.
    let given = given();
    given.ended(Status::Failed).await;
    let ended = given.record().unwrap_or_else(|| panic!("no record"));
    let second = arn_of(&given.start().await);
    let late = ended.rewinding("late", 1, 0, LEASE);
    let claim = given.service.store().claim(&late, &ClaimCondition::rewinds(&ended)).await;
    assert!(matches!(claim, Ok(Conditional::Refused(_))));
    let refused = given.service.rewind(&given.id).await;
    assert!(matches!(refused, Err(Error::NotRewindable { refusal: RewindRefusal::NotEnded(_), .. })), "{refused:?}");
    assert_eq!(given.service.engine().running(), vec![second]);
}

#[tokio::test(start_paused = true)]
async fn a_record_an_outside_redrive_left_behind_is_judged_on_step_functions_word() {
    // Redriven from the console, its events not in: running now.
    let given = given();
    let arn = given.ended(Status::Failed).await;
    given.service.engine().redrive_from_outside(&arn);
    let running = given.service.rewind(&given.id).await;
    assert!(matches!(running, Err(Error::NotRewindable { refusal: RewindRefusal::NotEnded(_), .. })), "{running:?}");
    assert!(!given.service.engine().calls().contains(&EngineOp::Redrive));
    assert_eq!(given.record().map(|r| (r.status, r.redrive_count)), Some((Status::Running, 1)), "healed");
    // ... and, ended again: rewound with the count its redrive will have.
    given.ends(&arn, Status::Failed).await;
    let rewinding = given.service.rewind(&given.id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rewinding.redrive_count, 2);
    assert_eq!(given.service.engine().state(&arn).map(|s| s.redrive_count), Some(2));
    // ... or succeeded after that redrive: not rewound.
    let other = super::given();
    let arn = other.ended(Status::Failed).await;
    other.service.engine().redrive_from_outside(&arn);
    other.service.engine().end(&arn, Status::Succeeded, 1);
    let refused = other.service.rewind(&other.id).await;
    assert!(matches!(refused, Err(Error::NotRewindable { refusal: RewindRefusal::Succeeded, .. })), "{refused:?}");
    assert_eq!(other.record().map(|r| (r.status, r.redrive_count)), Some((Status::Succeeded, 1)), "healed");
}

#[tokio::test(start_paused = true)]
async fn a_redriven_run_that_ends_at_once_ends_the_hold_whatever_the_order_of_its_events() {
    let given = given();
    let arn = given.ended(Status::Failed).await;
    assert!(given.service.rewind(&given.id).await.is_ok());
    let running = given.event(&arn);
    // The redriven run fails at once, and SQS hands its FAILED over before its RUNNING.
    given.service.engine().end(&arn, Status::Failed, 5);
    assert_eq!(given.service.apply_event(given.event(&arn)).await.ok(), Some(EventOutcome::Applied));
    assert_eq!(given.record().map(|r| (r.status, r.redrive_count)), Some((Status::Failed, 1)));
    assert_eq!(given.service.apply_event(running).await.ok(), Some(EventOutcome::Ignored), "late RUNNING");
    assert_eq!(status_of(&given), Some(Status::Failed));
    assert!(given.start().await.is_ok());
}
