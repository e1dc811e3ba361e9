//! The HTTP API's errors, and the one place that maps them to answers.

use super::response::json_response;
use crate::config::UnknownFunction;
use crate::domain::InvalidInstanceId;
use crate::domain::limits::{MAX_INPUT_BYTES, MAX_REASON_CHARS};
use crate::domain::listing::{InvalidFilter, InvalidToken};
use crate::domain::mailbox::InvalidEventName;
use crate::domain::policy::{InvalidIdempotencyKey, InvalidPolicy};
use crate::ports::{EngineError, StoreError};
use crate::service::{self, Error as ServiceError};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::json;

/// Why a request was not done: the request's own fault, or the service's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path's instance ID is not a valid one.
    #[error(transparent)]
    InvalidInstanceId(#[from] InvalidInstanceId),
    /// The path names a function that is not configured.
    #[error(transparent)]
    UnknownFunction(#[from] UnknownFunction),
    /// The body is not JSON.
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is over Step Functions' input limit.
    #[error("the request body is {0} bytes; the limit is {MAX_INPUT_BYTES} bytes (Step Functions' input limit)")]
    BodyTooLarge(usize),
    /// The body is declared as something other than JSON.
    #[error("unsupported content type {0:?}: send application/json")]
    UnsupportedMediaType(String),
    /// No route matches the path.
    #[error("no route for {0}; see the README for the API")]
    NoRoute(String),
    /// The route exists, not for this method.
    #[error("method {method} is not allowed here; allowed: {allowed}")]
    MethodNotAllowed {
        /// The request's method.
        method: String,
        /// The route's methods, as the `Allow` header lists them.
        allowed: &'static str,
    },
    /// `?reason=` is too long.
    #[error("reason is {0} characters; at most {MAX_REASON_CHARS} are allowed")]
    ReasonTooLong(usize),
    /// `?onConflict=` or `?reuse=` is not a policy.
    #[error(transparent)]
    InvalidPolicy(#[from] InvalidPolicy),
    /// The `Idempotency-Key` header is not a valid key.
    #[error(transparent)]
    InvalidIdempotencyKey(#[from] InvalidIdempotencyKey),
    /// A list's filter, page size or parameter is not valid.
    #[error(transparent)]
    InvalidFilter(#[from] InvalidFilter),
    /// `?onConflict=signal` without `?eventName=`.
    #[error("onConflict=signal needs eventName=, the name of the event the request body is raised as")]
    SignalWithoutEventName,
    /// The path's event name is not a valid one.
    #[error(transparent)]
    InvalidEventName(#[from] InvalidEventName),
    /// A list's continuation token was forged, changed, or is another query's.
    #[error(transparent)]
    InvalidContinuationToken(#[from] InvalidToken),
    /// The service's answer.
    #[error(transparent)]
    Service(#[from] service::Error),
}

impl Error {
    /// The error's name: the `error` field of the answer.
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidInstanceId(_) => "InvalidInstanceId",
            Error::UnknownFunction(_) => "UnknownFunction",
            Error::InvalidJson(_) => "InvalidJson",
            Error::BodyTooLarge(_) => "BodyTooLarge",
            Error::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Error::NoRoute(_) => "NoRoute",
            Error::MethodNotAllowed { .. } => "MethodNotAllowed",
            Error::ReasonTooLong(_) => "ReasonTooLong",
            Error::InvalidPolicy(_) => "InvalidPolicy",
            Error::InvalidIdempotencyKey(_) => "InvalidIdempotencyKey",
            Error::InvalidFilter(_) => "InvalidFilter",
            Error::InvalidContinuationToken(_) => "InvalidContinuationToken",
            Error::InvalidEventName(_) => "InvalidEventName",
            Error::SignalWithoutEventName => "SignalWithoutEventName",
            Error::Service(error) => error.name(),
        }
    }
}

/// What a client is told. Errors that carry AWS's own text (which can name
/// roles, accounts and resources) get a stable short message instead; the
/// whole error is in the log (`error_response` logs it).
fn public_message(error: &Error) -> String {
    let engine = |e: &EngineError| match e {
        // About the request's own input: the caller needs the reason.
        EngineError::Refused { caller_fault: true, message, .. } => {
            format!("Step Functions refused the input: {message}")
        }
        EngineError::Refused { code, .. } => format!("Step Functions refused the request ({code})"),
        EngineError::ExecutionAlreadyExists => "Step Functions refused the start".to_owned(),
        EngineError::Throttled { .. } => "Step Functions is throttling requests; retry later".to_owned(),
        EngineError::Ambiguous(_) => "Step Functions did not answer; retry later".to_owned(),
    };
    let Error::Service(error) = error else {
        return error.to_string();
    };
    match error {
        ServiceError::StartRefused(e) | ServiceError::Engine(e) => engine(e),
        ServiceError::RedriveRefused { refusal: EngineError::Refused { caller_fault: true, message, .. }, .. } => {
            format!("Step Functions refused to redrive the execution: {message}")
        }
        ServiceError::RedriveRefused { refusal, .. } => engine(refusal),
        ServiceError::RewindUnconfirmed { instance_id, .. } => format!(
            "the rewind of instance {instance_id:?} could not be confirmed; it is checked again once its lease ends"
        ),
        ServiceError::Store(StoreError::Throttled(_)) => "DynamoDB is throttling requests; retry later".to_owned(),
        ServiceError::Store(StoreError::Unavailable(_)) => "DynamoDB did not answer; retry later".to_owned(),
        ServiceError::Store(StoreError::Failed(_) | StoreError::Corrupt(_)) => {
            "the instance store failed; the service's log has the cause".to_owned()
        }
        ServiceError::StartUnconfirmed { instance_id, .. } => format!(
            "the start of instance {instance_id:?} could not be confirmed; it is checked again once its lease ends"
        ),
        ServiceError::Misconfigured(_) => {
            "starts are refused: a configured state machine is missing or not a Standard workflow; the service's \
             log names it"
                .to_owned()
        }
        other => other.to_string(),
    }
}

/// The answer to a Step Functions failure (and whether a retry may help); a refusal
/// about the request's own subject answers `caller_fault`.
fn engine_status(refusal: &EngineError, caller_fault: StatusCode) -> (StatusCode, bool) {
    match refusal {
        EngineError::Refused { caller_fault: true, .. } => (caller_fault, false),
        EngineError::Refused { .. } | EngineError::ExecutionAlreadyExists => (StatusCode::BAD_GATEWAY, false),
        EngineError::Throttled { .. } | EngineError::Ambiguous(_) => (StatusCode::SERVICE_UNAVAILABLE, true),
    }
}

/// The one mapping from errors to HTTP answers.
pub fn error_response(error: &Error, retry_after_secs: u32) -> Response<Body> {
    let (status, retry) = match error {
        Error::InvalidInstanceId(_)
        | Error::InvalidJson(_)
        | Error::ReasonTooLong(_)
        | Error::InvalidPolicy(_)
        | Error::InvalidIdempotencyKey(_)
        | Error::InvalidFilter(_)
        | Error::InvalidContinuationToken(_)
        | Error::InvalidEventName(_)
        | Error::SignalWithoutEventName => (StatusCode::BAD_REQUEST, false),
        Error::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, false),
        Error::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, false),
        Error::UnknownFunction(_) | Error::NoRoute(_) => (StatusCode::NOT_FOUND, false),
        Error::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, false),
        Error::Service(error) => match error {
            ServiceError::InstanceNotFound(_) => (StatusCode::NOT_FOUND, false),
            ServiceError::AlreadyExists(_) | ServiceError::ReuseForbidden { .. } | ServiceError::StillRunning(_) => {
                (StatusCode::CONFLICT, false)
            }
            ServiceError::StillStarting(_) => (StatusCode::CONFLICT, true),
            ServiceError::AlreadyTerminal { .. }
            | ServiceError::InputUnavailable(_)
            | ServiceError::RunEnded { .. } => (StatusCode::GONE, false),
            ServiceError::InvalidEvent(crate::domain::mailbox::InvalidEventBody::TooLarge(_)) => {
                (StatusCode::PAYLOAD_TOO_LARGE, false)
            }
            ServiceError::InvalidEvent(_) | ServiceError::InvalidWait(_) | ServiceError::Unsupported(_) => {
                (StatusCode::BAD_REQUEST, false)
            }
            ServiceError::MailboxFull { .. } => (StatusCode::TOO_MANY_REQUESTS, true),
            ServiceError::IdempotencyKeyReused(_) => (StatusCode::UNPROCESSABLE_ENTITY, false),
            ServiceError::StartRefused(refusal) | ServiceError::Engine(refusal) => {
                engine_status(refusal, StatusCode::BAD_REQUEST)
            }
            ServiceError::NotRewindable { refusal, .. } if refusal.is_gone() => (StatusCode::GONE, false),
            ServiceError::NotRewindable { refusal, .. } => (StatusCode::CONFLICT, refusal.is_in_flight()),
            // Not redrivable (or gone), in Step Functions' words: 410.
            ServiceError::RedriveRefused { refusal, .. } => engine_status(refusal, StatusCode::GONE),
            ServiceError::StartUnconfirmed { .. }
            | ServiceError::RewindUnconfirmed { .. }
            | ServiceError::EventUnconfirmed { .. }
            | ServiceError::DeliveryPending { .. }
            | ServiceError::Contention(_)
            | ServiceError::Store(StoreError::Throttled(_) | StoreError::Unavailable(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, true)
            }
            ServiceError::Misconfigured(_) | ServiceError::Store(StoreError::Failed(_) | StoreError::Corrupt(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, false)
            }
        },
    };
    let code = error.name();
    if status.is_server_error() {
        tracing::error!(%error, code, "request failed");
    } else {
        tracing::info!(%error, code, "request refused");
    }
    let mut response = if let Error::Service(ServiceError::AlreadyExists(_)) = error {
        // Durable's exact answer: the message as the body.
        let mut response = Response::new(Body::from(error.to_string()));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        response
    } else {
        json_response(status, &json!({ "error": code, "message": public_message(error) }))
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if retry {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    if let Error::MethodNotAllowed { allowed, .. } = error {
        headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
    }
    response
}
