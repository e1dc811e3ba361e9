//! `POST /orchestrators/{functionName}/{instanceId}`: start unless running.

use crate::domain::InstanceId;
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::request::{StartOptions, input_of};
use crate::http::response::{Links, started_response};
use crate::ports::{Engine, InstanceStore};
use crate::service::StartRequest;
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
    let started = app
        .service
        .start(StartRequest {
            instance_id,
            function_name,
            state_machine: &function.state_machine,
            input,
            policy: &policy,
            reason: options.reason.as_deref(),
            request_digest: options.request_digest.as_deref(),
            min_key_window_millis: 0,
        })
        .await?;
    Ok(started_response(app, links, instance_id, &started))
}
