//! One file per route.

mod list;
mod purge;
mod restart;
mod start;
mod status;
mod terminate;

pub(super) use list::list;
pub(super) use purge::purge;
pub(super) use restart::restart;
pub(super) use start::start;
pub(super) use status::status;
pub(super) use terminate::terminate;
