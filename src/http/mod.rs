//! The Durable-style HTTP API on `lambda_http`: routing here, one file per
//! route under `routes/`, the request's parts in `request`/`path`, payloads in
//! `response`, and the one mapping from errors to status codes in `error`.

mod app;
mod error;
mod path;
mod request;
mod response;
mod routes;

pub use app::App;
pub use error::{Error, error_response};
pub use request::IDEMPOTENCY_KEY;
pub use response::IDEMPOTENT_REPLAYED;

use crate::domain::InstanceId;
use crate::ports::{Engine, InstanceStore};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use path::{segments, stage};
use response::Links;
use tracing::Instrument;

enum Route {
    Start { function_name: String, instance_id: String },
    Instances,
    Instance { instance_id: String },
    Terminate { instance_id: String },
    Restart { instance_id: String },
    Rewind { instance_id: String },
    RaiseEvent { instance_id: String, event_name: String },
}

/// Handles one request; never fails (errors become responses).
pub async fn handle<S: InstanceStore, E: Engine>(app: &App<S, E>, request: Request) -> Response<Body> {
    let span = tracing::info_span!("request", method = %request.method(), instance_id = tracing::field::Empty);
    async {
        let result = route(app, &request).await;
        result.unwrap_or_else(|error| error_response(&error, app.config.retry_after_secs))
    }
    .instrument(span)
    .await
}

async fn route<S: InstanceStore, E: Engine>(app: &App<S, E>, request: &Request) -> Result<Response<Body>, Error> {
    let stage = stage(request);
    let segments = segments(request, stage.as_deref())?;
    let route = match segments.as_slice() {
        [first, function_name, instance_id] if first == "orchestrators" => {
            Route::Start { function_name: function_name.clone(), instance_id: instance_id.clone() }
        }
        [first] if first == "instances" => Route::Instances,
        [first, instance_id] if first == "instances" => Route::Instance { instance_id: instance_id.clone() },
        [first, instance_id, action] if first == "instances" && action == "terminate" => {
            Route::Terminate { instance_id: instance_id.clone() }
        }
        [first, instance_id, action] if first == "instances" && action == "restart" => {
            Route::Restart { instance_id: instance_id.clone() }
        }
        [first, instance_id, action] if first == "instances" && action == "rewind" => {
            Route::Rewind { instance_id: instance_id.clone() }
        }
        [first, instance_id, action, event_name] if first == "instances" && action == "raiseEvent" => {
            Route::RaiseEvent { instance_id: instance_id.clone(), event_name: event_name.clone() }
        }
        _ => return Err(Error::NoRoute(request.uri().path().to_owned())),
    };
    let links = Links::new(app, request, stage.as_deref());
    let method = request.method();
    match route {
        Route::Start { function_name, instance_id } => {
            allow(method, &[Method::POST], "POST")?;
            tracing::Span::current().record("instance_id", instance_id.as_str());
            routes::start(app, request, &function_name, &instance_id, &links).await
        }
        Route::Instances => {
            allow(method, &[Method::GET, Method::DELETE], "GET, DELETE")?;
            if method == Method::GET {
                routes::list(app, request).await
            } else {
                routes::purge_matching(app, request).await
            }
        }
        Route::Instance { instance_id } => {
            allow(method, &[Method::GET, Method::DELETE], "GET, DELETE")?;
            tracing::Span::current().record("instance_id", instance_id.as_str());
            let instance_id = InstanceId::parse(&instance_id)?;
            if method == Method::GET {
                routes::status(app, request, &instance_id).await
            } else {
                routes::purge(app, &instance_id).await
            }
        }
        Route::Terminate { instance_id } => {
            allow(method, &[Method::POST], "POST")?;
            tracing::Span::current().record("instance_id", instance_id.as_str());
            routes::terminate(app, request, &InstanceId::parse(&instance_id)?).await
        }
        Route::Restart { instance_id } => {
            allow(method, &[Method::POST], "POST")?;
            tracing::Span::current().record("instance_id", instance_id.as_str());
            routes::restart(app, request, &InstanceId::parse(&instance_id)?, &links).await
        }
        Route::Rewind { instance_id } => {
            allow(method, &[Method::POST], "POST")?;
            tracing::Span::current().record("instance_id", instance_id.as_str());
            routes::rewind(app, request, &InstanceId::parse(&instance_id)?, &links).await
        }
        Route::RaiseEvent { instance_id, event_name } => {
            allow(method, &[Method::POST], "POST")?;
            tracing::Span::current().record("instance_id", instance_id.as_str());
            routes::raise_event(app, request, &InstanceId::parse(&instance_id)?, &event_name).await
        }
    }
}

fn allow(method: &Method, allowed: &[Method], names: &'static str) -> Result<(), Error> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(Error::MethodNotAllowed { method: method.to_string(), allowed: names })
    }
}
