//! The event as Step Functions documents it, and what the service takes from it.

use crate::domain::{ExecutionArn, ExecutionName, Millis, Status};
use crate::ports::ExecutionState;
use crate::service::StatusChange;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

/// The events' `source`.
pub const SOURCE: &str = "aws.states";
/// The events' `detail-type`.
pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";

/// The event's `detail`, as Step Functions documents it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusChange {
    /// The execution.
    pub execution_arn: String,
    #[serde(default)]
    /// Its state machine.
    pub state_machine_arn: Option<String>,
    /// Its name (ours carry the instance key).
    pub name: String,
    /// Its status (RUNNING, SUCCEEDED, …, PENDING_REDRIVE).
    pub status: String,
    #[serde(default)]
    /// When it started (epoch milliseconds).
    pub start_date: Option<Millis>,
    #[serde(default)]
    /// When it stopped.
    pub stop_date: Option<Millis>,
    #[serde(default)]
    /// Its input (JSON text), unless too large.
    pub input: Option<String>,
    #[serde(default)]
    /// Whether the input was included.
    pub input_details: Option<serde_json::Value>,
    #[serde(default)]
    /// Its output (JSON text), unless too large.
    pub output: Option<String>,
    #[serde(default)]
    /// Whether the output was included (`included: false` over the event's size).
    pub output_details: Option<serde_json::Value>,
    #[serde(default)]
    /// Its error.
    pub error: Option<String>,
    #[serde(default)]
    /// Its cause.
    pub cause: Option<String>,
    #[serde(default)]
    /// How often it was redriven.
    pub redrive_count: Option<u32>,
    #[serde(default)]
    /// When it was last redriven.
    pub redrive_date: Option<Millis>,
    #[serde(default)]
    /// Whether it can be redriven.
    pub redrive_status: Option<String>,
    #[serde(default)]
    /// Why not, if not.
    pub redrive_status_reason: Option<String>,
}

/// Why an event was acknowledged without being applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not JSON of the EventBridge event's shape, or an ARN or name that is not one.
    #[error("not an EventBridge event of the expected shape: {0}")]
    Shape(String),
    /// Another kind of event.
    #[error("source {0:?} / detail-type {1:?} is not a Step Functions execution status change")]
    WrongKind(String, String),
    /// A status that is not an execution's.
    #[error("status {0:?} is not an execution status")]
    Status(String),
}

/// When Step Functions made the change the event reports (epoch ms, from its
/// detail): a run's start or redrive for RUNNING, its stop otherwise.
pub fn occurred_at(event: &serde_json::Value) -> Option<Millis> {
    let detail = event.get("detail")?;
    let millis = |field: &str| detail.get(field).and_then(serde_json::Value::as_i64);
    match detail.get("status")?.as_str()? {
        "RUNNING" if millis("redriveCount").unwrap_or(0) > 0 => millis("redriveDate").or_else(|| millis("startDate")),
        "RUNNING" => millis("startDate"),
        _ => millis("stopDate"),
    }
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
            .ok()
            .filter(|s| !matches!(s, Status::Starting | Status::StartFailed | Status::Redriving))
            .ok_or(Malformed::Status(detail.status.clone()))?,
    };
    let output_omitted = detail
        .output_details
        .as_ref()
        .and_then(|details| details.get("included"))
        .is_some_and(|included| included == &serde_json::Value::Bool(false));
    Ok(Some(StatusChange {
        output_omitted,
        execution_arn: ExecutionArn::parse(&detail.execution_arn).map_err(|e| Malformed::Shape(e.to_string()))?,
        name: ExecutionName::parse(&detail.name).map_err(|e| Malformed::Shape(e.to_string()))?,
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
