//! sfn-singleton: start an AWS Step Functions execution for an instance ID
//! only when no execution for that ID is still running — decided by one
//! conditional DynamoDB write, so concurrent starts cannot race.
//!
//! # Layout
//!
//! Dependencies point one way: each module uses only modules listed before it
//! (`infra/checks/imports.py` checks that none imports one that imports it back).
//!
//! - [`domain`], [`ports`], [`service`], [`memory`]: re-exported from the
//!   `sfn-singleton-core` crate (`core/`), which has no AWS or Lambda
//!   dependency; built at opt-level 3 in the dev profile for the model check.
//! - [`domain`]: the pure rules — instance IDs and keys, execution names, the
//!   record and its statuses, start policies and the decisions they make, the
//!   launch verdict, lists and their tokens, rewinds, history pages, limits and
//!   timings. No I/O, no AWS types.
//! - [`ports`]: the two traits the service talks to — [`ports::InstanceStore`]
//!   (where records and idempotency keys live) and [`ports::Engine`] (what runs
//!   executions) — and the conditions and errors they speak in.
//! - [`service`]: the singleton operations on the ports, one file per
//!   operation (start, keys, launch, replace, reconcile, terminate, purge,
//!   bulk purge, list, history, rewind, events), with their own [`service::Error`].
//! - [`memory`]: in-memory ports with the store's real condition semantics and
//!   engine calls scriptable one at a time, for the service's unit tests, the
//!   benchmark's handler timing and the integration tests' engine wrapper.
//! - [`aws`]: the ports on DynamoDB and Step Functions; with [`startup`], which
//!   builds the SDK clients, the only code that names `aws_sdk_*` types.
//! - [`config`]: the environment, validated once per cold start.
//! - [`startup`]: the wiring — SDK clients, adapters and service, once per cold start.
//! - [`sqs`]: SQS batches, each record handled at once and reported alone.
//! - The four entry points, each with its own error type wrapping
//!   [`service::Error`]: [`http`] (the Durable-style HTTP API, one file per
//!   route, the one mapping of errors to status codes), [`schedule`]
//!   (EventBridge Scheduler's starts), [`events`] (Step Functions status
//!   events, in SQS batches) and [`waits`] (state machines' waits for events,
//!   in SQS batches).
//! - [`lambda`]: each Lambda's runtime loop (startup, metrics, an entry point),
//!   chosen by the function's handler name (`_HANDLER`).
//! - `src/bin/bootstrap.rs`: the one binary all four Lambdas run.
#![warn(missing_docs)]
// The start path's futures nest deeper than rustc's default layout limit in release builds.
#![recursion_limit = "256"]

pub mod aws;
pub mod config;
pub mod events;
pub mod http;
pub mod lambda;
pub mod schedule;
pub mod sqs;
pub mod startup;
pub mod waits;

// The rules and operations live in their own crate (built optimised for the model check).
pub use sfn_singleton_core::{domain, memory, ports, service};
