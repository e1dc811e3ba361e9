//! The status Lambda: Step Functions status-change events from EventBridge, through SQS.
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
    lambda_runtime::run(service_fn(move |batch: LambdaEvent<events::SqsEvent>| async move {
        // Failed records are reported in the answer; an error retries the whole batch.
        events::handle_batch(service, batch.payload).await.map_err(Error::from)
    }))
    .await
}
