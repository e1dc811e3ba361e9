//! Integration tests against the emulator (moto's server) that
//! `scripts/test` starts: one binary, each test with its own table.
#![recursion_limit = "256"]

mod events;
mod faults;
mod history;
mod hostile;
mod list;
mod mailbox;
mod metrics;
mod policy;
mod rewind;
mod schedule;
mod sources;
mod start;
mod status;
