//! `POST /orchestrators/{functionName}/{instanceId}`: start unless running;
//! with `?onConflict=signal&eventName=`, signal-with-start.

use crate::domain::InstanceId;
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::request::{StartOptions, input_of};
use crate::http::response::{Links, started_response, started_response_with};
use crate::http::routes::raise_event::delivery_reason;
use crate::ports::{Engine, InstanceStore};
use crate::service::{RaiseOutcome, Signaled, StartOutcome, StartRequest, Started};
use lambda_http::{Body, Request, Response};

pub(crate) async fn start<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
    function_name: &str,
    raw_id: &str,
    links: &Links,
) -> Result<Response<Body>, Error> {
    let instance_id = InstanceId::parse(raw_id)?;
    app.config.require(function_name)?;
    let input = input_of(request)?;
    let options = StartOptions::of(request, &instance_id)?;
    start_with(app, links, &instance_id, function_name, &input, &options).await
}

/// Starts `function_name` for the instance under the request's policies, and answers.
pub(super) async fn start_with<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    links: &Links,
    instance_id: &InstanceId,
    function_name: &str,
    input: &str,
    options: &StartOptions,
) -> Result<Response<Body>, Error> {
    let function = app.config.require(function_name)?;
    let policy = options.policy(function);
    let request = StartRequest {
        instance_id,
        function_name,
        state_machine: &function.state_machine,
        input,
        policy: &policy,
        reason: options.reason.as_deref(),
        request_digest: options.request_digest.as_deref(),
        min_key_window_millis: 0,
    };
    let Some(event_name) = &options.signal else {
        let started = app.service.start(request).await?;
        return Ok(started_response(app, links, instance_id, &started));
    };
    let (started, delivery) = match app.service.signal_with_start(request, event_name).await? {
        Signaled::Started(started) => (started, RaiseOutcome::Buffered { buffered: 1 }),
        Signaled::Raised { execution_arn, outcome } => {
            (Started { execution_arn, outcome: StartOutcome::Existing }, outcome)
        }
        // The key's first request's run (202, Idempotent-Replayed), and where its event is now.
        Signaled::Replayed { execution_arn, outcome } => {
            (Started { execution_arn, outcome: StartOutcome::Replayed }, outcome)
        }
    };
    let mut event = serde_json::Map::new();
    event.insert("eventName".into(), event_name.as_str().into());
    event.insert("delivery".into(), delivery.name().into());
    if let Some(reason) = delivery_reason(delivery) {
        event.insert("reason".into(), reason.into());
    }
    Ok(started_response_with(app, links, instance_id, &started, event))
}
