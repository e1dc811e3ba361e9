//! CloudWatch metrics as the deployed functions write them: the real
//! binaries under a Runtime API, their log read back, each metric document
//! checked against the embedded metric format's specification, and its counts
//! against a scripted sequence of requests and events.

use sfn_singleton::domain::Status;
use std::collections::BTreeMap;
use std::sync::Arc;
use testkit::emf::{MetricDocument, metric_documents, totals};
use testkit::*;

/// A request to the http Lambda through a function URL (payload 2.0, its documented event).
fn url_event(path: &str, query: &str, headers: &[(&str, &str)], body: &str) -> String {
    let fixture = format!("{}/tests/fixtures/sources/function_url.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&fixture).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let mut event: serde_json::Value =
        serde_json::from_str(&text.replace("{{RAW_PATH}}", path)).unwrap_or_else(|e| panic!("{e}"));
    event["rawQueryString"] = query.into();
    event["body"] = body.into();
    for (name, value) in headers {
        event["headers"][name] = (*value).into();
    }
    event.to_string()
}

/// Runs the Lambda whose handler is `handler` on `events`, and returns its log's metric
/// documents (each valid EMF).
async fn metrics_of(env: &Arc<TestEnv>, handler: &'static str, events: Vec<String>) -> Vec<MetricDocument> {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_bootstrap"));
    let invocation = tokio::task::spawn_blocking({
        let env = env.clone();
        move || invoke_configured(binary, handler, &env, &[FOREVER], events)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .succeeded();
    metric_documents(&invocation.log).unwrap_or_else(|invalid| panic!("not valid EMF: {invalid}\n{}", invocation.log))
}

/// Each counter's sum, and each timing's number of samples.
fn counts(documents: &[MetricDocument]) -> BTreeMap<String, usize> {
    let timings = ["StartLatency", "EventLag"];
    totals(documents)
        .into_iter()
        .map(|(name, (samples, sum))| {
            let count = if timings.contains(&name.as_str()) { samples } else { sum as usize };
            (name, count)
        })
        .collect()
}

#[tokio::test]
async fn each_function_logs_valid_emf_with_the_counts_of_what_it_did() {
    let env = Arc::new(TestEnv::new().await);
    let start = |id: &str, query: &str, headers: &[(&str, &str)]| {
        url_event(&format!("/orchestrators/{FOREVER}/{id}"), query, headers, "{}")
    };
    let key = [("idempotency-key", "metrics-key-1")];
    let requests = vec![
        start("m-1", "", &[]),                               // 202: Starts
        start("m-1", "", &[]),                               // 409: Rejections.InstanceAlreadyExists
        start("m-1", "onConflict=useExisting", &[]),         // 200: UseExisting
        start("m-2", "", &key),                              // 202: Starts
        start("m-2", "", &key),                              // 200: Replays
        start("m-1", "onConflict=terminateExisting", &[]),   // 202: Starts, Replacements
        url_event("/orchestrators/Nope/m-3", "", &[], "{}"), // 404 before the service: no start metric
        url_event("/instances/m-1", "", &[], ""),            // a status: no start metric
    ];
    let documents = metrics_of(&env, "http", requests).await;
    for document in &documents {
        assert_eq!(document.namespace, "SfnSingleton");
        // The one dimension: the function's name, never an instance ID.
        assert_eq!(document.dimensions, vec![vec![("FunctionName".to_owned(), "bench".to_owned())]]);
    }
    let expected: BTreeMap<String, usize> = [
        ("ColdStarts", 1),
        ("Starts", 3),
        ("Replacements", 1),
        ("Replays", 1),
        ("UseExisting", 1),
        ("Rejections.InstanceAlreadyExists", 1),
        ("StartLatency", 6),
    ]
    .into_iter()
    .map(|(name, count)| (name.to_owned(), count))
    .collect();
    assert_eq!(counts(&documents), expected);
    let units: BTreeMap<_, _> =
        documents.iter().flat_map(|d| &d.metrics).map(|(name, unit, _)| (name.as_str(), unit.as_deref())).collect();
    assert_eq!(units.get("StartLatency"), Some(&Some("Milliseconds")));
    assert_eq!(units.get("Starts"), Some(&Some("Count")));
    // One document per invocation that did something, plus the cold start's.
    assert_eq!(documents.len(), 7, "{documents:?}");

    // The status Lambda: a batch of a RUNNING event for the current run, one about no
    // execution of ours, and one that is not JSON; then the same RUNNING event again, in a
    // batch of its own (a batch's records run at once, and moto, unlike DynamoDB, does not
    // evaluate two concurrent conditional writes to one item atomically).
    let record = env.record("m-1").await.unwrap_or_else(|| panic!("no record"));
    let running = event_fixture("running", &record);
    let mut not_ours = running.clone();
    not_ours["detail"]["name"] = "someone-elses-execution".into();
    let mut batch = sqs_batch(&[running.clone(), not_ours]);
    batch.records.push({
        let mut record = batch.records[0].clone();
        record.message_id = Some("not-json".into());
        record.body = Some("{not json".into());
        record
    });
    let batches = [batch, sqs_batch(&[running])].map(|batch| serde_json::to_string(&batch).unwrap_or_default());
    let documents = metrics_of(&env, "status_events", batches.to_vec()).await;
    let counted = counts(&documents);
    assert_eq!(counted.get("StatusEvents.Applied"), Some(&1), "{counted:?}");
    assert_eq!(counted.get("StatusEvents.Ignored"), Some(&1), "{counted:?}");
    assert_eq!(counted.get("StatusEvents.NotOurs"), Some(&1), "{counted:?}");
    assert_eq!(counted.get("StatusEvents.Malformed"), Some(&1), "{counted:?}");
    assert_eq!(counted.get("ColdStarts"), Some(&1), "{counted:?}");
    // The lag of the one event applied: from the fixture's startDate to now, in milliseconds.
    let lag = totals(&documents).get("EventLag").copied();
    assert!(lag.is_some_and(|(samples, millis)| samples == 1 && millis > 0.0), "{lag:?}");
    assert_eq!(env.record("m-1").await.map(|r| r.status), Some(Status::Running));
}
