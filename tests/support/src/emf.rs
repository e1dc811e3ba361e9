//! CloudWatch embedded metric format (EMF) documents in a function's log,
//! checked against the format's specification:
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use serde_json::Value;
use std::collections::BTreeMap;

/// The units CloudWatch accepts (`MetricDatum.Unit`).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Why a log line that claims to be an EMF document is not a valid one.
pub type Invalid = String;

/// One metric document, valid by the specification.
#[derive(Debug, Clone)]
pub struct MetricDocument {
    /// Its namespace.
    pub namespace: String,
    /// Its dimension sets, each with its values: `[[("FunctionName", "bench")]]`.
    pub dimensions: Vec<Vec<(String, String)>>,
    /// Each metric's name, unit and values.
    pub metrics: Vec<(String, Option<String>, Vec<f64>)>,
}

/// The metric documents in `log` (the lines with an `_aws` member), each
/// checked against the specification.
pub fn metric_documents(log: &str) -> Result<Vec<MetricDocument>, Invalid> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|value| value.get("_aws").is_some())
        .map(|document| check(&document).map_err(|why| format!("{why}: {document}")))
        .collect()
}

fn check(document: &Value) -> Result<MetricDocument, Invalid> {
    let root = document.as_object().ok_or("the root is not an object")?;
    let aws = root["_aws"].as_object().ok_or("_aws is not an object")?;
    let timestamp = aws.get("Timestamp").and_then(Value::as_u64).ok_or("_aws.Timestamp is not a number")?;
    // Epoch milliseconds, not seconds: CloudWatch takes 2 weeks back to 2 hours ahead.
    if !(1_600_000_000_000..4_000_000_000_000).contains(&timestamp) {
        return Err(format!("_aws.Timestamp {timestamp} is not epoch milliseconds"));
    }
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("no CloudWatchMetrics array")?;
    if directives.len() != 1 {
        return Err("expected one metric directive".into());
    }
    let directive = directives[0].as_object().ok_or("a metric directive is not an object")?;
    let namespace = directive.get("Namespace").and_then(Value::as_str).ok_or("no Namespace")?;
    if namespace.is_empty() || namespace.len() > 1024 || namespace.trim() != namespace {
        return Err(format!("Namespace {namespace:?} is not valid"));
    }
    let member = |name: &str| root.get(name).ok_or_else(|| format!("{name} is not a member of the root"));
    let mut dimensions = Vec::new();
    for set in directive.get("Dimensions").and_then(Value::as_array).ok_or("no Dimensions array")? {
        let set = set.as_array().ok_or("a dimension set is not an array")?;
        if set.len() > 30 {
            return Err("a dimension set has more than 30 dimensions".into());
        }
        let mut values = Vec::new();
        for name in set {
            let name = name.as_str().ok_or("a dimension name is not a string")?;
            let value = member(name)?.as_str().ok_or_else(|| format!("dimension {name} is not a string"))?;
            values.push((name.to_owned(), value.to_owned()));
        }
        dimensions.push(values);
    }
    let definitions = directive.get("Metrics").and_then(Value::as_array).ok_or("no Metrics array")?;
    if definitions.is_empty() || definitions.len() > 100 {
        return Err(format!("{} metrics in a directive (1 to 100)", definitions.len()));
    }
    let mut metrics = Vec::new();
    for definition in definitions {
        let name = definition.get("Name").and_then(Value::as_str).ok_or("a metric without a Name")?;
        if name.is_empty() || name.len() > 1024 {
            return Err(format!("metric name {name:?} is not 1 to 1024 characters"));
        }
        let unit = definition.get("Unit").map(|u| u.as_str().ok_or("a Unit is not a string")).transpose()?;
        if let Some(unit) = unit
            && !UNITS.contains(&unit)
        {
            return Err(format!("unit {unit:?} of {name} is not a CloudWatch unit"));
        }
        if let Some(resolution) = definition.get("StorageResolution")
            && resolution != 1
            && resolution != 60
        {
            return Err(format!("StorageResolution of {name} is neither 1 nor 60"));
        }
        let values = match member(name)? {
            Value::Number(n) => vec![n.as_f64().ok_or("not a finite number")?],
            Value::Array(values) if !values.is_empty() && values.len() <= 100 => values
                .iter()
                .map(|v| v.as_f64().ok_or_else(|| format!("a value of {name} is not a number")))
                .collect::<Result<_, _>>()?,
            other => return Err(format!("the value of {name} is {other}, not a number or 1 to 100 numbers")),
        };
        metrics.push((name.to_owned(), unit.map(str::to_owned), values));
    }
    Ok(MetricDocument { namespace: namespace.to_owned(), dimensions, metrics })
}

/// Each metric's values over `documents`, by name: CloudWatch's SampleCount and Sum.
pub fn totals(documents: &[MetricDocument]) -> BTreeMap<String, (usize, f64)> {
    let mut totals: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (name, _, values) in documents.iter().flat_map(|d| &d.metrics) {
        let total = totals.entry(name.clone()).or_default();
        total.0 += values.len();
        total.1 += values.iter().sum::<f64>();
    }
    totals
}
