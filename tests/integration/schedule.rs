//! The scheduled trigger: the same singleton start, with an overlap policy;
//! and the cold-start refusal of Express state machines.

use sfn_singleton::domain::{ExecutionArn, StateMachineArn, Status};
use sfn_singleton::schedule::Error;
use sfn_singleton::schedule::{self, ScheduleOutcome};
use sfn_singleton::service::Error as ServiceError;
use sfn_singleton::service::StandardCheck;
use std::collections::BTreeMap;
use std::sync::Arc;
use testkit::*;

fn input(id: &str, overlap: &str) -> serde_json::Value {
    serde_json::json!({"functionName": FOREVER, "instanceId": id, "input": {"report": "nightly"}, "overlap": overlap})
}

async fn run(env: &TestEnv, event: serde_json::Value) -> Result<ScheduleOutcome, Error> {
    let app = env.app();
    schedule::handle(&app.service, &app.config, &event.to_string()).await
}

fn started_arn(outcome: Result<ScheduleOutcome, Error>) -> ExecutionArn {
    match outcome {
        Ok(ScheduleOutcome::Started { execution_arn }) => execution_arn,
        other => panic!("expected a start, got {other:?}"),
    }
}

#[tokio::test]
async fn skip_does_nothing_while_the_previous_run_runs_and_starts_once_it_ended() {
    let env = TestEnv::new().await;
    let first = started_arn(run(&env, input("nightly", "skip")).await);
    let record = env.record("nightly").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.execution_arn, first);
    let input_seen: serde_json::Value = serde_json::from_str(&env.execution_input(&first).await).unwrap_or_default();
    assert_eq!(input_seen, serde_json::json!({"report": "nightly"}));

    env.calls.take();
    let skipped = run(&env, input("nightly", "skip")).await;
    assert!(
        matches!(&skipped, Ok(ScheduleOutcome::Skipped { running_execution_arn: Some(arn) }) if *arn == first),
        "{skipped:?}"
    );
    assert_eq!(env.calls.take(), env.expected(&[REFUSED_PUT, "GetItem"]));
    assert_eq!(env.executions(FOREVER).await.len(), 1);

    let app = env.app();
    deliver_event(&app.service, event_fixture("succeeded", &record)).await;
    let second = started_arn(run(&env, input("nightly", "skip")).await);
    assert_ne!(second, first);
    assert_eq!(env.executions(FOREVER).await.len(), 2);
}

#[tokio::test]
async fn replace_terminates_the_running_one_then_starts() {
    let env = TestEnv::new().await;
    let first = started_arn(run(&env, input("nightly", "replace")).await);
    match run(&env, input("nightly", "replace")).await {
        Ok(ScheduleOutcome::Replaced { terminated_execution_arn, execution_arn }) => {
            assert_eq!(terminated_execution_arn, first);
            assert_eq!(env.finished(&first).await, "ABORTED");
            assert_eq!(env.execution_status(&execution_arn).await, "RUNNING");
            let record = env.record("nightly").await.unwrap_or_else(|| panic!("no record"));
            assert_eq!((record.execution_arn, record.status), (execution_arn, Status::Starting));
        }
        other => panic!("expected a replace, got {other:?}"),
    }
}

#[tokio::test]
async fn concurrent_schedules_keep_one_execution_running() {
    let env = Arc::new(TestEnv::new().await);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move { run(&env, input("skip-storm", "skip")).await })
        })
        .collect();
    let mut started = 0;
    for task in tasks {
        match task.await.unwrap_or_else(|e| panic!("{e}")) {
            Ok(ScheduleOutcome::Started { .. }) => started += 1,
            Ok(ScheduleOutcome::Skipped { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(started, 1);
    assert_eq!(env.executions(FOREVER).await.len(), 1);

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move { run(&env, input("replace-storm", "replace")).await })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap_or_else(|e| panic!("{e}")) {
            Ok(_) | Err(Error::Service(ServiceError::StillStarting(_))) => {}
            Err(other) => panic!("{other}"),
        }
    }
    let record = env.record("replace-storm").await.unwrap_or_else(|| panic!("no record"));
    let running: Vec<_> = env
        .settled_executions(FOREVER, &record.execution_name)
        .await
        .into_iter()
        .filter(|(name, status)| status == "RUNNING" && name.starts_with("replace-storm"))
        .collect();
    assert!(!record.status.is_terminal(), "{:?}", record.status);
    assert_eq!(
        running,
        vec![(record.execution_name.to_string(), "RUNNING".to_owned())],
        "exactly the record's execution runs"
    );
}

#[tokio::test]
async fn bad_schedule_input_fails_the_invocation_and_writes_nothing() {
    let env = TestEnv::new().await;
    let cases = [
        (serde_json::json!({"instanceId": "x"}), "missing field `functionName`"),
        (
            serde_json::json!({"functionName": FOREVER, "instanceId": "x", "overlap": "sometimes"}),
            "unknown variant `sometimes`",
        ),
        (serde_json::json!({"functionName": FOREVER, "instanceId": "x", "typo": 1}), "unknown field `typo`"),
        (
            serde_json::json!({"functionName": FOREVER, "instanceId": "x", "overlap": "signal"}),
            "overlap \"signal\" needs \"eventName\"",
        ),
        (
            serde_json::json!({"functionName": FOREVER, "instanceId": "x", "overlap": "signal", "eventName": "a b"}),
            "event name \"a b\" is not",
        ),
        (
            serde_json::json!({"functionName": FOREVER, "instanceId": "x", "eventName": "tick"}),
            "\"eventName\" goes with overlap \"signal\" only",
        ),
        (serde_json::json!({"functionName": "Nope", "instanceId": "x"}), "no function named \"Nope\""),
        (serde_json::json!({"functionName": FOREVER, "instanceId": "a/b"}), "must not contain '/'"),
        (
            serde_json::json!({"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
            "must be {\"functionName\"",
        ),
    ];
    for (event, message) in cases {
        let error = run(&env, event.clone()).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains(message), "{event}: {error:?} lacks {message:?}");
    }
    assert_eq!(env.item_count().await, 0);
    assert_eq!(env.all_executions().await, 0);
}

#[tokio::test]
async fn express_state_machines_are_refused_at_cold_start() {
    let env = TestEnv::new().await;
    let express = env
        .sfn
        .create_state_machine()
        .name(format!("express-{}", fastrand::u32(..)))
        .definition(r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/test")
        .r#type(aws_sdk_sfn::types::StateMachineType::Express)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let express = StateMachineArn::parse(express.state_machine_arn()).unwrap_or_else(|e| panic!("{e}"));
    let app = env.app();

    let standard: BTreeMap<_, _> = env.functions.clone().into_iter().filter(|(name, _)| name != MISSING).collect();
    assert!(app.service.check_state_machines(standard.iter()).await.is_ok());

    let with_express = BTreeMap::from([("Fast".to_owned(), express.clone())]);
    let refused = app.service.check_state_machines(with_express.iter()).await.err().map(|e| e.to_string());
    let refused = refused.unwrap_or_default();
    assert!(
        refused.contains("\"Fast\"") && refused.contains("EXPRESS state machine; sfn-singleton needs STANDARD"),
        "{refused}"
    );

    // In the functions: the check runs from cold start on; starts wait for it and are refused.
    let check = Arc::new(StandardCheck::new(vec![("Fast".to_owned(), express.clone())]));
    let guarded = env.app_with(env.store(), env.engine());
    let guarded = sfn_singleton::http::App { service: guarded.service.with_standard_check(check), ..guarded };
    let refused = start(&guarded, FOREVER, "guarded", "{}").await;
    assert_eq!(refused.status, lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR, "{}", refused.body);
    assert!(refused.body.contains("not a Standard workflow"), "{}", refused.body);
    assert!(!refused.body.contains("arn:aws"), "the ARN stays in the log: {}", refused.body);
    // Its claim ran alongside the check, and was released.
    assert_eq!(env.record("guarded").await.map(|r| r.status), Some(Status::StartFailed));
    assert_eq!(env.executions(FOREVER).await.len(), 0, "nothing started");

    let missing = BTreeMap::from([(MISSING.to_owned(), env.machine(MISSING).clone())]);
    let refused =
        app.service.check_state_machines(missing.iter()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("does not exist"), "{refused}");
}

/// A delivery of the occurrence scheduled at `hour` as EventBridge Scheduler
/// makes it, placeholders filled in (the execution ID is per attempt).
fn occurrence(id: &str, overlap: &str, hour: &str) -> serde_json::Value {
    let mut event = input(id, overlap);
    event["scheduleArn"] = serde_json::json!("arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly");
    event["scheduledTime"] = serde_json::json!(format!("2026-11-26T{hour}:00:00Z"));
    event["executionId"] = serde_json::json!(format!("{:016x}", fastrand::u64(..)));
    event
}

/// Issue 18: Scheduler delivers at least once. Under `skip`, a duplicate of an
/// occurrence whose run had ended started it again; now it replays.
#[tokio::test]
async fn a_duplicate_occurrence_replays_under_skip_even_after_its_run_ended() {
    let env = TestEnv::new().await;
    let first = started_arn(run(&env, occurrence("nightly", "skip", "03")).await);
    let record = env.record("nightly").await.unwrap_or_else(|| panic!("no record"));
    deliver_event(&env.app().service, event_fixture("succeeded", &record)).await;
    let duplicate = run(&env, occurrence("nightly", "skip", "03")).await;
    assert_eq!(duplicate.ok(), Some(ScheduleOutcome::Replayed { execution_arn: first.clone() }));
    assert_eq!(env.executions(FOREVER).await.len(), 1);
    // The next occurrence starts.
    let next = started_arn(run(&env, occurrence("nightly", "skip", "04")).await);
    assert_ne!(next, first);
}

/// Under `replace`, a duplicate stopped the run its own first delivery started.
#[tokio::test]
async fn a_duplicate_occurrence_never_replaces_its_own_run() {
    let env = TestEnv::new().await;
    let first = started_arn(run(&env, occurrence("nightly", "replace", "03")).await);
    let duplicate = run(&env, occurrence("nightly", "replace", "03")).await;
    assert_eq!(duplicate.ok(), Some(ScheduleOutcome::Replayed { execution_arn: first.clone() }));
    assert_eq!(env.execution_status(&first).await, "RUNNING");
    assert_eq!(env.executions(FOREVER).await.len(), 1);
}

/// The first invocation claimed, then could not confirm its start; Lambda
/// retries the occurrence. The old code met its own claim and reported
/// "skipped" (success): no more retries, nothing in the DLQ, nothing ran.
#[tokio::test]
async fn a_retried_occurrence_is_never_skipped_because_of_its_own_claim() {
    let env = TestEnv::new().await;
    env.faults.inject("StartExecution", Fault::TimeoutBefore, 3);
    let failed = run(&env, occurrence("nightly", "skip", "03")).await;
    assert!(matches!(failed, Err(Error::Service(ServiceError::StartUnconfirmed { .. }))), "{failed:?}");
    let retry = run(&env, occurrence("nightly", "skip", "03")).await;
    assert!(
        matches!(retry, Err(Error::Service(ServiceError::StillStarting(_)))),
        "fails again, to be retried: {retry:?}"
    );
    env.clock.advance(env.timings.lease_millis);
    let late = started_arn(run(&env, occurrence("nightly", "skip", "03")).await);
    assert_eq!(env.executions(FOREVER).await, vec![(late.name().to_owned(), "RUNNING".to_owned())]);
}

/// The input reaches Step Functions as written: numbers beyond 64 bits, long
/// decimals and repeated keys were lost to a re-serialisation.
#[tokio::test]
async fn the_occurrence_fields_are_accepted_and_the_input_passes_verbatim() {
    let env = TestEnv::new().await;
    let raw_input = r#"{"big": 123456789012345678901234567890, "dec": 0.10000000000000000000000001, "k": 1, "k": 2}"#;
    let payload = format!(
        r#"{{"functionName": "{FOREVER}", "instanceId": "raw", "input": {raw_input}, "executionId": "occ-9", "scheduledTime": "2026-11-26T03:00:00Z"}}"#
    );
    let app = env.app();
    let outcome = schedule::handle(&app.service, &app.config, &payload).await;
    let arn = started_arn(outcome);
    assert_eq!(env.execution_input(&arn).await, raw_input);
}

/// The scheduled path used the default reuse policy, not the function's.
#[tokio::test]
async fn a_schedule_uses_its_functions_configured_reuse_policy() {
    let env = TestEnv::new().await;
    let mut app = env.app();
    if let Some(function) = app.config.functions.get_mut(FOREVER) {
        function.reuse = sfn_singleton::domain::ReusePolicy::Reject;
    }
    let first = schedule::handle(&app.service, &app.config, &occurrence("nightly", "skip", "03").to_string()).await;
    started_arn(first);
    let record = env.record("nightly").await.unwrap_or_else(|| panic!("no record"));
    deliver_event(&app.service, event_fixture("succeeded", &record)).await;
    let next = schedule::handle(&app.service, &app.config, &occurrence("nightly", "skip", "04").to_string()).await;
    assert!(matches!(next, Err(Error::Service(ServiceError::ReuseForbidden { .. }))), "{next:?}");
    assert_eq!(env.executions(FOREVER).await.len(), 1);
}

/// The template's example schedule input, as Scheduler fills it in, starts its instance.
#[tokio::test]
async fn the_templates_example_schedule_input_starts_its_instance() {
    let template = std::fs::read_to_string(format!("{}/template.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("template.yaml: {e}"));
    let section = &template[template.find("ExampleSchedule:").unwrap_or_else(|| panic!("no ExampleSchedule"))..];
    let line = section.lines().find_map(|l| l.trim().strip_prefix("Input: '")).unwrap_or_else(|| panic!("no Input"));
    let input = line.trim_end_matches('\'').replace("\"Wait20\"", &format!("\"{FOREVER}\""));
    let filled = input
        .replace("<aws.scheduler.schedule-arn>", "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x")
        .replace("<aws.scheduler.execution-id>", "2f1c6a0e-0d3b-4c1f-9d8e-2b7a1c3d4e5f")
        .replace("<aws.scheduler.scheduled-time>", "2026-11-26T03:00:00Z");
    let app = TestEnv::new().await;
    let env_app = app.app();
    let outcome = schedule::handle(&env_app.service, &env_app.config, &filled).await;
    started_arn(outcome);
    let replayed = schedule::handle(&env_app.service, &env_app.config, &filled).await;
    assert!(matches!(replayed, Ok(ScheduleOutcome::Replayed { .. })), "{replayed:?}");
}

/// Lambda's error report names what went wrong (not the Rust type of a boxed error), so that
/// CloudWatch and the dead-letter queue show something a person can act on.
#[tokio::test]
async fn a_failed_scheduled_invocation_reports_a_named_error_to_lambda() {
    let env = Arc::new(TestEnv::new().await);
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_bootstrap"));
    for (payload, error_type, message) in [
        (serde_json::json!({ "functionName": QUICK }), "InvalidScheduleInput", "the schedule's input is invalid"),
        (serde_json::json!({ "functionName": "Nope", "instanceId": "a" }), "UnknownFunction", "no function named"),
        (serde_json::json!({ "functionName": QUICK, "instanceId": "a/b" }), "InvalidInstanceId", "instance ID"),
    ] {
        let invocation = tokio::task::spawn_blocking({
            let (binary, env) = (binary.to_owned(), env.clone());
            move || invoke(&binary, "scheduled", &env, vec![payload.to_string()])
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let report: serde_json::Value =
            serde_json::from_str(invocation.error.as_deref().unwrap_or("{}")).unwrap_or_default();
        assert_eq!(report["errorType"], error_type, "{report}");
        assert!(report["errorMessage"].as_str().is_some_and(|m| m.contains(message)), "{report}");
    }
    assert_eq!(env.all_executions().await, 0);
}

/// The one binary without a handler it knows (a function deployed with another Handler, or
/// run by hand without `_HANDLER`) stops at once and says what it got, before polling for work.
#[test]
fn the_bootstrap_refuses_a_handler_it_does_not_know_by_name() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_bootstrap"));
    for handler in [None, Some("bootstrap")] {
        let mut command = std::process::Command::new(binary);
        command.env_clear().env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9");
        if let Some(handler) = handler {
            command.env("_HANDLER", handler);
        }
        let output = command.output().unwrap_or_else(|e| panic!("{e}"));
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(!output.status.success(), "{said}");
        let named = format!("_HANDLER is {:?}", handler.unwrap_or(""));
        assert!(said.contains(&named) && said.contains("http, status_events, scheduled or event_waits"), "{said}");
    }
    // Lambda's advanced logging controls: JSON lines at the level it sets (here ERROR lines only)
    let output = std::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "ERROR")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let logged: Vec<serde_json::Value> =
        String::from_utf8_lossy(&output.stdout).lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    assert!(
        logged.iter().any(|line| line["level"] == "ERROR" && line["fields"]["message"] == "no such Lambda"),
        "{logged:?}"
    );
    assert!(logged.iter().all(|line| line["level"] == "ERROR"), "{logged:?}");
}

/// `overlap: signal`: an occurrence with nothing running starts a run holding its input as
/// the event; while it runs, the next occurrence's input is raised into it; a duplicate
/// delivery of an occurrence (Scheduler's at least once) raises nothing twice.
#[tokio::test]
async fn signal_raises_each_occurrence_into_the_running_one_once() {
    let env = TestEnv::new().await;
    let signal = |hour: &str| {
        let mut event = occurrence("ticker", "signal", hour);
        event["eventName"] = serde_json::json!("tick");
        event
    };
    let first = started_arn(run(&env, signal("05")).await);
    assert_eq!(env.record("ticker").await.map(|r| r.mailbox.events.len()), Some(1), "its event buffered");
    let next = run(&env, signal("06")).await;
    let raised = ScheduleOutcome::Signaled { execution_arn: first.clone(), delivery: "buffered".into() };
    assert_eq!(next.ok(), Some(raised));
    // The same occurrences delivered again: replayed, into the same run, nothing added
    let replayed = Some(ScheduleOutcome::Replayed { execution_arn: first.clone() });
    assert_eq!(run(&env, signal("06")).await.ok(), replayed);
    assert_eq!(run(&env, signal("05")).await.ok(), replayed);
    assert_eq!(env.record("ticker").await.map(|r| r.mailbox.events.len()), Some(2));
    assert_eq!(env.executions(FOREVER).await.len(), 1);
}
