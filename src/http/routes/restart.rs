//! `POST /instances/{id}/restart`: start the instance again with its last input.

use super::start::start_with;
use crate::domain::{IdempotencyKey, InstanceId};
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::request::StartOptions;
use crate::http::response::{Links, started_response};
use crate::ports::{Engine, InstanceStore};
use crate::service;
use lambda_http::{Body, Request, Response};

/// Starts an instance again with its last input, under its function's policies.
pub(crate) async fn restart<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
    instance_id: &InstanceId,
    links: &Links,
) -> Result<Response<Body>, Error> {
    let mut options = StartOptions::of(request, instance_id)?;
    if options.signal.is_some() {
        return Err(service::Error::Unsupported("a restart takes no onConflict=signal: signal with a start").into());
    }
    // A restart's function and input come from the record, which may change: its key
    // stands for "restart this instance", checked before the record is read.
    let digest = IdempotencyKey::request_digest("(restart)", "");
    if let Some(key) = &options.idempotency_key
        && let Some(replayed) = app.service.replayed(instance_id, key, &digest).await?
    {
        return Ok(started_response(app, links, instance_id, &replayed));
    }
    options.request_digest = Some(digest);
    let (last, input) = app
        .service
        .last_run(instance_id)
        .await?
        .ok_or_else(|| service::Error::InstanceNotFound(instance_id.to_string()))?;
    start_with(app, links, instance_id, &last.function_name, &input, &options).await
}
