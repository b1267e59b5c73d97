//! The device side of license reservation (SPEC §8b), for a device that can reach nothing:
//! make a request code, install the authorization code the operator brings back (verified
//! offline), and give it back with a return code. No network is involved.
//!
//! Files in the agent directory, each written atomically with mode 0600:
//! - `reservation-request.json`: the pending request (its code and nonce). A new request
//!   replaces it; installing the matching authorization removes it.
//! - `reservation.json`: the installed authorization code and what it authorizes.
//! - `reservation-return.json`: the last return code, kept so it can be shown again until the
//!   operator has used it.
//!
//! A directory that also holds a registration (`state.json`) lends its UDI to the request.

use std::fs;
use std::io;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::AgentError;
use super::state::{self, io_error, write_atomically};
use crate::protocol::device::Udi;
use crate::protocol::reservation::{
    Authorization, Entitlement, RequestCode, ReturnCode, normalize, open_authorization,
    return_proof,
};

const REQUEST_FILE: &str = "reservation-request.json";
const INSTALLED_FILE: &str = "reservation.json";
const RETURN_FILE: &str = "reservation-return.json";
const FILE_MODE: u32 = 0o600;
/// Version of the three files' layout.
pub const FORMAT: u32 = 1;

/// A request made and not yet answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRequest {
    pub format: u32,
    pub code: String,
    pub request: RequestCode,
}

/// An installed, verified authorization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstalledReservation {
    pub format: u32,
    /// The authorization code exactly as installed (whitespace removed).
    pub code: String,
    pub authorization: Authorization,
    #[serde(with = "time::serde::rfc3339")]
    pub installed_at: OffsetDateTime,
}

/// The last return code made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReturnedReservation {
    pub format: u32,
    pub code: String,
    #[serde(rename = "return")]
    pub returned: ReturnCode,
}

/// The UDI of the registration in `dir`, if there is one.
pub fn configured_udi(dir: &Path) -> Result<Option<Udi>, AgentError> {
    match fs::read(dir.join(state::STATE)) {
        Ok(text) => Ok(state::decode_state(&text).ok().map(|s| s.udi)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&dir.join(state::STATE))(e)),
    }
}

/// Makes a request code for `udi` and remembers it as the pending request (replacing an
/// earlier one). Refused while an authorization is installed: one reservation per device.
pub fn request(
    dir: &Path,
    udi: Udi,
    entitlements: Vec<Entitlement>,
    now: OffsetDateTime,
) -> Result<PendingRequest, AgentError> {
    if let Some(held) = installed(dir)? {
        return Err(AgentError::State(format!(
            "this device already holds reservation {}; give it back first with `satellite \
             agent reserve-return`",
            held.authorization.reservation_id
        )));
    }
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)
        .map_err(|e| AgentError::State(format!("no random source for the nonce: {e}")))?;
    let request = RequestCode {
        udi,
        entitlements,
        nonce: crate::protocol::sync::key::hex(&nonce),
        created_at: now,
    };
    let code = request.encode();
    // The code must be one the satellite accepts; checking here names the problem on the
    // device, where it can be fixed.
    RequestCode::decode(&code).map_err(|e| AgentError::Invalid(e.to_string()))?;
    let pending = PendingRequest {
        format: FORMAT,
        code,
        request,
    };
    state::create_dir(dir)?;
    save(dir, REQUEST_FILE, &pending)?;
    Ok(pending)
}

/// Verifies and installs an authorization code: the signature (and, with `trust_key`, the
/// signer), then that it answers this device's pending request.
pub fn install(
    dir: &Path,
    code: &str,
    trust_key: Option<&str>,
    now: OffsetDateTime,
) -> Result<InstalledReservation, AgentError> {
    let code = normalize(code);
    let authorization =
        open_authorization(&code, trust_key).map_err(|e| AgentError::Invalid(e.to_string()))?;
    if let Some(held) = installed(dir)? {
        if held.code == code {
            return Ok(held);
        }
        return Err(AgentError::State(format!(
            "this device already holds reservation {}; give it back first with `satellite \
             agent reserve-return`",
            held.authorization.reservation_id
        )));
    }
    let pending: PendingRequest = load(dir, REQUEST_FILE)?.ok_or_else(|| {
        AgentError::State(format!(
            "no pending reservation request in {}; this authorization code answers a request \
             made elsewhere (or was already installed and returned)",
            dir.display()
        ))
    })?;
    let mine = &pending.request.udi;
    let theirs = &authorization.udi;
    if mine != theirs {
        return Err(AgentError::Invalid(format!(
            "this authorization code is for device {}:{}, but this device is {}:{}; install it \
             on that device",
            theirs.pid, theirs.serial, mine.pid, mine.serial
        )));
    }
    if authorization.request_nonce != pending.request.nonce {
        return Err(AgentError::Invalid(format!(
            "this authorization code answers another request (nonce {}), not this device's \
             pending request (nonce {}); ask the operator to reserve with the latest request \
             code",
            authorization.request_nonce, pending.request.nonce
        )));
    }
    let installed = InstalledReservation {
        format: FORMAT,
        code,
        authorization,
        installed_at: now,
    };
    save(dir, INSTALLED_FILE, &installed)?;
    remove(&dir.join(REQUEST_FILE))?;
    Ok(installed)
}

/// The installed authorization, if any.
pub fn installed(dir: &Path) -> Result<Option<InstalledReservation>, AgentError> {
    load(dir, INSTALLED_FILE)
}

/// The pending request, if any.
pub fn pending(dir: &Path) -> Result<Option<PendingRequest>, AgentError> {
    load(dir, REQUEST_FILE)
}

/// The last return code made, if any.
pub fn last_return(dir: &Path) -> Result<Option<ReturnedReservation>, AgentError> {
    load(dir, RETURN_FILE)
}

/// Gives the installed authorization back: removes it and returns the return code, which is
/// also kept in the directory until the next return.
pub fn give_back(dir: &Path, now: OffsetDateTime) -> Result<ReturnedReservation, AgentError> {
    let held = installed(dir)?.ok_or_else(|| {
        AgentError::State(format!(
            "no reservation is installed in {}; nothing to return",
            dir.display()
        ))
    })?;
    let returned = ReturnCode {
        reservation_id: held.authorization.reservation_id.clone(),
        udi: held.authorization.udi.clone(),
        returned_at: now,
        proof: return_proof(&held.code),
    };
    let out = ReturnedReservation {
        format: FORMAT,
        code: returned.encode(),
        returned,
    };
    // The return code is on disk before the authorization goes, so a crash in between leaves
    // the device still holding it, never holding nothing and unable to prove the return.
    save(dir, RETURN_FILE, &out)?;
    remove(&dir.join(INSTALLED_FILE))?;
    Ok(out)
}

fn save<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), AgentError> {
    let mut text = serde_json::to_vec_pretty(value)
        .map_err(|e| AgentError::State(format!("cannot encode {name}: {e}")))?;
    text.push(b'\n');
    write_atomically(&dir.join(name), &text, FILE_MODE)
}

fn load<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>, AgentError> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(text) => serde_json::from_slice(&text).map(Some).map_err(|e| {
            AgentError::State(format!(
                "{} is damaged ({e}); remove it and start over",
                path.display()
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path)(e)),
    }
}

fn remove(path: &Path) -> Result<(), AgentError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path)(e)),
    }
}
