//! The second call of a start: StartExecution, attempt by attempt, and
//! giving the claim up when nothing can have started.

use super::error::{Error, Result};
use super::request::StartRequest;
use super::singleton::{Singleton, pause};
use crate::domain::launch::{LaunchVerdict, START_ATTEMPTS, StartAttempt, after_attempts};
use crate::domain::{ExecutionName, Record};
use crate::ports::{Engine, EngineError, InstanceStore};

/// Makes `call` (StartExecution or RedriveExecution) attempt by attempt, each answer
/// classified by `classify`, pausing between, until `after_attempts` decides: the
/// verdict (never `Retry`) and the last attempt's error.
pub(super) async fn attempts<F, Fut>(
    what: &str,
    classify: fn(&EngineError) -> StartAttempt,
    mut call: F,
) -> (LaunchVerdict, Option<EngineError>)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<(), EngineError>>,
{
    let mut attempts = Vec::with_capacity(START_ATTEMPTS);
    let mut last_error = None;
    loop {
        let answer = call().await;
        attempts.push(answer.as_ref().map_or_else(classify, |()| StartAttempt::Started));
        if let Err(error) = answer {
            tracing::warn!(%error, attempt = attempts.len(), "{what} attempt failed");
            last_error = Some(error);
        }
        match after_attempts(&attempts) {
            LaunchVerdict::Retry => pause(attempts.len()).await,
            verdict => return (verdict, last_error),
        }
    }
}

/// What a failed StartExecution attempt did.
fn start_attempt(error: &EngineError) -> StartAttempt {
    match error {
        EngineError::Ambiguous(_) => StartAttempt::Unanswered,
        EngineError::ExecutionAlreadyExists => StartAttempt::AlreadyExists,
        EngineError::Throttled { .. } => StartAttempt::Throttled,
        EngineError::Refused { caller_fault: true, .. } => StartAttempt::Invalid,
        EngineError::Refused { .. } => StartAttempt::Refused,
    }
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// The second call of a start. The claim is ours; make the execution exist or give the claim up.
    ///
    /// The attempts are the service's own (the adapter makes one per call), because what
    /// decides is what *each* attempt did (see `domain::launch`).
    pub(super) async fn launch(
        &self,
        record: Record,
        name: &ExecutionName,
        request: StartRequest<'_>,
    ) -> Result<Record> {
        let start = || self.engine.start(request.state_machine, name, request.input);
        let (verdict, last_error) = attempts("StartExecution", start_attempt, start).await;
        match verdict {
            LaunchVerdict::Started => Ok(record),
            // (`attempts` never ends on `Retry`; were it to, asking is the safe side.)
            LaunchVerdict::AskStepFunctions | LaunchVerdict::Retry => {
                match self.engine.describe(&record.execution_arn).await {
                    Ok(Some(_)) => Ok(record),
                    // Not (yet) known, or no answer: the lease decides.
                    Ok(None) | Err(_) => Err(Error::StartUnconfirmed {
                        instance_id: record.instance_id,
                        reason: last_error.map_or_else(|| "no answer".to_owned(), |e| e.to_string()),
                    }),
                }
            }
            LaunchVerdict::Release => {
                let refusal = last_error.unwrap_or(EngineError::Ambiguous("no answer".to_owned()));
                self.release(&record, name, &refusal.to_string()).await;
                Err(Error::StartRefused(refusal))
            }
        }
    }

    /// Gives a claim up (START_FAILED) when its execution will not be started.
    pub(super) async fn release(&self, record: &Record, name: &ExecutionName, reason: &str) {
        let now = self.now();
        match self.store.mark_start_failed(&record.key, name, reason, now, self.expires_at(now)).await {
            Ok(wrote) => tracing::warn!(%reason, wrote, "not started; claim released"),
            // The lease still frees the ID in the end.
            Err(e) => tracing::error!(%reason, error = %e, "not started, and the claim could not be released"),
        }
    }
}
