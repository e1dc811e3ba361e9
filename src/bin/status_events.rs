//! The status Lambda: Step Functions status-change events from EventBridge, through SQS.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sfn_singleton::{config::Config, events, startup};
use std::time::SystemTime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config =
        Config::from_env_without_functions().inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let service = startup::singleton(&config, false).await;
    let service = &service;
    let metrics = startup::metrics()?;
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |batch: LambdaEvent<events::SqsEvent>| async move {
            let budget = events::budget(batch.context.deadline, SystemTime::now());
            // Failed records are reported in the answer; an error retries the whole batch.
            events::handle_batch(service, batch.payload, budget).await
        }),
    )
    .await
}
