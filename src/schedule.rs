//! The scheduled trigger's entry point: an EventBridge Scheduler schedule
//! (or a rule's `Schedule` event) whose input names what to start. It runs
//! the same singleton start as the HTTP API.

use crate::config::{Config, UnknownFunction};
use crate::domain::limits::MAX_INPUT_BYTES;
use crate::domain::{ConflictPolicy, IdempotencyKey, InstanceId, InvalidInstanceId, StartPolicy};
use crate::ports::{Engine, InstanceStore};
use crate::service;
use crate::service::{Singleton, StartOutcome, StartRequest, Started};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tracing::Instrument;

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

/// How long an occurrence's key holds: Scheduler retries for at most 24 h
/// (`MaximumEventAgeInSeconds`), Lambda's async retries for at most 6 h.
pub const OCCURRENCE_KEY_WINDOW_MILLIS: i64 = 24 * 3600 * 1000;

/// The schedule's input, e.g.
/// `{"functionName":"Reports","instanceId":"nightly","input":{…},"overlap":"skip",
///   "scheduleArn":"<aws.scheduler.schedule-arn>","scheduledTime":"<aws.scheduler.scheduled-time>",
///   "executionId":"<aws.scheduler.execution-id>"}`
/// (EventBridge Scheduler fills in the placeholders).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduledStart {
    pub function_name: String,
    pub instance_id: String,
    /// The orchestration input, passed to Step Functions exactly as written
    /// (big numbers, long decimals and repeated keys included); `null` when absent.
    #[serde(default)]
    pub input: Option<Box<RawValue>>,
    #[serde(default)]
    pub overlap: Overlap,
    /// The schedule's ARN: with the scheduled time, names the occurrence.
    #[serde(default)]
    pub schedule_arn: Option<String>,
    /// The occurrence's scheduled time: the same in every delivery and retry of it.
    #[serde(default)]
    pub scheduled_time: Option<String>,
    /// Scheduler's ID of this invocation attempt (AWS documents it per attempt):
    /// logged, and the occurrence's key only when there is no scheduled time.
    #[serde(default)]
    pub execution_id: Option<String>,
}

impl ScheduledStart {
    /// The occurrence's idempotency key: each occurrence starts at most once,
    /// however often Scheduler and Lambda deliver it.
    fn occurrence_key(&self, instance_id: &InstanceId) -> Result<Option<IdempotencyKey>, Error> {
        let occurrence = match (&self.scheduled_time, &self.execution_id) {
            (Some(time), _) => format!("occurrence:{}@{time}", self.schedule_arn.as_deref().unwrap_or("-")),
            (None, Some(id)) => format!("attempt:{id}"),
            (None, None) => return Ok(None),
        };
        IdempotencyKey::parse(&occurrence, instance_id.key().as_str()).map(Some).map_err(|_| {
            Error::InvalidInput(
                "scheduleArn, scheduledTime and executionId must be visible ASCII, at most 240 characters together"
                    .into(),
            )
        })
    }
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
    /// This occurrence was delivered before and started this execution: nothing more is done.
    Replayed {
        execution_arn: String,
    },
}

const EXPECTED: &str = "{\"functionName\": …, \"instanceId\": …, \"input\": …, \"overlap\": \"skip\"|\"replace\", \
     \"scheduleArn\": \"<aws.scheduler.schedule-arn>\", \"scheduledTime\": \"<aws.scheduler.scheduled-time>\", \
     \"executionId\": \"<aws.scheduler.execution-id>\"}";

/// Runs one scheduled start from the invocation's payload (JSON text, read
/// raw so that the input reaches Step Functions as written). Errors (bad
/// input, a start that failed) are logged and fail the invocation, so that
/// Lambda's and the schedule's retries and dead-letter queue see them.
pub async fn handle<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    config: &Config,
    payload: &str,
) -> Result<ScheduleOutcome, Error> {
    let scheduled: ScheduledStart = match serde_json::from_str(payload) {
        Ok(scheduled) => scheduled,
        Err(e) => {
            let error = Error::InvalidInput(format!("{e}; the schedule's input must be {EXPECTED}"));
            tracing::error!(%error, "scheduled start refused");
            return Err(error);
        }
    };
    let span = tracing::info_span!(
        "schedule",
        instance_id = %scheduled.instance_id,
        function = %scheduled.function_name,
        occurrence = scheduled.scheduled_time.as_deref().unwrap_or("-"),
        attempt = scheduled.execution_id.as_deref().unwrap_or("-"),
    );
    run(service, config, scheduled)
        .instrument(span.clone())
        .await
        .inspect_err(|error| span.in_scope(|| tracing::error!(%error, "scheduled start failed; the invocation fails")))
}

async fn run<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    config: &Config,
    scheduled: ScheduledStart,
) -> Result<ScheduleOutcome, Error> {
    let instance_id = InstanceId::parse(&scheduled.instance_id)?;
    let function_name = scheduled.function_name.as_str();
    let function = config.require(function_name)?;
    let input = scheduled.input.as_deref().map_or("null", RawValue::get);
    if input.len() > MAX_INPUT_BYTES {
        return Err(Error::InputTooLarge(input.len()));
    }
    // Replace is terminateExisting: it stops at most the one execution it
    // found, and the claim is conditional on it, so racing replaces end with
    // one run instead of terminating each other forever.
    let on_conflict = match scheduled.overlap {
        Overlap::Skip => ConflictPolicy::Reject,
        Overlap::Replace => ConflictPolicy::TerminateExisting,
    };
    let policy =
        StartPolicy { on_conflict, reuse: function.reuse, idempotency_key: scheduled.occurrence_key(&instance_id)? };
    let request = StartRequest {
        instance_id: &instance_id,
        function_name,
        state_machine: &function.state_machine,
        input,
        policy: &policy,
        reason: Some("replaced by its schedule"),
        request_digest: None,
        // Lambda may deliver an occurrence again for as long as the function's maximum event age.
        min_key_window_millis: OCCURRENCE_KEY_WINDOW_MILLIS,
    };
    match service.start(request).await {
        Ok(Started { execution_arn, outcome: StartOutcome::Replaced { terminated } }) => {
            tracing::info!(%execution_arn, %terminated, "previous run terminated, new one started");
            Ok(ScheduleOutcome::Replaced { terminated_execution_arn: terminated, execution_arn })
        }
        Ok(Started { execution_arn, outcome: StartOutcome::Started }) => {
            tracing::info!(%execution_arn, "scheduled start");
            Ok(ScheduleOutcome::Started { execution_arn })
        }
        Ok(Started { execution_arn, outcome: StartOutcome::Replayed }) => {
            tracing::info!(%execution_arn, "this occurrence was delivered before; it started this execution");
            Ok(ScheduleOutcome::Replayed { execution_arn })
        }
        Ok(Started { execution_arn, outcome: StartOutcome::Existing }) => {
            Ok(ScheduleOutcome::Skipped { running_execution_arn: Some(execution_arn) })
        }
        Err(service::Error::AlreadyExists(_)) => {
            let running = service.status(&instance_id).await.ok().flatten().map(|r| r.execution_arn);
            tracing::info!(running_execution_arn = ?running, "another run is running; skipped");
            Ok(ScheduleOutcome::Skipped { running_execution_arn: running })
        }
        Err(other) => Err(other.into()),
    }
}
