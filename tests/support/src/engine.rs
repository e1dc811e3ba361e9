//! The emulator's Step Functions, with what it cannot do scripted.

use sfn_singleton::domain::{ExecutionArn, ExecutionName, StateMachineArn};
use sfn_singleton::memory::{EngineOp, EngineScript, Scripted};
use sfn_singleton::ports::{Engine, EngineError, ExecutionState, TaskAnswer, WorkflowType};
use std::sync::Mutex;

/// The emulator's Step Functions, with what it cannot do: any call scripted
/// one at a time (`Scripted`: fail, lose its answer, hang, or hang after
/// taking effect, as a process that dies), every StopExecution recorded (the
/// emulator keeps neither error nor cause), and, made with `aws_stops`, stops
/// and describes as AWS does them where moto differs: a stop leaves an ended
/// execution as it ended (moto rewrites it to ABORTED), and DescribeExecution
/// reports the error and cause of the stop that ended it.
pub struct ScriptedEngine<E> {
    pub inner: E,
    aws_stops: bool,
    script: EngineScript,
    /// (execution ARN, error, cause) of every StopExecution, in order.
    pub stops: Mutex<Vec<(ExecutionArn, String, String)>>,
}

impl<E: Engine> ScriptedEngine<E> {
    pub fn new(inner: E) -> Self {
        Self { inner, aws_stops: false, script: EngineScript::default(), stops: Mutex::default() }
    }

    /// With stops and describes as AWS does them.
    pub fn aws_stops(inner: E) -> Self {
        Self { aws_stops: true, ..Self::new(inner) }
    }

    /// The next call of `op` does what `scripted` says (scripts queue up in order).
    pub fn script(&self, op: EngineOp, scripted: Scripted) {
        self.script.push(op, scripted);
    }
}

impl<E: Engine> Engine for ScriptedEngine<E> {
    async fn start(&self, machine: &StateMachineArn, name: &ExecutionName, input: &str) -> Result<(), EngineError> {
        self.script.run(EngineOp::Start, self.inner.start(machine, name, input)).await
    }

    async fn stop(&self, execution_arn: &ExecutionArn, error: &str, cause: &str) -> Result<Option<i64>, EngineError> {
        let stop = async {
            if self.aws_stops
                && let Some(ended) = self.inner.describe(execution_arn).await?
                && ended.status.is_terminal()
            {
                return Ok(ended.stop_date.or(Some(0)));
            }
            let stopped = self.inner.stop(execution_arn, error, cause).await?;
            let mut stops = self.stops.lock().unwrap_or_else(|p| p.into_inner());
            stops.push((execution_arn.clone(), error.to_owned(), cause.to_owned()));
            Ok(stopped)
        };
        self.script.run(EngineOp::Stop, stop).await
    }

    async fn send_task_success(&self, token: &str, output: &str) -> Result<TaskAnswer, EngineError> {
        self.script.run(EngineOp::SendTaskSuccess, self.inner.send_task_success(token, output)).await
    }

    async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> Result<TaskAnswer, EngineError> {
        self.script.run(EngineOp::SendTaskFailure, self.inner.send_task_failure(token, error, cause)).await
    }

    async fn redrive(&self, execution_arn: &ExecutionArn, client_token: &str) -> Result<(), EngineError> {
        self.script.run(EngineOp::Redrive, self.inner.redrive(execution_arn, client_token)).await
    }

    async fn history(
        &self,
        execution_arn: &ExecutionArn,
        page_token: Option<&str>,
        max_results: usize,
        include_data: bool,
    ) -> Result<Option<sfn_singleton::ports::HistoryChunk>, EngineError> {
        let history = self.inner.history(execution_arn, page_token, max_results, include_data);
        self.script.run(EngineOp::History, history).await
    }

    async fn workflow_type(&self, machine: &StateMachineArn) -> Result<Option<WorkflowType>, EngineError> {
        self.script.run(EngineOp::WorkflowType, self.inner.workflow_type(machine)).await
    }

    async fn describe(&self, execution_arn: &ExecutionArn) -> Result<Option<ExecutionState>, EngineError> {
        let described = self.script.run(EngineOp::Describe, self.inner.describe(execution_arn)).await?;
        if !self.aws_stops {
            return Ok(described);
        }
        let stops = self.stops.lock().unwrap_or_else(|p| p.into_inner());
        let stopped_with = stops.iter().rev().find(|(arn, _, _)| arn == execution_arn).cloned();
        Ok(described.map(|state| match stopped_with {
            Some((_, error, cause)) if state.status == sfn_singleton::domain::Status::Aborted => {
                ExecutionState { error: Some(error), cause: Some(cause), ..state }
            }
            _ => state,
        }))
    }
}
