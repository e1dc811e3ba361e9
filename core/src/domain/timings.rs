//! How long the service trusts, protects and keeps things.

use super::record::Millis;

/// The service's time rules, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// How long a `Starting` claim is protected; must outlast the start
    /// function's timeout, so that its starter is dead when it expires.
    pub lease_millis: Millis,
    /// How long a non-terminal record is believed without asking Step Functions.
    pub reconcile_after_millis: Millis,
    /// How long terminal records are kept (DynamoDB TTL).
    pub retention_secs: i64,
    /// How long a start's `Idempotency-Key` replays its answer.
    pub idempotency_window_millis: Millis,
}
