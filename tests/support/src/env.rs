//! Each test's environment on the emulator: its own table and state
//! machines, clients that log their calls and take injected faults, a clock.

use crate::calls::CallLog;
use crate::clock::TestClock;
use crate::faults::{Faults, FaultyHttpClient};
use crate::sqs::Queue;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use sfn_singleton::aws::dynamo::{
    BY_STATUS_INDEX, BY_STATUS_PROJECTION, BY_SWEEP_INDEX, LIST_PARTITION, SWEEP_AT, SWEEP_SHARD,
};
use sfn_singleton::aws::{DynamoStore, StepFunctions};
use sfn_singleton::config::{Config, Function};
use sfn_singleton::domain::{InstanceId, Record, StateMachineArn, Timings};
use sfn_singleton::http::App;
use sfn_singleton::ports::{Engine, InstanceStore};
use sfn_singleton::service::Singleton;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const ENDPOINT_VAR: &str = "SINGLETON_TEST_ENDPOINT";

/// When set, DynamoDB is this endpoint (dynalite) and Step Functions stays on moto.
pub const DYNAMODB_ENDPOINT_VAR: &str = "SINGLETON_TEST_DYNAMODB_ENDPOINT";

/// In expected call lists: a conditional put that is refused. DynamoDB (and
/// moto) return the old item with the refusal; dynalite does not, so the
/// service reads it with one GetItem.
pub const REFUSED_PUT: &str = "PutItem (refused)";

const ROLE: &str = "arn:aws:iam::123456789012:role/sfn-singleton-test";

/// State machines every test environment has, by function name.
pub const FOREVER: &str = "Forever";

pub const QUICK: &str = "Quick";

pub const FAILS: &str = "AlwaysFails";

pub const WAIT20: &str = "Wait20";

/// Times out after a second (TIMED_OUT).
pub const TIMES_OUT: &str = "TimesOut";

/// 120 Pass states in a row: a history of 243 events (three pages).
pub const MANY_STEPS: &str = "ManySteps";

fn many_steps() -> String {
    let states: Vec<String> = (0..120)
        .map(|i| {
            let next = if i == 119 { r#""End":true"#.to_owned() } else { format!(r#""Next":"S{}""#, i + 1) };
            format!(r#""S{i}":{{"Type":"Pass",{next}}}"#)
        })
        .collect();
    format!(r#"{{"StartAt":"S0","States":{{{}}}}}"#, states.join(","))
}

/// infra/state-machines/Approval.asl.json: waits for an `approval` event through [`TestEnv::event_waits`]' queue.
pub const APPROVAL: &str = "Approval";

/// Waits for `approval` for 1 s (its message says so), then, timed out, waits again for 5 minutes;
/// succeeds with the event (a reminder loop's shape).
pub const REMINDER: &str = "Reminder";

fn reminder(event_waits_url: &str) -> String {
    let wait = |seconds: u64, next: &str| {
        serde_json::json!({
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": event_waits_url,
                "MessageBody": {
                    "executionArn.$": "$$.Execution.Id",
                    "taskToken.$": "$$.Task.Token",
                    "eventName": "approval",
                    "timeoutSeconds": seconds
                }
            },
            "TimeoutSeconds": seconds,
            "ResultPath": "$.approval",
            "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timedOut", "Next": next}],
            "End": true
        })
    };
    serde_json::json!({
        "StartAt": "First",
        "States": {"First": wait(1, "Again"), "Again": wait(300, "GaveUp"), "GaveUp": {"Type": "Fail", "Error": "NoApproval"}}
    })
    .to_string()
}

/// Configured, but its state machine does not exist: StartExecution is refused.
pub const MISSING: &str = "Missing";

fn definitions(event_waits_url: &str) -> Vec<(&'static str, String)> {
    let file = |name: &str| {
        let path = format!("{}/../../infra/state-machines/{name}.asl.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    vec![
        (
            FOREVER,
            r#"{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":3600,"Next":"D"},"D":{"Type":"Succeed"}}}"#.into(),
        ),
        (QUICK, r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#.into()),
        (MANY_STEPS, many_steps()),
        (
            TIMES_OUT,
            r#"{"TimeoutSeconds":1,"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":60,"End":true}}}"#.into(),
        ),
        (FAILS, file("AlwaysFails")),
        (WAIT20, file("Wait20")),
        (APPROVAL, file("Approval").replace("${EventWaitsQueueUrl}", event_waits_url)),
        (REMINDER, reminder(event_waits_url)),
    ]
}

pub struct TestEnv {
    pub table: String,
    pub functions: BTreeMap<String, StateMachineArn>,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub calls: CallLog,
    /// Faults for the SDK clients of this environment to hit.
    pub faults: Faults,
    pub clock: TestClock,
    pub timings: Timings,
    /// Whether the DynamoDB in use returns the old item on a refused write.
    pub returns_old_item: bool,
    /// The emulator (moto) the clients talk to.
    pub endpoint: String,
    /// The queue Approval's wait task sends to (created by [`TestEnv::event_waits`]).
    event_waits_name: String,
}

pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}-{:08x}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst), fastrand::u32(..))
}

impl TestEnv {
    pub async fn new() -> Self {
        let endpoint = std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| {
            panic!("{ENDPOINT_VAR} is not set: run the tests with scripts/test, which starts the emulator")
        });
        let calls = CallLog::default();
        let faults = Faults::default();
        let http =
            FaultyHttpClient { inner: aws_smithy_http_client::Builder::new().build_http(), faults: faults.clone() };
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .http_client(http)
            // The SDK's default of 3 attempts, with a short backoff to keep fault tests quick.
            .retry_config(RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(2)))
            .load()
            .await;
        let dynamodb_endpoint = std::env::var(DYNAMODB_ENDPOINT_VAR).ok();
        let returns_old_item = dynamodb_endpoint.is_none();
        let mut dynamo_config = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(calls.clone());
        if let Some(endpoint) = dynamodb_endpoint {
            dynamo_config = dynamo_config.endpoint_url(endpoint);
        }
        let dynamo = aws_sdk_dynamodb::Client::from_conf(dynamo_config.build());
        let sfn =
            aws_sdk_sfn::Client::from_conf(aws_sdk_sfn::config::Builder::from(&sdk).interceptor(calls.clone()).build());
        let table = unique("instances");
        create_table(&dynamo, &table).await;
        let mut functions = BTreeMap::new();
        let event_waits_name = unique("event-waits");
        let event_waits_url = format!("{endpoint}/123456789012/{event_waits_name}");
        for (function, definition) in definitions(&event_waits_url) {
            let created = sfn
                .create_state_machine()
                .name(unique(function))
                .definition(definition)
                .role_arn(ROLE)
                .send()
                .await
                .unwrap_or_else(|e| panic!("create state machine {function}: {e:?}"));
            functions.insert(function.to_owned(), parse_arn(created.state_machine_arn()));
        }
        let missing = parse_arn(&format!("arn:aws:states:us-east-1:123456789012:stateMachine:{}", unique("missing")));
        functions.insert(MISSING.to_owned(), missing);
        calls.take();
        let timings = Timings {
            lease_millis: 60_000,
            reconcile_after_millis: 300_000,
            retention_secs: 86_400,
            idempotency_window_millis: 600_000,
        };
        TestEnv {
            table,
            functions,
            dynamo,
            sfn,
            calls,
            faults,
            clock: TestClock::default(),
            timings,
            returns_old_item,
            endpoint,
            event_waits_name,
        }
    }

    /// The calls expected on this DynamoDB: `REFUSED_PUT` becomes PutItem,
    /// followed by the GetItem where the store does not return the old item.
    pub fn expected(&self, calls: &[&str]) -> Vec<String> {
        calls
            .iter()
            .flat_map(|&call| match call {
                REFUSED_PUT if self.returns_old_item => vec!["PutItem"],
                REFUSED_PUT => vec!["PutItem", "GetItem"],
                other => vec![other],
            })
            .map(str::to_owned)
            .collect()
    }

    /// The queue Approval's wait task sends its message to: created now,
    /// before an Approval execution reaches its wait.
    pub async fn event_waits(&self) -> Queue {
        Queue::create(&self.endpoint, &self.event_waits_name).await
    }

    pub fn config(&self) -> Config {
        Config {
            page_token_key: "a test's page token key, 32 characters or more".to_owned(),
            table_name: self.table.clone(),
            functions: self.functions.iter().map(|(name, arn)| (name.clone(), Function::new(arn.clone()))).collect(),
            timings: self.timings.clone(),
            retry_after_secs: 10,
            public_base_url: None,
        }
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamo.clone(), &self.table)
    }

    pub fn engine(&self) -> StepFunctions {
        StepFunctions::new(self.sfn.clone())
    }

    pub fn app(&self) -> App<DynamoStore, StepFunctions> {
        self.app_with(self.store(), self.engine())
    }

    pub fn app_with<S: InstanceStore, E: Engine>(&self, store: S, engine: E) -> App<S, E> {
        App { service: Singleton::new(store, engine, self.timings.clone(), self.clock.clock()), config: self.config() }
    }

    pub fn machine(&self, function: &str) -> &StateMachineArn {
        self.functions.get(function).unwrap_or_else(|| panic!("no function {function}"))
    }

    /// Executions of a function's state machine: (name, status).
    pub async fn executions(&self, function: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .sfn
                .list_executions()
                .state_machine_arn(self.machine(function).as_str())
                .set_next_token(token)
                .send()
                .await
                .unwrap_or_else(|e| panic!("list executions: {e:?}"));
            out.extend(page.executions().iter().map(|e| (e.name().to_owned(), e.status().as_str().to_owned())));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        self.calls.take();
        out
    }

    /// Executions of a function's state machine, once every one but `current`
    /// has left RUNNING (moto applies StopExecution a moment later), or as
    /// they stand after 10 s.
    pub async fn settled_executions(&self, function: &str, current: impl AsRef<str>) -> Vec<(String, String)> {
        let current = current.as_ref();
        for _ in 0..100 {
            let executions = self.executions(function).await;
            if executions.iter().all(|(name, status)| name == current || status != "RUNNING") {
                return executions;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.executions(function).await
    }

    /// Executions of every configured state machine.
    pub async fn all_executions(&self) -> usize {
        let mut total = 0;
        for function in self.functions.keys().filter(|f| *f != MISSING) {
            total += self.executions(function).await.len();
        }
        total
    }

    pub async fn record(&self, instance_id: &str) -> Option<Record> {
        let id = InstanceId::parse(instance_id).unwrap_or_else(|e| panic!("{e}"));
        let record = self.store().get(&id.key()).await.unwrap_or_else(|e| panic!("get: {e}"));
        self.calls.take();
        record
    }

    pub async fn item_count(&self) -> i32 {
        let scan = self.dynamo.scan().table_name(&self.table).send().await.unwrap_or_else(|e| panic!("scan: {e:?}"));
        self.calls.take();
        scan.count()
    }

    pub async fn execution_input(&self, execution_arn: impl AsRef<str>) -> String {
        let execution_arn = execution_arn.as_ref();
        let described = self.sfn.describe_execution().execution_arn(execution_arn).send().await;
        let described = described.unwrap_or_else(|e| panic!("describe: {e:?}"));
        self.calls.take();
        described.input().unwrap_or_default().to_owned()
    }
}

fn parse_arn(arn: &str) -> StateMachineArn {
    StateMachineArn::parse(arn).unwrap_or_else(|e| panic!("{e}"))
}

/// The table as `template.yaml` defines it: `pk`, and the `byStatus` and `bySweep` indexes.
async fn create_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) {
    let key = |name: &str, kind| {
        KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap_or_else(|e| panic!("{e}"))
    };
    let attribute = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let projection = Projection::builder()
        .projection_type(ProjectionType::Include)
        .set_non_key_attributes(Some(BY_STATUS_PROJECTION.map(str::to_owned).to_vec()))
        .build();
    let index = GlobalSecondaryIndex::builder()
        .index_name(BY_STATUS_INDEX)
        .key_schema(key(LIST_PARTITION, KeyType::Hash))
        .key_schema(key("createdAt", KeyType::Range))
        .projection(projection)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let by_sweep = GlobalSecondaryIndex::builder()
        .index_name(BY_SWEEP_INDEX)
        .key_schema(key(SWEEP_SHARD, KeyType::Hash))
        .key_schema(key(SWEEP_AT, KeyType::Range))
        .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    dynamo
        .create_table()
        .table_name(table)
        .key_schema(key("pk", KeyType::Hash))
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .attribute_definitions(attribute(LIST_PARTITION, ScalarAttributeType::S))
        .attribute_definitions(attribute("createdAt", ScalarAttributeType::N))
        .attribute_definitions(attribute(SWEEP_SHARD, ScalarAttributeType::S))
        .attribute_definitions(attribute(SWEEP_AT, ScalarAttributeType::N))
        .global_secondary_indexes(index)
        .global_secondary_indexes(by_sweep)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {table}: {e:?}"));
}

impl TestEnv {
    /// What EventBridge would deliver for the execution's current status: the
    /// relay that the emulator lacks, built from DescribeExecution.
    pub async fn relayed_event(&self, execution_arn: impl AsRef<str>) -> serde_json::Value {
        let execution_arn = execution_arn.as_ref();
        let d = self.sfn.describe_execution().execution_arn(execution_arn).send().await;
        let d = d.unwrap_or_else(|e| panic!("describe: {e:?}"));
        self.calls.take();
        serde_json::json!({
            "version": "0",
            "id": unique("relayed"),
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": "123456789012",
            "time": "2026-11-25T14:00:05Z",
            "region": "us-east-1",
            "resources": [execution_arn],
            "detail": {
                "executionArn": execution_arn,
                "stateMachineArn": d.state_machine_arn(),
                "name": d.name(),
                "status": d.status().as_str(),
                "startDate": d.start_date().to_millis().ok(),
                "stopDate": d.stop_date().and_then(|t| t.to_millis().ok()),
                "input": d.input(),
                "output": d.output(),
                "error": d.error(),
                "cause": d.cause(),
                "redriveCount": d.redrive_count(),
            }
        })
    }

    /// Waits for the emulator to finish an execution; its status.
    pub async fn finished(&self, execution_arn: impl AsRef<str>) -> String {
        let execution_arn = execution_arn.as_ref();
        for _ in 0..300 {
            let d = self.sfn.describe_execution().execution_arn(execution_arn).send().await;
            let status = d.unwrap_or_else(|e| panic!("describe: {e:?}")).status().as_str().to_owned();
            if status != "RUNNING" {
                self.calls.take();
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{execution_arn} still runs after 30 s");
    }

    pub async fn execution_status(&self, execution_arn: impl AsRef<str>) -> String {
        let execution_arn = execution_arn.as_ref();
        let d = self.sfn.describe_execution().execution_arn(execution_arn).send().await;
        let status = d.unwrap_or_else(|e| panic!("describe: {e:?}")).status().as_str().to_owned();
        self.calls.take();
        status
    }
}
