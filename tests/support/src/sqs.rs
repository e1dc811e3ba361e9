//! The emulator's SQS, as far as the tests need it: the queue a wait task
//! sends its message to, read as the event source mapping reads it. Plain
//! requests in SQS's JSON protocol (the project has no SQS client: only the
//! template's event source mappings talk to SQS).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// A queue on the emulator.
pub struct Queue {
    endpoint: String,
    /// The queue's URL, as a state machine's `QueueUrl` names it.
    pub url: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A message as ReceiveMessage returns it.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: String,
    /// When SQS took it (epoch ms, as text): a wait's deadline counts from it.
    pub sent_at: String,
}

impl Queue {
    /// Creates the queue `name`.
    pub async fn create(endpoint: &str, name: &str) -> Queue {
        let client = Client::builder(TokioExecutor::new()).build_http();
        let mut queue = Queue { endpoint: endpoint.to_owned(), url: String::new(), client };
        let created = queue.call("CreateQueue", json!({"QueueName": name})).await;
        queue.url = created["QueueUrl"].as_str().unwrap_or_else(|| panic!("CreateQueue: {created}")).to_owned();
        queue
    }

    /// The messages visible now, waiting up to `seconds` for at least `at_least`.
    pub async fn receive(&self, at_least: usize, seconds: u64) -> Vec<Message> {
        let mut messages = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while messages.len() < at_least && tokio::time::Instant::now() < deadline {
            let answer = self
                .call(
                    "ReceiveMessage",
                    json!({"QueueUrl": self.url, "MaxNumberOfMessages": 10, "AttributeNames": ["All"], "VisibilityTimeout": 60}),
                )
                .await;
            let received = answer["Messages"].as_array().cloned().unwrap_or_default();
            if received.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            messages.extend(received.iter().map(|m| Message {
                message_id: m["MessageId"].as_str().unwrap_or_default().to_owned(),
                receipt_handle: m["ReceiptHandle"].as_str().unwrap_or_default().to_owned(),
                body: m["Body"].as_str().unwrap_or_default().to_owned(),
                receive_count: m["Attributes"]["ApproximateReceiveCount"].as_str().unwrap_or("1").to_owned(),
                sent_at: m["Attributes"]["SentTimestamp"].as_str().unwrap_or_default().to_owned(),
            }));
        }
        messages
    }

    async fn call(&self, action: &str, body: Value) -> Value {
        let request = hyper::Request::post(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("AmazonSQS.{action}"))
            // The emulator routes by the credential scope's service; it checks no signature.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap_or_else(|e| panic!("{action}: {e}"));
        let answer = self.client.request(request).await.unwrap_or_else(|e| panic!("{action}: {e}"));
        let status = answer.status();
        let bytes = answer.into_body().collect().await.unwrap_or_else(|e| panic!("{action}: {e}")).to_bytes();
        assert!(status.is_success(), "{action}: {status} {}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{action}: {e}"))
    }
}

/// Messages as an SQS event source mapping hands them to a function.
pub fn sqs_event(messages: &[Message]) -> sfn_singleton::sqs::SqsEvent {
    let records: Vec<_> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.receive_count,
                    "SentTimestamp": m.sent_at,
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795615200010"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sfn-singleton-EventWaitsQueue",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap_or_else(|e| panic!("SQS event: {e}"))
}
