//! Listing instances from the table's `byStatus` index: the query's filters,
//! the index partitions a query walks, and the continuation token that carries
//! a client from one page to the next.
//!
//! The index's partition key is `<runtimeStatus>#<shard>`: each of Durable's
//! runtime statuses is spread over [`SHARDS`] partitions by the instance key,
//! so that thousands of starts at once (all `Pending`) write to eight
//! partitions, not one. Its sort key is `createdAt`. A page is one Query of one
//! partition; a query walks its statuses' partitions in order.

use super::instance_id::{InstanceKey, hex};
use super::record::{Millis, Status};
use super::time::rfc3339;
use sha2::{Digest, Sha256};
use std::fmt;

/// Index partitions per runtime status.
pub const SHARDS: u8 = 8;

/// The most instances a page holds (`top`), and the default.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Durable's runtime statuses: what lists filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuntimeStatus {
    /// Claimed, not confirmed started (`STARTING`), or being rewound (`REDRIVING`).
    Pending,
    /// `RUNNING`.
    Running,
    /// `SUCCEEDED`.
    Completed,
    /// `FAILED`, `TIMED_OUT`, or never started (`START_FAILED`).
    Failed,
    /// `ABORTED`.
    Terminated,
}

impl RuntimeStatus {
    /// Every runtime status, in the order lists walk them.
    pub const ALL: [RuntimeStatus; 5] = [
        RuntimeStatus::Pending,
        RuntimeStatus::Running,
        RuntimeStatus::Completed,
        RuntimeStatus::Failed,
        RuntimeStatus::Terminated,
    ];

    /// Durable's runtime status of a record's status.
    pub fn of(status: Status) -> Self {
        match status {
            Status::Starting | Status::Redriving => RuntimeStatus::Pending,
            Status::Running => RuntimeStatus::Running,
            Status::Succeeded => RuntimeStatus::Completed,
            // Durable has no "timed out" nor "never started": both are failures there.
            Status::Failed | Status::TimedOut | Status::StartFailed => RuntimeStatus::Failed,
            Status::Aborted => RuntimeStatus::Terminated,
        }
    }

    /// Durable's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeStatus::Pending => "Pending",
            RuntimeStatus::Running => "Running",
            RuntimeStatus::Completed => "Completed",
            RuntimeStatus::Failed => "Failed",
            RuntimeStatus::Terminated => "Terminated",
        }
    }

    /// The runtime status named `raw` (Durable's names, exactly).
    pub fn parse(raw: &str) -> Result<Self, InvalidFilter> {
        Self::ALL.into_iter().find(|status| status.as_str() == raw).ok_or_else(|| InvalidFilter {
            parameter: "runtimeStatus",
            accepts: "Pending, Running, Completed, Failed, Terminated (one or more, comma-separated or repeated)",
            value: raw.to_owned(),
        })
    }

    /// Whether instances in this status have ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RuntimeStatus::Pending | RuntimeStatus::Running)
    }
}

impl fmt::Display for RuntimeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The index partition a record is listed in: its runtime status and its key's shard.
pub fn list_partition(key: &InstanceKey, status: Status) -> String {
    let shard = u8::from_str_radix(&key.as_str()[..2], 16).unwrap_or(0) % SHARDS;
    format!("{}#{shard}", RuntimeStatus::of(status))
}

/// A filter parameter that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter} accepts {accepts} (got {value:?})")]
pub struct InvalidFilter {
    /// The query parameter.
    pub parameter: &'static str,
    /// What it accepts.
    pub accepts: &'static str,
    /// What it was given.
    pub value: String,
}

/// What a list asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListFilter {
    /// The runtime statuses to list, in walking order; empty: all.
    pub runtime_statuses: Vec<RuntimeStatus>,
    /// Only this function's instances.
    pub function_name: Option<String>,
    /// Only instances created at or after this time.
    pub created_from: Option<Millis>,
    /// Only instances created at or before this time.
    pub created_to: Option<Millis>,
    /// Only instances whose ID starts with this.
    pub instance_id_prefix: Option<String>,
}

impl ListFilter {
    /// The index partitions this filter walks, in order.
    pub fn partitions(&self) -> Vec<String> {
        let statuses = if self.runtime_statuses.is_empty() { &RuntimeStatus::ALL[..] } else { &self.runtime_statuses };
        statuses.iter().flat_map(|status| (0..SHARDS).map(move |shard| format!("{status}#{shard}"))).collect()
    }

    /// What identifies this filter in its continuation tokens.
    fn digest(&self) -> String {
        // Each part length-prefixed: no two filters serialise alike.
        let statuses: Vec<&str> = self.runtime_statuses.iter().map(|status| status.as_str()).collect();
        let parts = [
            statuses.join(","),
            self.function_name.clone().map_or_else(|| "-".to_owned(), |name| format!("={name}")),
            self.created_from.map_or_else(|| "-".to_owned(), rfc3339),
            self.created_to.map_or_else(|| "-".to_owned(), rfc3339),
            self.instance_id_prefix.clone().map_or_else(|| "-".to_owned(), |prefix| format!("={prefix}")),
        ];
        let mut hash = Sha256::new();
        for part in parts {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hex(&hash.finalize()[..16])
    }
}

/// Where in an index partition a page ended: the last item's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPosition {
    /// The last item's instance key.
    pub key: InstanceKey,
    /// Its `createdAt`.
    pub created_at: Millis,
}

/// Where a list goes on: a partition (by its index in the filter's walk) and
/// the position in it after which to go on (`None`: from its start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Which of the filter's partitions.
    pub partition: usize,
    /// After which item in it.
    pub after: Option<ListPosition>,
}

/// What a list token continues: a list (GET), or a bulk purge (DELETE); one's token is not the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// `GET /instances`.
    List,
    /// `DELETE /instances`.
    Purge,
}

impl TokenUse {
    fn tag(self) -> &'static str {
        match self {
            TokenUse::List => "L",
            TokenUse::Purge => "P",
        }
    }
}

/// A continuation token that is not one this deployment issued for this query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidToken {
    /// Not a token, or one whose signature does not match: forged or changed.
    #[error("continuationToken is not a token this service issued, or it was changed")]
    Tampered,
    /// A genuine token of another query (other filters).
    #[error(
        "continuationToken belongs to another query (other filters, or a list's token sent to a bulk purge or \
         back); repeat the first request's method and filters"
    )]
    OtherQuery,
    /// A genuine history token of another execution (another instance, or an earlier run of this one).
    #[error("continuationToken belongs to the history of another instance or of an earlier run of this one")]
    OtherExecution,
}

/// Signs and reads continuation tokens: `base64url(payload).base64url(HMAC-SHA256(payload))`,
/// with the deployment's key, so that a token a client changed or made up is
/// refused before anything in it reaches DynamoDB.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSigner(…)")
    }
}

impl TokenSigner {
    /// A signer with `key` (at least 32 bytes of secret).
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// `payload`, signed: a token.
    pub fn seal(&self, payload: &str) -> String {
        format!("{}.{}", base64url(payload.as_bytes()), base64url(&hmac_sha256(&self.key, payload.as_bytes())))
    }

    /// The payload of a token this deployment sealed.
    pub fn open(&self, token: &str) -> Result<String, InvalidToken> {
        let (payload, tag) = token.split_once('.').ok_or(InvalidToken::Tampered)?;
        let payload = unbase64url(payload).ok_or(InvalidToken::Tampered)?;
        let tag = unbase64url(tag).ok_or(InvalidToken::Tampered)?;
        if !constant_time_eq(&tag, &hmac_sha256(&self.key, &payload)) {
            return Err(InvalidToken::Tampered);
        }
        String::from_utf8(payload).map_err(|_| InvalidToken::Tampered)
    }

    /// The token that continues `filter`'s list (or bulk purge: `use_`) at `cursor`.
    pub fn issue(&self, use_: TokenUse, filter: &ListFilter, cursor: &Cursor) -> String {
        let (key, created_at) =
            cursor.after.as_ref().map_or((String::new(), 0), |p| (p.key.as_str().to_owned(), p.created_at));
        self.seal(&format!("1|{}|{}|{}|{key}|{created_at}", use_.tag(), filter.digest(), cursor.partition))
    }

    /// The cursor in `token`, if this deployment issued it for `filter` and `use_`.
    pub fn read(&self, use_: TokenUse, filter: &ListFilter, token: &str) -> Result<Cursor, InvalidToken> {
        let payload = self.open(token)?;
        let parts: Vec<&str> = payload.split('|').collect();
        let ["1", tag, digest, partition, key, created_at] = parts.as_slice() else {
            return Err(InvalidToken::Tampered);
        };
        if *tag != use_.tag() || *digest != filter.digest() {
            return Err(InvalidToken::OtherQuery);
        }
        let partition: usize = partition.parse().map_err(|_| InvalidToken::Tampered)?;
        if partition >= filter.partitions().len() {
            return Err(InvalidToken::Tampered);
        }
        let after = match *key {
            "" => None,
            key => Some(ListPosition {
                key: InstanceKey::from_hex(key).ok_or(InvalidToken::Tampered)?,
                created_at: created_at.parse().map_err(|_| InvalidToken::Tampered)?,
            }),
        };
        Ok(Cursor { partition, after })
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(BASE64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn unbase64url(text: &str) -> Option<Vec<u8>> {
    let values: Vec<u32> =
        text.bytes().map(|c| BASE64URL.iter().position(|b| *b == c).map(|v| v as u32)).collect::<Option<_>>()?;
    if values.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(values.len() * 3 / 4);
    for chunk in values.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, v)| n | v << (18 - 6 * i));
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    // Only the canonical encoding: other spellings of the same bytes are changes too.
    (base64url(&out) == text).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::InstanceId;

    fn key(id: &str) -> InstanceKey {
        InstanceId::parse(id).unwrap_or_else(|e| panic!("{e}")).key()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let tag = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex(&tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Test case 6: a key longer than the block.
        let tag = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(hex(&tag), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn base64url_round_trips_and_refuses_other_spellings() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", &[0xff, 0xfe, 0x00]] {
            assert_eq!(unbase64url(&base64url(bytes)).as_deref(), Some(bytes));
        }
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(unbase64url("Zg="), None, "no padding");
        assert_eq!(unbase64url("Zh"), None, "not canonical");
        assert_eq!(unbase64url("Z"), None);
    }

    #[test]
    fn records_spread_over_the_shards_of_their_runtime_status() {
        let partitions: std::collections::BTreeSet<String> =
            (0..200).map(|i| list_partition(&key(&format!("id-{i}")), Status::Starting)).collect();
        assert_eq!(partitions.len(), usize::from(SHARDS));
        assert!(partitions.iter().all(|p| p.starts_with("Pending#")));
        assert!(list_partition(&key("a"), Status::TimedOut).starts_with("Failed#"));
    }

    #[test]
    fn a_filter_walks_its_statuses_shards_in_order() {
        let filter = ListFilter {
            runtime_statuses: vec![RuntimeStatus::Running, RuntimeStatus::Failed],
            ..ListFilter::default()
        };
        let partitions = filter.partitions();
        assert_eq!(partitions.len(), 2 * usize::from(SHARDS));
        assert_eq!((partitions[0].as_str(), partitions[15].as_str()), ("Running#0", "Failed#7"));
        assert_eq!(ListFilter::default().partitions().len(), 5 * usize::from(SHARDS));
    }

    #[test]
    fn tokens_carry_their_cursor_and_refuse_every_change() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let filter = ListFilter { function_name: Some("Orders".into()), ..ListFilter::default() };
        let cursor =
            Cursor { partition: 3, after: Some(ListPosition { key: key("a"), created_at: 1_764_000_000_000 }) };
        let token = signer.issue(TokenUse::List, &filter, &cursor);
        assert_eq!(signer.read(TokenUse::List, &filter, &token), Ok(cursor.clone()));
        let start = Cursor { partition: 4, after: None };
        assert_eq!(signer.read(TokenUse::List, &filter, &signer.issue(TokenUse::List, &filter, &start)), Ok(start));
        // Every single-character change is refused.
        for i in 0..token.len() {
            let mut changed = token.clone().into_bytes();
            changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).unwrap_or_default();
            if changed != token {
                assert_eq!(signer.read(TokenUse::List, &filter, &changed), Err(InvalidToken::Tampered), "{changed}");
            }
        }
        assert_eq!(signer.read(TokenUse::List, &filter, "garbage"), Err(InvalidToken::Tampered));
        assert_eq!(
            TokenSigner::new(b"another key of the right length!").read(TokenUse::List, &filter, &token),
            Err(InvalidToken::Tampered)
        );
        // Filters that serialise alike without length prefixes are told apart.
        let newline_name = ListFilter { function_name: Some("a\n".into()), ..ListFilter::default() };
        let newline_prefix = ListFilter {
            function_name: Some("a".into()),
            instance_id_prefix: Some("\n".into()),
            ..ListFilter::default()
        };
        assert_ne!(newline_name.digest(), newline_prefix.digest());
        let other = ListFilter { function_name: Some("Other".into()), ..ListFilter::default() };
        assert_eq!(signer.read(TokenUse::List, &other, &token), Err(InvalidToken::OtherQuery));
        assert_eq!(signer.read(TokenUse::Purge, &filter, &token), Err(InvalidToken::OtherQuery), "a list's token");
    }
}
