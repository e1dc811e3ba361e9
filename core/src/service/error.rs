//! What the service's operations can fail with. The entry points wrap it in
//! their own errors (`http::Error`, `schedule::Error`, `events::Error`).

use crate::domain::rewind::RewindRefusal;
use crate::domain::{ReusePolicy, Status};
use crate::ports::{EngineError, StoreError};

/// A result of the service.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an operation on an instance did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No record for the ID (never started, purged or expired).
    #[error("no instance with ID {0:?} exists")]
    InstanceNotFound(String),
    /// Terminate of an instance whose run has ended.
    #[error("instance {instance_id:?} has already ended ({status})")]
    AlreadyTerminal {
        /// The instance.
        instance_id: String,
        /// How its run ended.
        status: Status,
    },
    /// Claimed, not started yet, and its starter may still be at it.
    #[error("instance {0:?} is still starting; retry")]
    StillStarting(String),
    /// Purge of an instance whose run has not ended.
    #[error("instance {0:?} is still running; terminate it first")]
    StillRunning(String),
    /// The instance's run ended and the reuse policy forbids starting it again.
    #[error("Instance '{instance_id}' already ended ({status}) and the reuse policy {reuse} does not start it again; {hint}", hint = if *reuse == ReusePolicy::Reject { "purge it first" } else { "purge it, or start with reuse=allowAll" })]
    ReuseForbidden {
        /// The instance.
        instance_id: String,
        /// How its last run ended.
        status: Status,
        /// The policy that forbids it.
        reuse: ReusePolicy,
    },
    /// A restart's input is gone from the record and from Step Functions.
    #[error("the last input of instance {0:?} is no longer available from Step Functions")]
    InputUnavailable(String),
    /// An idempotency key reused for a different request.
    #[error(
        "the Idempotency-Key of this start of instance {0:?} was first used with another request (function or input); \
         a retry must repeat the request exactly, a new request needs a new key"
    )]
    IdempotencyKeyReused(String),
    /// Durable's refusal: an execution of the ID is starting or running.
    #[error("An instance with ID '{0}' already exists.")]
    AlreadyExists(String),
    /// Step Functions refused the start, and no attempt of it can have started it.
    #[error("Step Functions refused to start the execution: {0}")]
    StartRefused(EngineError),
    /// An attempt may have started the execution and none could confirm it.
    #[error(
        "the start of instance {instance_id:?} could not be confirmed ({reason}); it will be checked once its lease ends"
    )]
    StartUnconfirmed {
        /// The instance.
        instance_id: String,
        /// The last attempt's failure.
        reason: String,
    },
    /// The instance's run cannot be rewound.
    #[error("instance {instance_id:?} cannot be rewound: {refusal}")]
    NotRewindable {
        /// The instance.
        instance_id: String,
        /// Why.
        refusal: RewindRefusal,
    },
    /// Step Functions refused the redrive, and no attempt of it can have redriven it.
    #[error("Step Functions refused to redrive the execution of instance {instance_id:?}: {refusal}")]
    RedriveRefused {
        /// The instance.
        instance_id: String,
        /// Step Functions' refusal.
        refusal: EngineError,
    },
    /// An attempt may have redriven the execution and none could confirm it.
    #[error(
        "the rewind of instance {instance_id:?} could not be confirmed ({reason}); it will be checked once its lease ends"
    )]
    RewindUnconfirmed {
        /// The instance.
        instance_id: String,
        /// The last attempt's failure.
        reason: String,
    },
    /// An event, or a wait, the service does not take as it is.
    #[error("{0}")]
    InvalidEvent(crate::domain::mailbox::InvalidEventBody),
    /// A wait's message the service cannot act on.
    #[error("invalid wait: {0}")]
    InvalidWait(String),
    /// A combination the service does not take (yet), and why.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The run cannot take another event now.
    #[error("instance {instance_id:?} takes no more events now: {reason}")]
    MailboxFull {
        /// The instance.
        instance_id: String,
        /// Which bound.
        reason: String,
    },
    /// The run a raise was for has ended since: a keyed raise's retry's (the run its key
    /// names), or a raise's that the instance started again under.
    #[error("the run of instance {instance_id:?} that the event was for has ended; a later run is not given it")]
    RunEnded {
        /// The instance.
        instance_id: String,
    },
    /// A raise that may or may not have reached the run.
    #[error("the event for instance {instance_id:?} could not be confirmed: {reason}")]
    EventUnconfirmed {
        /// The instance.
        instance_id: String,
        /// Why.
        reason: String,
    },
    /// The event is recorded for a waiting task and its delivery failed: a
    /// retry with the same Idempotency-Key, or the instance's next operation
    /// after the sweep interval, sends it again.
    #[error(
        "the event for instance {instance_id:?} is recorded for a waiting task of {execution_arn}, and Step Functions \
         did not take it ({reason}); it is sent again by a retry with the same Idempotency-Key or by a later operation on the instance"
    )]
    DeliveryPending {
        /// The instance.
        instance_id: String,
        /// Its run.
        execution_arn: String,
        /// The last attempt's failure.
        reason: String,
    },
    /// Lost too many claim rounds to concurrent starts.
    #[error("instance {0:?} is contended by other starts; retry")]
    Contention(String),
    /// A configured state machine is missing or not a Standard workflow.
    #[error("configuration error: {0}")]
    Misconfigured(String),
    /// The instance store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Step Functions failed (outside a start's own attempts).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Error {
    /// The error's name, as clients and Lambda error reports see it.
    pub fn name(&self) -> &'static str {
        match self {
            Error::InstanceNotFound(_) => "InstanceNotFound",
            Error::AlreadyTerminal { .. } => "AlreadyTerminal",
            Error::StillStarting(_) => "StillStarting",
            Error::StillRunning(_) => "StillRunning",
            Error::ReuseForbidden { .. } => "ReuseForbidden",
            Error::InputUnavailable(_) => "InputUnavailable",
            Error::IdempotencyKeyReused(_) => "IdempotencyKeyReused",
            Error::AlreadyExists(_) => "InstanceAlreadyExists",
            Error::StartRefused(e) | Error::Engine(e) => match e {
                EngineError::Refused { .. } | EngineError::ExecutionAlreadyExists => "StartRefused",
                EngineError::Throttled { .. } => "Throttled",
                EngineError::Ambiguous(_) => "StepFunctionsUnavailable",
            },
            Error::StartUnconfirmed { .. } => "StartUnconfirmed",
            Error::NotRewindable { .. } => "NotRewindable",
            Error::RedriveRefused { refusal: EngineError::Throttled { .. }, .. } => "Throttled",
            Error::RedriveRefused { .. } => "RedriveRefused",
            Error::RewindUnconfirmed { .. } => "RewindUnconfirmed",
            Error::InvalidEvent(_) => "InvalidEvent",
            Error::InvalidWait(_) => "InvalidWait",
            Error::Unsupported(_) => "Unsupported",
            Error::MailboxFull { .. } => "MailboxFull",
            Error::RunEnded { .. } => "RunEnded",
            Error::EventUnconfirmed { .. } => "EventUnconfirmed",
            Error::DeliveryPending { .. } => "DeliveryPending",
            Error::Contention(_) => "Contention",
            Error::Misconfigured(_) => "Misconfigured",
            Error::Store(StoreError::Throttled(_)) => "Throttled",
            Error::Store(StoreError::Unavailable(_)) => "StoreUnavailable",
            Error::Store(StoreError::Failed(_) | StoreError::Corrupt(_)) => "StoreFailed",
        }
    }
}
