//! The stop of a `terminateExisting` start: stop the running execution, then
//! read it back, so that a run that had just ended on its own is judged as an
//! ended run (under the reuse policy), not as one this start terminated.

use super::error::{Error, Result};
use super::request::StartRequest;
use super::rewind::not_redriven;
use super::singleton::Singleton;
use crate::domain::record::REPLACED_ERROR;
use crate::domain::{Record, Status};
use crate::ports::{Engine, ExecutionState, InstanceStore};

/// Whether an execution Step Functions reports was stopped by a replace: ABORTED with the
/// replace's error, or with none (a console stop is indistinguishable from one whose error
/// Step Functions did not keep).
fn stopped_by_replace(state: &ExecutionState) -> bool {
    state.status == Status::Aborted && state.error.as_deref().is_none_or(|error| error == REPLACED_ERROR)
}

/// What stopping the current execution for a replace found.
pub(super) enum Stopped {
    /// Stopped by this replace (or, read too soon, still shown running: the
    /// stop stands). Its ABORTED, with the replace's error, reaches the record
    /// by its event unless the replacing claim lands first.
    ForReplace,
    /// It had ended on its own, or someone else stopped it with an error of
    /// theirs (a terminate): the record as it now says how.
    AlreadyEnded(Box<Record>),
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Stops `current`'s execution to replace it, and reads it back.
    pub(super) async fn stop_to_replace(&self, current: &Record, request: StartRequest<'_>) -> Result<Stopped> {
        if current.status == Status::Redriving
            && self.engine.describe(&current.execution_arn).await?.is_none_or(|state| not_redriven(current, &state))
        {
            // A rewind holds it and has not redriven it yet: a stop now would miss the run to come.
            return Err(Error::StillStarting(request.instance_id.to_string()));
        }
        let cause = request.reason.unwrap_or("replaced by a new start (onConflict=terminateExisting)");
        if self.engine.stop(&current.execution_arn, REPLACED_ERROR, cause).await?.is_none() {
            // Claimed, not started yet, its starter within its lease.
            return Err(Error::StillStarting(request.instance_id.to_string()));
        }
        tracing::info!(execution_arn = %current.execution_arn, "stopped, to be replaced");
        match self.engine.describe(&current.execution_arn).await? {
            Some(ended) if ended.status.is_terminal() && !stopped_by_replace(&ended) => {
                let known = self.write_back(current, ended).await?;
                if known.execution_arn != current.execution_arn {
                    // A newer start replaced it meanwhile: that one stands.
                    return Err(Error::AlreadyExists(request.instance_id.to_string()));
                }
                Ok(Stopped::AlreadyEnded(Box::new(known)))
            }
            Some(_) => Ok(Stopped::ForReplace),
            None => Err(Error::StillStarting(request.instance_id.to_string())),
        }
    }
}
