//! The files of the CA and the server certificate: a pair is both files or neither, keys are
//! owner-only, and every write goes through `fsutil`.

use std::fs;
use std::io;
use std::path::Path;

use rcgen::KeyPair;

use super::PkiError;

/// Whether both files of a pair exist; an error if exactly one does.
pub(super) fn pair_exists(cert: &Path, key: &Path, advice: &'static str) -> Result<bool, PkiError> {
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

pub(super) fn check_key_mode(path: &Path) -> Result<(), PkiError> {
    if let Some(mode) = crate::fsutil::open_to_others(path).map_err(io_error(path))? {
        return Err(PkiError::KeyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

pub(super) fn load_key(path: &Path) -> Result<KeyPair, PkiError> {
    check_key_mode(path)?;
    let pem = read_text(path)?;
    KeyPair::from_pem(&pem)
        .map_err(|err| bad_file(path, format!("not a usable PEM private key ({err})")))
}

pub(super) fn read_text(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io_error(path))
}

/// Writes a file atomically with `mode` (see [`crate::fsutil::write_atomically`]).
pub(super) fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    Ok(crate::fsutil::write_atomically(path, contents, mode)?)
}

pub(super) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn bad_file(path: &Path, reason: String) -> PkiError {
    PkiError::BadFile {
        path: path.to_owned(),
        reason,
    }
}
