//! Start policies: conflict and reuse policies, idempotent client retries,
//! restart — each alone and under storms, with their AWS call counts.

use lambda_http::http::{Method, StatusCode};
use sfn_singleton::config::Function;
use sfn_singleton::domain::{ConflictPolicy, Record, ReusePolicy, Status};
use sfn_singleton::ports::Engine;
use std::collections::HashSet;
use std::sync::Arc;
use testkit::*;

fn post(path: &str, body: &str, key: Option<&str>) -> lambda_http::Request {
    let mut request = request(Method::POST, path, body.to_owned());
    if let Some(key) = key {
        request.headers_mut().insert("idempotency-key", key.parse().unwrap_or_else(|_| panic!("bad header")));
    }
    request
}

async fn started(env: &TestEnv, query: &str) -> Answer {
    call(&env.app(), post(&format!("/orchestrators/{FOREVER}/order-1{query}"), r#"{"n":1}"#, None)).await
}

async fn record(env: &TestEnv) -> Record {
    env.record("order-1").await.unwrap_or_else(|| panic!("no record"))
}

/// Ends the current run with the status a fixture event of that name says.
async fn end(env: &TestEnv, fixture: &str) {
    let app = env.app();
    deliver_event(&app.service, event_fixture(fixture, &record(env).await)).await;
}

#[tokio::test]
async fn use_existing_answers_200_with_the_running_instance_for_one_call() {
    let env = TestEnv::new().await;
    let first = started(&env, "").await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.json()["startedByThisRequest"], true);
    env.calls.take();
    let existing = started(&env, "?onConflict=useExisting").await;
    assert_eq!(existing.status, StatusCode::OK, "{}", existing.body);
    assert_eq!(env.calls.take(), env.expected(&[REFUSED_PUT]));
    let body = existing.json();
    assert_eq!(body["startedByThisRequest"], false);
    assert_eq!(body["executionArn"], first.json()["executionArn"]);
    assert_eq!(body["statusQueryGetUri"], first.json()["statusQueryGetUri"]);
    assert_eq!(existing.header("location"), first.header("location"));
    assert_eq!(env.executions(FOREVER).await.len(), 1);
}

#[tokio::test]
async fn terminate_existing_stops_the_running_one_then_starts_for_five_calls() {
    let env = TestEnv::new().await;
    let first = started(&env, "").await.json()["executionArn"].as_str().map(str::to_owned).unwrap_or_default();
    env.calls.take();
    let engine = ScriptedEngine::new(env.engine());
    let app = env.app_with(env.store(), engine);
    let path = format!("/orchestrators/{FOREVER}/order-1?onConflict=terminateExisting&reason=new+order+data");
    let replaced = call(&app, post(&path, "{}", None)).await;
    assert_eq!(replaced.status, StatusCode::ACCEPTED, "{}", replaced.body);
    let calls = [REFUSED_PUT, "StopExecution", "DescribeExecution", "PutItem", "StartExecution"];
    assert_eq!(env.calls.take(), env.expected(&calls));
    let body = replaced.json();
    assert_eq!(body["terminatedExecutionArn"], first.as_str());
    assert_ne!(body["executionArn"], first.as_str());
    assert_eq!(env.finished(&first).await, "ABORTED");
    let causes = app.service.engine().stops.lock().map(|c| c.clone()).unwrap_or_default();
    let replaced = sfn_singleton::domain::record::REPLACED_ERROR.to_owned();
    assert_eq!(causes, [(arn(&first), replaced, "new order data".to_owned())]);
    let current = record(&env).await;
    assert_eq!(body["executionArn"], current.execution_arn.as_str());
    assert_eq!(env.execution_status(&current.execution_arn).await, "RUNNING");
    // Its ABORTED event, later, is about an older run: ignored.
    let app = env.app();
    let late = Record {
        execution_arn: arn(&first),
        execution_name: execution_name(first.rsplit(':').next().unwrap_or("")),
        ..current.clone()
    };
    deliver_event(&app.service, event_fixture("aborted", &late)).await;
    assert_eq!(record(&env).await, current);
}

#[tokio::test]
async fn storm_of_200_terminate_existing_leaves_exactly_one_execution_running() {
    let env = Arc::new(TestEnv::new().await);
    let app = Arc::new(env.app());
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let path = format!("/orchestrators/{FOREVER}/storm?onConflict=terminateExisting");
                call(&app, post(&path, &format!(r#"{{"caller":{i}}}"#), None)).await
            })
        })
        .collect();
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    for task in tasks {
        let answer = task.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(answer.status.as_u16(), 202 | 409) || answer.is_store_unavailable(), "{answer:?}");
        *answers.entry(answer.status.as_u16()).or_default() += 1;
    }
    assert_few_unavailable(answers.get(&503).copied().unwrap_or(0), 200);
    let record = env.record("storm").await.unwrap_or_else(|| panic!("no record"));
    let executions = env.settled_executions(FOREVER, &record.execution_name).await;
    let running: Vec<_> = executions.iter().filter(|(_, status)| status == "RUNNING").collect();
    assert_eq!(running, vec![&(record.execution_name.to_string(), "RUNNING".to_owned())], "answers {answers:?}");
    assert!(executions.iter().all(|(name, status)| *name == record.execution_name || status == "ABORTED"));
    assert!(answers.get(&202).is_some_and(|&n| n >= 1), "{answers:?}");
}

#[tokio::test]
async fn storm_of_200_use_existing_on_a_fresh_id_starts_one_and_every_answer_points_at_it() {
    let env = TestEnv::new().await;
    let app = Arc::new(env.app());
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                call(&app, post(&format!("/orchestrators/{FOREVER}/fresh?onConflict=useExisting"), "{}", None)).await
            })
        })
        .collect();
    let (mut arns, mut started_here, mut unavailable) = (HashSet::new(), 0, 0);
    for task in tasks {
        let answer = task.await.unwrap_or_else(|e| panic!("{e}"));
        if answer.is_store_unavailable() {
            unavailable += 1;
            continue;
        }
        assert!(matches!(answer.status.as_u16(), 200 | 202), "{answer:?}");
        started_here += usize::from(answer.status == StatusCode::ACCEPTED);
        arns.insert(answer.json()["executionArn"].as_str().map(str::to_owned));
    }
    assert_few_unavailable(unavailable, 200);
    assert_eq!(started_here, 1);
    let record = env.record("fresh").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(
        arns,
        HashSet::from([Some(record.execution_arn.as_str().to_owned())]),
        "every answer names the record's run"
    );
    let executions = env.executions(FOREVER).await;
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].0, record.execution_name.to_string());
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_gets_the_same_202() {
    let env = TestEnv::new().await;
    let app = env.app();
    let path = format!("/orchestrators/{FOREVER}/order-1");
    let first = call(&app, post(&path, "{}", Some("client-retry-1"))).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let retry = call(&app, post(&path, "{}", Some("client-retry-1"))).await;
    assert_eq!((retry.status, &retry.body), (StatusCode::ACCEPTED, &first.body));
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(env.executions(FOREVER).await.len(), 1);

    let other = call(&app, post(&path, "{}", Some("client-retry-2"))).await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    assert_eq!(call(&app, post(&path, "{}", None)).await.status, StatusCode::CONFLICT);

    // Stored hashed, never in clear.
    let item = env.dynamo.scan().table_name(&env.table).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!format!("{:?}", item.items()).contains("client-retry-1"));

    // Even once the run ended, the same request within the window is the same start.
    end(&env, "succeeded").await;
    let after_end = call(&app, post(&path, "{}", Some("client-retry-1"))).await;
    assert_eq!((after_end.status, &after_end.body), (StatusCode::ACCEPTED, &first.body));
    assert_eq!(env.executions(FOREVER).await.len(), 1);

    // Past the window the key means nothing: a running instance answers 409.
    let restarted = call(&app, post(&path, "{}", None)).await;
    assert_eq!(restarted.status, StatusCode::ACCEPTED);
    let keyed = call(&app, post(&path, "{}", Some("client-retry-3"))).await;
    assert_eq!(keyed.status, StatusCode::CONFLICT);
    env.clock.advance(env.timings.idempotency_window_millis);
    assert_eq!(start(&app, FOREVER, "other", "{}").await.status, StatusCode::ACCEPTED);
    let late = call(&app, post("/orchestrators/Forever/other", "{}", Some("client-retry-1"))).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_retry_of_a_refused_start_with_its_key_starts_for_real() {
    let env = TestEnv::new().await;
    let refused = call(&env.app(), post(&format!("/orchestrators/{MISSING}/order-1"), "{}", Some("k-1"))).await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    let retried = call(&env.app(), post(&format!("/orchestrators/{FOREVER}/order-1"), "{}", Some("k-1"))).await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
    assert_eq!(env.executions(FOREVER).await.len(), 1);
    // And that start now replays for the key.
    let again = call(&env.app(), post(&format!("/orchestrators/{FOREVER}/order-1"), "{}", Some("k-1"))).await;
    assert_eq!((again.status, &again.body), (StatusCode::ACCEPTED, &retried.body));
}

#[tokio::test]
async fn a_key_past_its_window_gets_the_policys_answer() {
    let env = TestEnv::new().await;
    let app = env.app();
    let path = format!("/orchestrators/{FOREVER}/order-1");
    assert_eq!(call(&app, post(&path, "{}", Some("k"))).await.status, StatusCode::ACCEPTED);
    env.clock.advance(env.timings.idempotency_window_millis);
    let late = call(&app, post(&path, "{}", Some("k"))).await;
    assert_eq!(
        (late.status, late.body.as_str()),
        (StatusCode::CONFLICT, "An instance with ID 'order-1' already exists.")
    );
}

#[tokio::test]
async fn reuse_policies_across_every_terminal_status() {
    let env = TestEnv::new().await;
    let endings = [
        ("succeeded", Status::Succeeded),
        ("failed", Status::Failed),
        ("timed_out", Status::TimedOut),
        ("aborted", Status::Aborted),
    ];
    for (fixture, status) in endings {
        for reuse in [ReusePolicy::AllowAll, ReusePolicy::AllowFailedOnly, ReusePolicy::Reject] {
            let id = format!("{fixture}-{reuse}");
            let path = format!("/orchestrators/{FOREVER}/{id}?reuse={reuse}");
            assert_eq!(call(&env.app(), post(&path, "{}", None)).await.status, StatusCode::ACCEPTED);
            let record = env.record(&id).await.unwrap_or_else(|| panic!("no record"));
            deliver_event(&env.app().service, event_fixture(fixture, &record)).await;
            let again = call(&env.app(), post(&path, "{}", None)).await;
            let allowed = match reuse {
                ReusePolicy::AllowAll => true,
                ReusePolicy::AllowFailedOnly => status != Status::Succeeded,
                ReusePolicy::Reject => false,
            };
            if allowed {
                assert_eq!(again.status, StatusCode::ACCEPTED, "{id}: {}", again.body);
            } else {
                assert_eq!(again.status, StatusCode::CONFLICT, "{id}: {}", again.body);
                let message = again.json()["message"].as_str().map(str::to_owned).unwrap_or_default();
                assert!(
                    message.contains(&format!("already ended ({status})")) && message.contains(reuse.as_str()),
                    "{message}"
                );
            }
        }
    }
    // START_FAILED, from a refused start.
    for reuse in [ReusePolicy::AllowAll, ReusePolicy::AllowFailedOnly, ReusePolicy::Reject] {
        let id = format!("start-failed-{reuse}");
        let refused = call(&env.app(), post(&format!("/orchestrators/{MISSING}/{id}"), "{}", None)).await;
        assert_eq!(refused.status, StatusCode::BAD_GATEWAY);
        let again = call(&env.app(), post(&format!("/orchestrators/{FOREVER}/{id}?reuse={reuse}"), "{}", None)).await;
        let expected = if reuse == ReusePolicy::Reject { StatusCode::CONFLICT } else { StatusCode::ACCEPTED };
        assert_eq!(again.status, expected, "{id}: {}", again.body);
    }
    // reject: purging frees the ID.
    let app = env.app();
    assert_eq!(call(&app, request(Method::DELETE, "/instances/succeeded-reject", "")).await.status, StatusCode::OK);
    let after_purge =
        call(&app, post(&format!("/orchestrators/{FOREVER}/succeeded-reject?reuse=reject"), "{}", None)).await;
    assert_eq!(after_purge.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn restart_starts_a_finished_instance_again_with_its_last_input() {
    let env = TestEnv::new().await;
    let app = env.app();
    for fixture in ["succeeded", "failed", "timed_out", "aborted"] {
        let id = format!("restart-{fixture}");
        let first = call(&app, post(&format!("/orchestrators/{FOREVER}/{id}"), r#"{"n":7}"#, None)).await;
        assert_eq!(first.json()["restartPostUri"], format!("https://api.example.com/instances/{id}/restart"));
        let record = env.record(&id).await.unwrap_or_else(|| panic!("no record"));
        deliver_event(&app.service, event_fixture(fixture, &record)).await;
        env.calls.take();
        let restarted = call(&app, post(&format!("/instances/{id}/restart"), "", None)).await;
        assert_eq!(restarted.status, StatusCode::ACCEPTED, "{fixture}: {}", restarted.body);
        assert_eq!(env.calls.take(), ["GetItem", "PutItem", "StartExecution"], "{fixture}");
        let arn = restarted.json()["executionArn"].as_str().map(str::to_owned).unwrap_or_default();
        assert_ne!(arn, record.execution_arn);
        let input: serde_json::Value = serde_json::from_str(&env.execution_input(&arn).await).unwrap_or_default();
        assert_eq!(input, serde_json::json!({"n": 7}), "{fixture}");
    }
}

#[tokio::test]
async fn restart_while_running_is_409_unless_terminate_existing() {
    let env = TestEnv::new().await;
    let app = env.app();
    let first = started(&env, "").await.json()["executionArn"].as_str().map(str::to_owned).unwrap_or_default();
    let refused = call(&app, post("/instances/order-1/restart", "", None)).await;
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (StatusCode::CONFLICT, "An instance with ID 'order-1' already exists.")
    );
    let replaced = call(&app, post("/instances/order-1/restart?onConflict=terminateExisting", "", None)).await;
    assert_eq!(replaced.status, StatusCode::ACCEPTED, "{}", replaced.body);
    assert_eq!(replaced.json()["terminatedExecutionArn"], first.as_str());
    assert_eq!(env.finished(&first).await, "ABORTED");
    let unknown = call(&app, post("/instances/nobody/restart", "", None)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let wrong = call(&app, request(Method::GET, "/instances/order-1/restart", "")).await;
    assert_eq!((wrong.status, wrong.header("allow")), (StatusCode::METHOD_NOT_ALLOWED, Some("POST")));
}

#[tokio::test]
async fn unknown_policy_values_and_bad_keys_are_400_and_write_nothing() {
    let env = TestEnv::new().await;
    let app = env.app();
    let cases = [
        (
            post(&format!("/orchestrators/{FOREVER}/x?onConflict=replace"), "{}", None),
            "onConflict must be one of reject, useExisting, terminateExisting, signal (with eventName=) (got \\\"replace\\\")",
        ),
        (
            post(&format!("/orchestrators/{FOREVER}/x?reuse=never"), "{}", None),
            "reuse must be one of allowAll, allowFailedOnly, reject (got \\\"never\\\")",
        ),
        (post(&format!("/orchestrators/{FOREVER}/x?onConflict="), "{}", None), "onConflict must be one of"),
        (
            post(&format!("/orchestrators/{FOREVER}/x"), "{}", Some(&"k".repeat(256))),
            "Idempotency-Key must be 1–255 visible ASCII characters",
        ),
        (
            post(
                &format!(
                    "/orchestrators/{FOREVER}/x?onConflict=terminateExisting&reason={}",
                    "r".repeat(sfn_singleton::domain::limits::MAX_REASON_CHARS + 1)
                ),
                "{}",
                None,
            ),
            "reason is 1025 characters; at most 1024 are allowed",
        ),
    ];
    for (request, message) in cases {
        let path = request.uri().to_string();
        let answer = call(&app, request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(answer.body.contains(message), "{path}: {} lacks {message}", answer.body);
    }
    assert_eq!(env.calls.take(), Vec::<String>::new());
    assert_eq!(env.item_count().await, 0);
    assert_eq!(env.all_executions().await, 0);
}

#[tokio::test]
async fn per_function_defaults_come_from_the_configuration() {
    let env = TestEnv::new().await;
    let mut config = env.config();
    let defaults = Function {
        on_conflict: ConflictPolicy::UseExisting,
        reuse: ReusePolicy::Reject,
        ..Function::new(env.machine(FOREVER).clone())
    };
    config.functions.insert("Shared".into(), defaults);
    let app = sfn_singleton::http::App { config, ..env.app() };
    assert_eq!(call(&app, post("/orchestrators/Shared/job", "{}", None)).await.status, StatusCode::ACCEPTED);
    assert_eq!(call(&app, post("/orchestrators/Shared/job", "{}", None)).await.status, StatusCode::OK);
    // The query overrides the default.
    assert_eq!(
        call(&app, post("/orchestrators/Shared/job?onConflict=reject", "{}", None)).await.status,
        StatusCode::CONFLICT
    );
}

/// Hole 7 of issue 12: restart read the record (and could describe and write)
/// before it refused a bad policy, reason or key.
#[tokio::test]
async fn restart_refuses_bad_input_before_any_aws_call() {
    let env = TestEnv::new().await;
    let app = env.app();
    assert_eq!(started(&env, "").await.status, StatusCode::ACCEPTED);
    end(&env, "succeeded").await;
    let before = record(&env).await;
    let long_reason = "r".repeat(sfn_singleton::domain::limits::MAX_REASON_CHARS + 1);
    let cases = [
        (post("/instances/order-1/restart?onConflict=replace", "", None), "InvalidPolicy"),
        (post("/instances/order-1/restart?reuse=never", "", None), "InvalidPolicy"),
        (post(&format!("/instances/order-1/restart?reason={long_reason}"), "", None), "ReasonTooLong"),
        (post("/instances/order-1/restart", "", Some(&"k".repeat(256))), "InvalidIdempotencyKey"),
    ];
    env.calls.take();
    for (request, code) in cases {
        let path = request.uri().to_string();
        let answer = call(&app, request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}: {}", answer.body);
        assert!(answer.body.contains(code), "{path}: {}", answer.body);
        assert_eq!(env.calls.take(), Vec::<String>::new(), "{path}");
    }
    assert_eq!(record(&env).await, before);
    assert_eq!(env.executions(FOREVER).await.len(), 1);
}

/// Ends the instance's QUICK run: waits for the emulator to finish it and delivers its event.
async fn finish_quick(env: &TestEnv) {
    let arn = record(env).await.execution_arn;
    assert_eq!(env.finished(&arn).await, "SUCCEEDED");
    deliver_event(&env.app().service, env.relayed_event(&arn).await).await;
}

/// Hole 4 of issue 12: the key lived only in the record, so once the record
/// was replaced (another start, a restart, a schedule) or purged, a retry with
/// the key within its window started a second run.
#[tokio::test]
async fn a_key_retry_after_the_record_was_replaced_or_purged_replays_and_starts_nothing() {
    let env = TestEnv::new().await;
    let app = env.app();
    let path = format!("/orchestrators/{QUICK}/order-1");
    let first = call(&app, post(&path, r#"{"n":1}"#, Some("k-1"))).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    finish_quick(&env).await;
    // Another start replaces the record.
    let other = call(&app, post(&path, r#"{"n":2}"#, None)).await;
    assert_eq!(other.status, StatusCode::ACCEPTED, "{}", other.body);
    let retry = call(&app, post(&path, r#"{"n":1}"#, Some("k-1"))).await;
    assert_eq!((retry.status, &retry.body), (StatusCode::ACCEPTED, &first.body));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(env.executions(QUICK).await.len(), 2);
    // Purged: the key still answers as the first time.
    finish_quick(&env).await;
    let purged = call(&app, request(Method::DELETE, "/instances/order-1", "")).await;
    assert_eq!(purged.status, StatusCode::OK, "{}", purged.body);
    let after_purge = call(&app, post(&path, r#"{"n":1}"#, Some("k-1"))).await;
    assert_eq!((after_purge.status, &after_purge.body), (StatusCode::ACCEPTED, &first.body));
    assert_eq!(env.executions(QUICK).await.len(), 2);
    assert_eq!(env.record("order-1").await, None, "a replay writes no record");
    // Past the window the key means nothing: a new start.
    env.clock.advance(env.timings.idempotency_window_millis);
    let late = call(&app, post(&path, r#"{"n":1}"#, Some("k-1"))).await;
    assert_eq!(late.status, StatusCode::ACCEPTED, "{}", late.body);
    assert_ne!(late.body, first.body);
}

/// The IETF Idempotency-Key draft: the same key with another request is 422.
#[tokio::test]
async fn the_same_key_with_another_request_is_422_and_changes_nothing() {
    let env = TestEnv::new().await;
    let app = env.app();
    let first = call(&app, post(&format!("/orchestrators/{FOREVER}/order-1"), r#"{"n":1}"#, Some("k-1"))).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let before = record(&env).await;
    for (function, body) in [(FOREVER, r#"{"n":2}"#), (WAIT20, r#"{"n":1}"#)] {
        let other = call(&app, post(&format!("/orchestrators/{function}/order-1"), body, Some("k-1"))).await;
        assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", other.body);
        assert!(other.body.contains("IdempotencyKeyReused"), "{}", other.body);
    }
    assert_eq!(record(&env).await, before);
    assert_eq!(env.all_executions().await, 1);
}

/// Issue 18: the record says RUNNING, but its run has just SUCCEEDED (its
/// event in flight). A terminateExisting start under allowFailedOnly stopped
/// nothing (AWS leaves an ended execution alone), claimed on the execution
/// name alone and answered 202 "terminated" for a run that succeeded. Now the
/// stop is read back: the run ended on its own, under the reuse policy.
#[tokio::test]
async fn terminate_existing_meets_a_run_that_just_succeeded_under_the_reuse_policy() {
    let env = TestEnv::new().await;
    let app = env.app_with(env.store(), ScriptedEngine::aws_stops(env.engine()));
    let path = format!("/orchestrators/{QUICK}/order-1");
    assert_eq!(call(&app, post(&path, "{}", None)).await.status, StatusCode::ACCEPTED);
    let first = record(&env).await;
    deliver_event(&app.service, event_fixture("running", &first)).await;
    assert_eq!(env.finished(&first.execution_arn).await, "SUCCEEDED");
    let query = "?onConflict=terminateExisting&reuse=allowFailedOnly";
    let refused = call(&app, post(&format!("{path}{query}"), "{}", None)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(refused.body.contains("ReuseForbidden") && refused.body.contains("SUCCEEDED"), "{}", refused.body);
    assert_eq!(record(&env).await.status, Status::Succeeded, "its real end is recorded");
    assert_eq!(env.executions(QUICK).await.len(), 1);
    // Under allowAll it starts, and does not claim to have terminated the run that succeeded.
    let started = call(&app, post(&format!("{path}?onConflict=terminateExisting"), "{}", None)).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    assert_eq!(started.json().get("terminatedExecutionArn"), None, "{}", started.body);
}

/// Issue 18: under reuse=reject a replace whose stop landed but whose claim was
/// throttled could never be finished: once the ABORTED event landed, every
/// retry got 409 ReuseForbidden. The same replace again now completes it.
#[tokio::test]
async fn a_half_done_replace_is_finished_by_its_retry_under_reuse_reject() {
    let env = TestEnv::new().await;
    let app = env.app();
    let path = format!("/orchestrators/{FOREVER}/order-1");
    assert_eq!(call(&app, post(&path, "{}", None)).await.status, StatusCode::ACCEPTED);
    let first = record(&env).await;
    // The replace's claim (conditional on the old execution's name) is throttled throughout.
    env.faults.inject_for("PutItem", ":oldName", Fault::Throttled, 3);
    let replace = format!("{path}?onConflict=terminateExisting&reuse=reject");
    let half = call(&app, post(&replace, "{}", None)).await;
    assert_eq!(half.status, StatusCode::SERVICE_UNAVAILABLE, "{}", half.body);
    assert_eq!(env.finished(&first.execution_arn).await, "ABORTED");
    // Its ABORTED event lands, carrying the replace's error.
    let mut aborted = event_fixture("aborted", &first);
    aborted["detail"]["error"] = serde_json::json!(sfn_singleton::domain::record::REPLACED_ERROR);
    deliver_event(&app.service, aborted).await;
    assert_eq!(record(&env).await.status, Status::Aborted);
    let retry = call(&app, post(&replace, "{}", None)).await;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{}", retry.body);
    assert_eq!(retry.json()["terminatedExecutionArn"], first.execution_arn.as_str());
    // A plain start under reject still may not reuse the ID.
    let plain = call(&app, post(&format!("{path}?reuse=reject"), "{}", None)).await;
    assert_eq!(plain.status, StatusCode::CONFLICT, "{}", plain.body);
    assert_eq!(env.faults.pending(), 0);
}

/// A restart's function and input come from the record, which may have changed
/// by the time its client retries: the key stands for "restart this instance"
/// and is checked before the record is read. (It answered 422, or 404 after a purge.)
#[tokio::test]
async fn a_keyed_restart_retry_replays_after_the_record_changed_or_was_purged() {
    let env = TestEnv::new().await;
    let app = env.app();
    let path = format!("/orchestrators/{QUICK}/order-1");
    assert_eq!(call(&app, post(&path, r#"{"n":1}"#, None)).await.status, StatusCode::ACCEPTED);
    finish_quick(&env).await;
    let first = call(&app, post("/instances/order-1/restart", "", Some("r-1"))).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    finish_quick(&env).await;
    // Another start, with another input, replaces the record.
    assert_eq!(call(&app, post(&path, r#"{"n":2}"#, None)).await.status, StatusCode::ACCEPTED);
    finish_quick(&env).await;
    let retry = call(&app, post("/instances/order-1/restart", "", Some("r-1"))).await;
    assert_eq!((retry.status, &retry.body), (StatusCode::ACCEPTED, &first.body));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(call(&app, request(Method::DELETE, "/instances/order-1", "")).await.status, StatusCode::OK);
    let after_purge = call(&app, post("/instances/order-1/restart", "", Some("r-1"))).await;
    assert_eq!((after_purge.status, &after_purge.body), (StatusCode::ACCEPTED, &first.body));
    assert_eq!(env.executions(QUICK).await.len(), 3);
}

/// A keyed start that failed before starting anything (its claim throttled)
/// answered 503 "retry later"; its retry got 409 StillStarting for the whole
/// lease, because the key's entry was kept.
#[tokio::test]
async fn a_keyed_start_that_started_nothing_lets_its_retry_start_at_once() {
    let env = TestEnv::new().await;
    let app = env.app();
    env.faults.inject_for("PutItem", "instanceId", Fault::Throttled, 3);
    let path = format!("/orchestrators/{FOREVER}/order-1");
    let failed = call(&app, post(&path, "{}", Some("k-1"))).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE, "{}", failed.body);
    let retry = call(&app, post(&path, "{}", Some("k-1"))).await;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{}", retry.body);
    assert_eq!(env.executions(FOREVER).await.len(), 1);
}

/// An operator stops the run (with an error of theirs) just before a replace's
/// own stop, which then changes nothing: under reuse=reject the replace must not
/// count that stop as its own and start a new run.
#[tokio::test]
async fn a_replace_does_not_count_someone_elses_stop_as_its_own() {
    let env = TestEnv::new().await;
    let app = env.app_with(env.store(), ScriptedEngine::aws_stops(env.engine()));
    let path = format!("/orchestrators/{FOREVER}/order-1");
    assert_eq!(call(&app, post(&path, "{}", None)).await.status, StatusCode::ACCEPTED);
    let first = record(&env).await;
    let stopped = app.service.engine().stop(&first.execution_arn, "Operator.Stop", "stopped from the console").await;
    assert!(matches!(stopped, Ok(Some(_))), "{stopped:?}");
    assert_eq!(env.finished(&first.execution_arn).await, "ABORTED");
    let replace = call(&app, post(&format!("{path}?onConflict=terminateExisting&reuse=reject"), "{}", None)).await;
    assert_eq!(replace.status, StatusCode::CONFLICT, "{}", replace.body);
    assert!(replace.body.contains("ReuseForbidden") && replace.body.contains("ABORTED"), "{}", replace.body);
    assert_eq!(record(&env).await.error.as_deref(), Some("Operator.Stop"), "its real end is recorded");
    assert_eq!(env.executions(FOREVER).await.len(), 1);
}
