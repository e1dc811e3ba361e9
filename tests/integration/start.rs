//! The start path: claim + StartExecution, conflicts, storms, bad input,
//! refused starts.

use lambda_http::http::{Method, StatusCode};
use sfn_singleton::domain::{ExecutionArn, Status};
use sfn_singleton::ports::{Applied, ExecutionState, ExecutionUpdate, InstanceStore};
use std::sync::Arc;
use testkit::*;

const CONFLICT: &str = "An instance with ID 'order-1' already exists.";

#[tokio::test]
async fn first_start_answers_202_with_durable_payload_and_starts_with_the_body_as_input() {
    let env = TestEnv::new().await;
    let app = env.app();
    let answer = start(&app, FOREVER, "order-1", r#"{"customer":"c-7","items":[1,2]}"#).await;

    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let body = answer.json();
    let status_uri = "https://api.example.com/instances/order-1";
    assert_eq!(body["id"], "order-1");
    assert_eq!(body["statusQueryGetUri"], status_uri);
    assert_eq!(body["terminatePostUri"], format!("{status_uri}/terminate?reason={{text}}"));
    assert_eq!(body["purgeHistoryDeleteUri"], status_uri);
    assert_eq!(answer.header("location"), Some(status_uri));
    assert_eq!(answer.header("retry-after"), Some("10"));

    let executions = env.executions(FOREVER).await;
    assert_eq!(executions.len(), 1);
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.status, Status::Starting);
    assert_eq!(executions[0].0, record.execution_name);
    assert_eq!(body["executionArn"], record.execution_arn.as_str());
    let input: serde_json::Value =
        serde_json::from_str(&env.execution_input(&record.execution_arn).await).unwrap_or_default();
    assert_eq!(input, serde_json::json!({"customer": "c-7", "items": [1, 2]}));
}

#[tokio::test]
async fn empty_body_starts_with_null_input() {
    let env = TestEnv::new().await;
    let answer = start(&env.app(), QUICK, "empty-body", "").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let record = env.record("empty-body").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(env.execution_input(&record.execution_arn).await, "null");
}

#[tokio::test]
async fn links_follow_the_api_gateway_stage_and_ids_are_percent_encoded() {
    let env = TestEnv::new().await;
    let fixture = include_str!("../fixtures/apigw-v2-start.json").replace("{{FUNCTION}}", FOREVER);
    let request = lambda_http::request::from_str(&fixture).unwrap_or_else(|e| panic!("fixture: {e}"));
    let answer = call(&env.app(), request).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["id"], "order 7/ü".replace('/', ":"));
    assert_eq!(
        body["statusQueryGetUri"],
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod/instances/order%207%3A%C3%BC"
    );
}

#[tokio::test]
async fn second_start_of_a_running_id_is_409_with_durables_message() {
    let env = TestEnv::new().await;
    let app = env.app();
    assert_eq!(start(&app, FOREVER, "order-1", "{}").await.status, StatusCode::ACCEPTED);
    let again = start(&app, FOREVER, "order-1", "{}").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body, CONFLICT);
    // The same ID under another function is the same instance.
    assert_eq!(start(&app, QUICK, "order-1", "{}").await.body, CONFLICT);
    assert_eq!(env.executions(FOREVER).await.len(), 1);
    assert_eq!(env.executions(QUICK).await.len(), 0);
}

fn finished(execution_arn: &ExecutionArn, status: Status, now: i64) -> ExecutionUpdate {
    ExecutionUpdate {
        execution_arn: execution_arn.clone(),
        state: ExecutionState {
            status,
            redrive_count: 0,
            stop_date: Some(now),
            output: None,
            error: None,
            cause: None,
            input: None,
        },
        observed_at: now,
        from: &[Status::Starting, Status::Running],
        expires_at: Some(now / 1000 + 60),
        rewind_token: None,
    }
}

#[tokio::test]
async fn every_terminal_status_lets_the_id_start_again_as_a_new_execution() {
    let env = TestEnv::new().await;
    let app = env.app();
    for status in [Status::Succeeded, Status::Failed, Status::TimedOut, Status::Aborted] {
        assert_eq!(start(&app, FOREVER, "order-1", "{}").await.status, StatusCode::ACCEPTED);
        let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
        // What the status Lambda writes when the execution ends.
        let wrote = env.store().apply(&record.key, &finished(&record.execution_arn, status, 1)).await;
        assert_eq!(wrote, Ok(Applied::Written { dropped_events: 0 }), "{status}");
    }
    let answer = start(&app, FOREVER, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let names: std::collections::HashSet<_> = env.executions(FOREVER).await.into_iter().map(|(name, _)| name).collect();
    assert_eq!(names.len(), 5, "five starts, five distinct executions");
}

#[tokio::test]
async fn storm_of_500_starts_of_one_id_creates_exactly_one_execution() {
    let env = TestEnv::new().await;
    let app = Arc::new(env.app());
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { start(&app, FOREVER, "storm", &format!(r#"{{"caller":{i}}}"#)).await })
        })
        .collect();
    let (mut accepted, mut conflicts, mut unavailable, mut other) = (0, 0, 0, Vec::new());
    for task in tasks {
        let answer = task.await.unwrap_or_else(|e| panic!("task: {e}"));
        match answer.status {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::CONFLICT if answer.body == "An instance with ID 'storm' already exists." => conflicts += 1,
            _ if answer.is_store_unavailable() => unavailable += 1,
            _ => other.push(answer),
        }
    }
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert_eq!((accepted, conflicts + unavailable), (1, 499));
    assert_few_unavailable(unavailable, 500);
    assert_eq!(env.executions(FOREVER).await.len(), 1);
}

#[tokio::test]
async fn storm_of_100_distinct_ids_starts_100_executions() {
    let env = TestEnv::new().await;
    let app = Arc::new(env.app());
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { start(&app, FOREVER, &format!("id-{i}"), "{}").await.status })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap_or_else(|e| panic!("task: {e}")), StatusCode::ACCEPTED);
    }
    assert_eq!(env.executions(FOREVER).await.len(), 100);
    assert_eq!(env.item_count().await, 100);
}

#[tokio::test]
async fn a_start_costs_two_aws_calls_and_a_rejection_one() {
    let env = TestEnv::new().await;
    let app = env.app();
    env.calls.take();
    assert_eq!(start(&app, FOREVER, "counted", "{}").await.status, StatusCode::ACCEPTED);
    assert_eq!(env.calls.take(), ["PutItem", "StartExecution"]);
    assert_eq!(start(&app, FOREVER, "counted", "{}").await.status, StatusCode::CONFLICT);
    assert_eq!(env.calls.take(), env.expected(&[REFUSED_PUT]));
}

#[tokio::test]
async fn bad_input_gets_its_4xx_and_writes_nothing() {
    let env = TestEnv::new().await;
    let app = env.app();
    let too_long = "x".repeat(257);
    let too_big = format!("\"{}\"", "x".repeat(256 * 1024));
    let cases: Vec<(Method, String, String, StatusCode, &str)> = vec![
        (Method::POST, format!("/orchestrators/{FOREVER}/"), "{}".into(), StatusCode::BAD_REQUEST, "must not be empty"),
        (
            Method::POST,
            format!("/orchestrators/{FOREVER}/{too_long}"),
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "at most 256 characters, got 257",
        ),
        (
            Method::POST,
            format!("/orchestrators/{FOREVER}/a%2Fb"),
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "must not contain '/'",
        ),
        (
            Method::POST,
            format!("/orchestrators/{FOREVER}/a%5Cb"),
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "must not contain '\\\\'",
        ),
        (
            Method::POST,
            format!("/orchestrators/{FOREVER}/a%23b"),
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "must not contain '#'",
        ),
        (
            Method::POST,
            format!("/orchestrators/{FOREVER}/a%3Fb"),
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "must not contain '?'",
        ),
        (
            Method::POST,
            format!("/orchestrators/{FOREVER}/a%07b"),
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "control characters",
        ),
        (Method::POST, format!("/orchestrators/{FOREVER}/a%FFb"), "{}".into(), StatusCode::NOT_FOUND, "not UTF-8"),
        (
            Method::POST,
            "/orchestrators/NoSuchFunction/id-1".into(),
            "{}".into(),
            StatusCode::NOT_FOUND,
            "no function named \\\"NoSuchFunction\\\"",
        ),
        (
            Method::POST,
            format!("/orchestrators/{FOREVER}/id-1"),
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            Method::POST,
            format!("/orchestrators/{FOREVER}/id-1"),
            "{} {}".into(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            Method::POST,
            format!("/orchestrators/{FOREVER}/id-1"),
            too_big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit is 262144 bytes",
        ),
        (
            Method::GET,
            format!("/orchestrators/{FOREVER}/id-1"),
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "allowed: POST",
        ),
        (
            Method::PUT,
            format!("/orchestrators/{FOREVER}/id-1"),
            "{}".into(),
            StatusCode::METHOD_NOT_ALLOWED,
            "allowed: POST",
        ),
        (
            Method::DELETE,
            format!("/orchestrators/{FOREVER}/id-1"),
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "allowed: POST",
        ),
        (Method::POST, format!("/orchestrators/{FOREVER}"), "{}".into(), StatusCode::NOT_FOUND, "no route"),
        (Method::POST, "/nowhere".into(), "{}".into(), StatusCode::NOT_FOUND, "no route"),
    ];
    for (method, path, body, status, message) in cases {
        let answer = call(&app, request(method.clone(), &path, body)).await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        assert!(answer.body.contains(message), "{method} {path}: {:?} lacks {message:?}", answer.body);
        assert!(answer.json()["error"].is_string(), "{method} {path}: {}", answer.body);
    }
    let mut wrong_type = request(Method::POST, &format!("/orchestrators/{FOREVER}/id-1"), "a=1");
    wrong_type
        .headers_mut()
        .insert("content-type", "application/x-www-form-urlencoded".parse().unwrap_or_else(|_| panic!()));
    let answer = call(&app, wrong_type).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", answer.body);
    let answer = call(&app, request(Method::PATCH, &format!("/orchestrators/{FOREVER}/id-1"), "{}")).await;
    assert_eq!(answer.header("allow"), Some("POST"));

    assert_eq!(env.calls.take(), Vec::<String>::new(), "bad input must not reach AWS");
    assert_eq!(env.item_count().await, 0);
    assert_eq!(env.all_executions().await, 0);
}

#[tokio::test]
async fn a_refused_start_marks_the_record_start_failed_and_the_id_starts_again_at_once() {
    let env = TestEnv::new().await;
    let app = env.app();
    // The state machine of `Missing` does not exist: Step Functions refuses the start.
    let refused = start(&app, MISSING, "order-1", "{}").await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    assert!(refused.body.contains("StateMachineDoesNotExist"), "{}", refused.body);
    // Issue 18: AWS's own text (which names the state machine, or a role) stays in the log.
    assert!(!refused.body.contains("arn:aws"), "{}", refused.body);
    let record = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.status, Status::StartFailed);
    assert!(record.expires_at.is_some() && record.lease_until.is_none());

    let answer = start(&app, FOREVER, "order-1", "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(env.executions(FOREVER).await.len(), 1);
}
