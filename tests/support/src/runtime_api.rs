//! A minimal Lambda Runtime API, to run a function's real binary as Lambda
//! does: its init, its answers, and the error reports it posts.

use crate::env::{DYNAMODB_ENDPOINT_VAR, ENDPOINT_VAR, QUICK, TestEnv};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a Runtime API saw of one function process.
#[derive(Debug)]
pub struct Invocation {
    /// Process start → its first poll for an event.
    pub init: Duration,
    /// Process start → its first response.
    pub first_response: Duration,
    /// The process's peak resident memory, when it polled for more than there was.
    pub peak_rss_kib: Option<u64>,
    /// How many events it answered.
    pub answered: usize,
    /// Its answer to the first event.
    pub first_answer: Option<String>,
    /// The body of the error it reported instead of an answer (Lambda's
    /// `{"errorType": …, "errorMessage": …}`), if it did.
    pub error: Option<String>,
    /// What the process wrote to stdout: its log, as CloudWatch would get it.
    pub log: String,
}

impl Invocation {
    /// This invocation, which must have answered without an error.
    pub fn succeeded(self) -> Self {
        if let Some(error) = &self.error {
            panic!("the function failed: {error}");
        }
        assert!(self.answered > 0, "the function never answered (init: {:?})", self.init);
        self
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, String::from_utf8_lossy(&body).into_owned()))
}

/// What the Runtime API saw of one process.
#[derive(Default)]
struct Seen {
    init: Option<Duration>,
    first_response: Option<Duration>,
    first_answer: Option<String>,
    answered: usize,
    next_event: usize,
    error: Option<String>,
    peak_rss_kib: Option<u64>,
    done: bool,
}

/// A minimal Lambda Runtime API: hands out `events` one by one (each
/// connection on its own thread, as the runtime may open several), and times
/// the process's first poll and first response from `spawned`. Done when the
/// process polls for more than there is, reports an error, or 30 s pass.
fn serve(listener: TcpListener, events: Vec<String>, spawned: Instant, child_pid: u32) -> Invocation {
    let events = Arc::new(events);
    let seen = Arc::new((std::sync::Mutex::new(Seen::default()), std::sync::Condvar::new()));
    {
        let (events, seen) = (events.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (events, seen) = (events.clone(), seen.clone());
                std::thread::spawn(move || connection(stream, &events, &seen, spawned, child_pid));
            }
        });
    }
    let (lock, signal) = &*seen;
    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    let (seen, _) =
        signal.wait_timeout_while(guard, Duration::from_secs(30), |seen| !seen.done).unwrap_or_else(|p| p.into_inner());
    Invocation {
        init: seen.init.unwrap_or_default(),
        first_response: seen.first_response.unwrap_or_default(),
        peak_rss_kib: seen.peak_rss_kib,
        answered: seen.answered,
        first_answer: seen.first_answer.clone(),
        error: seen.error.clone(),
        log: String::new(),
    }
}

fn connection(
    stream: TcpStream,
    events: &[String],
    seen: &(std::sync::Mutex<Seen>, std::sync::Condvar),
    spawned: Instant,
    child_pid: u32,
) {
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut reader) {
        let (lock, signal) = seen;
        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
        let reply = if method == "GET" && path.ends_with("/invocation/next") {
            state.init.get_or_insert_with(|| spawned.elapsed());
            let i = state.next_event;
            let Some(event) = events.get(i) else {
                state.peak_rss_kib = peak_rss(child_pid);
                state.done = true;
                signal.notify_all();
                return;
            };
            state.next_event += 1;
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() + 30_000);
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: req-{i}\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\ncontent-length: {}\r\n\r\n{event}",
                event.len()
            )
        } else {
            if path.contains("/error") {
                state.error = Some(body);
                state.done = true;
                signal.notify_all();
                return;
            }
            state.first_response.get_or_insert_with(|| spawned.elapsed());
            state.first_answer.get_or_insert(body);
            state.answered += 1;
            "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_owned()
        };
        drop(state);
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs the Lambda `binary` as Lambda would, as the function whose handler is
/// `handler`, under a minimal Runtime API that hands it `events` one by one, against the test's table and emulator (one
/// configured function, [`QUICK`]); until it polls for more than there is,
/// reports an error, or 30 s pass.
pub fn invoke(binary: &Path, handler: &str, env: &TestEnv, events: Vec<String>) -> Invocation {
    // One configured function, as a typical deployment: one DescribeStateMachine at init.
    invoke_configured(binary, handler, env, &[QUICK], events)
}

/// [`invoke`], with `functions` configured.
pub fn invoke_configured(
    binary: &Path,
    handler: &str,
    env: &TestEnv,
    functions: &[&str],
    events: Vec<String>,
) -> Invocation {
    invoke_with(binary, handler, env, functions, &[], events)
}

/// [`invoke_configured`], with `environment` set last (over the endpoints, say).
pub fn invoke_with(
    binary: &Path,
    handler: &str,
    env: &TestEnv,
    functions: &[&str],
    environment: &[(String, String)],
    events: Vec<String>,
) -> Invocation {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let functions: serde_json::Map<_, _> =
        functions.iter().map(|&name| (name.to_owned(), env.machine(name).as_str().into())).collect();
    let endpoint = std::env::var(ENDPOINT_VAR).unwrap_or_default();
    // dynalite, when the run puts DynamoDB there.
    let dynamodb_endpoint = std::env::var(DYNAMODB_ENDPOINT_VAR).unwrap_or_else(|_| endpoint.clone());
    let spawned = Instant::now();
    let mut child: Child = Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        // What Lambda sets from the function's Handler: the one bootstrap's role.
        .env("_HANDLER", handler)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "warn")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SINGLETON_TABLE_NAME", &env.table)
        .env("SINGLETON_FUNCTIONS", serde_json::Value::Object(functions).to_string())
        .envs(environment.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    // Read as it comes: a full pipe would stop the process.
    let stdout = child.stdout.take().map(|mut stdout| {
        std::thread::spawn(move || {
            let mut log = String::new();
            let _ = stdout.read_to_string(&mut log);
            log
        })
    });
    let invocation = serve(listener, events, spawned, child.id());
    let _ = child.kill();
    let _ = child.wait();
    let log = stdout.and_then(|reader| reader.join().ok()).unwrap_or_default();
    Invocation { log, ..invocation }
}
