//! The event-wait Lambda's entry point: a state machine's wait for an event
//! is a `.waitForTaskToken` task that sends `{"executionArn", "taskToken",
//! "eventName"}` (and `"timeoutSeconds"`, its task's timeout) to the
//! EventWaits queue; each message registers its wait
//! ([`Singleton::register_wait`]), in SQS batches.
//!
//! Why SQS and not a Lambda invoke: `sqs:sendMessage.waitForTaskToken` runs
//! end to end on the local emulator (moto sends the message to its own SQS),
//! its Lambda invoke needs containers; and a queue keeps a registration that
//! failed (DynamoDB throttling) for a retry instead of failing the task.

use crate::domain::ExecutionArn;
use crate::domain::Millis;
use crate::domain::mailbox::{EventName, MAX_TASK_TOKEN_CHARS, MAX_WAIT_TIMEOUT_SECONDS};
use crate::ports::{Engine, InstanceStore};
use crate::service::{self, Singleton, WaitOutcome, WaitRequest, telemetry};
use crate::sqs::{self, Error, SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use std::time::Duration;
use tracing::Instrument;

/// A wait message, as the task's `Parameters.MessageBody` builds it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WaitMessage {
    /// `$$.Execution.Id`.
    execution_arn: String,
    /// `$$.Task.Token`.
    task_token: String,
    /// The event the task waits for.
    event_name: String,
    /// The task's `TimeoutSeconds` (or `HeartbeatSeconds`, if smaller): with
    /// it, no event goes to the wait once the task may have timed out.
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

/// Handles one wait message. Errors only for what a retry can fix (a
/// throttled write, Step Functions not answering): SQS delivers the message
/// again, and registering the same token again is safe. A message that names
/// no valid wait fails its task (`SfnSingleton.InvalidWait`) when it carries
/// a token, and is acknowledged.
pub async fn handle<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    message: serde_json::Value,
    sent_at: Option<Millis>,
) -> Result<(), Error> {
    let span = tracing::info_span!(
        "wait",
        execution_arn = tracing::field::Empty,
        event_name = tracing::field::Empty,
        outcome = tracing::field::Empty
    );
    async {
        let token = message.get("taskToken").and_then(|t| t.as_str()).map(str::to_owned);
        let outcome = match wait_request(message, sent_at) {
            Ok(request) => {
                let span = tracing::Span::current();
                span.record("execution_arn", request.execution_arn.as_str());
                span.record("event_name", request.name.as_str());
                match service.register_wait(&request).await {
                    Ok(outcome) => Ok(Some(outcome)),
                    Err(service::Error::InvalidWait(cause)) => refuse(service, token.as_deref(), &cause).await,
                    Err(error) => Err(error),
                }
            }
            Err(cause) => refuse(service, token.as_deref(), &cause).await,
        };
        let name = match &outcome {
            Ok(Some(outcome)) => outcome.name(),
            Ok(None) => "Invalid",
            Err(error) => {
                tracing::warn!(%error, "wait not registered; SQS delivers it again");
                "Retried"
            }
        };
        tracing::Span::current().record("outcome", name);
        tracing::info!("wait message handled");
        telemetry::event_wait(name);
        outcome.map(|_| ()).map_err(Error::from)
    }
    .instrument(span)
    .await
}

/// A message's wait, or why it names none. Its deadline counts from when the
/// task sent it (`sent_at`: SQS's `SentTimestamp`), not from when it is read:
/// a message that waited in the queue has less time left.
fn wait_request(message: serde_json::Value, sent_at: Option<Millis>) -> Result<WaitRequest, String> {
    let message: WaitMessage = serde_json::from_value(message).map_err(|e| {
        format!("a wait message is {{\"executionArn\": $$.Execution.Id, \"taskToken\": $$.Task.Token, \"eventName\": \"…\", \"timeoutSeconds\": …}}: {e}")
    })?;
    let timeout = match message.timeout_seconds {
        Some(seconds @ 1..=MAX_WAIT_TIMEOUT_SECONDS) => Some(seconds as Millis * 1000),
        Some(seconds) => return Err(format!("timeoutSeconds {seconds} is not 1–{MAX_WAIT_TIMEOUT_SECONDS}")),
        None => None,
    };
    if timeout.is_some() && sent_at.is_none() {
        tracing::warn!("the wait message has no SentTimestamp: its deadline is not known");
    }
    Ok(WaitRequest {
        deadline: sent_at.zip(timeout).and_then(|(sent_at, timeout)| sent_at.checked_add(timeout)),
        execution_arn: ExecutionArn::parse(&message.execution_arn)
            .map_err(|_| format!("executionArn {:?} is not an execution ARN", message.execution_arn))?,
        name: EventName::parse(&message.event_name).map_err(|e| e.to_string())?,
        token: message.task_token,
    })
}

/// A message that names no wait: its task fails with why, if it has a token
/// to fail; `None` when there was nothing to fail.
async fn refuse<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    token: Option<&str>,
    cause: &str,
) -> service::Result<Option<WaitOutcome>> {
    tracing::warn!(cause, "not a valid wait message");
    match token.filter(|t| !t.is_empty() && t.len() <= MAX_TASK_TOKEN_CHARS) {
        Some(token) => service.refuse_wait(token, cause).await.map(|_| None),
        None => Ok(None),
    }
}

/// Due records one scheduled sweep takes; the next minute's takes the rest.
pub const SWEEP_LIMIT: usize = 100;

/// The event-wait Lambda's invocation: an SQS batch of wait messages (its
/// answer: the records to retry), or the scheduled sweep's EventBridge event
/// (`"detail-type": "Scheduled Event"`, every minute; its answer: what it
/// did, see [`Singleton::sweep_due`]).
pub async fn handle_invocation<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    payload: serde_json::Value,
    budget: Duration,
) -> Result<serde_json::Value, Error> {
    if payload.get("Records").is_some() {
        return sqs::answer(handle_batch(service, sqs::batch(payload)?, budget).await?);
    }
    if payload.get("detail-type").and_then(|t| t.as_str()) != Some("Scheduled Event") {
        return Err(Error::Invalid("neither an SQS batch nor a scheduled event".into()));
    }
    let span = tracing::info_span!("sweep", due = tracing::field::Empty, swept = tracing::field::Empty);
    async {
        // No record begun in the second half: the one under way has time to finish.
        let report = tokio::time::timeout(budget, service.sweep_due(SWEEP_LIMIT, budget / 2))
            .await
            .map_err(|_| Error::NotHandledInTime(budget))??;
        let span = tracing::Span::current();
        span.record("due", report.due);
        span.record("swept", report.swept);
        // (Every minute: a line only when something was due.)
        if report.due > 0 {
            tracing::info!(failed = report.failed, "scheduled sweep done");
        }
        Ok(serde_json::json!({"due": report.due, "swept": report.swept, "failed": report.failed}))
    }
    .instrument(span)
    .await
}

/// Handles one SQS batch of wait messages, its records at once ([`sqs::each_record`]).
pub async fn handle_batch<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    batch: SqsEvent,
    budget: Duration,
) -> Result<SqsBatchResponse, Error> {
    sqs::each_record(batch, budget, telemetry::event_wait, |message, sent_at| handle(service, message, sent_at)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(extra: serde_json::Value) -> serde_json::Value {
        let mut message = serde_json::json!({
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:Approval:abc",
            "taskToken": "token-1",
            "eventName": "approval"
        });
        if let (Some(message), Some(extra)) = (message.as_object_mut(), extra.as_object()) {
            message.extend(extra.clone());
        }
        message
    }

    #[test]
    fn a_wait_with_its_timeout_has_a_deadline_counted_from_when_the_task_sent_it() {
        let wait = wait_request(message(serde_json::json!({"timeoutSeconds": 3600})), Some(1_000));
        assert_eq!(wait.map(|w| w.deadline), Ok(Some(1_000 + 3_600_000)));
        // Without SQS's SentTimestamp, or without a timeout, no deadline is known
        assert_eq!(
            wait_request(message(serde_json::json!({"timeoutSeconds": 3600})), None).map(|w| w.deadline),
            Ok(None)
        );
        assert_eq!(wait_request(message(serde_json::json!({})), Some(1_000)).map(|w| w.deadline), Ok(None));
    }

    #[test]
    fn a_timeout_out_of_step_functions_bounds_names_no_wait() {
        for bad in
            [serde_json::json!(0), serde_json::json!(100_000_000), serde_json::json!(-1), serde_json::json!("60")]
        {
            let refused = wait_request(message(serde_json::json!({ "timeoutSeconds": bad })), Some(1_000));
            assert!(refused.as_ref().is_err_and(|cause| cause.contains("timeoutSeconds")), "{bad}: {refused:?}");
        }
    }
}
