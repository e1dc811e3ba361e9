//! Signal-with-start (Temporal's answer to the singleton problem): raise an
//! event into the instance's live run, or start a run with the event already
//! buffered for its first wait of that name.

use super::error::{Error, Result};
use super::raise::{RaiseOutcome, fresh_raise_id};
use super::request::{StartOutcome, StartRequest, Started};
use super::singleton::{MAX_CLAIM_ROUNDS, Singleton};
use super::telemetry;
use crate::domain::mailbox::{EventName, RaisedEvent, check_body_size};
use crate::domain::policy::{ConflictPolicy, StartPolicy};
use crate::domain::{ExecutionArn, ExecutionName, StartToken};
use crate::ports::{Engine, InstanceStore, RaiseGuard};

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
    /// Calls: a new run, as a start (a conditional put + StartExecution); a
    /// live run, the refused put + a raise (a conditional update, +
    /// SendTaskSuccess if a wait is there).
    pub async fn signal_with_start(&self, request: StartRequest<'_>, name: &EventName) -> Result<Signaled> {
        if request.policy.idempotency_key.is_some() {
            // A retry after the run the first attempt raised into ended, and another replaced it,
            // could not tell whether that attempt landed: keys need the run pinned first.
            return Err(Error::Unsupported(
                "a signal-with-start takes no Idempotency-Key yet: raise with a key \
                 (POST /instances/{id}/raiseEvent/{eventName}), or start with one",
            ));
        }
        check_body_size(request.input).map_err(Error::InvalidEvent)?;
        let event =
            RaisedEvent { id: fresh_raise_id(), name: name.clone(), body: request.input.to_owned(), at: self.now() };
        // Whatever runs is used, not refused or replaced: the event goes to it.
        let policy = StartPolicy { on_conflict: ConflictPolicy::UseExisting, ..request.policy.clone() };
        let request = StartRequest { policy: &policy, ..request };
        let key = request.instance_id.key();
        for _ in 0..MAX_CLAIM_ROUNDS {
            let now = self.now();
            let name = ExecutionName::new(request.instance_id, StartToken::generate(now));
            let began = std::time::Instant::now();
            let started = self.claim_and_launch(request, &name, now, Some(&event)).await;
            telemetry::start_answered(&started, began.elapsed().as_secs_f64() * 1000.0);
            let started = started?;
            if started.outcome != StartOutcome::Existing {
                return Ok(Signaled::Started(started));
            }
            let live = ExecutionName::parse(started.execution_arn.name())
                .map_err(|_| Error::InstanceNotFound(request.instance_id.to_string()))?;
            match self.add_event(request.instance_id.as_str(), &key, &event, &RaiseGuard::Run(live)).await {
                Ok(raised) => {
                    return Ok(Signaled::Raised { execution_arn: raised.execution_arn, outcome: raised.outcome });
                }
                // It ended (or was replaced) before the event was written, and no attempt
                // landed in it: the ID is free for a run that holds the event.
                Err(Error::RunEnded { .. } | Error::AlreadyTerminal { .. } | Error::InstanceNotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Err(Error::Contention(request.instance_id.to_string()))
    }
}
