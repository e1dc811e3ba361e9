//! The fault matrix: each fault where Step Functions or DynamoDB would make
//! it, injected below the SDK (its retries see it, as on AWS), or at the
//! engine port for a process that dies. After each: at most one execution
//! per ID, the record agrees with Step Functions, and once the execution
//! ends the ID starts again.

use crate::helpers::*;
use lambda_http::http::{Method, StatusCode};
use sfn_singleton::domain::{ExecutionName, InstanceId, StateMachineArn, Status};
use sfn_singleton::events;
use sfn_singleton::ports::{Engine, EngineError, ExecutionState, WorkflowType};

/// Every SDK call makes 3 attempts (the default): faulting 3 fails the call.
const CALL: usize = 3;

fn assert_retry_after(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(answer.body.contains(code), "{} lacks {code}", answer.body);
    assert_eq!(answer.header("retry-after"), Some("10"), "{}", answer.body);
}

/// The executions of `id` on `function`'s state machine: (name, status).
async fn executions_of(env: &TestEnv, function: &str, id: &str) -> Vec<(String, String)> {
    let key = InstanceId::parse(id).unwrap_or_else(|e| panic!("{e}")).key();
    let all = env.executions(function).await;
    all.into_iter().filter(|(name, _)| ExecutionName::instance_key(name).as_ref() == Some(&key)).collect()
}

/// At most one execution of `id` runs and the record points at it; once it
/// ends (its event lost, even) the ID starts again, and again only one runs.
async fn assert_settles(env: &TestEnv, function: &str, id: &str) {
    assert_eq!(env.faults.pending(), 0, "a fault was never hit");
    let running = |executions: Vec<(String, String)>| -> Vec<String> {
        executions.into_iter().filter(|(_, status)| status == "RUNNING").map(|(name, _)| name).collect()
    };
    let before = running(executions_of(env, function, id).await);
    assert!(before.len() <= 1, "two executions of {id} run: {before:?}");
    let record = env.record(id).await;
    if let Some(name) = before.first() {
        let record = record.unwrap_or_else(|| panic!("{name} runs without a record"));
        assert_eq!((&record.execution_name, record.status.is_terminal()), (name, false), "{record:?}");
        // It ends; its event is lost.
        env.sfn
            .stop_execution()
            .execution_arn(&record.execution_arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("stop: {e:?}"));
        assert_eq!(env.finished(&record.execution_arn).await, "ABORTED");
    }
    env.clock.advance(env.timings.lease_millis.max(env.timings.reconcile_after_millis));
    let again = start(&env.app(), function, id, "{}").await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    let after = running(executions_of(env, function, id).await);
    let record = env.record(id).await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(after, vec![record.execution_name], "exactly the record's execution runs");
}

/// A StartExecution that failed all the SDK's attempts without an answer is
/// tried once more with the same name: a 202, and one execution, the record's.
async fn starts_once_despite(fault: Fault) {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", fault, CALL);
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(executions_of(&env, FOREVER, "order-1").await, vec![(record.execution_name, "RUNNING".into())]);
    assert_settles(&env, FOREVER, "order-1").await;
}

#[tokio::test]
async fn start_execution_throttled_releases_the_claim_and_answers_503_with_retry_after() {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", Fault::Throttled, CALL);
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_retry_after(&answer, StatusCode::SERVICE_UNAVAILABLE, "Throttled");
    assert_eq!(env.record("order-1").await.map(|r| r.status), Some(Status::StartFailed));
    assert_eq!(executions_of(&env, FOREVER, "order-1").await.len(), 0);
    // Released: the retry needs no lease to pass.
    assert_eq!(start(&env.app(), FOREVER, "order-1", "{}").await.status, StatusCode::ACCEPTED);
    assert_settles(&env, FOREVER, "order-1").await;
}

#[tokio::test]
async fn start_execution_failing_with_5xx_is_tried_again_with_the_same_name_and_starts_once() {
    starts_once_despite(Fault::ServerError).await;
}

#[tokio::test]
async fn start_execution_failing_with_5xx_throughout_answers_503_and_the_lease_frees_the_id() {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", Fault::ServerError, 2 * CALL);
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_retry_after(&answer, StatusCode::SERVICE_UNAVAILABLE, "StartUnconfirmed");
    // Unknown whether it started: the claim holds until its lease ends.
    assert_eq!(env.record("order-1").await.map(|r| r.status), Some(Status::Starting));
    assert_eq!(start(&env.app(), FOREVER, "order-1", "{}").await.status, StatusCode::CONFLICT);
    assert_eq!(executions_of(&env, FOREVER, "order-1").await.len(), 0);
    assert_settles(&env, FOREVER, "order-1").await;
}

#[tokio::test]
async fn start_execution_timing_out_after_it_started_is_confirmed_by_the_retry() {
    starts_once_despite(Fault::TimeoutAfter).await;
}

#[tokio::test]
async fn start_execution_timing_out_before_it_started_is_started_by_the_retry() {
    starts_once_despite(Fault::TimeoutBefore).await;
}

#[tokio::test]
async fn start_execution_timing_out_throughout_after_it_started_is_found_running_after_the_lease() {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", Fault::TimeoutAfter, 2 * CALL);
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_retry_after(&answer, StatusCode::SERVICE_UNAVAILABLE, "StartUnconfirmed");
    let claim = env.record("order-1").await.unwrap_or_else(|| panic!("no claim"));
    assert_eq!(executions_of(&env, FOREVER, "order-1").await, vec![(claim.execution_name.clone(), "RUNNING".into())]);
    // After the lease, Step Functions decides: it runs, so the record says so and starts are refused.
    env.clock.advance(env.timings.lease_millis);
    assert_eq!(start(&env.app(), FOREVER, "order-1", "{}").await.status, StatusCode::CONFLICT);
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!((record.status, record.execution_name), (Status::Running, claim.execution_name));
    assert_settles(&env, FOREVER, "order-1").await;
}

#[tokio::test]
async fn claim_throttled_answers_503_with_retry_after_and_writes_nothing() {
    let env = TestEnv::new().await;
    env.faults.inject("PutItem", Fault::Throttled, CALL);
    env.calls.take();
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_eq!(env.calls.take(), ["PutItem"; CALL], "the SDK's attempts, then the answer");
    assert_retry_after(&answer, StatusCode::SERVICE_UNAVAILABLE, "Throttled");
    assert_eq!(env.item_count().await, 0);
    assert_eq!(env.all_executions().await, 0);
    assert_settles(&env, FOREVER, "order-1").await;
}

#[tokio::test]
async fn claim_whose_answer_was_lost_is_recognised_as_ours_on_the_sdk_retry() {
    let env = TestEnv::new().await;
    // The put lands, its answer is lost; the SDK's retry is refused by that very claim.
    env.faults.inject("PutItem", Fault::ServerErrorAfter, 1);
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(executions_of(&env, FOREVER, "order-1").await.len(), 1);
    assert_settles(&env, FOREVER, "order-1").await;
}

#[tokio::test]
async fn claim_whose_answers_were_all_lost_answers_503_and_its_retry_never_runs_two() {
    let env = TestEnv::new().await;
    env.faults.inject("PutItem", Fault::ServerErrorAfter, CALL);
    let keyed = |key| {
        let mut request = request(Method::POST, &format!("/orchestrators/{FOREVER}/order-1"), "{}");
        request.headers_mut().insert("idempotency-key", key);
        request
    };
    let answer = call(&env.app(), keyed(lambda_http::http::HeaderValue::from_static("k-1"))).await;
    assert_retry_after(&answer, StatusCode::SERVICE_UNAVAILABLE, "StoreUnavailable");
    // The claim landed, nothing started. The client's retry (same key) within
    // the lease cannot know whether a starter is still at it: retry later.
    assert_eq!(env.record("order-1").await.map(|r| r.status), Some(Status::Starting));
    let retry = call(&env.app(), keyed(lambda_http::http::HeaderValue::from_static("k-1"))).await;
    assert_retry_after(&retry, StatusCode::CONFLICT, "StillStarting");
    assert_eq!(env.all_executions().await, 0);
    // After the lease the same retry starts it.
    env.clock.advance(env.timings.lease_millis);
    let late = call(&env.app(), keyed(lambda_http::http::HeaderValue::from_static("k-1"))).await;
    assert_eq!(late.status, StatusCode::ACCEPTED, "{}", late.body);
    assert_eq!(executions_of(&env, FOREVER, "order-1").await.len(), 1);
    assert_settles(&env, FOREVER, "order-1").await;
}

#[tokio::test]
async fn status_write_throttled_fails_the_invocation_and_its_retry_applies() {
    let env = TestEnv::new().await;
    let claim = (start(&env.app(), FOREVER, "order-1", "{}").await, env.record("order-1").await);
    let claim = claim.1.unwrap_or_else(|| panic!("no claim: {}", claim.0.body));
    env.faults.inject("UpdateItem", Fault::Throttled, CALL);
    let app = env.app();
    let handled = events::handle(&app.service, event_fixture("running", &claim)).await;
    assert!(handled.is_err(), "the invocation must fail, so that Lambda retries it");
    assert_eq!(env.record("order-1").await.map(|r| r.confirmed_at), Some(None));
    events::handle(&app.service, event_fixture("running", &claim)).await.unwrap_or_else(|e| panic!("{e}"));
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.status, Status::Running);
    assert!(record.confirmed_at.is_some());
    assert_settles(&env, FOREVER, "order-1").await;
}

#[tokio::test]
async fn reconciliation_write_throttled_answers_503_and_starts_nothing_until_it_succeeds() {
    let env = TestEnv::new().await;
    let first = start(&env.app(), QUICK, "order-1", "{}").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let claim = env.record("order-1").await.unwrap_or_else(|| panic!("no claim"));
    assert_eq!(env.finished(&claim.execution_arn).await, "SUCCEEDED");
    // Its events are lost; past the confirmation interval a start asks Step Functions.
    env.clock.advance(env.timings.reconcile_after_millis.max(env.timings.lease_millis));
    env.faults.inject("UpdateItem", Fault::Throttled, CALL);
    let answer = start(&env.app(), QUICK, "order-1", "{}").await;
    assert_retry_after(&answer, StatusCode::SERVICE_UNAVAILABLE, "Throttled");
    assert_eq!(env.executions(QUICK).await.len(), 1);
    assert_eq!(env.record("order-1").await, Some(claim));
    let retry = start(&env.app(), QUICK, "order-1", "{}").await;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{}", retry.body);
    assert_eq!(env.executions(QUICK).await.len(), 2);
    assert_eq!(env.faults.pending(), 0);
}

#[tokio::test]
async fn status_lambda_failing_mid_batch_is_retried_whole_and_every_record_ends_once() {
    let env = TestEnv::new().await;
    let ids = ["order-1", "order-2", "order-3", "order-4"];
    let mut claims = Vec::new();
    for id in ids {
        assert_eq!(start(&env.app(), FOREVER, id, "{}").await.status, StatusCode::ACCEPTED);
        claims.push(env.record(id).await.unwrap_or_else(|| panic!("no claim")));
    }
    let batch: Vec<_> = claims.iter().map(|claim| event_fixture("failed", claim)).collect();
    let app = env.app();
    // The first delivery: two writes land, the third is throttled, and the invocation fails there.
    for event in &batch[..2] {
        events::handle(&app.service, event.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    }
    env.faults.inject("UpdateItem", Fault::Throttled, CALL);
    assert!(events::handle(&app.service, batch[2].clone()).await.is_err());
    let statuses = async || {
        let mut out = Vec::new();
        for id in ids {
            out.push(env.record(id).await.map(|r| r.status));
        }
        out
    };
    let failed = Some(Status::Failed);
    let starting = Some(Status::Starting);
    assert_eq!(statuses().await, [failed, failed, starting, starting]);
    // The retry delivers the whole batch again: each record ends once.
    for event in &batch {
        events::handle(&app.service, event.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(statuses().await, [failed; 4]);
    for (id, claim) in ids.iter().zip(&claims) {
        let record = env.record(id).await.unwrap_or_else(|| panic!("no record"));
        assert_eq!((record.execution_name.as_str(), record.stop_date.is_some()), (claim.execution_name.as_str(), true));
    }
    // Failed, per its events; the emulator's executions still run: they are stopped as the IDs restart.
    for id in ids {
        let answer = start(&env.app(), FOREVER, id, "{}").await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    }
    assert_eq!(env.faults.pending(), 0);
}

#[tokio::test]
async fn the_same_start_delivered_twice_starts_once() {
    let env = TestEnv::new().await;
    let app = env.app();
    let delivery = || {
        let mut request = request(Method::POST, &format!("/orchestrators/{FOREVER}/order-1"), r#"{"n":1}"#);
        request.headers_mut().insert("idempotency-key", lambda_http::http::HeaderValue::from_static("delivery-1"));
        request
    };
    // At once: one starts; the other replays it, or is told to retry while it starts.
    let (a, b) = tokio::join!(call(&app, delivery()), call(&app, delivery()));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert!(
        statuses == [StatusCode::ACCEPTED, StatusCode::ACCEPTED]
            || statuses == [StatusCode::ACCEPTED, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    for answer in [&a, &b].into_iter().filter(|answer| answer.status == StatusCode::CONFLICT) {
        assert_retry_after(answer, StatusCode::CONFLICT, "StillStarting");
    }
    // Later: the same answer as the first time.
    let later = call(&app, delivery()).await;
    let first = if a.status == StatusCode::ACCEPTED { &a } else { &b };
    assert_eq!((later.status, &later.body), (StatusCode::ACCEPTED, &first.body));
    // Without a key a duplicate is a second start of a running ID.
    let unkeyed = start(&app, FOREVER, "order-1", r#"{"n":1}"#).await;
    assert_eq!(unkeyed.status, StatusCode::CONFLICT, "{}", unkeyed.body);
    assert_eq!(executions_of(&env, FOREVER, "order-1").await.len(), 1);
    assert_settles(&env, FOREVER, "order-1").await;
}

/// An engine whose first StartExecution never returns: the process running it died.
struct Dies<E> {
    inner: E,
    after_start: bool,
    hit: std::sync::atomic::AtomicBool,
}

impl<E: Engine> Engine for Dies<E> {
    async fn start(&self, machine: &StateMachineArn, name: &ExecutionName, input: &str) -> Result<(), EngineError> {
        if self.hit.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return self.inner.start(machine, name, input).await;
        }
        if self.after_start {
            self.inner.start(machine, name, input).await?;
        }
        std::future::pending().await
    }

    async fn stop(&self, execution_arn: &str, error: &str, cause: &str) -> Result<Option<i64>, EngineError> {
        self.inner.stop(execution_arn, error, cause).await
    }

    async fn workflow_type(&self, machine: &StateMachineArn) -> Result<Option<WorkflowType>, EngineError> {
        self.inner.workflow_type(machine).await
    }

    async fn describe(&self, execution_arn: &str) -> Result<Option<ExecutionState>, EngineError> {
        self.inner.describe(execution_arn).await
    }
}

/// Runs a start whose process dies (before or after StartExecution), then drops it.
async fn start_that_dies(env: &TestEnv, after_start: bool, id: &str) {
    let app = env.app_with(env.store(), Dies { inner: env.engine(), after_start, hit: Default::default() });
    let dying = tokio::time::timeout(std::time::Duration::from_secs(5), start(&app, FOREVER, id, "{}")).await;
    assert!(dying.is_err(), "the start should have hung");
    let record = env.record(id).await.unwrap_or_else(|| panic!("no claim"));
    assert_eq!(record.status, Status::Starting);
}
#[tokio::test]
async fn a_claim_whose_starter_died_before_starting_is_taken_over_after_its_lease() {
    let env = TestEnv::new().await;
    start_that_dies(&env, false, "order-1").await;
    let dead = env.record("order-1").await.unwrap_or_else(|| panic!("no claim"));
    let app = env.app();
    // Within the lease the claim holds, even though nothing runs.
    assert_eq!(start(&app, FOREVER, "order-1", "{}").await.status, StatusCode::CONFLICT);

    env.clock.advance(env.timings.lease_millis);
    env.calls.take();
    let answer = start(&app, FOREVER, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(env.calls.take(), env.expected(&[REFUSED_PUT, "DescribeExecution", "PutItem", "StartExecution"]));
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_ne!(record.execution_name, dead.execution_name);
    assert_eq!(env.executions(FOREVER).await, vec![(record.execution_name, "RUNNING".to_owned())]);
}

#[tokio::test]
async fn a_claim_whose_execution_exists_gets_its_real_status_instead_of_a_takeover() {
    let env = TestEnv::new().await;
    start_that_dies(&env, true, "order-1").await;
    let claim = env.record("order-1").await.unwrap_or_else(|| panic!("no claim"));
    env.clock.advance(env.timings.lease_millis);
    let app = env.app();
    env.calls.take();
    let answer = start(&app, FOREVER, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(env.calls.take(), env.expected(&[REFUSED_PUT, "DescribeExecution", "UpdateItem"]));
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!((record.status, &record.execution_name), (Status::Running, &claim.execution_name));
    assert!(record.confirmed_at.is_some() && record.lease_until.is_none());
    // Confirmed: the next rejection is back to one call.
    assert_eq!(start(&app, FOREVER, "order-1", "{}").await.status, StatusCode::CONFLICT);
    assert_eq!(env.calls.take(), env.expected(&[REFUSED_PUT]));
    assert_eq!(env.executions(FOREVER).await.len(), 1);
}
