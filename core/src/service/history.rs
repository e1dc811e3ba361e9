//! History: a bounded page of the current execution's GetExecutionHistory.

use super::error::Result;
use super::singleton::Singleton;
use crate::domain::Record;
use crate::domain::history::{
    HistoryPage, HistoryPosition, MAX_HISTORY_CALLS, MAX_HISTORY_PAGE_BYTES, MAX_HISTORY_PAGE_EVENTS,
};
use crate::ports::{Engine, InstanceStore};

impl<S: InstanceStore, E: Engine> Singleton<S, E> {
    /// A page of the history of `record`'s execution from `position`: at most
    /// [`MAX_HISTORY_PAGE_EVENTS`] events and [`MAX_HISTORY_PAGE_BYTES`] of their data
    /// (at least one event). Inputs and outputs only with `include_data`.
    ///
    /// A page can end inside one of Step Functions' own pages: the position
    /// keeps that page's token and the last event shown, and the next page
    /// reads it again, skipping what was shown (so does a Step Functions that
    /// returns more than asked, as the emulator does).
    pub async fn history(&self, record: &Record, position: HistoryPosition, include_data: bool) -> Result<HistoryPage> {
        let HistoryPosition { mut page_token, after_event: mut after } = position;
        let (mut events, mut bytes) = (Vec::new(), 0);
        for _ in 0..MAX_HISTORY_CALLS {
            let Some(chunk) = self
                .engine
                .history(&record.execution_arn, page_token.as_deref(), MAX_HISTORY_PAGE_EVENTS, include_data)
                .await?
            else {
                // Never started (a released claim): no history.
                return Ok(HistoryPage { events, next: None });
            };
            let shown = after;
            for event in chunk.events.into_iter().filter(|event| event.id > shown) {
                let event = if include_data { event } else { event.without_data() };
                let size = event.data_bytes();
                if events.len() == MAX_HISTORY_PAGE_EVENTS
                    || (!events.is_empty() && bytes + size > MAX_HISTORY_PAGE_BYTES)
                {
                    return Ok(HistoryPage { events, next: Some(HistoryPosition { page_token, after_event: after }) });
                }
                bytes += size;
                after = event.id;
                events.push(event);
            }
            match chunk.next_token {
                // Full at the end of Step Functions' page: the next one begins with its next page.
                Some(next) if events.len() == MAX_HISTORY_PAGE_EVENTS => {
                    return Ok(HistoryPage {
                        events,
                        next: Some(HistoryPosition { page_token: Some(next), after_event: after }),
                    });
                }
                Some(next) => page_token = Some(next),
                None => return Ok(HistoryPage { events, next: None }),
            }
        }
        Ok(HistoryPage { events, next: Some(HistoryPosition { page_token, after_event: after }) })
    }
}
