//! Test harness: each test gets its own table and state machines on the
//! emulator that `scripts/test` starts, and clients that count their calls.

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use lambda_http::http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request};
use sfn_singleton::aws::{DynamoStore, StepFunctions};
use sfn_singleton::config::{Config, Function};
use sfn_singleton::domain::{ExecutionName, InstanceId, Millis, Record, StateMachineArn};
use sfn_singleton::http::App;
use sfn_singleton::memory::{EngineOp, EngineScript, Scripted};
use sfn_singleton::ports::{Engine, EngineError, ExecutionState, InstanceStore, WorkflowType};
use sfn_singleton::service::{Clock, Singleton, Timings};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
/// Configured, but its state machine does not exist: StartExecution is refused.
pub const MISSING: &str = "Missing";

fn definitions() -> Vec<(&'static str, String)> {
    let file = |name: &str| {
        let path = format!("{}/infra/state-machines/{name}.asl.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    vec![
        (
            FOREVER,
            r#"{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":3600,"Next":"D"},"D":{"Type":"Succeed"}}}"#.into(),
        ),
        (QUICK, r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#.into()),
        (FAILS, file("AlwaysFails")),
        (WAIT20, file("Wait20")),
    ]
}

/// Every AWS operation the test's clients made, in order.
#[derive(Debug, Default, Clone)]
pub struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    /// Once per HTTP attempt: an SDK retry is one more entry. The operation is
    /// named by the JSON protocol's target header (`DynamoDB_20120810.PutItem`).
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("?.?");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(operation);
        Ok(())
    }
}

/// A clock the test moves forward instead of sleeping.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn advance(&self, millis: Millis) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }

    pub fn clock(&self) -> Clock {
        let offset = self.0.clone();
        let system = sfn_singleton::service::system_clock();
        Arc::new(move || system() + offset.load(Ordering::SeqCst))
    }
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
}

fn unique(prefix: &str) -> String {
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
        for (function, definition) in definitions() {
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
        TestEnv { table, functions, dynamo, sfn, calls, faults, clock: TestClock::default(), timings, returns_old_item }
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

    pub fn config(&self) -> Config {
        Config {
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
    pub async fn settled_executions(&self, function: &str, current: &str) -> Vec<(String, String)> {
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

    pub async fn execution_input(&self, execution_arn: &str) -> String {
        let described = self.sfn.describe_execution().execution_arn(execution_arn).send().await;
        let described = described.unwrap_or_else(|e| panic!("describe: {e:?}"));
        self.calls.take();
        described.input().unwrap_or_default().to_owned()
    }
}

fn parse_arn(arn: &str) -> StateMachineArn {
    StateMachineArn::parse(arn).unwrap_or_else(|e| panic!("{e}"))
}

async fn create_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) {
    let key = |kind| KeySchemaElement::builder().attribute_name("pk").key_type(kind).build();
    let attribute = AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build();
    dynamo
        .create_table()
        .table_name(table)
        .key_schema(key(KeyType::Hash).unwrap_or_else(|e| panic!("{e}")))
        .attribute_definitions(attribute.unwrap_or_else(|e| panic!("{e}")))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {table}: {e:?}"));
}

/// An HTTP answer, read back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn request(method: Method, path: &str, body: impl Into<Body>) -> Request {
    lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://api.example.com{path}"))
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn call<S: InstanceStore, E: Engine>(app: &App<S, E>, request: Request) -> Answer {
    let response = sfn_singleton::http::handle(app, request).await;
    let (parts, body) = response.into_parts();
    Answer { status: parts.status, headers: parts.headers, body: String::from_utf8_lossy(body.as_ref()).into_owned() }
}

pub async fn start<S: InstanceStore, E: Engine>(app: &App<S, E>, function: &str, id: &str, body: &str) -> Answer {
    call(app, request(Method::POST, &format!("/orchestrators/{function}/{id}"), body.to_owned())).await
}

/// A fixture from `tests/fixtures/events/`, about `record`'s execution.
pub fn event_fixture(name: &str, record: &Record) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let text = text
        .replace("{{EVENT_ID}}", &unique("event"))
        .replace("{{EXECUTION_ARN}}", &record.execution_arn)
        .replace("{{STATE_MACHINE_ARN}}", &record.state_machine_arn)
        .replace("{{NAME}}", &record.execution_name);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

impl TestEnv {
    /// What EventBridge would deliver for the execution's current status: the
    /// relay that the emulator lacks, built from DescribeExecution.
    pub async fn relayed_event(&self, execution_arn: &str) -> serde_json::Value {
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
    pub async fn finished(&self, execution_arn: &str) -> String {
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

    pub async fn execution_status(&self, execution_arn: &str) -> String {
        let d = self.sfn.describe_execution().execution_arn(execution_arn).send().await;
        let status = d.unwrap_or_else(|e| panic!("describe: {e:?}")).status().as_str().to_owned();
        self.calls.take();
        status
    }
}

/// A fault injected below the SDK (its retries see it as they would on AWS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answered with the service's throttling error; the request never reaches it.
    Throttled,
    /// Answered 500; the request never reaches it.
    ServerError,
    /// The request takes effect, its answer is replaced by a 500.
    ServerErrorAfter,
    /// Times out before the request reaches the service.
    TimeoutBefore,
    /// The request takes effect, then the connection times out: its answer is lost.
    TimeoutAfter,
    /// Never answered (a hung connection with no timeout set).
    Hang,
    /// Answered 400 with this error code; the request never reaches the service
    /// (e.g. `ExecutionAlreadyExists`, AWS's answer to a same-name start of an ended execution).
    Error(&'static str),
}

impl Fault {
    fn reaches_service(self) -> bool {
        matches!(self, Fault::ServerErrorAfter | Fault::TimeoutAfter)
    }
}

/// Faults to inject, by operation (`PutItem`, `StartExecution`, …), each for
/// a number of HTTP attempts. The SDK makes 3 attempts per call.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<Vec<Injected>>>);

/// An operation, its fault, and how many more attempts it hits.
/// Also: only requests whose body contains this text (a record's key, say), if any.
type Injected = (&'static str, Fault, usize, Option<String>);

impl Faults {
    pub fn inject(&self, operation: &'static str, fault: Fault, attempts: usize) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((operation, fault, attempts, None));
    }

    /// As `inject`, for requests whose body contains `needle` only.
    pub fn inject_for(&self, operation: &'static str, needle: &str, fault: Fault, attempts: usize) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((operation, fault, attempts, Some(needle.to_owned())));
    }

    /// Attempts still to fault; 0 once every injected fault was hit.
    pub fn pending(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, _, n, _)| n).sum()
    }

    fn take(&self, operation: &str, body: &[u8]) -> Option<Fault> {
        let mut faults = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let contains = |needle: &str| body.windows(needle.len().max(1)).any(|w| w == needle.as_bytes());
        let (_, fault, left, _) = faults
            .iter_mut()
            .find(|(op, _, left, needle)| *op == operation && *left > 0 && needle.as_deref().is_none_or(contains))?;
        *left -= 1;
        Some(*fault)
    }
}

#[derive(Debug, Clone)]
struct FaultyHttpClient {
    inner: SharedHttpClient,
    faults: Faults,
}

impl HttpClient for FaultyHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(FaultyConnector { inner, faults: self.faults.clone() })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    faults: Faults,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or_default().to_owned();
        let operation = target.rsplit('.').next().unwrap_or_default();
        let body = request.body().bytes().unwrap_or_default();
        let Some(fault) = self.faults.take(operation, body) else { return self.inner.call(request) };
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            if fault.reaches_service() {
                inner.call(request).await?;
            }
            if fault == Fault::Hang {
                return std::future::pending().await;
            }
            let dynamodb = target.starts_with("DynamoDB");
            let (status, code) = match fault {
                Fault::TimeoutBefore | Fault::TimeoutAfter => {
                    return Err(ConnectorError::timeout("injected: the connection timed out".into()));
                }
                Fault::Throttled if dynamodb => {
                    (400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException")
                }
                Fault::Throttled => (400, "ThrottlingException"),
                Fault::ServerError | Fault::ServerErrorAfter => (500, "InternalServerError"),
                Fault::Error(code) => (400, code),
                Fault::Hang => unreachable!("answered above"),
            };
            let body = serde_json::json!({"__type": code, "message": "injected fault"}).to_string();
            let mut response = aws_smithy_runtime_api::http::Response::new(
                status.try_into().unwrap_or_else(|e| panic!("{e}")),
                SdkBody::from(body),
            );
            response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
            Ok(response)
        })
    }
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

/// The emulator's Step Functions, with what it cannot do: any call scripted
/// one at a time (`Scripted`: fail, lose its answer, hang, or hang after
/// taking effect, as a process that dies), every StopExecution recorded (the
/// emulator keeps neither error nor cause), and, made with `aws_stops`, stops
/// and describes as AWS does them where moto differs: a stop leaves an ended
/// execution as it ended (moto rewrites it to ABORTED), and DescribeExecution
/// reports the error and cause of the stop that ended it.
pub struct ScriptedEngine<E> {
    pub inner: E,
    aws_stops: bool,
    script: EngineScript,
    /// (execution ARN, error, cause) of every StopExecution, in order.
    pub stops: Mutex<Vec<(String, String, String)>>,
}

impl<E: Engine> ScriptedEngine<E> {
    pub fn new(inner: E) -> Self {
        Self { inner, aws_stops: false, script: EngineScript::default(), stops: Mutex::default() }
    }

    /// With stops and describes as AWS does them.
    pub fn aws_stops(inner: E) -> Self {
        Self { aws_stops: true, ..Self::new(inner) }
    }

    /// The next call of `op` does what `scripted` says (scripts queue up in order).
    pub fn script(&self, op: EngineOp, scripted: Scripted) {
        self.script.push(op, scripted);
    }
}

impl<E: Engine> Engine for ScriptedEngine<E> {
    async fn start(&self, machine: &StateMachineArn, name: &ExecutionName, input: &str) -> Result<(), EngineError> {
        self.script.run(EngineOp::Start, self.inner.start(machine, name, input)).await
    }

    async fn stop(&self, execution_arn: &str, error: &str, cause: &str) -> Result<Option<i64>, EngineError> {
        let stop = async {
            if self.aws_stops
                && let Some(ended) = self.inner.describe(execution_arn).await?
                && ended.status.is_terminal()
            {
                return Ok(ended.stop_date.or(Some(0)));
            }
            let stopped = self.inner.stop(execution_arn, error, cause).await?;
            let mut stops = self.stops.lock().unwrap_or_else(|p| p.into_inner());
            stops.push((execution_arn.to_owned(), error.to_owned(), cause.to_owned()));
            Ok(stopped)
        };
        self.script.run(EngineOp::Stop, stop).await
    }

    async fn workflow_type(&self, machine: &StateMachineArn) -> Result<Option<WorkflowType>, EngineError> {
        self.script.run(EngineOp::WorkflowType, self.inner.workflow_type(machine)).await
    }

    async fn describe(&self, execution_arn: &str) -> Result<Option<ExecutionState>, EngineError> {
        let described = self.script.run(EngineOp::Describe, self.inner.describe(execution_arn)).await?;
        if !self.aws_stops {
            return Ok(described);
        }
        let stops = self.stops.lock().unwrap_or_else(|p| p.into_inner());
        let stopped_with = stops.iter().rev().find(|(arn, _, _)| arn == execution_arn).cloned();
        Ok(described.map(|state| match stopped_with {
            Some((_, error, cause)) if state.status == sfn_singleton::domain::Status::Aborted => {
                ExecutionState { error: Some(error), cause: Some(cause), ..state }
            }
            _ => state,
        }))
    }
}
