//! Requests to the HTTP API's handler, and its answers read back.

use lambda_http::http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request};
use sfn_singleton::http::App;
use sfn_singleton::ports::{Engine, InstanceStore};

/// An HTTP answer, read back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A 503 StoreUnavailable with `Retry-After`: the honest answer when the emulator's
    /// DynamoDB does not answer, which a storm on a loaded machine can meet. Storms accept
    /// a few ([`assert_few_unavailable`]) next to their expected answers, and still check what ran.
    pub fn is_store_unavailable(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE
            && serde_json::from_str::<serde_json::Value>(&self.body)
                .is_ok_and(|body| body["error"] == "StoreUnavailable")
            && self.header("retry-after").is_some()
    }
}

/// At most one answer in twenty of a storm's `total` was a 503 StoreUnavailable: an
/// emulator slow under load, not a store that fails whenever requests contend.
pub fn assert_few_unavailable(unavailable: usize, total: usize) {
    assert!(unavailable * 20 <= total, "{unavailable} of {total} answers were 503 StoreUnavailable");
}

pub fn request(method: Method, path: &str, body: impl Into<Body>) -> Request {
    lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://api.example.com{path}"))
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn call<S: InstanceStore, E: Engine>(app: &App<S, E>, request: Request) -> Answer {
    let response = sfn_singleton::http::handle(app, request).await;
    let (parts, body) = response.into_parts();
    Answer { status: parts.status, headers: parts.headers, body: String::from_utf8_lossy(body.as_ref()).into_owned() }
}

pub async fn start<S: InstanceStore, E: Engine>(app: &App<S, E>, function: &str, id: &str, body: &str) -> Answer {
    call(app, request(Method::POST, &format!("/orchestrators/{function}/{id}"), body.to_owned())).await
}
