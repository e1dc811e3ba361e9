//! What a start is asked and what it answers.

use crate::domain::{ExecutionArn, InstanceId, Millis, StartPolicy, StateMachineArn};

/// A start of one instance: what to start, with what, and how.
#[derive(Debug, Clone, Copy)]
pub struct StartRequest<'a> {
    /// The instance.
    pub instance_id: &'a InstanceId,
    /// The function it runs.
    pub function_name: &'a str,
    /// The function's state machine.
    pub state_machine: &'a StateMachineArn,
    /// JSON text.
    pub input: &'a str,
    /// The request's policies.
    pub policy: &'a StartPolicy,
    /// The stop cause when `terminateExisting` stops a running execution.
    pub reason: Option<&'a str>,
    /// What the idempotency key's request asked for, when not the function
    /// and input (a restart's come from the record, which may change).
    pub request_digest: Option<&'a str>,
    /// At least this long an idempotency key holds (a schedule's occurrences
    /// can be redelivered for hours), whatever the configured window.
    pub min_key_window_millis: Millis,
}

/// What a start did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new execution.
    Started,
    /// A new execution, after stopping this one (`terminateExisting`).
    Replaced {
        /// The execution it stopped.
        terminated: ExecutionArn,
    },
    /// None: the request's idempotency key started the current one.
    Replayed,
    /// None: the running one answers (`useExisting`).
    Existing,
}

/// What a start answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The execution the answer names: the new one, the running one
    /// (`useExisting`), or the one the request's idempotency key started.
    pub execution_arn: ExecutionArn,
    /// What the start did.
    pub outcome: StartOutcome,
}
