//! Terminate: stop the running execution and record how it really ended.

use super::*;
use crate::domain::record::TERMINATED_ERROR;
use crate::memory::{EngineOp, Scripted};

#[tokio::test(start_paused = true)]
async fn terminate_stops_the_execution_and_records_it_aborted() {
    let given = given();
    let arn = arn_of(&given.start().await);
    let terminated = given.service.terminate(&given.id, "operator said so").await;
    assert_eq!(terminated.ok().map(|r| r.status), Some(Status::Aborted));
    let stopped = given.service.engine().state(&arn);
    assert_eq!(stopped.as_ref().map(|s| s.status), Some(Status::Aborted));
    assert_eq!(stopped.and_then(|s| s.cause).as_deref(), Some("operator said so"));
    assert_eq!(given.record().and_then(|r| r.error).as_deref(), Some(TERMINATED_ERROR));
    assert!(given.start().await.is_ok(), "the ID starts again");
}

#[tokio::test(start_paused = true)]
async fn terminate_of_an_ended_or_unknown_instance_stops_nothing() {
    let given = given();
    assert!(matches!(given.service.terminate(&given.id, "r").await, Err(Error::InstanceNotFound(_))));
    let arn = arn_of(&given.start().await);
    given.ends(&arn, Status::Succeeded).await;
    let ended = given.service.terminate(&given.id, "r").await;
    assert!(matches!(ended, Err(Error::AlreadyTerminal { status: Status::Succeeded, .. })), "{ended:?}");
    assert!(!given.service.engine().calls().contains(&EngineOp::Stop));
}

#[tokio::test(start_paused = true)]
async fn terminate_of_a_claim_not_started_yet_answers_still_starting() {
    let given = given();
    given.service.engine().script(EngineOp::Start, Scripted::Hangs);
    let dying = tokio::time::timeout(std::time::Duration::from_millis(50), given.start()).await;
    assert!(dying.is_err());
    assert!(matches!(given.service.terminate(&given.id, "r").await, Err(Error::StillStarting(_))));
    assert_eq!(status_of(&given), Some(Status::Starting));
}

#[tokio::test(start_paused = true)]
async fn terminate_of_a_run_that_had_just_ended_records_how_it_ended() {
    let given = given();
    let arn = arn_of(&given.start().await);
    assert_eq!(given.service.apply_event(given.event(&arn)).await.ok(), Some(EventOutcome::Applied));
    given.service.engine().end(&arn, Status::Succeeded, 0);
    let terminated = given.service.terminate(&given.id, "r").await;
    assert!(matches!(terminated, Err(Error::AlreadyTerminal { status: Status::Succeeded, .. })), "{terminated:?}");
    assert_eq!(status_of(&given), Some(Status::Succeeded), "not ABORTED");
}
