//! The scheduled trigger's entry point: an EventBridge Scheduler schedule
//! (or a rule's `Schedule` event) whose input names what to start. It runs
//! the same singleton start as the HTTP API.

use crate::config::Config;
use crate::domain::InstanceId;
use crate::domain::{ConflictPolicy, StartPolicy};
use crate::error::Error;
use crate::ports::{Engine, InstanceStore};
use crate::service::{Singleton, StartOutcome, StartRequest, Started};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

/// What a schedule runs when the previous run of its instance still runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Overlap {
    /// Do nothing and log it.
    #[default]
    Skip,
    /// Terminate the running one, then start.
    Replace,
}

/// The schedule's input, e.g. `{"functionName":"Reports","instanceId":"nightly","input":{…},"overlap":"skip"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduledStart {
    pub function_name: String,
    pub instance_id: String,
    /// The orchestration input; `null` when absent.
    #[serde(default)]
    pub input: serde_json::Value,
    #[serde(default)]
    pub overlap: Overlap,
}

/// What a scheduled run did (the Lambda's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum ScheduleOutcome {
    Started {
        execution_arn: String,
    },
    /// The previous run still runs (`overlap: skip`).
    Skipped {
        running_execution_arn: Option<String>,
    },
    /// The previous run was terminated and a new one started (`overlap: replace`).
    Replaced {
        terminated_execution_arn: String,
        execution_arn: String,
    },
}

/// Runs one scheduled start. Errors (bad input, a start that failed) fail the
/// invocation, so the schedule's retry policy and dead-letter queue see them.
pub async fn handle<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    config: &Config,
    event: serde_json::Value,
) -> Result<ScheduleOutcome, Error> {
    let scheduled: ScheduledStart = serde_json::from_value(event).map_err(|e| {
        Error::InvalidSchedule(format!(
            "{e}; the schedule's input must be {{\"functionName\": …, \"instanceId\": …, \"input\": …, \"overlap\": \"skip\"|\"replace\"}}"
        ))
    })?;
    let span =
        tracing::info_span!("schedule", instance_id = %scheduled.instance_id, function = %scheduled.function_name);
    run(service, config, scheduled).instrument(span).await
}

async fn run<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    config: &Config,
    scheduled: ScheduledStart,
) -> Result<ScheduleOutcome, Error> {
    let instance_id = InstanceId::parse(&scheduled.instance_id)?;
    let function_name = scheduled.function_name.as_str();
    let state_machine = config.state_machine(function_name).ok_or_else(|| Error::UnknownFunction {
        name: function_name.to_owned(),
        configured: config.function_names(),
    })?;
    let input = scheduled.input.to_string();
    if input.len() > crate::http::MAX_BODY_BYTES {
        return Err(Error::BodyTooLarge(input.len()));
    }
    // Replace is terminateExisting: it stops at most the one execution it
    // found, and the claim is conditional on it, so racing replaces end with
    // one run instead of terminating each other forever.
    let on_conflict = match scheduled.overlap {
        Overlap::Skip => ConflictPolicy::Reject,
        Overlap::Replace => ConflictPolicy::TerminateExisting,
    };
    let policy = StartPolicy { on_conflict, ..StartPolicy::default() };
    let request = StartRequest {
        instance_id: &instance_id,
        function_name,
        state_machine,
        input: &input,
        policy: &policy,
        reason: Some("replaced by its schedule"),
    };
    match service.start(request).await {
        Ok(Started { record, outcome: StartOutcome::Replaced { terminated } }) => {
            tracing::info!(execution_arn = %record.execution_arn, %terminated, "previous run terminated, new one started");
            Ok(ScheduleOutcome::Replaced { terminated_execution_arn: terminated, execution_arn: record.execution_arn })
        }
        Ok(Started { record, outcome: StartOutcome::Started }) => {
            tracing::info!(execution_arn = %record.execution_arn, "scheduled start");
            Ok(ScheduleOutcome::Started { execution_arn: record.execution_arn })
        }
        Ok(Started { record, .. }) => {
            Ok(ScheduleOutcome::Skipped { running_execution_arn: Some(record.execution_arn) })
        }
        Err(Error::AlreadyExists(_)) => {
            let running = service.status(&instance_id).await.ok().flatten().map(|r| r.execution_arn);
            tracing::info!(running_execution_arn = ?running, "another run is running; skipped");
            Ok(ScheduleOutcome::Skipped { running_execution_arn: running })
        }
        Err(other) => Err(other),
    }
}
