//! The HTTP Lambda's state.

use crate::config::Config;
use crate::service::Singleton;

/// The HTTP Lambda's state: built once per cold start, borrowed by every request.
pub struct App<S, E> {
    /// The service.
    pub service: Singleton<S, E>,
    /// The configuration.
    pub config: Config,
}
