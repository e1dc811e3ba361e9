//! Engine calls scripted one at a time.

use super::lock::locked;
use crate::ports::EngineError;
use std::collections::VecDeque;
use std::sync::Mutex;

/// The engine's operations, to script one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineOp {
    /// StartExecution.
    Start,
    /// StopExecution.
    Stop,
    /// DescribeExecution.
    Describe,
    /// DescribeStateMachine.
    WorkflowType,
    /// RedriveExecution.
    Redrive,
    /// GetExecutionHistory.
    History,
    /// SendTaskSuccess.
    SendTaskSuccess,
    /// SendTaskFailure.
    SendTaskFailure,
}

/// What a scripted call does instead of (or besides) its usual work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// Answers with this error; nothing happens.
    Fails(EngineError),
    /// Does its work, then loses its answer: `Ambiguous`.
    LandsThenFails,
    /// Never answers (a hung connection, or a process that died).
    Hangs,
    /// Does its work, then never answers (the process died after the call).
    LandsThenHangs,
}

/// Engine calls scripted one at a time, in order, and counted: what
/// [`MemoryEngine`](super::MemoryEngine) and any engine a test wraps (the emulator's, say) share.
#[derive(Debug, Default)]
pub struct EngineScript {
    queue: Mutex<VecDeque<(EngineOp, Scripted)>>,
    calls: Mutex<Vec<EngineOp>>,
}

impl EngineScript {
    /// The next call of `op` does what `scripted` says (scripts queue up in order).
    pub fn push(&self, op: EngineOp, scripted: Scripted) {
        locked(&self.queue).push_back((op, scripted));
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<EngineOp> {
        locked(&self.calls).clone()
    }

    /// Runs `work`, a call of `op`, as its script (if any) says.
    pub async fn run<T>(
        &self,
        op: EngineOp,
        work: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        locked(&self.calls).push(op);
        let scripted = {
            let mut queue = locked(&self.queue);
            let at = queue.iter().position(|(aimed, _)| *aimed == op);
            at.and_then(|at| queue.remove(at)).map(|(_, scripted)| scripted)
        };
        match scripted {
            None => work.await,
            Some(Scripted::Fails(error)) => Err(error),
            Some(Scripted::LandsThenFails) => {
                work.await?;
                Err(EngineError::Ambiguous("injected: the answer was lost".into()))
            }
            Some(Scripted::Hangs) => std::future::pending().await,
            Some(Scripted::LandsThenHangs) => {
                work.await?;
                std::future::pending().await
            }
        }
    }
}
