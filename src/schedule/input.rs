//! The schedule's input: what to start, and the occurrence it is.

use super::error::Error;
use crate::domain::{IdempotencyKey, InstanceId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What a schedule runs when the previous run of its instance still runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Overlap {
    /// Do nothing and log it.
    #[default]
    Skip,
    /// Terminate the running one, then start.
    Replace,
    /// Signal-with-start: raise the input as the event `eventName` into the
    /// running one, or start one with the event waiting for its first wait.
    Signal,
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
    /// The configured function to start.
    pub function_name: String,
    /// The instance ID.
    pub instance_id: String,
    /// The orchestration input, passed to Step Functions exactly as written
    /// (big numbers, long decimals and repeated keys included); `null` when absent.
    #[serde(default)]
    pub input: Option<Box<RawValue>>,
    #[serde(default)]
    /// What to do while the previous run still runs.
    pub overlap: Overlap,
    /// With `overlap: signal`, the event the input is raised as.
    #[serde(default)]
    pub event_name: Option<String>,
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
    pub(super) fn occurrence_key(&self, instance_id: &InstanceId) -> Result<Option<IdempotencyKey>, Error> {
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

pub(super) const EXPECTED: &str = "{\"functionName\": …, \"instanceId\": …, \"input\": …, \"overlap\": \"skip\"|\"replace\"|\"signal\" (+ \"eventName\"), \
     \"scheduleArn\": \"<aws.scheduler.schedule-arn>\", \"scheduledTime\": \"<aws.scheduler.scheduled-time>\", \
     \"executionId\": \"<aws.scheduler.execution-id>\"}";
