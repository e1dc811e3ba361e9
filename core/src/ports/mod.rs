//! The two ports the service talks to: where records live ([`InstanceStore`]),
//! and what runs executions ([`Engine`]). Adapters for DynamoDB and Step
//! Functions live in `aws`, in-memory ones in `memory`.

mod engine;
mod store;

pub use engine::{Engine, EngineError, ExecutionState, HistoryChunk, TaskAnswer, WorkflowType};
pub use store::{
    Applied, ClaimCondition, Conditional, ExecutionUpdate, InstanceStore, KeyClaim, KeyEntry, ListPage, Listed,
    MailboxWrite, RaiseGuard, StoreError, Sweep,
};
