//! The Lambdas. One binary serves all four; each function's role is the
//! handler name it is configured with (the template's `Handler`), which Lambda
//! hands a custom runtime as `_HANDLER`: one build, one zip, one artifact.

use crate::config::Config;
use crate::{events, http, schedule, sqs, startup, waits};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::convert::Infallible;
use std::time::SystemTime;

/// The variable Lambda sets to the function's configured handler.
pub const HANDLER: &str = "_HANDLER";

/// What a function process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `http`: the Durable-style HTTP API (API Gateway, function URLs).
    Http,
    /// `status_events`: Step Functions status events from EventBridge, through SQS.
    StatusEvents,
    /// `scheduled`: EventBridge Scheduler's starts.
    Scheduled,
    /// `event_waits`: state machines' waits for events, through SQS.
    EventWaits,
}

/// `_HANDLER` names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{HANDLER} is {0:?}; a function's handler must be http, status_events, scheduled or event_waits")]
pub struct UnknownHandler(pub String);

impl Role {
    /// The role a handler name names.
    pub fn parse(handler: &str) -> Result<Self, UnknownHandler> {
        match handler {
            "http" => Ok(Role::Http),
            "status_events" => Ok(Role::StatusEvents),
            "scheduled" => Ok(Role::Scheduled),
            "event_waits" => Ok(Role::EventWaits),
            other => Err(UnknownHandler(other.to_owned())),
        }
    }

    /// The role `_HANDLER` names.
    pub fn from_env() -> Result<Self, UnknownHandler> {
        Self::parse(&std::env::var(HANDLER).unwrap_or_default())
    }
}

/// Sets up the process's logging as Lambda's advanced logging controls say:
/// the level from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG` (a level), else
/// INFO; JSON lines when `AWS_LAMBDA_LOG_FORMAT` is `JSON`. As
/// `lambda_runtime`'s default subscriber, without its per-target directive
/// filter: its regular-expression engine was 140 KB of the 3 MB zip.
pub fn init_logging() {
    use lambda_runtime::tracing::subscriber::{self, filter::LevelFilter};
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG"));
    let level = level.ok().and_then(|level| level.parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::INFO);
    let logs = subscriber::fmt().with_target(false).without_time().with_max_level(level);
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        logs.init();
    }
}

/// Runs the role's Lambda until the runtime stops (the process's logging is set up).
pub async fn run(role: Role) -> Result<(), Error> {
    match role {
        Role::Http => http_api().await,
        Role::StatusEvents | Role::EventWaits => sqs_fed(role).await,
        Role::Scheduled => scheduled().await,
    }
}

fn config(read: fn() -> Result<Config, crate::config::ConfigError>) -> Result<Config, Error> {
    Ok(read().inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?)
}

async fn http_api() -> Result<(), Error> {
    let config = config(Config::from_env)?;
    if std::env::var_os(crate::config::PAGE_TOKEN_KEY).is_none() {
        tracing::warn!(
            "{} is not set: list tokens are signed with a key of this process only",
            crate::config::PAGE_TOKEN_KEY
        );
    }
    let app = http::App { service: startup::singleton(&config, true).await, config };
    let app = &app;
    let handler = service_fn(move |request| async move { Ok::<_, Infallible>(http::handle(app, request).await) });
    metrics_cloudwatch_embedded::lambda::service::run_http(startup::metrics()?, handler).await
}

/// The status and event-wait Lambdas: SQS batches, each record reported
/// alone; the event-wait Lambda's schedule too ([`waits::handle_invocation`]).
async fn sqs_fed(role: Role) -> Result<(), Error> {
    // Neither starts anything: a mistake in the functions' configuration must not stop them.
    let config = config(Config::from_env_without_functions)?;
    let service = startup::singleton(&config, false).await;
    let service = &service;
    let metrics = startup::metrics()?;
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |invocation: LambdaEvent<serde_json::Value>| async move {
            let budget = sqs::budget(invocation.context.deadline, SystemTime::now());
            // Failed records are reported in the answer; an error retries the whole batch.
            match role {
                Role::EventWaits => waits::handle_invocation(service, invocation.payload, budget).await,
                _ => sqs::answer(events::handle_batch(service, sqs::batch(invocation.payload)?, budget).await?),
            }
        }),
    )
    .await
}

async fn scheduled() -> Result<(), Error> {
    let config = config(Config::from_env)?;
    let service = startup::singleton(&config, true).await;
    let (service, config) = (&service, &config);
    let metrics = startup::metrics()?;
    // The payload raw: the input reaches Step Functions as written.
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |event: LambdaEvent<Box<serde_json::value::RawValue>>| async move {
            schedule::handle(service, config, event.payload.get()).await
        }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_handler_name_is_a_role_and_anything_else_is_named_in_the_error() {
        assert_eq!(Role::parse("http"), Ok(Role::Http));
        assert_eq!(Role::parse("status_events"), Ok(Role::StatusEvents));
        assert_eq!(Role::parse("scheduled"), Ok(Role::Scheduled));
        assert_eq!(Role::parse("event_waits"), Ok(Role::EventWaits));
        let unknown = Role::parse("bootstrap").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            unknown.contains("\"bootstrap\"") && unknown.contains("http, status_events, scheduled or event_waits"),
            "{unknown}"
        );
    }
}
