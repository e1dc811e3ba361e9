//! CloudWatch metrics: what the service did, counted where it happens.
//!
//! The library records through the [`metrics`] facade (a no-op until a
//! recorder is installed: in tests and the local front). Each Lambda installs
//! the embedded-metric-format recorder (`sfn_singleton::startup::metrics`) and flushes it after each
//! invocation: one JSON document per invocation in the function's log, which
//! CloudWatch turns into metrics without a `PutMetricData` call on the request
//! path. The one dimension is the Lambda's function name: an instance ID or
//! anything else unbounded never becomes a dimension; a reason or an outcome is
//! part of the metric's name (`Rejections.InstanceAlreadyExists`), from a
//! fixed set.

use super::error::Error;
use super::request::{StartOutcome, Started};
use crate::ports::EngineError;
use metrics::Unit;

/// The namespace unless `POWERTOOLS_METRICS_NAMESPACE` names another (Powertools' variable).
pub const DEFAULT_NAMESPACE: &str = "SfnSingleton";
/// The variable that names the namespace, as Powertools for AWS Lambda reads it.
pub const NAMESPACE_VAR: &str = "POWERTOOLS_METRICS_NAMESPACE";
/// The metrics' one dimension: the Lambda's name (AWS/Lambda's own dimension name).
pub const DIMENSION: &str = "FunctionName";

/// A new execution started (a replacement's included).
pub const STARTS: &str = "Starts";
/// A start refused, by reason: `Rejections.<error name>` (409s and Step Functions' refusals).
pub const REJECTIONS: &str = "Rejections";
/// A start that failed for want of AWS, by error: `StartErrors.<error name>`.
pub const START_ERRORS: &str = "StartErrors";
/// A start answered with the execution its idempotency key started.
pub const REPLAYS: &str = "Replays";
/// A start answered with the running execution (`onConflict=useExisting`).
pub const USE_EXISTING: &str = "UseExisting";
/// A start that stopped the running execution to start anew (`terminateExisting`).
pub const REPLACEMENTS: &str = "Replacements";
/// A start that took over the claim of a starter that died before starting.
pub const TAKEOVERS: &str = "Takeovers";
/// A record checked with Step Functions, by outcome: `Reconciliations.<outcome>`.
pub const RECONCILIATIONS: &str = "Reconciliations";
/// An older execution of an instance, run again by an outside redrive, stopped.
pub const SUPERSEDED_STOPS: &str = "SupersededStops";
/// A status event handled, by outcome: `StatusEvents.<outcome>`.
pub const STATUS_EVENTS: &str = "StatusEvents";
/// Milliseconds from a status change (Step Functions' own time of it) to its write-back.
pub const EVENT_LAG: &str = "EventLag";
/// An event-wait message handled, by outcome: `EventWaits.<outcome>`.
pub const EVENT_WAITS: &str = "EventWaits";
/// Milliseconds a start request took in the service (claim, launch and whatever was in the way).
pub const START_LATENCY: &str = "StartLatency";
/// A Lambda process's first invocation.
pub const COLD_STARTS: &str = "ColdStarts";

/// What a reconciliation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconciliation {
    /// Step Functions said what the record said.
    Current,
    /// The record was behind a change Step Functions made moments ago: its event is on the way.
    Recent,
    /// The record was behind Step Functions for longer: a status event was lost or late.
    Corrected,
    /// Step Functions knows no such execution.
    ExecutionMissing,
    /// A dead starter's claim, never started, was released.
    ClaimReleased,
    /// A dead rewinder's hold, never redriven, was given back.
    RewindReleased,
}

impl Reconciliation {
    fn name(self) -> &'static str {
        match self {
            Reconciliation::Current => "Current",
            Reconciliation::Recent => "Recent",
            Reconciliation::Corrected => "Corrected",
            Reconciliation::ExecutionMissing => "ExecutionMissing",
            Reconciliation::ClaimReleased => "ClaimReleased",
            Reconciliation::RewindReleased => "RewindReleased",
        }
    }
}

fn count(name: String) {
    count_n(name, 1);
}

fn count_n(name: String, n: u64) {
    // The unit travels with the name; the recorder keeps the last one described.
    metrics::describe_counter!(name.clone(), Unit::Count, "");
    metrics::counter!(name).increment(n);
}

fn millis(name: &'static str, value: f64) {
    metrics::describe_histogram!(name, Unit::Milliseconds, "");
    metrics::histogram!(name).record(value);
}

/// A start's answer, and how long the service took to give it.
pub fn start_answered(answer: &Result<Started, Error>, elapsed_millis: f64) {
    millis(START_LATENCY, elapsed_millis);
    match answer {
        Ok(Started { outcome: StartOutcome::Started, .. }) => count(STARTS.into()),
        Ok(Started { outcome: StartOutcome::Replaced { .. }, .. }) => {
            count(STARTS.into());
            count(REPLACEMENTS.into());
        }
        Ok(Started { outcome: StartOutcome::Replayed, .. }) => count(REPLAYS.into()),
        Ok(Started { outcome: StartOutcome::Existing, .. }) => count(USE_EXISTING.into()),
        Err(error) if is_refusal(error) => count(format!("{REJECTIONS}.{}", error.name())),
        Err(error) => count(format!("{START_ERRORS}.{}", error.name())),
    }
}

/// A start refused on the record or by Step Functions (the client's to act on),
/// as opposed to one AWS could not serve.
fn is_refusal(error: &Error) -> bool {
    match error {
        // The request's fault (its input, a limit), not the operator's (access, a missing state machine).
        Error::StartRefused(EngineError::Refused { caller_fault, .. }) => *caller_fault,
        Error::StartRefused(EngineError::ExecutionAlreadyExists) => true,
        _ => matches!(
            error.name(),
            "InstanceAlreadyExists" | "StillStarting" | "ReuseForbidden" | "IdempotencyKeyReused" | "Contention"
        ),
    }
}

/// A start took over a dead starter's claim.
pub fn took_over() {
    count(TAKEOVERS.into());
}

/// A record was checked with Step Functions.
pub fn reconciled(outcome: Reconciliation) {
    count(format!("{RECONCILIATIONS}.{}", outcome.name()));
}

/// A status event handled, by outcome: an `EventOutcome`'s name, or the
/// batch's own `NoChange` (PENDING_REDRIVE), `Malformed`, `Failed` (retried),
/// `TimedOut` (retried).
pub fn status_event(outcome: &str) {
    count(format!("{STATUS_EVENTS}.{outcome}"));
}

/// An older run of an instance, redriven from outside, was stopped.
pub fn superseded_stopped() {
    count(SUPERSEDED_STOPS.into());
}

/// A status change written back `lag_millis` after Step Functions made it.
pub fn event_applied(lag_millis: f64) {
    millis(EVENT_LAG, lag_millis.max(0.0));
}

/// A wait message handled, by outcome (`Waiting`, `Delivered`, `Closed`,
/// `Failed`, `Invalid`; the batch's `Malformed`, `TimedOut`; `Retried`).
pub fn event_wait(outcome: &str) {
    count(format!("{EVENT_WAITS}.{outcome}"));
}

/// An event raised into a run and never delivered, by why (`WaitClosed`: the
/// wait it was matched to had closed before it took it).
pub fn event_dropped(reason: &str) {
    events_dropped(reason, 1);
}

/// `n` events dropped at once (`RunEnded`: buffered, no wait took them, when the run ended).
pub fn events_dropped(reason: &str, n: usize) {
    count_n(format!("EventsDropped.{reason}"), n as u64);
}
