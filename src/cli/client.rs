//! The operator CLI's connection to a running daemon: the admin Unix socket (local, acts as
//! system administrator) or HTTPS with an API token (remote, acts as that token's user).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::admin::ErrorBody;

/// Where the admin API is.
#[derive(Debug, Clone)]
pub enum Target {
    Socket(PathBuf),
    Https {
        url: String,
        token: String,
        ca_pem: String,
    },
}

/// A failure the daemon reported, with its stable code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct AdminClient {
    target: Target,
}

impl AdminClient {
    pub fn new(target: Target) -> Self {
        AdminClient { target }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None::<&()>).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        self.send(Method::DELETE, path, None::<&()>)
            .await
            .map(|_| ())
    }

    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let bytes = self.send(method, path, body).await?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("the daemon's answer to {path} could not be understood"))
    }

    /// POSTs `body` as it is (a file the daemon verifies itself) and decodes the JSON answer.
    pub async fn post_bytes<T: DeserializeOwned>(&self, path: &str, body: Vec<u8>) -> Result<T> {
        let bytes = self.send_bytes(Method::POST, path, body).await?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("the daemon's answer to {path} could not be understood"))
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Bytes> {
        let body = match body {
            Some(b) => serde_json::to_vec(b)?,
            None => Vec::new(),
        };
        self.send_bytes(method, path, body).await
    }

    /// Sends `body` as it is and returns the raw answer (a sync file, say).
    pub async fn send_bytes(&self, method: Method, path: &str, body: Vec<u8>) -> Result<Bytes> {
        let (status, bytes) = match &self.target {
            Target::Socket(socket) => unix_request(socket, method, path, body).await?,
            Target::Https { url, token, ca_pem } => {
                https_request(url, token, ca_pem, method, path, body).await?
            }
        };
        if status.is_success() {
            return Ok(bytes);
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => Err(Refused {
                status,
                code: e.error.code,
                message: e.error.message,
            }
            .into()),
            Err(_) => bail!(
                "the daemon answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
    /// GETs `path` and hands the body to `sink` chunk by chunk as it arrives (for large,
    /// non-JSON answers such as a backup). Returns the number of bytes received.
    pub async fn download(
        &self,
        path: &str,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let mut total = 0u64;
        match &self.target {
            Target::Socket(socket) => {
                let stream = connect(socket).await?;
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .context("admin socket handshake failed")?;
                tokio::spawn(conn);
                let req = Request::builder()
                    .method(Method::GET)
                    .uri(path)
                    .header(hyper::header::HOST, "satellite")
                    .body(Full::new(Bytes::new()))?;
                let mut res = sender
                    .send_request(req)
                    .await
                    .context("admin request failed")?;
                if !res.status().is_success() {
                    let status = res.status();
                    let bytes = res.into_body().collect().await?.to_bytes();
                    return Err(refusal(status, &bytes));
                }
                while let Some(frame) = res.body_mut().frame().await {
                    if let Ok(data) = frame.context("the download was interrupted")?.into_data() {
                        total += data.len() as u64;
                        sink(&data)?;
                    }
                }
            }
            Target::Https { url, token, ca_pem } => {
                let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
                    .context("bad CA certificate")?;
                let client = reqwest::Client::builder()
                    .tls_certs_only([ca])
                    .build()
                    .context("cannot build the HTTPS client")?;
                let mut res = client
                    .get(format!("{}{path}", url.trim_end_matches('/')))
                    .bearer_auth(token)
                    .send()
                    .await
                    .with_context(|| format!("cannot reach the satellite at {url}"))?;
                if !res.status().is_success() {
                    let status = res.status();
                    let bytes = res.bytes().await?;
                    return Err(refusal(status, &bytes));
                }
                while let Some(data) = res.chunk().await.context("the download was interrupted")? {
                    total += data.len() as u64;
                    sink(&data)?;
                }
            }
        }
        Ok(total)
    }
}

/// The error for a non-2xx answer: the daemon's refusal with its code, or the raw answer.
fn refusal(status: StatusCode, bytes: &[u8]) -> anyhow::Error {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(e) => Refused {
            status,
            code: e.error.code,
            message: e.error.message,
        }
        .into(),
        Err(_) => anyhow!(
            "the daemon answered {status}: {}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// Connects to the admin socket; a failure says what the operator can do about it.
async fn connect(socket: &Path) -> Result<tokio::net::UnixStream> {
    let e = match tokio::net::UnixStream::connect(socket).await {
        Ok(stream) => return Ok(stream),
        Err(e) => e,
    };
    let shown = socket.display();
    let hint = match e.kind() {
        ErrorKind::PermissionDenied => {
            "run the command as root or as a member of the socket's group: on a host installed \
             from the package, `sudo usermod -aG satellite $USER`, then log in again (the \
             daemon's admin.socket_mode must be \"0660\")"
        }
        ErrorKind::ConnectionRefused => {
            "nothing answers there: the daemon stopped or crashed and left its socket behind. \
             Start it (`systemctl start satellite`, or `satellite serve`), or name another \
             socket with --socket PATH"
        }
        _ => {
            "is the daemon running (`systemctl status satellite`, or `satellite serve`)? Name \
             its socket with --socket PATH or SATELLITE_SOCKET=PATH, or its configuration with \
             --config FILE"
        }
    };
    Err(anyhow!(
        "cannot reach the satellite's admin socket {shown}: {e}; {hint}"
    ))
}

async fn unix_request(
    socket: &Path,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes)> {
    let stream = connect(socket).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("admin socket handshake failed")?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "satellite")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let res = sender
        .send_request(req)
        .await
        .context("admin request failed")?;
    let status = res.status();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

async fn https_request(
    url: &str,
    token: &str,
    ca_pem: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes)> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).context("bad CA certificate")?;
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .context("cannot build the HTTPS client")?;
    let res = client
        .request(method, format!("{}{path}", url.trim_end_matches('/')))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach the satellite at {url}"))?;
    let status = res.status();
    let bytes = res.bytes().await?;
    Ok((status, bytes))
}

/// Percent-encodes one path segment (VA paths contain `/`).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds a query string from the parameters that are set.
pub fn query(params: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}
