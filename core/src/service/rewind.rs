//! Rewind: Durable's rewind as Step Functions' RedriveExecution, through the
//! same guard as a start. DescribeExecution first (an ended record is never
//! reconciled: an outside redrive whose events were lost leaves it behind);
//! then one conditional write takes the ended record (as read) to `Redriving`,
//! naming the same execution and the count its redrive will have, so that no
//! start slips in; then RedriveExecution. Refused: the record goes back as it
//! was. Unanswered: DescribeExecution decides, and if it cannot, the lease does.

use super::error::{Error, Result};
use super::launch::attempts;
use super::singleton::{MAX_CLAIM_ROUNDS, Singleton};
use crate::domain::launch::{LaunchVerdict, StartAttempt};
use crate::domain::rewind::{RewindRefusal, check_rewindable};
use crate::domain::{InstanceId, Record, Status};
use crate::ports::{ClaimCondition, Conditional, Engine, EngineError, ExecutionState, ExecutionUpdate, InstanceStore};

/// A rewind's own token: the record's `rewind_token` and RedriveExecution's client token.
fn rewind_token() -> String {
    format!("{:032x}", fastrand::u128(..))
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Redrives the instance's ended execution (FAILED, TIMED_OUT or ABORTED,
    /// within Step Functions' 14 days). Happy path: one get, one DescribeExecution,
    /// one conditional put, one RedriveExecution. The record stays `Redriving`
    /// until the redriven execution's RUNNING event (or a reconcile) confirms it.
    pub async fn rewind(&self, instance_id: &InstanceId) -> Result<Record> {
        let key = instance_id.key();
        let token = rewind_token();
        let mut found = self.store.get(&key).await?;
        for _ in 0..MAX_CLAIM_ROUNDS {
            let record = found.take().ok_or_else(|| Error::InstanceNotFound(instance_id.to_string()))?;
            let ended = self.reconcile(record).await?;
            if ended.rewind_token.as_deref() == Some(token.as_str()) {
                // Our claim, written by an attempt whose answer was lost (an SDK retry found it).
                return self.redrive(ended, None, &token).await;
            }
            let refused = |refusal| Error::NotRewindable { instance_id: instance_id.to_string(), refusal };
            check_rewindable(&ended, self.now()).map_err(refused)?;
            let described = self.engine.describe(&ended.execution_arn).await?;
            let described = described.ok_or_else(|| refused(RewindRefusal::ExecutionGone))?;
            if !described.status.is_terminal() && described.redrive_count <= ended.redrive_count {
                // Being redriven (PENDING_REDRIVE keeps the old count a while): in flight, retry.
                return Err(refused(RewindRefusal::NotEnded(Status::Redriving)));
            }
            let count = described.redrive_count + 1;
            let ended = if described.redrive_count > ended.redrive_count {
                // Redriven from outside, its events not in yet: Step Functions' word first (the
                // count rule lets it in), and the rewind is judged on it.
                let known = self.write_back(&ended, described).await?;
                check_rewindable(&known, self.now()).map_err(refused)?;
                known
            } else {
                ended
            };
            let rewinding = ended.rewinding(&token, count, self.now(), self.timings.lease_millis);
            found = match self.store.claim(&rewinding, &ClaimCondition::rewinds(&ended)).await? {
                Conditional::Written => return self.redrive(rewinding, Some(&ended), &token).await,
                Conditional::Refused(Some(current)) => Some(*current),
                Conditional::Refused(None) => self.store.get(&key).await?,
            };
        }
        Err(Error::Contention(instance_id.to_string()))
    }

    /// RedriveExecution, attempt by attempt (as a start's launch), for the hold
    /// `rewinding` on `ended` (the record as read, when this rewind read it).
    async fn redrive(&self, rewinding: Record, ended: Option<&Record>, token: &str) -> Result<Record> {
        let redrive = || self.engine.redrive(&rewinding.execution_arn, token);
        let (verdict, last_error) = attempts("RedriveExecution", redrive_attempt, redrive).await;
        match verdict {
            LaunchVerdict::Started => Ok(rewinding),
            // (`attempts` never ends on `Retry`; were it to, asking is the safe side.)
            LaunchVerdict::AskStepFunctions | LaunchVerdict::Retry => {
                match self.engine.describe(&rewinding.execution_arn).await {
                    Ok(Some(state)) if redriven(&rewinding, &state) => Ok(rewinding),
                    // Not redriven (yet), or no answer: the lease decides (`reconcile`).
                    _ => Err(Error::RewindUnconfirmed {
                        instance_id: rewinding.instance_id,
                        reason: last_error.map_or_else(|| "no answer".to_owned(), |e| e.to_string()),
                    }),
                }
            }
            LaunchVerdict::Release => {
                let refusal = last_error.unwrap_or(EngineError::Ambiguous("no answer".to_owned()));
                // No attempt reached Step Functions: the record goes back as it was read
                // (or, if this rewind did not read it, as Step Functions says the run ended).
                let back = match ended {
                    Some(ended) => Some(ended_state(ended)),
                    None => match self.engine.describe(&rewinding.execution_arn).await {
                        Ok(Some(state)) if not_redriven(&rewinding, &state) => Some(state),
                        _ => None,
                    },
                };
                // Else, or if the write fails, the lease ends the hold (`reconcile`).
                if let Some(back) = back
                    && let Err(error) = self.give_up_rewind(&rewinding, back).await
                {
                    tracing::error!(%error, "the rewind's hold on the record could not be given up");
                }
                Err(Error::RedriveRefused { instance_id: rewinding.instance_id, refusal })
            }
        }
    }

    /// Takes a rewind's hold off the record: back to `ended`, how its run
    /// ended (conditional on the hold's token: a newer rewind's is not touched).
    pub(super) async fn give_up_rewind(&self, rewinding: &Record, ended: ExecutionState) -> Result<Option<Record>> {
        let now = self.now();
        let update = ExecutionUpdate {
            execution_arn: rewinding.execution_arn.clone(),
            state: ended.bounded(),
            observed_at: now,
            from: &[],
            expires_at: Some(self.expires_at(now)),
            rewind_token: rewinding.rewind_token.clone(),
        };
        tracing::warn!(execution_arn = %rewinding.execution_arn, status = %update.state.status, "rewind given up");
        Ok(match self.apply_update(&rewinding.key, &update).await? {
            Conditional::Written => Some(update.applied_to(rewinding)),
            Conditional::Refused(_) => None,
        })
    }
}

/// What a failed RedriveExecution attempt did. "Not redrivable" can be the work of an
/// earlier attempt whose answer was lost: a refusal, never `Invalid`.
fn redrive_attempt(error: &EngineError) -> StartAttempt {
    match error {
        EngineError::Ambiguous(_) => StartAttempt::Unanswered,
        EngineError::Throttled { .. } => StartAttempt::Throttled,
        EngineError::Refused { .. } | EngineError::ExecutionAlreadyExists => StartAttempt::Refused,
    }
}

/// Whether Step Functions' word on the execution shows the redrive the record holds for: its
/// count, or running at all (the run had ended; PENDING_REDRIVE keeps the old count a while).
fn redriven(rewinding: &Record, state: &ExecutionState) -> bool {
    state.redrive_count >= rewinding.redrive_count || !state.status.is_terminal()
}

/// Whether Step Functions' word shows the held execution still as it ended (not redriven).
pub(super) fn not_redriven(rewinding: &Record, state: &ExecutionState) -> bool {
    state.status.is_terminal() && !redriven(rewinding, state)
}

/// How the run of the record `ended` had ended, as the record keeps it.
fn ended_state(ended: &Record) -> ExecutionState {
    ExecutionState {
        status: ended.status,
        redrive_count: ended.redrive_count,
        stop_date: ended.stop_date,
        output: ended.output.clone(),
        error: ended.error.clone(),
        cause: ended.cause.clone(),
        input: None,
    }
}
