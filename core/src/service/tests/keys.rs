//! Idempotency keys: replays, reuse for another request, a key whose first
//! request is still at it or died, a key whose start failed, the window.

use super::*;
use crate::memory::{EngineOp, Scripted};

#[tokio::test(start_paused = true)]
async fn a_key_replays_its_start_after_the_record_was_replaced_or_purged() {
    let given = given();
    let first = arn_of(&given.start_with(given.keyed("k-1"), r#"{"n":1}"#).await);
    given.ends(&first, Status::Succeeded).await;
    let other = arn_of(&given.start_with(StartPolicy::default(), r#"{"n":2}"#).await);
    given.ends(&other, Status::Succeeded).await;
    let retry = given.start_with(given.keyed("k-1"), r#"{"n":1}"#).await;
    assert_eq!(retry.ok(), Some(Started { execution_arn: first.clone(), outcome: StartOutcome::Replayed }));
    assert!(given.service.purge(&given.id).await.is_ok());
    let after_purge = given.start_with(given.keyed("k-1"), r#"{"n":1}"#).await;
    assert_eq!(after_purge.map(|s| s.execution_arn).ok(), Some(first));
    assert!(matches!(given.start_with(given.keyed("k-1"), r#"{"n":3}"#).await, Err(Error::IdempotencyKeyReused(_))));
    assert_eq!(given.record(), None, "replays write no record");
}

#[tokio::test(start_paused = true)]
async fn a_key_whose_first_request_is_still_starting_answers_still_starting_then_is_taken_over() {
    let given = given();
    given.service.engine().script(EngineOp::Start, Scripted::Hangs);
    let first =
        tokio::time::timeout(std::time::Duration::from_millis(50), given.start_with(given.keyed("k"), "{}")).await;
    assert!(first.is_err(), "the first request hung before starting anything");
    let retry = given.start_with(given.keyed("k"), "{}").await;
    assert!(matches!(retry, Err(Error::StillStarting(_))), "{retry:?}");
    given.advance(LEASE);
    let after_lease = given.start_with(given.keyed("k"), "{}").await;
    assert_eq!(after_lease.as_ref().ok().map(|s| &s.outcome), Some(&StartOutcome::Started));
    assert_eq!(given.service.engine().running(), vec![arn_of(&after_lease)]);
}

#[tokio::test(start_paused = true)]
async fn a_key_whose_start_was_refused_starts_afresh_on_its_retry() {
    let given = given();
    given.service.engine().script(EngineOp::Start, Scripted::Fails(refused("AccessDeniedException")));
    assert!(matches!(given.start_with(given.keyed("k"), "{}").await, Err(Error::StartRefused(_))));
    let retry = given.start_with(given.keyed("k"), "{}").await;
    assert_eq!(retry.as_ref().ok().map(|s| &s.outcome), Some(&StartOutcome::Started), "not a replay of a failure");
}

#[tokio::test(start_paused = true)]
async fn a_key_past_its_window_is_a_new_request() {
    let given = given();
    let first = arn_of(&given.start_with(given.keyed("k"), "{}").await);
    given.ends(&first, Status::Succeeded).await;
    given.advance(600_000);
    let later = given.start_with(given.keyed("k"), "{}").await;
    assert_eq!(later.as_ref().ok().map(|s| &s.outcome), Some(&StartOutcome::Started));
    assert_ne!(arn_of(&later), first);
}

#[tokio::test(start_paused = true)]
async fn a_key_used_with_existing_records_no_entry_and_later_starts_afresh() {
    let given = given();
    let running = arn_of(&given.start().await);
    let policy = StartPolicy { on_conflict: crate::domain::ConflictPolicy::UseExisting, ..given.keyed("k") };
    let existing = given.start_with(policy, "{}").await;
    assert_eq!(existing.ok().map(|s| s.outcome), Some(StartOutcome::Existing));
    given.ends(&running, Status::Succeeded).await;
    let later = given.start_with(given.keyed("k"), "{}").await;
    assert_eq!(later.ok().map(|s| s.outcome), Some(StartOutcome::Started), "the key started nothing before");
}
