//! Why an event was not applied: the invocation reports it, named.

use crate::service;
use std::time::Duration;

/// Why an event was not applied, for a retry to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service failed to apply it.
    #[error(transparent)]
    Service(#[from] service::Error),
    /// It took longer than the invocation had left.
    #[error("not handled within {0:?}")]
    NotHandledInTime(Duration),
}

impl Error {
    /// The error's name, as Lambda's error report gives it (`errorType`).
    pub fn name(&self) -> &'static str {
        match self {
            Error::Service(error) => error.name(),
            Error::NotHandledInTime(_) => "NotHandledInTime",
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        Self { error_type: error.name().to_owned(), error_message: error.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::StoreError;

    #[test]
    fn a_failed_invocation_names_its_error_to_lambda() {
        let unavailable = Error::Service(service::Error::Store(StoreError::Unavailable("timeout".into())));
        let report = lambda_runtime::Diagnostic::from(unavailable);
        assert_eq!(report.error_type, "StoreUnavailable");
        assert!(report.error_message.contains("timeout"), "{}", report.error_message);
        let late = lambda_runtime::Diagnostic::from(Error::NotHandledInTime(Duration::from_secs(28)));
        assert_eq!(late.error_type, "NotHandledInTime");
    }
}
