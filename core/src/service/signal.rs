//! Signal-with-start (Temporal's answer to the singleton problem): raise an
//! event into the instance's live run, or start a run with the event already
//! buffered for its first wait of that name.

use super::error::{Error, Result};
use super::raise::{RaiseOutcome, Raised, fresh_raise_id, keyed_event_id, unconfirmed};
use super::request::{StartOutcome, StartRequest, Started};
use super::singleton::{MAX_CLAIM_ROUNDS, Singleton};
use super::telemetry;
use crate::domain::instance_id::hex;
use crate::domain::mailbox::{EventName, RaisedEvent, check_body_size};
use crate::domain::policy::{ConflictPolicy, StartPolicy};
use crate::domain::{ExecutionArn, ExecutionName, IdempotencyKey, StartToken};
use crate::ports::{Engine, InstanceStore, KeyEntry, RaiseGuard};
use sha2::{Digest, Sha256};

/// What a signal-with-start did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signaled {
    /// A new run started, the event buffered in it from its claim.
    Started(Started),
    /// The live run got the event.
    Raised {
        /// The run.
        execution_arn: ExecutionArn,
        /// Where the event is in it.
        outcome: RaiseOutcome,
    },
    /// The request's idempotency key signaled before: the run it started or
    /// raised into, and where the event is now.
    Replayed {
        /// The run.
        execution_arn: ExecutionArn,
        /// Where the event is in it.
        outcome: RaiseOutcome,
    },
}

/// How a raise into a run the request found live ended.
enum IntoLive {
    Raised(Raised),
    /// The run ended before the event was written, and no attempt landed in it.
    Gone,
    /// A keyed signal's run was replaced (or purged) since: another request with the
    /// same key may have raised the event there, and its record says no more.
    Unknown,
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Raises `name` (the request's input as its body) into the instance's
    /// live run, or, if none runs, starts one whose claim holds the event
    /// already (so its first wait of that name takes it). Either way the event
    /// lands in exactly one run: the one that was live when it was written, or
    /// the one this request started. When the live run ends while the event
    /// is raised, and no attempt landed in it, the request starts a new run
    /// instead; when an attempt may have landed in a run that has since been
    /// replaced, it answers `EventUnconfirmed` rather than risk a second copy.
    ///
    /// With an idempotency key, the key's entry names the run the event goes
    /// to before it can land there (the run the claim starts, or the live run
    /// it found): a retry goes to that run only, with the same event ID.
    ///
    /// Calls: a new run, as a start (a conditional put + StartExecution; with
    /// a key, + the key's put); a live run, the refused put + a raise (a
    /// conditional update, + SendTaskSuccess if a wait is there; with a key,
    /// + the key's put and its move to that run).
    pub async fn signal_with_start(&self, request: StartRequest<'_>, name: &EventName) -> Result<Signaled> {
        check_body_size(request.input).map_err(Error::InvalidEvent)?;
        // Whatever runs is used, not refused or replaced: the event goes to it.
        let policy = StartPolicy { on_conflict: ConflictPolicy::UseExisting, ..request.policy.clone() };
        let request = StartRequest { policy: &policy, ..request };
        let now = self.now();
        let Some(key) = &policy.idempotency_key else {
            let event =
                RaisedEvent { id: fresh_raise_id(), name: name.clone(), body: request.input.to_owned(), at: now };
            return self.signal(request, &event, None).await;
        };
        let digest = signal_digest(request, name);
        let event = RaisedEvent {
            id: keyed_event_id(key, &digest),
            name: name.clone(),
            body: request.input.to_owned(),
            at: now,
        };
        let run = ExecutionName::new(request.instance_id, StartToken::generate(now));
        let mut entry = KeyEntry {
            key_hash: key.hash().to_owned(),
            instance_key: request.instance_id.key(),
            execution_name: run.clone(),
            execution_arn: request.state_machine.execution_arn(&run),
            request_digest: digest,
            began: now,
            until: now + self.key_window(request),
        };
        if let Some(replayed) = self.hold_key(&entry, request).await? {
            // The run the key's first request named: the event is in it, or never will be.
            let pinned = run_of(&replayed.execution_arn, request)?;
            let held = KeyEntry {
                execution_name: pinned.clone(),
                execution_arn: replayed.execution_arn.clone(),
                ..entry.clone()
            };
            match self.raise_into_live(request, &event, pinned, true).await? {
                IntoLive::Raised(raised) => {
                    return Ok(Signaled::Replayed { execution_arn: raised.execution_arn, outcome: raised.outcome });
                }
                // That run ended, its record says without the event (the first request died
                // before raising it): this one goes on, the key moved to a run it starts.
                IntoLive::Gone => entry = self.move_key_to_fresh(&held, request).await?,
                // Replaced since: whether the first request raised it there cannot be told.
                IntoLive::Unknown => {
                    return Ok(Signaled::Replayed {
                        execution_arn: replayed.execution_arn,
                        outcome: RaiseOutcome::Ended,
                    });
                }
            }
        }
        let signaled = self.signal(request, &event, Some(entry)).await;
        if let Err(error) = &signaled {
            tracing::warn!(%error, "signal-with-start failed; its key stays with the run it names");
        }
        signaled
    }

    /// The claim, and the raise into the live run it finds, until one of them takes the event.
    /// `entry`: the request's key entry, held, moved to each run before the event can land in it.
    async fn signal(
        &self,
        request: StartRequest<'_>,
        event: &RaisedEvent,
        mut entry: Option<KeyEntry>,
    ) -> Result<Signaled> {
        for _ in 0..MAX_CLAIM_ROUNDS {
            let now = self.now();
            let name = match &entry {
                Some(entry) => entry.execution_name.clone(),
                None => ExecutionName::new(request.instance_id, StartToken::generate(now)),
            };
            let began = std::time::Instant::now();
            let started = self.claim_and_launch(request, &name, now, Some(event)).await;
            telemetry::start_answered(&started, began.elapsed().as_secs_f64() * 1000.0);
            let started = match started {
                Ok(started) => started,
                Err(error) => {
                    // Nothing started and nothing raised: the key's retry starts afresh.
                    if let Some(entry) = &entry
                        && !matches!(error, Error::StartUnconfirmed { .. })
                    {
                        self.release_key(entry).await;
                    }
                    return Err(error);
                }
            };
            if started.outcome != StartOutcome::Existing {
                return Ok(Signaled::Started(started));
            }
            let live = run_of(&started.execution_arn, request)?;
            if let Some(held) = &mut entry {
                // (Its ARN as it is: the live run may be another function's state machine's.)
                *held = self.move_key(held, &live, &started.execution_arn, request).await?;
            }
            match self.raise_into_live(request, event, live, entry.is_some()).await? {
                IntoLive::Raised(raised) => {
                    return Ok(Signaled::Raised { execution_arn: raised.execution_arn, outcome: raised.outcome });
                }
                IntoLive::Unknown => {
                    return Err(unconfirmed(
                        request.instance_id.as_str(),
                        "its run was replaced before the event was written, and a retry with the same \
                         key may have raised it there; a retry with the key answers where it went",
                    ));
                }
                // The ID is free for a run that holds the event (the key moves to it first).
                IntoLive::Gone => {
                    if let Some(held) = &mut entry {
                        *held = self.move_key_to_fresh(held, request).await?;
                    }
                }
            }
        }
        Err(Error::Contention(request.instance_id.to_string()))
    }

    /// Raises the event into `live`. `keyed`: other requests (retries with the same key)
    /// raise the same event ID, so only a record that still names the run tells that none
    /// of them landed in it.
    async fn raise_into_live(
        &self,
        request: StartRequest<'_>,
        event: &RaisedEvent,
        live: ExecutionName,
        keyed: bool,
    ) -> Result<IntoLive> {
        let key = request.instance_id.key();
        match self.add_event(request.instance_id.as_str(), &key, event, &RaiseGuard::Run(live)).await {
            Ok(raised) => Ok(IntoLive::Raised(raised)),
            // The record names the run, ended, and its raise IDs (kept at the end) lack the event's.
            Err(Error::AlreadyTerminal { .. }) => Ok(IntoLive::Gone),
            Err(Error::RunEnded { .. } | Error::InstanceNotFound(_)) if keyed => Ok(IntoLive::Unknown),
            Err(Error::RunEnded { .. } | Error::InstanceNotFound(_)) => Ok(IntoLive::Gone),
            Err(error) => Err(error),
        }
    }

    /// The key's entry, moved to name `run` (conditional on it naming the run it named).
    async fn move_key(
        &self,
        held: &KeyEntry,
        run: &ExecutionName,
        execution_arn: &ExecutionArn,
        request: StartRequest<'_>,
    ) -> Result<KeyEntry> {
        let moved = KeyEntry { execution_name: run.clone(), execution_arn: execution_arn.clone(), ..held.clone() };
        if self.store.replace_key(&moved, &held.execution_name).await? {
            return Ok(moved);
        }
        // Refused: an SDK retry of a move whose answer was lost finds its own entry;
        // otherwise another request with the key moved it first.
        match self.store.get_key(&moved.key_hash).await? {
            Some(now) if now.execution_name == moved.execution_name => Ok(moved),
            _ => Err(Error::Contention(request.instance_id.to_string())),
        }
    }

    /// The key's entry, moved to a fresh execution name: the run the next claim may start.
    async fn move_key_to_fresh(&self, held: &KeyEntry, request: StartRequest<'_>) -> Result<KeyEntry> {
        let fresh = ExecutionName::new(request.instance_id, StartToken::generate(self.now()));
        self.move_key(held, &fresh, &request.state_machine.execution_arn(&fresh), request).await
    }
}

/// What a keyed signal asked for: its function, input and event name.
fn signal_digest(request: StartRequest<'_>, name: &EventName) -> String {
    let start = IdempotencyKey::request_digest(request.function_name, request.input);
    hex(&Sha256::new().chain_update(b"signal\n").chain_update(start).chain_update(name.as_str()).finalize())
}

/// The run an answer names, as a guard takes it.
fn run_of(execution_arn: &ExecutionArn, request: StartRequest<'_>) -> Result<ExecutionName> {
    ExecutionName::parse(execution_arn.name()).map_err(|_| Error::InstanceNotFound(request.instance_id.to_string()))
}
