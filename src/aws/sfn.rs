//! The orchestration engine on Step Functions (Standard workflows).

use super::sdk_error::{Failure, classify, describe_error};
use crate::domain::history::HistoryEvent;
use crate::domain::{ExecutionArn, ExecutionName, Millis, StateMachineArn, Status};
use crate::ports::{Engine, EngineError, ExecutionState, HistoryChunk, TaskAnswer, WorkflowType};
use aws_sdk_sfn::Client;
use aws_sdk_sfn::config::http::HttpResponse;
use aws_sdk_sfn::config::retry::RetryConfig;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineError;
use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryError;
use aws_sdk_sfn::operation::redrive_execution::RedriveExecutionError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::operation::stop_execution::StopExecutionError;
use aws_sdk_sfn::types::{ExecutionStatus, StateMachineType};

/// The [`Engine`] on Step Functions.
#[derive(Debug, Clone)]
pub struct StepFunctions {
    client: Client,
}

impl StepFunctions {
    /// The engine through `client` (built once per cold start).
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn engine_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: &SdkError<E, HttpResponse>,
    caller_fault: bool,
) -> EngineError {
    let message = describe_error(err);
    let code = err.code().unwrap_or("unknown").to_owned();
    match classify(err) {
        Failure::Throttled => EngineError::Throttled { code, message },
        Failure::Ambiguous => EngineError::Ambiguous(message),
        Failure::Refused => EngineError::Refused { code, message, caller_fault },
    }
}

/// One attempt per call (StartExecution, RedriveExecution, SendTask*): the service retries,
/// knowing which attempts may have taken effect.
fn one_attempt() -> aws_sdk_sfn::config::Builder {
    aws_sdk_sfn::config::Builder::default().retry_config(RetryConfig::disabled())
}

fn status_of(status: &ExecutionStatus) -> Status {
    match status {
        ExecutionStatus::Succeeded => Status::Succeeded,
        ExecutionStatus::Failed => Status::Failed,
        ExecutionStatus::TimedOut => Status::TimedOut,
        ExecutionStatus::Aborted => Status::Aborted,
        // RUNNING, PENDING_REDRIVE (about to run again) and statuses this SDK does not know yet.
        _ => Status::Running,
    }
}

/// A task token's answer: taken, or closed (the task completed, timed out or
/// its execution ended: `TaskTimedOut`, `TaskDoesNotExist`, `InvalidToken`).
fn task_answer<T, E: ProvideErrorMetadata + std::error::Error + 'static>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<TaskAnswer, EngineError> {
    match result {
        Ok(_) => Ok(TaskAnswer::Taken),
        Err(err) if matches!(err.code(), Some("TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken")) => {
            Ok(TaskAnswer::Closed)
        }
        Err(err) => Err(engine_error(&err, false)),
    }
}

impl Engine for StepFunctions {
    async fn send_task_success(&self, token: &str, output: &str) -> Result<TaskAnswer, EngineError> {
        let result = self
            .client
            .send_task_success()
            .task_token(token)
            .output(output)
            .customize()
            .config_override(one_attempt())
            .send()
            .await;
        task_answer(result)
    }

    async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> Result<TaskAnswer, EngineError> {
        let result = self
            .client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .customize()
            .config_override(one_attempt())
            .send()
            .await;
        task_answer(result)
    }

    async fn start(
        &self,
        state_machine: &StateMachineArn,
        name: &ExecutionName,
        input: &str,
    ) -> Result<(), EngineError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(state_machine.as_str())
            .name(name.as_str())
            .input(input)
            .customize()
            .config_override(one_attempt())
            .send()
            .await;
        let Err(err) = result else { return Ok(()) };
        Err(match err.as_service_error() {
            Some(StartExecutionError::ExecutionAlreadyExists(_)) => EngineError::ExecutionAlreadyExists,
            Some(StartExecutionError::ExecutionLimitExceeded(_)) => {
                EngineError::Throttled { code: "ExecutionLimitExceeded".into(), message: describe_error(&err) }
            }
            Some(StartExecutionError::InvalidExecutionInput(_)) => engine_error(&err, true),
            _ => engine_error(&err, false),
        })
    }

    async fn stop(
        &self,
        execution_arn: &ExecutionArn,
        error: &str,
        cause: &str,
    ) -> Result<Option<Millis>, EngineError> {
        let result =
            self.client.stop_execution().execution_arn(execution_arn.as_str()).error(error).cause(cause).send().await;
        match result {
            Ok(answer) => Ok(answer.stop_date().to_millis().ok()),
            Err(err) if matches!(err.as_service_error(), Some(StopExecutionError::ExecutionDoesNotExist(_))) => {
                Ok(None)
            }
            Err(err) => Err(engine_error(&err, false)),
        }
    }

    async fn redrive(&self, execution_arn: &ExecutionArn, client_token: &str) -> Result<(), EngineError> {
        let result = self
            .client
            .redrive_execution()
            .execution_arn(execution_arn.as_str())
            .client_token(client_token)
            .customize()
            .config_override(one_attempt())
            .send()
            .await;
        let Err(err) = result else { return Ok(()) };
        Err(match err.as_service_error() {
            Some(RedriveExecutionError::ExecutionLimitExceeded(_)) => {
                EngineError::Throttled { code: "ExecutionLimitExceeded".into(), message: describe_error(&err) }
            }
            // About this execution (not redrivable, gone): the client is told why.
            Some(
                RedriveExecutionError::ExecutionNotRedrivable(_) | RedriveExecutionError::ExecutionDoesNotExist(_),
            ) => engine_error(&err, true),
            _ => engine_error(&err, false),
        })
    }

    async fn workflow_type(&self, state_machine: &StateMachineArn) -> Result<Option<WorkflowType>, EngineError> {
        match self.client.describe_state_machine().state_machine_arn(state_machine.as_str()).send().await {
            Ok(answer) => Ok(Some(match answer.r#type() {
                StateMachineType::Express => WorkflowType::Express,
                _ => WorkflowType::Standard,
            })),
            Err(err)
                if matches!(err.as_service_error(), Some(DescribeStateMachineError::StateMachineDoesNotExist(_))) =>
            {
                Ok(None)
            }
            Err(err) => Err(engine_error(&err, false)),
        }
    }

    async fn history(
        &self,
        execution_arn: &ExecutionArn,
        page_token: Option<&str>,
        max_results: usize,
        include_data: bool,
    ) -> Result<Option<HistoryChunk>, EngineError> {
        let answer = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn.as_str())
            .set_next_token(page_token.map(str::to_owned))
            .max_results(i32::try_from(max_results).unwrap_or(1000))
            .include_execution_data(include_data)
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) if matches!(err.as_service_error(), Some(GetExecutionHistoryError::ExecutionDoesNotExist(_))) => {
                return Ok(None);
            }
            // Step Functions' page token expired (24 h): the client's to start over.
            Err(err) if matches!(err.as_service_error(), Some(GetExecutionHistoryError::InvalidToken(_))) => {
                return Err(engine_error(&err, true));
            }
            Err(err) => return Err(engine_error(&err, false)),
        };
        let events = answer.events().iter().map(history_event).collect();
        Ok(Some(HistoryChunk { events, next_token: answer.next_token().map(str::to_owned) }))
    }

    async fn describe(&self, execution_arn: &ExecutionArn) -> Result<Option<ExecutionState>, EngineError> {
        let answer = match self.client.describe_execution().execution_arn(execution_arn.as_str()).send().await {
            Ok(answer) => answer,
            Err(err) if matches!(err.as_service_error(), Some(DescribeExecutionError::ExecutionDoesNotExist(_))) => {
                return Ok(None);
            }
            Err(err) => return Err(engine_error(&err, false)),
        };
        let millis = |t: &aws_sdk_sfn::primitives::DateTime| -> Option<Millis> { t.to_millis().ok() };
        Ok(Some(ExecutionState {
            status: status_of(answer.status()),
            redrive_count: answer.redrive_count().and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
            stop_date: answer.stop_date().and_then(millis),
            output: answer.output().map(str::to_owned),
            error: answer.error().map(str::to_owned),
            cause: answer.cause().map(str::to_owned),
            input: answer.input().map(str::to_owned),
        }))
    }
}

/// What the status endpoint shows of a history event: its name (state or
/// resource), input, output, error and cause, from whichever details it has.
fn history_event(event: &aws_sdk_sfn::types::HistoryEvent) -> HistoryEvent {
    let owned = |text: Option<&str>| text.map(str::to_owned);
    let mut shown = HistoryEvent {
        id: event.id(),
        previous_id: Some(event.previous_event_id()).filter(|id| *id > 0),
        timestamp: event.timestamp().to_millis().unwrap_or(0),
        event_type: event.r#type().as_str().to_owned(),
        name: None,
        input: None,
        output: None,
        error: None,
        cause: None,
    };
    if let Some(d) = event.execution_started_event_details() {
        shown.input = owned(d.input());
    } else if let Some(d) = event.execution_succeeded_event_details() {
        shown.output = owned(d.output());
    } else if let Some(d) = event.execution_failed_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.execution_aborted_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.execution_timed_out_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.state_entered_event_details() {
        (shown.name, shown.input) = (Some(d.name().to_owned()), owned(d.input()));
    } else if let Some(d) = event.state_exited_event_details() {
        (shown.name, shown.output) = (Some(d.name().to_owned()), owned(d.output()));
    } else if let Some(d) = event.task_scheduled_event_details() {
        (shown.name, shown.input) = (Some(d.resource().to_owned()), Some(d.parameters().to_owned()));
    } else if let Some(d) = event.task_succeeded_event_details() {
        (shown.name, shown.output) = (Some(d.resource().to_owned()), owned(d.output()));
    } else if let Some(d) = event.task_failed_event_details() {
        (shown.name, shown.error, shown.cause) = (Some(d.resource().to_owned()), owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.task_timed_out_event_details() {
        (shown.name, shown.error, shown.cause) = (Some(d.resource().to_owned()), owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.lambda_function_scheduled_event_details() {
        (shown.name, shown.input) = (Some(d.resource().to_owned()), owned(d.input()));
    } else if let Some(d) = event.lambda_function_succeeded_event_details() {
        shown.output = owned(d.output());
    } else if let Some(d) = event.lambda_function_failed_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.task_start_failed_event_details() {
        (shown.name, shown.error, shown.cause) = (Some(d.resource().to_owned()), owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.task_submit_failed_event_details() {
        (shown.name, shown.error, shown.cause) = (Some(d.resource().to_owned()), owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.lambda_function_start_failed_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.lambda_function_schedule_failed_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.lambda_function_timed_out_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.activity_schedule_failed_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.activity_timed_out_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.map_run_failed_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.evaluation_failed_event_details() {
        (shown.name, shown.error, shown.cause) = (Some(d.state().to_owned()), owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.execution_redriven_event_details() {
        shown.name = d.redrive_count().map(|count| format!("redrive {count}"));
    } else if let Some(d) = event.map_iteration_failed_event_details() {
        shown.name = d.name().map(|name| format!("{name}[{}]", d.index()));
    } else if let Some(d) = event.activity_failed_event_details() {
        (shown.error, shown.cause) = (owned(d.error()), owned(d.cause()));
    } else if let Some(d) = event.activity_succeeded_event_details() {
        shown.output = owned(d.output());
    }
    shown
}
