//! Ed25519 keys: a satellite's own signing key, the ids operators pin, and the set of pinned
//! peer keys a received file is checked against.
//!
//! The private key is stored as PKCS#8 PEM with mode 0600 from the moment the file exists
//! (written through a temporary file created with that mode, then renamed), and a key file that
//! others can read is refused at load time, as `pki.rs` does for the TLS keys.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self};
use std::io;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::SatelliteId;

/// Mode of the private key file.
const KEY_MODE: u32 = 0o600;

/// Why a key could not be created, stored, loaded or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The key file could not be written (a symbolic link at its path is refused).
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
    /// The key file can be read by users other than its owner.
    #[error(
        "{path}: private key has mode {mode:04o}, readable by others; fix it with `chmod 600 {path}`",
        path = path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    /// The file does not hold an Ed25519 PKCS#8 PEM private key.
    #[error("{}: not an Ed25519 private key in PKCS#8 PEM form ({reason})", path.display())]
    BadKeyFile { path: PathBuf, reason: String },
    /// A public key given as text (configuration, binding) is not a usable Ed25519 key.
    #[error("not a usable Ed25519 public key: {0}; expected 64 hex digits")]
    BadPublicKey(String),
    /// The operating system's random source failed.
    #[error("cannot generate a key: the operating system's random source failed ({0})")]
    Random(String),
}

/// A key's id: the lowercase hex SHA-256 of its 32 public key bytes. Stable for the life of
/// the key and printed for operators to pin; a file names its signer by this id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PublicKeyId(pub String);

impl PublicKeyId {
    /// The id of a public key.
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
        PublicKeyId(hex(digest.as_ref()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// This satellite's signing key. `Debug` shows only the key id.
pub struct SatelliteKey {
    signing: SigningKey,
    id: PublicKeyId,
}

impl fmt::Debug for SatelliteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SatelliteKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SatelliteKey {
    /// A new random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|err| KeyError::Random(err.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// The key derived from a 32-byte secret seed (the Ed25519 private key itself).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing(SigningKey::from_bytes(seed))
    }

    fn from_signing(signing: SigningKey) -> Self {
        let id = PublicKeyId::of(&signing.verifying_key());
        SatelliteKey { signing, id }
    }

    pub fn id(&self) -> &PublicKeyId {
        &self.id
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The public key as 64 hex digits, the form peers paste into their configuration.
    pub fn public_key_hex(&self) -> String {
        hex(self.public_key().as_bytes())
    }

    /// The public key as SPKI PEM, for checking a file with standard tools (`openssl pkeyutl`).
    pub fn public_key_pem(&self) -> String {
        self.public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }

    /// Writes the key as PKCS#8 PEM with mode 0600, replacing `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let pem =
            self.signing
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|err| KeyError::BadKeyFile {
                    path: path.to_owned(),
                    reason: err.to_string(),
                })?;
        write_private(path, pem.as_bytes())
    }

    /// Loads a key written by [`SatelliteKey::save`], refusing a file others can read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        if let Some(mode) = crate::fsutil::open_to_others(path).map_err(io_error(path))? {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let pem = fs::read_to_string(path).map_err(io_error(path))?;
        let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|err| KeyError::BadKeyFile {
            path: path.to_owned(),
            reason: err.to_string(),
        })?;
        Ok(Self::from_signing(signing))
    }

    /// Loads the key at `path`, or generates and saves one if there is no file. Any other
    /// problem (unreadable, wrong permissions, not a key) is an error: a satellite's key is
    /// pinned by its peers and must never be replaced silently.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        match path.try_exists().map_err(io_error(path))? {
            true => Self::load(path),
            false => {
                let key = Self::generate()?;
                key.save(path)?;
                Ok(key)
            }
        }
    }
}

/// Parses a public key given as 64 hex digits, refusing weak (small-order) keys.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let bytes: [u8; 32] = unhex(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyError::BadPublicKey(format!("{text:?} is not 64 hex digits")))?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| KeyError::BadPublicKey(format!("{text:?} is not a point on the curve")))?;
    if key.is_weak() {
        return Err(KeyError::BadPublicKey(format!("{text:?} is a weak key")));
    }
    Ok(key)
}

/// A pinned peer: the name it signs as and its public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedPeer {
    pub name: SatelliteId,
    pub key: VerifyingKey,
}

/// The keys this satellite accepts files from, by key id: its upstream, its children, and the
/// issuers of license files the configuration trusts. Each key is pinned with the one name it
/// may sign as, so a child's key cannot sign a message claiming to come from another child.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    peers: BTreeMap<PublicKeyId, TrustedPeer>,
}

impl TrustedKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Pins `key` for `name`, replacing an earlier pin of the same key.
    pub fn insert(&mut self, name: SatelliteId, key: VerifyingKey) -> PublicKeyId {
        let id = PublicKeyId::of(&key);
        self.peers.insert(id.clone(), TrustedPeer { name, key });
        id
    }

    /// Builder form of [`TrustedKeys::insert`].
    pub fn with(mut self, name: SatelliteId, key: VerifyingKey) -> Self {
        self.insert(name, key);
        self
    }

    pub fn get(&self, id: &PublicKeyId) -> Option<&TrustedPeer> {
        self.peers.get(id)
    }

    pub fn remove(&mut self, id: &PublicKeyId) -> Option<TrustedPeer> {
        self.peers.remove(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PublicKeyId, &TrustedPeer)> {
        self.peers.iter()
    }
}

pub(crate) use crate::hex::{decode as unhex, encode as hex};

/// Writes the key atomically with mode 0600 (see [`crate::fsutil::write_atomically`]).
fn write_private(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    Ok(crate::fsutil::write_atomically(path, contents, KEY_MODE)?)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}
