//! `POST /instances/{id}/raiseEvent/{eventName}`: the JSON body as an event
//! for the instance's live run (Durable's `raiseEvent`).

use crate::domain::InstanceId;
use crate::domain::mailbox::EventName;
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::request::{idempotency_key_of, input_of};
use crate::http::response::{IDEMPOTENT_REPLAYED, json_response};
use crate::ports::{Engine, InstanceStore};
use crate::service::{RaiseOutcome, RaiseRequest};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

pub(crate) async fn raise_event<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
    instance_id: &InstanceId,
    name: &str,
) -> Result<Response<Body>, Error> {
    let name = EventName::parse(name)?;
    let body = input_of(request)?;
    let key = idempotency_key_of(request, instance_id)?;
    let raise = RaiseRequest { instance_id, name: &name, body: &body, key: key.as_ref() };
    let raised = app.service.raise_event(raise).await?;
    let delivery = raised.outcome.name();
    tracing::info!(execution_arn = %raised.execution_arn, event_name = name.as_str(), delivery, "event raised");
    let mut answer = json!({
        "instanceId": instance_id.as_str(),
        "eventName": name.as_str(),
        "executionArn": raised.execution_arn.as_str(),
        "delivery": delivery,
    });
    if let RaiseOutcome::Buffered { buffered } = raised.outcome {
        answer["bufferedEvents"] = json!(buffered);
    }
    if let Some(reason) = delivery_reason(raised.outcome) {
        answer["reason"] = json!(reason);
    }
    let mut response = json_response(StatusCode::ACCEPTED, &answer);
    if raised.replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// What an answer says of an event that may not reach a wait.
pub(crate) fn delivery_reason(outcome: RaiseOutcome) -> Option<&'static str> {
    match outcome {
        RaiseOutcome::WaitClosed => Some(
            "the wait it went to was closed when it was sent: it had timed out (the event is dropped), \
             or a replay of the same delivery got there first",
        ),
        RaiseOutcome::Ended => {
            Some("it was raised into the run, which has ended since: a wait took it, or it was dropped with the run")
        }
        RaiseOutcome::Delivered | RaiseOutcome::Buffered { .. } => None,
    }
}
