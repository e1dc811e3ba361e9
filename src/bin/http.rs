//! The HTTP Lambda: the Durable-style start / status API.
// The start path's futures nest deeper than rustc's default layout limit in release builds.
#![recursion_limit = "256"]

use lambda_http::{Error, service_fn};
use sfn_singleton::config::{self, Config};
use sfn_singleton::{http, startup};
use std::convert::Infallible;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    if std::env::var_os(config::PAGE_TOKEN_KEY).is_none() {
        tracing::warn!("{} is not set: list tokens are signed with a key of this process only", config::PAGE_TOKEN_KEY);
    }
    let app = http::App { service: startup::singleton(&config, true).await, config };
    let app = &app;
    let handler = service_fn(move |request| async move { Ok::<_, Infallible>(http::handle(app, request).await) });
    metrics_cloudwatch_embedded::lambda::service::run_http(startup::metrics()?, handler).await
}
