//! Starts under every policy decision: reject, useExisting, terminateExisting, the
//! finish of a replace, reuse allowed and forbidden, verify, takeover.

use super::*;
use crate::domain::policy::{ConflictPolicy, ReusePolicy};
use crate::domain::record::REPLACED_ERROR;
use crate::memory::{EngineOp, Scripted};
use crate::ports::Engine;

#[tokio::test(start_paused = true)]
async fn a_second_start_of_a_running_id_is_refused_and_starts_nothing() {
    let given = given();
    let first = given.start().await;
    assert_eq!(first.as_ref().map(|s| &s.outcome).ok(), Some(&StartOutcome::Started));
    assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))));
    assert_eq!(given.service.engine().running(), vec![arn_of(&first)]);
}

#[tokio::test(start_paused = true)]
async fn a_dead_starters_claim_is_taken_over_after_its_lease_only() {
    let (counters, _installed) = Counters::install();
    let given = given();
    given.service.engine().script(EngineOp::Start, Scripted::Hangs);
    let dying = tokio::time::timeout(std::time::Duration::from_millis(50), given.start()).await;
    assert!(dying.is_err(), "the starter hung");
    assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))), "within the lease");
    assert_eq!(counters.get("Takeovers"), 0);
    given.advance(LEASE);
    let taken = given.start().await;
    assert_eq!(given.service.engine().running(), vec![arn_of(&taken)]);
    assert_eq!((counters.get("Takeovers"), counters.get("Starts")), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn terminate_existing_over_a_run_that_just_succeeded_keeps_the_reuse_policy() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.service.engine().end(&arn, Status::Succeeded, 0);
    let policy = StartPolicy {
        on_conflict: ConflictPolicy::TerminateExisting,
        reuse: ReusePolicy::AllowFailedOnly,
        idempotency_key: None,
    };
    assert!(matches!(given.start_with(policy, "{}").await, Err(Error::ReuseForbidden { .. })));
    assert_eq!(given.record().map(|r| r.status), Some(Status::Succeeded), "its real end");
}

#[tokio::test(start_paused = true)]
async fn a_refusal_without_the_old_item_reads_it_and_still_refuses() {
    let mut given = given();
    given.service = Singleton::new(
        crate::memory::MemoryStore::hiding_old_item(),
        MemoryEngine::with_state_machines([&given.machine]),
        given.service.timings.clone(),
        given.service.clock.clone(),
    );
    let first = arn_of(&given.start().await);
    assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))));
    assert_eq!(given.service.engine().running(), vec![first]);
}

#[tokio::test(start_paused = true)]
async fn use_existing_answers_with_the_running_execution_and_starts_nothing() {
    let given = given();
    let first = arn_of(&given.start().await);
    let again = given.start_with(policy(ConflictPolicy::UseExisting, ReusePolicy::AllowAll), "{}").await;
    assert_eq!(again.ok(), Some(Started { execution_arn: first.clone(), outcome: StartOutcome::Existing }));
    assert_eq!(given.service.engine().running(), vec![first]);
}

#[tokio::test(start_paused = true)]
async fn terminate_existing_stops_the_running_one_and_starts_one_claim_conditional_on_it() {
    let given = given();
    let first = arn_of(&given.start().await);
    let replaced = given.start_with(policy(ConflictPolicy::TerminateExisting, ReusePolicy::AllowAll), "{}").await;
    let second = arn_of(&replaced);
    assert_eq!(replaced.ok().map(|s| s.outcome), Some(StartOutcome::Replaced { terminated: first.clone() }));
    let stopped = given.service.engine().state(&first);
    assert_eq!(stopped.as_ref().map(|s| s.status), Some(Status::Aborted));
    assert_eq!(stopped.and_then(|s| s.error).as_deref(), Some(REPLACED_ERROR));
    assert_eq!(given.service.engine().running(), vec![second.clone()]);
    assert_eq!(given.record().map(|r| r.execution_arn), Some(second.clone()));
    // The stopped run's ABORTED event, later, is about an older run: ignored.
    let late = given.service.apply_event(given.event(&first)).await;
    assert_eq!(late.ok(), Some(EventOutcome::Ignored));
    assert_eq!(status_of(&given), Some(Status::Starting));
}

#[tokio::test(start_paused = true)]
async fn a_replace_whose_claim_did_not_land_is_finished_by_the_next_replace_whatever_the_reuse_policy() {
    let given = given();
    let first = arn_of(&given.start().await);
    // A replace stopped it and died before its claim: the stop's event reached the record.
    let stopped = given.service.engine().stop(&first, REPLACED_ERROR, "replaced").await;
    assert!(matches!(stopped, Ok(Some(_))));
    let recorded = given.service.apply_event(given.event(&first)).await;
    assert_eq!(recorded.ok(), Some(EventOutcome::Applied));
    let plain = given.start_with(policy(ConflictPolicy::Reject, ReusePolicy::Reject), "{}").await;
    assert!(matches!(plain, Err(Error::ReuseForbidden { .. })), "{plain:?}");
    let finished = given.start_with(policy(ConflictPolicy::TerminateExisting, ReusePolicy::Reject), "{}").await;
    assert_eq!(finished.as_ref().ok().map(|s| &s.outcome), Some(&StartOutcome::Replaced { terminated: first }));
    assert_eq!(given.service.engine().running(), vec![arn_of(&finished)]);
}

#[tokio::test(start_paused = true)]
async fn an_ended_run_starts_again_only_as_the_reuse_policy_allows() {
    for (ended, reuse, allowed) in [
        (Status::Succeeded, ReusePolicy::AllowAll, true),
        (Status::Succeeded, ReusePolicy::AllowFailedOnly, false),
        (Status::Failed, ReusePolicy::AllowFailedOnly, true),
        (Status::Aborted, ReusePolicy::AllowFailedOnly, true),
        (Status::Failed, ReusePolicy::Reject, false),
    ] {
        let given = given();
        let first = arn_of(&given.start().await);
        given.ends(&first, ended).await;
        let again = given.start_with(policy(ConflictPolicy::Reject, reuse), "{}").await;
        if allowed {
            assert_eq!(again.ok().map(|s| s.outcome), Some(StartOutcome::Started), "{ended} under {reuse}");
        } else {
            assert!(
                matches!(again, Err(Error::ReuseForbidden { status, .. }) if status == ended),
                "{ended} under {reuse}"
            );
            assert_eq!(status_of(&given), Some(ended), "unchanged");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_record_trusted_by_the_reconcile_interval_is_refused_without_asking_step_functions() {
    let given = given();
    let first = arn_of(&given.start().await);
    assert_eq!(given.service.apply_event(given.event(&first)).await.ok(), Some(EventOutcome::Applied));
    given.service.engine().end(&first, Status::Succeeded, 0);
    assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))), "believed running");
    assert!(!given.service.engine().calls().contains(&EngineOp::Describe));
}

#[tokio::test(start_paused = true)]
async fn a_record_unconfirmed_too_long_is_verified_and_a_run_that_ended_lets_the_start_through() {
    let given = given();
    let first = arn_of(&given.start().await);
    assert_eq!(given.service.apply_event(given.event(&first)).await.ok(), Some(EventOutcome::Applied));
    // Its end event is lost.
    given.service.engine().end(&first, Status::Succeeded, 0);
    given.advance(RECONCILE_AFTER + 1);
    let second = given.start().await;
    assert_eq!(second.as_ref().ok().map(|s| &s.outcome), Some(&StartOutcome::Started));
    assert!(given.service.engine().calls().contains(&EngineOp::Describe));
    assert_eq!(given.service.engine().running(), vec![arn_of(&second)]);
}

#[tokio::test(start_paused = true)]
async fn a_claim_whose_starter_died_after_starting_is_not_taken_over() {
    let given = given();
    given.service.engine().script(EngineOp::Start, Scripted::LandsThenHangs);
    let dying = tokio::time::timeout(std::time::Duration::from_millis(50), given.start()).await;
    assert!(dying.is_err(), "the starter hung after its StartExecution landed");
    given.advance(LEASE);
    assert!(matches!(given.start().await, Err(Error::AlreadyExists(_))), "its execution runs");
    assert_eq!(status_of(&given), Some(Status::Running), "and the record says so now");
    assert_eq!(given.service.engine().running().len(), 1);
}
