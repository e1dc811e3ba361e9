//! A start: the claim (one conditional write deciding against whatever is in
//! the way, under the request's policies), then the launch.

use super::error::{Error, Result};
use super::replace::Stopped;
use super::request::{StartOutcome, StartRequest, Started};
use super::singleton::{MAX_CLAIM_ROUNDS, Singleton};
use super::telemetry;
use crate::domain::mailbox::RaisedEvent;
use crate::domain::policy::{Decision, StartPolicy, Trust, decide};
use crate::domain::{ExecutionArn, ExecutionName, IdempotencyKey, Millis, Record, StartToken, Status};
use crate::ports::{ClaimCondition, Conditional, Engine, InstanceStore, KeyEntry};

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// The claim condition of a fresh start under `policy`.
    fn free(&self, policy: &StartPolicy, now: Millis) -> ClaimCondition {
        ClaimCondition::Free {
            reusable: policy.reuse.reusable(),
            not_started_by: policy.idempotency_key.as_ref().map(|key| (key.hash().to_owned(), now)),
        }
    }

    /// Starts the instance unless an execution of it is starting or running
    /// (or whatever the request's policy says instead).
    /// Happy path: one conditional put, one StartExecution. Refusal: one put.
    /// With an idempotency key, one more put first: the key's own entry.
    pub async fn start(&self, request: StartRequest<'_>) -> Result<Started> {
        let began = std::time::Instant::now();
        let answer = self.start_unmeasured(request).await;
        telemetry::start_answered(&answer, began.elapsed().as_secs_f64() * 1000.0);
        answer
    }

    async fn start_unmeasured(&self, request: StartRequest<'_>) -> Result<Started> {
        let now = self.now();
        let name = ExecutionName::new(request.instance_id, StartToken::generate(now));
        let Some(key) = &request.policy.idempotency_key else {
            return self.claim_and_launch(request, &name, now, None).await;
        };
        let entry = KeyEntry {
            key_hash: key.hash().to_owned(),
            instance_key: request.instance_id.key(),
            execution_name: name.clone(),
            execution_arn: request.state_machine.execution_arn(&name),
            request_digest: request
                .request_digest
                .map_or_else(|| IdempotencyKey::request_digest(request.function_name, request.input), str::to_owned),
            began: now,
            until: now + self.key_window(request),
        };
        if let Some(replayed) = self.hold_key(&entry, request).await? {
            return Ok(replayed);
        }
        let started = self.claim_and_launch(request, &name, now, None).await;
        // Started nothing, and no attempt of it may have: the key's retry is evaluated afresh.
        // (A claim or stop that failed may have landed: the record's own key check covers that.)
        let gave_up = match &started {
            Ok(Started { outcome, .. }) => *outcome == StartOutcome::Existing,
            Err(error) => !matches!(error, Error::StartUnconfirmed { .. }),
        };
        // (Not released, its retry gets 409 StillStarting until the start's lease ends, then starts afresh.)
        if gave_up {
            self.release_key(&entry).await;
        }
        started
    }

    /// The start itself: claim (deciding on whatever is in the way), then launch.
    /// With `event`, the claim's record holds it buffered from the start (signal-with-start).
    pub(super) async fn claim_and_launch(
        &self,
        request: StartRequest<'_>,
        name: &ExecutionName,
        now: Millis,
        event: Option<&RaisedEvent>,
    ) -> Result<Started> {
        let policy = request.policy;
        let mut record = Record::starting(
            request.instance_id,
            request.function_name,
            request.state_machine,
            name,
            request.input,
            now,
            self.timings.lease_millis,
        );
        if let Some(event) = event {
            record.mailbox = record.mailbox.with_event(event);
        }
        if let Some(key) = &policy.idempotency_key {
            record.idempotency_key_hash = Some(key.hash().to_owned());
            record.idempotency_until = Some(now + self.key_window(request));
        }
        let already_exists = || Error::AlreadyExists(request.instance_id.to_string());
        let mut condition = self.free(policy, now);
        // The run this start stopped (terminateExisting), with its redrive count (a rewind
        // that redrove it since made it another run): it stops at most one.
        let mut stopped: Option<(ExecutionArn, u32)> = None;
        // The claim under way takes a dead starter's over.
        let mut taking_over = false;
        let mut claimed = Some(self.first_claim(&record, name, &condition).await?);
        for _ in 0..MAX_CLAIM_ROUNDS {
            let claim = match claimed.take() {
                Some(first) => first,
                None => self.store.claim(&record, &condition).await?,
            };
            let refused_by = match claim {
                Conditional::Written => None,
                Conditional::Refused(Some(current)) => Some(*current),
                // The store did not say what refused the claim: read it once.
                Conditional::Refused(None) => match self.store.get(&record.key).await? {
                    Some(current) => Some(current),
                    None => {
                        condition = self.free(policy, now);
                        continue;
                    }
                },
            };
            // Refused by our own claim: the SDK retried a put whose first
            // answer was lost, and that first attempt wrote it. It is ours.
            let current = match refused_by {
                Some(current) if !current.is_same_claim(&record) => current,
                _ => {
                    if taking_over {
                        telemetry::took_over();
                    }
                    let record = self.launch(record, name, request).await?;
                    let outcome =
                        stopped.map_or(StartOutcome::Started, |(terminated, _)| StartOutcome::Replaced { terminated });
                    return Ok(Started { execution_arn: record.execution_arn, outcome });
                }
            };
            let now = self.now();
            let mut decision =
                decide(&current, policy, now, Trust::of(&current, now, self.timings.reconcile_after_millis));
            // A signal's event goes to a run Step Functions runs, not to a claim whose start
            // may yet fail (its mailbox would go with it): Step Functions is asked first.
            // (Not a record in doubt: not counted as a reconciliation.)
            let confirming = event.is_some() && decision == Decision::UseExisting && current.status == Status::Starting;
            if confirming {
                decision = Decision::Verify;
            }
            let current = if decision == Decision::Verify {
                let verified = if confirming { self.confirm(&current).await? } else { self.verify(&current).await? };
                match verified {
                    // Not started, and its starter may still be at it.
                    None if current.starter_may_be_alive(now) => {
                        return Err(Error::StillStarting(request.instance_id.to_string()));
                    }
                    // Its starter died before starting it: take the record over.
                    None => {
                        condition = ClaimCondition::takeover(current.execution_name);
                        taking_over = true;
                        continue;
                    }
                    Some(known) => {
                        // (A newer claim found in its place is not trusted: found by the model check.)
                        let trust = Trust::after_verifying(&current, &known, now, self.timings.reconcile_after_millis);
                        decision = decide(&known, policy, now, trust);
                        known
                    }
                }
            } else {
                current
            };
            let current = if decision == Decision::Replace && stopped.is_none() {
                match self.stop_to_replace(&current, request).await? {
                    Stopped::AlreadyEnded(known) => {
                        decision = decide(&known, policy, now, Trust::CONFIRMED);
                        *known
                    }
                    Stopped::ForReplace => {
                        stopped = Some((current.execution_arn.clone(), current.redrive_count));
                        current
                    }
                }
            } else {
                current
            };
            taking_over = false;
            condition = match decision {
                Decision::Replay => {
                    return Ok(Started { execution_arn: current.execution_arn, outcome: StartOutcome::Replayed });
                }
                Decision::UseExisting => {
                    return Ok(Started { execution_arn: current.execution_arn, outcome: StartOutcome::Existing });
                }
                Decision::Reject => return Err(already_exists()),
                Decision::ReuseForbidden => {
                    return Err(Error::ReuseForbidden {
                        instance_id: request.instance_id.to_string(),
                        status: current.status,
                        reuse: policy.reuse,
                    });
                }
                Decision::Reuse | Decision::Verify => self.free(policy, now),
                // The one this start stopped (above): claim conditional on it, under the reuse policy.
                Decision::Replace if stopped == Some((current.execution_arn.clone(), current.redrive_count)) => {
                    ClaimCondition::replacing(&current, policy.reuse)
                }
                // A newer start replaced the one this start stopped, or a rewind redrove it: that one stands.
                Decision::Replace => return Err(already_exists()),
                Decision::FinishReplace => {
                    let condition = ClaimCondition::replacing(&current, policy.reuse);
                    stopped = Some((current.execution_arn, current.redrive_count));
                    condition
                }
            };
        }
        Err(Error::Contention(request.instance_id.to_string()))
    }

    /// The first claim of a start, at the same time as the state machine
    /// check on a cold start's first start (later ones find its result).
    async fn first_claim(
        &self,
        record: &Record,
        name: &ExecutionName,
        condition: &ClaimCondition,
    ) -> Result<Conditional> {
        let Some(check) = &self.standard else {
            return Ok(self.store.claim(record, condition).await?);
        };
        let (claimed, checked) = tokio::join!(self.store.claim(record, condition), check.run(&self.engine));
        if let Err(misconfigured) = checked {
            if matches!(claimed, Ok(Conditional::Written)) {
                self.release(record, name, &misconfigured.to_string()).await;
            }
            return Err(misconfigured);
        }
        Ok(claimed?)
    }
}
