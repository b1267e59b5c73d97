//! The agent's directory: `key.pem`, `cert.pem`, `ca.pem` and `state.json`.
//!
//! Every file is replaced through a temporary file and a rename, so a crash leaves either the
//! old or the new content, never half of one. `state.json` is written last at registration: a
//! directory without it holds no registration, whatever else it contains.
//!
//! A renewal replaces two files, the key and the certificate, which no single rename can do.
//! The new pair is first written next to the old one as `key.next.pem` then `cert.next.pem`;
//! `cert.next.pem` is the commit marker. Once it exists the pair is complete, and the swap is
//! finished by whoever comes next: the renewal itself or, after a crash, [`load`]. A
//! `key.next.pem` without `cert.next.pem` is an abandoned renewal and is removed.

use std::fs::{self};
use std::io::{self};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::AgentError;
use super::client::AgentIdentity;
use crate::protocol::device::{Authorization, Udi, UsageRequest};

/// Version of the `state.json` layout. A newer agent migrates older formats; an older agent
/// refuses a newer one instead of guessing.
pub const FORMAT: u32 = 1;

pub(super) const KEY: &str = "key.pem";
pub(super) const CERT: &str = "cert.pem";
pub(super) const CA: &str = "ca.pem";
pub(super) const STATE: &str = "state.json";
const KEY_NEXT: &str = "key.next.pem";
const CERT_NEXT: &str = "cert.next.pem";

const KEY_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o700;

/// What the agent remembers between runs (`state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentState {
    /// Layout version, [`FORMAT`].
    pub format: u32,
    /// The satellite's base URL, `https://HOST:PORT`.
    pub url: String,
    /// The instance id the satellite assigned.
    pub instance_id: String,
    /// The device's UDI as registered.
    pub udi: Udi,
    /// The host name sent at registration.
    pub hostname: String,
    /// The sequence number of the last usage report built (sent or not).
    pub seq: u64,
    /// When the identity certificate should be renewed.
    #[serde(with = "time::serde::rfc3339")]
    pub renew_after: OffsetDateTime,
    /// How often the satellite wants a usage report.
    pub report_interval_secs: u64,
    /// The last authorization the satellite answered.
    pub last_authorization: Option<Authorization>,
    /// The last usage report built, kept so that it can be resent with the same `seq`.
    #[serde(default)]
    pub last_report: Option<UsageRequest>,
    /// Set once the satellite confirmed a deregistration; nothing more may be sent.
    #[serde(default)]
    pub deregistered: bool,
}

/// Loads the state and identity of `dir`, first finishing a renewal a crash interrupted.
pub(super) fn load(dir: &Path) -> Result<(AgentState, AgentIdentity), AgentError> {
    finish_renewal(dir)?;
    let state_path = dir.join(STATE);
    let text = match fs::read(&state_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(AgentError::State(format!(
                "no agent state in {}; run `satellite agent register` first",
                dir.display()
            )));
        }
        Err(e) => return Err(io_error(&state_path)(e)),
    };
    let state = decode_state(&text).map_err(|reason| {
        AgentError::State(format!(
            "{}: {reason}; register again with `satellite agent register --force`",
            state_path.display()
        ))
    })?;

    let key_path = dir.join(KEY);
    if let Some(mode) =
        crate::fsutil::open_to_others(&key_path).map_err(|e| missing(dir, &key_path, e))?
    {
        return Err(AgentError::State(format!(
            "{path}: private key has mode {mode:04o}, readable by others; fix it with `chmod 600 {path}`",
            path = key_path.display()
        )));
    }
    let identity = AgentIdentity {
        key_pem: read(dir, &key_path)?,
        cert_pem: read(dir, &dir.join(CERT))?,
        ca_pem: read(dir, &dir.join(CA))?,
        instance_id: state.instance_id.clone(),
    };
    Ok((state, identity))
}

/// Parses `state.json`, refusing formats this agent does not know.
pub(super) fn decode_state(text: &[u8]) -> Result<AgentState, String> {
    #[derive(Deserialize)]
    struct Version {
        format: u32,
    }
    let version: Version =
        serde_json::from_slice(text).map_err(|e| format!("not agent state ({e})"))?;
    if version.format != FORMAT {
        return Err(format!(
            "state format {} is not {FORMAT}, the one this agent understands (written by a \
             newer agent?)",
            version.format
        ));
    }
    serde_json::from_slice(text).map_err(|e| format!("corrupt agent state ({e})"))
}

/// Writes `state.json`.
pub(super) fn save_state(dir: &Path, state: &AgentState) -> Result<(), AgentError> {
    let mut text = serde_json::to_vec_pretty(state)
        .map_err(|e| AgentError::State(format!("cannot encode the agent state: {e}")))?;
    text.push(b'\n');
    write_atomically(&dir.join(STATE), &text, PUBLIC_MODE)
}

/// Creates `dir` (owner-only) if needed.
pub(super) fn create_dir(dir: &Path) -> Result<(), AgentError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io_error(dir))
}

/// Forgets a registration before a new one is saved: without `state.json` the directory holds
/// none, so a crash while the new files are written cannot pair the old state with a new key.
pub(super) fn forget(dir: &Path) -> Result<(), AgentError> {
    for name in [STATE, KEY_NEXT, CERT_NEXT] {
        remove_if_present(&dir.join(name))?;
    }
    Ok(())
}

/// Writes the key, certificate and CA of a new registration. `state.json` follows.
pub(super) fn save_identity(dir: &Path, identity: &AgentIdentity) -> Result<(), AgentError> {
    write_atomically(&dir.join(KEY), identity.key_pem.as_bytes(), KEY_MODE)?;
    write_atomically(&dir.join(CERT), identity.cert_pem.as_bytes(), PUBLIC_MODE)?;
    write_atomically(&dir.join(CA), identity.ca_pem.as_bytes(), PUBLIC_MODE)
}

/// Replaces the key and certificate with a renewed pair (see the module documentation).
pub(super) fn commit_renewal(dir: &Path, key_pem: &str, cert_pem: &str) -> Result<(), AgentError> {
    write_atomically(&dir.join(KEY_NEXT), key_pem.as_bytes(), KEY_MODE)?;
    write_atomically(&dir.join(CERT_NEXT), cert_pem.as_bytes(), PUBLIC_MODE)?;
    finish_renewal(dir)
}

/// Completes a committed renewal, or removes an uncommitted one.
fn finish_renewal(dir: &Path) -> Result<(), AgentError> {
    let key_next = dir.join(KEY_NEXT);
    let cert_next = dir.join(CERT_NEXT);
    if !cert_next.exists() {
        return remove_if_present(&key_next);
    }
    // The key goes first: if a crash follows, `cert.next.pem` still marks the swap unfinished,
    // and `key.next.pem` is gone because it is already in place.
    if key_next.exists() {
        fs::rename(&key_next, dir.join(KEY)).map_err(io_error(&key_next))?;
    }
    fs::rename(&cert_next, dir.join(CERT)).map_err(io_error(&cert_next))?;
    sync_dir(dir)
}

/// Writes a file atomically with `mode` (see [`crate::fsutil::write_atomically`]).
pub(super) fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), AgentError> {
    Ok(crate::fsutil::write_atomically(path, contents, mode)?)
}

fn sync_dir(dir: &Path) -> Result<(), AgentError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

fn remove_if_present(path: &Path) -> Result<(), AgentError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path)(e)),
    }
}

fn read(dir: &Path, path: &Path) -> Result<String, AgentError> {
    fs::read_to_string(path).map_err(|e| missing(dir, path, e))
}

/// A file of the identity that cannot be read: missing is a broken directory (state without
/// key), anything else an IO error.
fn missing(dir: &Path, path: &Path, e: io::Error) -> AgentError {
    if e.kind() == io::ErrorKind::NotFound {
        AgentError::State(format!(
            "{} is missing from the agent state in {}; register again with `satellite agent \
             register --force`",
            path.file_name()
                .map_or_else(Default::default, |n| n.to_string_lossy()),
            dir.display()
        ))
    } else {
        io_error(path)(e)
    }
}

pub(super) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> AgentError + '_ {
    move |source| AgentError::Io {
        path: PathBuf::from(path),
        source,
    }
}
