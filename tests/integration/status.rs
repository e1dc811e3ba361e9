//! Status write-back, self-healing and the rest of the Durable-style API:
//! the status Lambda on documented events, reconciliation, status,
//! terminate and purge.

use lambda_http::http::{Method, StatusCode};
use sfn_singleton::domain::{Record, Status};
use sfn_singleton::events;
use sfn_singleton::service::EventOutcome;
use testkit::*;

/// Starts `id` on `function` and returns its record.
async fn started(env: &TestEnv, function: &str, id: &str) -> Record {
    let answer = start(&env.app(), function, id, r#"{"order":42}"#).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    env.record(id).await.unwrap_or_else(|| panic!("no record for {id}"))
}

async fn deliver(env: &TestEnv, event: serde_json::Value) {
    deliver_event(&env.app().service, event).await;
}

async fn outcome(env: &TestEnv, event: serde_json::Value) -> EventOutcome {
    let change = events::parse(event).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("no change"));
    env.app().service.apply_event(change).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn get(env: &TestEnv, id: &str) -> Answer {
    call(&env.app(), request(Method::GET, &format!("/instances/{id}"), "")).await
}

#[tokio::test]
async fn running_event_confirms_a_starting_record() {
    let env = TestEnv::new().await;
    let claim = started(&env, FOREVER, "order-1").await;
    assert_eq!(outcome(&env, event_fixture("running", &claim)).await, EventOutcome::Applied);
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("gone"));
    assert_eq!(record.status, Status::Running);
    assert!(record.confirmed_at.is_some() && record.lease_until.is_none() && record.expires_at.is_none());
    let status = get(&env, "order-1").await;
    assert_eq!((status.status, status.json()["runtimeStatus"].as_str()), (StatusCode::ACCEPTED, Some("Running")));
}

#[tokio::test]
async fn each_terminal_event_ends_the_record_and_frees_the_id() {
    let env = TestEnv::new().await;
    let cases = [
        ("succeeded", Status::Succeeded, "Completed", None, Some(serde_json::json!({"order": 42, "shipped": true}))),
        ("failed", Status::Failed, "Failed", Some("States.TaskFailed"), None),
        ("timed_out", Status::TimedOut, "Failed", Some("States.Timeout"), None),
        ("aborted", Status::Aborted, "Terminated", Some("Terminated"), None),
    ];
    for (fixture, status, runtime_status, error, output) in cases {
        let id = format!("order-{fixture}");
        let claim = started(&env, FOREVER, &id).await;
        deliver(&env, event_fixture("running", &claim)).await;
        deliver(&env, event_fixture(fixture, &claim)).await;
        let record = env.record(&id).await.unwrap_or_else(|| panic!("gone"));
        assert_eq!(record.status, status, "{fixture}");
        assert_eq!(record.stop_date, Some(1_795_615_205_000), "{fixture}");
        assert_eq!(record.error.as_deref(), error, "{fixture}");
        assert!(record.expires_at.is_some_and(|ttl| ttl > 1_795_615_205), "{fixture}: TTL {:?}", record.expires_at);

        let answer = get(&env, &id).await;
        assert_eq!(answer.status, StatusCode::OK, "{fixture}");
        let body = answer.json();
        assert_eq!(body["runtimeStatus"], runtime_status, "{fixture}");
        assert_eq!(body["output"], output.unwrap_or(serde_json::Value::Null), "{fixture}");
        assert_eq!(body["input"], serde_json::json!({"order": 42}));
        assert_eq!(start(&env.app(), FOREVER, &id, "{}").await.status, StatusCode::ACCEPTED, "{fixture}");
    }
}

#[tokio::test]
async fn duplicate_reordered_and_stale_events_change_nothing() {
    let env = TestEnv::new().await;
    let first = started(&env, FOREVER, "order-1").await;
    deliver(&env, event_fixture("succeeded", &first)).await;
    let ended = env.record("order-1").await;

    // Duplicate, and a RUNNING that arrives after the end.
    assert_eq!(outcome(&env, event_fixture("succeeded", &first)).await, EventOutcome::Ignored);
    assert_eq!(outcome(&env, event_fixture("failed", &first)).await, EventOutcome::Ignored);
    assert_eq!(outcome(&env, event_fixture("running", &first)).await, EventOutcome::Ignored);
    assert_eq!(env.record("order-1").await, ended);

    // A new generation; the old one's late events are ignored.
    let second = started(&env, FOREVER, "order-1").await;
    for fixture in ["succeeded", "failed", "aborted"] {
        assert_eq!(outcome(&env, event_fixture(fixture, &first)).await, EventOutcome::Ignored, "{fixture}");
    }
    assert_eq!(env.record("order-1").await, Some(second));
}

#[tokio::test]
async fn events_of_unknown_or_foreign_executions_and_malformed_events_are_acknowledged() {
    let env = TestEnv::new().await;
    let claim = started(&env, FOREVER, "order-1").await;
    let purged = Record {
        key: sfn_singleton::domain::InstanceId::parse("never-started")
            .map(|i| i.key())
            .unwrap_or_else(|e| panic!("{e}")),
        ..claim.clone()
    };
    let mut unknown = event_fixture("succeeded", &claim);
    unknown["detail"]["name"] = serde_json::json!(format!("never-started-{}-0000000000000", purged.key));
    assert_eq!(outcome(&env, unknown.clone()).await, EventOutcome::Ignored);
    let mut running_unknown = event_fixture("running", &claim);
    running_unknown["detail"]["name"] = unknown["detail"]["name"].clone();
    assert_eq!(outcome(&env, running_unknown).await, EventOutcome::UnknownInstance);
    let mut foreign = event_fixture("succeeded", &claim);
    foreign["detail"]["name"] = serde_json::json!("a-manual-run");
    assert_eq!(outcome(&env, foreign).await, EventOutcome::NotOurs);

    let malformed = [
        serde_json::json!("not an object"),
        serde_json::json!({"id": "e-1", "source": "aws.states"}),
        serde_json::json!({"id": "e-2", "source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {"executionArn": "x", "name": "y", "status": "SUCCEEDED"}}),
        {
            let mut e = event_fixture("succeeded", &claim);
            e["detail"]["status"] = serde_json::json!("EXPLODED");
            e
        },
        {
            let mut e = event_fixture("succeeded", &claim);
            e["detail"]["stopDate"] = serde_json::json!("yesterday");
            e
        },
    ];
    for event in malformed {
        assert!(events::parse(event.clone()).is_err(), "{event}");
        deliver(&env, event).await;
    }
    assert_eq!(env.record("order-1").await, Some(claim));
}

#[tokio::test]
async fn a_redrive_of_the_current_execution_makes_it_running_again() {
    let env = TestEnv::new().await;
    let claim = started(&env, FOREVER, "order-1").await;
    deliver(&env, event_fixture("failed", &claim)).await;
    deliver(&env, event_fixture("redriven_running", &claim)).await;
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("gone"));
    assert_eq!((record.status, record.redrive_count), (Status::Running, 1));
    assert!(record.expires_at.is_none() && record.error.is_none() && record.stop_date.is_none());
    // The first run's FAILED, late, does not end the redriven run.
    assert_eq!(outcome(&env, event_fixture("failed", &claim)).await, EventOutcome::Ignored);
    assert_eq!(start(&env.app(), FOREVER, "order-1", "{}").await.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_redriven_older_execution_is_stopped_so_two_never_run_at_once() {
    let env = TestEnv::new().await;
    let old = started(&env, FOREVER, "order-1").await;
    // Its FAILED event (the emulator's execution keeps running: as if redriven later).
    deliver(&env, event_fixture("failed", &old)).await;
    let current = started(&env, FOREVER, "order-1").await;
    assert_eq!(outcome(&env, event_fixture("redriven_running", &old)).await, EventOutcome::StoppedSuperseded);
    assert_eq!(env.finished(&old.execution_arn).await, "ABORTED");
    assert_eq!(env.execution_status(&current.execution_arn).await, "RUNNING");
    assert_eq!(env.record("order-1").await, Some(current));
}

/// Hole 3 of issue 12: the record is purged (or expired by TTL) while the
/// execution can still be redriven for 14 days. The old code acknowledged the
/// redrive's RUNNING as "unknown instance", so it ran beside the next start.
#[tokio::test]
async fn a_redrive_after_the_record_was_deleted_is_stopped_and_the_id_stays_free() {
    let env = TestEnv::new().await;
    let old = started(&env, FOREVER, "order-1").await;
    // It failed (the emulator's execution keeps running: as if redriven later); the record is purged.
    deliver(&env, event_fixture("failed", &old)).await;
    let purged = call(&env.app(), request(Method::DELETE, "/instances/order-1", "")).await;
    assert_eq!(purged.status, StatusCode::OK, "{}", purged.body);
    assert_eq!(outcome(&env, event_fixture("redriven_running", &old)).await, EventOutcome::StoppedSuperseded);
    assert_eq!(env.finished(&old.execution_arn).await, "ABORTED");
    assert_eq!(env.item_count().await, 0, "nothing recreated");
    let current = started(&env, FOREVER, "order-1").await;
    assert_eq!(env.settled_executions(FOREVER, &current.execution_name).await.len(), 2);
    // A first run no record knows is not stopped (another table's, say): only redrives are.
    let mut fresh = event_fixture("running", &old);
    fresh["detail"]["name"] = serde_json::json!(format!("x-{}-0000000000000", "0".repeat(32)));
    assert_eq!(outcome(&env, fresh).await, EventOutcome::UnknownInstance);
}

/// Issue 18: Step Functions leaves an output over ~248 KB out of the status
/// event (`outputDetails.included: false`); the record said `"output": null`.
/// Now it is fetched and kept within the record's bound, like any long output.
#[tokio::test]
async fn an_output_left_out_of_its_event_is_fetched_and_kept_within_the_bound() {
    let env = TestEnv::new().await;
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(40 * 1024));
    let answer = start(&env.app(), QUICK, "order-1", &big).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let claim = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(env.finished(&claim.execution_arn).await, "SUCCEEDED");
    deliver(&env, event_fixture("succeeded_output_omitted", &claim)).await;
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("gone"));
    let output = record.output.unwrap_or_default();
    assert!(
        output.starts_with(r#"{"blob""#) && output.contains("xxxxxxxx") && output.ends_with("…[truncated]"),
        "{}",
        &output[..40.min(output.len())]
    );
    assert!(output.len() <= sfn_singleton::domain::record::MAX_STORED_OUTPUT_BYTES);
    assert_eq!(get(&env, "order-1").await.json()["output"].as_str().map(|o| o.ends_with("…[truncated]")), Some(true));
}

#[tokio::test]
async fn a_lost_terminal_event_is_healed_by_reconciliation_on_the_next_start() {
    let env = TestEnv::new().await;
    let claim = started(&env, QUICK, "order-1").await;
    deliver(&env, event_fixture("running", &claim)).await;
    assert_eq!(env.finished(&claim.execution_arn).await, "SUCCEEDED");
    // The SUCCEEDED event is lost: within the reconcile interval the record is believed.
    let app = env.app();
    assert_eq!(start(&app, QUICK, "order-1", "{}").await.status, StatusCode::CONFLICT);

    env.clock.advance(env.timings.reconcile_after_millis);
    env.calls.take();
    let answer = start(&app, QUICK, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(
        env.calls.take(),
        env.expected(&[REFUSED_PUT, "DescribeExecution", "UpdateItem", "PutItem", "StartExecution"])
    );
    assert_eq!(env.executions(QUICK).await.len(), 2);
}

#[tokio::test]
async fn a_status_read_of_an_unconfirmed_record_reports_the_truth() {
    let env = TestEnv::new().await;
    let claim = started(&env, FAILS, "order-1").await;
    assert_eq!(env.finished(&claim.execution_arn).await, "FAILED");
    let answer = get(&env, "order-1").await;
    assert_eq!((answer.status, answer.json()["runtimeStatus"].as_str()), (StatusCode::ACCEPTED, Some("Pending")));

    env.clock.advance(env.timings.lease_millis);
    env.calls.take();
    let answer = get(&env, "order-1").await;
    assert_eq!(env.calls.take(), ["GetItem", "DescribeExecution", "UpdateItem"]);
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["runtimeStatus"], "Failed");
    assert_eq!(body["error"], "Example.Failure");
    assert_eq!(env.record("order-1").await.map(|r| r.status), Some(Status::Failed));
}

#[tokio::test]
async fn terminate_stops_the_execution_and_the_id_starts_again() {
    let env = TestEnv::new().await;
    let claim = started(&env, FOREVER, "order-1").await;
    let app = env.app();
    let answer = call(&app, request(Method::POST, "/instances/order-1/terminate?reason=customer+cancelled", "")).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.json()["runtimeStatus"], "Terminated");
    assert_eq!(answer.json()["cause"], "customer cancelled");
    assert_eq!(env.finished(&claim.execution_arn).await, "ABORTED");
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("gone"));
    assert_eq!((record.status, record.cause.as_deref()), (Status::Aborted, Some("customer cancelled")));
    // Its ABORTED event arrives later and changes nothing.
    assert_eq!(outcome(&env, event_fixture("aborted", &claim)).await, EventOutcome::Ignored);

    let again = call(&app, request(Method::POST, "/instances/order-1/terminate", "")).await;
    assert_eq!(again.status, StatusCode::GONE, "{}", again.body);
    let unknown = call(&app, request(Method::POST, "/instances/nobody/terminate", "")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    let long = format!(
        "/instances/order-1/terminate?reason={}",
        "x".repeat(sfn_singleton::domain::limits::MAX_REASON_CHARS + 1)
    );
    let refused = call(&app, request(Method::POST, &long, "")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("ReasonTooLong"), "{}", refused.body);
    assert_eq!(start(&app, FOREVER, "order-1", "{}").await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn terminating_an_execution_that_just_ended_records_how_it_ended() {
    let env = TestEnv::new().await;
    let claim = started(&env, FAILS, "order-1").await;
    // It fails; its event is still on its way when the terminate comes.
    assert_eq!(env.finished(&claim.execution_arn).await, "FAILED");
    let app = env.app_with(env.store(), ScriptedEngine::aws_stops(env.engine()));
    let answer = call(&app, request(Method::POST, "/instances/order-1/terminate", "")).await;
    assert_eq!(answer.status, StatusCode::GONE, "{}", answer.body);
    assert!(answer.body.contains("already ended (FAILED)"), "{}", answer.body);
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("gone"));
    assert_eq!((record.status, record.error.as_deref()), (Status::Failed, Some("Example.Failure")));
    // Its FAILED event, arriving now, agrees.
    assert_eq!(outcome(&env, event_fixture("failed", &claim)).await, EventOutcome::Ignored);
}

#[tokio::test]
async fn purge_deletes_terminal_records_only() {
    let env = TestEnv::new().await;
    let app = env.app();
    let claim = started(&env, FOREVER, "order-1").await;
    let delete = || call(&app, request(Method::DELETE, "/instances/order-1", ""));
    let running = delete().await;
    assert_eq!(running.status, StatusCode::CONFLICT, "{}", running.body);
    assert!(env.record("order-1").await.is_some());

    deliver(&env, event_fixture("succeeded", &claim)).await;
    let purged = delete().await;
    assert_eq!(purged.status, StatusCode::OK, "{}", purged.body);
    assert_eq!(purged.json(), serde_json::json!({"instancesDeleted": 1}));
    assert_eq!(env.record("order-1").await, None);
    assert_eq!(delete().await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&env, "order-1").await.status, StatusCode::NOT_FOUND);
    let wrong = call(&app, request(Method::PUT, "/instances/order-1", "")).await;
    assert_eq!((wrong.status, wrong.header("allow")), (StatusCode::METHOD_NOT_ALLOWED, Some("GET, DELETE")));
}

#[tokio::test]
async fn end_to_end_the_execution_finishes_its_event_is_relayed_and_the_id_starts_again() {
    let env = TestEnv::new().await;
    let claim = started(&env, QUICK, "order-1").await;
    deliver(&env, env.relayed_event(&claim.execution_arn).await).await;
    assert_eq!(env.finished(&claim.execution_arn).await, "SUCCEEDED");
    deliver(&env, env.relayed_event(&claim.execution_arn).await).await;
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("gone"));
    assert_eq!(record.status, Status::Succeeded);
    let output: Option<serde_json::Value> = record.output.as_deref().and_then(|o| serde_json::from_str(o).ok());
    assert_eq!(output, Some(serde_json::json!({"order": 42})), "a Pass state passes its input through");
    let again = start(&env.app(), QUICK, "order-1", "{}").await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_eq!(env.executions(QUICK).await.len(), 2);
}

/// The real status binary under a Runtime API, fed what the event source mapping
/// delivers: an SQS batch whose bodies are EventBridge events.
#[tokio::test]
async fn the_status_binary_applies_an_sqs_batch_of_status_events() {
    let env = std::sync::Arc::new(TestEnv::new().await);
    let started = start(&env.app(), QUICK, "order-1", "{}").await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    let batch = serde_json::to_string(&sqs_batch(&[event_fixture("running", &record)])).unwrap_or_default();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_bootstrap")).to_owned();
    let invocation = tokio::task::spawn_blocking({
        let env = env.clone();
        move || invoke(&binary, "status_events", &env, vec![batch])
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .succeeded();
    assert_eq!(invocation.answered, 1);
    assert_eq!(env.record("order-1").await.map(|r| r.status), Some(Status::Running));
}
