//! `DELETE /instances/{id}`: delete a terminal instance's record.

use crate::domain::InstanceId;
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::response::json_response;
use crate::ports::{Engine, InstanceStore};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

pub(crate) async fn purge<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    id: &InstanceId,
) -> Result<Response<Body>, Error> {
    app.service.purge(id).await?;
    tracing::info!("purged");
    Ok(json_response(StatusCode::OK, &json!({ "instancesDeleted": 1 })))
}
