//! The HTTPS client of an IOS XE device's `/smartlic-service` REST API (pull mode): Basic
//! authentication, the trust the operator chose (a CA, or the SHA-256 of the device's own
//! certificate), connect and request timeouts, and answers bounded before they are read whole.

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls_pki_types::CertificateDer;

use super::seal::Password;
use crate::domain::{CiscoDevice, DeviceTrust};
use crate::protocol::cisco::pull;

/// How long a TCP and TLS connection to a device may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request to a device failed, sorted for status, alerts and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// No connection: refused, timed out, name not resolved, TLS failed.
    Unreachable,
    /// The device's certificate is not the one the operator trusts.
    Untrusted,
    /// The device refused the user name or password (401/403).
    Unauthorized,
    /// The device answered, but not with what the API documents.
    BadAnswer,
}

impl FailureKind {
    /// The `outcome` label of `satellite_cisco_polls_total`.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Unreachable => "unreachable",
            FailureKind::Untrusted => "untrusted",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::BadAnswer => "bad_answer",
        }
    }
}

/// A failed request: its kind and a sentence for the operator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ClientError {
    pub kind: FailureKind,
    pub message: String,
}

impl ClientError {
    fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        ClientError {
            kind,
            message: message.into(),
        }
    }
}

/// A client for one device, built for one poll.
pub struct DeviceClient {
    http: reqwest::Client,
    base: String,
    user: String,
    password: Password,
}

impl DeviceClient {
    pub fn new(
        device: &CiscoDevice,
        password: Password,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let config = tls_config(&device.trust)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("satellite/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ClientError::new(
                    FailureKind::Unreachable,
                    format!("cannot build the HTTPS client: {e}"),
                )
            })?;
        Ok(DeviceClient {
            http,
            base: format!("https://{}", device.address),
            user: device.username.clone(),
            password,
        })
    }

    /// `POST /smartlic-service/close-reports`: usage to date goes into closed reports.
    pub async fn close_reports(&self) -> Result<(), ClientError> {
        self.post(
            pull::CLOSE_REPORTS,
            pull::CLOSE_REPORTS_BODY.as_bytes().to_vec(),
        )
        .await
        .map(drop)
    }

    /// `GET /smartlic-service/all-reports`, decoded.
    pub async fn all_reports(&self) -> Result<crate::protocol::rum::Pulled, ClientError> {
        let request = self.http.get(self.url(pull::ALL_REPORTS));
        let body = self
            .send(request, pull::ALL_REPORTS, pull::MAX_USAGE_BYTES)
            .await?;
        pull::decode_usage(&body).map_err(|e| {
            ClientError::new(
                FailureKind::BadAnswer,
                format!("{}{}: {e}", self.base, pull::ALL_REPORTS),
            )
        })
    }

    /// `POST /smartlic-service/import` with `body` (from [`pull::encode_import`]).
    pub async fn import(&self, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.post(pull::IMPORT, body).await
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let request = self.http.post(self.url(path)).body(body);
        self.send(request, path, pull::MAX_LIST_BYTES).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends with Basic authentication and the API's content type; reads at most `max` bytes
    /// of a 2xx answer.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
        max: usize,
    ) -> Result<Vec<u8>, ClientError> {
        let url = self.url(path);
        let response = request
            .basic_auth(&self.user, Some(self.password.expose()))
            .header(reqwest::header::CONTENT_TYPE, pull::CONTENT_TYPE)
            .header(reqwest::header::ACCEPT, pull::CONTENT_TYPE)
            .send()
            .await
            .map_err(|e| transport(&url, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ClientError::new(
                FailureKind::Unauthorized,
                format!(
                    "{url} answered {status}: the device refused user `{}` and its password; \
                     check the local user on the device (privilege 15), then remove the device \
                     and add it again with the right credentials",
                    self.user
                ),
            ));
        }
        if !status.is_success() {
            return Err(ClientError::new(
                FailureKind::BadAnswer,
                format!("{url} answered {status}; is `{path}` served (IOS XE 17.3.2 or later)?"),
            ));
        }
        read_bounded(response, max, &url).await
    }
}

/// Reads an answer of at most `max` bytes; a larger announced length is refused before any
/// byte of the body is read, and a longer body as soon as it passes the bound.
async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
    url: &str,
) -> Result<Vec<u8>, ClientError> {
    let too_large = || {
        ClientError::new(
            FailureKind::BadAnswer,
            format!("{url} answered with more than {max} bytes; refused without reading it all"),
        )
    };
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(url, e))? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport(url: &str, e: reqwest::Error) -> ClientError {
    let timeout = e.is_timeout();
    let text = crate::agent::error_chain(&e.without_url());
    let kind = if text.contains(PIN_MISMATCH) || text.contains("certificate") {
        FailureKind::Untrusted
    } else {
        FailureKind::Unreachable
    };
    let message = if timeout {
        format!("{url}: no answer in time ({text})")
    } else {
        format!("{url}: {text}")
    };
    ClientError::new(kind, message)
}

/// The TLS configuration of the device's trust, with the HTTP versions a device speaks.
fn tls_config(trust: &DeviceTrust) -> Result<rustls::ClientConfig, ClientError> {
    let mut config = match trust {
        DeviceTrust::Ca(pem) => {
            let config = crate::pki::client_config_trusting(pem).map_err(|e| {
                ClientError::new(FailureKind::Untrusted, format!("the device's CA: {e}"))
            })?;
            Arc::unwrap_or_clone(config)
        }
        DeviceTrust::Fingerprint(pin) => {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(rustls::ALL_VERSIONS)
                .expect("the aws-lc-rs provider supports every rustls protocol version")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    pin: *pin,
                    provider,
                }))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The SHA-256 of a certificate (DER), as `--fingerprint` takes it.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

const PIN_MISMATCH: &str = "not the pinned fingerprint";

/// Trusts exactly one certificate, named by its SHA-256: the device's own, often self-signed,
/// so neither its issuer nor its names can be checked. The handshake signature is still
/// verified, so the peer holds the private key of the pinned certificate.
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let found = fingerprint(end_entity.as_ref());
        if aws_lc_rs::constant_time::verify_slices_are_equal(&found, &self.pin).is_ok() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the device's certificate has SHA-256 {}, {PIN_MISMATCH} {}; if the device got \
                 a new certificate, remove the device and add it again with the new fingerprint",
                crate::hex::encode(&found),
                crate::hex::encode(&self.pin)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
