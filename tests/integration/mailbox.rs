//! The mailbox's writes on a real DynamoDB (moto, then dynalite): what each
//! condition lets through, what the store returns, and what an end removes.

use lambda_http::http::StatusCode;
use sfn_singleton::domain::mailbox::{EventName, MAX_EVENTS, Mailbox, RaisedEvent, SWEEP_AFTER_MILLIS, Wait};
use sfn_singleton::domain::{ExecutionArn, Millis, Record, Status};
use sfn_singleton::ports::{
    Applied, Conditional, ExecutionState, ExecutionUpdate, InstanceStore, MailboxWrite, RaiseGuard, Sweep,
};
use testkit::*;

fn event(id: &str, at: i64) -> RaisedEvent {
    let name = EventName::parse("approval").unwrap_or_else(|e| panic!("{e}"));
    RaisedEvent { id: id.into(), name, body: r#"{"approved":true,"by":"ü"}"#.into(), at }
}

fn wait(token: &str, at: i64) -> Wait {
    let name = EventName::parse("approval").unwrap_or_else(|e| panic!("{e}"));
    Wait { id: Wait::id_of(token), name, token: token.into(), at, deadline: None }
}

/// A started instance's record.
async fn started(env: &TestEnv, id: &str) -> Record {
    assert_eq!(start(&env.app(), FOREVER, id, "{}").await.status, StatusCode::ACCEPTED);
    env.record(id).await.unwrap_or_else(|| panic!("no record"))
}

fn added(write: Result<MailboxWrite, sfn_singleton::ports::StoreError>) -> Record {
    match write {
        Ok(MailboxWrite::Added(record)) => *record,
        other => panic!("expected the write to go through: {other:?}"),
    }
}

fn ended(execution_arn: &ExecutionArn) -> ExecutionUpdate {
    ExecutionUpdate {
        execution_arn: execution_arn.clone(),
        state: ExecutionState {
            status: Status::Succeeded,
            redrive_count: 0,
            stop_date: Some(1),
            output: None,
            error: None,
            cause: None,
            input: None,
        },
        observed_at: 1,
        from: &[Status::Starting, Status::Running],
        expires_at: Some(60),
        rewind_token: None,
    }
}

#[tokio::test]
async fn events_and_waits_are_appended_once_and_returned_as_stored() {
    let env = TestEnv::new().await;
    let store = env.store();
    let record = started(&env, "order-1").await;
    let guard = RaiseGuard::ClaimedBy(record.created_at);
    // The write returns the record after it (ALL_NEW): the event, its ID
    let after = added(store.add_event(&record.key, &event("e1", 5), &guard).await);
    assert_eq!(after.mailbox.events, [event("e1", 5)]);
    assert!(after.mailbox.raise_ids.contains("e1"));
    // The same ID again is refused, with the record where the store returns it (not dynalite)
    match store.add_event(&record.key, &event("e1", 6), &guard).await {
        Ok(MailboxWrite::Refused(Some(old))) if env.returns_old_item => assert_eq!(old.mailbox, after.mailbox),
        Ok(MailboxWrite::Refused(None)) if !env.returns_old_item => {}
        other => panic!("the same raise again was not refused as expected: {other:?}"),
    }
    let waited = added(store.add_wait(&record.key, &record.execution_arn, &wait("token-1", 7)).await);
    assert_eq!(waited.mailbox.waits, [wait("token-1", 7)]);
    assert!(!matches!(
        store.add_wait(&record.key, &record.execution_arn, &wait("token-1", 8)).await,
        Ok(MailboxWrite::Added(_))
    ));
    // What a read returns is what the writes said
    assert_eq!(env.record("order-1").await.map(|r| r.mailbox), Some(waited.mailbox));
}

#[tokio::test]
async fn writes_land_only_on_the_run_they_are_for() {
    let env = TestEnv::new().await;
    let store = env.store();
    let record = started(&env, "order-1").await;
    let items = env.item_count().await;
    let refused = |write: Result<MailboxWrite, _>| matches!(write, Ok(MailboxWrite::Refused(_)));
    // A raise that began before the run was claimed; a raise for another run
    assert!(refused(
        store.add_event(&record.key, &event("e1", 1), &RaiseGuard::ClaimedBy(record.created_at - 1)).await
    ));
    let other = execution_name("other-run");
    assert!(refused(store.add_event(&record.key, &event("e2", 1), &RaiseGuard::Run(other)).await));
    // A wait of another execution
    let elsewhere = arn("arn:aws:states:us-east-1:123456789012:execution:x:other");
    assert!(refused(store.add_wait(&record.key, &elsewhere, &wait("t", 1)).await));
    // No record: refused, and nothing created
    let missing = sfn_singleton::domain::InstanceId::parse("missing").unwrap_or_else(|e| panic!("{e}")).key();
    let write = store.add_event(&missing, &event("e3", 1), &RaiseGuard::ClaimedBy(i64::MAX)).await;
    assert!(matches!(write, Ok(MailboxWrite::Refused(None))), "{write:?}");
    assert_eq!(env.item_count().await, items);
    // An ended run takes nothing
    assert_eq!(
        store.apply(&record.key, &ended(&record.execution_arn)).await,
        Ok(Applied::Written { dropped_events: 0 })
    );
    assert!(refused(store.add_event(&record.key, &event("e4", 1), &RaiseGuard::ClaimedBy(i64::MAX)).await));
    let kept = env.record("order-1").await.map(|r| r.mailbox).unwrap_or_default();
    assert!(kept.events.is_empty() && kept.waits.is_empty(), "the end drops the lists");
}

#[tokio::test]
async fn the_end_says_how_many_events_no_wait_took() {
    let env = TestEnv::new().await;
    let store = env.store();
    let record = started(&env, "order-1").await;
    let guard = RaiseGuard::ClaimedBy(record.created_at);
    for id in ["e1", "e2", "e3"] {
        added(store.add_event(&record.key, &event(id, 5), &guard).await);
    }
    // One wait took the first: two were never taken
    added(store.add_wait(&record.key, &record.execution_arn, &wait("t1", 6)).await);
    let end = store.apply(&record.key, &ended(&record.execution_arn)).await;
    assert_eq!(end, Ok(Applied::Written { dropped_events: 2 }));
    assert_eq!(store.due_for_sweep(Millis::MAX / 2, 10).await, Ok(vec![]), "an ended run is not due");
    // The same end again (a redelivered status event) is refused and drops nothing
    assert!(matches!(store.apply(&record.key, &ended(&record.execution_arn)).await, Ok(Applied::Refused(_))));
}

#[tokio::test]
async fn a_full_mailbox_refuses_and_a_sweep_applies_only_to_the_lists_it_read() {
    let env = TestEnv::new().await;
    let store = env.store();
    let record = started(&env, "order-1").await;
    let guard = RaiseGuard::ClaimedBy(record.created_at);
    for i in 0..MAX_EVENTS {
        added(store.add_event(&record.key, &event(&format!("e{i}"), 1), &guard).await);
    }
    let full = store.add_event(&record.key, &event("one-more", 1), &guard).await;
    assert!(matches!(full, Ok(MailboxWrite::Refused(_))), "{full:?}");
    let current = added(store.add_wait(&record.key, &record.execution_arn, &wait("t", 1)).await);
    // Due for the scheduled sweep since the first write (`bySweep`): 5 minutes after it, not before
    assert_eq!(current.mailbox.sweep_at, Some(1 + SWEEP_AFTER_MILLIS));
    assert_eq!(store.due_for_sweep(SWEEP_AFTER_MILLIS, 10).await, Ok(vec![]));
    assert_eq!(store.due_for_sweep(1 + SWEEP_AFTER_MILLIS, 10).await, Ok(vec![record.key.clone()]));
    let due = current.mailbox.without(&[0], &[0]).sweep_due();
    let sweep =
        Sweep { execution_arn: &record.execution_arn, seen: (MAX_EVENTS, 1, 0, 0), events: &[0], waits: &[0], due };
    // A sweep of lists it did not read (one wait fewer) is refused
    let stale = Sweep { seen: (MAX_EVENTS, 0, 0, 0), ..sweep.clone() };
    assert!(matches!(store.sweep(&record.key, &stale).await, Ok(Conditional::Refused(_))));
    // So is one read in another life of the run (another redrive count): a redrive brings new lists
    let other_life = Sweep { seen: (MAX_EVENTS, 1, 0, 1), ..sweep.clone() };
    assert!(matches!(store.sweep(&record.key, &other_life).await, Ok(Conditional::Refused(_))));
    assert_eq!(store.sweep(&record.key, &sweep).await, Ok(Conditional::Written));
    let swept = env.record("order-1").await.map(|r| r.mailbox).unwrap_or_default();
    assert_eq!(swept, current.mailbox.without(&[0], &[0]));
    assert_eq!((swept.sweeps, swept.sweep_at), (1, None), "no pair left: not due");
    assert_eq!(store.due_for_sweep(Millis::MAX / 2, 10).await, Ok(vec![]));
    // A sweep that leaves a pair sets when it is due (and a sweep with nothing to remove may)
    added(store.add_wait(&record.key, &record.execution_arn, &wait("t2", 7)).await);
    let now = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(now.mailbox.sweep_at, Some(7 + SWEEP_AFTER_MILLIS), "a write sets it when not set");
    let rearm = Sweep { seen: (MAX_EVENTS - 1, 1, 1, 0), events: &[], waits: &[], due: Some(42), ..sweep.clone() };
    assert_eq!(store.sweep(&record.key, &rearm).await, Ok(Conditional::Written));
    assert_eq!(store.due_for_sweep(42, 10).await, Ok(vec![record.key.clone()]));
    // The same sweep again finds a swept mailbox: refused
    assert!(matches!(store.sweep(&record.key, &sweep).await, Ok(Conditional::Refused(_))));
    // There is room again, and the swept event's ID is still known
    added(store.add_event(&record.key, &event("one-more", 1), &guard).await);
    assert!(!matches!(store.add_event(&record.key, &event("e0", 1), &guard).await, Ok(MailboxWrite::Added(_))));
}

#[tokio::test]
async fn a_mailbox_with_one_list_only_is_swept_and_no_longer_due() {
    // Given a run that waits (its record has `waits` and no `events` list), due for the sweep
    let env = TestEnv::new().await;
    let store = env.store();
    let record = started(&env, "order-1").await;
    let waiting = added(store.add_wait(&record.key, &record.execution_arn, &wait("t1", 1)).await);
    assert_eq!(waiting.mailbox.sweep_at, Some(1 + SWEEP_AFTER_MILLIS));
    // When the sweep finds no pair, it removes the due time (a missing list counts as empty)
    let sweep = Sweep { execution_arn: &record.execution_arn, seen: (0, 1, 0, 0), events: &[], waits: &[], due: None };
    assert_eq!(store.sweep(&record.key, &sweep).await, Ok(Conditional::Written));
    assert_eq!(store.due_for_sweep(Millis::MAX / 2, 10).await, Ok(vec![]), "no longer due");
    // And one that read a list that is there as missing is still refused
    let stale = Sweep { seen: (0, 0, 1, 0), ..sweep.clone() };
    assert!(matches!(store.sweep(&record.key, &stale).await, Ok(Conditional::Refused(_))));
}

#[tokio::test]
async fn a_failed_start_drops_what_was_raised_into_its_claim() {
    let env = TestEnv::new().await;
    let store = env.store();
    let record = started(&env, "order-1").await;
    // A claim of a new run, not started: events raised into it, then its start fails
    let claim = Record {
        status: Status::Starting,
        execution_name: execution_name("claim-2"),
        mailbox: Mailbox::default(),
        ..record.clone()
    };
    let condition = sfn_singleton::ports::ClaimCondition::takeover(record.execution_name.clone());
    assert_eq!(store.claim(&claim, &condition).await, Ok(Conditional::Written));
    added(store.add_event(&record.key, &event("e1", 1), &RaiseGuard::Run(claim.execution_name.clone())).await);
    let marked = store.mark_start_failed(&record.key, &claim.execution_name, "refused", 2, 60).await;
    assert_eq!(marked, Ok(true));
    let failed = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(failed.status, Status::StartFailed);
    assert!(failed.mailbox.events.is_empty() && failed.mailbox.raise_ids.contains("e1"), "lists dropped, IDs kept");
    assert_eq!(failed.mailbox.sweep_at, None, "and no longer due");
    assert_eq!(store.due_for_sweep(Millis::MAX / 2, 10).await, Ok(vec![]));
}
