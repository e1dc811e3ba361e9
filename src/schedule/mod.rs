//! The scheduled trigger's entry point: an EventBridge Scheduler schedule
//! (or a rule's `Schedule` event) whose input names what to start. It runs
//! the same singleton start as the HTTP API.

mod error;
mod input;
mod run;

pub use error::Error;
pub use input::{OCCURRENCE_KEY_WINDOW_MILLIS, Overlap, ScheduledStart};
pub use run::{ScheduleOutcome, handle};
