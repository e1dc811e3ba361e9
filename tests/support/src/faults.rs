//! Faults injected below the SDK, where its retries see them as on AWS.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::sync::{Arc, Mutex};

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
pub(crate) struct FaultyHttpClient {
    pub(crate) inner: SharedHttpClient,
    pub(crate) faults: Faults,
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
