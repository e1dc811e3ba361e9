//! Step Functions in memory.

use super::lock::locked;
use super::script::{EngineOp, EngineScript, Scripted};
use crate::domain::history::HistoryEvent;
use crate::domain::{ExecutionArn, ExecutionName, Millis, StateMachineArn, Status};
use crate::ports::{Engine, EngineError, ExecutionState, HistoryChunk, TaskAnswer, WorkflowType};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct Execution {
    input: String,
    state: ExecutionState,
    /// The client tokens of the redrives that redrove it.
    redrive_tokens: Vec<String>,
    /// Its history, in order.
    history: Vec<HistoryEvent>,
}

impl ExecutionState {
    fn redriven(&mut self) {
        self.status = Status::Running;
        self.redrive_count += 1;
        self.stop_date = None;
        self.output = None;
        self.error = None;
        self.cause = None;
    }
}

impl Execution {
    fn running(input: &str) -> Self {
        let state = ExecutionState {
            status: Status::Running,
            redrive_count: 0,
            stop_date: None,
            output: None,
            error: None,
            cause: None,
            input: Some(input.to_owned()),
        };
        let mut execution = Self { input: input.to_owned(), state, redrive_tokens: Vec::new(), history: Vec::new() };
        execution.record("ExecutionStarted", None);
        execution
    }

    /// Appends an event of `event_type` (its input or output, error and cause from the state).
    fn record(&mut self, event_type: &str, name: Option<&str>) {
        let id = i64::try_from(self.history.len()).unwrap_or(i64::MAX) + 1;
        let state = &self.state;
        self.history.push(HistoryEvent {
            id,
            previous_id: Some(id - 1).filter(|id| *id > 0),
            timestamp: state.stop_date.unwrap_or(0),
            event_type: event_type.to_owned(),
            name: name.map(str::to_owned),
            input: (event_type == "ExecutionStarted").then(|| self.input.clone()),
            output: state.output.clone().filter(|_| event_type == "ExecutionSucceeded"),
            error: state.error.clone().filter(|_| state.status.is_terminal()),
            cause: state.cause.clone().filter(|_| state.status.is_terminal()),
        });
    }

    /// The history event of how it ended.
    fn record_end(&mut self) {
        let event_type = match self.state.status {
            Status::Succeeded => "ExecutionSucceeded",
            Status::Failed => "ExecutionFailed",
            Status::TimedOut => "ExecutionTimedOut",
            _ => "ExecutionAborted",
        };
        self.record(event_type, None);
    }
}

/// How a waiting task (`.waitForTaskToken`) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// SendTaskSuccess, with this output.
    Succeeded(String),
    /// SendTaskFailure, with this error.
    Failed(String),
    /// Its TimeoutSeconds (or HeartbeatSeconds) passed.
    TimedOut,
}

#[derive(Debug, Clone)]
struct Task {
    execution_arn: ExecutionArn,
    outcome: Option<TaskOutcome>,
}

/// Step Functions, in memory: Standard state machines and their executions.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    state_machines: Mutex<BTreeMap<String, WorkflowType>>,
    executions: Mutex<BTreeMap<ExecutionArn, Execution>>,
    tasks: Mutex<BTreeMap<String, Task>>,
    script: EngineScript,
}

impl MemoryEngine {
    /// An engine that knows these state machines, as Standard workflows.
    pub fn with_state_machines<'a>(state_machines: impl IntoIterator<Item = &'a StateMachineArn>) -> Self {
        let engine = Self::default();
        for state_machine in state_machines {
            engine.add_state_machine(state_machine, WorkflowType::Standard);
        }
        engine
    }

    /// Adds a state machine of `kind` (an Express one is refused by the Standard check).
    pub fn add_state_machine(&self, state_machine: &StateMachineArn, kind: WorkflowType) {
        locked(&self.state_machines).insert(state_machine.as_str().to_owned(), kind);
    }

    /// The next call of `op` does what `scripted` says (scripts queue up in order).
    pub fn script(&self, op: EngineOp, scripted: Scripted) {
        self.script.push(op, scripted);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<EngineOp> {
        self.script.calls()
    }

    /// An execution appears running, as a start whose answer was lost and that
    /// landed late (or that DescribeExecution, eventually consistent, missed).
    pub fn land(&self, execution_arn: &ExecutionArn, input: &str) {
        locked(&self.executions).insert(execution_arn.to_owned(), Execution::running(input));
    }

    /// The execution ends (its event is the test's to deliver).
    pub fn end(&self, execution_arn: &ExecutionArn, status: Status, now: Millis) {
        if let Some(execution) = locked(&self.executions).get_mut(execution_arn) {
            execution.state.status = status;
            execution.state.stop_date = Some(now);
            execution.record_end();
        }
    }

    /// An ended execution is redriven from outside (the console, say): it runs again, one redrive more.
    pub fn redrive_from_outside(&self, execution_arn: &ExecutionArn) {
        if let Some(execution) = locked(&self.executions).get_mut(execution_arn) {
            execution.state.redriven();
        }
    }

    /// The execution passes through `states` Pass states (two history events each), each with `output`.
    pub fn passes(&self, execution_arn: &ExecutionArn, states: usize, output: Option<&str>) {
        if let Some(execution) = locked(&self.executions).get_mut(execution_arn) {
            for state in 0..states {
                let name = format!("Step{state}");
                execution.record("PassStateEntered", Some(&name));
                execution.record("PassStateExited", Some(&name));
                if let Some(last) = execution.history.last_mut() {
                    last.output = output.map(str::to_owned);
                }
            }
        }
    }

    /// The executions that run, by ARN.
    pub fn running(&self) -> Vec<ExecutionArn> {
        let executions = locked(&self.executions);
        executions.iter().filter(|(_, e)| e.state.status == Status::Running).map(|(arn, _)| arn.clone()).collect()
    }

    /// A task of the execution starts waiting for its token.
    pub fn wait_for_task(&self, execution_arn: &ExecutionArn, token: &str) {
        let task = Task { execution_arn: execution_arn.clone(), outcome: None };
        locked(&self.tasks).insert(token.to_owned(), task);
    }

    /// The waiting task times out.
    pub fn time_out_task(&self, token: &str) {
        if let Some(task) = locked(&self.tasks).get_mut(token) {
            task.outcome.get_or_insert(TaskOutcome::TimedOut);
        }
    }

    /// How the task with this token ended (`None`: still waiting, or no such task).
    pub fn task_outcome(&self, token: &str) -> Option<TaskOutcome> {
        locked(&self.tasks).get(token).and_then(|task| task.outcome.clone())
    }

    /// Completes the task if it still waits and its execution runs.
    fn complete_task(&self, token: &str, outcome: TaskOutcome) -> TaskAnswer {
        let executions = locked(&self.executions);
        let mut tasks = locked(&self.tasks);
        let Some(task) = tasks.get_mut(token) else { return TaskAnswer::Closed };
        let runs = executions.get(&task.execution_arn).is_some_and(|e| e.state.status == Status::Running);
        if task.outcome.is_some() || !runs {
            return TaskAnswer::Closed;
        }
        task.outcome = Some(outcome);
        TaskAnswer::Taken
    }

    /// What DescribeExecution would say of the execution now.
    pub fn state(&self, execution_arn: &ExecutionArn) -> Option<ExecutionState> {
        locked(&self.executions).get(execution_arn).map(|e| e.state.clone())
    }
}

fn not_redrivable(code: &str, message: String) -> EngineError {
    EngineError::Refused { code: code.into(), message, caller_fault: true }
}

fn no_state_machine(state_machine: &StateMachineArn) -> EngineError {
    EngineError::Refused {
        code: "StateMachineDoesNotExist".into(),
        message: format!("State Machine Does Not Exist: '{state_machine}'"),
        caller_fault: false,
    }
}

impl Engine for MemoryEngine {
    async fn start(
        &self,
        state_machine: &StateMachineArn,
        name: &ExecutionName,
        input: &str,
    ) -> Result<(), EngineError> {
        self.script
            .run(EngineOp::Start, async {
                if !locked(&self.state_machines).contains_key(state_machine.as_str()) {
                    return Err(no_state_machine(state_machine));
                }
                let arn = state_machine.execution_arn(name);
                let mut executions = locked(&self.executions);
                match executions.get(&arn) {
                    // Standard workflows: the same name and input again is idempotent while it runs.
                    Some(e) if e.state.status == Status::Running && e.input == input => Ok(()),
                    Some(_) => Err(EngineError::ExecutionAlreadyExists),
                    None => {
                        executions.insert(arn, Execution::running(input));
                        Ok(())
                    }
                }
            })
            .await
    }

    async fn stop(
        &self,
        execution_arn: &ExecutionArn,
        error: &str,
        cause: &str,
    ) -> Result<Option<Millis>, EngineError> {
        self.script
            .run(EngineOp::Stop, async {
                let mut executions = locked(&self.executions);
                let Some(execution) = executions.get_mut(execution_arn) else { return Ok(None) };
                // Stopping an execution that has ended leaves it as it ended.
                if execution.state.status == Status::Running {
                    execution.state.status = Status::Aborted;
                    execution.state.stop_date = Some(0);
                    execution.state.error = Some(error.to_owned());
                    execution.state.cause = Some(cause.to_owned());
                    execution.record_end();
                }
                Ok(Some(execution.state.stop_date.unwrap_or(0)))
            })
            .await
    }

    async fn redrive(&self, execution_arn: &ExecutionArn, client_token: &str) -> Result<(), EngineError> {
        self.script
            .run(EngineOp::Redrive, async {
                let mut executions = locked(&self.executions);
                let Some(execution) = executions.get_mut(execution_arn) else {
                    return Err(not_redrivable(
                        "ExecutionDoesNotExist",
                        format!("Execution Does Not Exist: '{execution_arn}'"),
                    ));
                };
                // The same client token again, once it redrove it: the same answer (Step Functions keeps 10).
                if execution.redrive_tokens.iter().any(|token| token == client_token) {
                    return Ok(());
                }
                match execution.state.status {
                    Status::Failed | Status::TimedOut | Status::Aborted => {
                        execution.state.redriven();
                        execution.record("ExecutionRedriven", None);
                        execution.redrive_tokens.push(client_token.to_owned());
                        Ok(())
                    }
                    status => Err(not_redrivable(
                        "ExecutionNotRedrivable",
                        format!("Execution '{execution_arn}' is not redrivable: it is {status}"),
                    )),
                }
            })
            .await
    }

    async fn workflow_type(&self, state_machine: &StateMachineArn) -> Result<Option<WorkflowType>, EngineError> {
        let kind = async { Ok(locked(&self.state_machines).get(state_machine.as_str()).copied()) };
        self.script.run(EngineOp::WorkflowType, kind).await
    }

    async fn history(
        &self,
        execution_arn: &ExecutionArn,
        page_token: Option<&str>,
        max_results: usize,
        include_data: bool,
    ) -> Result<Option<HistoryChunk>, EngineError> {
        self.script
            .run(EngineOp::History, async {
                let executions = locked(&self.executions);
                let Some(execution) = executions.get(execution_arn) else { return Ok(None) };
                // Its page tokens are offsets (Step Functions' are opaque).
                let from = page_token.map_or(Ok(0), str::parse::<usize>).map_err(|_| EngineError::Refused {
                    code: "InvalidToken".into(),
                    message: format!("invalid page token {page_token:?}"),
                    caller_fault: false,
                })?;
                let to = execution.history.len().min(from + max_results);
                let events = execution.history.get(from..to).unwrap_or_default().iter();
                let events = events.map(|e| if include_data { e.clone() } else { e.clone().without_data() }).collect();
                Ok(Some(HistoryChunk { events, next_token: (to < execution.history.len()).then(|| to.to_string()) }))
            })
            .await
    }

    async fn send_task_success(&self, token: &str, output: &str) -> Result<TaskAnswer, EngineError> {
        let answer = async { Ok(self.complete_task(token, TaskOutcome::Succeeded(output.to_owned()))) };
        self.script.run(EngineOp::SendTaskSuccess, answer).await
    }

    async fn send_task_failure(&self, token: &str, error: &str, _cause: &str) -> Result<TaskAnswer, EngineError> {
        let answer = async { Ok(self.complete_task(token, TaskOutcome::Failed(error.to_owned()))) };
        self.script.run(EngineOp::SendTaskFailure, answer).await
    }

    async fn describe(&self, execution_arn: &ExecutionArn) -> Result<Option<ExecutionState>, EngineError> {
        self.script.run(EngineOp::Describe, async { Ok(self.state(execution_arn)) }).await
    }
}
