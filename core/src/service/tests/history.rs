//! History pages: bounded in events and bytes, continued where they ended.

use super::*;
use crate::domain::history::{HistoryPosition, MAX_HISTORY_PAGE_BYTES, MAX_HISTORY_PAGE_EVENTS};
use crate::memory::{EngineOp, Scripted};

#[tokio::test(start_paused = true)]
async fn pages_of_a_long_history_follow_step_functions_own_tokens() {
    let given = given();
    let arn = arn_of(&given.start().await);
    given.service.engine().passes(&arn, 120, None);
    given.ends(&arn, Status::Succeeded).await;
    let record = given.record().unwrap_or_else(|| panic!("no record"));
    let (mut ids, mut position, mut pages) = (Vec::new(), HistoryPosition::default(), 0);
    loop {
        let page = given.service.history(&record, position, false).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(page.events.len() <= MAX_HISTORY_PAGE_EVENTS);
        ids.extend(page.events.iter().map(|event| event.id));
        pages += 1;
        let Some(next) = page.next else { break };
        position = next;
    }
    assert_eq!(ids, (1..=242).collect::<Vec<i64>>());
    assert_eq!(pages, 3);
    let calls = given.service.engine().calls().iter().filter(|op| **op == EngineOp::History).count();
    assert_eq!(calls, 3, "one GetExecutionHistory per page: each page starts from Step Functions' own token");
}

#[tokio::test(start_paused = true)]
async fn a_page_holds_a_bounded_amount_of_data_and_goes_on_inside_step_functions_page() {
    let given = given();
    let arn = arn_of(&given.start().await);
    let big = format!("\"{}\"", "x".repeat(300 * 1024));
    given.service.engine().passes(&arn, 5, Some(&big));
    let record = given.record().unwrap_or_else(|| panic!("no record"));
    let first =
        given.service.history(&record, HistoryPosition::default(), true).await.unwrap_or_else(|e| panic!("{e}"));
    let bytes: usize = first.events.iter().map(|event| event.data_bytes()).sum();
    assert!(bytes <= MAX_HISTORY_PAGE_BYTES, "{bytes} bytes");
    assert_eq!(first.events.iter().filter(|event| event.output.is_some()).count(), 3);
    let next = first.next.unwrap_or_else(|| panic!("more to come"));
    let second = given.service.history(&record, next, true).await.unwrap_or_else(|e| panic!("{e}"));
    let last_shown = first.events.last().map(|event| event.id).unwrap_or_default();
    assert_eq!(second.events.first().map(|event| event.id), Some(last_shown + 1), "nothing skipped, nothing twice");
    // Without data, the same history fits one page.
    let lean =
        given.service.history(&record, HistoryPosition::default(), false).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((lean.events.len(), lean.next), (11, None));
    assert!(lean.events.iter().all(|event| event.input.is_none() && event.output.is_none()));
}

#[tokio::test(start_paused = true)]
async fn a_run_that_never_started_has_no_history() {
    let given = given();
    given.service.engine().script(EngineOp::Start, Scripted::Fails(refused("StateMachineDoesNotExist")));
    assert!(given.start().await.is_err());
    let record = given.record().unwrap_or_else(|| panic!("no record"));
    assert_eq!(record.status, Status::StartFailed);
    let page = given.service.history(&record, HistoryPosition::default(), true).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(page.events.is_empty() && page.next.is_none());
}
