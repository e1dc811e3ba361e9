//! The check that the configured state machines are Standard workflows.

use super::error::{Error, Result};
use crate::domain::StateMachineArn;
use crate::ports::{Engine, EngineError, WorkflowType};

/// The check that the configured state machines are Standard workflows.
/// Express ones emit no status events (an ID could never be freed) and have
/// no idempotent StartExecution (a retried start could run twice). It runs
/// once per cold start, in the background from init on, so that init does
/// not wait for Step Functions; the first start's claim runs alongside it,
/// and its StartExecution waits for its result. Other requests do not need it.
pub struct StandardCheck {
    state_machines: Vec<(String, StateMachineArn)>,
    /// Only a definite verdict is kept: a throttled or unanswered check is
    /// asked again by the next start, never cached for the container's life.
    verdict: tokio::sync::OnceCell<std::result::Result<(), String>>,
}

impl StandardCheck {
    /// The check of these (function, state machine) pairs, not yet run.
    pub fn new(state_machines: Vec<(String, StateMachineArn)>) -> Self {
        Self { state_machines, verdict: tokio::sync::OnceCell::new() }
    }

    /// Runs the check, or waits for the run under way, or returns its verdict.
    /// A transient failure is this call's error (503 to a start), not a verdict.
    pub async fn run<E: Engine>(&self, engine: &E) -> Result<()> {
        let verdict = self
            .verdict
            .get_or_try_init(|| async {
                for (function, state_machine) in &self.state_machines {
                    if let Err(misconfigured) = check_standard(engine, function, state_machine).await? {
                        tracing::error!(error = %misconfigured, "state machine check failed: starts are refused");
                        return Ok(Err(misconfigured));
                    }
                }
                Ok::<_, EngineError>(Ok(()))
            })
            .await
            .inspect_err(
                |error| tracing::warn!(%error, "state machine check not answered; the next start asks again"),
            )?;
        verdict.clone().map_err(Error::Misconfigured)
    }
}

/// `Ok(Err(why))` is a definite "unusable"; `Err` is Step Functions not answering.
pub(super) async fn check_standard<E: Engine>(
    engine: &E,
    function: &str,
    state_machine: &StateMachineArn,
) -> std::result::Result<std::result::Result<(), String>, EngineError> {
    Ok(match engine.workflow_type(state_machine).await? {
        Some(WorkflowType::Standard) => Ok(()),
        Some(WorkflowType::Express) => Err(format!(
            "function {function:?}: {state_machine} is an EXPRESS state machine; sfn-singleton needs STANDARD \
             (Express workflows emit no status events and their StartExecution is not idempotent)"
        )),
        None => Err(format!("function {function:?}: state machine {state_machine} does not exist")),
    })
}
