//! Records and key entries as DynamoDB items, and back.

use crate::domain::listing::list_partition;
use crate::domain::mailbox::{EventName, Mailbox, RaisedEvent, Wait};
use crate::domain::{ExecutionArn, ExecutionName, InstanceKey, Record, StateMachineArn, Status, StoredInput};
use crate::ports::{KeyEntry, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeSet, HashMap};

pub(super) type Item = HashMap<String, AttributeValue>;

/// The `byStatus` index: partition key [`LIST_PARTITION`], sort key `createdAt`.
pub const BY_STATUS_INDEX: &str = "byStatus";
/// The index's partition key, `<runtimeStatus>#<shard>` (see [`crate::domain::listing`]).
pub const LIST_PARTITION: &str = "listPartition";
/// What the index keeps of a record besides its keys: what a list shows, not
/// the input (up to 16 KiB that every start would write twice).
pub const BY_STATUS_PROJECTION: [&str; 10] = [
    "instanceId",
    "functionName",
    "status",
    "stateMachineArn",
    "executionName",
    "executionArn",
    "updatedAt",
    "output",
    "error",
    "cause",
];

/// The table's partition key: the instance key (hex), or `key#` + a key's hash.
pub const PK: &str = "pk";

/// While a rewind holds the record: its token.
pub const REWIND_TOKEN: &str = "rewindToken";

/// The table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// A live run's mailbox (see [`crate::domain::mailbox`]): events and waits as
/// lists of maps, the IDs as string sets, and the count of sweeps.
pub(super) const EVENTS: &str = "events";
/// See [`EVENTS`].
pub(super) const WAITS: &str = "waits";
/// See [`EVENTS`].
pub(super) const RAISE_IDS: &str = "raiseIds";
/// See [`EVENTS`].
pub(super) const WAIT_IDS: &str = "waitIds";
/// See [`EVENTS`].
pub(super) const SWEEPS: &str = "mailboxSweeps";
/// When the mailbox is due for the scheduled sweep (epoch ms; see
/// [`crate::domain::mailbox::Mailbox::sweep_at`]): the sort key of the sparse
/// `bySweep` index, whose partition key is [`SWEEP_SHARD`].
pub const SWEEP_AT: &str = "sweepAt";
/// `sweep#<n>`, n < [`SWEEP_SHARDS`] from the instance key: the index's writes
/// spread over partitions.
pub const SWEEP_SHARD: &str = "sweepShard";
/// See [`SWEEP_AT`].
pub const BY_SWEEP_INDEX: &str = "bySweep";
/// See [`SWEEP_SHARD`].
pub const SWEEP_SHARDS: u8 = 4;
/// What a run's end, or a failed start, removes: the lists and the sweep's
/// due time (the IDs and the sweep count stay: a redrive brings the same run back).
pub(super) const MAILBOX_LISTS: [&str; 4] = [EVENTS, WAITS, SWEEP_AT, SWEEP_SHARD];

/// The `bySweep` shard of the record with instance key `key`.
pub(super) fn sweep_shard(key: &InstanceKey) -> String {
    let digit = key.as_str().bytes().last().map_or(0, |b| (b as char).to_digit(16).unwrap_or(0) as u8);
    shard_name(digit % SWEEP_SHARDS)
}

/// Shard `n`'s partition key in `bySweep`.
pub(super) fn shard_name(n: u8) -> String {
    format!("sweep#{n}")
}

pub(super) fn event_value(event: &RaisedEvent) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("id".to_owned(), s(&event.id)),
        ("name".into(), s(event.name.as_str())),
        ("body".into(), s(&event.body)),
        ("at".into(), n(event.at)),
    ]))
}

pub(super) fn wait_value(wait: &Wait) -> AttributeValue {
    let mut map = HashMap::from([
        ("id".to_owned(), s(&wait.id)),
        ("name".into(), s(wait.name.as_str())),
        ("token".into(), s(&wait.token)),
        ("at".into(), n(wait.at)),
    ]);
    if let Some(deadline) = wait.deadline {
        map.insert("deadline".into(), n(deadline));
    }
    AttributeValue::M(map)
}

fn entries<T>(item: &Item, name: &str, entry: impl Fn(&Item) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    match item.get(name) {
        None => Ok(Vec::new()),
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|value| match value {
                AttributeValue::M(map) => entry(map),
                other => Err(StoreError::Corrupt(format!("an entry of {name} is not a map: {other:?}"))),
            })
            .collect(),
        Some(other) => Err(StoreError::Corrupt(format!("{name} is not a list: {other:?}"))),
    }
}

fn string_set(item: &Item, name: &str) -> Result<BTreeSet<String>, StoreError> {
    match item.get(name) {
        None => Ok(BTreeSet::new()),
        Some(AttributeValue::Ss(values)) => Ok(values.iter().cloned().collect()),
        Some(other) => Err(StoreError::Corrupt(format!("{name} is not a string set: {other:?}"))),
    }
}

/// How many events no wait had taken in a record's lists (as an UpdateItem's `UPDATED_OLD` returns them).
pub(super) fn buffered_events(item: &Item) -> Result<usize, StoreError> {
    Ok(mailbox_of(item)?.buffered())
}

fn mailbox_of(item: &Item) -> Result<Mailbox, StoreError> {
    let name = |map: &Item| parsed(required(text_of(map, "name"), "a mailbox entry", "name"), EventName::parse);
    let text = |map: &Item, field: &str| required(text_of(map, field), "a mailbox entry", field);
    let at = |map: &Item| required(number_of(map, "at"), "a mailbox entry", "at");
    Ok(Mailbox {
        events: entries(item, EVENTS, |map| {
            Ok(RaisedEvent { id: text(map, "id")?, name: name(map)?, body: text(map, "body")?, at: at(map)? })
        })?,
        waits: entries(item, WAITS, |map| {
            Ok(Wait {
                id: text(map, "id")?,
                name: name(map)?,
                token: text(map, "token")?,
                at: at(map)?,
                deadline: number_of(map, "deadline")?,
            })
        })?,
        raise_ids: string_set(item, RAISE_IDS)?,
        wait_ids: string_set(item, WAIT_IDS)?,
        sweeps: u32::try_from(number_of(item, SWEEPS)?.unwrap_or(0)).unwrap_or(0),
        sweep_at: number_of(item, SWEEP_AT)?,
    })
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn to_item(r: &Record) -> Item {
    let mut item = Item::from([
        (PK.into(), s(r.key.as_str())),
        ("instanceId".into(), s(&r.instance_id)),
        ("functionName".into(), s(&r.function_name)),
        ("status".into(), s(r.status.as_str())),
        (LIST_PARTITION.into(), s(list_partition(&r.key, r.status))),
        ("stateMachineArn".into(), s(r.state_machine_arn.as_str())),
        ("executionName".into(), s(r.execution_name.as_str())),
        ("executionArn".into(), s(r.execution_arn.as_str())),
        ("createdAt".into(), n(r.created_at)),
        ("updatedAt".into(), n(r.updated_at)),
        ("redriveCount".into(), n(r.redrive_count)),
    ]);
    let optional = [
        ("confirmedAt", r.confirmed_at.map(n)),
        ("leaseUntil", r.lease_until.map(n)),
        ("output", r.output.as_deref().map(s)),
        ("error", r.error.as_deref().map(s)),
        ("stopDate", r.stop_date.map(n)),
        ("cause", r.cause.as_deref().map(s)),
        (TTL_ATTRIBUTE, r.expires_at.map(n)),
        ("idempotencyKeyHash", r.idempotency_key_hash.as_deref().map(s)),
        ("idempotencyUntil", r.idempotency_until.map(n)),
        (REWIND_TOKEN, r.rewind_token.as_deref().map(s)),
    ];
    item.extend(optional.into_iter().filter_map(|(name, value)| Some((name.to_owned(), value?))));
    let mailbox = &r.mailbox;
    if !mailbox.events.is_empty() {
        item.insert(EVENTS.into(), AttributeValue::L(mailbox.events.iter().map(event_value).collect()));
    }
    if !mailbox.waits.is_empty() {
        item.insert(WAITS.into(), AttributeValue::L(mailbox.waits.iter().map(wait_value).collect()));
    }
    if let Some(at) = mailbox.sweep_at {
        item.insert(SWEEP_AT.into(), n(at));
        item.insert(SWEEP_SHARD.into(), s(sweep_shard(&r.key)));
    }
    // (String sets cannot be empty.)
    if !mailbox.raise_ids.is_empty() {
        item.insert(RAISE_IDS.into(), AttributeValue::Ss(mailbox.raise_ids.iter().cloned().collect()));
    }
    if !mailbox.wait_ids.is_empty() {
        item.insert(WAIT_IDS.into(), AttributeValue::Ss(mailbox.wait_ids.iter().cloned().collect()));
    }
    if mailbox.sweeps > 0 {
        item.insert(SWEEPS.into(), n(mailbox.sweeps));
    }
    match &r.input {
        Some(StoredInput::Inline(input)) => {
            item.insert("input".into(), s(input));
        }
        Some(StoredInput::Digest { sha256, bytes }) => {
            item.insert("inputSha256".into(), s(sha256));
            item.insert("inputBytes".into(), n(bytes));
        }
        None => {}
    }
    item
}

/// An item's optional string attribute.
pub(super) fn text_of(item: &Item, name: &str) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(other) => Err(StoreError::Corrupt(format!("{name} is not a string: {other:?}"))),
    }
}

/// An item's optional integer attribute.
pub(super) fn number_of(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => {
            v.parse().map(Some).map_err(|_| StoreError::Corrupt(format!("{name} is not an integer: {v}")))
        }
        Some(other) => Err(StoreError::Corrupt(format!("{name} is not a number: {other:?}"))),
    }
}

/// A required attribute; `what` names the kind of item for the error.
pub(super) fn required<T>(value: Result<Option<T>, StoreError>, what: &str, name: &str) -> Result<T, StoreError> {
    value?.ok_or_else(|| StoreError::Corrupt(format!("{what} has no {name}")))
}

/// A stored text attribute as its domain type: what fails to parse is corrupt.
pub(super) fn parsed<T, E: std::fmt::Display>(
    text: Result<String, StoreError>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    let text = text?;
    parse(&text).map_err(|error| StoreError::Corrupt(error.to_string()))
}

pub(super) fn from_item(item: &Item) -> Result<Record, StoreError> {
    let text = |name: &str| text_of(item, name);
    let number = |name: &str| number_of(item, name);
    let required_text = |name: &str| required(text_of(item, name), "the record", name);
    let required_number = |name: &str| required(number_of(item, name), "the record", name);

    let pk = required_text(PK)?;
    let key =
        InstanceKey::from_hex(&pk).ok_or_else(|| StoreError::Corrupt(format!("{pk:?} is not an instance key")))?;
    let status = required_text("status")?;
    let status = parsed(Ok(status), Status::parse)?;
    let input = match (text("input")?, text("inputSha256")?, number("inputBytes")?) {
        (Some(input), _, _) => Some(StoredInput::Inline(input)),
        (None, Some(sha256), Some(bytes)) => {
            Some(StoredInput::Digest { sha256, bytes: usize::try_from(bytes).unwrap_or(0) })
        }
        _ => None,
    };
    Ok(Record {
        key,
        instance_id: required_text("instanceId")?,
        function_name: required_text("functionName")?,
        status,
        state_machine_arn: parsed(required_text("stateMachineArn"), StateMachineArn::parse)?,
        execution_name: parsed(required_text("executionName"), ExecutionName::parse)?,
        execution_arn: parsed(required_text("executionArn"), ExecutionArn::parse)?,
        created_at: required_number("createdAt")?,
        updated_at: required_number("updatedAt")?,
        confirmed_at: number("confirmedAt")?,
        lease_until: number("leaseUntil")?,
        input,
        stop_date: number("stopDate")?,
        output: text("output")?,
        error: text("error")?,
        cause: text("cause")?,
        redrive_count: u32::try_from(number("redriveCount")?.unwrap_or(0)).unwrap_or(0),
        expires_at: number(TTL_ATTRIBUTE)?,
        idempotency_key_hash: text("idempotencyKeyHash")?,
        idempotency_until: number("idempotencyUntil")?,
        rewind_token: text(REWIND_TOKEN)?,
        mailbox: mailbox_of(item)?,
    })
}

/// Key entries share the table with records: `key#` + the key's hash (records' keys are bare hex).
pub(super) const KEY_PREFIX: &str = "key#";

pub(super) fn key_pk(key_hash: &str) -> AttributeValue {
    s(format!("{KEY_PREFIX}{key_hash}"))
}

pub(super) fn key_to_item(entry: &KeyEntry) -> Item {
    Item::from([
        (PK.into(), key_pk(&entry.key_hash)),
        ("instanceKey".into(), s(entry.instance_key.as_str())),
        ("executionName".into(), s(entry.execution_name.as_str())),
        ("executionArn".into(), s(entry.execution_arn.as_str())),
        ("requestDigest".into(), s(&entry.request_digest)),
        ("began".into(), n(entry.began)),
        ("until".into(), n(entry.until)),
        // TTL: DynamoDB forgets the entry once its window is over.
        (TTL_ATTRIBUTE.into(), n(entry.until / 1000 + 1)),
    ])
}

pub(super) fn key_from_item(item: &Item) -> Result<KeyEntry, StoreError> {
    let text = |name: &str| required(text_of(item, name), "the key entry", name);
    let number = |name: &str| required(number_of(item, name), "the key entry", name);
    let pk = text(PK)?;
    let instance_key = text("instanceKey")?;
    Ok(KeyEntry {
        key_hash: pk.strip_prefix(KEY_PREFIX).unwrap_or(&pk).to_owned(),
        instance_key: InstanceKey::from_hex(&instance_key)
            .ok_or_else(|| StoreError::Corrupt(format!("key entry: {instance_key:?} is not an instance key")))?,
        execution_name: parsed(text("executionName"), ExecutionName::parse)?,
        execution_arn: parsed(text("executionArn"), ExecutionArn::parse)?,
        request_digest: text("requestDigest")?,
        began: number("began")?,
        until: number("until")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InstanceId, StartToken};

    #[test]
    fn records_survive_the_item_mapping() {
        let id = InstanceId::parse("order-1").unwrap_or_else(|e| panic!("{e}"));
        let sm = StateMachineArn::parse("arn:aws:states:us-east-1:1:stateMachine:s").unwrap_or_else(|e| panic!("{e}"));
        let name = ExecutionName::new(&id, StartToken::new(1, 2));
        let starting = Record::starting(&id, "f", &sm, &name, r#"{"a":1}"#, 10, 5);
        let big = format!("\"{}\"", "x".repeat(crate::domain::record::MAX_STORED_INPUT_BYTES));
        let ended = Record {
            status: Status::Failed,
            input: Some(StoredInput::of(&big)),
            error: Some("E".into()),
            cause: Some("C".into()),
            lease_until: None,
            expires_at: Some(99),
            redrive_count: 2,
            idempotency_key_hash: Some("ab".repeat(32)),
            idempotency_until: Some(1_000),
            ..starting.clone()
        };
        let rewinding = ended.rewinding("token-1", 3, 20, 5);
        let name = EventName::parse("approval").unwrap_or_else(|e| panic!("{e}"));
        let waiting = Record {
            mailbox: Mailbox::default()
                .with_event(&RaisedEvent { id: "e1".into(), name: name.clone(), body: r#"{"ok":true}"#.into(), at: 7 })
                .with_wait(&Wait { id: Wait::id_of("t"), name: name.clone(), token: "t".into(), at: 8, deadline: None })
                .with_wait(&Wait { id: Wait::id_of("u"), name, token: "u".into(), at: 8, deadline: Some(9) })
                .without(&[], &[]),
            ..starting.clone()
        };
        for record in [starting, ended, rewinding, waiting] {
            assert_eq!(from_item(&to_item(&record)), Ok(record));
        }
    }

    #[test]
    fn malformed_items_are_reported_not_panicked_on() {
        let mut item = Item::from([(PK.to_owned(), s("not-a-key"))]);
        assert!(matches!(from_item(&item), Err(StoreError::Corrupt(m)) if m.contains("not an instance key")));
        item.insert(PK.into(), s("0".repeat(32)));
        assert!(matches!(from_item(&item), Err(StoreError::Corrupt(m)) if m.contains("no status")));
    }
}
