//! A scheduled start: the same singleton start as the HTTP API's.

use super::error::Error;
use super::input::{EXPECTED, OCCURRENCE_KEY_WINDOW_MILLIS, Overlap, ScheduledStart};
use crate::config::Config;
use crate::domain::limits::MAX_INPUT_BYTES;
use crate::domain::mailbox::EventName;
use crate::domain::{ConflictPolicy, ExecutionArn, InstanceId, StartPolicy};
use crate::ports::{Engine, InstanceStore};
use crate::service;
use crate::service::{Signaled, Singleton, StartOutcome, StartRequest, Started};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tracing::Instrument;

/// What a scheduled run did (the Lambda's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum ScheduleOutcome {
    /// A new execution.
    Started {
        /// The new execution.
        execution_arn: ExecutionArn,
    },
    /// The previous run still runs (`overlap: skip`).
    Skipped {
        /// The one still running, if known.
        running_execution_arn: Option<ExecutionArn>,
    },
    /// The previous run was terminated and a new one started (`overlap: replace`).
    Replaced {
        /// The one terminated.
        terminated_execution_arn: ExecutionArn,
        /// The new one.
        execution_arn: ExecutionArn,
    },
    /// This occurrence was delivered before and started this execution (or, `overlap:
    /// signal`, raised its event into it): nothing more is done.
    Replayed {
        /// The execution this occurrence started.
        execution_arn: ExecutionArn,
    },
    /// The input was raised as an event into the running one (`overlap: signal`).
    Signaled {
        /// The run it went to.
        execution_arn: ExecutionArn,
        /// `delivered`, `buffered`, `waitClosed` or `runEnded` (as the HTTP API says it).
        delivery: String,
    },
}

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
        // (The signal's own: whatever runs gets the event.)
        Overlap::Signal => ConflictPolicy::UseExisting,
    };
    let event_name = match (scheduled.overlap, &scheduled.event_name) {
        (Overlap::Signal, Some(name)) => Some(EventName::parse(name).map_err(|e| Error::InvalidInput(e.to_string()))?),
        (Overlap::Signal, None) => return Err(Error::InvalidInput("overlap \"signal\" needs \"eventName\"".into())),
        (_, Some(_)) => return Err(Error::InvalidInput("\"eventName\" goes with overlap \"signal\" only".into())),
        (_, None) => None,
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
    if let Some(event_name) = &event_name {
        return signal(service, request, event_name).await;
    }
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

/// `overlap: signal`: the input as an event for the running one, or a new run holding it.
async fn signal<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    request: StartRequest<'_>,
    event_name: &EventName,
) -> Result<ScheduleOutcome, Error> {
    let (execution_arn, outcome) = match service.signal_with_start(request, event_name).await? {
        Signaled::Started(Started { execution_arn, outcome: StartOutcome::Replayed }) => {
            tracing::info!(%execution_arn, "this occurrence was delivered before; it started this execution");
            return Ok(ScheduleOutcome::Replayed { execution_arn });
        }
        Signaled::Started(Started { execution_arn, .. }) => {
            tracing::info!(%execution_arn, "scheduled start, its event buffered for its first wait");
            return Ok(ScheduleOutcome::Started { execution_arn });
        }
        Signaled::Replayed { execution_arn, outcome } => {
            tracing::info!(%execution_arn, delivery = outcome.name(), "this occurrence was delivered before; its event went to this run");
            return Ok(ScheduleOutcome::Replayed { execution_arn });
        }
        Signaled::Raised { execution_arn, outcome } => (execution_arn, outcome),
    };
    let delivery = outcome.name();
    tracing::info!(%execution_arn, delivery, "the occurrence's input raised as an event into the running one");
    Ok(ScheduleOutcome::Signaled { execution_arn, delivery: delivery.to_owned() })
}
