//! Idempotency keys: a key's entry, apart from the record, replays the
//! answer of the key's first request for the key's whole window.

use super::error::{Error, Result};
use super::request::{StartOutcome, StartRequest, Started};
use super::singleton::{MAX_CLAIM_ROUNDS, Singleton};
use crate::domain::{IdempotencyKey, InstanceId, Millis};
use crate::ports::{Engine, InstanceStore, KeyClaim, KeyEntry};

/// What another request's live entry for the same idempotency key means.
enum HeldKey {
    /// Its execution exists: answer as it was answered.
    Replay(Started),
    /// Its request died before starting anything (its lease is over).
    Abandoned,
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// How long the request's idempotency key holds.
    pub(super) fn key_window(&self, request: StartRequest<'_>) -> Millis {
        self.timings.idempotency_window_millis.max(request.min_key_window_millis)
    }

    /// The answer an earlier request with this key got, if its entry is live:
    /// read before a restart reads the record (which may have changed since).
    pub async fn replayed(
        &self,
        instance_id: &InstanceId,
        key: &IdempotencyKey,
        digest: &str,
    ) -> Result<Option<Started>> {
        let now = self.now();
        let Some(held) = self.store.get_key(key.hash()).await?.filter(|held| held.until > now) else {
            return Ok(None);
        };
        Ok(match self.judge_held(&held, digest, instance_id, now).await? {
            HeldKey::Replay(started) => Some(started),
            HeldKey::Abandoned => None,
        })
    }

    /// What a live entry of another request with the same key means for this one.
    async fn judge_held(
        &self,
        held: &KeyEntry,
        digest: &str,
        instance_id: &InstanceId,
        now: Millis,
    ) -> Result<HeldKey> {
        if held.request_digest != digest {
            return Err(Error::IdempotencyKeyReused(instance_id.to_string()));
        }
        if self.engine.describe(&held.execution_arn).await?.is_some() {
            let started = Started { execution_arn: held.execution_arn.clone(), outcome: StartOutcome::Replayed };
            return Ok(HeldKey::Replay(started));
        }
        // Not started (yet): the first request may still be at it.
        if now < held.began + self.timings.lease_millis {
            return Err(Error::StillStarting(instance_id.to_string()));
        }
        // It died before starting anything.
        Ok(HeldKey::Abandoned)
    }

    /// Gives up the key's entry (if it still names `entry`'s run), for a retry to start afresh.
    pub(super) async fn release_key(&self, entry: &KeyEntry) {
        if let Err(error) = self.store.delete_key(&entry.key_hash, &entry.execution_name).await {
            tracing::warn!(%error, "the idempotency key's entry could not be released");
        }
    }

    /// Holds the request's idempotency key for its window, or answers as the
    /// key's first request did. The entry is apart from the record, so a key's
    /// retry replays its start even after the record was replaced or purged.
    pub(super) async fn hold_key(&self, entry: &KeyEntry, request: StartRequest<'_>) -> Result<Option<Started>> {
        for _ in 0..MAX_CLAIM_ROUNDS {
            let now = self.now();
            let held = match self.store.put_key(entry, now).await? {
                KeyClaim::Written => return Ok(None),
                KeyClaim::Taken(Some(held)) => *held,
                // The store did not say what holds it: read it once.
                KeyClaim::Taken(None) => match self.store.get_key(&entry.key_hash).await? {
                    Some(held) if held.until > now => held,
                    _ => continue,
                },
            };
            // Our own put, whose answer was lost to the SDK's retry.
            if held.execution_name == entry.execution_name {
                return Ok(None);
            }
            match self.judge_held(&held, &entry.request_digest, request.instance_id, now).await? {
                HeldKey::Replay(started) => return Ok(Some(started)),
                // The key is this request's now.
                HeldKey::Abandoned if self.store.replace_key(entry, &held.execution_name).await? => return Ok(None),
                HeldKey::Abandoned => {}
            }
        }
        Err(Error::Contention(request.instance_id.to_string()))
    }
}
