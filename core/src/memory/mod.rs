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
//! reports the error and cause of a stop; a task token is taken once, while
//! its task waits and its execution runs, and is `Closed` after. Both take faults one call at a time
//! ([`MemoryStore::fail_next`], [`MemoryEngine::script`]), including the one an
//! emulator cannot make: a call that takes effect and loses its answer.

mod engine;
mod lock;
mod script;
mod store;

pub use engine::{MemoryEngine, TaskOutcome};
pub use script::{EngineOp, EngineScript, Scripted};
pub use store::{MemoryStore, StoreFault, StoreOp};
