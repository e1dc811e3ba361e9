//! What answers carry: Durable's status and check-status payloads, and the
//! links to an instance's endpoints.

use super::app::App;
use crate::domain::listing::RuntimeStatus;
use crate::domain::{ExecutionArn, InstanceId, Record, StoredInput, time::rfc3339};
use crate::service::{StartOutcome, Started};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

/// Unreserved characters stay; everything else in an ID is encoded in links.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Marks an answer replayed for its `Idempotency-Key`.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The answer to a start: Durable's check-status payload.
pub(super) fn started_response<S, E>(
    app: &App<S, E>,
    links: &Links,
    instance_id: &InstanceId,
    started: &Started,
) -> Response<Body> {
    started_response_with(app, links, instance_id, started, serde_json::Map::new())
}

/// The answer to a start, with `extra` fields in its payload (a signal-with-start's event).
pub(super) fn started_response_with<S, E>(
    app: &App<S, E>,
    links: &Links,
    instance_id: &InstanceId,
    started: &Started,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Response<Body> {
    tracing::info!(execution_arn = %started.execution_arn, outcome = ?started.outcome, "start answered");
    let mut body = links.check_status(instance_id, &started.execution_arn);
    if let Some(fields) = body.as_object_mut() {
        fields.extend(extra);
    }
    body["startedByThisRequest"] = json!(started.outcome != StartOutcome::Existing);
    if let StartOutcome::Replaced { terminated } = &started.outcome {
        body["terminatedExecutionArn"] = json!(terminated);
    }
    let code = if started.outcome == StartOutcome::Existing { StatusCode::OK } else { StatusCode::ACCEPTED };
    let mut response = check_status_response(app, links, instance_id, code, &body);
    if started.outcome == StartOutcome::Replayed {
        // The answer of the key's first request, replayed (Stripe's name for the mark).
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// The answer to a rewind: 202 with the check-status payload of the execution it redrives.
pub(super) fn rewound_response<S, E>(
    app: &App<S, E>,
    links: &Links,
    instance_id: &InstanceId,
    rewinding: &Record,
) -> Response<Body> {
    let body = links.check_status(instance_id, &rewinding.execution_arn);
    check_status_response(app, links, instance_id, StatusCode::ACCEPTED, &body)
}

/// A check-status payload, with the status URL as `Location` and when to poll it.
fn check_status_response<S, E>(
    app: &App<S, E>,
    links: &Links,
    instance_id: &InstanceId,
    code: StatusCode,
    body: &serde_json::Value,
) -> Response<Body> {
    let mut response = json_response(code, body);
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&links.status(instance_id)) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from(app.config.retry_after_secs));
    response
}

/// Stored JSON text as JSON, or as a string if it is not JSON.
pub(super) fn json_value(text: Option<&str>) -> serde_json::Value {
    text.map_or(serde_json::Value::Null, |text| {
        serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
    })
}

pub(super) fn status_body(record: &Record) -> serde_json::Value {
    let input = match &record.input {
        Some(StoredInput::Inline(text)) => json_value(Some(text)),
        Some(StoredInput::Digest { sha256, bytes }) => json!({ "truncated": true, "sha256": sha256, "bytes": bytes }),
        None => serde_json::Value::Null,
    };
    json!({
        "instanceId": record.instance_id,
        "name": record.function_name,
        "runtimeStatus": RuntimeStatus::of(record.status).as_str(),
        "status": record.status.as_str(),
        "input": input,
        "output": json_value(record.output.as_deref()),
        "error": record.error,
        "cause": record.cause,
        "createdTime": rfc3339(record.created_at),
        "lastUpdatedTime": rfc3339(record.updated_at),
        "executionArn": record.execution_arn,
        "executionName": record.execution_name.as_str(),
    })
}

/// URLs of an instance's endpoints, from the configured base or the request's host and stage.
pub(super) struct Links {
    base: String,
}

impl Links {
    pub(super) fn new<S, E>(app: &App<S, E>, request: &Request, stage: Option<&str>) -> Self {
        let base = app.config.public_base_url.clone().unwrap_or_else(|| {
            let uri = request.uri();
            let origin = match (uri.scheme_str(), uri.authority()) {
                (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
                _ => String::new(),
            };
            let stage = stage.map(|stage| format!("/{stage}")).unwrap_or_default();
            format!("{origin}{stage}")
        });
        Self { base }
    }

    pub(super) fn status(&self, id: &InstanceId) -> String {
        format!("{}/instances/{}", self.base, utf8_percent_encode(id.as_str(), PATH_SEGMENT))
    }

    pub(super) fn check_status(&self, id: &InstanceId, execution_arn: &ExecutionArn) -> serde_json::Value {
        let status = self.status(id);
        json!({
            "id": id.as_str(),
            "statusQueryGetUri": status,
            "terminatePostUri": format!("{status}/terminate?reason={{text}}"),
            "purgeHistoryDeleteUri": status,
            "restartPostUri": format!("{status}/restart"),
            "rewindPostUri": format!("{status}/rewind?reason={{text}}"),
            "sendEventPostUri": format!("{status}/raiseEvent/{{eventName}}"),
            "executionArn": execution_arn,
        })
    }
}

pub(super) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
