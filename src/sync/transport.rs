//! The network transport of sync: binding (`sync register`) and requests to the upstream's
//! device listener, over reqwest with rustls and mutual TLS, optionally through a proxy.
//!
//! Endpoints on the upstream's device listener (`server::device`):
//! - `GET /v1/sync/ca`: the upstream's device CA (public). The child fetches it without
//!   verifying the server, then checks it against the fingerprint inside the registration
//!   token; every later connection trusts that CA only.
//! - `POST /v1/sync/register`: the token, the child's Ed25519 public key and a CSR; the answer
//!   carries the upstream's name and key, the child's client certificate and what is dedicated.
//! - `POST /v1/sync`: a signed request in, the signed response out (mutual TLS with the client
//!   certificate from registration).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{SyncEngine, SyncFailure};
use crate::app::secrets;
use crate::domain::{BindInput, UpstreamBinding};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Client certificate and key the upstream issued, in `DATA/sync/`.
pub const CLIENT_CERT: &str = "upstream-client.pem";
pub const CLIENT_KEY: &str = "upstream-client-key.pem";

/// `POST /v1/sync/register` body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The secret part of the satellite registration token.
    pub token: String,
    /// The child's Ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// PEM certificate request for the client certificate.
    pub csr: String,
}

/// `POST /v1/sync/register` answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterResponse {
    /// The child's name, as the upstream knows it.
    pub child: String,
    /// The upstream's name and Ed25519 public key (hex).
    pub upstream: String,
    pub upstream_key: String,
    /// The client certificate (PEM) for mutual TLS.
    pub certificate: String,
    pub account_name: String,
    pub account_domain: String,
    /// `DOMAIN/Default/...` of the dedicated VA.
    pub va: String,
}

/// A satellite registration token: `SECRET.FINGERPRINT`, where FINGERPRINT is the SHA-256 of
/// the upstream's CA certificate (DER, hex), so the child can authenticate the upstream before
/// it trusts anything it says.
pub fn split_token(token: &str) -> Result<(&str, &str), SyncFailure> {
    token
        .trim()
        .rsplit_once('.')
        .filter(|(s, fp)| !s.is_empty() && fp.len() == 64)
        .ok_or_else(|| {
            SyncFailure::Transport(
                "the registration token is not of the form SECRET.FINGERPRINT printed by \
                 `satellite sync child add` on the upstream; copy it again"
                    .into(),
            )
        })
}

/// The fingerprint of a CA certificate as it appears in tokens.
pub fn ca_fingerprint(ca_der: &[u8]) -> String {
    secrets::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ca_der).as_ref())
}

fn client(
    config: rustls::ClientConfig,
    proxy: Option<&str>,
) -> Result<reqwest::Client, SyncFailure> {
    let mut config = config;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("satellite-sync/", env!("CARGO_PKG_VERSION")));
    builder = match proxy {
        Some(url) => builder.proxy(
            reqwest::Proxy::all(url)
                .map_err(|e| SyncFailure::Internal(format!("sync.proxy {url:?}: {e}")))?,
        ),
        None => builder.no_proxy(),
    };
    builder
        .build()
        .map_err(|e| SyncFailure::Internal(format!("cannot build the HTTPS client: {e}")))
}

fn base(url: &str) -> Result<String, SyncFailure> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| SyncFailure::Transport(format!("upstream URL {url:?}: {e}")))?;
    if parsed.scheme() != "https" || parsed.host_str().is_none() {
        return Err(SyncFailure::Transport(format!(
            "upstream URL {url:?} must look like https://HOST:8443 (the upstream's device \
             listener; sync speaks TLS only)"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<(reqwest::StatusCode, Vec<u8>), SyncFailure> {
    let transport = |e: reqwest::Error| {
        SyncFailure::Transport(format!(
            "{url}: {}",
            crate::agent::error_chain(&e.without_url())
        ))
    };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(transport)?;
    Ok((status, bytes.to_vec()))
}

fn refused(url: &str, status: reqwest::StatusCode, body: &[u8]) -> SyncFailure {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    SyncFailure::Transport(format!("{url} answered {status}: {message}"))
}

/// Binds this satellite: fetches and pins the upstream CA, registers the key and gets a
/// client certificate. Returns what the catalog needs; the caller commits it.
pub async fn register(
    engine: &SyncEngine,
    url: &str,
    token: &str,
) -> Result<BindInput, SyncFailure> {
    let base = base(url)?;
    let (secret, fingerprint) = split_token(token)?;
    // 1. The CA, over an unauthenticated connection, checked against the token.
    let insecure = client(
        crate::pki::client_config_accepting_any(),
        engine.settings.proxy.as_deref(),
    )?;
    let ca_url = format!("{base}/v1/sync/ca");
    let (status, ca_pem) = send(insecure.get(&ca_url), &ca_url).await?;
    if !status.is_success() {
        return Err(refused(&ca_url, status, &ca_pem));
    }
    let ca_pem = String::from_utf8(ca_pem)
        .map_err(|_| SyncFailure::Transport(format!("{ca_url} sent a CA that is not text")))?;
    let ca_der = crate::pki::first_certificate_der(&ca_pem)
        .map_err(|e| SyncFailure::Transport(format!("{ca_url}: {e}")))?;
    let found = ca_fingerprint(&ca_der);
    if !found.eq_ignore_ascii_case(fingerprint) {
        return Err(SyncFailure::Transport(format!(
            "the satellite at {base} presents CA {found}, but the registration token pins \
             {fingerprint}: this is not the upstream that issued the token (or the URL is \
             wrong); nothing was changed"
        )));
    }
    // 2. Register, trusting that CA only.
    let (key_pem, csr) = crate::agent::new_key_and_csr("satellite")
        .map_err(|e| SyncFailure::Internal(e.to_string()))?;
    let config = crate::pki::client_config_trusting(&ca_pem)
        .map_err(|e| SyncFailure::Internal(e.to_string()))?;
    let http = client(
        Arc::unwrap_or_clone(config),
        engine.settings.proxy.as_deref(),
    )?;
    let reg_url = format!("{base}/v1/sync/register");
    let body = RegisterRequest {
        token: secret.to_owned(),
        public_key: engine.key.public_key_hex(),
        csr,
    };
    let (status, bytes) = send(http.post(&reg_url).json(&body), &reg_url).await?;
    if !status.is_success() {
        return Err(refused(&reg_url, status, &bytes));
    }
    let answer: RegisterResponse = serde_json::from_slice(&bytes).map_err(|e| {
        SyncFailure::Transport(format!("{reg_url} answered with an unexpected body: {e}"))
    })?;
    crate::protocol::sync::parse_public_key(&answer.upstream_key)
        .map_err(|e| SyncFailure::Transport(format!("the upstream's key: {e}")))?;
    crate::fsutil::write_atomically(&engine.dir.join(CLIENT_KEY), key_pem.as_bytes(), 0o600)
        .map_err(|e| SyncFailure::Internal(e.to_string()))?;
    crate::fsutil::write_atomically(
        &engine.dir.join(CLIENT_CERT),
        answer.certificate.as_bytes(),
        0o644,
    )
    .map_err(|e| SyncFailure::Internal(e.to_string()))?;
    Ok(BindInput {
        me: answer.child,
        upstream: answer.upstream,
        url: base,
        upstream_key: answer.upstream_key,
        ca_pem,
        account_name: answer.account_name,
        account_domain: answer.account_domain,
        root_path: answer.va,
    })
}

/// Sends a signed request to the upstream and returns its signed response.
pub async fn post_request(
    engine: &SyncEngine,
    binding: &UpstreamBinding,
    request: Vec<u8>,
) -> Result<Vec<u8>, SyncFailure> {
    let read = |name: &str| {
        let path = engine.dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| {
            SyncFailure::Internal(format!(
                "cannot read {} ({e}); bind again with `satellite sync register`",
                path.display()
            ))
        })
    };
    let config = crate::pki::client_config_with_identity(
        &binding.ca_pem,
        &read(CLIENT_CERT)?,
        &read(CLIENT_KEY)?,
    )
    .map_err(|e| SyncFailure::Internal(e.to_string()))?;
    let http = client(
        Arc::unwrap_or_clone(config),
        engine.settings.proxy.as_deref(),
    )?;
    let url = format!("{}/v1/sync", binding.url);
    let (status, bytes) = send(
        http.post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request),
        &url,
    )
    .await?;
    if !status.is_success() {
        return Err(refused(&url, status, &bytes));
    }
    Ok(bytes)
}
