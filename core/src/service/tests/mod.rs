//! The service's rules on in-memory ports (`crate::memory`): no emulator,
//! the store's real conditions, faults one call at a time, paused time (a
//! backoff or a lease costs nothing). Given / when / then, one file per
//! operation; what only a real store shows stays in the integration tests.

mod events;
mod history;
mod keys;
mod launch;
mod list;
mod mailbox;
mod purge;
mod reconcile;
mod rewind;
mod signal;
mod start;
mod terminate;

use super::*;
use crate::domain::policy::{ConflictPolicy, ReusePolicy};
use crate::domain::{
    ExecutionArn, ExecutionName, IdempotencyKey, InstanceId, Millis, Record, StartPolicy, StateMachineArn, Status,
    Timings,
};
use crate::memory::{MemoryEngine, MemoryStore};
use crate::ports::{ClaimCondition, Conditional, EngineError};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The counters the service records (`telemetry`) on this thread, by name,
/// while installed: a paused-time test runs on one thread.
#[derive(Clone, Default)]
pub(super) struct Counters(Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>);

struct Counter(String, Counters);

impl metrics::CounterFn for Counter {
    fn increment(&self, value: u64) {
        *self.1.0.lock().unwrap_or_else(|p| p.into_inner()).entry(self.0.clone()).or_default() += value;
    }

    fn absolute(&self, value: u64) {
        self.1.0.lock().unwrap_or_else(|p| p.into_inner()).insert(self.0.clone(), value);
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(Arc::new(Counter(key.name().to_owned(), self.clone())))
    }

    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }

    fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

impl Counters {
    /// Counters installed for this thread until the guard drops.
    pub(super) fn install() -> (Self, metrics::LocalRecorderGuard<'static>) {
        let counters = Counters::default();
        let recorder: &'static Counters = Box::leak(Box::new(counters.clone()));
        (counters, metrics::set_default_local_recorder(recorder))
    }

    /// How often `name` was counted.
    pub(super) fn get(&self, name: &str) -> u64 {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(name).copied().unwrap_or(0)
    }
}

pub(super) const LEASE: Millis = 60_000;
pub(super) const RECONCILE_AFTER: Millis = 300_000;

pub(super) struct Given {
    pub(super) service: Singleton<MemoryStore, MemoryEngine>,
    pub(super) now: Arc<AtomicI64>,
    /// How far each reading of the service's clock moves it on (0: it stands still).
    pub(super) tick: Arc<AtomicI64>,
    pub(super) id: InstanceId,
    pub(super) machine: StateMachineArn,
}

pub(super) fn given() -> Given {
    let machine = StateMachineArn::parse("arn:aws:states:us-east-1:123456789012:stateMachine:Orders")
        .unwrap_or_else(|e| panic!("{e}"));
    let now = Arc::new(AtomicI64::new(1_000_000));
    let tick = Arc::new(AtomicI64::new(0));
    let (clock_now, clock_tick) = (now.clone(), tick.clone());
    let clock: Clock = Arc::new(move || clock_now.fetch_add(clock_tick.load(Ordering::SeqCst), Ordering::SeqCst));
    let timings = Timings {
        lease_millis: LEASE,
        reconcile_after_millis: RECONCILE_AFTER,
        retention_secs: 86_400,
        idempotency_window_millis: 600_000,
    };
    let engine = MemoryEngine::with_state_machines([&machine]);
    let service = Singleton::new(MemoryStore::new(), engine, timings, clock);
    Given { service, now, tick, id: InstanceId::parse("order-1").unwrap_or_else(|e| panic!("{e}")), machine }
}

impl Given {
    pub(super) async fn start_with(&self, policy: StartPolicy, input: &str) -> Result<Started> {
        self.service
            .start(StartRequest {
                instance_id: &self.id,
                function_name: "Orders",
                state_machine: &self.machine,
                input,
                policy: &policy,
                reason: None,
                request_digest: None,
                min_key_window_millis: 0,
            })
            .await
    }

    pub(super) async fn start(&self) -> Result<Started> {
        self.start_with(StartPolicy::default(), "{}").await
    }

    pub(super) fn keyed(&self, key: &str) -> StartPolicy {
        let key = IdempotencyKey::parse(key, self.id.key().as_str()).unwrap_or_else(|e| panic!("{e}"));
        StartPolicy { idempotency_key: Some(key), ..StartPolicy::default() }
    }

    pub(super) fn record(&self) -> Option<Record> {
        self.service.store().record(&self.id.key())
    }

    pub(super) fn advance(&self, millis: Millis) {
        self.now.fetch_add(millis, Ordering::SeqCst);
    }

    /// The execution ends, and its event is delivered.
    pub(super) async fn ends(&self, execution_arn: &ExecutionArn, status: Status) {
        self.service.engine().end(execution_arn, status, 0);
        let outcome = self.service.apply_event(self.event(execution_arn)).await;
        assert_eq!(outcome.ok(), Some(EventOutcome::Applied));
    }

    /// The status event Step Functions would send now for the execution.
    pub(super) fn event(&self, execution_arn: &ExecutionArn) -> StatusChange {
        let state = self.service.engine().state(execution_arn).unwrap_or_else(|| panic!("no {execution_arn}"));
        let name = ExecutionName::parse(execution_arn.name()).unwrap_or_else(|e| panic!("{e}"));
        StatusChange { execution_arn: execution_arn.clone(), name, state, output_omitted: false }
    }
}

pub(super) fn arn_of(started: &Result<Started>) -> ExecutionArn {
    started.as_ref().map(|s| s.execution_arn.clone()).unwrap_or_else(|e| panic!("{e}"))
}

/// A start policy.
pub(super) fn policy(on_conflict: ConflictPolicy, reuse: ReusePolicy) -> StartPolicy {
    StartPolicy { on_conflict, reuse, idempotency_key: None }
}

/// The status of the instance's record, if any.
pub(super) fn status_of(given: &Given) -> Option<Status> {
    given.record().map(|record| record.status)
}

/// A Step Functions refusal, not the caller's fault.
pub(super) fn refused(code: &str) -> EngineError {
    EngineError::Refused { code: code.into(), message: "refused".into(), caller_fault: false }
}

/// Step Functions throttling.
pub(super) fn throttled() -> EngineError {
    EngineError::Throttled { code: "ThrottlingException".into(), message: "slow down".into() }
}
