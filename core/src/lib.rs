//! sfn-singleton's core: the rules and the operations, on two ports, with
//! no AWS or Lambda types — what the unit tests and the model check
//! (`tests/model.rs` in this crate) exercise, built optimised in the dev profile for the
//! model check. The `sfn-singleton` crate re-exports these modules under
//! the same names and adds the AWS adapters and the Lambda entry points.
//!
//! # Layout
//!
//! Dependencies point one way: each module uses only modules listed before it
//! (`infra/checks/imports.py` checks that none imports one that imports it back).
//!
//! - [`domain`]: the pure rules — instance IDs and keys, execution names, the
//!   record and its statuses, start policies and the decisions they make, the
//!   launch verdict, lists and their tokens, rewinds, history pages, limits and
//!   timings. No I/O, no AWS types.
//! - [`ports`]: the two traits the service talks to — [`ports::InstanceStore`]
//!   (where records and idempotency keys live) and [`ports::Engine`] (what runs
//!   executions) — and the conditions and errors they speak in.
//! - [`service`]: the singleton operations on the ports, one file per
//!   operation (start, keys, launch, replace, reconcile, terminate, purge,
//!   bulk purge, list, history, rewind, events), with their own [`service::Error`].
//! - [`memory`]: in-memory ports with the store's real condition semantics and
//!   engine calls scriptable one at a time, for the service's unit tests, the
//!   benchmark's handler timing and the integration tests' engine wrapper.
#![warn(missing_docs)]

pub mod domain;
pub mod memory;
pub mod ports;
pub mod service;
