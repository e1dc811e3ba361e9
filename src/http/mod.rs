//! The Durable-style HTTP API on `lambda_http`: routing, payloads, and the
//! one place that maps errors to status codes.

use crate::config::{Config, Function};
use crate::domain::policy::{ConflictPolicy, IdempotencyKey, InvalidIdempotencyKey, ReusePolicy, StartPolicy};
use crate::domain::{InstanceId, Record, Status, StoredInput, time::rfc3339};
use crate::error::Error;
use crate::ports::{Engine, EngineError, InstanceStore, StoreError};
use crate::service::{Singleton, StartOutcome, StartRequest, Started};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::json;
use tracing::Instrument;

/// Step Functions' limit on execution input.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Unreserved characters stay; everything else in an ID is encoded in links.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The HTTP Lambda's state: built once per cold start, borrowed by every request.
pub struct App<S, E> {
    pub service: Singleton<S, E>,
    pub config: Config,
}

enum Route {
    Start { function_name: String, instance_id: String },
    Instance { instance_id: String },
    Terminate { instance_id: String },
    Restart { instance_id: String },
}

/// Handles one request; never fails (errors become responses).
pub async fn handle<S: InstanceStore, E: Engine>(app: &App<S, E>, request: Request) -> Response<Body> {
    let span = tracing::info_span!("request", method = %request.method(), instance_id = tracing::field::Empty);
    async {
        let result = route(app, &request).await;
        result.unwrap_or_else(|error| error_response(&error, app.config.retry_after_secs))
    }
    .instrument(span)
    .await
}

fn stage(request: &Request) -> Option<String> {
    let stage = match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.stage.clone(),
        RequestContext::ApiGatewayV1(context) => context.stage.clone(),
        _ => None,
    }?;
    (stage != "$default" && !stage.is_empty()).then_some(stage)
}

/// The path's segments after the stage, each percent-decoded exactly once.
///
/// Event sources disagree: HTTP APIs (payload 2.0) hand `rawPath` already
/// decoded (a decoded `%` would be decoded again, a `#` or `?` cuts it) and
/// their `pathParameters` decoded; REST APIs hand both still encoded; function
/// URLs have no path parameters and an encoded `rawPath`. So: the route
/// template's parameters where API Gateway matched one, else the raw path.
fn segments(request: &Request, stage: Option<&str>) -> Result<Vec<String>, Error> {
    let decode = |segment: &str| {
        percent_decode_str(segment)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| Error::NoRoute(format!("{segment} (not UTF-8 once percent-decoded)")))
    };
    let template = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.route_key.as_deref().and_then(|key| key.split_once(' ')).map(|(_, path)| (path, false))
        }
        Some(RequestContext::ApiGatewayV1(context)) => context.resource_path.as_deref().map(|path| (path, true)),
        _ => None,
    };
    // A greedy `{proxy+}` parameter holds several segments: read the raw path instead.
    if let (Some((template, encoded)), Some(parameters)) = (template, request.path_parameters_ref())
        && template.contains('{')
        && !template.contains("+}")
    {
        return template
            .trim_start_matches('/')
            .split('/')
            .map(|part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    let value = parameters.first(name).ok_or_else(|| Error::NoRoute(template.to_owned()))?;
                    if encoded { decode(value) } else { Ok(value.to_owned()) }
                }
                None => Ok(part.to_owned()),
            })
            .collect();
    }
    // The path as the event gave it (lambda_http's URI drops dot segments and cuts at `#`).
    let raw = request.raw_http_path();
    let mut path = if raw.is_empty() { request.uri().path() } else { raw };
    if let Some(stage) = stage {
        let prefix = format!("/{stage}");
        if let Some(rest) = path.strip_prefix(&prefix).filter(|rest| rest.is_empty() || rest.starts_with('/')) {
            path = rest;
        }
    }
    path.trim_start_matches('/').split('/').map(decode).collect()
}

async fn route<S: InstanceStore, E: Engine>(app: &App<S, E>, request: &Request) -> Result<Response<Body>, Error> {
    let stage = stage(request);
    let segments = segments(request, stage.as_deref())?;
    let route = match segments.as_slice() {
        [first, function_name, instance_id] if first == "orchestrators" => {
            Route::Start { function_name: function_name.clone(), instance_id: instance_id.clone() }
        }
        [first, instance_id] if first == "instances" => Route::Instance { instance_id: instance_id.clone() },
        [first, instance_id, action] if first == "instances" && action == "terminate" => {
            Route::Terminate { instance_id: instance_id.clone() }
        }
        [first, instance_id, action] if first == "instances" && action == "restart" => {
            Route::Restart { instance_id: instance_id.clone() }
        }
        _ => return Err(Error::NoRoute(request.uri().path().to_owned())),
    };
    let links = Links::new(app, request, stage.as_deref());
    let method = request.method();
    match route {
        Route::Start { function_name, instance_id } => {
            allow(method, &[Method::POST], "POST")?;
            tracing::Span::current().record("instance_id", instance_id.as_str());
            start(app, request, &function_name, &instance_id, &links).await
        }
        Route::Instance { instance_id } => {
            allow(method, &[Method::GET, Method::DELETE], "GET, DELETE")?;
            tracing::Span::current().record("instance_id", instance_id.as_str());
            let instance_id = InstanceId::parse(&instance_id)?;
            if method == Method::GET { status(app, &instance_id).await } else { purge(app, &instance_id).await }
        }
        Route::Terminate { instance_id } => {
            allow(method, &[Method::POST], "POST")?;
            tracing::Span::current().record("instance_id", instance_id.as_str());
            terminate(app, request, &InstanceId::parse(&instance_id)?).await
        }
        Route::Restart { instance_id } => {
            allow(method, &[Method::POST], "POST")?;
            tracing::Span::current().record("instance_id", instance_id.as_str());
            restart(app, request, &InstanceId::parse(&instance_id)?, &links).await
        }
    }
}

fn allow(method: &Method, allowed: &[Method], names: &'static str) -> Result<(), Error> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(Error::MethodNotAllowed { method: method.to_string(), allowed: names })
    }
}

/// The request body as orchestration input: JSON text, `null` when empty.
fn input_of(request: &Request) -> Result<String, Error> {
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
        let content_type = content_type.to_str().unwrap_or("").to_ascii_lowercase();
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !(media_type == "application/json" || media_type.ends_with("+json")) {
            return Err(Error::UnsupportedMediaType(content_type));
        }
    }
    let body: &[u8] = request.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
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
fn query_param(request: &Request, name: &str) -> Option<String> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

/// What a start request asks for beyond its route, validated before any AWS
/// call: `?onConflict=` and `?reuse=` (over the function's defaults),
/// `?reason=`, and the `Idempotency-Key` header.
struct StartOptions {
    on_conflict: Option<ConflictPolicy>,
    reuse: Option<ReusePolicy>,
    idempotency_key: Option<IdempotencyKey>,
    reason: Option<String>,
    /// What the key stands for, when not the function and input (a restart).
    request_digest: Option<String>,
}

impl StartOptions {
    fn of(request: &Request, instance_id: &InstanceId) -> Result<Self, Error> {
        let idempotency_key = match request.headers().get(IDEMPOTENCY_KEY) {
            None => None,
            Some(raw) => {
                let raw = raw.to_str().map_err(|_| InvalidIdempotencyKey)?;
                Some(IdempotencyKey::parse(raw, instance_id.key().as_str())?)
            }
        };
        Ok(Self {
            on_conflict: query_param(request, ConflictPolicy::NAME).map(|v| v.parse()).transpose()?,
            reuse: query_param(request, ReusePolicy::NAME).map(|v| v.parse()).transpose()?,
            idempotency_key,
            reason: reason_of(request)?,
            request_digest: None,
        })
    }

    fn policy(&self, function: &Function) -> StartPolicy {
        StartPolicy {
            on_conflict: self.on_conflict.unwrap_or(function.on_conflict),
            reuse: self.reuse.unwrap_or(function.reuse),
            idempotency_key: self.idempotency_key.clone(),
        }
    }
}

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Marks an answer replayed for its `Idempotency-Key`.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

async fn start<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
    function_name: &str,
    raw_id: &str,
    links: &Links,
) -> Result<Response<Body>, Error> {
    let instance_id = InstanceId::parse(raw_id)?;
    configured(app, function_name)?;
    let input = input_of(request)?;
    let options = StartOptions::of(request, &instance_id)?;
    start_with(app, links, &instance_id, function_name, &input, &options).await
}

fn configured<'a, S, E>(app: &'a App<S, E>, function_name: &str) -> Result<&'a Function, Error> {
    app.config.function(function_name).ok_or_else(|| Error::UnknownFunction {
        name: function_name.to_owned(),
        configured: app.config.function_names(),
    })
}

/// Starts `function_name` for the instance under the request's policies, and answers.
async fn start_with<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    links: &Links,
    instance_id: &InstanceId,
    function_name: &str,
    input: &str,
    options: &StartOptions,
) -> Result<Response<Body>, Error> {
    let function = configured(app, function_name)?;
    let policy = options.policy(function);
    let started = app
        .service
        .start(StartRequest {
            instance_id,
            function_name,
            state_machine: &function.state_machine,
            input,
            policy: &policy,
            reason: options.reason.as_deref(),
            request_digest: options.request_digest.as_deref(),
            min_key_window_millis: 0,
        })
        .await?;
    Ok(started_response(app, links, instance_id, &started))
}

/// The answer to a start: Durable's check-status payload.
fn started_response<S, E>(
    app: &App<S, E>,
    links: &Links,
    instance_id: &InstanceId,
    started: &Started,
) -> Response<Body> {
    tracing::info!(execution_arn = %started.execution_arn, outcome = ?started.outcome, "start answered");
    let mut body = links.check_status(instance_id, &started.execution_arn);
    body["startedByThisRequest"] = json!(started.outcome != StartOutcome::Existing);
    if let StartOutcome::Replaced { terminated } = &started.outcome {
        body["terminatedExecutionArn"] = json!(terminated);
    }
    let code = if started.outcome == StartOutcome::Existing { StatusCode::OK } else { StatusCode::ACCEPTED };
    let mut response = json_response(code, &body);
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&links.status(instance_id)) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from(app.config.retry_after_secs));
    if started.outcome == StartOutcome::Replayed {
        // The answer of the key's first request, replayed (Stripe's name for the mark).
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Starts an instance again with its last input, under its function's policies.
async fn restart<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
    instance_id: &InstanceId,
    links: &Links,
) -> Result<Response<Body>, Error> {
    let mut options = StartOptions::of(request, instance_id)?;
    // A restart's function and input come from the record, which may change: its key
    // stands for "restart this instance", checked before the record is read.
    let digest = IdempotencyKey::request_digest("(restart)", "");
    if let Some(key) = &options.idempotency_key
        && let Some(replayed) = app.service.replayed(instance_id, key, &digest).await?
    {
        return Ok(started_response(app, links, instance_id, &replayed));
    }
    options.request_digest = Some(digest);
    let (last, input) =
        app.service.last_run(instance_id).await?.ok_or_else(|| Error::InstanceNotFound(instance_id.to_string()))?;
    start_with(app, links, instance_id, &last.function_name, &input, &options).await
}

async fn status<S: InstanceStore, E: Engine>(app: &App<S, E>, id: &InstanceId) -> Result<Response<Body>, Error> {
    let record = app.service.status(id).await?.ok_or_else(|| Error::InstanceNotFound(id.to_string()))?;
    let code = if record.status.is_terminal() { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok(json_response(code, &status_body(&record)))
}

/// A stop's cause travels in the URL, which API Gateway limits (10 KiB with
/// the headers), so well under Step Functions' 32768 characters.
pub const MAX_REASON_CHARS: usize = 1024;

/// `?reason=`, the cause of a stop (terminate, terminateExisting).
fn reason_of(request: &Request) -> Result<Option<String>, Error> {
    let Some(reason) = query_param(request, "reason").filter(|reason| !reason.is_empty()) else {
        return Ok(None);
    };
    match reason.chars().count() {
        chars if chars > MAX_REASON_CHARS => Err(Error::ReasonTooLong(chars)),
        _ => Ok(Some(reason)),
    }
}

async fn terminate<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
    id: &InstanceId,
) -> Result<Response<Body>, Error> {
    let reason = reason_of(request)?.unwrap_or_else(|| "terminated through the API".to_owned());
    let record = app.service.terminate(id, &reason).await?;
    tracing::info!(execution_arn = %record.execution_arn, "terminated");
    Ok(json_response(StatusCode::ACCEPTED, &status_body(&record)))
}

async fn purge<S: InstanceStore, E: Engine>(app: &App<S, E>, id: &InstanceId) -> Result<Response<Body>, Error> {
    app.service.purge(id).await?;
    tracing::info!("purged");
    Ok(json_response(StatusCode::OK, &json!({ "instancesDeleted": 1 })))
}

/// Durable's runtime status names.
pub fn runtime_status(status: Status) -> &'static str {
    match status {
        Status::Starting => "Pending",
        Status::Running => "Running",
        Status::Succeeded => "Completed",
        // Durable has no "timed out" nor "never started": both are failures there.
        Status::Failed | Status::TimedOut | Status::StartFailed => "Failed",
        Status::Aborted => "Terminated",
    }
}

/// Stored JSON text as JSON, or as a string if it is not JSON.
fn json_value(text: Option<&str>) -> serde_json::Value {
    text.map_or(serde_json::Value::Null, |text| {
        serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
    })
}

fn status_body(record: &Record) -> serde_json::Value {
    let input = match &record.input {
        Some(StoredInput::Inline(text)) => json_value(Some(text)),
        Some(StoredInput::Digest { sha256, bytes }) => json!({ "truncated": true, "sha256": sha256, "bytes": bytes }),
        None => serde_json::Value::Null,
    };
    json!({
        "instanceId": record.instance_id,
        "name": record.function_name,
        "runtimeStatus": runtime_status(record.status),
        "status": record.status.as_str(),
        "input": input,
        "output": json_value(record.output.as_deref()),
        "error": record.error,
        "cause": record.cause,
        "createdTime": rfc3339(record.created_at),
        "lastUpdatedTime": rfc3339(record.updated_at),
        "executionArn": record.execution_arn,
        "executionName": record.execution_name,
    })
}

/// URLs of an instance's endpoints, from the configured base or the request's host and stage.
struct Links {
    base: String,
}

impl Links {
    fn new<S, E>(app: &App<S, E>, request: &Request, stage: Option<&str>) -> Self {
        let base = app.config.public_base_url.clone().unwrap_or_else(|| {
            let uri = request.uri();
            let origin = match (uri.scheme_str(), uri.authority()) {
                (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
                _ => String::new(),
            };
            let stage = stage.map(|stage| format!("/{stage}")).unwrap_or_default();
            format!("{origin}{stage}")
        });
        Self { base }
    }

    fn status(&self, id: &InstanceId) -> String {
        format!("{}/instances/{}", self.base, utf8_percent_encode(id.as_str(), PATH_SEGMENT))
    }

    fn check_status(&self, id: &InstanceId, execution_arn: &str) -> serde_json::Value {
        let status = self.status(id);
        json!({
            "id": id.as_str(),
            "statusQueryGetUri": status,
            "terminatePostUri": format!("{status}/terminate?reason={{text}}"),
            "purgeHistoryDeleteUri": status,
            "restartPostUri": format!("{status}/restart"),
            "executionArn": execution_arn,
        })
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
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
    match error {
        Error::StartRefused(e) | Error::Engine(e) => engine(e),
        Error::Store(StoreError::Throttled(_)) => "DynamoDB is throttling requests; retry later".to_owned(),
        Error::Store(StoreError::Unavailable(_)) => "DynamoDB did not answer; retry later".to_owned(),
        Error::Store(StoreError::Failed(_) | StoreError::Corrupt(_)) => {
            "the instance store failed; the service's log has the cause".to_owned()
        }
        Error::StartUnconfirmed { instance_id, .. } => format!(
            "the start of instance {instance_id:?} could not be confirmed; it is checked again once its lease ends"
        ),
        Error::Misconfigured(_) => {
            "starts are refused: a configured state machine is missing or not a Standard workflow; the service's \
             log names it"
                .to_owned()
        }
        other => other.to_string(),
    }
}

/// The one mapping from errors to HTTP answers.
pub fn error_response(error: &Error, retry_after_secs: u32) -> Response<Body> {
    let (status, code, retry) = match error {
        Error::InvalidInstanceId(_) => (StatusCode::BAD_REQUEST, "InvalidInstanceId", false),
        Error::InvalidJson(_) => (StatusCode::BAD_REQUEST, "InvalidJson", false),
        Error::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "BodyTooLarge", false),
        Error::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", false),
        Error::UnknownFunction { .. } => (StatusCode::NOT_FOUND, "UnknownFunction", false),
        Error::NoRoute(_) => (StatusCode::NOT_FOUND, "NoRoute", false),
        Error::InstanceNotFound(_) => (StatusCode::NOT_FOUND, "InstanceNotFound", false),
        Error::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", false),
        Error::AlreadyExists(_) => (StatusCode::CONFLICT, "InstanceAlreadyExists", false),
        Error::AlreadyTerminal { .. } => (StatusCode::GONE, "AlreadyTerminal", false),
        Error::ReuseForbidden { .. } => (StatusCode::CONFLICT, "ReuseForbidden", false),
        Error::InvalidPolicy(_) => (StatusCode::BAD_REQUEST, "InvalidPolicy", false),
        Error::InvalidIdempotencyKey(_) => (StatusCode::BAD_REQUEST, "InvalidIdempotencyKey", false),
        Error::IdempotencyKeyReused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "IdempotencyKeyReused", false),
        Error::InputUnavailable(_) => (StatusCode::GONE, "InputUnavailable", false),
        Error::StillStarting(_) => (StatusCode::CONFLICT, "StillStarting", true),
        Error::StillRunning(_) => (StatusCode::CONFLICT, "StillRunning", false),
        Error::ReasonTooLong(_) => (StatusCode::BAD_REQUEST, "ReasonTooLong", false),
        Error::StartRefused(refusal) | Error::Engine(refusal) => match refusal {
            EngineError::Refused { caller_fault: true, .. } => (StatusCode::BAD_REQUEST, "StartRefused", false),
            EngineError::Refused { .. } | EngineError::ExecutionAlreadyExists => {
                (StatusCode::BAD_GATEWAY, "StartRefused", false)
            }
            EngineError::Throttled { .. } => (StatusCode::SERVICE_UNAVAILABLE, "Throttled", true),
            EngineError::Ambiguous(_) => (StatusCode::SERVICE_UNAVAILABLE, "StepFunctionsUnavailable", true),
        },
        Error::StartUnconfirmed { .. } => (StatusCode::SERVICE_UNAVAILABLE, "StartUnconfirmed", true),
        Error::Contention(_) => (StatusCode::SERVICE_UNAVAILABLE, "Contention", true),
        Error::Store(StoreError::Throttled(_)) => (StatusCode::SERVICE_UNAVAILABLE, "Throttled", true),
        Error::Store(StoreError::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, "StoreUnavailable", true),
        Error::InvalidSchedule(_) => (StatusCode::BAD_REQUEST, "InvalidSchedule", false),
        Error::Misconfigured(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Misconfigured", false),
        Error::Store(StoreError::Failed(_) | StoreError::Corrupt(_)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "StoreFailed", false)
        }
    };
    if status.is_server_error() {
        tracing::error!(%error, code, "request failed");
    } else {
        tracing::info!(%error, code, "request refused");
    }
    let mut response = if let Error::AlreadyExists(_) = error {
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
