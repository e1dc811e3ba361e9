//! Status events as the status Lambda receives them.

use crate::env::unique;
use sfn_singleton::domain::Record;
use sfn_singleton::ports::{Engine, InstanceStore};
use sfn_singleton::service::Singleton;

/// A fixture from `tests/fixtures/events/`, about `record`'s execution.
pub fn event_fixture(name: &str, record: &Record) -> serde_json::Value {
    let path = format!("{}/../fixtures/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let text = text
        .replace("{{EVENT_ID}}", &unique("event"))
        .replace("{{EXECUTION_ARN}}", record.execution_arn.as_str())
        .replace("{{STATE_MACHINE_ARN}}", record.state_machine_arn.as_str())
        .replace("{{NAME}}", record.execution_name.as_str());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// EventBridge events as the status Lambda receives them: one SQS batch
/// (the event source mapping's documented shape), each body a whole event.
pub fn sqs_batch(events: &[serde_json::Value]) -> sfn_singleton::events::SqsEvent {
    let records: Vec<_> = events
        .iter()
        .map(|event| {
            serde_json::json!({
                "messageId": unique("message"),
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                "body": event.to_string(),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795615200000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795615200010"
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sfn-singleton-StatusEventsQueue",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap_or_else(|e| panic!("SQS batch: {e}"))
}

/// The message IDs of a batch's records, in order.
pub fn message_ids(batch: &sfn_singleton::events::SqsEvent) -> Vec<String> {
    batch.records.iter().map(|r| r.message_id.clone().unwrap_or_default()).collect()
}

/// The time a status batch may take in the tests (the function's 30 s, less its margin).
pub const BATCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(28);

/// Delivers one event in an SQS batch of its own; it must not be reported failed.
pub async fn deliver_event<S: InstanceStore, E: Engine>(service: &Singleton<S, E>, event: serde_json::Value) {
    let answer = sfn_singleton::events::handle_batch(service, sqs_batch(&[event]), BATCH_BUDGET).await;
    let answer = answer.unwrap_or_else(|e| panic!("batch failed: {e}"));
    assert!(answer.batch_item_failures.is_empty(), "a record was reported failed: {answer:?}");
}
