//! The benchmark: AWS calls per operation, handler overhead against the raw
//! SDK calls, concurrency storms against the naive check-then-start, cold
//! start (over plain HTTP and over TLS, through the fronts of `front.rs`) and
//! memory of the release `bootstrap` under a minimal local Lambda Runtime
//! API, and zip sizes — every figure beside its baseline from the same run
//! and its target. Run by `scripts/bench`, which starts the emulator and
//! builds what this measures; it prints figures and never fails on them.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use lambda_http::http::{Method, StatusCode};
use sfn_singleton::events;
use sfn_singleton::memory::{MemoryEngine, MemoryStore};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};
use testkit::*;

mod front;

const SAMPLES: usize = 300;
const STORM: usize = 1000;
const DISTINCT: usize = 500;
const RSS_REQUESTS: usize = 1000;
/// The argument that makes this binary measure its own first SDK load.
const FIRST_LOAD: &str = "--first-sdk-load";

/// The report: printed as it grows, written to BENCHMARKS.md at the end, with
/// the figures the charts are drawn from (`infra/bench/charts.py`).
#[derive(Default)]
struct Report {
    text: String,
    figures: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    fn line(&mut self, text: impl AsRef<str>) {
        println!("{}", text.as_ref());
        self.text.push_str(text.as_ref());
        self.text.push('\n');
    }

    fn figure(&mut self, name: &str, value: serde_json::Value) {
        self.figures.insert(name.to_owned(), value);
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", millis(d))
}

/// `a` − `b`, signed.
fn ms_difference(a: Duration, b: Duration) -> String {
    format!("{:+.2} ms", millis(a) - millis(b))
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(index).copied().unwrap_or_default()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, without it.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("benches/singleton: a benchmark, not a test; run scripts/bench");
        return;
    }
    if std::env::args().any(|arg| arg == FIRST_LOAD) {
        return first_load_in_fresh_process();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let mut report = Report::default();
    // `BENCH_ONLY=cold_starts,handler_overhead` (say): those sections alone, to try a build setting.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let run = |section: &str| only.is_empty() || only.split(',').any(|s| s == section);
    let environment = std::env::var("BENCH_ENVIRONMENT").unwrap_or_else(|_| "(not given)".into());
    report.line("# Benchmarks");
    report.line("");
    report.line(format!("Produced by `scripts/bench`. {environment}"));
    report.line("");
    runtime.block_on(async {
        let env = Arc::new(TestEnv::new().await);
        if run("calls_per_operation") {
            calls_per_operation(&env, &mut report).await;
        }
        // Before the storms, whose executions keep the emulator busy for a while.
        if run("sdk_init") {
            sdk_init(&mut report).await;
        }
        if run("cold_starts") {
            cold_starts(&env, &mut report).await;
        }
        if run("handler_overhead") {
            handler_overhead(&env, &mut report).await;
        }
        if run("storms") {
            storms(&env, &mut report).await;
        }
    });
    if run("sizes") {
        sizes(&mut report);
    }
    // A partial run never replaces the full report (nor, in scripts/bench, its charts).
    let default_report = if only.is_empty() { "BENCHMARKS.md" } else { "target/bench-partial.md" };
    let out = std::env::var("BENCH_REPORT").unwrap_or_else(|_| default_report.into());
    std::fs::write(&out, &report.text).unwrap_or_else(|e| panic!("{out}: {e}"));
    let figures = std::env::var("BENCH_FIGURES").unwrap_or_else(|_| "target/bench-figures.json".into());
    let json = serde_json::Value::Object(report.figures).to_string();
    std::fs::write(&figures, json).unwrap_or_else(|e| panic!("{figures}: {e}"));
    println!("\nwritten to {out} and {figures}");
}

// ------------------------------------------------------------------ calls

async fn calls_per_operation(env: &TestEnv, report: &mut Report) {
    report.line("## AWS calls per operation (counted by an SDK interceptor)");
    report.line("");
    report.line("| Operation | Calls | Target | Which |");
    report.line("| --- | --- | --- | --- |");
    let app = env.app();
    let row = |report: &mut Report, name: &str, target: usize, calls: Vec<String>| {
        report.line(format!("| {name} | {} | {target} | {} |", calls.len(), calls.join(", ")));
    };
    env.calls.take();
    start(&app, QUICK, "calls", "{}").await;
    row(report, "start", 2, env.calls.take());
    start(&app, QUICK, "calls", "{}").await;
    row(report, "rejection (409)", 1, env.calls.take());
    let record = env.record("calls").await.unwrap_or_else(|| panic!("no record"));
    env.calls.take();
    let handled = events::handle(&app.service, event_fixture("running", &record)).await;
    assert!(handled.is_ok(), "{handled:?}");
    row(report, "status event", 1, env.calls.take());
    call(&app, request(Method::GET, "/instances/calls", "")).await;
    row(report, "status read", 1, env.calls.take());
    env.clock.advance(env.timings.reconcile_after_millis);
    call(&app, request(Method::GET, "/instances/calls", "")).await;
    let mut calls = env.calls.take();
    let read = calls.remove(0);
    row(report, &format!("reconciliation (after the {read} that found the record unconfirmed)"), 2, calls);
    env.clock.advance(-env.timings.reconcile_after_millis);
    report.line("");
}

// --------------------------------------------------------------- overhead

/// The raw SDK calls a start makes: the same conditional put (same item
/// shape), then StartExecution.
async fn raw_start(env: &TestEnv, id: &str, expect_claim: bool) {
    let machine = env.machine(QUICK);
    let name = format!("raw-{id}-{}", fastrand::u64(..));
    let now = AttributeValue::N("1795615200000".into());
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let item = HashMap::from([
        ("pk".to_owned(), s(id)),
        ("instanceId".into(), s(id)),
        ("functionName".into(), s(QUICK)),
        ("status".into(), s("STARTING")),
        ("stateMachineArn".into(), s(machine.as_str())),
        ("executionName".into(), s(&name)),
        ("executionArn".into(), s(&format!("{}:{name}", machine.as_str().replace(":stateMachine:", ":execution:")))),
        ("createdAt".into(), now.clone()),
        ("updatedAt".into(), now.clone()),
        ("leaseUntil".into(), now),
        ("redriveCount".into(), AttributeValue::N("0".into())),
        ("input".into(), s("{}")),
    ]);
    let put = env
        .dynamo
        .put_item()
        .table_name(&env.table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk) OR #status IN (:a, :b, :c, :d, :e)")
        .expression_attribute_names("#pk", "pk")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":a", s("SUCCEEDED"))
        .expression_attribute_values(":b", s("FAILED"))
        .expression_attribute_values(":c", s("TIMED_OUT"))
        .expression_attribute_values(":d", s("ABORTED"))
        .expression_attribute_values(":e", s("START_FAILED"))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    assert_eq!(put.is_ok(), expect_claim, "{put:?}");
    if expect_claim {
        let started = env.sfn.start_execution().state_machine_arn(machine.as_str()).name(name).input("{}").send().await;
        assert!(started.is_ok(), "{started:?}");
    }
}

fn summary(report: &mut Report, what: &str, handler: &mut [Duration], raw: &mut [Duration]) {
    let (h50, h99, r50, r99) =
        (percentile(handler, 0.5), percentile(handler, 0.99), percentile(raw, 0.5), percentile(raw, 0.99));
    let overhead = (h50.as_secs_f64() / r50.as_secs_f64() - 1.0) * 100.0;
    report.line(format!("| {what} | {} | {} | {} | {} | {overhead:+.1}% | ≤ 5% |", ms(h50), ms(h99), ms(r50), ms(r99)));
}

/// The handler's own time (routing, validation, naming, the store's and the
/// engine's work in memory, serialization) for `SAMPLES` requests on the
/// in-memory ports: starts of fresh IDs, or (`refused`) starts of a running one.
async fn handler_alone(env: &TestEnv, refused: bool) -> Duration {
    let app = env.app_with(MemoryStore::new(), MemoryEngine::with_state_machines([env.machine(QUICK)]));
    if refused {
        assert_eq!(start(&app, QUICK, "busy", "{}").await.status, StatusCode::ACCEPTED);
    }
    let mut samples = Vec::new();
    for i in 0..SAMPLES {
        let path =
            if refused { format!("/orchestrators/{QUICK}/busy") } else { format!("/orchestrators/{QUICK}/alone-{i}") };
        let request = request(Method::POST, &path, r#"{"order":42,"items":[1,2,3]}"#);
        let t = Instant::now();
        let answer = call(&app, request).await;
        samples.push(t.elapsed());
        let expected = if refused { StatusCode::CONFLICT } else { StatusCode::ACCEPTED };
        assert_eq!(answer.status, expected, "{answer:?}");
    }
    percentile(&mut samples, 0.5)
}

async fn handler_overhead(env: &TestEnv, report: &mut Report) {
    report.line(format!(
        "## Handler overhead ({SAMPLES} samples each, interleaved, alternating which goes first; the emulator's own latency is in both columns)"
    ));
    report.line("");
    report.line("| Path | Handler p50 | Handler p99 | Raw SDK p50 | Raw SDK p99 | Overhead at p50 | Target |");
    report.line("| --- | --- | --- | --- | --- | --- | --- |");
    let app = env.app();
    // Warm both paths' connections.
    start(&app, QUICK, "warm-handler", "{}").await;
    raw_start(env, "warm-raw", true).await;
    let (mut handler, mut raw) = (Vec::new(), Vec::new());
    // Which goes first alternates, so that neither always follows the other's StartExecution.
    for i in 0..SAMPLES {
        for handler_turn in if i % 2 == 0 { [true, false] } else { [false, true] } {
            let t = Instant::now();
            if handler_turn {
                let answer = start(&app, QUICK, &format!("overhead-{i}"), "{}").await;
                handler.push(t.elapsed());
                assert_eq!(answer.status, StatusCode::ACCEPTED);
            } else {
                raw_start(env, &format!("raw-overhead-{i}"), true).await;
                raw.push(t.elapsed());
            }
        }
    }
    summary(report, "start (PutItem + StartExecution)", &mut handler, &mut raw);
    let (mut handler, mut raw) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        for handler_turn in if i % 2 == 0 { [true, false] } else { [false, true] } {
            let t = Instant::now();
            if handler_turn {
                let answer = start(&app, QUICK, "overhead-0", "{}").await;
                handler.push(t.elapsed());
                assert_eq!(answer.status, StatusCode::CONFLICT);
            } else {
                raw_start(env, "raw-overhead-0", false).await;
                raw.push(t.elapsed());
            }
        }
    }
    let raw_rejection = percentile(&mut raw, 0.5);
    summary(report, "rejection (PutItem refused, ALL_OLD)", &mut handler, &mut raw);
    report.line("");
    // The emulator's latency varies by more than the handler costs: time the handler alone too.
    let start_alone = handler_alone(env, false).await;
    let reject_alone = handler_alone(env, true).await;
    let raw_start_p50 = {
        let mut raw = Vec::new();
        for i in 0..50 {
            let t = Instant::now();
            raw_start(env, &format!("raw-again-{i}"), true).await;
            raw.push(t.elapsed());
        }
        percentile(&mut raw, 0.5)
    };
    let share = |alone: Duration, raw: Duration| alone.as_secs_f64() / raw.as_secs_f64() * 100.0;
    report.line(format!(
        "The handler's own work, timed on the in-memory ports (`memory::MemoryStore` and `MemoryEngine`: a hash map and a mutex per call) (p50 of {SAMPLES}): start **{}** \
         ({:.2}% of the raw SDK start's p50, {}), rejection **{}** ({:.2}% of the raw rejection's p50, {}). \
         The end-to-end columns differ from run to run by more than that, with the emulator's latency.",
        micros(start_alone),
        share(start_alone, raw_start_p50),
        ms(raw_start_p50),
        micros(reject_alone),
        share(reject_alone, raw_rejection),
        ms(raw_rejection),
    ));
    report.line("");
}

// ----------------------------------------------------------------- storms

/// The seed's algorithm: read the record, then write unconditionally, then start.
async fn naive_start(env: &TestEnv, id: &str) -> bool {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let read = env.dynamo.get_item().table_name(&env.table).key("pk", s(id)).consistent_read(true).send().await;
    let running = read.ok().and_then(|r| r.item().and_then(|i| i.get("status").cloned()));
    if running.is_some_and(|status| status == s("STARTING") || status == s("RUNNING")) {
        return false;
    }
    let name = format!("naive-{}", fastrand::u64(..));
    let item =
        HashMap::from([("pk".to_owned(), s(id)), ("status".into(), s("STARTING")), ("executionName".into(), s(&name))]);
    let put = env.dynamo.put_item().table_name(&env.table).set_item(Some(item)).send().await;
    assert!(put.is_ok(), "{put:?}");
    let started =
        env.sfn.start_execution().state_machine_arn(env.machine(QUICK).as_str()).name(name).input("{}").send().await;
    started.is_ok()
}

async fn storms(env: &Arc<TestEnv>, report: &mut Report) {
    report.line("## Concurrency");
    report.line("");
    report.line("| Storm | sfn-singleton | Baseline | Target |");
    report.line("| --- | --- | --- | --- |");
    let app = Arc::new(env.app());
    let before = env.executions(QUICK).await.len();

    let t = Instant::now();
    let tasks: Vec<_> = (0..STORM)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { start(&app, QUICK, "one-id-storm", "{}").await.status })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        accepted += usize::from(task.await.unwrap_or_else(|e| panic!("{e}")) == StatusCode::ACCEPTED);
    }
    let wall = t.elapsed();
    let ours = env.executions(QUICK).await.len() - before;

    let t = Instant::now();
    let tasks: Vec<_> = (0..STORM)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move { naive_start(&env, "naive-storm").await })
        })
        .collect();
    let mut naive_started = 0;
    for task in tasks {
        naive_started += usize::from(task.await.unwrap_or_else(|e| panic!("{e}")));
    }
    let naive_wall = t.elapsed();
    let naive = env.executions(QUICK).await.len() - before - ours;
    report.figure(
        "storm",
        serde_json::json!({"requests": STORM, "ours": {"executions": ours, "accepted": accepted}, "naive": {"executions": naive, "accepted": naive_started}}),
    );
    report.line(format!(
        "| {STORM} concurrent starts of one ID: executions created | {ours} ({accepted} × 202, wall {}) | {naive} (naive read-then-start; {naive_started} starts answered, wall {}) | 1 |",
        ms(wall),
        ms(naive_wall)
    ));

    let t = Instant::now();
    let tasks: Vec<_> = (0..DISTINCT)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { start(&app, QUICK, &format!("distinct-{i}"), "{}").await.status })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap_or_else(|e| panic!("{e}")), StatusCode::ACCEPTED);
    }
    let ours = DISTINCT as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let tasks: Vec<_> = (0..DISTINCT)
        .map(|i| {
            let env = env.clone();
            tokio::spawn(async move { raw_start(&env, &format!("raw-distinct-{i}"), true).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap_or_else(|e| panic!("{e}"));
    }
    let raw = DISTINCT as f64 / t.elapsed().as_secs_f64();
    report.line(format!(
        "| {DISTINCT} distinct IDs at once: starts per second | {ours:.0} through the handler | {raw:.0} raw SDK calls | ≈ raw (the emulator is the bottleneck) |"
    ));
    report.line("");
    report.line("![Executions created by one burst of concurrent starts of one ID](docs/benchmarks/storm.svg)");
    report.line("");
}

// ------------------------------------------------------------- cold start

/// Measures, in this fresh process, the first `aws_config::load_defaults`
/// and client construction, and prints it in microseconds.
fn first_load_in_fresh_process() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        let t = Instant::now();
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let _clients = (aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sfn::Client::new(&sdk));
        println!("{}", t.elapsed().as_micros());
    });
}

/// What the SDK's configuration and clients cost at init.
async fn sdk_init(report: &mut Report) {
    report.line("## SDK initialisation (median of 20)");
    report.line("");
    let mut first = Vec::new();
    for _ in 0..20 {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        let output = Command::new(exe)
            .arg("--bench")
            .arg(FIRST_LOAD)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let micros: u64 = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or_default();
        first.push(Duration::from_micros(micros));
    }
    let mut later = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let _clients = (aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sfn::Client::new(&sdk));
        later.push(t.elapsed());
    }
    report.line(format!(
        "`aws_config::load_defaults` + both clients: **{}** the first time in a fresh process (what a cold start pays; \
         the rest of the functions' init beyond the no-op Lambda's is their configuration, runtime and logging), {} \
         after that. TLS: the SDK's default HTTPS client, **rustls 0.23 with the aws-lc-rs crypto provider**, trusting \
         the system's root certificates; the SDK crates' legacy `rustls` feature (a second stack: hyper 0.14 + rustls \
         0.21 + ring) is turned off in Cargo.toml. The HTTPS connector (root certificates parsed, the crypto set up) is built \
         lazily by the first request, so it is not in this figure; the cold starts below include it, over plain HTTP \
         and over TLS.",
        ms(percentile(&mut first, 0.5)),
        ms(percentile(&mut later, 0.5))
    ));
    report.line("");
}

/// Whether a cold start's first answer is the one its event asks for: a
/// start accepted, a batch with no failures, a scheduled run started.
fn answered_as_asked(role: &str, answer: &str) -> bool {
    let answer: serde_json::Value = serde_json::from_str(answer).unwrap_or_default();
    match role {
        "http" => answer["statusCode"] == 202,
        "status_events" => answer["batchItemFailures"].as_array().is_some_and(Vec::is_empty),
        "scheduled" => answer["outcome"] == "started",
        _ => true,
    }
}

/// Makes each cold start's first event.
type EventMaker<'a> = Box<dyn Fn() -> String + 'a>;

fn start_event(id: &str) -> String {
    let fixture = include_str!("../../tests/fixtures/apigw-v2-start.json");
    let mut event: serde_json::Value =
        serde_json::from_str(&fixture.replace("{{FUNCTION}}", QUICK)).unwrap_or_default();
    // Every place the ID is in (the handler reads the decoded path), so that each cold start starts a new one.
    event["rawPath"] = format!("/prod/orchestrators/{QUICK}/{id}").into();
    event["requestContext"]["http"]["path"] = format!("/prod/orchestrators/{QUICK}/{id}").into();
    event["pathParameters"]["instanceId"] = id.into();
    event.to_string()
}

/// Fresh processes per function and route: 20, or `BENCH_COLD_STARTS`.
fn cold_starts_per_cell() -> usize {
    std::env::var("BENCH_COLD_STARTS").ok().and_then(|n| n.parse().ok()).unwrap_or(20)
}

/// How a cold-started Lambda reaches the emulator.
struct Route {
    name: &'static str,
    environment: Vec<(String, String)>,
    /// TLS handshakes its fronts completed (none on plain HTTP).
    handshakes: Arc<AtomicUsize>,
}

/// As on AWS: DynamoDB and Step Functions each on a host of their own (a front
/// each, so each its own connection, kept alive), over plain HTTP; and, when
/// `scripts/bench` made a CA in `BENCH_TLS_DIR`, over TLS trusting its
/// `trust.pem` (the machine's roots with the CA, as `SSL_CERT_FILE`), and over
/// TLS trusting its `ca.pem` alone (what the size of the root store costs).
async fn routes() -> Vec<Route> {
    let endpoint = std::env::var(ENDPOINT_VAR).unwrap_or_default();
    let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let Some(tls_dir) = std::env::var("BENCH_TLS_DIR").ok().filter(|dir| !dir.is_empty()).map(PathBuf::from) else {
        return vec![Route { name: "plain HTTP (no fronts)", environment: vec![], handshakes: Arc::default() }];
    };
    let acceptor = front::acceptor(&tls_dir);
    let mut routes = Vec::new();
    for (name, tls, trust) in [
        ("plain HTTP", None, "trust.pem"),
        ("TLS", Some(acceptor.clone()), "trust.pem"),
        ("TLS, one root", Some(acceptor), "ca.pem"),
    ] {
        let handshakes = Arc::new(AtomicUsize::new(0));
        let environment = vec![
            ("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), front::start(&upstream, tls.clone(), handshakes.clone()).await),
            ("AWS_ENDPOINT_URL_SFN".to_owned(), front::start(&upstream, tls, handshakes.clone()).await),
            ("SSL_CERT_FILE".to_owned(), tls_dir.join(trust).display().to_string()),
        ];
        routes.push(Route { name, environment, handshakes });
    }
    routes
}

async fn cold_starts(env: &TestEnv, report: &mut Report) {
    let release = PathBuf::from(std::env::var("BENCH_BIN_DIR").unwrap_or_else(|_| "target/release".into()));
    let routes = routes().await;
    report.line(format!(
        "## Cold start: release `bootstrap` under a local Runtime API (median of {} fresh processes per cell, x86_64 build of the same code, the routes interleaved)",
        cold_starts_per_cell()
    ));
    report.line("");
    report.line("Init: process start → its first poll of the Runtime API (configuration, logging, SDK clients). First response: process start → the response to its first event: for http and scheduled a real start against the emulator (its claim runs alongside the background check that the state machine is Standard, one `DescribeStateMachine`; then StartExecution), for status_events an SQS batch of one RUNNING event (one conditional UpdateItem). Each emulator call costs about 3–5 ms here (see the raw SDK latencies above).");
    report.line("");
    report.line("As deployed: DynamoDB and Step Functions each on a host of their own, two local fronts of the emulator (`benches/singleton/front.rs`, HTTP/1.1 proxies that keep connections alive as AWS does, where moto closes each), so each function opens the connections it opens on AWS; the plain and TLS routes differ only in TLS. The trust store is one bundle file of the machine's roots (on Lambda, the system bundle) with the run's own CA appended, given through `SSL_CERT_FILE`; the TLS fronts present an RSA 2048 chain (leaf and intermediate) from that CA, made at run time by `infra/local/local_ca.py`, like a regional AWS endpoint's.");
    report.line("");
    let names: Vec<&str> = routes.iter().map(|r| r.name).collect();
    report.line(format!(
        "| Function | Init ({}) | First response ({}) | TLS − plain | Target |",
        names.join(" / "),
        names.join(" / ")
    ));
    report.line("| --- | --- | --- | --- | --- |");
    // The one bootstrap, as the function whose handler is `role`; the no-op baseline ignores it.
    // Each round runs every route once, starting from a different one each round.
    let measure = |binary: &str, role: &str, event: &dyn Fn() -> String| {
        let mut cells = vec![(Vec::new(), Vec::new()); routes.len()];
        for round in 0..cold_starts_per_cell() {
            for i in (0..routes.len()).map(|i| (i + round) % routes.len()) {
                let route = &routes[i];
                let handshakes = route.handshakes.load(SeqCst);
                let invocation =
                    invoke_with(&release.join(binary), role, env, &[QUICK], &route.environment, vec![event()])
                        .succeeded();
                // A cold start that failed its AWS calls answers fast: only a real answer counts.
                let answer = invocation.first_answer.as_deref().unwrap_or_default();
                assert!(answered_as_asked(role, answer), "{role} over {}: {answer}", route.name);
                let tls = route.name.starts_with("TLS") && binary == "bootstrap";
                assert!(
                    !tls || route.handshakes.load(SeqCst) > handshakes,
                    "{role}: no TLS handshake over {}",
                    route.name
                );
                cells[i].0.push(invocation.init);
                cells[i].1.push(invocation.first_response);
            }
        }
        cells
            .into_iter()
            .map(|(mut init, mut first)| (percentile(&mut init, 0.5), percentile(&mut first, 0.5)))
            .collect::<Vec<_>>()
    };
    let row = |report: &mut Report, name: &str, cells: &[(Duration, Duration)], target: &str| {
        let figure = routes
            .iter()
            .zip(cells)
            .map(|(route, (init, first))| {
                (
                    route.name.to_owned(),
                    serde_json::json!({"init_ms": millis(*init), "first_response_ms": millis(*first)}),
                )
            })
            .collect();
        let key = name.split_whitespace().next().unwrap_or(name);
        report.figure(&format!("cold_start.{key}"), serde_json::Value::Object(figure));
        let inits: Vec<String> = cells.iter().map(|c| ms(c.0)).collect();
        let firsts: Vec<String> = cells.iter().map(|c| ms(c.1)).collect();
        let difference = match cells {
            [plain, tls, ..] => ms_difference(tls.1, plain.1),
            _ => "not measured".to_owned(),
        };
        report.line(format!("| {name} | {} | {} | {difference} | {target} |", inits.join(" / "), firsts.join(" / ")));
    };
    let noop = measure("examples/noop_lambda", "noop", &|| "{}".to_owned());
    row(report, "baseline (no-op Lambda)", &noop, "");
    let counter = AtomicUsize::new(0);
    let next_id = || format!("cold-{}", counter.fetch_add(1, SeqCst));
    let scheduled = |id: String| serde_json::json!({"functionName": QUICK, "instanceId": id}).to_string();
    assert_eq!(start(&env.app(), QUICK, "cold-status", "{}").await.status, StatusCode::ACCEPTED);
    let record = env.record("cold-status").await.unwrap_or_else(|| panic!("no record"));
    // The status Lambda reads SQS batches: one batch of one RUNNING event.
    let running = serde_json::to_string(&sqs_batch(&[event_fixture("running", &record)])).unwrap_or_default();
    let rows: [(&str, EventMaker); 3] = [
        ("http", Box::new(|| start_event(&next_id()))),
        ("status_events", Box::new(|| running.clone())),
        ("scheduled", Box::new(|| scheduled(next_id()))),
    ];
    let mut http = Vec::new();
    for (role, event) in rows {
        let cells = measure("bootstrap", role, &*event);
        let target = if role == "http" {
            "init ≤ 10 ms, first response ≤ 25 ms; TLS ≤ plain + 10 ms"
        } else {
            "init ≤ 10 ms, first response ≤ 25 ms"
        };
        row(report, role, &cells, target);
        if role == "http" {
            http = cells;
        }
    }
    report.line("");
    if let [plain, tls, one_root] = http[..] {
        let roots = routes
            .iter()
            .flat_map(|route| &route.environment)
            .find(|(name, _)| name == "SSL_CERT_FILE")
            .and_then(|(_, file)| std::fs::read_to_string(file).ok())
            .map_or(0, |pem| pem.matches("BEGIN CERTIFICATE").count());
        report.line(format!(
            "Where TLS goes (http, this run): **{}** on the first response for TLS itself (a handshake per service host, the key exchange and the chain's signatures, then the records' encryption; the Step Functions one starts during init, with the check that the state machine is Standard, and runs beside the DynamoDB claim); **{}** of init for a root store of {roots} certificates against one (parsed once, when the first request builds the SDK's HTTPS connector: for http the init's state machine check, which races the first poll, so this figure is rough; paid on both routes, so it is not in the TLS − plain column). \
             Before this project seeded AWS-LC from the OS, the first handshake also spent about 40 ms of CPU collecting CPU-jitter entropy (TLS − plain was +44 ms): see [docs/benchmarks.md](docs/benchmarks.md#where-a-tls-cold-start-goes) for the profile and what each change bought.",
            ms_difference(tls.1, plain.1),
            ms_difference(tls.0, one_root.0),
        ));
        report.line("");
    }
    report.line("![First response and init per function, plain HTTP and TLS](docs/benchmarks/cold-start.svg)");
    report.line("");

    let events: Vec<String> = (0..RSS_REQUESTS).map(|i| start_event(&format!("rss-{i}"))).collect();
    let ours = invoke(&release.join("bootstrap"), "http", env, events).succeeded();
    let noop = invoke(
        &release.join("examples/noop_lambda"),
        "noop",
        env,
        (0..RSS_REQUESTS).map(|_| "{}".to_owned()).collect(),
    )
    .succeeded();
    let mib = |kib: Option<u64>| kib.map_or("n/a".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    report.line("## Memory");
    report.line("");
    report.line(format!(
        "Peak RSS (VmHWM) of the http Lambda after {RSS_REQUESTS} start requests: **{}** (no-op Lambda after {RSS_REQUESTS} events: {}; target ≤ 20 MiB).",
        mib(ours.peak_rss_kib),
        mib(noop.peak_rss_kib)
    ));
    report.line("");
}

// ------------------------------------------------------------------ sizes

fn sizes(report: &mut Report) {
    report.line("## Deployable sizes (`bootstrap.zip`)");
    report.line("");
    report.line("| Binary | arm64 (cargo lambda build --release --arm64) | x86_64 | Target (arm64) |");
    report.line("| --- | --- | --- | --- |");
    let size = |dir: &str, bin: &str| -> String {
        std::fs::metadata(format!("{dir}/{bin}/bootstrap.zip"))
            .map_or("not built".to_owned(), |m| format!("{:.2} MiB", m.len() as f64 / 1_048_576.0))
    };
    for bin in ["bootstrap", "noop_lambda"] {
        let mut row = String::new();
        let _ = write!(
            row,
            "| {bin} | {} | {} | ≤ 3 MiB |",
            size("target/lambda-arm64", bin),
            size("target/lambda-x86_64", bin)
        );
        report.line(row);
    }
    report.line("");
}
