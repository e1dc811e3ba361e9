//! The AWS adapters: the only place that names `aws_sdk_*` types.

pub mod dynamo;
pub mod sfn;

pub use dynamo::DynamoStore;
pub use sfn::StepFunctions;

use crate::config::Config;
use crate::service::{Singleton, StandardCheck, system_clock};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
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

/// A call that hangs is worse than one that fails: each attempt gets 3 s (DynamoDB and
/// Step Functions answer in tens of ms) and each call, with the SDK's retries, 8 s, so
/// that a start's three calls end well within the function's 30 s and its lease.
fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(std::time::Duration::from_secs(3))
        .operation_timeout(std::time::Duration::from_secs(8))
        .build()
}

/// How an SDK call failed, in the terms the ports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Throttled,
    /// No answer or a 5xx: it may or may not have taken effect.
    Ambiguous,
    Refused,
}

const THROTTLING_CODES: [&str; 5] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "KmsThrottlingException",
];

/// Classifies an unmodeled or generic SDK failure by its error code and HTTP status.
pub(crate) fn classify<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Failure {
    match err {
        SdkError::ServiceError(service) => {
            if service.err().code().is_some_and(|code| THROTTLING_CODES.contains(&code)) {
                Failure::Throttled
            } else if service.raw().status().is_server_error() {
                Failure::Ambiguous
            } else {
                Failure::Refused
            }
        }
        SdkError::ConstructionFailure(_) => Failure::Refused,
        _ => Failure::Ambiguous,
    }
}

/// A display of an SDK error with its code and message, not just "service error".
pub(crate) fn describe_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: &SdkError<E, HttpResponse>,
) -> String {
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            format!("{}: {}", e.code().unwrap_or("unknown error"), e.message().unwrap_or("no message"))
        }
        other => {
            // The outer display is terse ("dispatch failure"); its source says why.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}
