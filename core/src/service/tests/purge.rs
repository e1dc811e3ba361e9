//! Purge: only ended instances, with the service's own attempts.

use super::*;
use crate::memory::{StoreFault, StoreOp};
use crate::ports::StoreError;

#[tokio::test(start_paused = true)]
async fn a_purge_whose_answer_was_lost_is_done_and_an_unknown_one_is_not_found() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.ends(&arn, Status::Failed).await;
    given.service.store().fail_next(StoreOp::Purge, StoreFault::LandsThenFails);
    assert!(given.service.purge(&given.id).await.is_ok());
    assert!(matches!(given.service.purge(&given.id).await, Err(Error::InstanceNotFound(_))));
}

#[tokio::test(start_paused = true)]
async fn purge_deletes_an_ended_instance_and_refuses_a_running_one() {
    let given = given();
    let arn = arn_of(&given.start().await);
    assert!(matches!(given.service.purge(&given.id).await, Err(Error::StillRunning(_))));
    assert!(given.record().is_some(), "kept");
    given.ends(&arn, Status::Succeeded).await;
    assert!(given.service.purge(&given.id).await.is_ok());
    assert_eq!(given.record(), None);
}

#[tokio::test(start_paused = true)]
async fn purge_of_a_run_that_ended_unseen_reconciles_it_first() {
    let given = given();
    let arn = arn_of(&given.start().await);
    assert_eq!(given.service.apply_event(given.event(&arn)).await.ok(), Some(EventOutcome::Applied));
    given.service.engine().end(&arn, Status::Failed, 0);
    given.advance(RECONCILE_AFTER + 1);
    assert!(given.service.purge(&given.id).await.is_ok());
    assert_eq!(given.record(), None);
}

#[tokio::test(start_paused = true)]
async fn purge_retries_a_throttled_delete_itself() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.ends(&arn, Status::Failed).await;
    let store = given.service.store();
    store.fail_next(StoreOp::Purge, StoreFault::Fails(StoreError::Throttled("slow down".into())));
    store.fail_next(StoreOp::Purge, StoreFault::Fails(StoreError::Throttled("slow down".into())));
    assert!(given.service.purge(&given.id).await.is_ok());
    assert_eq!(given.record(), None);
}

#[tokio::test(start_paused = true)]
async fn purge_gives_up_after_its_attempts_and_deletes_nothing() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.ends(&arn, Status::Failed).await;
    for _ in 0..3 {
        given.service.store().fail_next(StoreOp::Purge, StoreFault::Fails(StoreError::Throttled("slow".into())));
    }
    assert!(matches!(given.service.purge(&given.id).await, Err(Error::Store(StoreError::Throttled(_)))));
    assert!(given.record().is_some());
}
