//! The status Lambda: Step Functions status-change events from EventBridge.
// The start path's futures nest deeper than rustc's default layout limit in release builds.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sfn_singleton::{aws, config::Config, events};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let service = aws::singleton(&config, false).await;
    let service = &service;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        // Boxed: the runtime reports the error and the invocation is retried.
        events::handle(service, event.payload).await.map_err(Error::from)
    }))
    .await
}
