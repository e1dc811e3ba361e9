//! Lists: one page of the instances a filter selects, one Query each.

use super::error::Result;
use super::singleton::Singleton;
use crate::domain::Record;
use crate::domain::listing::{Cursor, ListFilter};
use crate::ports::{Engine, InstanceStore, ListPage};

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The instances on it, newest first within each index partition; as the
    /// index has them (eventually consistent, not reconciled, without input).
    pub records: Vec<Record>,
    /// Where the list goes on, if it does. A page can be short, or empty, and
    /// still have a next one: each page reads one partition of the index.
    pub next: Option<Cursor>,
}

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// The page of `filter`'s list at `cursor` (`None`: the first), of at most `top` instances.
    pub async fn list(&self, filter: &ListFilter, cursor: Option<Cursor>, top: usize) -> Result<Page> {
        let partitions = filter.partitions();
        let cursor = cursor.unwrap_or(Cursor { partition: 0, after: None });
        let empty_range = filter.created_from.zip(filter.created_to).is_some_and(|(from, to)| from > to);
        let Some(partition) = partitions.get(cursor.partition).filter(|_| !empty_range) else {
            return Ok(Page { records: Vec::new(), next: None });
        };
        let page = ListPage { partition, filter, after: cursor.after.as_ref(), limit: top };
        let listed = self.store.list(page).await?;
        let next = match listed.next {
            Some(after) => Some(Cursor { partition: cursor.partition, after: Some(after) }),
            None if cursor.partition + 1 < partitions.len() => {
                Some(Cursor { partition: cursor.partition + 1, after: None })
            }
            None => None,
        };
        Ok(Page { records: listed.records, next })
    }
}
