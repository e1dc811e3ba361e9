//! The crate's error type. `http::error_response` maps it to HTTP in one place.

use crate::domain::InvalidInstanceId;
use crate::ports::{EngineError, StoreError};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidInstanceId(#[from] InvalidInstanceId),
    #[error("no function named {name:?} is configured (configured: {configured})")]
    UnknownFunction { name: String, configured: String },
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the request body is {0} bytes; the limit is {limit} bytes (Step Functions' input limit)", limit = crate::http::MAX_BODY_BYTES)]
    BodyTooLarge(usize),
    #[error("unsupported content type {0:?}: send application/json")]
    UnsupportedMediaType(String),
    #[error("no route for {0}; see the README for the API")]
    NoRoute(String),
    #[error("method {method} is not allowed here; allowed: {allowed}")]
    MethodNotAllowed { method: String, allowed: &'static str },
    #[error("no instance with ID {0:?} exists")]
    InstanceNotFound(String),
    #[error("instance {instance_id:?} has already ended ({status})")]
    AlreadyTerminal { instance_id: String, status: crate::domain::Status },
    #[error("instance {0:?} is still starting; retry")]
    StillStarting(String),
    #[error("instance {0:?} is still running; terminate it first")]
    StillRunning(String),
    #[error("reason is {0} characters; at most {max} are allowed", max = crate::http::MAX_REASON_CHARS)]
    ReasonTooLong(usize),
    #[error("Instance '{instance_id}' already ended ({status}) and the reuse policy {reuse} does not start it again; {hint}", hint = if *reuse == crate::domain::ReusePolicy::Reject { "purge it first" } else { "purge it, or start with reuse=allowAll" })]
    ReuseForbidden { instance_id: String, status: crate::domain::Status, reuse: crate::domain::ReusePolicy },
    #[error("the last input of instance {0:?} is no longer available from Step Functions")]
    InputUnavailable(String),
    #[error(transparent)]
    InvalidPolicy(#[from] crate::domain::policy::InvalidPolicy),
    #[error(transparent)]
    InvalidIdempotencyKey(#[from] crate::domain::policy::InvalidIdempotencyKey),
    #[error(
        "the Idempotency-Key of this start of instance {0:?} was first used with another request (function or input); \
         a retry must repeat the request exactly, a new request needs a new key"
    )]
    IdempotencyKeyReused(String),
    #[error("An instance with ID '{0}' already exists.")]
    AlreadyExists(String),
    #[error("Step Functions refused to start the execution: {0}")]
    StartRefused(EngineError),
    #[error(
        "the start of instance {instance_id:?} could not be confirmed ({reason}); it will be checked once its lease ends"
    )]
    StartUnconfirmed { instance_id: String, reason: String },
    #[error("instance {0:?} is contended by other starts; retry")]
    Contention(String),
    #[error("the schedule's input is invalid: {0}")]
    InvalidSchedule(String),
    #[error("configuration error: {0}")]
    Misconfigured(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}
