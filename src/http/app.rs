//! The HTTP Lambda's state.

use crate::config::Config;
use crate::domain::listing::TokenSigner;
use crate::service::Singleton;

/// The HTTP Lambda's state: built once per cold start, borrowed by every request.
pub struct App<S, E> {
    /// The service.
    pub service: Singleton<S, E>,
    /// The configuration.
    pub config: Config,
}

impl<S, E> App<S, E> {
    /// The signer of continuation tokens (lists, bulk purges, histories), with the deployment's key.
    pub(super) fn token_signer(&self) -> TokenSigner {
        TokenSigner::new(self.config.page_token_key.as_bytes())
    }
}
