//! The service's rules on in-memory ports (`crate::memory`): no emulator,
//! the store's real conditions, faults one call at a time.

use super::*;
use crate::domain::policy::{ConflictPolicy, ReusePolicy};
use crate::domain::{
    ExecutionArn, ExecutionName, IdempotencyKey, InstanceId, Millis, Record, StartPolicy, StateMachineArn, Status,
    Timings,
};
use crate::memory::{EngineOp, MemoryEngine, MemoryStore, Scripted, StoreFault, StoreOp};
use crate::ports::EngineError;
use std::sync::Arc;
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
    async fn ends(&self, execution_arn: &ExecutionArn, status: Status) {
        self.service.engine().end(execution_arn, status, 0);
        let outcome = self.service.apply_event(self.event(execution_arn)).await;
        assert_eq!(outcome.ok(), Some(EventOutcome::Applied));
    }

    /// The status event Step Functions would send now for the execution.
    fn event(&self, execution_arn: &ExecutionArn) -> StatusChange {
        let state = self.service.engine().state(execution_arn).unwrap_or_else(|| panic!("no {execution_arn}"));
        let name = execution_arn.as_str().rsplit(':').next().unwrap_or_default();
        let name = ExecutionName::parse(name).unwrap_or_else(|e| panic!("{e}"));
        StatusChange { execution_arn: execution_arn.clone(), name, state, output_omitted: false }
    }
}

fn arn_of(started: &Result<Started>) -> ExecutionArn {
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
    assert!(matches!(given.start_with(given.keyed("k-1"), r#"{"n":3}"#).await, Err(Error::IdempotencyKeyReused(_))));
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
