//! The instance store on DynamoDB: one item per instance, keyed by `pk`
//! (the instance key). Every attribute name in an expression goes through
//! `ExpressionAttributeNames`, reserved word or not.

use super::{Failure, classify, describe_error};
use crate::domain::{InstanceKey, Millis, Record, Status, StoredInput};
use crate::ports::{ClaimCondition, Conditional, ExecutionUpdate, InstanceStore, KeyClaim, KeyEntry, StoreError};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
/// The table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expiresAt";

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn to_item(r: &Record) -> Item {
    let mut item = Item::from([
        (PK.into(), s(r.key.as_str())),
        ("instanceId".into(), s(&r.instance_id)),
        ("functionName".into(), s(&r.function_name)),
        ("status".into(), s(r.status.as_str())),
        ("stateMachineArn".into(), s(&r.state_machine_arn)),
        ("executionName".into(), s(&r.execution_name)),
        ("executionArn".into(), s(&r.execution_arn)),
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
    ];
    item.extend(optional.into_iter().filter_map(|(name, value)| Some((name.to_owned(), value?))));
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
fn text_of(item: &Item, name: &str) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(other) => Err(StoreError::Corrupt(format!("{name} is not a string: {other:?}"))),
    }
}

/// An item's optional integer attribute.
fn number_of(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => {
            v.parse().map(Some).map_err(|_| StoreError::Corrupt(format!("{name} is not an integer: {v}")))
        }
        Some(other) => Err(StoreError::Corrupt(format!("{name} is not a number: {other:?}"))),
    }
}

/// A required attribute; `what` names the kind of item for the error.
fn required<T>(value: Result<Option<T>, StoreError>, what: &str, name: &str) -> Result<T, StoreError> {
    value?.ok_or_else(|| StoreError::Corrupt(format!("{what} has no {name}")))
}

fn from_item(item: &Item) -> Result<Record, StoreError> {
    let text = |name: &str| text_of(item, name);
    let number = |name: &str| number_of(item, name);
    let required_text = |name: &str| required(text_of(item, name), "the record", name);
    let required_number = |name: &str| required(number_of(item, name), "the record", name);

    let pk = required_text(PK)?;
    let key =
        InstanceKey::from_hex(&pk).ok_or_else(|| StoreError::Corrupt(format!("{pk:?} is not an instance key")))?;
    let status = required_text("status")?;
    let status = Status::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?;
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
        state_machine_arn: required_text("stateMachineArn")?,
        execution_name: required_text("executionName")?,
        execution_arn: required_text("executionArn")?,
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
    })
}

/// Key entries share the table with records: `key#` + the key's hash (records' keys are bare hex).
const KEY_PREFIX: &str = "key#";

fn key_pk(key_hash: &str) -> AttributeValue {
    s(format!("{KEY_PREFIX}{key_hash}"))
}

fn key_to_item(entry: &KeyEntry) -> Item {
    Item::from([
        (PK.into(), key_pk(&entry.key_hash)),
        ("instanceKey".into(), s(entry.instance_key.as_str())),
        ("executionName".into(), s(&entry.execution_name)),
        ("executionArn".into(), s(&entry.execution_arn)),
        ("requestDigest".into(), s(&entry.request_digest)),
        ("began".into(), n(entry.began)),
        ("until".into(), n(entry.until)),
        // TTL: DynamoDB forgets the entry once its window is over.
        (TTL_ATTRIBUTE.into(), n(entry.until / 1000 + 1)),
    ])
}

fn key_from_item(item: &Item) -> Result<KeyEntry, StoreError> {
    let text = |name: &str| required(text_of(item, name), "the key entry", name);
    let number = |name: &str| required(number_of(item, name), "the key entry", name);
    let pk = text(PK)?;
    let instance_key = text("instanceKey")?;
    Ok(KeyEntry {
        key_hash: pk.strip_prefix(KEY_PREFIX).unwrap_or(&pk).to_owned(),
        instance_key: InstanceKey::from_hex(&instance_key)
            .ok_or_else(|| StoreError::Corrupt(format!("key entry: {instance_key:?} is not an instance key")))?,
        execution_name: text("executionName")?,
        execution_arn: text("executionArn")?,
        request_digest: text("requestDigest")?,
        began: number("began")?,
        until: number("until")?,
    })
}

fn store_error<E: ProvideErrorMetadata + std::error::Error + 'static>(err: &SdkError<E, HttpResponse>) -> StoreError {
    let text = describe_error(err);
    match classify(err) {
        Failure::Throttled => StoreError::Throttled(text),
        Failure::Ambiguous => StoreError::Unavailable(text),
        Failure::Refused => StoreError::Failed(text),
    }
}

/// `:v0, :v1, …` for `values`, recorded in `bound`.
fn placeholders(prefix: &str, values: &[Status], bound: &mut Item) -> String {
    let names: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, status)| {
            let name = format!(":{prefix}{i}");
            bound.insert(name.clone(), s(status.as_str()));
            name
        })
        .collect();
    names.join(", ")
}

impl InstanceStore for DynamoStore {
    async fn claim(&self, record: &Record, condition: &ClaimCondition) -> Result<Conditional, StoreError> {
        let mut values = Item::new();
        let mut names = HashMap::new();
        let expression = match condition {
            ClaimCondition::Free { reusable, not_started_by } => {
                names.insert("#pk".into(), PK.into());
                let mut expression = "attribute_not_exists(#pk)".to_owned();
                if !reusable.is_empty() {
                    names.insert("#status".into(), "status".into());
                    let reusable = placeholders("r", reusable, &mut values);
                    expression = format!("({expression} OR #status IN ({reusable}))");
                }
                if let Some((hash, now)) = not_started_by {
                    names.insert("#status".into(), "status".into());
                    names.insert("#keyHash".into(), "idempotencyKeyHash".into());
                    names.insert("#keyUntil".into(), "idempotencyUntil".into());
                    values.insert(":keyHash".into(), s(hash));
                    values.insert(":now".into(), n(now));
                    values.insert(":startFailed".into(), s(Status::StartFailed.as_str()));
                    // A failed start started nothing: its key does not hold the ID.
                    expression.push_str(
                        " AND (attribute_not_exists(#keyHash) OR #keyHash <> :keyHash OR #keyUntil <= :now \
                         OR #status = :startFailed)",
                    );
                }
                expression
            }
            ClaimCondition::Replaces { execution_name, statuses } => {
                names.insert("#executionName".into(), "executionName".into());
                values.insert(":oldName".into(), s(execution_name));
                match statuses {
                    None => "#executionName = :oldName".to_owned(),
                    Some(statuses) => {
                        names.insert("#status".into(), "status".into());
                        let statuses = placeholders("s", statuses, &mut values);
                        format!("#executionName = :oldName AND #status IN ({statuses})")
                    }
                }
            }
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        conditional(result, |e| match e {
            PutItemError::ConditionalCheckFailedException(refusal) => Some(refusal),
            _ => None,
        })
    }

    async fn get(&self, key: &InstanceKey) -> Result<Option<Record>, StoreError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(key.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(&e))?;
        answer.item().map(from_item).transpose()
    }

    async fn mark_start_failed(
        &self,
        key: &InstanceKey,
        execution_name: &str,
        reason: &str,
        now: Millis,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(key.as_str()))
            .update_expression(
                "SET #status = :failed, #updatedAt = :now, #error = :error, #cause = :cause, #ttl = :ttl REMOVE #leaseUntil",
            )
            .condition_expression("#status = :starting AND #executionName = :name")
            .set_expression_attribute_names(Some(HashMap::from([
                ("#status".into(), "status".into()),
                ("#updatedAt".into(), "updatedAt".into()),
                ("#error".into(), "error".into()),
                ("#cause".into(), "cause".into()),
                ("#ttl".into(), TTL_ATTRIBUTE.into()),
                ("#leaseUntil".into(), "leaseUntil".into()),
                ("#executionName".into(), "executionName".into()),
            ])))
            .set_expression_attribute_values(Some(Item::from([
                (":failed".into(), s(Status::StartFailed.as_str())),
                (":starting".into(), s(Status::Starting.as_str())),
                (":now".into(), n(now)),
                (":error".into(), s(crate::domain::record::START_FAILED_ERROR)),
                (":cause".into(), s(crate::domain::record::bounded(reason.to_owned(), 4096))),
                (":ttl".into(), n(expires_at)),
                (":name".into(), s(execution_name)),
            ])))
            .send()
            .await;
        let outcome = conditional(result, |e| match e {
            UpdateItemError::ConditionalCheckFailedException(refusal) => Some(refusal),
            _ => None,
        });
        outcome.map(|outcome| outcome == Conditional::Written)
    }

    async fn apply(&self, key: &InstanceKey, update: &ExecutionUpdate) -> Result<Conditional, StoreError> {
        let state = &update.state;
        let mut names = HashMap::from([
            ("#status".to_owned(), "status".to_owned()),
            ("#executionArn".into(), "executionArn".into()),
            ("#updatedAt".into(), "updatedAt".into()),
            ("#confirmedAt".into(), "confirmedAt".into()),
            ("#redriveCount".into(), "redriveCount".into()),
            ("#leaseUntil".into(), "leaseUntil".into()),
        ]);
        let mut values = Item::from([
            (":status".to_owned(), s(state.status.as_str())),
            (":arn".into(), s(&update.execution_arn)),
            (":now".into(), n(update.observed_at)),
            (":redriveCount".into(), n(state.redrive_count)),
        ]);
        let from = placeholders("f", update.from, &mut values);
        let mut set = vec![
            "#status = :status".to_owned(),
            "#updatedAt = :now".into(),
            "#confirmedAt = :now".into(),
            "#redriveCount = :redriveCount".into(),
        ];
        let mut remove = vec!["#leaseUntil".to_owned()];
        let optional = [
            ("stopDate", state.stop_date.map(n)),
            ("output", state.output.as_deref().map(s)),
            ("error", state.error.as_deref().map(s)),
            ("cause", state.cause.as_deref().map(s)),
            (TTL_ATTRIBUTE, update.expires_at.map(n)),
        ];
        for (attribute, value) in optional {
            names.insert(format!("#{attribute}"), attribute.to_owned());
            match value {
                Some(value) => {
                    set.push(format!("#{attribute} = :{attribute}"));
                    values.insert(format!(":{attribute}"), value);
                }
                None => remove.push(format!("#{attribute}")),
            }
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(key.as_str()))
            .update_expression(format!("SET {} REMOVE {}", set.join(", "), remove.join(", ")))
            .condition_expression(format!(
                "#executionArn = :arn AND ((#status IN ({from}) AND #redriveCount <= :redriveCount) OR #redriveCount < :redriveCount)"
            ))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        conditional(result, |e| match e {
            UpdateItemError::ConditionalCheckFailedException(refusal) => Some(refusal),
            _ => None,
        })
    }

    async fn put_key(&self, entry: &KeyEntry, now: Millis) -> Result<KeyClaim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key_to_item(entry)))
            .condition_expression("attribute_not_exists(#pk) OR #until <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(KeyClaim::Written),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(refusal)) => {
                    Ok(KeyClaim::Taken(refusal.item().map(key_from_item).transpose()?.map(Box::new)))
                }
                _ => Err(store_error(&err)),
            },
        }
    }

    async fn get_key(&self, key_hash: &str) -> Result<Option<KeyEntry>, StoreError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, key_pk(key_hash))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(&e))?;
        answer.item().map(key_from_item).transpose()
    }

    async fn replace_key(&self, entry: &KeyEntry, execution_name: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key_to_item(entry)))
            .condition_expression("#executionName = :old")
            .expression_attribute_names("#executionName", "executionName")
            .expression_attribute_values(":old", s(execution_name))
            .send()
            .await;
        let outcome = conditional(result, |e| match e {
            PutItemError::ConditionalCheckFailedException(refusal) => Some(refusal),
            _ => None,
        });
        outcome.map(|outcome| outcome == Conditional::Written)
    }

    async fn delete_key(&self, key_hash: &str, execution_name: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, key_pk(key_hash))
            .condition_expression("#executionName = :name")
            .expression_attribute_names("#executionName", "executionName")
            .expression_attribute_values(":name", s(execution_name))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Another request's entry now: not ours to delete.
            Err(err) if matches!(err.as_service_error(), Some(DeleteItemError::ConditionalCheckFailedException(_))) => {
                Ok(())
            }
            Err(err) => Err(store_error(&err)),
        }
    }

    async fn purge(&self, key: &InstanceKey) -> Result<Conditional, StoreError> {
        let mut values = Item::new();
        let terminal = placeholders("t", &Status::TERMINAL, &mut values);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(key.as_str()))
            .condition_expression(format!("#status IN ({terminal})"))
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            // One attempt per call: the service retries, knowing which attempts may have deleted it.
            .customize()
            .config_override(aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await;
        conditional(result, |e| match e {
            DeleteItemError::ConditionalCheckFailedException(refusal) => Some(refusal),
            _ => None,
        })
    }
}

fn refused(item: Option<&Item>) -> Result<Conditional, StoreError> {
    Ok(Conditional::Refused(item.map(from_item).transpose()?.map(Box::new)))
}

/// A conditional write's outcome; `check_failed` picks the operation's
/// condition-failure variant, which carries the old item (`ALL_OLD`).
fn conditional<T, E: ProvideErrorMetadata + std::error::Error + 'static>(
    result: Result<T, SdkError<E, HttpResponse>>,
    check_failed: fn(&E) -> Option<&ConditionalCheckFailedException>,
) -> Result<Conditional, StoreError> {
    match result {
        Ok(_) => Ok(Conditional::Written),
        Err(err) => match err.as_service_error().and_then(check_failed) {
            Some(refusal) => refused(refusal.item()),
            None => Err(store_error(&err)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExecutionName, InstanceId, StartToken, StateMachineArn};

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
        for record in [starting, ended] {
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
