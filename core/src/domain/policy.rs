//! Start policies: what a start does when the ID is taken (conflict), and
//! which finished runs let the ID start again (reuse). Pure decisions, used
//! by the service and by the model checker alike.

use super::execution_name::ExecutionArn;
use super::instance_id::hex;
use super::record::{Millis, Record, Status};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A policy value that is not one of the allowed ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} must be one of {allowed} (got {value:?})")]
pub struct InvalidPolicy {
    /// The parameter's name.
    pub name: &'static str,
    /// Its allowed values, comma-separated.
    pub allowed: &'static str,
    /// The value given.
    pub value: String,
}

/// When the instance's current run is starting or running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ConflictPolicy {
    /// 409, Durable's answer.
    #[default]
    Reject,
    /// No new execution: answer with the running one.
    UseExisting,
    /// Stop the running execution, then start (conditional on the one stopped).
    TerminateExisting,
}

impl ConflictPolicy {
    /// The policy named `value` (its query-parameter and configuration name).
    pub fn parse(value: &str) -> Result<Self, InvalidPolicy> {
        [ConflictPolicy::Reject, ConflictPolicy::UseExisting, ConflictPolicy::TerminateExisting]
            .into_iter()
            .find(|policy| policy.as_str() == value)
            .ok_or_else(|| InvalidPolicy { name: Self::NAME, allowed: Self::ALLOWED, value: value.to_owned() })
    }

    /// The query parameter (and configuration key).
    pub const NAME: &'static str = "onConflict";
    /// Its values, for error messages.
    pub const ALLOWED: &'static str = "reject, useExisting, terminateExisting";

    /// The policy's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::Reject => "reject",
            ConflictPolicy::UseExisting => "useExisting",
            ConflictPolicy::TerminateExisting => "terminateExisting",
        }
    }
}

impl FromStr for ConflictPolicy {
    type Err = InvalidPolicy;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

impl fmt::Display for ConflictPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the instance's last run has ended (Temporal's ID reuse policy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ReusePolicy {
    /// Any end lets the ID start again.
    #[default]
    AllowAll,
    /// Only a run that did not succeed lets the ID start again.
    AllowFailedOnly,
    /// Any existing record blocks the ID until it is purged.
    Reject,
}

impl ReusePolicy {
    /// The policy named `value` (its query-parameter and configuration name).
    pub fn parse(value: &str) -> Result<Self, InvalidPolicy> {
        [ReusePolicy::AllowAll, ReusePolicy::AllowFailedOnly, ReusePolicy::Reject]
            .into_iter()
            .find(|policy| policy.as_str() == value)
            .ok_or_else(|| InvalidPolicy { name: Self::NAME, allowed: Self::ALLOWED, value: value.to_owned() })
    }

    /// The query parameter (and configuration key).
    pub const NAME: &'static str = "reuse";
    /// Its values, for error messages.
    pub const ALLOWED: &'static str = "allowAll, allowFailedOnly, reject";

    /// The policy's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReusePolicy::AllowAll => "allowAll",
            ReusePolicy::AllowFailedOnly => "allowFailedOnly",
            ReusePolicy::Reject => "reject",
        }
    }

    /// The terminal statuses after which the ID may start again.
    pub fn reusable(self) -> &'static [Status] {
        match self {
            ReusePolicy::AllowAll => &Status::TERMINAL,
            ReusePolicy::AllowFailedOnly => &[Status::Failed, Status::TimedOut, Status::Aborted, Status::StartFailed],
            ReusePolicy::Reject => &[],
        }
    }

    /// The statuses a `terminateExisting` claim may overwrite on the record of
    /// the run it stopped: that run still starting, running or being redriven (its end not
    /// recorded yet), stopped (by this replace, or one before it), or ended
    /// in a status the policy lets start again.
    pub fn replaceable(self) -> &'static [Status] {
        use Status::*;
        match self {
            ReusePolicy::AllowAll => &[Starting, Running, Redriving, Succeeded, Failed, TimedOut, Aborted, StartFailed],
            ReusePolicy::AllowFailedOnly => &[Starting, Running, Redriving, Failed, TimedOut, Aborted, StartFailed],
            ReusePolicy::Reject => &[Starting, Running, Redriving, Aborted],
        }
    }
}

impl FromStr for ReusePolicy {
    type Err = InvalidPolicy;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

impl fmt::Display for ReusePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an idempotency key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1–255 visible ASCII characters")]
pub struct InvalidIdempotencyKey;

/// A client's `Idempotency-Key`, kept only as a hash (salted with the
/// instance key, so equal keys of different instances do not match).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// A client's key for a start of the instance with key `instance_key` (keys are scoped to their instance).
    pub fn parse(raw: &str, instance_key: &str) -> Result<Self, InvalidIdempotencyKey> {
        let valid = (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if !valid {
            return Err(InvalidIdempotencyKey);
        }
        let digest = Sha256::new().chain_update(instance_key).chain_update(b":").chain_update(raw).finalize();
        Ok(Self(hex(&digest)))
    }

    /// The key's SHA-256 (hex), scoped to its instance: what the store keeps, never the key.
    pub fn hash(&self) -> &str {
        &self.0
    }

    /// What a keyed request asked for (its function and input), as a digest:
    /// the same key with another request is refused, not replayed.
    pub fn request_digest(function_name: &str, input: &str) -> String {
        hex(&Sha256::new().chain_update(function_name).chain_update(b"\n").chain_update(input).finalize())
    }

    /// Whether `record` was started by this key, within its window. A start
    /// that failed started nothing: its retry is a new start.
    pub fn started(&self, record: &Record, now: Millis) -> bool {
        record.status != Status::StartFailed
            && record.idempotency_key_hash.as_deref() == Some(self.0.as_str())
            && record.idempotency_until.is_some_and(|until| now < until)
    }
}

/// How one start request behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartPolicy {
    /// When the instance's run is starting or running.
    pub on_conflict: ConflictPolicy,
    /// Which ended runs let the ID start again.
    pub reuse: ReusePolicy,
    /// The request's `Idempotency-Key`, if any.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// What a refused claim found out, given the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The same request again (same idempotency key, within its window): answer as the first time.
    Replay,
    /// Ended, and the reuse policy allows a new start: claim again.
    Reuse,
    /// Ended, and the reuse policy forbids a new start.
    ReuseForbidden,
    /// Not confirmed for too long, its starter's lease ended, or a replay of a
    /// start not confirmed yet: ask Step Functions first.
    Verify,
    /// Running or starting: reject.
    Reject,
    /// Running or starting: answer with it.
    UseExisting,
    /// Running or starting: stop it, then claim conditional on it.
    Replace,
    /// Stopped by a `terminateExisting` start whose claim did not land (throttled, say):
    /// the same replace again completes it, whatever the reuse policy.
    FinishReplace,
}

/// How long the service trusts a record without asking Step Functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trust {
    /// A `Starting` record whose lease is over: its starter is dead.
    pub lease_expired: bool,
    /// Not confirmed by Step Functions for longer than the reconcile interval.
    pub unconfirmed_too_long: bool,
}

impl Trust {
    /// How far `record` can be believed at `now`.
    pub fn of(record: &Record, now: Millis, reconcile_after_millis: Millis) -> Self {
        let last_word = record.confirmed_at.unwrap_or(record.created_at);
        Trust {
            lease_expired: record.lease_expired(now),
            unconfirmed_too_long: record.status == Status::Running && now - last_word >= reconcile_after_millis,
        }
    }

    /// Just confirmed by Step Functions.
    pub const CONFIRMED: Trust = Trust { lease_expired: false, unconfirmed_too_long: false };

    /// The trust in `known`, the record found after verifying `verified`'s
    /// execution: confirmed only if it is that execution; a newer claim that
    /// replaced it meanwhile earns nothing from the check.
    pub fn after_verifying(verified: &Record, known: &Record, now: Millis, reconcile_after_millis: Millis) -> Self {
        if known.execution_arn == verified.execution_arn {
            Trust::CONFIRMED
        } else {
            Trust::of(known, now, reconcile_after_millis)
        }
    }

    /// Whether Step Functions must be asked before acting on the record.
    pub fn doubtful(self) -> bool {
        self.lease_expired || self.unconfirmed_too_long
    }
}

/// What the status Lambda does with a RUNNING event that the record refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedRunning {
    /// About the record's own execution: a duplicate or a late one.
    Ignore,
    /// A first run that no record knows: not this table's (or long gone).
    Unknown,
    /// An execution of this ID runs that the record does not name: an older
    /// one redriven from outside, a start that landed late, or a redrive of
    /// one whose record was deleted (purged, or expired by TTL while Step
    /// Functions allows redrives for 14 days). Only the record's execution
    /// may run, and a deleted record frees the ID for any start: stop it if
    /// it still runs.
    StopIfRunning,
}

/// The decision for a RUNNING event of `execution_arn` (its `redrive_count`)
/// that the record `current` (or no record) refused.
pub fn refused_running(current: Option<&Record>, execution_arn: &ExecutionArn, redrive_count: u32) -> RefusedRunning {
    match current {
        Some(current) if current.execution_arn == *execution_arn => RefusedRunning::Ignore,
        None if redrive_count == 0 => RefusedRunning::Unknown,
        _ => RefusedRunning::StopIfRunning,
    }
}

/// The answer to a start that found `current` in the way.
pub fn decide(current: &Record, policy: &StartPolicy, now: Millis, trust: Trust) -> Decision {
    if policy.idempotency_key.as_ref().is_some_and(|key| key.started(current, now)) {
        // A 202 names a started execution. Until Step Functions' event
        // confirms it, only Step Functions knows whether the first request
        // started it (or is still at it, or died before).
        return if current.status == Status::Starting { Decision::Verify } else { Decision::Replay };
    }
    if current.status.is_terminal() {
        return if policy.reuse.reusable().contains(&current.status) {
            Decision::Reuse
        } else if policy.on_conflict == ConflictPolicy::TerminateExisting && current.stopped_to_be_replaced() {
            Decision::FinishReplace
        } else {
            Decision::ReuseForbidden
        };
    }
    if trust.doubtful() {
        return Decision::Verify;
    }
    match policy.on_conflict {
        ConflictPolicy::Reject => Decision::Reject,
        ConflictPolicy::UseExisting => Decision::UseExisting,
        ConflictPolicy::TerminateExisting => Decision::Replace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExecutionName, InstanceId, StartToken, StateMachineArn};

    fn record(status: Status) -> Record {
        let id = InstanceId::parse("a").unwrap_or_else(|e| panic!("{e}"));
        let sm = StateMachineArn::parse("arn:aws:states:us-east-1:1:stateMachine:s").unwrap_or_else(|e| panic!("{e}"));
        let name = ExecutionName::new(&id, StartToken::new(0, 0));
        Record { status, ..Record::starting(&id, "f", &sm, &name, "null", 0, 1_000) }
    }

    const TRUSTED: Trust = Trust::CONFIRMED;

    #[test]
    fn policies_parse_their_names_and_name_the_allowed_values_otherwise() {
        assert_eq!("terminateExisting".parse(), Ok(ConflictPolicy::TerminateExisting));
        assert_eq!("allowFailedOnly".parse(), Ok(ReusePolicy::AllowFailedOnly));
        let wrong = "TerminateExisting".parse::<ConflictPolicy>().err().map(|e| e.to_string());
        assert_eq!(
            wrong.as_deref(),
            Some("onConflict must be one of reject, useExisting, terminateExisting (got \"TerminateExisting\")")
        );
        assert!("".parse::<ReusePolicy>().is_err());
    }

    #[test]
    fn each_reuse_policy_lets_exactly_its_statuses_start_again() {
        for status in Status::TERMINAL {
            let ended = record(status);
            let decide_with = |reuse| decide(&ended, &StartPolicy { reuse, ..Default::default() }, 0, TRUSTED);
            assert_eq!(decide_with(ReusePolicy::AllowAll), Decision::Reuse, "{status}");
            let failed_only = if status == Status::Succeeded { Decision::ReuseForbidden } else { Decision::Reuse };
            assert_eq!(decide_with(ReusePolicy::AllowFailedOnly), failed_only, "{status}");
            assert_eq!(decide_with(ReusePolicy::Reject), Decision::ReuseForbidden, "{status}");
        }
    }

    #[test]
    fn each_conflict_policy_answers_a_running_instance() {
        let running = record(Status::Running);
        for (on_conflict, decision) in [
            (ConflictPolicy::Reject, Decision::Reject),
            (ConflictPolicy::UseExisting, Decision::UseExisting),
            (ConflictPolicy::TerminateExisting, Decision::Replace),
        ] {
            assert_eq!(decide(&running, &StartPolicy { on_conflict, ..Default::default() }, 0, TRUSTED), decision);
        }
        let doubtful = Trust { lease_expired: true, unconfirmed_too_long: false };
        assert_eq!(decide(&running, &StartPolicy::default(), 0, doubtful), Decision::Verify);
    }

    #[test]
    fn starting_records_are_trusted_until_their_lease_ends_running_ones_for_the_reconcile_interval() {
        let starting = record(Status::Starting);
        assert!(!Trust::of(&starting, 999, 10_000).doubtful());
        assert!(Trust::of(&starting, 1_000, 10_000).doubtful());
        let running = Record { confirmed_at: Some(5_000), lease_until: None, ..record(Status::Running) };
        assert!(!Trust::of(&running, 14_999, 10_000).doubtful());
        assert!(Trust::of(&running, 15_000, 10_000).doubtful());
    }

    #[test]
    fn the_same_key_replays_within_its_window_only() {
        let key = IdempotencyKey::parse("retry-1", "k").unwrap_or_else(|e| panic!("{e}"));
        let started = Record {
            idempotency_key_hash: Some(key.hash().to_owned()),
            idempotency_until: Some(100),
            ..record(Status::Running)
        };
        let policy = StartPolicy { idempotency_key: Some(key), ..Default::default() };
        assert_eq!(decide(&started, &policy, 99, TRUSTED), Decision::Replay);
        assert_eq!(decide(&started, &policy, 100, TRUSTED), Decision::Reject);
        let starting = Record { status: Status::Starting, ..started.clone() };
        assert_eq!(decide(&starting, &policy, 99, TRUSTED), Decision::Verify, "a 202 needs a started execution");
        let failed = Record { status: Status::StartFailed, ..started.clone() };
        assert_eq!(decide(&failed, &policy, 99, TRUSTED), Decision::Reuse, "a failed start's retry starts again");
        let other = StartPolicy { idempotency_key: IdempotencyKey::parse("retry-2", "k").ok(), ..Default::default() };
        assert_eq!(decide(&started, &other, 99, TRUSTED), Decision::Reject);
        let other_instance = IdempotencyKey::parse("retry-1", "other").ok();
        assert_ne!(
            other_instance.as_ref().map(IdempotencyKey::hash),
            policy.idempotency_key.as_ref().map(|k| k.hash())
        );
    }

    #[test]
    fn idempotency_keys_are_checked_and_never_kept_in_clear() {
        assert_eq!(IdempotencyKey::parse("", "k"), Err(InvalidIdempotencyKey));
        assert_eq!(IdempotencyKey::parse(&"x".repeat(256), "k"), Err(InvalidIdempotencyKey));
        assert_eq!(IdempotencyKey::parse("tab\there", "k"), Err(InvalidIdempotencyKey));
        let key = IdempotencyKey::parse("secret-key", "k").unwrap_or_else(|e| panic!("{e}"));
        assert!(!key.hash().contains("secret") && key.hash().len() == 64);
    }
}
