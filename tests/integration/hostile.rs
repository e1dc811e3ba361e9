//! A corpus of hostile instance IDs and bodies through the handler: no 5xx,
//! every refusal a 4xx with a JSON error, and nothing written for any of them.

use lambda_http::http::{Method, StatusCode};
use std::sync::{Arc, Mutex};
use testkit::*;

/// (path segment as sent, whether it is a valid instance ID)
fn ids() -> Vec<(String, bool)> {
    let mut ids: Vec<(String, bool)> = [
        "%2F", "%5C", "%23", "%3F", "a%2Fb", "..", ".", "%2E", "%2E%2E", "%00", "%01", "%1F", "%7F", "%C2%80",
        "%C2%9F", "a%0Ab", "",
    ]
    .into_iter()
    .map(|id| (id.to_owned(), false))
    .collect();
    ids.push(("x".repeat(257), false));
    ids.push(("%C3%A9".repeat(257), false));
    ids.push(("%FF%FE".to_owned(), false));
    // Valid, however odd: Durable's rules allow them.
    for valid in ["x".repeat(255), "x".repeat(256), "%C3%A9".repeat(256)] {
        ids.push((valid, true));
    }
    for valid in ["...", "%2E%2Ey", "%252F", "%20", "%F0%9F%8E%89", "%D7%A9%D7%9C%D7%95%D7%9D", "e%CC%81", "a:b", "%25"]
    {
        ids.push((valid.to_owned(), true));
    }
    ids
}

#[tokio::test]
async fn hostile_ids_and_bodies_get_4xx_and_write_nothing() {
    let env = TestEnv::new().await;
    let app = env.app();
    let mut accepted = 0;
    for (id, valid) in ids() {
        let answer = call(&app, request(Method::POST, &format!("/orchestrators/{QUICK}/{id}"), "{}")).await;
        if valid {
            assert_eq!(answer.status, StatusCode::ACCEPTED, "{id:?}: {}", answer.body);
            accepted += 1;
        } else {
            assert!(answer.status.is_client_error(), "{id:?}: {} {}", answer.status, answer.body);
            assert!(answer.json()["error"].is_string(), "{id:?}: {}", answer.body);
        }
    }

    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let exactly_the_limit = format!("\"{}\"", "x".repeat(256 * 1024 - 2));
    let bodies: Vec<(Vec<u8>, Option<&str>, StatusCode)> = vec![
        // Valid JSON, however deep: validated without recursion, so no stack to blow.
        (deep.into_bytes(), None, StatusCode::ACCEPTED),
        (vec![0xff, 0xfe, b'{', b'}'], None, StatusCode::BAD_REQUEST),
        (b"\xEF\xBB\xBF{}".to_vec(), None, StatusCode::BAD_REQUEST),
        (b"{\"a\":".to_vec(), None, StatusCode::BAD_REQUEST),
        (b"NaN".to_vec(), None, StatusCode::BAD_REQUEST),
        (format!("\"{}\"", "x".repeat(256 * 1024)).into_bytes(), None, StatusCode::PAYLOAD_TOO_LARGE),
        (b"{}".to_vec(), Some("text/plain"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (b"<a/>".to_vec(), Some("application/xml"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (b"--x\r\n\r\n--x--".to_vec(), Some("multipart/form-data; boundary=x"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (exactly_the_limit.into_bytes(), None, StatusCode::ACCEPTED),
        (b"{}".to_vec(), Some("application/problem+json"), StatusCode::ACCEPTED),
    ];
    for (i, (body, content_type, expected)) in bodies.into_iter().enumerate() {
        let mut hostile = request(Method::POST, &format!("/orchestrators/{QUICK}/body-{i}"), body);
        if let Some(content_type) = content_type {
            hostile.headers_mut().insert("content-type", content_type.parse().unwrap_or_else(|_| panic!()));
        }
        let answer = call(&app, hostile).await;
        assert_eq!(answer.status, expected, "body {i}: {}", answer.body.chars().take(200).collect::<String>());
        accepted += usize::from(expected == StatusCode::ACCEPTED);
    }
    // Only the accepted requests wrote anything: one item and one execution each.
    assert_eq!(env.item_count().await as usize, accepted);
    assert_eq!(env.executions(QUICK).await.len(), accepted);
}

/// Log lines, captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The Lambdas' subscriber (lambda_runtime's, JSON, INFO), writing to memory:
/// global for the test binary, since a scoped one misses events when other
/// tests' threads register callsites first.
fn captured_logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = lambda_http::tracing::subscriber::fmt()
            .json()
            .with_target(false)
            .with_max_level(lambda_http::tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        lambda_http::tracing::subscriber::util::SubscriberInitExt::init(subscriber);
        captured
    })
}

#[tokio::test]
async fn logs_name_the_instance_and_execution_never_inputs_outputs_or_keys() {
    let env = TestEnv::new().await;
    let captured = captured_logs();
    let app = env.app();
    let journey = async {
        let mut keyed =
            request(Method::POST, &format!("/orchestrators/{FOREVER}/logged-7"), r#"{"card":"SECRET-INPUT"}"#);
        keyed.headers_mut().insert("idempotency-key", lambda_http::http::HeaderValue::from_static("SECRET-KEY"));
        assert_eq!(call(&app, keyed).await.status, StatusCode::ACCEPTED);
        let record = env.record("logged-7").await.unwrap_or_else(|| panic!("no record"));
        let mut event = event_fixture("succeeded", &record);
        event["detail"]["input"] = serde_json::json!(r#"{"card":"SECRET-INPUT"}"#);
        event["detail"]["output"] = serde_json::json!(r#"{"token":"SECRET-OUTPUT"}"#);
        deliver_event(&app.service, event).await;
        let status = call(&app, request(Method::GET, "/instances/logged-7", "")).await;
        assert!(status.body.contains("SECRET-OUTPUT"), "the status answer carries the output: {}", status.body);
        let refused = start(&app, FOREVER, "bad%01id", r#"{"card":"SECRET-INPUT"}"#).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        record
    };
    let record = journey.await;
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    for line in logs.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    assert!(logs.contains(r#""instance_id":"logged-7""#), "{logs}");
    assert!(logs.contains(record.execution_arn.as_str()), "{logs}");
    for secret in ["SECRET-INPUT", "SECRET-OUTPUT", "SECRET-KEY"] {
        assert!(!logs.contains(secret), "{secret} logged: {logs}");
    }
}

/// Issue 18: `lambda_runtime` reports a handler's error to the Runtime API
/// only, so the scheduled Lambda's failures never reached CloudWatch Logs.
/// Each is now logged, at error level, with its error.
#[tokio::test]
async fn scheduled_failures_are_logged_with_their_error() {
    let env = TestEnv::new().await;
    let captured = captured_logs();
    let app = env.app();
    let cases = [
        (r#"{"functionName": "Nope", "instanceId": "sched-log-1"}"#.to_owned(), "no function named \\\"Nope\\\""),
        (r#"{"instanceId": "sched-log-2"}"#.to_owned(), "missing field `functionName`"),
        (format!(r#"{{"functionName": "{MISSING}", "instanceId": "sched-log-3"}}"#), "StateMachineDoesNotExist"),
    ];
    for (payload, _) in &cases {
        let failed = sfn_singleton::schedule::handle(&app.service, &app.config, payload).await;
        assert!(failed.is_err(), "{payload}: {failed:?}");
    }
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    for (payload, error) in cases {
        let logged = logs.lines().any(|line| line.contains(r#""level":"ERROR""#) && line.contains(error));
        assert!(logged, "{payload}: no error log with {error:?} in {logs}");
    }
}
