//! The fault matrix: each fault where Step Functions or DynamoDB would make
//! it, injected below the SDK (its retries see it, as on AWS), or at the
//! engine port for a process that dies. After each: at most one execution
//! per ID, the record agrees with Step Functions, and once the execution
//! ends the ID starts again.

use lambda_http::http::{Method, StatusCode};
use sfn_singleton::domain::{ExecutionName, InstanceId, Status};
use sfn_singleton::events;
use sfn_singleton::memory::{EngineOp, Scripted};
use sfn_singleton::service::StandardCheck;
use testkit::*;

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
        assert_eq!((record.execution_name.as_str(), record.status.is_terminal()), (name.as_str(), false), "{record:?}");
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

/// A StartExecution attempt without an answer is tried again with the same
/// name: a 202, and one execution, the record's.
async fn starts_once_despite(fault: Fault) {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", fault, CALL - 1);
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(
        executions_of(&env, FOREVER, "order-1").await,
        vec![(record.execution_name.to_string(), "RUNNING".into())]
    );
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
    env.faults.inject("StartExecution", Fault::ServerError, CALL);
    env.calls.take();
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_retry_after(&answer, StatusCode::SERVICE_UNAVAILABLE, "StartUnconfirmed");
    // Each attempt may have started it: Step Functions is asked, and knows none yet.
    let attempts = ["StartExecution"; CALL];
    assert_eq!(env.calls.take(), [&["PutItem"][..], &attempts, &["DescribeExecution"]].concat());
    // Unknown whether one lands late: the claim holds until its lease ends.
    assert_eq!(env.record("order-1").await.map(|r| r.status), Some(Status::Starting));
    assert_eq!(start(&env.app(), FOREVER, "order-1", "{}").await.status, StatusCode::CONFLICT);
    assert_eq!(executions_of(&env, FOREVER, "order-1").await.len(), 0);
    assert_settles(&env, FOREVER, "order-1").await;
}

/// Hole 1 of issue 12: an attempt that started it lost its answer; the later
/// attempts were throttled. The old code took the last error for the call's
/// and released the claim (START_FAILED), so a retry started a second run.
#[tokio::test]
async fn start_that_took_effect_then_was_throttled_keeps_its_claim_and_is_confirmed() {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", Fault::TimeoutAfter, 1);
    env.faults.inject("StartExecution", Fault::Throttled, CALL - 1);
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.status, Status::Starting, "never released");
    assert_eq!(
        executions_of(&env, FOREVER, "order-1").await,
        vec![(record.execution_name.to_string(), "RUNNING".into())]
    );
    let retry = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_eq!(retry.status, StatusCode::CONFLICT, "{}", retry.body);
    assert_settles(&env, FOREVER, "order-1").await;
}

/// The same, refused for good after the lost attempt: still never released.
#[tokio::test]
async fn start_that_took_effect_then_was_refused_is_not_released_as_start_failed() {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", Fault::ServerErrorAfter, 1);
    env.faults.inject("StartExecution", Fault::Error("AccessDeniedException"), 1);
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(env.record("order-1").await.map(|r| r.status), Some(Status::Starting));
    assert_eq!(executions_of(&env, FOREVER, "order-1").await.len(), 1);
    assert_settles(&env, FOREVER, "order-1").await;
}

/// A fast run ended between the lost attempt and the next, which AWS answers
/// `ExecutionAlreadyExists` (same name, ended). The old code answered 502 and
/// released the claim for work that ran, and a keyed retry ran it again.
#[tokio::test]
async fn start_whose_retry_meets_execution_already_exists_answers_202_for_the_run_that_happened() {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", Fault::TimeoutAfter, 1);
    env.faults.inject("StartExecution", Fault::Error("ExecutionAlreadyExists"), 1);
    let keyed = || {
        let mut request = request(Method::POST, &format!("/orchestrators/{FOREVER}/order-1"), "{}");
        request.headers_mut().insert("idempotency-key", lambda_http::http::HeaderValue::from_static("k-1"));
        request
    };
    let answer = call(&env.app(), keyed()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_ne!(env.record("order-1").await.map(|r| r.status), Some(Status::StartFailed));
    let replay = call(&env.app(), keyed()).await;
    assert_eq!((replay.status, &replay.body), (StatusCode::ACCEPTED, &answer.body));
    assert_eq!(executions_of(&env, FOREVER, "order-1").await.len(), 1);
    assert_settles(&env, FOREVER, "order-1").await;
}

/// Every attempt lost its answer and Step Functions cannot be asked either:
/// the claim holds (503), and after the lease DescribeExecution decides.
#[tokio::test]
async fn start_whose_attempts_and_describe_all_fail_keeps_the_claim_until_the_lease_decides() {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", Fault::TimeoutAfter, CALL);
    env.faults.inject("DescribeExecution", Fault::ServerError, CALL);
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_retry_after(&answer, StatusCode::SERVICE_UNAVAILABLE, "StartUnconfirmed");
    let claim = env.record("order-1").await.unwrap_or_else(|| panic!("no claim"));
    assert_eq!(claim.status, Status::Starting);
    assert_eq!(
        executions_of(&env, FOREVER, "order-1").await,
        vec![(claim.execution_name.to_string(), "RUNNING".into())]
    );
    // After the lease, Step Functions decides: it runs, so the record says so and starts are refused.
    env.clock.advance(env.timings.lease_millis);
    assert_eq!(start(&env.app(), FOREVER, "order-1", "{}").await.status, StatusCode::CONFLICT);
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!((record.status, record.execution_name), (Status::Running, claim.execution_name));
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
async fn start_execution_timing_out_throughout_after_it_started_is_confirmed_by_describe_execution() {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", Fault::TimeoutAfter, CALL);
    let answer = start(&env.app(), FOREVER, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let claim = env.record("order-1").await.unwrap_or_else(|| panic!("no claim"));
    assert_eq!(
        executions_of(&env, FOREVER, "order-1").await,
        vec![(claim.execution_name.to_string(), "RUNNING".into())]
    );
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
    // The record's claim (the key's entry, written first, is answered).
    env.faults.inject_for("PutItem", "instanceId", Fault::ServerErrorAfter, CALL);
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
async fn status_write_throttled_reports_the_record_and_its_retry_applies() {
    let env = TestEnv::new().await;
    let claim = (start(&env.app(), FOREVER, "order-1", "{}").await, env.record("order-1").await);
    let claim = claim.1.unwrap_or_else(|| panic!("no claim: {}", claim.0.body));
    env.faults.inject("UpdateItem", Fault::Throttled, CALL);
    let app = env.app();
    let batch = sqs_batch(&[event_fixture("running", &claim)]);
    let answer =
        events::handle_batch(&app.service, batch.clone(), BATCH_BUDGET).await.unwrap_or_else(|e| panic!("{e}"));
    let failed: Vec<_> = answer.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, message_ids(&batch), "reported, so that SQS retries it");
    assert_eq!(env.record("order-1").await.map(|r| r.confirmed_at), Some(None));
    deliver_event(&app.service, event_fixture("running", &claim)).await;
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

/// Hole 5 of issue 12: status events arrive in SQS batches. A record whose
/// write fails is reported alone (`ReportBatchItemFailures`), so SQS retries
/// it for days and deletes the others; a redelivered batch changes nothing.
#[tokio::test]
async fn a_status_batch_reports_only_its_failing_record_and_the_retry_ends_each_record_once() {
    let env = TestEnv::new().await;
    let ids = ["order-1", "order-2", "order-3", "order-4"];
    let mut claims = Vec::new();
    for id in ids {
        assert_eq!(start(&env.app(), FOREVER, id, "{}").await.status, StatusCode::ACCEPTED);
        claims.push(env.record(id).await.unwrap_or_else(|| panic!("no claim")));
    }
    let events: Vec<_> = claims.iter().map(|claim| event_fixture("failed", claim)).collect();
    let batch = sqs_batch(&events);
    let app = env.app();
    // The first record's write is throttled through all the SDK's attempts; the others land.
    env.faults.inject_for("UpdateItem", claims[0].key.as_str(), Fault::Throttled, CALL);
    let answer =
        events::handle_batch(&app.service, batch.clone(), BATCH_BUDGET).await.unwrap_or_else(|e| panic!("{e}"));
    let failed: Vec<_> = answer.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, message_ids(&batch)[..1], "only the failing record");
    let statuses = async || {
        let mut out = Vec::new();
        for id in ids {
            out.push(env.record(id).await.map(|r| r.status));
        }
        out
    };
    let (failed, starting) = (Some(Status::Failed), Some(Status::Starting));
    assert_eq!(statuses().await, [starting, failed, failed, failed]);
    // SQS redelivers that record alone; then, at least once, the whole batch again.
    let mut retry = batch.clone();
    retry.records.truncate(1);
    for redelivery in [retry, batch] {
        let answer =
            events::handle_batch(&app.service, redelivery, BATCH_BUDGET).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
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

/// A record that hangs (its write never answered) must not take the batch
/// down with the invocation's timeout: it is reported when the budget ends,
/// and the others are done.
#[tokio::test]
async fn a_hung_record_is_reported_when_the_batch_budget_ends_and_the_others_are_done() {
    let env = TestEnv::new().await;
    let ids = ["order-1", "order-2", "order-3"];
    let mut events = Vec::new();
    for id in ids {
        assert_eq!(start(&env.app(), FOREVER, id, "{}").await.status, StatusCode::ACCEPTED);
        events.push(event_fixture("failed", &env.record(id).await.unwrap_or_else(|| panic!("no claim"))));
    }
    env.faults.inject_for("UpdateItem", events[0]["detail"]["name"].as_str().unwrap_or("?"), Fault::Hang, 1);
    let app = env.app();
    let batch = sqs_batch(&events);
    let budget = std::time::Duration::from_secs(2);
    let answer = events::handle_batch(&app.service, batch.clone(), budget).await.unwrap_or_else(|e| panic!("{e}"));
    let reported: Vec<_> = answer.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(reported, message_ids(&batch)[..1], "only the hung record");
    let mut statuses = Vec::new();
    for id in ids {
        statuses.push(env.record(id).await.map(|r| r.status));
    }
    let (failed, starting) = (Some(Status::Failed), Some(Status::Starting));
    assert_eq!(statuses, [starting, failed, failed], "the records that did not hang are done");
    let reported = &reported[0];
    let mut retry = batch.clone();
    retry.records.retain(|r| r.message_id.as_ref() == Some(reported));
    let answer = events::handle_batch(&app.service, retry, budget).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    for id in ids {
        assert_eq!(env.record(id).await.map(|r| r.status), Some(Status::Failed), "{id}");
    }
}

/// Every attempt went unanswered and DescribeExecution (eventually
/// consistent) did not see the execution, even after the lease: a status read
/// released the claim as START_FAILED. Then the execution turns out to exist.
/// Its RUNNING event must make the ID busy again; the old code ignored it, and
/// the next start ran a second execution beside it.
#[tokio::test]
async fn a_claim_released_on_describes_word_whose_execution_turns_up_takes_its_events() {
    let env = TestEnv::new().await;
    let app = env.app();
    env.faults.inject("StartExecution", Fault::TimeoutBefore, CALL);
    let answer = start(&app, FOREVER, "order-1", "{}").await;
    assert_retry_after(&answer, StatusCode::SERVICE_UNAVAILABLE, "StartUnconfirmed");
    env.clock.advance(env.timings.lease_millis);
    let read = call(&app, request(Method::GET, "/instances/order-1", "")).await;
    assert_eq!(read.json()["status"], "START_FAILED", "{}", read.body);
    let claim = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    // The lost attempt lands after all.
    env.sfn
        .start_execution()
        .state_machine_arn(&claim.state_machine_arn)
        .name(&claim.execution_name)
        .input("{}")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    deliver_event(&app.service, env.relayed_event(&claim.execution_arn).await).await;
    assert_eq!(env.record("order-1").await.map(|r| (r.status, r.expires_at)), Some((Status::Running, None)));
    let again = start(&app, FOREVER, "order-1", "{}").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_settles(&env, FOREVER, "order-1").await;
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

/// Runs a start whose process dies (before or after StartExecution), then drops it.
async fn start_that_dies(env: &TestEnv, after_start: bool, id: &str) {
    // Its first StartExecution never returns: the process running it died (after starting it, or before).
    let engine = ScriptedEngine::new(env.engine());
    engine.script(EngineOp::Start, if after_start { Scripted::LandsThenHangs } else { Scripted::Hangs });
    let app = env.app_with(env.store(), engine);
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
    assert_eq!(env.executions(FOREVER).await, vec![(record.execution_name.to_string(), "RUNNING".to_owned())]);
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

/// A purge whose DeleteItem landed but whose answer was lost: the old code's
/// SDK retry found nothing and answered 404 for its own delete.
#[tokio::test]
async fn a_purge_whose_answer_was_lost_is_recognised_as_done() {
    let env = TestEnv::new().await;
    let app = env.app();
    assert_eq!(start(&app, QUICK, "order-1", "{}").await.status, StatusCode::ACCEPTED);
    let claim = env.record("order-1").await.unwrap_or_else(|| panic!("no claim"));
    assert_eq!(env.finished(&claim.execution_arn).await, "SUCCEEDED");
    deliver_event(&app.service, env.relayed_event(&claim.execution_arn).await).await;
    env.faults.inject("DeleteItem", Fault::ServerErrorAfter, 1);
    let purged = call(&app, request(Method::DELETE, "/instances/order-1", "")).await;
    assert_eq!((purged.status, purged.body.as_str()), (StatusCode::OK, r#"{"instancesDeleted":1}"#));
    assert_eq!(env.item_count().await, 0);
    assert_eq!(env.faults.pending(), 0);
    // A purge of what was never there is still 404.
    let unknown = call(&app, request(Method::DELETE, "/instances/order-2", "")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
}

/// Hole 6 of issue 12: a throttled state machine check at cold start was
/// cached, and every later start on the container answered 500 Misconfigured.
#[tokio::test]
async fn a_state_machine_check_that_was_not_answered_is_asked_again_by_the_next_start() {
    let env = TestEnv::new().await;
    env.faults.inject("DescribeStateMachine", Fault::Throttled, CALL);
    let machines = env.functions.iter().filter(|(f, _)| *f != MISSING).map(|(f, m)| (f.clone(), m.clone()));
    let check = std::sync::Arc::new(StandardCheck::new(machines.collect()));
    let mut app = env.app();
    app.service = app.service.with_standard_check(check);
    let first = start(&app, FOREVER, "order-1", "{}").await;
    assert_retry_after(&first, StatusCode::SERVICE_UNAVAILABLE, "Throttled");
    assert_eq!(executions_of(&env, FOREVER, "order-1").await.len(), 0);
    let second = start(&app, FOREVER, "order-1", "{}").await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.body);
    assert_settles(&env, FOREVER, "order-1").await;
}

/// The responses `openapi.yaml` lists for an operation (a plain text scan of its block).
fn documented_statuses(operation_id: &str) -> Vec<String> {
    let spec = std::fs::read_to_string(format!("{}/openapi.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("openapi.yaml: {e}"));
    // An operation's own line (links name operations too, further indented).
    let own = |id: &str| format!("\n      operationId: {id}\n");
    let start = spec.find(&own(operation_id)).unwrap_or_else(|| panic!("no {operation_id}"));
    let block = &spec[start + 1..];
    let end = block[1..].find("\n      operationId: ").map_or(block.len(), |next| next + 1);
    let block = &block[..end];
    block.lines().filter_map(|line| line.trim().strip_prefix('"')?.split('"').next()).map(str::to_owned).collect()
}

/// A status read and a purge that must ask Step Functions, refused by it
/// (access denied, say): 502, which the contract lists for both.
#[tokio::test]
async fn status_and_purge_answer_502_when_step_functions_refuses_and_the_contract_lists_it() {
    let env = TestEnv::new().await;
    let app = env.app();
    assert_eq!(start(&app, FOREVER, "order-1", "{}").await.status, StatusCode::ACCEPTED);
    env.clock.advance(env.timings.lease_millis.max(env.timings.reconcile_after_millis));
    for (method, operation) in [(Method::GET, "status"), (Method::DELETE, "purge")] {
        env.faults.inject("DescribeExecution", Fault::Error("AccessDeniedException"), 1);
        let answer = call(&app, request(method.clone(), "/instances/order-1", "")).await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{method}: {}", answer.body);
        assert!(documented_statuses(operation).contains(&"502".to_owned()), "{operation} lacks 502 in openapi.yaml");
    }
    assert_settles(&env, FOREVER, "order-1").await;
}
