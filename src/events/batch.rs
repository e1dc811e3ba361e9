//! SQS batches of events, each record handled at once and reported alone.

use super::detail::{occurred_at, parse};
use super::error::Error;
use crate::domain::time::time_left;
use crate::ports::{Engine, InstanceStore};
use crate::service::telemetry;
use crate::service::{EventOutcome, Singleton};
pub use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;
use std::time::{Duration, SystemTime};
use tracing::Instrument;

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
        let occurred_at = occurred_at(&event);
        let change = match parse(event) {
            Ok(Some(change)) => change,
            Ok(None) => {
                tracing::info!("status changes nothing; acknowledged");
                telemetry::status_event("NoChange");
                return Ok(());
            }
            Err(malformed) => {
                tracing::warn!(error = %malformed, "malformed event acknowledged");
                telemetry::status_event("Malformed");
                return Ok(());
            }
        };
        let span = tracing::Span::current();
        span.record("execution_arn", change.execution_arn.as_str());
        span.record("status", change.state.status.as_str());
        let outcome = match service.apply_event(change).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(%error, "event not handled; it will be retried");
                telemetry::status_event("Failed");
                return Err(error.into());
            }
        };
        match outcome {
            EventOutcome::UnknownInstance => tracing::warn!("no record knows this execution; acknowledged"),
            EventOutcome::NotOurs => tracing::warn!("not an execution started by sfn-singleton; acknowledged"),
            outcome => tracing::info!(?outcome, "event handled"),
        }
        telemetry::status_event(outcome.name());
        if outcome == EventOutcome::Applied
            && let Some(occurred_at) = occurred_at
        {
            telemetry::event_applied((service.now() - occurred_at) as f64);
        }
        Ok(())
    }
    .instrument(span)
    .await
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
                telemetry::status_event("Malformed");
                return Ok(());
            }
        };
        let failed = match tokio::time::timeout(budget, handle(service, event)).await {
            Ok(handled) => handled.err(),
            Err(_) => {
                telemetry::status_event("TimedOut");
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
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_batch_gets_its_invocations_time_less_the_margin_and_never_none() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(budget(1_030_000, now), Duration::from_secs(28));
        assert_eq!(budget(1_000_500, now), MIN_BUDGET, "closer than the margin");
        assert_eq!(budget(0, now), MIN_BUDGET, "in the past");
    }
}
