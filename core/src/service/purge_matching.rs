//! Bulk purge: delete the ended instances a filter selects, page by page,
//! each exactly as it was listed and only if it is still ended.

use super::error::Result;
use super::singleton::Singleton;
use crate::domain::listing::{Cursor, ListFilter};
use crate::ports::{Conditional, Engine, InstanceStore};
use futures_util::future::join_all;
use std::time::Duration;

/// Instances deleted per page (one Query, then this many conditional deletes at once).
const PURGE_PAGE: usize = 25;

/// What a bulk purge did within its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// Instances deleted.
    pub deleted: usize,
    /// Where it goes on, when it stopped before the end (its time was up).
    pub next: Option<Cursor>,
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// Deletes the ended instances `filter` (terminal statuses only) selects,
    /// from `cursor`, page by page while `budget` lasts; at least one page.
    /// Each delete is conditional on the record still being ended and still
    /// naming the run that was listed: an instance restarted meanwhile is never
    /// deleted, nor is a run the list did not see.
    pub async fn purge_matching(
        &self,
        filter: &ListFilter,
        cursor: Option<Cursor>,
        budget: Duration,
    ) -> Result<Purged> {
        let started = tokio::time::Instant::now();
        let (mut deleted, mut cursor) = (0, cursor);
        loop {
            let page = self.list(filter, cursor.clone(), PURGE_PAGE).await?;
            let deletes = page
                .records
                .iter()
                .filter(|record| record.status.is_terminal())
                .map(|record| self.store.purge(&record.key, Some(&record.execution_name)));
            let mut failed = None;
            for outcome in join_all(deletes).await {
                match outcome {
                    Ok(Conditional::Written) => deleted += 1,
                    // Restarted (or purged) since it was listed: not this purge's to delete.
                    Ok(Conditional::Refused(_)) => {}
                    Err(error) => failed = Some(error),
                }
            }
            match failed {
                // Throttled or unanswered: stop with what is done, and a token that reads this page
                // again (what was deleted is gone from it), rather than lose the count.
                Some(error) if error.is_transient() && deleted > 0 => {
                    tracing::warn!(%error, deleted, "bulk purge stopped early; its token goes on");
                    return Ok(Purged { deleted, next: Some(cursor.unwrap_or(Cursor { partition: 0, after: None })) });
                }
                Some(error) => return Err(error.into()),
                None => {}
            }
            cursor = page.next;
            if cursor.is_none() || started.elapsed() >= budget {
                tracing::info!(deleted, done = cursor.is_none(), "bulk purge");
                return Ok(Purged { deleted, next: cursor });
            }
        }
    }
}
