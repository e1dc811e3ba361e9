//! Status events, one at a time and in SQS batches.

use super::detail::{occurred_at, parse};
use crate::ports::{Engine, InstanceStore};
use crate::service::telemetry;
use crate::service::{EventOutcome, Singleton};
use crate::sqs::{self, Error, SqsBatchResponse, SqsEvent};
use std::time::Duration;
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

/// Handles one SQS batch of EventBridge events (each message's body is the
/// whole event), its records at once ([`sqs::each_record`]): they are order-proof.
pub async fn handle_batch<S: InstanceStore, E: Engine>(
    service: &Singleton<S, E>,
    batch: SqsEvent,
    budget: Duration,
) -> Result<SqsBatchResponse, Error> {
    sqs::each_record(batch, budget, telemetry::status_event, |event, _| handle(service, event)).await
}
