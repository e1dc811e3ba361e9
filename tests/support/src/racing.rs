//! A store whose first list that finds something is followed, before anything else, by another
//! request's claim: the race between a page being read and acted on.

use sfn_singleton::domain::mailbox::{RaisedEvent, Wait};
use sfn_singleton::domain::{ExecutionArn, ExecutionName, InstanceKey, Millis, Record, Status};
use sfn_singleton::ports::{
    Applied, ClaimCondition, Conditional, ExecutionUpdate, InstanceStore, KeyClaim, KeyEntry, ListPage, Listed,
    MailboxWrite, RaiseGuard, StoreError, Sweep,
};
use std::sync::Mutex;

/// `inner`, except that right after the first `list` that found something,
/// `claim` is claimed on it (a restart of a listed instance, say), as a
/// concurrent start would.
pub struct ClaimsAfterList<S> {
    /// The store.
    pub inner: S,
    claim: Mutex<Option<Record>>,
}

impl<S> ClaimsAfterList<S> {
    /// `inner`, with `claim` to land after its first list.
    pub fn new(inner: S, claim: Record) -> Self {
        Self { inner, claim: Mutex::new(Some(claim)) }
    }
}

impl<S: InstanceStore> InstanceStore for ClaimsAfterList<S> {
    async fn list(&self, page: ListPage<'_>) -> Result<Listed, StoreError> {
        let listed = self.inner.list(page).await?;
        if listed.records.is_empty() {
            return Ok(listed);
        }
        let claim = self.claim.lock().ok().and_then(|mut claim| claim.take());
        if let Some(claim) = claim {
            let condition = ClaimCondition::Free { reusable: &Status::TERMINAL, not_started_by: None };
            assert_eq!(self.inner.claim(&claim, &condition).await?, Conditional::Written, "the racing claim");
        }
        Ok(listed)
    }
    async fn claim(&self, record: &Record, condition: &ClaimCondition) -> Result<Conditional, StoreError> {
        self.inner.claim(record, condition).await
    }
    async fn get(&self, key: &InstanceKey) -> Result<Option<Record>, StoreError> {
        self.inner.get(key).await
    }
    async fn mark_start_failed(
        &self,
        key: &InstanceKey,
        execution_name: &ExecutionName,
        reason: &str,
        now: Millis,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.inner.mark_start_failed(key, execution_name, reason, now, expires_at).await
    }
    async fn apply(&self, key: &InstanceKey, update: &ExecutionUpdate) -> Result<Applied, StoreError> {
        self.inner.apply(key, update).await
    }
    async fn put_key(&self, entry: &KeyEntry, now: Millis) -> Result<KeyClaim, StoreError> {
        self.inner.put_key(entry, now).await
    }
    async fn get_key(&self, key_hash: &str) -> Result<Option<KeyEntry>, StoreError> {
        self.inner.get_key(key_hash).await
    }
    async fn replace_key(&self, entry: &KeyEntry, execution_name: &ExecutionName) -> Result<bool, StoreError> {
        self.inner.replace_key(entry, execution_name).await
    }
    async fn delete_key(&self, key_hash: &str, execution_name: &ExecutionName) -> Result<(), StoreError> {
        self.inner.delete_key(key_hash, execution_name).await
    }
    async fn purge(&self, key: &InstanceKey, run: Option<&ExecutionName>) -> Result<Conditional, StoreError> {
        self.inner.purge(key, run).await
    }
    async fn add_event(
        &self,
        key: &InstanceKey,
        event: &RaisedEvent,
        guard: &RaiseGuard,
    ) -> Result<MailboxWrite, StoreError> {
        self.inner.add_event(key, event, guard).await
    }
    async fn add_wait(&self, key: &InstanceKey, arn: &ExecutionArn, wait: &Wait) -> Result<MailboxWrite, StoreError> {
        self.inner.add_wait(key, arn, wait).await
    }
    async fn sweep(&self, key: &InstanceKey, sweep: &Sweep<'_>) -> Result<Conditional, StoreError> {
        self.inner.sweep(key, sweep).await
    }

    async fn due_for_sweep(&self, now: Millis, limit: usize) -> Result<Vec<InstanceKey>, StoreError> {
        self.inner.due_for_sweep(now, limit).await
    }
}
