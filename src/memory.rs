//! In-memory ports with the real semantics, for tests, benches and examples
//! that need no emulator.
//!
//! [`MemoryStore`] decides every conditional write with the same conditions
//! the DynamoDB adapter sends (`ClaimCondition::permits`,
//! `ExecutionUpdate::permits`), and can be told to return the old item on a
//! refusal (DynamoDB) or not (dynalite). [`MemoryEngine`] runs executions as
//! Step Functions does where it matters here: a same-name start with the same
//! input is idempotent while the execution runs and `ExecutionAlreadyExists`
//! after; a stop of an ended execution leaves it as it ended; DescribeExecution
//! reports the error and cause of a stop. Both take faults one call at a time
//! ([`MemoryStore::fail_next`], [`MemoryEngine::script`]), including the one an
//! emulator cannot make: a call that takes effect and loses its answer.

use crate::domain::record::{MAX_STORED_CAUSE_BYTES, START_FAILED_ERROR, bounded};
use crate::domain::{ExecutionName, InstanceKey, Millis, Record, StateMachineArn, Status};
use crate::ports::{
    ClaimCondition, Conditional, Engine, EngineError, ExecutionState, ExecutionUpdate, InstanceStore, KeyClaim,
    KeyEntry, StoreError, WorkflowType,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The store's operations, to aim a fault at one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Claim,
    Get,
    MarkStartFailed,
    Apply,
    Purge,
    PutKey,
    GetKey,
    ReplaceKey,
    DeleteKey,
}

/// A fault for the next call of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreFault {
    /// Fails before it takes effect.
    Fails(StoreError),
    /// Takes effect, then fails (its answer lost): `Unavailable`.
    LandsThenFails,
}

/// Records and idempotency-key entries, in memory, with DynamoDB's conditions.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<InstanceKey, Record>>,
    keys: Mutex<BTreeMap<String, KeyEntry>>,
    faults: Mutex<VecDeque<(StoreOp, StoreFault)>>,
    /// dynalite's way: a refused write does not return the old item.
    pub hides_old_item: bool,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next call of `op` meets `fault` (faults queue up in order).
    pub fn fail_next(&self, op: StoreOp, fault: StoreFault) {
        locked(&self.faults).push_back((op, fault));
    }

    /// A record as it stands (for assertions).
    pub fn record(&self, key: &InstanceKey) -> Option<Record> {
        locked(&self.records).get(key).cloned()
    }

    /// Deletes a record whatever its status (what DynamoDB's TTL does to a terminal one).
    pub fn expire(&self, key: &InstanceKey) {
        locked(&self.records).remove(key);
    }

    /// The fault aimed at this call of `op`, if any.
    fn fault(&self, op: StoreOp) -> Option<StoreFault> {
        let mut faults = locked(&self.faults);
        let at = faults.iter().position(|(aimed, _)| *aimed == op)?;
        faults.remove(at).map(|(_, fault)| fault)
    }

    /// Runs `write` unless a fault says otherwise.
    fn write<T>(&self, op: StoreOp, write: impl FnOnce() -> T) -> Result<T, StoreError> {
        match self.fault(op) {
            None => Ok(write()),
            Some(StoreFault::Fails(error)) => Err(error),
            Some(StoreFault::LandsThenFails) => {
                write();
                Err(StoreError::Unavailable("injected: the answer was lost".into()))
            }
        }
    }

    fn refused(&self, old: Option<&Record>) -> Conditional {
        Conditional::Refused(old.filter(|_| !self.hides_old_item).cloned().map(Box::new))
    }
}

impl InstanceStore for MemoryStore {
    async fn claim(&self, record: &Record, condition: &ClaimCondition) -> Result<Conditional, StoreError> {
        self.write(StoreOp::Claim, || {
            let mut records = locked(&self.records);
            let current = records.get(&record.key);
            if condition.permits(current) {
                records.insert(record.key.clone(), record.clone());
                Conditional::Written
            } else {
                self.refused(current)
            }
        })
    }

    async fn get(&self, key: &InstanceKey) -> Result<Option<Record>, StoreError> {
        self.write(StoreOp::Get, || locked(&self.records).get(key).cloned())
    }

    async fn mark_start_failed(
        &self,
        key: &InstanceKey,
        execution_name: &str,
        reason: &str,
        now: Millis,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.write(StoreOp::MarkStartFailed, || {
            let mut records = locked(&self.records);
            match records.get_mut(key) {
                Some(record) if record.status == Status::Starting && record.execution_name == execution_name => {
                    record.status = Status::StartFailed;
                    record.updated_at = now;
                    record.lease_until = None;
                    record.error = Some(START_FAILED_ERROR.to_owned());
                    record.cause = Some(bounded(reason.to_owned(), MAX_STORED_CAUSE_BYTES));
                    record.expires_at = Some(expires_at);
                    true
                }
                _ => false,
            }
        })
    }

    async fn apply(&self, key: &InstanceKey, update: &ExecutionUpdate) -> Result<Conditional, StoreError> {
        self.write(StoreOp::Apply, || {
            let mut records = locked(&self.records);
            match records.get_mut(key) {
                Some(record) if update.permits(record) => {
                    *record = update.applied_to(record);
                    Conditional::Written
                }
                current => self.refused(current.as_deref()),
            }
        })
    }

    async fn purge(&self, key: &InstanceKey) -> Result<Conditional, StoreError> {
        self.write(StoreOp::Purge, || {
            let mut records = locked(&self.records);
            match records.get(key) {
                Some(record) if record.status.is_terminal() => {
                    records.remove(key);
                    Conditional::Written
                }
                current => self.refused(current),
            }
        })
    }

    async fn put_key(&self, entry: &KeyEntry, now: Millis) -> Result<KeyClaim, StoreError> {
        self.write(StoreOp::PutKey, || {
            let mut keys = locked(&self.keys);
            match keys.get(&entry.key_hash) {
                Some(held) if held.until > now => {
                    KeyClaim::Taken((!self.hides_old_item).then(|| Box::new(held.clone())))
                }
                _ => {
                    keys.insert(entry.key_hash.clone(), entry.clone());
                    KeyClaim::Written
                }
            }
        })
    }

    async fn get_key(&self, key_hash: &str) -> Result<Option<KeyEntry>, StoreError> {
        self.write(StoreOp::GetKey, || locked(&self.keys).get(key_hash).cloned())
    }

    async fn replace_key(&self, entry: &KeyEntry, execution_name: &str) -> Result<bool, StoreError> {
        self.write(StoreOp::ReplaceKey, || {
            let mut keys = locked(&self.keys);
            let names_it = keys.get(&entry.key_hash).is_some_and(|held| held.execution_name == execution_name);
            if names_it {
                keys.insert(entry.key_hash.clone(), entry.clone());
            }
            names_it
        })
    }

    async fn delete_key(&self, key_hash: &str, execution_name: &str) -> Result<(), StoreError> {
        self.write(StoreOp::DeleteKey, || {
            let mut keys = locked(&self.keys);
            if keys.get(key_hash).is_some_and(|held| held.execution_name == execution_name) {
                keys.remove(key_hash);
            }
        })
    }
}

/// The engine's operations, to script one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineOp {
    Start,
    Stop,
    Describe,
    WorkflowType,
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
/// [`MemoryEngine`] and any engine a test wraps (the emulator's, say) share.
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

#[derive(Debug, Clone)]
struct Execution {
    input: String,
    state: ExecutionState,
}

impl Execution {
    fn running(input: &str) -> Self {
        let state = ExecutionState {
            status: Status::Running,
            redrive_count: 0,
            stop_date: None,
            output: None,
            error: None,
            cause: None,
            input: Some(input.to_owned()),
        };
        Self { input: input.to_owned(), state }
    }
}

/// Step Functions, in memory: Standard state machines and their executions.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    state_machines: Mutex<BTreeMap<String, WorkflowType>>,
    executions: Mutex<BTreeMap<String, Execution>>,
    script: EngineScript,
}

impl MemoryEngine {
    /// An engine that knows these state machines, as Standard workflows.
    pub fn with_state_machines<'a>(state_machines: impl IntoIterator<Item = &'a StateMachineArn>) -> Self {
        let engine = Self::default();
        for state_machine in state_machines {
            engine.add_state_machine(state_machine, WorkflowType::Standard);
        }
        engine
    }

    pub fn add_state_machine(&self, state_machine: &StateMachineArn, kind: WorkflowType) {
        locked(&self.state_machines).insert(state_machine.as_str().to_owned(), kind);
    }

    /// The next call of `op` does what `scripted` says (scripts queue up in order).
    pub fn script(&self, op: EngineOp, scripted: Scripted) {
        self.script.push(op, scripted);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<EngineOp> {
        self.script.calls()
    }

    /// An execution appears running, as a start whose answer was lost and that
    /// landed late (or that DescribeExecution, eventually consistent, missed).
    pub fn land(&self, execution_arn: &str, input: &str) {
        locked(&self.executions).insert(execution_arn.to_owned(), Execution::running(input));
    }

    /// The execution ends (its event is the test's to deliver).
    pub fn end(&self, execution_arn: &str, status: Status, now: Millis) {
        if let Some(execution) = locked(&self.executions).get_mut(execution_arn) {
            execution.state.status = status;
            execution.state.stop_date = Some(now);
        }
    }

    /// An ended execution is redriven from outside: it runs again, one redrive more.
    pub fn redrive(&self, execution_arn: &str) {
        if let Some(execution) = locked(&self.executions).get_mut(execution_arn) {
            execution.state.status = Status::Running;
            execution.state.redrive_count += 1;
            execution.state.stop_date = None;
        }
    }

    /// The executions that run, by ARN.
    pub fn running(&self) -> Vec<String> {
        let executions = locked(&self.executions);
        executions.iter().filter(|(_, e)| e.state.status == Status::Running).map(|(arn, _)| arn.clone()).collect()
    }

    pub fn state(&self, execution_arn: &str) -> Option<ExecutionState> {
        locked(&self.executions).get(execution_arn).map(|e| e.state.clone())
    }
}

fn no_state_machine(state_machine: &StateMachineArn) -> EngineError {
    EngineError::Refused {
        code: "StateMachineDoesNotExist".into(),
        message: format!("State Machine Does Not Exist: '{state_machine}'"),
        caller_fault: false,
    }
}

impl Engine for MemoryEngine {
    async fn start(
        &self,
        state_machine: &StateMachineArn,
        name: &ExecutionName,
        input: &str,
    ) -> Result<(), EngineError> {
        self.script
            .run(EngineOp::Start, async {
                if !locked(&self.state_machines).contains_key(state_machine.as_str()) {
                    return Err(no_state_machine(state_machine));
                }
                let arn = state_machine.execution_arn(name);
                let mut executions = locked(&self.executions);
                match executions.get(&arn) {
                    // Standard workflows: the same name and input again is idempotent while it runs.
                    Some(e) if e.state.status == Status::Running && e.input == input => Ok(()),
                    Some(_) => Err(EngineError::ExecutionAlreadyExists),
                    None => {
                        executions.insert(arn, Execution::running(input));
                        Ok(())
                    }
                }
            })
            .await
    }

    async fn stop(&self, execution_arn: &str, error: &str, cause: &str) -> Result<Option<Millis>, EngineError> {
        self.script
            .run(EngineOp::Stop, async {
                let mut executions = locked(&self.executions);
                let Some(execution) = executions.get_mut(execution_arn) else { return Ok(None) };
                // Stopping an execution that has ended leaves it as it ended.
                if execution.state.status == Status::Running {
                    execution.state.status = Status::Aborted;
                    execution.state.stop_date = Some(0);
                    execution.state.error = Some(error.to_owned());
                    execution.state.cause = Some(cause.to_owned());
                }
                Ok(Some(execution.state.stop_date.unwrap_or(0)))
            })
            .await
    }

    async fn workflow_type(&self, state_machine: &StateMachineArn) -> Result<Option<WorkflowType>, EngineError> {
        let kind = async { Ok(locked(&self.state_machines).get(state_machine.as_str()).copied()) };
        self.script.run(EngineOp::WorkflowType, kind).await
    }

    async fn describe(&self, execution_arn: &str) -> Result<Option<ExecutionState>, EngineError> {
        self.script.run(EngineOp::Describe, async { Ok(self.state(execution_arn)) }).await
    }
}
