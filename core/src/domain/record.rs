//! The instance record (one per instance ID) and its status machine.

use super::execution_name::{ExecutionArn, ExecutionName, StateMachineArn};
use super::instance_id::{InstanceId, InstanceKey, hex};
use super::mailbox::Mailbox;
use sha2::{Digest, Sha256};
use std::fmt;

pub use super::time::Millis;

/// Where an instance's current run is: our two statuses around Step Functions' own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Claimed; StartExecution not yet confirmed (Durable "Pending").
    Starting,
    /// Started and running (Durable "Running").
    Running,
    /// Ended well (Durable "Completed").
    Succeeded,
    /// Ended with an error (Durable "Failed").
    Failed,
    /// Ran past its timeout (Durable "Failed").
    TimedOut,
    /// Stopped (Durable "Terminated").
    Aborted,
    /// Step Functions refused the StartExecution.
    StartFailed,
    /// A rewind holds the ID: its ended execution is being redriven (Durable "Pending").
    Redriving,
}

impl Status {
    /// The statuses of an ended run: the ID may start again (as the reuse policy allows).
    pub const TERMINAL: [Status; 5] =
        [Status::Succeeded, Status::Failed, Status::TimedOut, Status::Aborted, Status::StartFailed];

    /// The status as stored and as Step Functions spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "STARTING",
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
            Status::StartFailed => "START_FAILED",
            Status::Redriving => "REDRIVING",
        }
    }

    /// Our statuses, and Step Functions' execution statuses (a subset).
    pub fn parse(raw: &str) -> Result<Self, InvalidStatus> {
        [Status::Starting, Status::Running, Status::Redriving]
            .into_iter()
            .chain(Status::TERMINAL)
            .find(|status| status.as_str() == raw)
            .ok_or_else(|| InvalidStatus(raw.to_owned()))
    }

    /// A run that has not ended (or that a rewind runs again): events may be raised into it.
    pub fn takes_events(self) -> bool {
        matches!(self, Status::Starting | Status::Running | Status::Redriving)
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        Status::TERMINAL.contains(&self)
    }

    /// Held by a request under a lease: a start's claim, or a rewind's.
    pub fn is_leased(self) -> bool {
        matches!(self, Status::Starting | Status::Redriving)
    }
}

/// Why a status was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an execution status")]
pub struct InvalidStatus(pub String);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `error` of records and stopped executions, per reason.
pub const START_FAILED_ERROR: &str = "SfnSingleton.StartFailed";
/// A run stopped by terminate.
pub const TERMINATED_ERROR: &str = "Terminated";
/// Stopped by a `terminateExisting` start, to be replaced.
pub const REPLACED_ERROR: &str = "SfnSingleton.Replaced";
/// A redrive of an older run, stopped because a newer run holds the ID.
pub const SUPERSEDED_ERROR: &str = "SfnSingleton.Superseded";

/// Inputs up to this size are kept in the record; larger ones only as a
/// digest (DescribeExecution has the whole), so a start stays a few write units.
pub const MAX_STORED_INPUT_BYTES: usize = 16 * 1024;

/// The orchestration input as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoredInput {
    /// The input itself.
    Inline(String),
    /// A digest of an input too large to keep.
    Digest {
        /// SHA-256 of the input (hex).
        sha256: String,
        /// Its size.
        bytes: usize,
    },
}

impl StoredInput {
    /// How a record keeps `input`: inline up to [`MAX_STORED_INPUT_BYTES`], else as a digest.
    pub fn of(input: &str) -> Self {
        if input.len() <= MAX_STORED_INPUT_BYTES {
            StoredInput::Inline(input.to_owned())
        } else {
            StoredInput::Digest { sha256: hex(&Sha256::digest(input.as_bytes())), bytes: input.len() }
        }
    }
}

/// Bounds on what the record keeps of an execution's end; longer text is cut
/// at a character boundary and marked, DescribeExecution has the whole.
pub const MAX_STORED_OUTPUT_BYTES: usize = 32 * 1024;
/// See [`MAX_STORED_OUTPUT_BYTES`].
pub const MAX_STORED_ERROR_BYTES: usize = 256;
/// See [`MAX_STORED_OUTPUT_BYTES`].
pub const MAX_STORED_CAUSE_BYTES: usize = 4 * 1024;
const TRUNCATED: &str = "…[truncated]";

/// `text` cut to at most `max` bytes, marked when cut.
pub fn bounded(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(TRUNCATED.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &text[..end])
}

/// One instance ID's record: the current (latest) execution and what is known of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// The record's key: the instance ID's hash.
    pub key: InstanceKey,
    /// The instance ID.
    pub instance_id: String,
    /// The function its current run runs.
    pub function_name: String,
    /// Where its current run is.
    pub status: Status,
    /// The state machine of its current run.
    pub state_machine_arn: StateMachineArn,
    /// Its current run's execution name.
    pub execution_name: ExecutionName,
    /// Its current run's execution ARN.
    pub execution_arn: ExecutionArn,
    /// When the current run was claimed.
    pub created_at: Millis,
    /// When the record last changed.
    pub updated_at: Millis,
    /// Last time Step Functions' own word on the execution was seen.
    pub confirmed_at: Option<Millis>,
    /// While `Starting`: after this, the starter is presumed dead.
    pub lease_until: Option<Millis>,
    /// The run's input (inline, or a digest of a large one).
    pub input: Option<StoredInput>,
    /// When the execution ended, per Step Functions.
    pub stop_date: Option<Millis>,
    /// The run's output, bounded.
    pub output: Option<String>,
    /// The run's error, bounded.
    pub error: Option<String>,
    /// The run's cause, bounded.
    pub cause: Option<String>,
    /// How often Step Functions redrove the run.
    pub redrive_count: u32,
    /// DynamoDB TTL (epoch seconds), set only on terminal records.
    pub expires_at: Option<i64>,
    /// SHA-256 of the `Idempotency-Key` that started this run, and until when it replays.
    pub idempotency_key_hash: Option<String>,
    /// Until when that key replays.
    pub idempotency_until: Option<Millis>,
    /// While `Redriving`: the token of the rewind that holds the record (its
    /// RedriveExecution client token), so that the rewind knows its own write.
    pub rewind_token: Option<String>,
    /// The live run's events and waits (see [`crate::domain::mailbox`]).
    pub mailbox: Mailbox,
}

impl Record {
    /// Whether this stored record is `claim` itself, not yet started: what a
    /// retried conditional put finds when its first, unanswered attempt wrote.
    pub fn is_same_claim(&self, claim: &Record) -> bool {
        self.status == Status::Starting && self.execution_name == claim.execution_name
    }

    /// A fresh claim: `Starting`, with a lease.
    pub fn starting(
        instance_id: &InstanceId,
        function_name: &str,
        state_machine: &StateMachineArn,
        execution_name: &ExecutionName,
        input: &str,
        now: Millis,
        lease_millis: Millis,
    ) -> Self {
        Record {
            key: instance_id.key(),
            instance_id: instance_id.as_str().to_owned(),
            function_name: function_name.to_owned(),
            status: Status::Starting,
            state_machine_arn: state_machine.clone(),
            execution_name: execution_name.clone(),
            execution_arn: state_machine.execution_arn(execution_name),
            created_at: now,
            updated_at: now,
            confirmed_at: None,
            lease_until: Some(now + lease_millis),
            input: Some(StoredInput::of(input)),
            stop_date: None,
            output: None,
            error: None,
            cause: None,
            redrive_count: 0,
            expires_at: None,
            idempotency_key_hash: None,
            idempotency_until: None,
            rewind_token: None,
            mailbox: Mailbox::default(),
        }
    }

    /// Not started (or not redriven yet), and its starter may still be at it (within its lease).
    pub fn starter_may_be_alive(&self, now: Millis) -> bool {
        self.status.is_leased() && !self.lease_expired(now)
    }

    /// Stopped by a `terminateExisting` start (whose claim may not have landed yet).
    pub fn stopped_to_be_replaced(&self) -> bool {
        self.status == Status::Aborted && self.error.as_deref() == Some(REPLACED_ERROR)
    }

    /// Whether this is a claim (a start's or a rewind's) whose lease is over.
    pub fn lease_expired(&self, now: Millis) -> bool {
        self.status.is_leased() && self.lease_until.is_none_or(|until| now >= until)
    }

    /// This ended record held by a rewind (token `token`) until `now + lease_millis`:
    /// `Redriving`, naming the same execution and `redrive_count`, the count it will
    /// have once redriven (Step Functions' count + 1: the run it rewinds is another
    /// run, whose late events and a replace's claim on it no longer match), with
    /// no TTL while it is held.
    pub fn rewinding(&self, token: &str, redrive_count: u32, now: Millis, lease_millis: Millis) -> Self {
        Record {
            status: Status::Redriving,
            redrive_count,
            updated_at: now,
            lease_until: Some(now + lease_millis),
            expires_at: None,
            rewind_token: Some(token.to_owned()),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_terminal_ones_are_known() {
        for status in Status::TERMINAL {
            assert_eq!(Status::parse(status.as_str()), Ok(status));
            assert!(status.is_terminal());
        }
        assert!(!Status::Starting.is_terminal() && !Status::Running.is_terminal());
        assert!(Status::parse("PENDING_REDRIVE").is_err());
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_and_marked() {
        assert_eq!(bounded("short".into(), 10), "short");
        let cut = bounded("é".repeat(100), 50);
        assert!(cut.len() <= 50 && cut.ends_with(TRUNCATED) && cut.starts_with("éé"), "{cut}");
    }

    #[test]
    fn large_inputs_are_kept_as_a_digest() {
        assert_eq!(StoredInput::of("{}"), StoredInput::Inline("{}".into()));
        let big = format!("\"{}\"", "x".repeat(MAX_STORED_INPUT_BYTES));
        match StoredInput::of(&big) {
            StoredInput::Digest { sha256, bytes } => assert_eq!((sha256.len(), bytes), (64, big.len())),
            inline => panic!("expected a digest, got {inline:?}"),
        }
    }
}
