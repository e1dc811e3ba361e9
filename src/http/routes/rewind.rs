//! `POST /instances/{id}/rewind?reason=`: redrive the instance's failed execution.

use crate::domain::InstanceId;
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::request::reason_of;
use crate::http::response::{Links, rewound_response};
use crate::ports::{Engine, InstanceStore};
use lambda_http::{Body, Request, Response};

pub(crate) async fn rewind<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
    instance_id: &InstanceId,
    links: &Links,
) -> Result<Response<Body>, Error> {
    // Step Functions keeps no reason with a redrive: the log does.
    let reason = reason_of(request)?;
    let rewinding = app.service.rewind(instance_id).await?;
    tracing::info!(execution_arn = %rewinding.execution_arn, reason = reason.as_deref().unwrap_or(""), "rewound");
    Ok(rewound_response(app, links, instance_id, &rewinding))
}
