//! What a request carries besides its route: the body as orchestration
//! input, query parameters, and a start's options.

use super::error::Error;
use crate::config::Function;
use crate::domain::InstanceId;
use crate::domain::limits::{MAX_INPUT_BYTES, MAX_REASON_CHARS};
use crate::domain::policy::{ConflictPolicy, IdempotencyKey, InvalidIdempotencyKey, ReusePolicy, StartPolicy};
use lambda_http::Request;
use lambda_http::http::header;

/// The header that carries a start's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The request body as orchestration input: JSON text, `null` when empty.
pub(super) fn input_of(request: &Request) -> Result<String, Error> {
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
        let content_type = content_type.to_str().unwrap_or("").to_ascii_lowercase();
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !(media_type == "application/json" || media_type.ends_with("+json")) {
            return Err(Error::UnsupportedMediaType(content_type));
        }
    }
    let body: &[u8] = request.body().as_ref();
    if body.len() > MAX_INPUT_BYTES {
        return Err(Error::BodyTooLarge(body.len()));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok("null".to_owned());
    }
    let text = std::str::from_utf8(body).map_err(|e| Error::InvalidJson(format!("not UTF-8 ({e})")))?;
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| Error::InvalidJson(e.to_string()))?;
    Ok(text.to_owned())
}

/// A query parameter, percent-decoded.
pub(super) fn query_param(request: &Request, name: &str) -> Option<String> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

/// `?reason=`, the cause of a stop (terminate, terminateExisting).
pub(super) fn reason_of(request: &Request) -> Result<Option<String>, Error> {
    let Some(reason) = query_param(request, "reason").filter(|reason| !reason.is_empty()) else {
        return Ok(None);
    };
    match reason.chars().count() {
        chars if chars > MAX_REASON_CHARS => Err(Error::ReasonTooLong(chars)),
        _ => Ok(Some(reason)),
    }
}

/// What a start request asks for beyond its route, validated before any AWS
/// call: `?onConflict=` and `?reuse=` (over the function's defaults),
/// `?reason=`, and the `Idempotency-Key` header.
pub(super) struct StartOptions {
    pub(super) on_conflict: Option<ConflictPolicy>,
    pub(super) reuse: Option<ReusePolicy>,
    pub(super) idempotency_key: Option<IdempotencyKey>,
    pub(super) reason: Option<String>,
    /// What the key stands for, when not the function and input (a restart).
    pub(super) request_digest: Option<String>,
}

impl StartOptions {
    pub(super) fn of(request: &Request, instance_id: &InstanceId) -> Result<Self, Error> {
        let idempotency_key = match request.headers().get(IDEMPOTENCY_KEY) {
            None => None,
            Some(raw) => {
                let raw = raw.to_str().map_err(|_| InvalidIdempotencyKey)?;
                Some(IdempotencyKey::parse(raw, instance_id.key().as_str())?)
            }
        };
        Ok(Self {
            on_conflict: query_param(request, ConflictPolicy::NAME).map(|v| ConflictPolicy::parse(&v)).transpose()?,
            reuse: query_param(request, ReusePolicy::NAME).map(|v| ReusePolicy::parse(&v)).transpose()?,
            idempotency_key,
            reason: reason_of(request)?,
            request_digest: None,
        })
    }

    pub(super) fn policy(&self, function: &Function) -> StartPolicy {
        StartPolicy {
            on_conflict: self.on_conflict.unwrap_or(function.on_conflict),
            reuse: self.reuse.unwrap_or(function.reuse),
            idempotency_key: self.idempotency_key.clone(),
        }
    }
}
