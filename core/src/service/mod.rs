//! The singleton service: the start algorithm and every other operation on
//! an instance, generic over the two ports ([`crate::ports::InstanceStore`], [`crate::ports::Engine`]).
//! One file per operation; the rules they apply are in `crate::domain`.

mod delivery;
mod error;
mod events;
mod history;
mod keys;
mod launch;
mod list;
mod purge;
mod purge_matching;
mod raise;
mod reconcile;
mod replace;
mod request;
mod rewind;
mod signal;
mod singleton;
mod standard_check;
mod start;
pub mod telemetry;
mod terminate;
#[cfg(test)]
mod tests;
mod wait;

pub use delivery::SweepReport;
pub use error::{Error, Result};
pub use events::{EventOutcome, StatusChange};
pub use list::Page;
pub use purge_matching::Purged;
pub use raise::{RaiseOutcome, RaiseRequest, Raised};
pub use request::{StartOutcome, StartRequest, Started};
pub use signal::Signaled;
pub use singleton::{Clock, Singleton, system_clock};
pub use standard_check::StandardCheck;
pub use wait::{INVALID_WAIT_ERROR, TOO_MANY_WAITS_ERROR, WAIT_NOT_CURRENT_ERROR, WaitOutcome, WaitRequest};
