//! The lean reporting client: one kept-alive mutual-TLS connection driven with hyper's
//! connection API, one request in flight.
//!
//! A general HTTP client (reqwest, which the agent uses) spends per request on what a load
//! generator does not need: URL parsing, a connection pool, header maps built afresh, redirect
//! and timeout layers, and on the satellite a JSON decoder for the answer. Measured against the
//! bare baseline server, that cost put the generator's core at its limit long before the
//! server's (SPEC §10: a ratio is honest only when the baseline is saturated). This client does
//! what a device's connection does on the wire and nothing more: the same TLS configuration
//! and ALPN offer as the agent (HTTP/2 preferred, HTTP/1.1 accepted), the same request line and
//! headers, the body from [`super::body::UsageBody`], and only the status and, for a refusal,
//! the error code read from the answer.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::{http1, http2};
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::LoadgenError;

/// As the agent: connecting may take this long, a whole request this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A failed request: its kind (see [`super::PhaseReport::errors`]) and message.
pub type Failure = (String, String);

/// Where and how every connection of a run reports: built once, shared by its connections.
#[derive(Debug)]
pub struct Endpoint {
    /// The host (without brackets) and port for the TCP connection.
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    /// `https://HOST:PORT/v1/usage`: HTTP/2 takes its scheme and authority from it.
    absolute: Uri,
    /// `/v1/usage`, for the HTTP/1.1 request line.
    path: Uri,
    /// The headers of every report over HTTP/1.1 (with `Host`) and over HTTP/2 (without).
    http1_headers: HeaderMap,
    http2_headers: HeaderMap,
}

impl Endpoint {
    /// The usage endpoint of the server at `url` (`https://HOST:PORT`).
    pub fn usage(url: &str) -> Result<Endpoint, LoadgenError> {
        let invalid = |why: String| LoadgenError::Invalid(format!("--url {url:?}: {why}"));
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if parsed.scheme() != "https" {
            return Err(invalid("must look like https://HOST:PORT".into()));
        }
        let Some(host) = parsed.host_str() else {
            return Err(invalid("has no host".into()));
        };
        // An IPv6 host comes bracketed; neither TLS nor the socket address wants the brackets.
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = ServerName::try_from(bare.clone())
            .map_err(|e| invalid(format!("not a TLS server name: {e}")))?;
        let port = parsed.port_or_known_default().unwrap_or(443);
        let authority = format!("{host}:{port}");
        let absolute: Uri = format!("https://{authority}/v1/usage")
            .parse()
            .map_err(|e| invalid(format!("{e}")))?;
        let mut http2_headers = HeaderMap::new();
        http2_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        http2_headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("satellite-agent/", env!("CARGO_PKG_VERSION"))),
        );
        let mut http1_headers = http2_headers.clone();
        http1_headers.insert(
            HOST,
            HeaderValue::from_str(&authority).map_err(|e| invalid(e.to_string()))?,
        );
        Ok(Endpoint {
            host: bare,
            port,
            server_name,
            absolute,
            path: Uri::from_static("/v1/usage"),
            http1_headers,
            http2_headers,
        })
    }
}

/// The sending half of one connection, in whichever protocol the server chose.
enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

/// One kept-alive mutual-TLS connection to the usage endpoint, opened on first use and again
/// after a transport error (as a device's client would).
pub struct Connection {
    endpoint: Arc<Endpoint>,
    tls: TlsConnector,
    sender: Option<Sender>,
}

impl Connection {
    /// A connection presenting the identity in `config`. It offers what the agent offers,
    /// HTTP/2 preferred and HTTP/1.1 accepted, or HTTP/1.1 alone when `http1_only`.
    pub fn new(
        endpoint: Arc<Endpoint>,
        config: Arc<rustls::ClientConfig>,
        http1_only: bool,
    ) -> Connection {
        let mut config = Arc::unwrap_or_clone(config);
        config.alpn_protocols = if http1_only {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        Connection {
            endpoint,
            tls: TlsConnector::from(Arc::new(config)),
            sender: None,
        }
    }

    /// Posts one usage report body; any 2xx is a success.
    pub async fn post(&mut self, body: Bytes) -> Result<(), Failure> {
        let result = match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(body)).await {
            Ok(result) => result,
            Err(_) => Err(transport(format!(
                "no answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            ))),
        };
        if matches!(&result, Err((kind, _)) if kind == "transport") {
            // The connection may be half-used: start the next request on a fresh one.
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, body: Bytes) -> Result<(), Failure> {
        if self.sender.is_none() {
            self.sender = Some(self.connect().await?);
        }
        let endpoint = &self.endpoint;
        let response = match self.sender.as_mut().expect("connected above") {
            Sender::Http1(sender) => {
                sender.ready().await.map_err(hyper_failure)?;
                let request = request(&endpoint.path, &endpoint.http1_headers, body);
                sender.send_request(request).await
            }
            Sender::Http2(sender) => {
                sender.ready().await.map_err(hyper_failure)?;
                let request = request(&endpoint.absolute, &endpoint.http2_headers, body);
                sender.send_request(request).await
            }
        }
        .map_err(hyper_failure)?;
        answer(response).await
    }

    /// TCP, the TLS handshake and hyper's handshake in the protocol ALPN chose. The
    /// connection's driver runs as its own task on the current runtime.
    async fn connect(&self) -> Result<Sender, Failure> {
        let connecting = async {
            let tcp = TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port))
                .await
                .map_err(|e| transport(format!("connect: {e}")))?;
            tcp.set_nodelay(true)
                .map_err(|e| transport(format!("TCP_NODELAY: {e}")))?;
            let tls = self
                .tls
                .connect(self.endpoint.server_name.clone(), tcp)
                .await
                .map_err(|e| transport(format!("TLS handshake: {e}")))?;
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            if h2 {
                // hyper's HTTP/2 flushes a request's HEADERS frame before its DATA frame has
                // flow-control capacity: two TLS records and two writes per report, as from a
                // device's client (which is hyper's too). Buffering does not merge them.
                let io = TokioIo::new(tls);
                let (sender, driver) = http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(hyper_failure)?;
                tokio::spawn(driver);
                Ok(Sender::Http2(sender))
            } else {
                // hyper's HTTP/1.1 already writes a request's head and body in one write.
                let io = TokioIo::new(tls);
                let (sender, driver) = http1::handshake(io).await.map_err(hyper_failure)?;
                tokio::spawn(driver);
                Ok(Sender::Http1(sender))
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(transport(format!(
                    "no connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            })
    }
}

/// A `POST` of `body` to `uri`. Cloning the prebuilt headers copies a few small values; the
/// URI's parts are shared, not copied.
fn request(uri: &Uri, headers: &HeaderMap, body: Bytes) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers.clone();
    request
}

/// Reads the answer to its end. A success's body is dropped frame by frame, unread; a
/// refusal's is kept for its error code, as the agent reads it.
async fn answer(response: Response<Incoming>) -> Result<(), Failure> {
    let status = response.status();
    let mut body = response.into_body();
    if status.is_success() {
        while let Some(frame) = body.frame().await {
            frame.map_err(hyper_failure)?;
        }
        return Ok(());
    }
    let bytes = body.collect().await.map_err(hyper_failure)?.to_bytes();
    Err(
        match serde_json::from_slice::<crate::protocol::admin::ErrorBody>(&bytes) {
            Ok(crate::protocol::admin::ErrorBody { error }) => (error.code, error.message),
            Err(_) => (format!("http_{}", status.as_u16()), status.to_string()),
        },
    )
}

fn transport(message: String) -> Failure {
    ("transport".to_owned(), message)
}

fn hyper_failure(e: hyper::Error) -> Failure {
    transport(crate::agent::error_chain(&e))
}
