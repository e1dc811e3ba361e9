//! The test kit of sfn-singleton's integration tests and benchmarks: each
//! test gets its own table and state machines on the emulator that
//! `scripts/test` starts, clients that log their calls and take faults
//! injected below the SDK, and helpers to call the HTTP API and deliver
//! status events.
//!
//! - `env`: a test's environment ([`TestEnv`]) and what it can read back.
//! - `calls`: the AWS calls its clients made ([`CallLog`]).
//! - `clock`: a clock the test moves ([`TestClock`]).
//! - `faults`: faults below the SDK's retries ([`Faults`]).
//! - `engine`: the emulator's Step Functions with calls scripted ([`ScriptedEngine`]).
//! - `http`: requests to the HTTP handler and their answers ([`Answer`]).
//! - `events`: status events in SQS batches ([`sqs_batch`], [`deliver_event`]).
//! - `racing`: a store whose list is followed by another request's claim ([`ClaimsAfterList`]).
//! - `runtime_api`: a function's real binary under a minimal Lambda Runtime API ([`invoke`]).
//! - `sqs`: the emulator's SQS queues, read as an event source mapping reads them ([`Queue`]).
//! - `emf`: CloudWatch embedded-metric documents in its log, checked ([`emf::metric_documents`]).

mod calls;
mod clock;
pub mod emf;
mod engine;
mod env;
mod events;
mod faults;
mod http;
mod racing;
mod runtime_api;
mod sqs;

pub use calls::CallLog;
pub use clock::TestClock;
pub use engine::ScriptedEngine;
pub use env::*;
pub use events::*;
pub use faults::{Fault, Faults};
pub use http::*;
pub use racing::ClaimsAfterList;
pub use runtime_api::{Invocation, invoke, invoke_configured, invoke_with};
pub use sqs::{Message, Queue, sqs_event};

use sfn_singleton::domain::{ExecutionArn, ExecutionName};

/// An execution ARN the test holds as text (an answer's JSON, say).
pub fn arn(text: &str) -> ExecutionArn {
    ExecutionArn::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// An execution name the test holds as text.
pub fn execution_name(text: &str) -> ExecutionName {
    ExecutionName::parse(text).unwrap_or_else(|e| panic!("{e}"))
}
