//! Wiring, once per cold start: the SDK clients, the adapters, the service.

use crate::aws::{DynamoStore, StepFunctions};
use crate::config::Config;
use crate::service::telemetry::{COLD_STARTS, DEFAULT_NAMESPACE, DIMENSION, NAMESPACE_VAR};
use crate::service::{Singleton, StandardCheck, system_clock};
use std::sync::Arc;

/// The service on real AWS clients, built once per cold start. With
/// `check_state_machines`, the check that the configured state machines are
/// Standard starts now, in the background, and every start waits for it.
/// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_DYNAMODB` / `_SFN`) points the clients at an emulator.
pub async fn singleton(config: &Config, check_state_machines: bool) -> Singleton<DynamoStore, StepFunctions> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts()).load().await;
    let engine = StepFunctions::new(aws_sdk_sfn::Client::new(&sdk));
    let service = Singleton::new(
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name),
        engine.clone(),
        config.timings.clone(),
        system_clock(),
    );
    if !check_state_machines {
        return service;
    }
    let machines = config.state_machines().map(|(name, arn)| (name.clone(), arn.clone())).collect();
    let check = Arc::new(StandardCheck::new(machines));
    let background = check.clone();
    tokio::spawn(async move { background.run(&engine).await });
    service.with_standard_check(check)
}

/// Installs this process's metrics recorder (once, at init): CloudWatch's embedded
/// metric format, in namespace `POWERTOOLS_METRICS_NAMESPACE` (default
/// `SfnSingleton`), with the Lambda's name as the one dimension. A Lambda then
/// runs under [`metrics_cloudwatch_embedded::lambda::service::run`], which counts
/// the cold start and writes the invocation's metrics to the log after it.
pub fn metrics() -> Result<&'static metrics_cloudwatch_embedded::Collector, MetricsUnavailable> {
    let namespace = std::env::var(NAMESPACE_VAR).ok().filter(|n| !n.is_empty());
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned());
    metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()))
        .with_dimension(DIMENSION, function)
        .lambda_cold_start_metric(COLD_STARTS)
        .init()
        .map_err(|e| MetricsUnavailable(e.to_string()))
}

/// The metrics recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("the metrics recorder could not be installed: {0}")]
pub struct MetricsUnavailable(String);

/// A call that hangs is worse than one that fails: each attempt gets 3 s (DynamoDB and
/// Step Functions answer in tens of ms) and each call, with the SDK's retries, 8 s, so
/// that a start's three calls end well within the function's 30 s and its lease.
fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(std::time::Duration::from_secs(3))
        .operation_timeout(std::time::Duration::from_secs(8))
        .build()
}
