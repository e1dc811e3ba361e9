//! The status Lambda's entry point: EventBridge "Step Functions Execution
//! Status Change" events, in SQS batches → the service.
//!
//! Why a queue between the rule and the Lambda: EventBridge invokes Lambda
//! asynchronously, so its retry policy covers delivery only, and a failing
//! write would get Lambda's two async retries (about 3 minutes). SQS keeps a
//! failing event for days, retries it alone (`ReportBatchItemFailures`), and
//! its dead-letter queue has a native redrive.

use crate::domain::{Millis, Status};
use crate::ports::{Engine, ExecutionState, InstanceStore};
use crate::service::{self, EventOutcome, Singleton, StatusChange};
use aws_lambda_events::eventbridge::EventBridgeEvent;
pub use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tracing::Instrument;

pub const SOURCE: &str = "aws.states";
pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";

/// The event's `detail`, as Step Functions documents it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusChange {
    pub execution_arn: String,
    #[serde(default)]
    pub state_machine_arn: Option<String>,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub start_date: Option<Millis>,
    #[serde(default)]
    pub stop_date: Option<Millis>,
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub input_details: Option<serde_json::Value>,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub output_details: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(default)]
    pub redrive_count: Option<u32>,
    #[serde(default)]
    pub redrive_date: Option<Millis>,
    #[serde(default)]
    pub redrive_status: Option<String>,
    #[serde(default)]
    pub redrive_status_reason: Option<String>,
}

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

/// Why an event was acknowledged without being applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("not an EventBridge event of the expected shape: {0}")]
    Shape(String),
    #[error("source {0:?} / detail-type {1:?} is not a Step Functions execution status change")]
    WrongKind(String, String),
    #[error("status {0:?} is not an execution status")]
    Status(String),
}

/// The event as the service sees it; `Ok(None)` for statuses that change nothing (PENDING_REDRIVE).
pub fn parse(event: serde_json::Value) -> Result<Option<StatusChange>, Malformed> {
    let event: EventBridgeEvent<ExecutionStatusChange> =
        serde_json::from_value(event).map_err(|e| Malformed::Shape(e.to_string()))?;
    if event.source != SOURCE || event.detail_type != DETAIL_TYPE {
        return Err(Malformed::WrongKind(event.source, event.detail_type));
    }
    let detail = event.detail;
    let status = match detail.status.as_str() {
        "PENDING_REDRIVE" => return Ok(None),
        status => Status::parse(status)
            .filter(|s| !matches!(s, Status::Starting | Status::StartFailed))
            .ok_or(Malformed::Status(detail.status.clone()))?,
    };
    let output_omitted = detail
        .output_details
        .as_ref()
        .and_then(|details| details.get("included"))
        .is_some_and(|included| included == &serde_json::Value::Bool(false));
    Ok(Some(StatusChange {
        output_omitted,
        execution_arn: detail.execution_arn,
        name: detail.name,
        state: ExecutionState {
            status,
            redrive_count: detail.redrive_count.unwrap_or(0),
            stop_date: detail.stop_date,
            output: detail.output,
            error: detail.error,
            cause: detail.cause,
            input: detail.input,
        },
    }))
}

/// Handles one event. Errors only for what a retry can fix (a throttled or
/// failing write); anything it can explain is logged and acknowledged.
pub async fn handle<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    event: serde_json::Value,
) -> Result<(), Error> {
    let event_id = event.get("id").and_then(|id| id.as_str()).unwrap_or("?").to_owned();
    let span =
        tracing::info_span!("event", event_id, execution_arn = tracing::field::Empty, status = tracing::field::Empty);
    async {
        let change = match parse(event) {
            Ok(Some(change)) => change,
            Ok(None) => {
                tracing::info!("status changes nothing; acknowledged");
                return Ok(());
            }
            Err(malformed) => {
                tracing::warn!(error = %malformed, "malformed event acknowledged");
                return Ok(());
            }
        };
        let span = tracing::Span::current();
        span.record("execution_arn", change.execution_arn.as_str());
        span.record("status", change.state.status.as_str());
        match service.apply_event(change).await {
            Ok(EventOutcome::UnknownInstance) => tracing::warn!("no record knows this execution; acknowledged"),
            Ok(EventOutcome::NotOurs) => tracing::warn!("not an execution started by sfn-singleton; acknowledged"),
            Ok(outcome) => tracing::info!(?outcome, "event handled"),
            Err(error) => {
                tracing::error!(%error, "event not handled; it will be retried");
                return Err(error.into());
            }
        }
        Ok(())
    }
    .instrument(span)
    .await
}

/// Handles one SQS batch of EventBridge events (each message's body is the
/// whole event), its records at once: they are order-proof, and one slow
/// record must not hold the others past the function's timeout. Records that
/// failed for a reason a retry can fix, or that did not finish within
/// `budget` (the invocation's time left, less a margin), are reported, so that
/// SQS retries them alone and deletes the others; the invocation fails only
/// when such a record has no message ID to report.
pub async fn handle_batch<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    batch: SqsEvent,
    budget: Duration,
) -> Result<SqsBatchResponse, Error> {
    let outcomes = join_all(batch.records.into_iter().map(|record| async move {
        let receive_count = record.attributes.get("ApproximateReceiveCount").cloned().unwrap_or_default();
        let event = match serde_json::from_str(record.body.as_deref().unwrap_or("")) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(message_id = ?record.message_id, %error, "message body is not JSON; acknowledged");
                return Ok(());
            }
        };
        let failed = match tokio::time::timeout(budget, handle(service, event)).await {
            Ok(handled) => handled.err(),
            Err(_) => Some(Error::NotHandledInTime(budget)),
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
