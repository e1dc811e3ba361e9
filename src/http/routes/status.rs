//! `GET /instances/{id}?showInput=&showHistory=&showHistoryOutput=`: the
//! instance's status, reconciled when in doubt; with a page of its current
//! execution's history (the next page's token in `x-ms-continuation-token`).

use crate::domain::InstanceId;
use crate::domain::history::{HistoryEvent, issue_token, read_token};
use crate::domain::time::rfc3339;
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::request::{CONTINUATION_TOKEN, StatusRequest};
use crate::http::response::{json_response, json_value, status_body};
use crate::ports::{Engine, InstanceStore};
use crate::service;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

pub(crate) async fn status<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
    id: &InstanceId,
) -> Result<Response<Body>, Error> {
    let options = StatusRequest::of(request)?;
    let signer = app.token_signer();
    if let Some(token) = &options.token {
        // A forged or changed token is refused before any AWS call; whose execution it is, once the record is read.
        signer.open(token)?;
    }
    let record = app.service.status(id).await?.ok_or_else(|| service::Error::InstanceNotFound(id.to_string()))?;
    let code = if record.status.is_terminal() { StatusCode::OK } else { StatusCode::ACCEPTED };
    let mut body = status_body(&record);
    if !options.show_input
        && let Some(fields) = body.as_object_mut()
    {
        fields.remove("input");
    }
    let mut next = None;
    if options.show_history {
        let (arn, with_data) = (&record.execution_arn, options.show_history_output);
        let position = options.token.map(|token| read_token(&signer, arn, with_data, &token)).transpose()?;
        let page = app.service.history(&record, position.unwrap_or_default(), with_data).await?;
        body["historyEvents"] = page.events.iter().map(event_json).collect();
        next = page.next.map(|position| issue_token(&signer, arn, with_data, &position));
    }
    let mut response = json_response(code, &body);
    if let Some(token) = next.and_then(|token| HeaderValue::from_str(&token).ok()) {
        response.headers_mut().insert(CONTINUATION_TOKEN, token);
    }
    Ok(response)
}

/// A history event as the status shows it: what it has, nothing it has not.
fn event_json(event: &HistoryEvent) -> serde_json::Value {
    let mut shown = json!({
        "eventId": event.id,
        "eventType": event.event_type,
        "timestamp": rfc3339(event.timestamp),
    });
    let optional = [
        ("previousEventId", event.previous_id.map(|id| json!(id))),
        ("name", event.name.as_ref().map(|name| json!(name))),
        ("input", event.input.as_deref().map(|input| json_value(Some(input)))),
        ("output", event.output.as_deref().map(|output| json_value(Some(output)))),
        ("error", event.error.as_ref().map(|error| json!(error))),
        ("cause", event.cause.as_ref().map(|cause| json!(cause))),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            shown[name] = value;
        }
    }
    shown
}
