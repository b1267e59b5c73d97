//! The satellite's own certificates: the device CA, the server certificate, and device
//! identities.
//!
//! Devices talk to the satellite over TLS only (SPEC §3), and there is no public CA on an
//! isolated network, so the satellite runs a small CA of its own. On first start it generates
//! the **device CA** and a **server certificate** signed by it, and writes them to the data
//! directory; every later start loads the same files. The CA must never be silently replaced:
//! every device identity certificate chains to it, so a new CA means every device registers
//! again. That is why a half-present pair of files is an error, not a reason to regenerate.
//!
//! Private keys are written with mode 0600 from the moment the file exists (no window in which
//! another user could read them), through a temporary file and a rename so that a crash never
//! leaves half a key behind. A key file readable by others is refused at load time.
//!
//! Every TLS configuration here names the aws-lc-rs provider explicitly instead of relying on a
//! process-wide default, so that no code path depends on `install_default` having run.
//!
//! Here: [`Pki`] loaded or created, and the server's TLS configuration. `ca.rs` creates and
//! checks the CA and server certificates, `csr.rs` signs device requests, `client.rs` builds
//! client configurations and reads peer certificates, `files.rs` the key and certificate files.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{Issuer, KeyPair};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

mod ca;
mod client;
mod csr;
mod files;

pub use ca::host_names;
use ca::{load_or_create_ca, load_or_create_server, server_names};
use client::parse_chain;
pub use client::{
    client_config_accepting_any, client_config_trusting, client_config_with_identity,
    first_certificate_der, peer_certificate_cn, peer_certificate_serial,
};
use files::{bad_file, check_key_mode, io_error, read_text};

/// Common name of the device CA.
pub const CA_COMMON_NAME: &str = "satellite device CA";

/// Lifetime of the device CA. Long, because replacing it means re-registering every device.
const CA_VALIDITY: time::Duration = time::Duration::days(10 * 365);

/// Lifetime of the generated server certificate. It is renewed at start when it gets close to
/// expiry; devices are unaffected because they trust the CA, not this certificate.
const SERVER_VALIDITY: time::Duration = time::Duration::days(2 * 365);

/// A server certificate expiring sooner than this is replaced at start.
const SERVER_RENEW_MARGIN: time::Duration = time::Duration::days(30);

/// The CA and server certificates are dated this far into the past so that a device whose clock
/// is somewhat behind still accepts them.
const BACKDATE: time::Duration = time::Duration::days(1);

/// Mode of private key files.
const KEY_MODE: u32 = 0o600;

/// Mode of certificate files, which are public.
const CERT_MODE: u32 = 0o644;

/// Why a certificate operation failed. File errors name the file and, where there is one, the
/// fix.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file or directory could not be read, written or inspected.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A file could not be written (a symbolic link at its path is refused).
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
    /// A private key file can be read by users other than its owner.
    #[error(
        "{path}: private key has mode {mode:04o}, readable by others; fix it with `chmod 600 {path}`",
        path = path.display()
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// One file of a certificate/key pair exists without the other.
    #[error(
        "{present} exists but {missing} does not; {advice}",
        present = present.display(),
        missing = missing.display()
    )]
    IncompletePair {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
        /// What the operator can do about it.
        advice: &'static str,
    },
    /// A file exists but does not hold what it should (bad PEM, wrong kind of key or
    /// certificate, a key that does not belong to its certificate).
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, and the fix where there is one.
        reason: String,
    },
    /// A host name for the server certificate is not a valid DNS name or IP address.
    #[error("host name {0:?} is not a valid DNS name or IP address for a server certificate")]
    BadHostName(String),
    /// No host name was given for the server certificate.
    #[error("at least one host name is needed for the server certificate")]
    NoHostNames,
    /// A certificate signing request from a device was not acceptable.
    #[error("bad certificate signing request: {0}")]
    BadCsr(String),
    /// A certificate validity that is zero or negative was asked for.
    #[error("certificate validity must be positive, got {0}")]
    BadValidity(time::Duration),
    /// PEM text passed in by a caller (not read from a file) could not be used.
    #[error("{what}: {reason}")]
    BadPem {
        /// What the text was supposed to be, e.g. "CA certificate".
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Generating or signing a certificate failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The system random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
    /// rustls refused the certificates or key when building a TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// rustls could not build the client certificate verifier.
    #[error("TLS client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// A device identity certificate issued by [`Pki::sign_csr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub pem: String,
    /// The serial number as lowercase hex without separators or leading zero bytes, exactly as
    /// [`peer_certificate_serial`] formats it.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// The device CA and the server certificate, loaded or created in one directory.
pub struct Pki {
    dir: PathBuf,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    server_not_after: OffsetDateTime,
}

impl fmt::Debug for Pki {
    /// Shows where the files are and when they expire, never key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("ca_not_after", &self.ca_not_after)
            .field("server_not_after", &self.server_not_after)
            .finish_non_exhaustive()
    }
}

/// The CA as loaded or created, before the server certificate exists.
struct Ca {
    pem: String,
    der: CertificateDer<'static>,
    not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    /// Loads the device CA and server certificate from `dir`, creating whichever pair is absent.
    ///
    /// The CA is created only when neither `ca.pem` nor `ca.key` exists. The server certificate
    /// is created when neither `server.pem` nor `server.key` exists (so deleting both is how an
    /// operator asks for a new one, e.g. after renaming the host), and replaced when it expires
    /// within 30 days. `host_names` become the server certificate's names, the first one its
    /// common name; `localhost`, `127.0.0.1` and `::1` are always included.
    pub fn load_or_create(
        dir: &Path,
        host_names: &[String],
        now: OffsetDateTime,
    ) -> Result<Pki, PkiError> {
        let sans = server_names(host_names)?;
        let now = now.replace_nanosecond(0).unwrap_or(now);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir))?;

        let ca = load_or_create_ca(dir, now)?;
        let (server_cert, server_key, server_not_after) =
            load_or_create_server(dir, &sans, &ca, now)?;

        Ok(Pki {
            dir: dir.to_owned(),
            server_chain: vec![server_cert, ca.der.clone()],
            ca_pem: ca.pem,
            ca_der: ca.der,
            ca_not_after: ca.not_after,
            issuer: ca.issuer,
            server_key,
            server_not_after,
        })
    }

    /// The device CA certificate, PEM, as stored in `ca.pem`.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The device CA certificate, DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// Path of `ca.pem`, to show operators what devices must trust.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }

    /// Path of `server.pem`.
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.join(SERVER_CERT)
    }

    /// When the device CA expires.
    pub fn ca_not_after(&self) -> OffsetDateTime {
        self.ca_not_after
    }

    /// When the server certificate expires.
    pub fn server_cert_not_after(&self) -> OffsetDateTime {
        self.server_not_after
    }

    /// The TLS configuration for the device and admin listeners, using the generated server
    /// certificate. Clients may present an identity certificate issued by the device CA; they
    /// are not required to, so registration works without one. Handlers decide which calls need
    /// it.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, PkiError> {
        self.build_server_config(self.server_chain.clone(), self.server_key.clone_key())
    }

    /// Like [`Pki::server_config`], but serving an operator-supplied certificate chain and key
    /// (`[tls]` in the configuration). Device identities are still verified against the device
    /// CA.
    pub fn server_config_with_files(
        &self,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Arc<ServerConfig>, PkiError> {
        let cert_pem = read_text(cert_path)?;
        let chain = parse_chain(&cert_pem).map_err(|reason| bad_file(cert_path, reason))?;
        check_key_mode(key_path)?;
        let key_pem = read_text(key_path)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|err| bad_file(key_path, format!("not a PEM private key ({err})")))?;
        self.build_server_config(chain, key)
    }

    fn build_server_config(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<ServerConfig>, PkiError> {
        let provider = provider();
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server.key";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

#[cfg(test)]
mod tests;
