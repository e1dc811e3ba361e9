//! SQS batches for the Lambdas an event source mapping feeds (status events,
//! event waits): each record handled at once and reported alone.

use crate::domain::time::time_left;
use crate::service;
pub use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;
use std::future::Future;
use std::time::{Duration, SystemTime};

/// Why a record was not handled, for a retry to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service failed to handle it.
    #[error(transparent)]
    Service(#[from] service::Error),
    /// It took longer than the invocation had left.
    #[error("not handled within {0:?}")]
    NotHandledInTime(Duration),
    /// The invocation's payload is not what the function takes.
    #[error("not an invocation this function takes: {0}")]
    Invalid(String),
}

impl Error {
    /// The error's name, as Lambda's error report gives it (`errorType`).
    pub fn name(&self) -> &'static str {
        match self {
            Error::Service(error) => error.name(),
            Error::NotHandledInTime(_) => "NotHandledInTime",
            Error::Invalid(_) => "InvalidInvocation",
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        Self { error_type: error.name().to_owned(), error_message: error.to_string() }
    }
}

/// An invocation's SQS batch, from the JSON Lambda handed over.
pub fn batch(payload: serde_json::Value) -> Result<SqsEvent, Error> {
    serde_json::from_value(payload).map_err(|e| Error::Invalid(e.to_string()))
}

/// A batch's answer (the records to retry), as the invocation's JSON.
pub fn answer(response: SqsBatchResponse) -> Result<serde_json::Value, Error> {
    serde_json::to_value(response).map_err(|e| Error::Invalid(e.to_string()))
}

/// Time kept back from the invocation's deadline to answer with the records not done.
const MARGIN: Duration = Duration::from_secs(2);
/// At least this long for a batch, whatever the deadline says: a local runtime
/// (`cargo lambda watch`) hands out deadlines closer than the margin, and on AWS
/// a function's timeout is at least 10 s here.
const MIN_BUDGET: Duration = Duration::from_secs(1);

/// The time a batch may take: records not done by `deadline_millis` (epoch ms)
/// less a margin are reported, not lost with a timed-out invocation.
pub fn budget(deadline_millis: u64, now: SystemTime) -> Duration {
    time_left(deadline_millis, now).saturating_sub(MARGIN).max(MIN_BUDGET)
}

/// Handles an SQS batch, each message's body (JSON) by `handle` with when SQS
/// took the message (its `SentTimestamp`, epoch ms, if given), all at once:
/// one slow record must not hold the others past the function's timeout.
/// Records that failed for a reason a retry can fix, or that did not finish
/// within `budget` (the invocation's time left, less a margin), are reported,
/// so that SQS retries them alone and deletes the others; the invocation fails
/// only when such a record has no message ID to report. `count` is told of
/// bodies that are not JSON (`Malformed`, acknowledged) and of records out of
/// time (`TimedOut`).
pub async fn each_record<H, F>(
    batch: SqsEvent,
    budget: Duration,
    count: fn(&str),
    handle: H,
) -> Result<SqsBatchResponse, Error>
where
    H: Fn(serde_json::Value, Option<i64>) -> F,
    F: Future<Output = Result<(), Error>>,
{
    let handle = &handle;
    let outcomes = join_all(batch.records.into_iter().map(|record| async move {
        let receive_count = record.attributes.get("ApproximateReceiveCount").cloned().unwrap_or_default();
        let body = match serde_json::from_str(record.body.as_deref().unwrap_or("")) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(message_id = ?record.message_id, %error, "message body is not JSON; acknowledged");
                count("Malformed");
                return Ok(());
            }
        };
        let sent_at = record.attributes.get("SentTimestamp").and_then(|at| at.parse().ok());
        let failed = match tokio::time::timeout(budget, handle(body, sent_at)).await {
            Ok(handled) => handled.err(),
            Err(_) => {
                count("TimedOut");
                Some(Error::NotHandledInTime(budget))
            }
        };
        match (failed, record.message_id) {
            (None, _) => Ok(()),
            (Some(error), Some(message_id)) => {
                tracing::warn!(%message_id, %error, receive_count, "reported for a retry of this record alone");
                Err(Ok(message_id))
            }
            (Some(error), None) => Err(Err(error)),
        }
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for outcome in outcomes {
        match outcome {
            Ok(()) => {}
            Err(Ok(message_id)) => response.add_failure(message_id),
            Err(Err(error)) => return Err(error),
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::StoreError;
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_batch_gets_its_invocations_time_less_the_margin_and_never_none() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(budget(1_030_000, now), Duration::from_secs(28));
        assert_eq!(budget(1_000_500, now), MIN_BUDGET, "closer than the margin");
        assert_eq!(budget(0, now), MIN_BUDGET, "in the past");
    }

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
