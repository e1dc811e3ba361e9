//! The engine port: what runs executions (Step Functions).

use crate::domain::history::HistoryEvent;
use crate::domain::{ExecutionArn, ExecutionName, Millis, StateMachineArn, Status};
use std::future::Future;

/// Step Functions' two kinds of state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowType {
    /// Standard: exactly-once, status events, idempotent StartExecution.
    Standard,
    /// No status events, no idempotent StartExecution: unusable for singletons.
    Express,
}

/// What Step Functions says about an execution (from DescribeExecution or an event).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExecutionState {
    /// `Running` or a terminal execution status (never `Starting`/`StartFailed`).
    pub status: Status,
    /// How often it was redriven.
    pub redrive_count: u32,
    /// When it stopped (epoch milliseconds).
    pub stop_date: Option<Millis>,
    /// Its output (JSON text).
    pub output: Option<String>,
    /// Its error.
    pub error: Option<String>,
    /// Its cause.
    pub cause: Option<String>,
    /// The execution's input (DescribeExecution and events carry it; records keep it bounded).
    pub input: Option<String>,
}

impl ExecutionState {
    /// What a terminate records after stopping an execution: `aborted`, unless
    /// Step Functions says it had just ended on its own (stopping it changed nothing).
    pub fn after_stop(described: Option<Self>, aborted: Self) -> Self {
        match described {
            Some(ended) if ended.status.is_terminal() && ended.status != Status::Aborted => ended,
            _ => aborted,
        }
    }

    /// Cut to what a record keeps (see `record::MAX_STORED_*`).
    pub fn bounded(self) -> Self {
        use crate::domain::record::{MAX_STORED_CAUSE_BYTES, MAX_STORED_ERROR_BYTES, MAX_STORED_OUTPUT_BYTES, bounded};
        Self {
            output: self.output.map(|s| bounded(s, MAX_STORED_OUTPUT_BYTES)),
            error: self.error.map(|s| bounded(s, MAX_STORED_ERROR_BYTES)),
            cause: self.cause.map(|s| bounded(s, MAX_STORED_CAUSE_BYTES)),
            input: None,
            ..self
        }
    }
}

/// What one GetExecutionHistory call read: events in order, and Step Functions' token for more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryChunk {
    /// The events read.
    pub events: Vec<HistoryEvent>,
    /// Where Step Functions goes on, if it has more.
    pub next_token: Option<String>,
}

/// How a Step Functions call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The request was refused and nothing was started.
    #[error("Step Functions refused the request ({code}): {message}")]
    Refused {
        /// Step Functions' error code.
        code: String,
        /// Its message.
        message: String,
        /// About the request's own input (a client error), not the service's setup.
        caller_fault: bool,
    },
    /// An execution with this name exists already (for a retried start of
    /// ours: it did start).
    #[error("an execution with this name already exists")]
    ExecutionAlreadyExists,
    /// Throttled or over a limit; nothing was started, retrying later helps.
    #[error("Step Functions is throttling requests ({code}): {message}")]
    Throttled {
        /// Step Functions' error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// No answer (timeout, connection lost, 5xx): the request may or may not have taken effect.
    #[error("Step Functions did not answer: {0}")]
    Ambiguous(String),
}

/// Step Functions' answer to a task token's completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskAnswer {
    /// The waiting task took it.
    Taken,
    /// No task waits on the token (any more): it was completed, timed out, or
    /// its execution ended (`TaskTimedOut`, `TaskDoesNotExist`, `InvalidToken`).
    Closed,
}

/// What runs executions: Step Functions, or [`crate::memory::MemoryEngine`].
pub trait Engine: Send + Sync {
    /// One StartExecution attempt, never retried below the port: the service
    /// retries it itself, knowing what each attempt did. Same name and input
    /// again is idempotent while the execution runs (Standard workflows).
    fn start(
        &self,
        state_machine: &StateMachineArn,
        name: &ExecutionName,
        input: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// StopExecution; `None` when no such execution exists.
    fn stop(
        &self,
        execution_arn: &ExecutionArn,
        error: &str,
        cause: &str,
    ) -> impl Future<Output = Result<Option<Millis>, EngineError>> + Send;

    /// DescribeStateMachine's type; `None` when no such state machine exists.
    fn workflow_type(
        &self,
        state_machine: &StateMachineArn,
    ) -> impl Future<Output = Result<Option<WorkflowType>, EngineError>> + Send;

    /// One RedriveExecution attempt, never retried below the port. The same
    /// `client_token` again is idempotent for 15 minutes once it redrove it.
    fn redrive(
        &self,
        execution_arn: &ExecutionArn,
        client_token: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// One GetExecutionHistory call (at most `max_results` events, from `page_token`;
    /// inputs and outputs only with `include_data`); `None` when no such execution exists.
    fn history(
        &self,
        execution_arn: &ExecutionArn,
        page_token: Option<&str>,
        max_results: usize,
        include_data: bool,
    ) -> impl Future<Output = Result<Option<HistoryChunk>, EngineError>> + Send;

    /// One SendTaskSuccess attempt, never retried below the port (an attempt
    /// whose answer was lost makes a later `Closed` ambiguous: the service knows).
    fn send_task_success(
        &self,
        token: &str,
        output: &str,
    ) -> impl Future<Output = Result<TaskAnswer, EngineError>> + Send;

    /// One SendTaskFailure attempt, never retried below the port.
    fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> impl Future<Output = Result<TaskAnswer, EngineError>> + Send;

    /// DescribeExecution; `None` when no such execution exists.
    fn describe(
        &self,
        execution_arn: &ExecutionArn,
    ) -> impl Future<Output = Result<Option<ExecutionState>, EngineError>> + Send;
}
