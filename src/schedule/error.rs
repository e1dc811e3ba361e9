//! Why a scheduled start failed: the invocation fails with it, named.

use crate::config::UnknownFunction;
use crate::domain::InvalidInstanceId;
use crate::domain::limits::MAX_INPUT_BYTES;
use crate::service;

/// Why a scheduled start failed: the invocation fails with it, named, so that
/// Lambda's retries, the dead-letter queue and CloudWatch show what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The schedule's input is not what a scheduled start expects.
    #[error("the schedule's input is invalid: {0}")]
    InvalidInput(String),
    /// The input's instance ID is not a valid one.
    #[error(transparent)]
    InvalidInstanceId(#[from] InvalidInstanceId),
    /// The input names a function that is not configured.
    #[error(transparent)]
    UnknownFunction(#[from] UnknownFunction),
    /// The orchestration input is over Step Functions' limit.
    #[error("the schedule's orchestration input is {0} bytes; the limit is {MAX_INPUT_BYTES} bytes")]
    InputTooLarge(usize),
    /// The start failed.
    #[error(transparent)]
    Service(#[from] service::Error),
}

impl Error {
    /// The error's name, as Lambda's error report gives it (`errorType`).
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "InvalidScheduleInput",
            Error::InvalidInstanceId(_) => "InvalidInstanceId",
            Error::UnknownFunction(_) => "UnknownFunction",
            Error::InputTooLarge(_) => "InputTooLarge",
            Error::Service(error) => error.name(),
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        Self { error_type: error.name().to_owned(), error_message: error.to_string() }
    }
}
