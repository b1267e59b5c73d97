//! The device protocol over the wire, with no files: an identity held in memory and one HTTP
//! client per identity. [`Agent`](super::Agent) stores these parts in a directory; the load
//! generator holds thousands of them in memory.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AgentError;
use crate::pki;
use crate::protocol::device::{
    Authorization, DeregisterResponse, RegisterRequest, RegisterResponse, RenewRequest,
    RenewResponse, UsageRequest,
};

/// How long establishing a TCP + TLS connection may take. A satellite on the local network
/// answers in milliseconds; this only bounds a black-holed address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one whole request may take. Generous, because a durable write on a loaded
/// satellite can queue; it only bounds a server that accepted and then went silent.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything a registered device needs to talk to the satellite, in memory.
#[derive(Clone)]
pub struct AgentIdentity {
    /// The device's private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The identity certificate the satellite issued, PEM.
    pub cert_pem: String,
    /// The CA certificates the device trusts for the satellite's server certificate, PEM.
    pub ca_pem: String,
    /// The instance id the satellite assigned at registration.
    pub instance_id: String,
}

impl fmt::Debug for AgentIdentity {
    /// Never prints the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentIdentity")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

/// A registered device's connection to the satellite: mutual TLS with its identity
/// certificate, one kept-alive HTTP client (HTTP/2 when the server offers it).
///
/// Cloning is cheap and shares the connection pool.
#[derive(Debug, Clone)]
pub struct DeviceClient {
    url: Arc<str>,
    instance_id: Arc<str>,
    http: reqwest::Client,
}

impl DeviceClient {
    /// A client for the satellite at `url` (`https://HOST:PORT`) presenting `identity`.
    pub fn new(url: &str, identity: &AgentIdentity) -> Result<DeviceClient, AgentError> {
        let url = check_url(url)?;
        let config = pki::client_config_with_identity(
            &identity.ca_pem,
            &identity.cert_pem,
            &identity.key_pem,
        )
        .map_err(|e| AgentError::Invalid(format!("device identity: {e}")))?;
        Ok(DeviceClient {
            url: url.into(),
            instance_id: identity.instance_id.as_str().into(),
            http: http_client(config)?,
        })
    }

    /// The satellite's base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The instance id this client reports as.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The underlying HTTP client, for callers that need a request this type does not offer.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `POST /v1/usage`.
    pub async fn usage(&self, report: &UsageRequest) -> Result<Authorization, AgentError> {
        call(
            &self.http,
            &self.url,
            Method::POST,
            "/v1/usage",
            Some(report),
        )
        .await
    }

    /// `GET /v1/authorization`.
    pub async fn authorization(&self) -> Result<Authorization, AgentError> {
        call(
            &self.http,
            &self.url,
            Method::GET,
            "/v1/authorization",
            None::<&()>,
        )
        .await
    }

    /// `POST /v1/renew`.
    pub async fn renew(&self, request: &RenewRequest) -> Result<RenewResponse, AgentError> {
        call(
            &self.http,
            &self.url,
            Method::POST,
            "/v1/renew",
            Some(request),
        )
        .await
    }

    /// `POST /v1/deregister`.
    pub async fn deregister(&self) -> Result<DeregisterResponse, AgentError> {
        call(
            &self.http,
            &self.url,
            Method::POST,
            "/v1/deregister",
            None::<&()>,
        )
        .await
    }
}

/// An HTTP client that trusts only `ca_pem` and presents no client certificate: what a device
/// uses to register. Each client keeps its own connection pool; a caller measuring fresh
/// handshakes builds one per registration.
pub fn registration_client(ca_pem: &str) -> Result<reqwest::Client, AgentError> {
    let config = pki::client_config_trusting(ca_pem)
        .map_err(|e| AgentError::Invalid(format!("CA certificate: {e}")))?;
    http_client(config)
}

/// `POST /v1/register` with `client` (see [`registration_client`]) to the satellite at `url`.
pub async fn register_raw(
    client: &reqwest::Client,
    url: &str,
    request: &RegisterRequest,
) -> Result<RegisterResponse, AgentError> {
    let url = check_url(url)?;
    call(client, &url, Method::POST, "/v1/register", Some(request)).await
}

/// A new ECDSA P-256 private key and a certificate signing request for it with subject
/// `CN=common_name`, both PEM. The satellite takes only the public key from the request; the
/// name is for people reading it.
pub fn new_key_and_csr(common_name: &str) -> Result<(String, String), AgentError> {
    let key = KeyPair::generate()
        .map_err(|e| AgentError::Invalid(format!("cannot generate a key: {e}")))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let csr = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| AgentError::Invalid(format!("cannot build a CSR for {common_name:?}: {e}")))?;
    Ok((key.serialize_pem(), csr))
}

/// Accepts `https://…` only (the device protocol has no plaintext port) and drops a trailing
/// slash so paths can be appended.
fn check_url(url: &str) -> Result<String, AgentError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| AgentError::Invalid(format!("satellite URL {url:?}: {e}")))?;
    if parsed.scheme() != "https" || parsed.host_str().is_none() {
        return Err(AgentError::Invalid(format!(
            "satellite URL {url:?} must look like https://HOST:8443 (devices speak TLS only)"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// One reqwest client over a preconfigured rustls configuration. reqwest leaves ALPN of a
/// preconfigured configuration alone, so it is set here: HTTP/2 preferred, HTTP/1.1 accepted.
fn http_client(config: Arc<rustls::ClientConfig>) -> Result<reqwest::Client, AgentError> {
    let mut config = Arc::unwrap_or_clone(config);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("satellite-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            AgentError::Invalid(format!(
                "cannot build the HTTPS client: {}",
                error_chain(&e)
            ))
        })
}

/// Sends one request and decodes the answer: a 2xx body as `T`, an error body as
/// [`AgentError::Refused`], anything else as [`AgentError::Unexpected`].
async fn call<B: Serialize, T: DeserializeOwned>(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<T, AgentError> {
    let url = format!("{base}{path}");
    let mut request = http.request(method, &url);
    if let Some(body) = body {
        request = request.json(body);
    }
    // reqwest's message repeats the URL; it is given once, first.
    let transport = |e: reqwest::Error| {
        AgentError::Transport(format!("{url}: {}", error_chain(&e.without_url())))
    };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(transport)?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| {
            AgentError::Unexpected(format!(
                "{url} answered {status} with a body that is not device protocol v1 ({e})"
            ))
        });
    }
    match serde_json::from_slice::<crate::protocol::admin::ErrorBody>(&bytes) {
        Ok(crate::protocol::admin::ErrorBody { error }) => Err(AgentError::Refused {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
        }),
        Err(_) => Err(AgentError::Unexpected(format!(
            "{url} answered {status}{}: {}",
            reason_hint(status),
            excerpt(&bytes)
        ))),
    }
}

fn reason_hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => " (is this a satellite of a version with device protocol v1?)",
        _ => "",
    }
}

/// At most 200 characters of a body, for an error message.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None if text.is_empty() => "(empty body)".to_owned(),
        None => text.to_owned(),
    }
}

/// An error and its causes, `a: b: c`: reqwest's own message ("error sending request") says
/// nothing of why, the causes (connection refused, unknown issuer) do.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
