//! The launch (StartExecution) and its holes: what each attempt did decides,
//! and a start that may have gone through is never released.

use super::*;
use crate::memory::{EngineOp, Scripted};
use crate::ports::{EngineError, WorkflowType};

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
async fn a_refused_input_releases_the_claim_and_is_the_callers_fault() {
    let given = given();
    let invalid =
        EngineError::Refused { code: "InvalidExecutionInput".into(), message: "bad".into(), caller_fault: true };
    given.service.engine().script(EngineOp::Start, Scripted::Fails(invalid));
    let refused = given.start().await;
    assert!(
        matches!(refused, Err(Error::StartRefused(EngineError::Refused { caller_fault: true, .. }))),
        "{refused:?}"
    );
    assert_eq!(status_of(&given), Some(Status::StartFailed));
    assert!(given.service.engine().running().is_empty());
}

#[tokio::test(start_paused = true)]
async fn unanswered_attempts_of_which_one_landed_are_confirmed_by_describe() {
    let given = given();
    let engine = given.service.engine();
    engine.script(EngineOp::Start, Scripted::LandsThenFails);
    engine.script(EngineOp::Start, Scripted::Fails(EngineError::Ambiguous("timeout".into())));
    engine.script(EngineOp::Start, Scripted::Fails(EngineError::Ambiguous("timeout".into())));
    let started = given.start().await;
    assert_eq!(started.as_ref().ok().map(|s| &s.outcome), Some(&StartOutcome::Started));
    assert_eq!(engine.running(), vec![arn_of(&started)]);
    assert!(engine.calls().contains(&EngineOp::Describe));
}

#[tokio::test(start_paused = true)]
async fn a_retry_that_meets_its_own_execution_is_a_start() {
    let given = given();
    let engine = given.service.engine();
    engine.script(EngineOp::Start, Scripted::LandsThenFails);
    engine.script(EngineOp::Start, Scripted::Fails(EngineError::ExecutionAlreadyExists));
    let started = given.start().await;
    assert_eq!(started.as_ref().ok().map(|s| &s.outcome), Some(&StartOutcome::Started), "{started:?}");
    assert_eq!(engine.running(), vec![arn_of(&started)]);
}

#[tokio::test(start_paused = true)]
async fn a_start_nobody_can_confirm_keeps_its_claim_for_the_lease_to_decide() {
    let given = given();
    for _ in 0..3 {
        given.service.engine().script(EngineOp::Start, Scripted::Fails(EngineError::Ambiguous("timeout".into())));
    }
    given.service.engine().script(EngineOp::Describe, Scripted::Fails(throttled()));
    assert!(matches!(given.start().await, Err(Error::StartUnconfirmed { .. })));
    assert_eq!(status_of(&given), Some(Status::Starting), "not released");
    assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))), "the ID stays taken");
}

#[tokio::test(start_paused = true)]
async fn an_express_state_machine_refuses_every_start_and_is_asked_about_once() {
    let mut given = given();
    let express = StateMachineArn::parse("arn:aws:states:us-east-1:123456789012:stateMachine:Fast")
        .unwrap_or_else(|e| panic!("{e}"));
    given.service.engine().add_state_machine(&express, WorkflowType::Express);
    given.service =
        given.service.with_standard_check(Arc::new(StandardCheck::new(vec![("Fast".to_owned(), express.clone())])));
    given.machine = express;
    assert!(matches!(given.start().await, Err(Error::Misconfigured(_))));
    assert_eq!(status_of(&given), Some(Status::StartFailed), "its claim released");
    assert!(matches!(given.start().await, Err(Error::Misconfigured(_))));
    let asked = given.service.engine().calls().iter().filter(|op| **op == EngineOp::WorkflowType).count();
    assert_eq!(asked, 1, "a definite verdict is kept");
    assert!(given.service.engine().running().is_empty());
}
