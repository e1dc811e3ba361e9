//! One file per route.

mod list;
mod purge;
mod purge_matching;
mod raise_event;
mod restart;
mod rewind;
mod start;
mod status;
mod terminate;

pub(super) use list::list;
pub(super) use purge::purge;
pub(super) use purge_matching::purge_matching;
pub(super) use raise_event::raise_event;
pub(super) use restart::restart;
pub(super) use rewind::rewind;
pub(super) use start::start;
pub(super) use status::status;
pub(super) use terminate::terminate;
