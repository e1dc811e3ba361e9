//! The scheduled-trigger Lambda: EventBridge schedules start instances.
// The start path's futures nest deeper than rustc's default layout limit in release builds.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sfn_singleton::{config::Config, schedule, startup};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let service = startup::singleton(&config, true).await;
    let (service, config) = (&service, &config);
    // The payload raw: the input reaches Step Functions as written.
    let metrics = startup::metrics()?;
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |event: LambdaEvent<Box<serde_json::value::RawValue>>| async move {
            schedule::handle(service, config, event.payload.get()).await
        }),
    )
    .await
}
