//! Lists (`GET /instances`): every filter, paging across pages, tokens that
//! were changed, and bad filters refused before any AWS call.

use lambda_http::http::{Method, StatusCode};
use std::collections::BTreeSet;
use testkit::*;

/// Starts `id` on `function`; `running` delivers its RUNNING event, `ended` waits for its end and delivers that.
async fn instance(env: &TestEnv, function: &str, id: &str, relay: bool) {
    let app = env.app();
    let answer = start(&app, function, id, "{}").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    if relay {
        let arn = answer.json()["executionArn"].as_str().unwrap_or_default().to_owned();
        if function != FOREVER {
            env.finished(&arn).await;
        }
        deliver_event(&app.service, env.relayed_event(&arn).await).await;
    }
}

/// Every page of a list, following its tokens: the IDs, and how many pages.
async fn walk(env: &TestEnv, query: &str) -> (Vec<String>, usize) {
    let (listed, pages) = walk_statuses(env, query).await;
    (listed.iter().map(|status| status["instanceId"].as_str().unwrap_or_default().to_owned()).collect(), pages)
}

/// Every page of a list: the status objects, and how many pages.
async fn walk_statuses(env: &TestEnv, query: &str) -> (Vec<serde_json::Value>, usize) {
    let app = env.app();
    let (mut listed, mut pages, mut token) = (Vec::new(), 0, None::<String>);
    loop {
        let mut request = request(Method::GET, &format!("/instances?{query}"), "");
        if let Some(token) = &token {
            request.headers_mut().insert("x-ms-continuation-token", token.parse().unwrap_or_else(|e| panic!("{e}")));
        }
        let answer = call(&app, request).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        pages += 1;
        let body = answer.json();
        let page = body.as_array().unwrap_or_else(|| panic!("not an array: {body}"));
        listed.extend(page.iter().cloned());
        match answer.header("x-ms-continuation-token") {
            Some(next) => token = Some(next.to_owned()),
            None => return (listed, pages),
        }
        assert!(pages < 500, "the list does not end");
    }
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

#[tokio::test]
async fn lists_filter_by_every_parameter_and_page_across_pages() {
    let env = TestEnv::new().await;
    for id in ["run-a", "run-b", "run-c"] {
        instance(&env, FOREVER, id, true).await;
    }
    instance(&env, FOREVER, "pending-a", false).await;
    env.clock.advance(60_000);
    for id in ["done-a", "done-b"] {
        instance(&env, QUICK, id, true).await;
    }
    instance(&env, FAILS, "failed-a", true).await;

    let (all, pages) = walk(&env, "top=1").await;
    let everything = set(&["run-a", "run-b", "run-c", "pending-a", "done-a", "done-b", "failed-a"]);
    assert_eq!(all.iter().cloned().collect::<BTreeSet<_>>(), everything);
    assert_eq!(all.len(), everything.len(), "each once: {all:?}");
    assert!(pages >= 7, "one instance per page at most: {pages} pages");

    let (running, pages) = walk(&env, "runtimeStatus=Running&top=1").await;
    assert_eq!(running.iter().cloned().collect::<BTreeSet<_>>(), set(&["run-a", "run-b", "run-c"]));
    assert!(pages >= 3, "{pages}");
    let (some, _) = walk(&env, "runtimeStatus=Completed,Failed&runtimeStatus=Pending").await;
    assert_eq!(some.into_iter().collect::<BTreeSet<_>>(), set(&["done-a", "done-b", "failed-a", "pending-a"]));
    let (quick, _) = walk(&env, &format!("functionName={QUICK}")).await;
    assert_eq!(quick.into_iter().collect::<BTreeSet<_>>(), set(&["done-a", "done-b"]));
    let (prefixed, _) = walk(&env, "instanceIdPrefix=run-").await;
    assert_eq!(prefixed.into_iter().collect::<BTreeSet<_>>(), set(&["run-a", "run-b", "run-c"]));
    // The clock moved a minute between the two groups: the creation range splits them.
    let split = sfn_singleton::domain::time::rfc3339(env.record("done-a").await.map_or(0, |r| r.created_at) - 30_000);
    let (later, _) = walk(&env, &format!("createdTimeFrom={split}")).await;
    assert_eq!(later.into_iter().collect::<BTreeSet<_>>(), set(&["done-a", "done-b", "failed-a"]));
    let (earlier, _) = walk(&env, &format!("createdTimeTo={split}&runtimeStatus=Running,Pending")).await;
    assert_eq!(earlier.into_iter().collect::<BTreeSet<_>>(), set(&["run-a", "run-b", "run-c", "pending-a"]));
}

#[tokio::test]
async fn a_list_answers_the_status_objects_of_a_read() {
    let env = TestEnv::new().await;
    instance(&env, QUICK, "order-1", true).await;
    let (listed, _) = walk_statuses(&env, "runtimeStatus=Completed").await;
    let read = call(&env.app(), request(Method::GET, "/instances/order-1", "")).await.json();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let first = &listed[0];
    for field in
        ["instanceId", "name", "runtimeStatus", "status", "output", "createdTime", "executionArn", "executionName"]
    {
        assert_eq!(first[field], read[field], "{field}");
    }
    assert_eq!(first["input"], serde_json::Value::Null, "lists carry no input");
}

#[tokio::test]
async fn a_changed_or_foreign_token_is_refused_before_any_aws_call() {
    let env = TestEnv::new().await;
    for id in ["a", "b"] {
        instance(&env, FOREVER, id, false).await;
    }
    let app = env.app();
    let first = call(&app, request(Method::GET, "/instances?runtimeStatus=Pending&top=1", "")).await;
    let token = first.header("x-ms-continuation-token").unwrap_or_else(|| panic!("no token")).to_owned();
    env.calls.take();
    let (payload, tag) = token.split_once('.').unwrap_or_default();
    let last = if payload.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}.{tag}", &payload[..payload.len() - 1]);
    for (query, why) in [
        (format!("runtimeStatus=Pending&top=1&continuationToken={forged}"), "changed"),
        (format!("runtimeStatus=Pending&top=1&continuationToken={payload}.{}", "A".repeat(43)), "forged"),
        ("runtimeStatus=Pending&continuationToken=not-a-token".to_owned(), "garbage"),
        (format!("runtimeStatus=Running&top=1&continuationToken={token}"), "another query's"),
    ] {
        let answer = call(&app, request(Method::GET, &format!("/instances?{query}"), "")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{why}: {}", answer.body);
        assert_eq!(answer.json()["error"], "InvalidContinuationToken", "{why}");
    }
    assert_eq!(env.calls.take(), Vec::<String>::new(), "no AWS call");
    let next = call(
        &app,
        request(Method::GET, &format!("/instances?runtimeStatus=Pending&top=1&continuationToken={token}"), ""),
    )
    .await;
    assert_eq!(next.status, StatusCode::OK, "the genuine token still works: {}", next.body);
}

#[tokio::test]
async fn bad_filters_name_the_parameter_and_make_no_aws_call() {
    let env = TestEnv::new().await;
    let app = env.app();
    for (query, parameter) in [
        ("runtimeStatus=Done", "runtimeStatus"),
        ("runtimeStatus=running", "runtimeStatus"),
        ("createdTimeFrom=yesterday", "createdTimeFrom"),
        ("top=0", "top"),
        ("top=1001", "top"),
        ("top=ten", "top"),
        ("functionName=", "functionName"),
        ("instanceIdPrefix=", "instanceIdPrefix"),
        ("functionName=a&functionName=b", "functionName"),
        ("showInput=true", "showInput"),
        ("sort=asc", "(parameter name)"),
    ] {
        let answer = call(&app, request(Method::GET, &format!("/instances?{query}"), "")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}: {}", answer.body);
        let body = answer.json();
        assert_eq!(body["error"], "InvalidFilter", "{query}");
        assert!(body["message"].as_str().is_some_and(|m| m.starts_with(parameter)), "{query}: {body}");
    }
    let backwards = "createdTimeFrom=2026-11-26T00:00:00Z&createdTimeTo=2026-11-25T00:00:00Z";
    let empty = call(&app, request(Method::GET, &format!("/instances?{backwards}"), "")).await;
    assert_eq!((empty.status, empty.body.as_str()), (StatusCode::OK, "[]"), "an empty range is an empty list");
    assert_eq!(empty.header("x-ms-continuation-token"), None);
    for query in ["runtimeStatus=%20Pending", "top=%2B5", "createdTimeFrom=2026-11-25T14:22:02%2B%2B1:00"] {
        let answer = call(&app, request(Method::GET, &format!("/instances?{query}"), "")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}: {}", answer.body);
    }
    let post = call(&app, request(Method::POST, "/instances", "")).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(env.calls.take(), Vec::<String>::new(), "no AWS call");
    // Before 1970 alone: a range DynamoDB takes (its lower bound is the smallest time, not 0).
    let (old, _) = walk(&env, "createdTimeTo=1969-12-31T00:00:00Z").await;
    assert!(old.is_empty());
}

/// A DELETE of a list's filters; `one_page`: with a Lambda context whose deadline has passed,
/// so that each request does one page and hands back a token.
fn purge_request(query: &str, token: Option<&str>, one_page: bool) -> lambda_http::Request {
    use lambda_http::RequestExt;
    let mut request = request(Method::DELETE, &format!("/instances?{query}"), "");
    if let Some(token) = token {
        request.headers_mut().insert("x-ms-continuation-token", token.parse().unwrap_or_else(|e| panic!("{e}")));
    }
    if one_page { request.with_lambda_context(lambda_http::Context::default()) } else { request }
}

/// Runs a bulk purge to its end, request after request: instances deleted, and requests made.
async fn purge_all<S: sfn_singleton::ports::InstanceStore, E: sfn_singleton::ports::Engine>(
    app: &sfn_singleton::http::App<S, E>,
    query: &str,
) -> (u64, usize) {
    let (mut deleted, mut requests, mut token) = (0, 0, None::<String>);
    loop {
        let answer = call(app, purge_request(query, token.as_deref(), true)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        requests += 1;
        let body = answer.json();
        deleted += body["instancesDeleted"].as_u64().unwrap_or_else(|| panic!("{body}"));
        assert_eq!(body["continuationToken"].as_str(), answer.header("x-ms-continuation-token"));
        match answer.header("x-ms-continuation-token") {
            Some(next) => token = Some(next.to_owned()),
            None => return (deleted, requests),
        }
        assert!(requests < 200, "the purge does not end");
    }
}

#[tokio::test]
async fn a_bulk_purge_deletes_the_ended_instances_it_selects_page_by_page_and_nothing_else() {
    let env = TestEnv::new().await;
    for i in 0..4 {
        instance(&env, QUICK, &format!("done-{i}"), true).await;
    }
    instance(&env, FAILS, "failed-a", true).await;
    instance(&env, FOREVER, "running-a", true).await;
    let app = env.app();
    let (deleted, requests) = purge_all(&app, "runtimeStatus=Completed").await;
    assert_eq!(deleted, 4);
    assert!(requests >= 8, "one index partition per request here: {requests}");
    for id in ["failed-a", "running-a"] {
        assert!(env.record(id).await.is_some(), "{id} kept");
    }
    assert!(env.record("done-0").await.is_none());
    // Other filters narrow it; a running instance is never deleted.
    assert_eq!(purge_all(&app, "runtimeStatus=Completed,Failed,Terminated&instanceIdPrefix=running").await.0, 0);
    assert!(env.record("running-a").await.is_some());
    assert_eq!(purge_all(&app, "runtimeStatus=Failed&instanceIdPrefix=f&functionName=AlwaysFails").await.0, 1);
    assert!(env.record("failed-a").await.is_none());
    // In one request when its time allows.
    instance(&env, QUICK, "done-again", true).await;
    let whole = call(&app, purge_request("runtimeStatus=Completed", None, false)).await;
    assert_eq!((whole.status, whole.json()["instancesDeleted"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(whole.header("x-ms-continuation-token"), None);
}

#[tokio::test]
async fn a_bulk_purge_without_a_filter_or_of_running_instances_is_refused_before_any_aws_call() {
    let env = TestEnv::new().await;
    let app = env.app();
    for (query, parameter) in [
        ("", "runtimeStatus"),
        ("functionName=Quick", "runtimeStatus"),
        ("runtimeStatus=Running", "runtimeStatus"),
        ("runtimeStatus=Completed,Pending", "runtimeStatus"),
        ("runtimeStatus=Completed&top=5", "top"),
        ("createdTimeFrom=soon", "createdTimeFrom"),
    ] {
        let answer = call(&app, purge_request(query, None, false)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}: {}", answer.body);
        let body = answer.json();
        assert!(body["message"].as_str().is_some_and(|m| m.starts_with(parameter)), "{query}: {body}");
    }
    assert_eq!(env.calls.take(), Vec::<String>::new(), "no AWS call");
}

#[tokio::test]
async fn a_bulk_purge_never_deletes_an_instance_restarted_after_it_was_listed() {
    let env = TestEnv::new().await;
    instance(&env, QUICK, "order-1", true).await;
    let ended = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(ended.status, sfn_singleton::domain::Status::Succeeded);
    // A restart's claim lands between the page's Query and its deletes.
    let id = sfn_singleton::domain::InstanceId::parse("order-1").unwrap_or_else(|e| panic!("{e}"));
    let name = sfn_singleton::domain::ExecutionName::new(&id, sfn_singleton::domain::StartToken::new(1, 2));
    let restart = sfn_singleton::domain::Record::starting(&id, QUICK, env.machine(QUICK), &name, "{}", 5, 60_000);
    let app = env.app_with(ClaimsAfterList::new(env.store(), restart), env.engine());
    // The purge walks to the instance's partition, page by page; the claim follows the Query that lists it.
    let (deleted, _) = purge_all(&app, "runtimeStatus=Completed").await;
    assert_eq!(deleted, 0, "the listed run was replaced by a running one");
    let kept = env.record("order-1").await.unwrap_or_else(|| panic!("the restarted instance was deleted"));
    assert_eq!((kept.status, kept.execution_name), (sfn_singleton::domain::Status::Starting, name));
}
