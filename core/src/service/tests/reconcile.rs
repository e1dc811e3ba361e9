//! Reconcile: a record in doubt made true by DescribeExecution, a dead
//! starter's claim released; and the reads that reconcile.

use super::*;
use crate::memory::{EngineOp, Scripted};

#[tokio::test(start_paused = true)]
async fn a_lost_terminal_event_is_healed_by_a_status_read() {
    let (counters, _installed) = Counters::install();
    let given = given();
    let arn = arn_of(&given.start().await);
    given.service.engine().end(&arn, Status::Succeeded, 0);
    assert_eq!(given.service.status(&given.id).await.ok().flatten().map(|r| r.status), Some(Status::Starting));
    assert_eq!(counters.get("Reconciliations.Corrected"), 0, "within the lease: not asked");
    given.advance(LEASE);
    assert_eq!(given.service.status(&given.id).await.ok().flatten().map(|r| r.status), Some(Status::Succeeded));
    // Counted as an event lost (or late): the alarm on lost events reads this.
    assert_eq!(counters.get("Reconciliations.Corrected"), 1);
}

#[tokio::test(start_paused = true)]
async fn an_end_its_event_has_not_reached_yet_is_not_counted_as_a_lost_event() {
    let (counters, _installed) = Counters::install();
    let given = given();
    let arn = arn_of(&given.start().await);
    given.advance(LEASE);
    // The run ends now; the status read (the claim in doubt) finds it before its event.
    given.service.engine().end(&arn, Status::Succeeded, given.now.load(Ordering::SeqCst));
    assert_eq!(given.service.status(&given.id).await.ok().flatten().map(|r| r.status), Some(Status::Succeeded));
    assert_eq!((counters.get("Reconciliations.Recent"), counters.get("Reconciliations.Corrected")), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_dead_starters_claim_is_released_by_a_status_read_after_its_lease() {
    let given = given();
    given.service.engine().script(EngineOp::Start, Scripted::Hangs);
    let dying = tokio::time::timeout(std::time::Duration::from_millis(50), given.start()).await;
    assert!(dying.is_err());
    let within = given.service.status(&given.id).await.ok().flatten();
    assert_eq!(within.map(|r| r.status), Some(Status::Starting), "its starter may still be at it");
    given.advance(LEASE);
    let (counters, _installed) = Counters::install();
    let after = given.service.status(&given.id).await.ok().flatten();
    assert_eq!(after.as_ref().map(|r| r.status), Some(Status::StartFailed));
    assert_eq!(counters.get("Reconciliations.ExecutionMissing"), 1);
    assert_eq!(counters.get("Reconciliations.ClaimReleased"), 1);
    assert_eq!(after.and_then(|r| r.error).as_deref(), Some(crate::domain::record::START_FAILED_ERROR));
    assert!(given.start().await.is_ok(), "the ID starts again");
}

#[tokio::test(start_paused = true)]
async fn a_confirmed_record_is_read_without_asking_step_functions() {
    let given = given();
    let arn = arn_of(&given.start().await);
    assert_eq!(given.service.apply_event(given.event(&arn)).await.ok(), Some(EventOutcome::Applied));
    given.advance(RECONCILE_AFTER - 1);
    let read = given.service.status(&given.id).await.ok().flatten();
    assert_eq!(read.map(|r| r.status), Some(Status::Running));
    assert!(!given.service.engine().calls().contains(&EngineOp::Describe));
    given.advance(2);
    assert!(given.service.status(&given.id).await.is_ok());
    assert!(given.service.engine().calls().contains(&EngineOp::Describe), "past the interval, it asks");
}

#[tokio::test(start_paused = true)]
async fn the_last_run_of_a_large_input_comes_from_step_functions() {
    let given = given();
    let large = format!("\"{}\"", "x".repeat(crate::domain::record::MAX_STORED_INPUT_BYTES));
    let arn = arn_of(&given.start_with(StartPolicy::default(), &large).await);
    given.ends(&arn, Status::Failed).await;
    assert!(matches!(given.record().and_then(|r| r.input), Some(crate::domain::StoredInput::Digest { .. })));
    let last = given.service.last_run(&given.id).await.ok().flatten();
    assert_eq!(last.map(|(_, input)| input), Some(large));
}

#[tokio::test(start_paused = true)]
async fn a_status_read_of_an_unknown_instance_is_none() {
    let given = given();
    assert!(matches!(given.service.status(&given.id).await, Ok(None)));
    assert!(matches!(given.service.last_run(&given.id).await, Ok(None)));
}
