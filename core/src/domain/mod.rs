//! Pure domain: no I/O, no AWS types.

pub mod execution_name;
pub mod history;
pub mod instance_id;
pub mod launch;
pub mod limits;
pub mod listing;
pub mod mailbox;
pub mod policy;
pub mod record;
pub mod rewind;
pub mod time;
pub mod timings;

pub use execution_name::{ExecutionArn, ExecutionName, StartToken, StateMachineArn};
pub use instance_id::{InstanceId, InstanceKey, InvalidInstanceId};
pub use policy::{ConflictPolicy, IdempotencyKey, ReusePolicy, StartPolicy};
pub use record::{Millis, Record, Status, StoredInput};
pub use timings::Timings;
