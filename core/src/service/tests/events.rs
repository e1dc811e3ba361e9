//! Status events: applied once and in order, whatever the delivery; redrives of
//! superseded runs stopped; names that are not ours left alone.

use super::*;
use crate::domain::record::SUPERSEDED_ERROR;
use crate::memory::{EngineOp, Scripted};

#[tokio::test(start_paused = true)]
async fn a_redrive_after_the_record_was_deleted_is_stopped() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.ends(&arn, Status::Failed).await;
    given.service.store().expire(&given.id.key());
    given.service.engine().redrive_from_outside(&arn);
    let outcome = given.service.apply_event(given.event(&arn)).await;
    assert_eq!(outcome.ok(), Some(EventOutcome::StoppedSuperseded));
    assert!(given.service.engine().running().is_empty());
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

#[tokio::test(start_paused = true)]
async fn a_running_event_confirms_the_claim_and_a_terminal_one_frees_the_id() {
    let given = given();
    let arn = arn_of(&given.start().await);
    assert_eq!(given.service.apply_event(given.event(&arn)).await.ok(), Some(EventOutcome::Applied));
    let running = given.record();
    assert_eq!(running.as_ref().map(|r| r.status), Some(Status::Running));
    assert!(running.and_then(|r| r.confirmed_at).is_some());
    given.ends(&arn, Status::Succeeded).await;
    assert_eq!(status_of(&given), Some(Status::Succeeded));
    assert!(given.record().and_then(|r| r.expires_at).is_some(), "terminal records expire");
    assert!(given.start().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_or_late_event_changes_nothing() {
    let given = given();
    let arn = arn_of(&given.start().await);
    let running = given.event(&arn);
    given.ends(&arn, Status::Failed).await;
    let failed = given.event(&arn);
    assert_eq!(given.service.apply_event(failed).await.ok(), Some(EventOutcome::Ignored), "redelivered");
    assert_eq!(given.service.apply_event(running).await.ok(), Some(EventOutcome::Ignored), "late RUNNING");
    assert_eq!(status_of(&given), Some(Status::Failed));
}

#[tokio::test(start_paused = true)]
async fn an_event_about_an_older_run_is_ignored() {
    let given = given();
    let first = arn_of(&given.start().await);
    given.ends(&first, Status::Failed).await;
    let second = arn_of(&given.start().await);
    let stale = given.service.apply_event(given.event(&first)).await;
    assert_eq!(stale.ok(), Some(EventOutcome::Ignored));
    assert_eq!(given.record().map(|r| (r.execution_arn, r.status)), Some((second, Status::Starting)));
}

#[tokio::test(start_paused = true)]
async fn a_redrive_of_the_current_run_is_applied_and_takes_the_id_again() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.ends(&arn, Status::Failed).await;
    given.service.engine().redrive_from_outside(&arn);
    assert_eq!(given.service.apply_event(given.event(&arn)).await.ok(), Some(EventOutcome::Applied));
    assert_eq!(given.record().map(|r| (r.status, r.redrive_count)), Some((Status::Running, 1)));
    assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))));
}

#[tokio::test(start_paused = true)]
async fn a_redrive_of_an_older_run_is_stopped_and_the_newer_one_keeps_the_id() {
    let given = given();
    let first = arn_of(&given.start().await);
    given.ends(&first, Status::Failed).await;
    let second = arn_of(&given.start().await);
    given.service.engine().redrive_from_outside(&first);
    let (counters, _installed) = Counters::install();
    let outcome = given.service.apply_event(given.event(&first)).await;
    assert_eq!(outcome.ok(), Some(EventOutcome::StoppedSuperseded));
    assert_eq!(counters.get("SupersededStops"), 1);
    let stopped = given.service.engine().state(&first);
    assert_eq!(stopped.and_then(|s| s.error).as_deref(), Some(SUPERSEDED_ERROR));
    assert_eq!(given.service.engine().running(), vec![second.clone()]);
    assert_eq!(given.record().map(|r| r.execution_arn), Some(second));
}

#[tokio::test(start_paused = true)]
async fn events_of_executions_that_are_not_ours_or_of_unknown_instances_change_nothing() {
    let given = given();
    let arn = arn_of(&given.start().await);
    let mut foreign = given.event(&arn);
    foreign.name = ExecutionName::parse("someone-elses-run").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(given.service.apply_event(foreign).await.ok(), Some(EventOutcome::NotOurs));
    given.service.store().expire(&given.id.key());
    assert_eq!(given.service.apply_event(given.event(&arn)).await.ok(), Some(EventOutcome::UnknownInstance));
    assert_eq!(given.record(), None, "no record is created by an event");
}

#[tokio::test(start_paused = true)]
async fn an_event_without_its_output_fetches_it() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.service.engine().end(&arn, Status::Succeeded, 0);
    let mut omitted = given.event(&arn);
    omitted.output_omitted = true;
    let before = given.service.engine().calls().len();
    assert_eq!(given.service.apply_event(omitted).await.ok(), Some(EventOutcome::Applied));
    assert_eq!(given.service.engine().calls()[before..], [EngineOp::Describe]);
}
