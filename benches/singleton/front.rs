//! Local fronts for the emulator, so that a cold-started Lambda reaches it as it
//! reaches AWS: DynamoDB and Step Functions each on a host of their own, over
//! plain HTTP or TLS, with connections kept alive (moto closes each connection
//! after its answer; AWS does not, and over TLS that would add a handshake per
//! call). A front is an HTTP/1.1 proxy: the same code for both routes, so that
//! TLS is the only difference between them.

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A TLS acceptor presenting `dir`'s `server.pem` chain with `server-key.pem`
/// (made by `infra/local/local_ca.py`).
pub fn acceptor(dir: &Path) -> TlsAcceptor {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .and_then(Iterator::collect)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("server.pem").display()));
    let key = PrivateKeyDer::from_pem_file(dir.join("server-key.pem"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("server-key.pem").display()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .unwrap_or_else(|e| panic!("TLS front: {e}"));
    TlsAcceptor::from(Arc::new(config))
}

/// Starts a front on a free loopback port that forwards every request to
/// `upstream` (`127.0.0.1:PORT`), over TLS with `tls`, counting the TLS
/// handshakes it completes in `handshakes`; returns its URL.
pub async fn start(upstream: &str, tls: Option<TlsAcceptor>, handshakes: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("front: {e}"));
    let port = listener.local_addr().unwrap_or_else(|e| panic!("front: {e}")).port();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build_http();
    let upstream = upstream.to_owned();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let (client, upstream, tls, handshakes) =
                (client.clone(), upstream.clone(), tls.clone(), handshakes.clone());
            tokio::spawn(async move {
                let forward = service_fn(move |mut request: Request<Incoming>| {
                    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                    let uri: Result<Uri, _> = format!("http://{upstream}{path}").parse();
                    let client = client.clone();
                    async move {
                        *request.uri_mut() = uri.unwrap_or_default();
                        let mut answer = client.request(request).await?;
                        // moto's `Connection: close` is for the hop behind the front.
                        answer.headers_mut().remove(hyper::header::CONNECTION);
                        Ok::<_, hyper_util::client::legacy::Error>(answer)
                    }
                });
                let _ = match tls {
                    Some(tls) => match tls.accept(tcp).await {
                        Ok(stream) => {
                            handshakes.fetch_add(1, Ordering::SeqCst);
                            http1::Builder::new().serve_connection(TokioIo::new(stream), forward).await
                        }
                        Err(_) => return,
                    },
                    None => http1::Builder::new().serve_connection(TokioIo::new(tcp), forward).await,
                };
            });
        }
    });
    format!("{scheme}://127.0.0.1:{port}")
}
