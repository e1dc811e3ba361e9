//! The store port on DynamoDB: every write conditional, every attribute
//! name in an expression through `ExpressionAttributeNames`.

use super::item::*;
use crate::aws::sdk_error::{Failure, classify, describe_error};
use crate::domain::listing::{ListPosition, list_partition};
use crate::domain::mailbox::{MAX_EVENTS, MAX_IDS_PER_RUN, MAX_WAITS, RaisedEvent, SWEEP_AFTER_MILLIS, Wait};
use crate::domain::{ExecutionArn, ExecutionName, InstanceKey, Millis, Record, Status};
use crate::ports::{
    Applied, ClaimCondition, Conditional, ExecutionUpdate, InstanceStore, KeyClaim, KeyEntry, ListPage, Listed,
    MailboxWrite, RaiseGuard, StoreError, Sweep,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

/// The [`InstanceStore`] on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// The store on `table`, through `client` (built once per cold start).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
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
            ClaimCondition::Rewinds { execution_name, status, redrive_count, updated_at } => {
                names.insert("#executionName".into(), "executionName".into());
                names.insert("#status".into(), "status".into());
                names.insert("#redriveCount".into(), "redriveCount".into());
                names.insert("#updatedAt".into(), "updatedAt".into());
                values.insert(":oldName".into(), s(execution_name.as_str()));
                values.insert(":oldStatus".into(), s(status.as_str()));
                values.insert(":oldRedriveCount".into(), n(redrive_count));
                values.insert(":oldUpdatedAt".into(), n(updated_at));
                "#executionName = :oldName AND #status = :oldStatus AND #redriveCount = :oldRedriveCount \
                 AND #updatedAt = :oldUpdatedAt"
                    .to_owned()
            }
            ClaimCondition::Replaces { execution_name, statuses, redrive_count } => {
                names.insert("#executionName".into(), "executionName".into());
                values.insert(":oldName".into(), s(execution_name.as_str()));
                let mut expression = "#executionName = :oldName".to_owned();
                if let Some(statuses) = statuses {
                    names.insert("#status".into(), "status".into());
                    let statuses = placeholders("s", statuses, &mut values);
                    expression.push_str(&format!(" AND #status IN ({statuses})"));
                }
                if let Some(count) = redrive_count {
                    names.insert("#redriveCount".into(), "redriveCount".into());
                    values.insert(":oldRedriveCount".into(), n(count));
                    expression.push_str(" AND #redriveCount = :oldRedriveCount");
                }
                expression
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
        execution_name: &ExecutionName,
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
                "SET #status = :failed, #listPartition = :listPartition, #updatedAt = :now, #error = :error, \
                 #cause = :cause, #ttl = :ttl REMOVE #leaseUntil, #events, #waits, #sweepAt, #sweepShard",
            )
            .condition_expression("#status = :starting AND #executionName = :name")
            .set_expression_attribute_names(Some(HashMap::from([
                ("#status".into(), "status".into()),
                ("#listPartition".into(), LIST_PARTITION.into()),
                ("#updatedAt".into(), "updatedAt".into()),
                ("#error".into(), "error".into()),
                ("#cause".into(), "cause".into()),
                ("#ttl".into(), TTL_ATTRIBUTE.into()),
                ("#leaseUntil".into(), "leaseUntil".into()),
                ("#executionName".into(), "executionName".into()),
                ("#events".into(), EVENTS.into()),
                ("#waits".into(), WAITS.into()),
                ("#sweepAt".into(), SWEEP_AT.into()),
                ("#sweepShard".into(), SWEEP_SHARD.into()),
            ])))
            .set_expression_attribute_values(Some(Item::from([
                (":failed".into(), s(Status::StartFailed.as_str())),
                (":listPartition".into(), s(list_partition(key, Status::StartFailed))),
                (":starting".into(), s(Status::Starting.as_str())),
                (":now".into(), n(now)),
                (":error".into(), s(crate::domain::record::START_FAILED_ERROR)),
                (":cause".into(), s(crate::domain::record::bounded(reason.to_owned(), 4096))),
                (":ttl".into(), n(expires_at)),
                (":name".into(), s(execution_name.as_str())),
            ])))
            .send()
            .await;
        let outcome = conditional(result, update_refused);
        outcome.map(|outcome| outcome == Conditional::Written)
    }

    async fn apply(&self, key: &InstanceKey, update: &ExecutionUpdate) -> Result<Applied, StoreError> {
        let state = &update.state;
        let mut names = HashMap::from([
            ("#status".to_owned(), "status".to_owned()),
            ("#listPartition".into(), LIST_PARTITION.into()),
            ("#executionArn".into(), "executionArn".into()),
            ("#updatedAt".into(), "updatedAt".into()),
            ("#confirmedAt".into(), "confirmedAt".into()),
            ("#redriveCount".into(), "redriveCount".into()),
            ("#leaseUntil".into(), "leaseUntil".into()),
            ("#rewindToken".into(), REWIND_TOKEN.into()),
        ]);
        let mut values = Item::from([
            (":status".to_owned(), s(state.status.as_str())),
            (":listPartition".into(), s(list_partition(key, state.status))),
            (":arn".into(), s(update.execution_arn.as_str())),
            (":now".into(), n(update.observed_at)),
            (":redriveCount".into(), n(state.redrive_count)),
        ]);
        let condition = match &update.rewind_token {
            Some(token) => {
                values.insert(":redriving".into(), s(Status::Redriving.as_str()));
                values.insert(":token".into(), s(token));
                "#executionArn = :arn AND #status = :redriving AND #rewindToken = :token".to_owned()
            }
            None => {
                let from = placeholders("f", update.from, &mut values);
                format!(
                    "#executionArn = :arn AND ((#status IN ({from}) AND #redriveCount <= :redriveCount) \
                     OR #redriveCount < :redriveCount)"
                )
            }
        };
        let mut set = vec![
            "#status = :status".to_owned(),
            "#listPartition = :listPartition".into(),
            "#updatedAt = :now".into(),
            "#confirmedAt = :now".into(),
            "#redriveCount = :redriveCount".into(),
        ];
        let mut remove = vec!["#leaseUntil".to_owned(), "#rewindToken".to_owned()];
        if state.status.is_terminal() {
            // The run's end drops its events and waits.
            for attribute in MAILBOX_LISTS {
                names.insert(format!("#{attribute}"), attribute.to_owned());
                remove.push(format!("#{attribute}"));
            }
        }
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
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            // The lists as they were before the end removed them: how many events no wait took.
            .return_values(ReturnValue::UpdatedOld)
            .send()
            .await;
        let dropped_events = match &result {
            Ok(output) => output.attributes().map(buffered_events).transpose()?.unwrap_or(0),
            Err(_) => 0,
        };
        Ok(match conditional(result, update_refused)? {
            Conditional::Written => Applied::Written { dropped_events },
            Conditional::Refused(current) => Applied::Refused(current),
        })
    }

    async fn add_event(
        &self,
        key: &InstanceKey,
        event: &RaisedEvent,
        guard: &RaiseGuard,
    ) -> Result<MailboxWrite, StoreError> {
        let (attribute, value, guard) = match guard {
            RaiseGuard::ClaimedBy(began) => ("createdAt", n(began), "#guard <= :guard"),
            RaiseGuard::Run(run) => ("executionName", s(run.as_str()), "#guard = :guard"),
        };
        let values =
            Item::from([(":event".to_owned(), AttributeValue::L(vec![event_value(event)])), (":guard".into(), value)]);
        let names = HashMap::from([("#guard".to_owned(), attribute.to_owned())]);
        self.add_to_mailbox(
            key,
            MailboxEntry { list: EVENTS, ids: RAISE_IDS, max: MAX_EVENTS, id: &event.id, at: event.at },
            guard,
            names,
            values,
        )
        .await
    }

    async fn add_wait(
        &self,
        key: &InstanceKey,
        execution_arn: &ExecutionArn,
        wait: &Wait,
    ) -> Result<MailboxWrite, StoreError> {
        let values = Item::from([
            (":event".to_owned(), AttributeValue::L(vec![wait_value(wait)])),
            (":guard".into(), s(execution_arn.as_str())),
        ]);
        let names = HashMap::from([("#guard".to_owned(), "executionArn".to_owned())]);
        self.add_to_mailbox(
            key,
            MailboxEntry { list: WAITS, ids: WAIT_IDS, max: MAX_WAITS, id: &wait.id, at: wait.at },
            "#guard = :guard",
            names,
            values,
        )
        .await
    }

    async fn sweep(&self, key: &InstanceKey, sweep: &Sweep<'_>) -> Result<Conditional, StoreError> {
        let (events, waits, sweeps, redrive_count) = sweep.seen;
        let mut values = Item::new();
        let taking = placeholders("s", &TAKES_EVENTS, &mut values);
        values.extend([
            (":arn".to_owned(), s(sweep.execution_arn.as_str())),
            (":events".into(), n(events)),
            (":waits".into(), n(waits)),
            (":one".into(), n(1)),
            (":redriveCount".into(), n(redrive_count)),
        ]);
        let swept = if sweeps == 0 {
            "attribute_not_exists(#sweeps)"
        } else {
            values.insert(":sweeps".into(), n(sweeps));
            "#sweeps = :sweeps"
        };
        let mut removed: Vec<String> = (sweep.events.iter().map(|i| format!("#events[{i}]")))
            .chain(sweep.waits.iter().map(|i| format!("#waits[{i}]")))
            .collect();
        let due = match sweep.due {
            Some(due) => {
                values.insert(":sweepAt".into(), n(due));
                values.insert(":sweepShard".into(), s(sweep_shard(key)));
                "SET #sweepAt = :sweepAt, #sweepShard = :sweepShard "
            }
            None => {
                removed.extend(["#sweepAt".to_owned(), "#sweepShard".to_owned()]);
                ""
            }
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(key.as_str()))
            .update_expression(if removed.is_empty() {
                format!("{due}ADD #sweeps :one")
            } else {
                format!("{due}REMOVE {} ADD #sweeps :one", removed.join(", "))
            })
            .condition_expression(format!(
                "#executionArn = :arn AND #redriveCount = :redriveCount AND #status IN ({taking}) \
                 AND {} AND {} AND {swept}",
                list_size("#events", ":events", events),
                list_size("#waits", ":waits", waits),
            ))
            .set_expression_attribute_names(Some(HashMap::from([
                ("#executionArn".to_owned(), "executionArn".to_owned()),
                ("#status".into(), "status".into()),
                ("#events".into(), EVENTS.into()),
                ("#waits".into(), WAITS.into()),
                ("#sweeps".into(), SWEEPS.into()),
                ("#redriveCount".into(), "redriveCount".into()),
                ("#sweepAt".into(), SWEEP_AT.into()),
                ("#sweepShard".into(), SWEEP_SHARD.into()),
            ])))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        conditional(result, update_refused)
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

    async fn replace_key(&self, entry: &KeyEntry, execution_name: &ExecutionName) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key_to_item(entry)))
            .condition_expression("#executionName = :old")
            .expression_attribute_names("#executionName", "executionName")
            .expression_attribute_values(":old", s(execution_name.as_str()))
            .send()
            .await;
        let outcome = conditional(result, |e| match e {
            PutItemError::ConditionalCheckFailedException(refusal) => Some(refusal),
            _ => None,
        });
        outcome.map(|outcome| outcome == Conditional::Written)
    }

    async fn delete_key(&self, key_hash: &str, execution_name: &ExecutionName) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, key_pk(key_hash))
            .condition_expression("#executionName = :name")
            .expression_attribute_names("#executionName", "executionName")
            .expression_attribute_values(":name", s(execution_name.as_str()))
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

    async fn due_for_sweep(&self, now: Millis, limit: usize) -> Result<Vec<InstanceKey>, StoreError> {
        let mut due = Vec::new();
        for shard in 0..SWEEP_SHARDS {
            let answer = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_SWEEP_INDEX)
                .key_condition_expression("#shard = :shard AND #at <= :now")
                .set_expression_attribute_names(Some(HashMap::from([
                    ("#shard".to_owned(), SWEEP_SHARD.to_owned()),
                    ("#at".into(), SWEEP_AT.into()),
                ])))
                .set_expression_attribute_values(Some(Item::from([
                    (":shard".to_owned(), s(shard_name(shard))),
                    (":now".into(), n(now)),
                ])))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| store_error(&e))?;
            for item in answer.items() {
                let at = number_of(item, SWEEP_AT)?.unwrap_or(now);
                let pk = text_of(item, PK)?.unwrap_or_default();
                let key = InstanceKey::from_hex(&pk)
                    .ok_or_else(|| StoreError::Corrupt(format!("{pk:?} in the sweep index is not an instance key")))?;
                due.push((at, key));
            }
        }
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, key)| key).collect())
    }

    async fn list(&self, page: ListPage<'_>) -> Result<Listed, StoreError> {
        let filter = page.filter;
        let mut names = HashMap::from([("#partition".to_owned(), LIST_PARTITION.to_owned())]);
        let mut values = Item::from([(":partition".to_owned(), s(page.partition))]);
        let mut key_condition = "#partition = :partition".to_owned();
        if filter.created_from.is_some() || filter.created_to.is_some() {
            names.insert("#createdAt".into(), "createdAt".into());
            values.insert(":from".into(), n(filter.created_from.unwrap_or(Millis::MIN)));
            values.insert(":to".into(), n(filter.created_to.unwrap_or(Millis::MAX)));
            key_condition.push_str(" AND #createdAt BETWEEN :from AND :to");
        }
        let mut filters = Vec::new();
        if let Some(function_name) = &filter.function_name {
            names.insert("#functionName".into(), "functionName".into());
            values.insert(":functionName".into(), s(function_name));
            filters.push("#functionName = :functionName");
        }
        if let Some(prefix) = &filter.instance_id_prefix {
            names.insert("#instanceId".into(), "instanceId".into());
            values.insert(":prefix".into(), s(prefix));
            filters.push("begins_with(#instanceId, :prefix)");
        }
        // The position a token carried was signed by this service; it is rebuilt here, never passed as given.
        let start = page.after.map(|after| {
            Item::from([
                (PK.to_owned(), s(after.key.as_str())),
                (LIST_PARTITION.to_owned(), s(page.partition)),
                ("createdAt".to_owned(), n(after.created_at)),
            ])
        });
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_STATUS_INDEX)
            .key_condition_expression(key_condition)
            .set_filter_expression((!filters.is_empty()).then(|| filters.join(" AND ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .set_exclusive_start_key(start)
            .scan_index_forward(false)
            .limit(i32::try_from(page.limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| store_error(&e))?;
        let records = answer.items().iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        let next = match answer.last_evaluated_key() {
            None => None,
            Some(last) => Some(ListPosition {
                key: parsed(required(text_of(last, PK), "a page's last key", PK), |key| {
                    InstanceKey::from_hex(key).ok_or("not an instance key")
                })?,
                created_at: required(number_of(last, "createdAt"), "a page's last key", "createdAt")?,
            }),
        };
        Ok(Listed { records, next })
    }

    async fn purge(&self, key: &InstanceKey, run: Option<&ExecutionName>) -> Result<Conditional, StoreError> {
        let mut values = Item::new();
        let mut names = HashMap::from([("#status".to_owned(), "status".to_owned())]);
        let terminal = placeholders("t", &Status::TERMINAL, &mut values);
        let mut condition = format!("#status IN ({terminal})");
        if let Some(run) = run {
            names.insert("#executionName".into(), "executionName".into());
            values.insert(":run".into(), s(run.as_str()));
            condition.push_str(" AND #executionName = :run");
        }
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(key.as_str()))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
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

/// Where a mailbox write appends: the list, the ID set, the list's bound, the entry's ID.
struct MailboxEntry<'a> {
    list: &'static str,
    ids: &'static str,
    max: usize,
    id: &'a str,
    /// When the entry was stamped.
    at: Millis,
}

/// The statuses of a run that takes events, as DynamoDB sees them.
const TAKES_EVENTS: [Status; 3] = [Status::Starting, Status::Running, Status::Redriving];

impl DynamoStore {
    /// Appends `:event` to the entry's list and its ID to the ID set, if the
    /// run takes events, `guard` holds (`#guard`/`:guard`), the ID is new and
    /// there is room; the record after (`ALL_NEW`), or the one that refused (`ALL_OLD`).
    async fn add_to_mailbox(
        &self,
        key: &InstanceKey,
        entry: MailboxEntry<'_>,
        guard: &str,
        mut names: HashMap<String, String>,
        mut values: Item,
    ) -> Result<MailboxWrite, StoreError> {
        let taking = placeholders("s", &TAKES_EVENTS, &mut values);
        values.extend([
            (":empty".to_owned(), AttributeValue::L(Vec::new())),
            (":id".into(), s(entry.id)),
            (":idSet".into(), AttributeValue::Ss(vec![entry.id.to_owned()])),
            (":max".into(), n(entry.max)),
            (":maxIds".into(), n(MAX_IDS_PER_RUN)),
            (":sweepAt".into(), n(entry.at + SWEEP_AFTER_MILLIS)),
            (":sweepShard".into(), s(sweep_shard(key))),
        ]);
        names.extend([
            ("#status".to_owned(), "status".to_owned()),
            ("#list".into(), entry.list.into()),
            ("#ids".into(), entry.ids.into()),
            ("#sweepAt".into(), SWEEP_AT.into()),
            ("#sweepShard".into(), SWEEP_SHARD.into()),
        ]);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(key.as_str()))
            // Due for the scheduled sweep when a pair this write forms is old enough, unless due already.
            .update_expression(
                "SET #list = list_append(if_not_exists(#list, :empty), :event), \
                 #sweepAt = if_not_exists(#sweepAt, :sweepAt), #sweepShard = :sweepShard ADD #ids :idSet",
            )
            // (A missing record has no status: the condition fails, and nothing is created.)
            .condition_expression(format!(
                "#status IN ({taking}) AND {guard} \
                 AND (attribute_not_exists(#ids) OR (NOT contains(#ids, :id) AND size(#ids) < :maxIds)) \
                 AND (attribute_not_exists(#list) OR size(#list) < :max)"
            ))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            // One attempt per call: the service retries, knowing an attempt may have landed.
            .customize()
            .config_override(aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await;
        match result {
            Ok(answer) => {
                let record = answer
                    .attributes()
                    .ok_or_else(|| StoreError::Corrupt("an UpdateItem with ALL_NEW returned no attributes".into()))?;
                Ok(MailboxWrite::Added(Box::new(from_item(record)?)))
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refusal)) => {
                    Ok(MailboxWrite::Refused(refusal.item().map(from_item).transpose()?.map(Box::new)))
                }
                _ => Err(store_error(&err)),
            },
        }
    }
}

/// The condition that list `name` holds `count` entries: a list never written
/// is missing, not empty, and `size()` of a missing attribute is false.
fn list_size(name: &str, value: &str, count: usize) -> String {
    if count == 0 {
        format!("(attribute_not_exists({name}) OR size({name}) = {value})")
    } else {
        format!("size({name}) = {value}")
    }
}

/// An UpdateItem's condition failure, with the old item.
fn update_refused(error: &UpdateItemError) -> Option<&ConditionalCheckFailedException> {
    match error {
        UpdateItemError::ConditionalCheckFailedException(refusal) => Some(refusal),
        _ => None,
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
