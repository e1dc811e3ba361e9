//! A local HTTP front for the http Lambda's handler: the demo's API
//! (`scripts/demo`) and the property-based API test's (`scripts/api-fuzz`).
//! Each request becomes the API Gateway HTTP API (payload 2.0) event that
//! production receives, parsed by `lambda_http` as in production, and handled
//! by the same code the Lambda runs, many at once, as API Gateway in front of
//! Lambda runs them (`cargo lambda watch` runs one invocation at a time, and
//! stops answering under a burst of a few hundred).
//! `POST /2015-03-31/functions/status_events/invocations` (Lambda's Invoke
//! path) takes an SQS batch of status events for the status Lambda's handler,
//! and `…/event_waits/invocations` one of wait messages for the event-wait
//! Lambda's, as the demo's relay sends them. Like the
//! stack's API, it matches the template's routes (on the path's encoded
//! segments) and hands over `routeKey`, `pathParameters` decoded once, and a
//! `rawPath` decoded and cut at a decoded `?`, as HTTP APIs do.
//!
//! Why not `cargo lambda watch`: its own front answers 500 before invoking the
//! function when a header value is not UTF-8, and 414 for long URLs; neither
//! is this project's code. Here header bytes are decoded as ISO-8859-1
//! (RFC 9110 treats them as opaque), so the handler sees and refuses them.
//!
//! Usage: `cargo run --example local_api -- PORT [ANSWERS]` with the http
//! Lambda's environment (`SINGLETON_TABLE_NAME`, `SINGLETON_FUNCTIONS`,
//! endpoint). ANSWERS, if given, gets one JSON line per answer: method, path,
//! status and the execution ARN a 2xx answer names, so a test can tell that
//! every write belongs to an accepted request.

use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use sfn_singleton::{aws, config::Config, events, http, startup, waits};
use std::convert::Infallible;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// API Gateway HTTP APIs take payloads up to 10 MB.
const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

type Response = hyper::Response<Full<Bytes>>;

struct Front {
    app: http::App<aws::DynamoStore, aws::StepFunctions>,
    answers: Option<Mutex<std::fs::File>>,
}

/// Where the status Lambda is invoked (Lambda's Invoke API path, as `cargo lambda watch` serves it).
const STATUS_INVOKE_PATH: &str = "/2015-03-31/functions/status_events/invocations";
/// Where the event-wait Lambda is invoked.
const WAITS_INVOKE_PATH: &str = "/2015-03-31/functions/event_waits/invocations";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    lambda_http::tracing::init_default_subscriber();
    let usage = "usage: local_api PORT [ANSWERS]";
    let port: u16 = std::env::args().nth(1).ok_or(usage)?.parse()?;
    let answers = std::env::args().nth(2).map(std::fs::File::create).transpose()?.map(Mutex::new);
    let config = Config::from_env()?;
    let app = http::App { service: startup::singleton(&config, true).await, config };
    let app = Arc::new(Front { app, answers });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("local_api listening on http://127.0.0.1:{port}");
    let next_request = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        let (app, next_request) = (app.clone(), next_request.clone());
        tokio::spawn(async move {
            let serve = service_fn(move |request| {
                let (app, id) = (app.clone(), next_request.fetch_add(1, Ordering::Relaxed));
                async move { Ok::<_, Infallible>(answer(&app, request, id).await) }
            });
            // A client that hangs up mid-request is its own problem.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), serve).await;
        });
    }
}

async fn answer(front: &Front, request: hyper::Request<Incoming>, id: u64) -> Response {
    let (method, path) = (request.method().to_string(), request.uri().path().to_owned());
    if method == "POST" && (path == STATUS_INVOKE_PATH || path == WAITS_INVOKE_PATH) {
        let waits = path == WAITS_INVOKE_PATH;
        return sqs_batch(front, request, waits).await.map(|bytes| Full::new(Bytes::from(bytes)));
    }
    let response = handle(&front.app, request, id).await;
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    let line = json!({"method": method, "path": path, "status": response.status().as_u16(),
        "executionArn": response.status().is_success().then(|| body.get("executionArn").cloned()).flatten(),
        "error": body.get("error")});
    if let Some(Ok(mut answers)) = front.answers.as_ref().map(Mutex::lock) {
        let _ = writeln!(answers, "{line}");
    }
    response.map(|bytes| Full::new(Bytes::from(bytes)))
}

/// An SQS batch through the status Lambda's handler (or, with `waits`, the
/// event-wait Lambda's); its answer (the records to retry), or a function
/// error as Lambda's Invoke API reports one.
async fn sqs_batch(front: &Front, request: hyper::Request<Incoming>, waits: bool) -> hyper::Response<Vec<u8>> {
    let Ok(body) = Limited::new(request.into_body(), MAX_PAYLOAD_BYTES).collect().await.map(|b| b.to_bytes()) else {
        return plain(413, "Request Entity Too Large");
    };
    let batch: sfn_singleton::sqs::SqsEvent = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => return plain(400, &format!("not an SQS batch: {e}")),
    };
    let service = &front.app.service;
    let handled = if waits {
        waits::handle_batch(service, batch, SQS_BUDGET).await
    } else {
        events::handle_batch(service, batch, SQS_BUDGET).await
    };
    let (body, error) = match handled {
        Ok(answer) => (serde_json::to_vec(&answer).unwrap_or_default(), None),
        Err(e) => {
            (json!({"errorType": e.name(), "errorMessage": e.to_string()}).to_string().into_bytes(), Some("Unhandled"))
        }
    };
    let mut response = hyper::Response::new(body);
    if let Some(error) = error {
        response.headers_mut().insert("x-amz-function-error", hyper::header::HeaderValue::from_static(error));
    }
    response
}

/// An SQS function's time for a batch (its 30 s, less the handler's margin).
const SQS_BUDGET: std::time::Duration = std::time::Duration::from_secs(28);

async fn handle(
    app: &http::App<aws::DynamoStore, aws::StepFunctions>,
    request: hyper::Request<Incoming>,
    id: u64,
) -> hyper::Response<Vec<u8>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_PAYLOAD_BYTES).collect().await.map(|b| b.to_bytes()) else {
        return plain(413, "Request Entity Too Large");
    };
    let event = event(&parts, &body, id);
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(e) => return plain(400, &format!("not an event lambda_http accepts: {e}")),
    };
    let (parts, body) = http::handle(app, request).await.into_parts();
    let mut response = hyper::Response::new(body.to_vec());
    *response.status_mut() = parts.status;
    *response.headers_mut() = parts.headers;
    response
}

/// The API Gateway HTTP API event (payload format 2.0) for a request.
fn event(parts: &hyper::http::request::Parts, body: &[u8], id: u64) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<String> =
            parts.headers.get_all(name).iter().map(|v| v.as_bytes().iter().map(|&b| char::from(b)).collect()).collect();
        headers.insert(name.as_str().to_owned(), json!(values.join(",")));
    }
    let host = headers.get("host").and_then(|h| h.as_str()).unwrap_or("localhost").to_owned();
    let encoded = parts.uri.path();
    let decode = |text: &str| percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned();
    let decoded = decode(encoded);
    let path = decoded.split('?').next().unwrap_or_default();
    let (route_key, parameters) = match route(encoded) {
        Some((template, parameters)) => {
            let parameters: serde_json::Map<_, _> =
                parameters.into_iter().map(|(name, value)| (name.to_owned(), json!(decode(value)))).collect();
            (format!("ANY {template}"), Some(parameters))
        }
        None => ("$default".to_owned(), None),
    };
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "pathParameters": parameters,
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": format!("local-{id}"),
            "routeKey": route_key,
            "stage": "$default",
            "time": "25/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

/// The template's routes (`ANY` each), as API Gateway matches them.
const ROUTES: [&str; 6] = [
    "/orchestrators/{functionName}/{instanceId}",
    "/instances",
    "/instances/{instanceId}",
    "/instances/{instanceId}/terminate",
    "/instances/{instanceId}/restart",
    "/instances/{instanceId}/rewind",
];

/// The route an encoded path matches, and its parameters (still encoded).
fn route(encoded: &str) -> Option<(&'static str, Vec<(&'static str, &str)>)> {
    let segments: Vec<&str> = encoded.trim_start_matches('/').split('/').collect();
    ROUTES.into_iter().find_map(|template| {
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            return None;
        }
        let mut parameters = Vec::new();
        for (part, segment) in parts.iter().zip(&segments) {
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if !segment.is_empty() => parameters.push((name, *segment)),
                Some(_) => return None,
                None if part == segment => {}
                None => return None,
            }
        }
        Some((template, parameters))
    })
}

fn plain(status: u16, text: &str) -> hyper::Response<Vec<u8>> {
    let mut response = hyper::Response::new(text.as_bytes().to_vec());
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    response
}
