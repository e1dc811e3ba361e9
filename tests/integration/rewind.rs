//! Rewind on a real table (moto, and dynalite): the guard's conditional
//! writes for every ended status, its refusals, and a rewind racing a start.
//!
//! moto 5.2.5 has no RedriveExecution (it answers 500; checked in its source):
//! on the emulator's Step Functions a rewind is therefore unconfirmed, and the
//! lease gives the record back. The redrive itself runs on the in-memory
//! engine, which redrives as Step Functions documents it, over the real table.

use lambda_http::http::{Method, StatusCode};
use sfn_singleton::domain::{ExecutionArn, ExecutionName, ReusePolicy, Status};
use sfn_singleton::http::App;
use sfn_singleton::memory::MemoryEngine;
use sfn_singleton::ports::{Applied, ClaimCondition, Conditional, ExecutionUpdate, InstanceStore};
use sfn_singleton::service::{EventOutcome, StatusChange};
use testkit::*;

async fn rewind<S: InstanceStore, E: sfn_singleton::ports::Engine>(app: &App<S, E>, id: &str) -> Answer {
    call(app, request(Method::POST, &format!("/instances/{id}/rewind?reason=fixed+the+bug"), "")).await
}

/// Starts `id` on the emulator and lets it end as `function` ends (its event relayed), or terminates it.
async fn ended_on_the_emulator(env: &TestEnv, function: &str, id: &str) -> ExecutionArn {
    let app = env.app();
    assert_eq!(start(&app, function, id, "{}").await.status, StatusCode::ACCEPTED);
    let record = env.record(id).await.unwrap_or_else(|| panic!("no record"));
    if function == FOREVER {
        let stopped = call(&app, request(Method::POST, &format!("/instances/{id}/terminate"), "")).await;
        assert_eq!(stopped.status, StatusCode::ACCEPTED, "{}", stopped.body);
    } else {
        env.finished(&record.execution_arn).await;
        deliver_event(&app.service, env.relayed_event(&record.execution_arn).await).await;
    }
    record.execution_arn
}

#[tokio::test]
async fn every_ended_status_is_held_then_given_back_where_step_functions_cannot_redrive() {
    let env = TestEnv::new().await;
    for (function, status) in [(FAILS, Status::Failed), (TIMES_OUT, Status::TimedOut), (FOREVER, Status::Aborted)] {
        let id = format!("rewind-{function}");
        let arn = ended_on_the_emulator(&env, function, &id).await;
        let ended = env.record(&id).await.unwrap_or_else(|| panic!("no record"));
        assert_eq!(ended.status, status);
        let answer = rewind(&env.app(), &id).await;
        // moto answers RedriveExecution with a 500: unconfirmed, the record held for the lease.
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{function}: {}", answer.body);
        assert_eq!(answer.json()["error"], "RewindUnconfirmed", "{function}");
        assert!(answer.header("retry-after").is_some());
        let held = env.record(&id).await.unwrap_or_else(|| panic!("no record"));
        assert_eq!((held.status, held.redrive_count, &held.execution_arn), (Status::Redriving, 1, &arn));
        assert!(held.expires_at.is_none() && held.rewind_token.is_some(), "{function}: no TTL while held");
        let status_read = call(&env.app(), request(Method::GET, &format!("/instances/{id}"), "")).await;
        assert_eq!(status_read.json()["runtimeStatus"], "Pending", "{function}");
        assert_eq!(start(&env.app(), FOREVER, &id, "{}").await.status, StatusCode::CONFLICT, "{function}");
        let purge = call(&env.app(), request(Method::DELETE, &format!("/instances/{id}"), "")).await;
        assert_eq!(purge.status, StatusCode::CONFLICT, "{function}: a held record is not purged");
        env.clock.advance(env.timings.lease_millis);
        // The lease over: a read asks Step Functions, which has not redriven it, and gives the record back.
        let status_read = call(&env.app(), request(Method::GET, &format!("/instances/{id}"), "")).await;
        assert_eq!(status_read.json()["status"], status.as_str(), "{function}: {}", status_read.body);
        let back = env.record(&id).await.unwrap_or_else(|| panic!("no record"));
        assert_eq!((back.status, back.redrive_count, back.rewind_token), (status, 0, None), "{function}");
        assert!(back.expires_at.is_some());
        assert_eq!(start(&env.app(), QUICK, &id, "{}").await.status, StatusCode::ACCEPTED, "{function}");
    }
}

#[tokio::test]
async fn runs_that_cannot_be_rewound_are_refused_naming_why() {
    let env = TestEnv::new().await;
    let app = env.app();
    assert_eq!(rewind(&app, "nobody").await.status, StatusCode::NOT_FOUND);
    assert_eq!(start(&app, FOREVER, "running", "{}").await.status, StatusCode::ACCEPTED);
    let running = rewind(&app, "running").await;
    assert_eq!((running.status, running.json()["error"].as_str()), (StatusCode::CONFLICT, Some("NotRewindable")));
    ended_on_the_emulator(&env, QUICK, "done").await;
    let succeeded = rewind(&app, "done").await;
    assert_eq!(succeeded.status, StatusCode::GONE, "{}", succeeded.body);
    assert!(succeeded.body.contains("succeeded"), "{}", succeeded.body);
    let wrong_method = call(&app, request(Method::GET, "/instances/done/rewind", "")).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    let long =
        format!("/instances/done/rewind?reason={}", "x".repeat(sfn_singleton::domain::limits::MAX_REASON_CHARS + 1));
    assert_eq!(call(&app, request(Method::POST, &long, "")).await.status, StatusCode::BAD_REQUEST);
    assert!(env.calls.take().iter().all(|call| call != "RedriveExecution"), "nothing was redriven");
    let record = env.record("done").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.status, Status::Succeeded, "a refused rewind changes nothing");
}

/// The app on the real table with the in-memory engine (which redrives).
fn redriving_app(env: &TestEnv) -> App<sfn_singleton::aws::DynamoStore, MemoryEngine> {
    env.app_with(env.store(), MemoryEngine::with_state_machines(env.functions.values()))
}

/// The status event the engine's execution would send now.
fn event_of(app: &App<sfn_singleton::aws::DynamoStore, MemoryEngine>, arn: &ExecutionArn) -> StatusChange {
    let state = app.service.engine().state(arn).unwrap_or_else(|| panic!("no {arn}"));
    let name = ExecutionName::parse(arn.name()).unwrap_or_else(|e| panic!("{e}"));
    StatusChange { execution_arn: arn.clone(), name, state, output_omitted: false }
}

async fn failed_run(env: &TestEnv, app: &App<sfn_singleton::aws::DynamoStore, MemoryEngine>, id: &str) -> ExecutionArn {
    assert_eq!(start(app, FOREVER, id, "{}").await.status, StatusCode::ACCEPTED);
    let arn = env.record(id).await.unwrap_or_else(|| panic!("no record")).execution_arn;
    app.service.engine().end(&arn, Status::Failed, (env.clock.clock())());
    assert_eq!(app.service.apply_event(event_of(app, &arn)).await.ok(), Some(EventOutcome::Applied));
    arn
}

#[tokio::test]
async fn a_rewind_redrives_the_same_execution_and_holds_the_id_until_it_ends() {
    let env = TestEnv::new().await;
    let app = redriving_app(&env);
    let arn = failed_run(&env, &app, "order-1").await;
    let answer = rewind(&app, "order-1").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["executionArn"], arn.as_str());
    assert!(body["rewindPostUri"].as_str().is_some_and(|uri| uri.ends_with("/instances/order-1/rewind?reason={text}")));
    assert!(answer.header("location").is_some_and(|l| l.ends_with("/instances/order-1")));
    assert_eq!(app.service.engine().running(), vec![arn.clone()]);
    assert_eq!(start(&app, FOREVER, "order-1", "{}").await.status, StatusCode::CONFLICT);
    assert_eq!(app.service.apply_event(event_of(&app, &arn)).await.ok(), Some(EventOutcome::Applied));
    let running = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!((running.status, running.redrive_count, running.rewind_token), (Status::Running, 1, None));
    app.service.engine().end(&arn, Status::Failed, (env.clock.clock())());
    assert_eq!(app.service.apply_event(event_of(&app, &arn)).await.ok(), Some(EventOutcome::Applied));
    assert_eq!(rewind(&app, "order-1").await.status, StatusCode::ACCEPTED, "a run rewound twice");
    assert_eq!(app.service.engine().state(&arn).map(|s| s.redrive_count), Some(2));
}

#[tokio::test]
async fn a_rewind_racing_a_start_never_leaves_two_runs() {
    let env = TestEnv::new().await;
    let app = redriving_app(&env);
    for round in 0..8 {
        let id = format!("race-{round}");
        failed_run(&env, &app, &id).await;
        let (rewound, started) = tokio::join!(rewind(&app, &id), start(&app, FOREVER, &id, "{}"));
        let winners = [rewound.status, started.status].iter().filter(|s| **s == StatusCode::ACCEPTED).count();
        assert_eq!(winners, 1, "round {round}: rewind {} / start {}", rewound.body, started.body);
        let loser = if rewound.status == StatusCode::ACCEPTED { started.status } else { rewound.status };
        assert_eq!(loser, StatusCode::CONFLICT, "round {round}");
    }
    // One run per instance, the rewound or the new one.
    assert_eq!(app.service.engine().running().len(), 8);
}

#[tokio::test]
async fn the_table_keeps_a_holds_conditions() {
    let env = TestEnv::new().await;
    let app = redriving_app(&env);
    let arn = failed_run(&env, &app, "order-1").await;
    let ended = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    let store = env.store();
    // A rewind's claim needs the record exactly as read.
    let stale = sfn_singleton::domain::Record { updated_at: ended.updated_at - 1, ..ended.clone() };
    let refused = store.claim(&ended.rewinding("a", 1, 0, 60_000), &ClaimCondition::rewinds(&stale)).await;
    assert!(matches!(refused, Ok(Conditional::Refused(_))), "{refused:?}");
    let held = ended.rewinding("mine", 1, ended.updated_at + 1, 60_000);
    assert_eq!(store.claim(&held, &ClaimCondition::rewinds(&ended)).await.ok(), Some(Conditional::Written));
    // A replace of the run before the rewind does not match the run it will be.
    let replacing = ClaimCondition::replacing(&ended, ReusePolicy::AllowAll);
    let claim = sfn_singleton::domain::Record { execution_name: ended.execution_name.clone(), ..held.clone() };
    assert!(matches!(store.claim(&claim, &replacing).await, Ok(Conditional::Refused(_))));
    // Only the hold's own token gives it back.
    let state = app.service.engine().state(&arn).unwrap_or_else(|| panic!("no {arn}"));
    let give_up = |token: &str| ExecutionUpdate {
        execution_arn: arn.clone(),
        state: state.clone(),
        observed_at: 5,
        from: &[],
        expires_at: Some(9),
        rewind_token: Some(token.to_owned()),
    };
    assert!(matches!(store.apply(&ended.key, &give_up("theirs")).await, Ok(Applied::Refused(_))));
    assert_eq!(env.record("order-1").await.map(|r| r.status), Some(Status::Redriving));
    assert_eq!(store.apply(&ended.key, &give_up("mine")).await.ok(), Some(Applied::Written { dropped_events: 0 }));
    let back = env.record("order-1").await.unwrap_or_else(|| panic!("no record"));
    assert_eq!((back.status, back.redrive_count, back.rewind_token), (Status::Failed, 0, None));
}
