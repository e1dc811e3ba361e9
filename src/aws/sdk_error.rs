//! What an SDK error means for the ports: throttled, ambiguous or refused.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

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
