//! sfn-singleton: start an AWS Step Functions execution for an instance ID
//! only when no execution for that ID is still running — decided by one
//! conditional DynamoDB write, so concurrent starts cannot race.
//!
//! Floors, each using only those below it: `bin/` → `http` → `service` →
//! `ports` → `domain`. `aws` implements the ports.

pub mod aws;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod memory;
pub mod ports;
pub mod schedule;
pub mod service;

pub use error::{Error, Result};
