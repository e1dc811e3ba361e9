//! What a request carries besides its route: the body as orchestration
//! input, query parameters, and a start's options.

use super::error::Error;
use crate::config::Function;
use crate::domain::InstanceId;
use crate::domain::limits::{MAX_INPUT_BYTES, MAX_REASON_CHARS};
use crate::domain::listing::{InvalidFilter, InvalidToken, ListFilter, MAX_PAGE_SIZE, RuntimeStatus};
use crate::domain::mailbox::EventName;
use crate::domain::policy::{
    ConflictPolicy, IdempotencyKey, InvalidIdempotencyKey, InvalidPolicy, ReusePolicy, StartPolicy,
};
use crate::domain::time::parse_rfc3339;
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

/// `?reason=`: the cause of a stop (terminate, terminateExisting), or why a rewind (logged).
pub(super) fn reason_of(request: &Request) -> Result<Option<String>, Error> {
    let Some(reason) = query_param(request, "reason").filter(|reason| !reason.is_empty()) else {
        return Ok(None);
    };
    match reason.chars().count() {
        chars if chars > MAX_REASON_CHARS => Err(Error::ReasonTooLong(chars)),
        _ => Ok(Some(reason)),
    }
}

/// `?onConflict=` for signal-with-start (with `?eventName=`).
const SIGNAL: &str = "signal";
/// The event's name of a signal-with-start.
pub(super) const EVENT_NAME: &str = "eventName";
/// `?onConflict=`'s values on a start.
const ON_CONFLICT_ALLOWED: &str = "reject, useExisting, terminateExisting, signal (with eventName=)";

/// The `Idempotency-Key` header, if any: a retry with it is the same request.
pub(super) fn idempotency_key_of(request: &Request, instance_id: &InstanceId) -> Result<Option<IdempotencyKey>, Error> {
    let Some(raw) = request.headers().get(IDEMPOTENCY_KEY) else { return Ok(None) };
    let raw = raw.to_str().map_err(|_| InvalidIdempotencyKey)?;
    Ok(Some(IdempotencyKey::parse(raw, instance_id.key().as_str())?))
}

/// What a start request asks for beyond its route, validated before any AWS
/// call: `?onConflict=` and `?reuse=` (over the function's defaults),
/// `?reason=`, and the `Idempotency-Key` header.
pub(super) struct StartOptions {
    pub(super) on_conflict: Option<ConflictPolicy>,
    /// `?onConflict=signal&eventName=`: signal-with-start, the event's name.
    pub(super) signal: Option<EventName>,
    pub(super) reuse: Option<ReusePolicy>,
    pub(super) idempotency_key: Option<IdempotencyKey>,
    pub(super) reason: Option<String>,
    /// What the key stands for, when not the function and input (a restart).
    pub(super) request_digest: Option<String>,
}

impl StartOptions {
    pub(super) fn of(request: &Request, instance_id: &InstanceId) -> Result<Self, Error> {
        let idempotency_key = idempotency_key_of(request, instance_id)?;
        // Checked whenever given, used with onConflict=signal only.
        let event_name = query_param(request, EVENT_NAME).map(|name| EventName::parse(&name)).transpose()?;
        let (on_conflict, signal) = match query_param(request, ConflictPolicy::NAME) {
            Some(value) if value == SIGNAL => (None, Some(event_name.ok_or(Error::SignalWithoutEventName)?)),
            Some(value) => {
                let policy =
                    ConflictPolicy::parse(&value).map_err(|e| InvalidPolicy { allowed: ON_CONFLICT_ALLOWED, ..e })?;
                (Some(policy), None)
            }
            None => (None, None),
        };
        Ok(Self {
            on_conflict,
            signal,
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

/// The parameters a list (and a bulk purge) accepts.
const LIST_PARAMETERS: &str =
    "runtimeStatus, functionName, createdTimeFrom, createdTimeTo, instanceIdPrefix, top, continuationToken, showInput";

/// The header Durable's clients carry a continuation token in (also accepted as `?continuationToken=`).
pub const CONTINUATION_TOKEN: &str = "x-ms-continuation-token";

/// A list's request: its filter, page size and continuation token, validated before any AWS call.
pub(super) struct ListRequest {
    pub(super) filter: ListFilter,
    /// The page size asked for (a list's default is [`DEFAULT_PAGE_SIZE`]).
    pub(super) top: Option<usize>,
    pub(super) token: Option<String>,
}

impl ListRequest {
    pub(super) fn of(request: &Request) -> Result<Self, Error> {
        let invalid = |parameter: &'static str, accepts: &'static str, value: &str| InvalidFilter {
            parameter,
            accepts,
            value: value.to_owned(),
        };
        let mut filter = ListFilter::default();
        let (mut top, mut token) = (None, None);
        let query = request.uri().query().unwrap_or("");
        let mut seen = std::collections::BTreeSet::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if name != "runtimeStatus" && !seen.insert(name.clone().into_owned()) {
                return Err(invalid(leak_name(&name), "one value", &value).into());
            }
            match name.as_ref() {
                "runtimeStatus" => {
                    for status in value.split(',') {
                        let status = RuntimeStatus::parse(status)?;
                        if !filter.runtime_statuses.contains(&status) {
                            filter.runtime_statuses.push(status);
                        }
                    }
                }
                "functionName" if !value.is_empty() && value.chars().count() <= 80 => {
                    filter.function_name = Some(value.into_owned());
                }
                "functionName" => {
                    return Err(invalid("functionName", "a function name (1-80 characters)", &value).into());
                }
                "createdTimeFrom" | "createdTimeTo" => {
                    let (parameter, bound) = match name.as_ref() {
                        "createdTimeFrom" => ("createdTimeFrom", &mut filter.created_from),
                        _ => ("createdTimeTo", &mut filter.created_to),
                    };
                    let time = parse_rfc3339(&value)
                        .ok_or_else(|| invalid(parameter, "an RFC 3339 time, e.g. 2026-11-25T14:22:02Z", &value))?;
                    *bound = Some(time);
                }
                "instanceIdPrefix" if !value.is_empty() && value.chars().count() <= 256 => {
                    filter.instance_id_prefix = Some(value.into_owned());
                }
                "instanceIdPrefix" => {
                    return Err(
                        invalid("instanceIdPrefix", "the start of an instance ID (1-256 characters)", &value).into()
                    );
                }
                "top" => {
                    let accepts = "a page size from 1 to 1000";
                    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                    let parsed = value.parse::<usize>().ok().filter(|top| digits && (1..=MAX_PAGE_SIZE).contains(top));
                    top = Some(parsed.ok_or_else(|| invalid("top", accepts, &value))?);
                }
                "continuationToken" => token = Some(value.into_owned()),
                // Durable's flag: lists never carry inputs here (the index does not hold them).
                "showInput" if value == "false" => {}
                "showInput" => {
                    return Err(invalid(
                        "showInput",
                        "false (lists carry no inputs; read the instance for its input)",
                        &value,
                    )
                    .into());
                }
                _ => return Err(invalid("(parameter name)", LIST_PARAMETERS, &name).into()),
            }
        }
        if let Some(header) = request.headers().get(CONTINUATION_TOKEN) {
            let header = header.to_str().map_err(|_| InvalidToken::Tampered)?;
            if token.as_deref().is_some_and(|token| token != header) {
                return Err(invalid(
                    "continuationToken",
                    "the same token as the x-ms-continuation-token header",
                    header,
                )
                .into());
            }
            token = Some(header.to_owned());
        }
        Ok(Self { filter, top, token: token.filter(|token| !token.is_empty()) })
    }
}

/// The parameters a status read accepts.
const STATUS_PARAMETERS: &str = "showInput, showHistory, showHistoryOutput, continuationToken";

/// A status read's flags (Durable's), and its history's continuation token.
pub(super) struct StatusRequest {
    pub(super) show_input: bool,
    pub(super) show_history: bool,
    pub(super) show_history_output: bool,
    pub(super) token: Option<String>,
}

impl StatusRequest {
    pub(super) fn of(request: &Request) -> Result<Self, Error> {
        let mut status = Self { show_input: true, show_history: false, show_history_output: false, token: None };
        let query = request.uri().query().unwrap_or("");
        let mut seen = std::collections::BTreeSet::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let parameter = STATUS_PARAMETERS.split(", ").find(|known| *known == name);
            let Some(parameter) = parameter.filter(|parameter| seen.insert(*parameter)) else {
                let accepts = if parameter.is_some() { "one value" } else { STATUS_PARAMETERS };
                return Err(InvalidFilter { parameter: "(parameter name)", accepts, value: name.into_owned() }.into());
            };
            // Durable parses these as .NET booleans: any case.
            let flag = || match value.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(InvalidFilter { parameter, accepts: "true or false", value: value.clone().into_owned() }),
            };
            match parameter {
                "showInput" => status.show_input = flag()?,
                "showHistory" => status.show_history = flag()?,
                "showHistoryOutput" => status.show_history_output = flag()?,
                _ => status.token = Some(value.into_owned()),
            }
        }
        if let Some(header) = request.headers().get(CONTINUATION_TOKEN) {
            status.token = Some(header.to_str().map_err(|_| InvalidToken::Tampered)?.to_owned());
        }
        status.token = status.token.filter(|token| !token.is_empty());
        if status.token.is_some() && !status.show_history {
            let accepts = "a history's token, with showHistory=true";
            return Err(InvalidFilter { parameter: "continuationToken", accepts, value: "(a token)".into() }.into());
        }
        Ok(status)
    }
}

/// How many instances a page holds unless `top` says otherwise.
pub(super) const DEFAULT_PAGE_SIZE: usize = 100;

/// A known parameter's name, for an error (unknown ones are named in the value).
fn leak_name(name: &str) -> &'static str {
    LIST_PARAMETERS.split(", ").find(|known| *known == name).unwrap_or("(parameter name)")
}
