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

use std::fmt;
use std::fs::{self};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    CertificateDer, CertificateSigningRequestDer, DnsName, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use time::OffsetDateTime;

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

    /// Issues a device identity certificate for the public key in `csr_pem`.
    ///
    /// Only the public key is taken from the request, after its signature is checked (proving
    /// the device holds the private key). Everything else the device asked for is ignored: the
    /// subject is exactly `CN=subject_cn`, there are no alternative names, the certificate is
    /// not a CA and is good for client authentication only. The serial has 126 random bits.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        subject_cn: &str,
        validity: time::Duration,
        now: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        if !validity.is_positive() {
            return Err(PkiError::BadValidity(validity));
        }
        let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
            .map_err(|err| PkiError::BadCsr(format!("not a PEM CERTIFICATE REQUEST ({err})")))?;
        let csr = CertificateSigningRequestParams::from_der(&der)
            .map_err(|err| PkiError::BadCsr(describe_csr_error(&err)))?;

        let now = now.replace_nanosecond(0).unwrap_or(now);
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(subject_cn);
        params.not_before = now;
        params.not_after = now + validity;
        params.serial_number = Some(random_serial()?);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;

        // The serial is read back from the encoded certificate so that it is formatted exactly
        // as it will be when the device presents the certificate.
        let serial = peer_certificate_serial(cert.der()).ok_or_else(|| {
            PkiError::BadCsr("the issued certificate could not be read back".to_owned())
        })?;
        Ok(IssuedCert {
            pem: cert.pem(),
            serial,
            not_before: params.not_before,
            not_after: params.not_after,
        })
    }
}

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
struct AcceptAny(Arc<CryptoProvider>);

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

/// The names this machine is reached by: `localhost` and the kernel's host name (and
/// `/etc/hostname` if it differs), lowercased, deduplicated, keeping only valid DNS names.
pub fn host_names() -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    for source in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        let Ok(text) = fs::read_to_string(source) else {
            continue;
        };
        let name = text.trim().to_ascii_lowercase();
        if DnsName::try_from(name.as_str()).is_ok() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server.key";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn load_or_create_ca(dir: &Path, now: OffsetDateTime) -> Result<Ca, PkiError> {
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    let exists = pair_exists(
        &cert_path,
        &key_path,
        "restore the missing file from a backup of the data directory; only if the CA is lost \
         for good, remove the other file to create a new device CA, after which every device \
         must register again",
    )?;

    if exists {
        let key = load_key(&key_path)?;
        let pem = read_text(&cert_path)?;
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|err| bad_file(&cert_path, format!("not a PEM certificate ({err})")))?;
        let (not_after, is_ca) = inspect(&der, &key, &cert_path, &key_path)?;
        if !is_ca {
            return Err(bad_file(&cert_path, "is not a CA certificate".to_owned()));
        }
        let issuer = Issuer::from_ca_cert_der(&der, key)
            .map_err(|err| bad_file(&cert_path, format!("cannot be used to sign ({err})")))?;
        return Ok(Ca {
            pem,
            der,
            not_after,
            issuer,
        });
    }

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(CA_COMMON_NAME);
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params.serial_number = Some(random_serial()?);
    // Path length 0: this CA signs end-entity certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    let pem = cert.pem();
    // The key is written first: a crash between the two writes then leaves a key without a
    // certificate, which is refused loudly at the next start rather than silently replaced.
    write_atomically(&key_path, key.serialize_pem().as_bytes(), KEY_MODE)?;
    write_atomically(&cert_path, pem.as_bytes(), CERT_MODE)?;
    Ok(Ca {
        pem,
        der: cert.der().clone(),
        not_after: params.not_after,
        issuer: Issuer::new(params, key),
    })
}

fn load_or_create_server(
    dir: &Path,
    sans: &[SanType],
    ca: &Ca,
    now: OffsetDateTime,
) -> Result<
    (
        CertificateDer<'static>,
        PrivateKeyDer<'static>,
        OffsetDateTime,
    ),
    PkiError,
> {
    let cert_path = dir.join(SERVER_CERT);
    let key_path = dir.join(SERVER_KEY);
    let exists = pair_exists(
        &cert_path,
        &key_path,
        "remove the other file too and restart to generate a new server certificate",
    )?;

    if exists {
        let key = load_key(&key_path)?;
        let pem = read_text(&cert_path)?;
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|err| bad_file(&cert_path, format!("not a PEM certificate ({err})")))?;
        let (not_after, _) = inspect(&der, &key, &cert_path, &key_path)?;
        if not_after - now > SERVER_RENEW_MARGIN {
            return Ok((der, pkcs8(&key), not_after));
        }
        tracing::info!(path = %cert_path.display(), %not_after, "renewing the server certificate");
    }

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(&san_label(&sans[0]));
    params.subject_alt_names = sans.to_vec();
    params.not_before = now - BACKDATE;
    params.not_after = (now + SERVER_VALIDITY).min(ca.not_after);
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &ca.issuer)?;
    write_atomically(&key_path, key.serialize_pem().as_bytes(), KEY_MODE)?;
    write_atomically(&cert_path, cert.pem().as_bytes(), CERT_MODE)?;
    Ok((cert.der().clone(), pkcs8(&key), params.not_after))
}

/// The subject alternative names of the server certificate: the given host names first (the
/// first becomes the common name), then the loopback names, without duplicates.
fn server_names(host_names: &[String]) -> Result<Vec<SanType>, PkiError> {
    if host_names.is_empty() {
        return Err(PkiError::NoHostNames);
    }
    let loopback = [
        SanType::DnsName(dns_name("localhost")?),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ];
    let mut sans: Vec<SanType> = Vec::new();
    for name in host_names {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) if DnsName::try_from(name.as_str()).is_ok() => SanType::DnsName(dns_name(name)?),
            Err(_) => return Err(PkiError::BadHostName(name.clone())),
        };
        sans.push(san);
    }
    sans.extend(loopback);
    let mut unique: Vec<SanType> = Vec::with_capacity(sans.len());
    for san in sans {
        if !unique.contains(&san) {
            unique.push(san);
        }
    }
    Ok(unique)
}

fn dns_name(name: &str) -> Result<rcgen::string::Ia5String, PkiError> {
    rcgen::string::Ia5String::try_from(name).map_err(|_| PkiError::BadHostName(name.to_owned()))
}

fn san_label(san: &SanType) -> String {
    match san {
        SanType::DnsName(name) => name.as_str().to_owned(),
        SanType::IpAddress(ip) => ip.to_string(),
        other => format!("{other:?}"),
    }
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A 128-bit serial with 126 random bits. The top two bits are fixed to `01` so that the DER
/// integer is positive without a padding byte and every serial has the same 32 hex digits.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|err| PkiError::Random(err.to_string()))?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn pkcs8(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivatePkcs8KeyDer::from(key.serialize_der()).into()
}

/// Whether both files of a pair exist; an error if exactly one does.
fn pair_exists(cert: &Path, key: &Path, advice: &'static str) -> Result<bool, PkiError> {
    let cert_exists = cert.try_exists().map_err(io_error(cert))?;
    let key_exists = key.try_exists().map_err(io_error(key))?;
    match (cert_exists, key_exists) {
        (true, true) => Ok(true),
        (false, false) => Ok(false),
        (true, false) => Err(PkiError::IncompletePair {
            present: cert.to_owned(),
            missing: key.to_owned(),
            advice,
        }),
        (false, true) => Err(PkiError::IncompletePair {
            present: key.to_owned(),
            missing: cert.to_owned(),
            advice,
        }),
    }
}

fn check_key_mode(path: &Path) -> Result<(), PkiError> {
    if let Some(mode) = crate::fsutil::open_to_others(path).map_err(io_error(path))? {
        return Err(PkiError::KeyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

fn load_key(path: &Path) -> Result<KeyPair, PkiError> {
    check_key_mode(path)?;
    let pem = read_text(path)?;
    KeyPair::from_pem(&pem)
        .map_err(|err| bad_file(path, format!("not a usable PEM private key ({err})")))
}

/// Reads a stored certificate's expiry and CA flag, checking that `key` belongs to it.
fn inspect(
    der: &CertificateDer<'_>,
    key: &KeyPair,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(OffsetDateTime, bool), PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|err| bad_file(cert_path, format!("not a valid certificate ({err})")))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(bad_file(
            key_path,
            format!(
                "does not belong to {}; restore the matching pair from a backup",
                cert_path.display()
            ),
        ));
    }
    Ok((cert.validity().not_after.to_datetime(), cert.is_ca()))
}

fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("not PEM certificates ({err})"))?;
    if chain.is_empty() {
        return Err("contains no PEM CERTIFICATE".to_owned());
    }
    Ok(chain)
}

fn roots_from_pem(ca_pem: &str) -> Result<RootCertStore, PkiError> {
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

fn read_text(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io_error(path))
}

/// Writes a file atomically with `mode` (see [`crate::fsutil::write_atomically`]).
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    Ok(crate::fsutil::write_atomically(path, contents, mode)?)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

fn bad_file(path: &Path, reason: String) -> PkiError {
    PkiError::BadFile {
        path: path.to_owned(),
        reason,
    }
}

fn describe_csr_error(err: &rcgen::Error) -> String {
    match err {
        rcgen::Error::InvalidCertificationRequestSignature => {
            "its signature does not verify".to_owned()
        }
        rcgen::Error::CouldNotParseCertificationRequest => {
            "it is not a well-formed PKCS#10 request".to_owned()
        }
        rcgen::Error::UnsupportedExtension => {
            "it requests an extension other than key usage, extended key usage, subject \
             alternative names or basic constraints"
                .to_owned()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
