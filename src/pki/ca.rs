//! Creating and loading the device CA and the server certificate: their names, serials and
//! validity, and the checks that a stored pair still belongs together.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, DnsName, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use super::files::{bad_file, load_key, pair_exists, read_text, write_atomically};
use super::{
    BACKDATE, CA_CERT, CA_COMMON_NAME, CA_KEY, CA_VALIDITY, CERT_MODE, Ca, KEY_MODE, PkiError,
    SERVER_CERT, SERVER_KEY, SERVER_RENEW_MARGIN, SERVER_VALIDITY,
};

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

pub(super) fn load_or_create_ca(dir: &Path, now: OffsetDateTime) -> Result<Ca, PkiError> {
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

pub(super) fn load_or_create_server(
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
pub(super) fn server_names(host_names: &[String]) -> Result<Vec<SanType>, PkiError> {
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

pub(super) fn dns_name(name: &str) -> Result<rcgen::string::Ia5String, PkiError> {
    rcgen::string::Ia5String::try_from(name).map_err(|_| PkiError::BadHostName(name.to_owned()))
}

pub(super) fn san_label(san: &SanType) -> String {
    match san {
        SanType::DnsName(name) => name.as_str().to_owned(),
        SanType::IpAddress(ip) => ip.to_string(),
        other => format!("{other:?}"),
    }
}

pub(super) fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A 128-bit serial with 126 random bits. The top two bits are fixed to `01` so that the DER
/// integer is positive without a padding byte and every serial has the same 32 hex digits.
pub(super) fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|err| PkiError::Random(err.to_string()))?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

pub(super) fn pkcs8(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivatePkcs8KeyDer::from(key.serialize_der()).into()
}

/// Reads a stored certificate's expiry and CA flag, checking that `key` belongs to it.
pub(super) fn inspect(
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
