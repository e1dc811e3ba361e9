//! `GET /instances/{id}`: the instance's status, reconciled when in doubt.

use crate::domain::InstanceId;
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::response::{json_response, status_body};
use crate::ports::{Engine, InstanceStore};
use crate::service;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

pub(crate) async fn status<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    id: &InstanceId,
) -> Result<Response<Body>, Error> {
    let record = app.service.status(id).await?.ok_or_else(|| service::Error::InstanceNotFound(id.to_string()))?;
    let code = if record.status.is_terminal() { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok(json_response(code, &status_body(&record)))
}
