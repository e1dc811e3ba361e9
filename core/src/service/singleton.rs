//! The service itself: its ports, timings and clock.

use super::error::{Error, Result};
use super::standard_check::{StandardCheck, check_standard};
use crate::domain::{Millis, StateMachineArn, Timings};
use crate::ports::{Engine, InstanceStore};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The time source; tests move it forward instead of sleeping.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// The machine's clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

/// Claims can lose to concurrent starts that then turn out to be stale or
/// finished; past this many rounds the caller is told to retry.
pub(super) const MAX_CLAIM_ROUNDS: usize = 4;

/// Full-jitter backoff before retry `attempt` (1, 2, …): up to 200 ms × 2^attempt, so a
/// throttled call waits up to 1.2 s over three attempts (within the function's time; the
/// SDK's standard backoff, up to 20 s, would not be).
pub(super) async fn pause(attempt: usize) {
    let ceiling = 200u64 << attempt.min(6);
    tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(0..=ceiling))).await;
}

/// The service: a store, an engine, the timings it applies, and a clock.
pub struct Singleton<S, E> {
    pub(super) store: S,
    pub(super) engine: E,
    pub(super) timings: Timings,
    pub(super) clock: Clock,
    pub(super) standard: Option<Arc<StandardCheck>>,
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// The service on `store` and `engine`, with `timings`, on `clock`.
    pub fn new(store: S, engine: E, timings: Timings, clock: Clock) -> Self {
        Self { store, engine, timings, clock, standard: None }
    }

    /// The engine (tests read its executions).
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The store (tests read its records).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The service's clock, now.
    pub fn now(&self) -> Millis {
        (self.clock)()
    }

    pub(super) fn expires_at(&self, now: Millis) -> i64 {
        now / 1000 + self.timings.retention_secs
    }

    /// Checks that every one of `functions`' state machines exists and is a
    /// Standard workflow (see [`StandardCheck`]).
    pub async fn check_state_machines<'a>(
        &self,
        functions: impl IntoIterator<Item = (&'a String, &'a StateMachineArn)>,
    ) -> Result<()> {
        for (function, state_machine) in functions {
            check_standard(&self.engine, function, state_machine).await?.map_err(Error::Misconfigured)?;
        }
        Ok(())
    }

    /// Makes every start wait for `check` first.
    pub fn with_standard_check(self, check: Arc<StandardCheck>) -> Self {
        Self { standard: Some(check), ..self }
    }
}
