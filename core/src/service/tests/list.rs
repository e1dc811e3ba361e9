//! Lists: one partition of the index per page, walked in order; filters.

use super::*;
use crate::domain::listing::{Cursor, ListFilter, RuntimeStatus, SHARDS};

/// Every page of `filter`'s list: the instance IDs, and how many pages.
async fn walk(given: &Given, filter: &ListFilter, top: usize) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<Cursor>);
    loop {
        let page = given.service.list(filter, cursor, top).await.unwrap_or_else(|e| panic!("{e}"));
        pages += 1;
        ids.extend(page.records.into_iter().map(|r| r.instance_id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (ids, pages),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_list_walks_every_partition_of_its_statuses_once_and_pages_within_them() {
    let mut given = given();
    for i in 0..12 {
        given.id = InstanceId::parse(&format!("order-{i}")).unwrap_or_else(|e| panic!("{e}"));
        let arn = arn_of(&given.start().await);
        if i % 3 == 0 {
            given.ends(&arn, Status::Failed).await;
        }
        given.advance(1_000);
    }
    let (all, pages) = walk(&given, &ListFilter::default(), 2).await;
    assert_eq!(all.len(), 12, "each once: {all:?}");
    assert!(pages >= 5 * usize::from(SHARDS), "one partition (or part of one) per page: {pages}");
    let failed = ListFilter { runtime_statuses: vec![RuntimeStatus::Failed], ..ListFilter::default() };
    let (ids, pages) = walk(&given, &failed, 100).await;
    let mut ids: Vec<_> = ids.into_iter().collect();
    ids.sort();
    assert_eq!(ids, ["order-0", "order-3", "order-6", "order-9"]);
    assert_eq!(pages, usize::from(SHARDS));
    let prefixed = ListFilter { instance_id_prefix: Some("order-1".into()), ..ListFilter::default() };
    let (mut ids, _) = walk(&given, &prefixed, 100).await;
    ids.sort();
    assert_eq!(ids, ["order-1", "order-10", "order-11"]);
}

#[tokio::test(start_paused = true)]
async fn a_creation_range_that_ends_before_it_starts_is_an_empty_list_without_a_query() {
    let given = given();
    assert!(given.start().await.is_ok());
    given.service.store().fail_next(
        crate::memory::StoreOp::List,
        crate::memory::StoreFault::Fails(crate::ports::StoreError::Failed("a query was made".into())),
    );
    let backwards = ListFilter { created_from: Some(2_000_000), created_to: Some(1_000_000), ..ListFilter::default() };
    let page = given.service.list(&backwards, None, 10).await;
    assert_eq!(page.ok(), Some(Page { records: Vec::new(), next: None }));
}

#[tokio::test(start_paused = true)]
async fn a_bulk_purge_throttled_midway_stops_with_its_count_and_a_token_that_goes_on() {
    use crate::domain::listing::list_partition;
    let mut given = given();
    // Two instances in one index partition: one page, two deletes.
    let id = |i: usize| InstanceId::parse(&format!("id-{i}")).unwrap_or_else(|e| panic!("{e}"));
    let partition = |i: usize| list_partition(&id(i).key(), Status::Succeeded);
    let second = (1..100).find(|i| partition(*i) == partition(0)).unwrap_or_else(|| panic!("no pair"));
    for i in [0, second] {
        given.id = id(i);
        let arn = arn_of(&given.start().await);
        given.ends(&arn, Status::Succeeded).await;
    }
    let completed = ListFilter { runtime_statuses: vec![RuntimeStatus::Completed], ..ListFilter::default() };
    let throttled = crate::ports::StoreError::Throttled("slow down".into());
    given.service.store().fail_next(crate::memory::StoreOp::Purge, crate::memory::StoreFault::Fails(throttled));
    let budget = std::time::Duration::from_secs(60);
    let first = given.service.purge_matching(&completed, None, budget).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.deleted, 1, "the other delete's count is kept");
    assert!(first.next.is_some(), "and a token to go on");
    let rest = given.service.purge_matching(&completed, first.next, budget).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((rest.deleted, rest.next), (1, None));
    for i in [0, second] {
        assert!(given.service.store().record(&id(i).key()).is_none());
    }
}
