//! An execution's history (Step Functions' GetExecutionHistory) as the
//! status endpoint shows it (`?showHistory=true`): bounded pages, and where
//! the next one begins.

use super::execution_name::ExecutionArn;
use super::listing::{InvalidToken, TokenSigner};
use super::record::Millis;

/// The most events a page holds.
pub const MAX_HISTORY_PAGE_EVENTS: usize = 100;
/// The most bytes of event data (inputs, outputs, errors, causes, as JSON-escaped
/// text) a page holds: escaped once more in API Gateway's envelope, still well within
/// a Lambda response (6 MB); a page always holds at least one event.
pub const MAX_HISTORY_PAGE_BYTES: usize = 1024 * 1024;
/// GetExecutionHistory calls one page may make (events already shown are skipped).
pub const MAX_HISTORY_CALLS: usize = 5;

/// One event of an execution's history: its identity, and what matters of its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    /// Its id (1, 2, … in order).
    pub id: i64,
    /// The event it follows.
    pub previous_id: Option<i64>,
    /// When it happened.
    pub timestamp: Millis,
    /// Step Functions' event type (`ExecutionStarted`, `TaskStateEntered`, `TaskFailed`, …).
    pub event_type: String,
    /// The state's name, or the task's resource.
    pub name: Option<String>,
    /// Its input (with `showHistoryOutput`).
    pub input: Option<String>,
    /// Its output (with `showHistoryOutput`).
    pub output: Option<String>,
    /// Its error.
    pub error: Option<String>,
    /// Its cause.
    pub cause: Option<String>,
}

impl HistoryEvent {
    /// The bytes of its data once JSON-escaped (a `"` takes 2, a control character 6), for the page bound.
    pub fn data_bytes(&self) -> usize {
        let escaped = |text: &String| -> usize {
            text.chars()
                .map(|c| match c {
                    '"' | '\\' => 2,
                    c if u32::from(c) < 0x20 => 6,
                    c => c.len_utf8(),
                })
                .sum()
        };
        [&self.name, &self.input, &self.output, &self.error, &self.cause]
            .iter()
            .filter_map(|s| s.as_ref())
            .map(escaped)
            .sum()
    }

    /// Without its input and output (`showHistoryOutput=false`).
    pub fn without_data(self) -> Self {
        Self { input: None, output: None, ..self }
    }
}

/// Where a history page begins: Step Functions' own page token (the page it
/// was read from), and the last event already shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryPosition {
    /// GetExecutionHistory's `nextToken` of the page to read (`None`: the first).
    pub page_token: Option<String>,
    /// Events up to this id were shown.
    pub after_event: i64,
}

/// One page of an execution's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// Its events, in order.
    pub events: Vec<HistoryEvent>,
    /// Where the next page begins, if there is more.
    pub next: Option<HistoryPosition>,
}

/// The token that continues the history of `execution_arn` at `position`, with or
/// without its data (Step Functions' own token must be sent back with the same arguments).
pub fn issue_token(
    signer: &TokenSigner,
    execution_arn: &ExecutionArn,
    include_data: bool,
    position: &HistoryPosition,
) -> String {
    let page_token = position.page_token.as_deref().unwrap_or("");
    signer.seal(&format!("h1|{execution_arn}|{}|{include_data}|{page_token}", position.after_event))
}

/// The position in `token`, if this deployment issued it for the history of `execution_arn`,
/// with or without data as `include_data` says.
pub fn read_token(
    signer: &TokenSigner,
    execution_arn: &ExecutionArn,
    include_data: bool,
    token: &str,
) -> Result<HistoryPosition, InvalidToken> {
    let payload = signer.open(token)?;
    // Step Functions' own token goes last: it may hold any character.
    let parts: Vec<&str> = payload.splitn(5, '|').collect();
    let ["h1", arn, after, with_data, page_token] = parts.as_slice() else {
        return Err(InvalidToken::Tampered);
    };
    if *arn != execution_arn.as_str() {
        return Err(InvalidToken::OtherExecution);
    }
    if *with_data != include_data.to_string() {
        return Err(InvalidToken::OtherQuery);
    }
    Ok(HistoryPosition {
        page_token: Some(page_token).filter(|token| !token.is_empty()).map(|token| (*token).to_owned()),
        after_event: after.parse().map_err(|_| InvalidToken::Tampered)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::listing::{ListFilter, TokenUse};

    fn arn(name: &str) -> ExecutionArn {
        ExecutionArn::parse(&format!("arn:aws:states:us-east-1:1:execution:s:{name}")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn history_tokens_hold_their_position_for_their_execution_only() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let position = HistoryPosition { page_token: Some("AAE|x/y+z==".into()), after_event: 200 };
        let token = issue_token(&signer, &arn("a"), false, &position);
        assert_eq!(read_token(&signer, &arn("a"), false, &token), Ok(position));
        let first = HistoryPosition { page_token: None, after_event: 100 };
        assert_eq!(read_token(&signer, &arn("a"), true, &issue_token(&signer, &arn("a"), true, &first)), Ok(first));
        assert_eq!(read_token(&signer, &arn("b"), false, &token), Err(InvalidToken::OtherExecution));
        assert_eq!(
            read_token(&signer, &arn("a"), true, &token),
            Err(InvalidToken::OtherQuery),
            "showHistoryOutput changed"
        );
        let list_token = signer.issue(
            TokenUse::List,
            &ListFilter::default(),
            &crate::domain::listing::Cursor { partition: 0, after: None },
        );
        assert_eq!(read_token(&signer, &arn("a"), false, &list_token), Err(InvalidToken::Tampered));
        assert_eq!(
            signer.read(TokenUse::List, &ListFilter::default(), &token),
            Err(InvalidToken::Tampered),
            "not a list token"
        );
        let mut changed = token.into_bytes();
        changed[3] ^= 1;
        assert!(read_token(&signer, &arn("a"), false, &String::from_utf8_lossy(&changed)).is_err());
        let quoted = HistoryEvent {
            id: 1,
            previous_id: None,
            timestamp: 0,
            event_type: "TaskFailed".into(),
            name: None,
            input: None,
            output: None,
            error: Some("a\"\n".into()),
            cause: None,
        };
        assert_eq!(quoted.data_bytes(), 1 + 2 + 6, "escaped size");
    }
}
