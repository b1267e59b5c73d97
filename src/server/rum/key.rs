//! The key in each account's unguessable RUM ingest URL, `/cslu/v1/pi/<account>-<key>`, and the
//! gate that holds it with `[rum]`.
//!
//! The key is not stored per account: it is the HMAC-SHA256 of the account's id under one
//! 256-bit secret of the satellite (`DATA/rum-url.key`, mode 0600, created at first start),
//! truncated to 128 bits and written in hex. So every account has its key from the moment it
//! exists, the store format does not change, and the key stays the same across restarts and
//! account renames. Like `tls/` and `sync/`, the secret is not in backups: a satellite moved to
//! another machine without it gets new ingest URLs. Deleting the file (and restarting) rotates
//! every account's URL at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aws_lc_rs::{constant_time, hmac};

use crate::app::secrets::hex;
use crate::config::RumSettings;
use crate::domain::{Account, AccountId};

/// The file in the data directory that holds the secret.
pub const FILE: &str = "rum-url.key";

/// Bytes of the HMAC kept in a URL: 128 bits, written as 32 hex digits.
const KEY_BYTES: usize = 16;

/// Separates this use of the secret from any other it might get later.
const CONTEXT: &[u8] = b"satellite rum ingest url v1\0";

/// Why the secret could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IngestKeyError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} has mode {mode:04o}: the RUM ingest URL secret must be readable by its owner only \
         (chmod 600 {})",
        path.display(), path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "{} is not a RUM ingest URL secret (64 hex digits); delete it to create a new one, \
         which changes every account's ingest URL",
        path.display()
    )]
    Malformed { path: PathBuf },
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
}

/// The satellite's secret behind every account's ingest URL.
pub struct IngestKey {
    hmac: hmac::Key,
}

impl IngestKey {
    /// A key from its 32 secret bytes.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        IngestKey {
            hmac: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// Loads the secret from `dir`, or creates it (256 random bits, mode 0600) if there is
    /// none. A file others can read, or one that is not a secret, is an error, never replaced:
    /// replacing it would change every URL devices are configured with.
    pub fn load_or_create(dir: &Path) -> Result<Self, IngestKeyError> {
        use crate::fsutil::SecretFileError as E;
        let path = dir.join(FILE);
        let secret = crate::fsutil::load_or_create_secret(&path).map_err(|e| match e {
            E::Io(source) => IngestKeyError::Io {
                path: path.clone(),
                source,
            },
            E::OpenToOthers(mode) => IngestKeyError::Permissions {
                path: path.clone(),
                mode,
            },
            E::Malformed => IngestKeyError::Malformed { path: path.clone() },
            E::Write(e) => IngestKeyError::Write(e),
        })?;
        Ok(Self::from_secret(&secret))
    }

    /// The key of `account`'s ingest URL: 32 lowercase hex digits.
    pub fn for_account(&self, account: AccountId) -> String {
        let mut message = CONTEXT.to_vec();
        message.extend_from_slice(account.as_bytes());
        let tag = hmac::sign(&self.hmac, &message);
        hex(&tag.as_ref()[..KEY_BYTES])
    }

    /// Whether `presented` is the key of `account`, compared in constant time. With no account
    /// (the name in the URL is unknown) the work is the same and the answer `false`, so timing
    /// does not tell which accounts exist.
    pub fn matches(&self, account: Option<AccountId>, presented: &str) -> bool {
        let expected = self.for_account(account.unwrap_or(AccountId(uuid::Uuid::nil())));
        let equal =
            constant_time::verify_slices_are_equal(expected.as_bytes(), presented.as_bytes())
                .is_ok();
        equal && account.is_some()
    }

    /// The path of `account`'s ingest URL on the device listener.
    pub fn path(&self, account: &Account) -> String {
        format!(
            "/cslu/v1/pi/{}-{}",
            percent_encode(&account.name),
            self.for_account(account.id)
        )
    }
}

/// Encodes everything but RFC 3986's unreserved characters, so an account name with spaces
/// or other characters still makes one path segment (the router decodes it).
fn percent_encode(segment: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// What the endpoint checks before it reads a report: the ingest URL secret and `[rum]`,
/// which a reload replaces.
pub struct RumGate {
    pub key: IngestKey,
    pub settings: Arc<RwLock<RumSettings>>,
}

impl RumGate {
    pub(super) fn settings(&self) -> RumSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_per_account_stable_and_checked_exactly() {
        let key = IngestKey::from_secret(&[7; 32]);
        let (a, b) = (
            AccountId::fresh(&crate::app::RandomIds),
            AccountId::fresh(&crate::app::RandomIds),
        );
        let ka = key.for_account(a);
        assert_eq!(ka.len(), 32, "128 bits in hex");
        assert!(ka.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(ka, key.for_account(a), "stable");
        assert_ne!(ka, key.for_account(b), "per account");
        assert_ne!(
            ka,
            IngestKey::from_secret(&[8; 32]).for_account(a),
            "per satellite"
        );
        assert!(key.matches(Some(a), &ka));
        assert!(!key.matches(Some(b), &ka));
        assert!(!key.matches(None, &ka));
        assert!(!key.matches(Some(a), &ka[..31]));
        assert!(!key.matches(Some(a), &ka.to_uppercase()));
        assert!(!key.matches(Some(a), "1"));
    }

    #[test]
    fn the_secret_is_created_once_with_mode_0600_and_a_readable_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = IngestKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = IngestKey::load_or_create(dir.path()).unwrap();
        let a = AccountId::fresh(&crate::app::RandomIds);
        assert_eq!(first.for_account(a), again.for_account(a));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = IngestKey::load_or_create(dir.path()).err().unwrap();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        fs::write(&path, "not a secret\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = IngestKey::load_or_create(dir.path()).err().unwrap();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
    }

    #[test]
    fn account_names_make_one_path_segment() {
        assert_eq!(percent_encode("acme-1.com"), "acme-1.com");
        assert_eq!(percent_encode("Acme Corp/EU"), "Acme%20Corp%2FEU");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
