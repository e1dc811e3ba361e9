//! `POST /instances/{id}/terminate?reason=`: stop the instance's execution.

use crate::domain::InstanceId;
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::request::reason_of;
use crate::http::response::{json_response, status_body};
use crate::ports::{Engine, InstanceStore};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

pub(crate) async fn terminate<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
    id: &InstanceId,
) -> Result<Response<Body>, Error> {
    let reason = reason_of(request)?.unwrap_or_else(|| "terminated through the API".to_owned());
    let record = app.service.terminate(id, &reason).await?;
    tracing::info!(execution_arn = %record.execution_arn, "terminated");
    Ok(json_response(StatusCode::ACCEPTED, &status_body(&record)))
}
