//! Signing a device's certificate request: only the public key is taken from it, everything
//! else the certificate says is decided here.

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose,
};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

use super::ca::{common_name, random_serial};
use super::client::peer_certificate_serial;
use super::{IssuedCert, Pki, PkiError};

impl Pki {
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

pub(super) fn describe_csr_error(err: &rcgen::Error) -> String {
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
