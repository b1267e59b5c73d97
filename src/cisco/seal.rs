//! The key that seals the passwords of polled Cisco devices at rest (`DATA/cisco-credentials.key`).
//!
//! A device's password is stored only sealed: AES-256-GCM under this 256-bit key, with a fresh
//! random 96-bit nonce per sealing and the device's id as associated data, so a sealed blob
//! copied onto another device's record does not open. The key is created at first need (mode
//! 0600, through `fsutil`) and never replaced: replacing it would make every stored password
//! unreadable. Like `rum-url.key` and `tls/`, it is not in backups, so a backup holds no
//! password an attacker could open; a satellite restored elsewhere without the file needs each
//! device's password again (`cisco device remove` and `add`).

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::domain::CiscoDeviceId;

/// The file in the data directory that holds the key.
pub const FILE: &str = "cisco-credentials.key";

/// Why the key could not be loaded or created, or a password not opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} has mode {mode:04o}: the Cisco credentials key must be readable by its owner only \
         (chmod 600 {})",
        path.display(), path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "{} is not a Cisco credentials key (64 hex digits); restore it from where it was \
         copied, or delete it and add every Cisco device again with its password",
        path.display()
    )]
    Malformed { path: PathBuf },
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
    #[error(
        "the device's stored password does not open with this satellite's credentials key \
         (was {FILE} replaced, or the store restored on another machine?); remove the device \
         and add it again with its password"
    )]
    Unopenable,
}

/// The sealing key, loaded once.
pub struct CredentialKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialKey(<secret>)")
    }
}

impl CredentialKey {
    /// A key from its 32 secret bytes.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, secret).expect("AES-256 takes 32 bytes");
        CredentialKey {
            key: LessSafeKey::new(unbound),
        }
    }

    /// Loads the key from `dir`, or creates it (256 random bits, mode 0600) if there is none.
    /// A file others can read, or one that is not a key, is an error and never replaced.
    pub fn load_or_create(dir: &Path) -> Result<Self, SealError> {
        use crate::fsutil::SecretFileError as E;
        let path = dir.join(FILE);
        let secret = crate::fsutil::load_or_create_secret(&path).map_err(|e| match e {
            E::Io(source) => SealError::Io {
                path: path.clone(),
                source,
            },
            E::OpenToOthers(mode) => SealError::Permissions {
                path: path.clone(),
                mode,
            },
            E::Malformed => SealError::Malformed { path: path.clone() },
            E::Write(e) => SealError::Write(e),
        })?;
        Ok(Self::from_secret(&secret))
    }

    /// Seals `password` for device `id`: nonce, then ciphertext and tag.
    pub fn seal(&self, id: CiscoDeviceId, password: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random source is unavailable");
        let mut sealed = password.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut sealed,
            )
            .expect("AES-GCM seals any password shorter than 64 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens the password sealed for device `id`.
    pub fn open(&self, id: CiscoDeviceId, sealed: &[u8]) -> Result<Password, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Unopenable);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Unopenable)?;
        let mut body = body.to_vec();
        let clear = self
            .key
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut body)
            .map_err(|_| SealError::Unopenable)?;
        String::from_utf8(clear.to_vec())
            .map(Password)
            .map_err(|_| SealError::Unopenable)
    }
}

/// A device password in clear, only for the moment of a request; its `Debug` shows nothing.
pub struct Password(String);

impl From<String> for Password {
    fn from(s: String) -> Self {
        Password(s)
    }
}

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn device(n: u8) -> CiscoDeviceId {
        CiscoDeviceId(uuid::Uuid::from_bytes([n; 16]))
    }

    #[test]
    fn a_sealed_password_opens_for_its_device_only() {
        let key = CredentialKey::from_secret(&[1; 32]);
        let sealed = key.seal(device(1), "s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(key.open(device(1), &sealed).unwrap().expose(), "s3cret");
        assert!(matches!(
            key.open(device(2), &sealed),
            Err(SealError::Unopenable)
        ));
        let other = CredentialKey::from_secret(&[2; 32]);
        assert!(matches!(
            other.open(device(1), &sealed),
            Err(SealError::Unopenable)
        ));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            key.open(device(1), &tampered),
            Err(SealError::Unopenable)
        ));
        assert_ne!(
            key.seal(device(1), "s3cret"),
            sealed,
            "a fresh nonce each time"
        );
        assert_eq!(
            format!("{:?}", key.open(device(1), &sealed).unwrap()),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn the_key_file_is_created_owner_only_and_loaded_again() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = CredentialKey::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = key.seal(device(3), "pw");
        let again = CredentialKey::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open(device(3), &sealed).unwrap().expose(), "pw");
        fs::set_permissions(dir.path().join(FILE), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            CredentialKey::load_or_create(dir.path()),
            Err(SealError::Permissions { .. })
        ));
    }
}
