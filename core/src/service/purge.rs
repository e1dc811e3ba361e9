//! Purge: delete a terminal instance's record.

use super::error::{Error, Result};
use super::singleton::{MAX_CLAIM_ROUNDS, Singleton, pause};
use crate::domain::InstanceId;
use crate::domain::launch::START_ATTEMPTS;
use crate::ports::{Conditional, Engine, InstanceStore, StoreError};

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Deletes a terminal instance's record.
    ///
    /// The attempts are the service's own (the store makes one per call): when
    /// an attempt got no answer, its delete may have landed, and a later
    /// attempt that finds nothing found its own work, not a missing instance.
    pub async fn purge(&self, instance_id: &InstanceId) -> Result<()> {
        let key = instance_id.key();
        let (mut failed_attempts, mut rounds, mut may_have_deleted) = (0, 0, false);
        loop {
            let refused = match self.store.purge(&key, None).await {
                Ok(Conditional::Written) => return Ok(()),
                Ok(Conditional::Refused(refused)) => refused,
                Err(error) => {
                    may_have_deleted |= matches!(error, StoreError::Unavailable(_));
                    failed_attempts += 1;
                    if failed_attempts >= START_ATTEMPTS || !error.is_transient() {
                        return Err(error.into());
                    }
                    pause(failed_attempts).await;
                    continue;
                }
            };
            let current = match refused {
                Some(current) => *current,
                None => match self.store.get(&key).await? {
                    Some(current) => current,
                    None if may_have_deleted => return Ok(()),
                    None => return Err(Error::InstanceNotFound(instance_id.to_string())),
                },
            };
            if !self.reconcile(current).await?.status.is_terminal() {
                return Err(Error::StillRunning(instance_id.to_string()));
            }
            rounds += 1;
            if rounds >= MAX_CLAIM_ROUNDS {
                return Err(Error::Contention(instance_id.to_string()));
            }
        }
    }
}
