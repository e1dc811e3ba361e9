//! The status Lambda: Step Functions status-change events from EventBridge, through SQS.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sfn_singleton::{config::Config, events, startup};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time kept back from the invocation's deadline to answer with the records not done.
const MARGIN: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let service = startup::singleton(&config, false).await;
    let service = &service;
    lambda_runtime::run(service_fn(move |batch: LambdaEvent<events::SqsEvent>| async move {
        // Records not done 2 s before the deadline are reported, not lost with a timed-out invocation.
        let deadline = UNIX_EPOCH + Duration::from_millis(batch.context.deadline);
        let budget = deadline.duration_since(SystemTime::now()).unwrap_or_default().saturating_sub(MARGIN);
        // Failed records are reported in the answer; an error retries the whole batch.
        events::handle_batch(service, batch.payload, budget).await
    }))
    .await
}
