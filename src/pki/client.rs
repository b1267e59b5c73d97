//! TLS client configurations built on the device CA (the CLI over HTTPS, devices, tests, and
//! the one unauthenticated fetch of an upstream's CA), and reading a peer certificate's
//! serial and common name.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{PkiError, provider};

/// A client configuration trusting only the device CA (`ca_pem`), without a client
/// certificate: for the CLI over HTTPS, a device registering, and tests. ALPN is left empty so
/// that the HTTP client in use sets what it speaks.
pub fn client_config_trusting(ca_pem: &str) -> Result<Arc<ClientConfig>, PkiError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .with_root_certificates(roots_from_pem(ca_pem)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration trusting only the device CA and presenting a device identity
/// (`cert_chain_pem`: the identity certificate, optionally followed by the CA; `key_pem`: its
/// private key), for registered devices and mutual-TLS tests.
pub fn client_config_with_identity(
    ca_pem: &str,
    cert_chain_pem: &str,
    key_pem: &str,
) -> Result<Arc<ClientConfig>, PkiError> {
    let chain = parse_chain(cert_chain_pem).map_err(|reason| PkiError::BadPem {
        what: "client certificate chain",
        reason,
    })?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|err| PkiError::BadPem {
            what: "client private key",
            reason: err.to_string(),
        })?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .with_root_certificates(roots_from_pem(ca_pem)?)
        .with_client_auth_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The DER of the first certificate in a PEM text (a CA file), for fingerprints.
pub fn first_certificate_der(pem: &str) -> Result<Vec<u8>, String> {
    Ok(parse_chain(pem)?.remove(0).as_ref().to_vec())
}

/// A client configuration that accepts any server certificate. Used for exactly one request:
/// fetching an upstream's public CA certificate during binding, which is then checked against
/// the fingerprint carried by the registration token before anything else is trusted.
pub fn client_config_accepting_any() -> ClientConfig {
    let provider = provider();
    ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .expect("the aws-lc-rs provider supports every rustls protocol version")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth()
}

/// See [`client_config_accepting_any`]: the handshake signature is still checked (so the peer
/// holds the key of the certificate it shows), the certificate itself is not.
#[derive(Debug)]
pub(super) struct AcceptAny(Arc<CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The serial number of a certificate (typically a verified peer certificate) as lowercase hex
/// without separators or leading zero bytes; `None` if it cannot be parsed.
pub fn peer_certificate_serial(der: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let raw = cert.raw_serial();
    let significant = raw
        .iter()
        .position(|&b| b != 0)
        .map_or(&raw[raw.len().saturating_sub(1)..], |i| &raw[i..]);
    Some(significant.iter().map(|b| format!("{b:02x}")).collect())
}

/// The subject common name of a certificate; `None` if it has none or cannot be parsed.
pub fn peer_certificate_cn(der: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

pub(super) fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("not PEM certificates ({err})"))?;
    if chain.is_empty() {
        return Err("contains no PEM CERTIFICATE".to_owned());
    }
    Ok(chain)
}

pub(super) fn roots_from_pem(ca_pem: &str) -> Result<RootCertStore, PkiError> {
    let certs = parse_chain(ca_pem).map_err(|reason| PkiError::BadPem {
        what: "CA certificate",
        reason,
    })?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert)?;
    }
    Ok(roots)
}
