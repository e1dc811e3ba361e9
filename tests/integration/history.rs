//! Status flags and history pages (GetExecutionHistory on the emulator):
//! Durable's showInput / showHistory / showHistoryOutput, pages bounded and
//! continued by a signed token bound to the execution.

use lambda_http::http::{Method, StatusCode};
use testkit::*;

const TOKEN: &str = "x-ms-continuation-token";

/// A run of `MANY_STEPS` that has finished, its event relayed.
async fn finished_run(env: &TestEnv, id: &str) {
    let app = env.app();
    assert_eq!(start(&app, MANY_STEPS, id, r#"{"order":42}"#).await.status, StatusCode::ACCEPTED);
    let record = env.record(id).await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(env.finished(&record.execution_arn).await, "SUCCEEDED");
    deliver_event(&app.service, env.relayed_event(&record.execution_arn).await).await;
}

async fn get(env: &TestEnv, path: &str, token: Option<&str>) -> Answer {
    let mut request = request(Method::GET, path, "");
    if let Some(token) = token {
        request.headers_mut().insert(TOKEN, token.parse().unwrap_or_else(|e| panic!("{e}")));
    }
    call(&env.app(), request).await
}

#[tokio::test]
async fn history_comes_in_bounded_pages_that_a_token_continues() {
    let env = TestEnv::new().await;
    finished_run(&env, "order-1").await;
    let (mut ids, mut pages, mut token) = (Vec::new(), 0, None::<String>);
    loop {
        let page = get(&env, "/instances/order-1?showHistory=true", token.as_deref()).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let events = page.json()["historyEvents"].as_array().cloned().unwrap_or_default();
        assert!(!events.is_empty() && events.len() <= 100, "page {pages}: {} events", events.len());
        assert!(events.iter().all(|e| e.get("input").is_none() && e.get("output").is_none()), "no data by default");
        ids.extend(events.iter().filter_map(|e| e["eventId"].as_i64()));
        pages += 1;
        match page.header(TOKEN) {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "the pages never end");
    }
    assert!(pages >= 3, "{pages} pages for {} events", ids.len());
    let expected: Vec<i64> = (1..=i64::try_from(ids.len()).unwrap_or(0)).collect();
    assert_eq!(ids, expected, "every event once, in order");
    let first = get(&env, "/instances/order-1?showHistory=true&showHistoryOutput=true", None).await.json();
    assert_eq!(first["historyEvents"][0]["eventType"], "ExecutionStarted");
    assert_eq!(first["historyEvents"][0]["input"], serde_json::json!({"order": 42}));
    assert_eq!(first["input"], serde_json::json!({"order": 42}));
}

#[tokio::test]
async fn flags_and_tokens_are_checked_before_any_aws_call() {
    let env = TestEnv::new().await;
    finished_run(&env, "order-1").await;
    finished_run(&env, "order-2").await;
    let plain = get(&env, "/instances/order-1?showInput=False", None).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.json().get("input").is_none() && plain.json().get("historyEvents").is_none(), "{}", plain.body);
    let first = get(&env, "/instances/order-1?showHistory=true", None).await;
    let token = first.header(TOKEN).unwrap_or_else(|| panic!("one page only")).to_owned();
    env.calls.take();
    let mut changed = token.clone().into_bytes();
    changed[5] = if changed[5] == b'A' { b'B' } else { b'A' };
    let refusals = [
        (
            "/instances/order-1?showHistory=true",
            Some(String::from_utf8_lossy(&changed).into_owned()),
            "InvalidContinuationToken",
        ),
        ("/instances/order-1?showHistory=true", Some("garbage".to_owned()), "InvalidContinuationToken"),
        ("/instances/order-1?showHistory=yes", None, "InvalidFilter"),
        ("/instances/order-1?showHistory=true&showHistory=true", None, "InvalidFilter"),
        ("/instances/order-1?history=true", None, "InvalidFilter"),
        ("/instances/order-1", Some(token.clone()), "InvalidFilter"),
    ];
    for (path, token, error) in refusals {
        let answer = get(&env, path, token.as_deref()).await;
        assert_eq!((answer.status, answer.json()["error"].as_str()), (StatusCode::BAD_REQUEST, Some(error)), "{path}");
    }
    assert!(env.calls.take().is_empty(), "no AWS call for a refused request");
    // A genuine token of another instance's history.
    let other = get(&env, "/instances/order-2?showHistory=true", Some(&token)).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.body);
    assert!(other.body.contains("another instance"), "{}", other.body);
    // The same history's token, asked with other data: Step Functions' token needs the same arguments.
    let with_data = get(&env, "/instances/order-1?showHistory=true&showHistoryOutput=true", Some(&token)).await;
    assert_eq!(with_data.status, StatusCode::BAD_REQUEST, "{}", with_data.body);
}
