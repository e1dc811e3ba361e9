//! Events into live runs, end to end on the emulator: the example approval
//! flow (infra/state-machines/Approval.asl.json) runs on moto, its wait task
//! sends its message to moto's SQS, the event-wait Lambda's handler takes it
//! as the event source mapping hands it over, and the event is raised over
//! the HTTP API.

use lambda_http::http::{Method, StatusCode};
use sfn_singleton::waits;
use testkit::*;

const BUDGET: std::time::Duration = std::time::Duration::from_secs(28);

fn raise(id: &str, name: &str, body: &str) -> lambda_http::Request {
    request(Method::POST, &format!("/instances/{id}/raiseEvent/{name}"), body.to_owned())
}

/// Starts an Approval instance; its execution ARN once its wait message is in the queue.
async fn approval(env: &TestEnv, queue: &Queue, id: &str) -> (String, Message) {
    let started = start(&env.app(), APPROVAL, id, r#"{"order": 7}"#).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let messages = queue.receive(1, 10).await;
    assert_eq!(messages.len(), 1, "the wait task sent one message: {messages:?}");
    let execution_arn = started.json()["executionArn"].as_str().unwrap_or_default().to_owned();
    (execution_arn, messages[0].clone())
}

/// The wait messages through the event-wait Lambda's handler: none reported failed.
async fn take_waits(env: &TestEnv, messages: &[Message]) {
    let answer = waits::handle_batch(&env.app().service, sqs_event(messages), BUDGET).await;
    let answer = answer.unwrap_or_else(|e| panic!("the batch failed: {e}"));
    assert!(answer.batch_item_failures.is_empty(), "reported failed: {answer:?}");
}

async fn output(env: &TestEnv, execution_arn: &str) -> serde_json::Value {
    let d = env.sfn.describe_execution().execution_arn(execution_arn).send().await;
    let output = d.unwrap_or_else(|e| panic!("describe: {e:?}")).output().unwrap_or("null").to_owned();
    serde_json::from_str(&output).unwrap_or_else(|e| panic!("{e}: {output}"))
}

#[tokio::test]
async fn an_approval_waits_for_its_event_and_completes_with_its_body() {
    let env = TestEnv::new().await;
    let queue = env.event_waits().await;
    let (execution_arn, message) = approval(&env, &queue, "order-7").await;
    // The message carries the run, the token and the name, as the task's Parameters build it
    let body: serde_json::Value = serde_json::from_str(&message.body).unwrap_or_default();
    assert_eq!(
        (body["executionArn"].as_str(), body["eventName"].as_str()),
        (Some(execution_arn.as_str()), Some("approval"))
    );
    take_waits(&env, std::slice::from_ref(&message)).await;
    assert_eq!(env.record("order-7").await.map(|r| r.mailbox.waits.len()), Some(1), "the wait is registered");
    assert_eq!(env.execution_status(&execution_arn).await, "RUNNING", "it waits");

    let keyed = |body: &str| {
        let mut request = raise("order-7", "approval", body);
        request.headers_mut().insert("idempotency-key", lambda_http::http::HeaderValue::from_static("approve-7"));
        request
    };
    let raised = call(&env.app(), keyed(r#"{"approved": true, "by": "ana"}"#)).await;
    assert_eq!(raised.status, StatusCode::ACCEPTED, "{}", raised.body);
    assert_eq!(raised.json()["delivery"], "delivered");
    assert_eq!(raised.json()["executionArn"].as_str(), Some(execution_arn.as_str()));
    assert_eq!(env.finished(&execution_arn).await, "SUCCEEDED");
    assert_eq!(output(&env, &execution_arn).await["approval"], serde_json::json!({"approved": true, "by": "ana"}));

    // A client's retry with its key is the same raise: answered again, not raised again
    let retried = call(&env.app(), keyed(r#"{"approved": true, "by": "ana"}"#)).await;
    assert_eq!((retried.status, retried.header("idempotent-replayed")), (StatusCode::ACCEPTED, Some("true")));
    assert_eq!(env.record("order-7").await.map(|r| r.mailbox.events.len()), Some(1), "one event held");
    // The run's end drops its mailbox; a raise after it is 410
    deliver_event(&env.app().service, env.relayed_event(&execution_arn).await).await;
    let record = env.record("order-7").await.unwrap_or_else(|| panic!("no record"));
    assert!(record.mailbox.events.is_empty() && record.mailbox.waits.is_empty(), "{:?}", record.mailbox);
    let late = call(&env.app(), raise("order-7", "approval", r#"{"approved": true}"#)).await;
    assert_eq!(late.status, StatusCode::GONE, "{}", late.body);
}

#[tokio::test]
async fn an_event_raised_before_the_wait_is_buffered_and_the_wait_takes_it_once() {
    let env = TestEnv::new().await;
    let queue = env.event_waits().await;
    let (execution_arn, message) = approval(&env, &queue, "order-8").await;
    // Raised before the wait message is taken: buffered
    let raised = call(&env.app(), raise("order-8", "approval", r#"{"approved": false}"#)).await;
    assert_eq!(raised.status, StatusCode::ACCEPTED, "{}", raised.body);
    assert_eq!(
        (raised.json()["delivery"].as_str(), raised.json()["bufferedEvents"].as_u64()),
        (Some("buffered"), Some(1))
    );
    assert_eq!(env.execution_status(&execution_arn).await, "RUNNING");
    // The wait takes it: one write and one SendTaskSuccess
    env.calls.take();
    take_waits(&env, std::slice::from_ref(&message)).await;
    assert_eq!(env.calls.take(), ["UpdateItem", "SendTaskSuccess"]);
    assert_eq!(env.finished(&execution_arn).await, "FAILED", "the approval said no: the example's Rejected state");
    // SQS delivers the wait message again: it finds its own entry, sends the same pair (taken once), acknowledged
    let again = Message { receive_count: "2".into(), ..message };
    let handled = waits::handle(&env.app().service, serde_json::from_str(&again.body).unwrap_or_default(), None).await;
    assert!(handled.is_ok(), "{handled:?}");
    let record = env.record("order-8").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!((record.mailbox.events.len(), record.mailbox.waits.len()), (1, 1), "nothing added twice");
}

#[tokio::test]
async fn a_wait_that_timed_out_takes_no_event_and_the_next_wait_takes_it() {
    // Given a run whose first wait (1 s, its message says) timed out, and whose second waits
    let env = TestEnv::new().await;
    let queue = env.event_waits().await;
    let started = start(&env.app(), REMINDER, "remind-1", "{}").await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let execution_arn = started.json()["executionArn"].as_str().unwrap_or_default().to_owned();
    // (Under load both messages may come in one receive: told apart by their timeout.)
    let timeout_of =
        |m: &Message| serde_json::from_str::<serde_json::Value>(&m.body).unwrap_or_default()["timeoutSeconds"].as_u64();
    let mut messages = Vec::new();
    for _ in 0..3 {
        if messages.len() < 2 {
            messages.extend(queue.receive(1, 15).await);
        }
    }
    let (first, second): (Vec<Message>, Vec<Message>) = messages.into_iter().partition(|m| timeout_of(m) == Some(1));
    assert_eq!((first.len(), second.len()), (1, 1), "the first wait timed out and the second sent its message");
    take_waits(&env, &first).await;
    // When an event is raised before the second wait is registered
    let raised = call(&env.app(), raise("remind-1", "approval", r#"{"approved": true}"#)).await;
    assert_eq!(raised.status, StatusCode::ACCEPTED, "{}", raised.body);
    // Then it is buffered (not sent to the timed-out task and dropped), and the second wait takes it
    assert_eq!(raised.json()["delivery"], "buffered", "{}", raised.body);
    take_waits(&env, &second).await;
    assert_eq!(env.finished(&execution_arn).await, "SUCCEEDED");
    assert_eq!(output(&env, &execution_arn).await["approval"], serde_json::json!({"approved": true}));
}

/// EventBridge's scheduled event, as the sweep's `rate(1 minute)` rule sends it.
fn scheduled_sweep() -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-26T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/sfn-singleton-EventWaitsFunctionSweep"],
        "detail": {}
    })
}

#[tokio::test]
async fn an_event_whose_delivery_failed_is_sent_by_the_scheduled_sweep_without_a_later_write() {
    // Given a waiting approval, and Step Functions failing every SendTaskSuccess of the raise
    let env = TestEnv::new().await;
    let queue = env.event_waits().await;
    let (execution_arn, message) = approval(&env, &queue, "order-9").await;
    take_waits(&env, std::slice::from_ref(&message)).await;
    env.faults.inject("SendTaskSuccess", Fault::ServerError, 3);
    let raised = call(&env.app(), raise("order-9", "approval", r#"{"approved": true}"#)).await;
    assert_eq!(raised.status, StatusCode::SERVICE_UNAVAILABLE, "{}", raised.body);
    assert_eq!(env.faults.pending(), 0);
    assert_eq!(env.execution_status(&execution_arn).await, "RUNNING", "not delivered");
    // When the scheduled sweep runs before the pair is old enough, it leaves it to its deliverer
    let early = waits::handle_invocation(&env.app().service, scheduled_sweep(), BUDGET).await;
    assert_eq!(early.ok(), Some(serde_json::json!({"due": 0, "swept": 0, "failed": 0})));
    // Then, once it is (and with no later raise or wait), the sweep sends it
    env.clock.advance(sfn_singleton::domain::mailbox::SWEEP_AFTER_MILLIS);
    let swept = waits::handle_invocation(&env.app().service, scheduled_sweep(), BUDGET).await;
    assert_eq!(swept.ok(), Some(serde_json::json!({"due": 1, "swept": 1, "failed": 0})));
    assert_eq!(env.finished(&execution_arn).await, "SUCCEEDED");
    assert_eq!(output(&env, &execution_arn).await["approval"], serde_json::json!({"approved": true}));
    let record = env.record("order-9").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!((record.mailbox.events.len(), record.mailbox.sweep_at), (0, None), "swept, and due no more");
    // An invocation that is neither a batch nor the schedule is refused, naming why
    let other = waits::handle_invocation(&env.app().service, serde_json::json!({"detail-type": "Other"}), BUDGET).await;
    assert!(other.is_err_and(|e| e.name() == "InvalidInvocation"));
}

#[tokio::test]
async fn a_wait_message_that_names_no_wait_fails_its_task_and_is_acknowledged() {
    let env = TestEnv::new().await;
    let queue = env.event_waits().await;
    let (execution_arn, message) = approval(&env, &queue, "order-9").await;
    let mut body: serde_json::Value = serde_json::from_str(&message.body).unwrap_or_default();
    body["eventName"] = "not a name!".into();
    take_waits(&env, &[Message { body: body.to_string(), ..message }]).await;
    assert_eq!(env.finished(&execution_arn).await, "FAILED");
    let d = env.sfn.describe_execution().execution_arn(&execution_arn).send().await;
    assert_eq!(d.unwrap_or_else(|e| panic!("{e:?}")).error(), Some("SfnSingleton.InvalidWait"));
    assert_eq!(env.record("order-9").await.map(|r| r.mailbox.waits.len()), Some(0), "nothing registered");
    // Without even a token there is nothing to fail: acknowledged, nothing called
    env.calls.take();
    let nothing = Message { body: r#"{"eventName": "approval"}"#.into(), ..Message::default() };
    take_waits(&env, &[nothing]).await;
    assert!(env.calls.take().is_empty());
}

#[tokio::test]
async fn a_raise_that_cannot_be_delivered_is_refused_and_changes_nothing() {
    let env = TestEnv::new().await;
    let app = env.app();
    assert_eq!(start(&app, FOREVER, "order-10", "{}").await.status, StatusCode::ACCEPTED);
    let before = env.record("order-10").await;
    let cases = [
        ("order-10", "not%20a%20name", "{}", StatusCode::BAD_REQUEST, "InvalidEventName"),
        ("order-10", &"n".repeat(65), "{}", StatusCode::BAD_REQUEST, "InvalidEventName"),
        ("order-10", "approval", "{not json", StatusCode::BAD_REQUEST, "InvalidJson"),
        (
            "order-10",
            "approval",
            &format!(r#"{{"pad":"{}"}}"#, "x".repeat(16 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "InvalidEvent",
        ),
        ("unknown-order", "approval", "{}", StatusCode::NOT_FOUND, "InstanceNotFound"),
    ];
    for (id, name, body, status, error) in cases {
        let answer = call(&app, raise(id, name, body)).await;
        assert_eq!(
            (answer.status, answer.json()["error"].as_str()),
            (status, Some(error)),
            "{id}/{name}: {}",
            answer.body
        );
    }
    let get = call(&app, request(Method::GET, "/instances/order-10/raiseEvent/approval", "")).await;
    assert_eq!((get.status, get.header("allow")), (StatusCode::METHOD_NOT_ALLOWED, Some("POST")));
    assert_eq!(env.record("order-10").await, before, "no refused raise changed the record");
    assert_eq!(env.record("unknown-order").await, None, "nor created one");
}

fn signal(id: &str, body: &str) -> lambda_http::Request {
    request(
        Method::POST,
        &format!("/orchestrators/{APPROVAL}/{id}?onConflict=signal&eventName=approval"),
        body.to_owned(),
    )
}

#[tokio::test]
async fn signal_with_start_starts_a_run_holding_the_event_or_raises_into_the_live_one() {
    let env = TestEnv::new().await;
    let queue = env.event_waits().await;
    // Nothing runs: 202, a new run whose first wait takes the event (the body is its input too)
    let started = call(&env.app(), signal("order-11", r#"{"approved": true}"#)).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let body = started.json();
    assert_eq!((body["startedByThisRequest"].as_bool(), body["delivery"].as_str()), (Some(true), Some("buffered")));
    let execution_arn = body["executionArn"].as_str().unwrap_or_default().to_owned();
    take_waits(&env, &queue.receive(1, 10).await).await;
    assert_eq!(env.finished(&execution_arn).await, "SUCCEEDED");
    assert_eq!(output(&env, &execution_arn).await["approval"], serde_json::json!({"approved": true}));

    // A run waits: 200, raised into it, nothing started
    let (waiting, message) = approval(&env, &queue, "order-12").await;
    take_waits(&env, &[message]).await;
    let raised = call(&env.app(), signal("order-12", r#"{"approved": false}"#)).await;
    assert_eq!(raised.status, StatusCode::OK, "{}", raised.body);
    let body = raised.json();
    assert_eq!((body["startedByThisRequest"].as_bool(), body["delivery"].as_str()), (Some(false), Some("delivered")));
    assert_eq!(body["executionArn"].as_str(), Some(waiting.as_str()));
    assert_eq!(env.finished(&waiting).await, "FAILED", "the approval said no");
    assert_eq!(env.executions(APPROVAL).await.len(), 2, "one run per instance");

    // With an Idempotency-Key: the retry is the same signal, answered again, raised once
    let keyed = || {
        let mut request = signal("order-14", r#"{"approved": true}"#);
        request.headers_mut().insert("idempotency-key", lambda_http::http::HeaderValue::from_static("s-14"));
        request
    };
    let first = call(&env.app(), keyed()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let retried = call(&env.app(), keyed()).await;
    assert_eq!((retried.status, retried.header("idempotent-replayed")), (StatusCode::ACCEPTED, Some("true")));
    assert_eq!(retried.json()["executionArn"], first.json()["executionArn"]);
    assert_eq!(env.record("order-14").await.map(|r| r.mailbox.events.len()), Some(1));
    assert_eq!(env.executions(APPROVAL).await.len(), 3);
}

#[tokio::test]
async fn a_signal_with_start_it_cannot_do_is_refused_before_any_write() {
    let env = TestEnv::new().await;
    let app = env.app();
    let path = |query: &str| format!("/orchestrators/{APPROVAL}/order-13?{query}");
    let cases = [
        (request(Method::POST, &path("onConflict=signal"), "{}"), "SignalWithoutEventName"),
        (request(Method::POST, &path("onConflict=signal&eventName=no%20spaces"), "{}"), "InvalidEventName"),
        (request(Method::POST, &path("onConflict=sgnal&eventName=approval"), "{}"), "InvalidPolicy"),
        (request(Method::POST, "/instances/order-13/restart?onConflict=signal&eventName=approval", ""), "Unsupported"),
    ];
    for (request, error) in cases {
        let answer = call(&app, request).await;
        assert_eq!(
            (answer.status, answer.json()["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(error)),
            "{}",
            answer.body
        );
    }
    assert_eq!((env.record("order-13").await, env.executions(APPROVAL).await.len()), (None, 0));
}
