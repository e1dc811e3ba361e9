//! Step Functions in memory.

use super::lock::locked;
use super::script::{EngineOp, EngineScript, Scripted};
use crate::domain::{ExecutionArn, ExecutionName, Millis, StateMachineArn, Status};
use crate::ports::{Engine, EngineError, ExecutionState, WorkflowType};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct Execution {
    input: String,
    state: ExecutionState,
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
        Self { input: input.to_owned(), state }
    }
}

/// Step Functions, in memory: Standard state machines and their executions.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    state_machines: Mutex<BTreeMap<String, WorkflowType>>,
    executions: Mutex<BTreeMap<ExecutionArn, Execution>>,
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
        }
    }

    /// An ended execution is redriven from outside: it runs again, one redrive more.
    pub fn redrive(&self, execution_arn: &ExecutionArn) {
        if let Some(execution) = locked(&self.executions).get_mut(execution_arn) {
            execution.state.status = Status::Running;
            execution.state.redrive_count += 1;
            execution.state.stop_date = None;
        }
    }

    /// The executions that run, by ARN.
    pub fn running(&self) -> Vec<ExecutionArn> {
        let executions = locked(&self.executions);
        executions.iter().filter(|(_, e)| e.state.status == Status::Running).map(|(arn, _)| arn.clone()).collect()
    }

    /// What DescribeExecution would say of the execution now.
    pub fn state(&self, execution_arn: &ExecutionArn) -> Option<ExecutionState> {
        locked(&self.executions).get(execution_arn).map(|e| e.state.clone())
    }
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
                }
                Ok(Some(execution.state.stop_date.unwrap_or(0)))
            })
            .await
    }

    async fn workflow_type(&self, state_machine: &StateMachineArn) -> Result<Option<WorkflowType>, EngineError> {
        let kind = async { Ok(locked(&self.state_machines).get(state_machine.as_str()).copied()) };
        self.script.run(EngineOp::WorkflowType, kind).await
    }

    async fn describe(&self, execution_arn: &ExecutionArn) -> Result<Option<ExecutionState>, EngineError> {
        self.script.run(EngineOp::Describe, async { Ok(self.state(execution_arn)) }).await
    }
}
