//! The three codes of license reservation (SPEC §8b), carried by hand between a device that
//! can reach nothing and the satellite: single lines of text, no spaces, safe to paste.
//!
//! - **Request** `SRQ1-<base64url(JSON)>`: the device's UDI, the entitlements it wants and a
//!   random nonce. Not signed: the operator decides whether to act on it.
//! - **Authorization** `SAC1-<base64url(body JSON)>.<hex Ed25519 signature>`: what the
//!   satellite reserved, signed with its key over [`AUTHORIZATION_CONTEXT`] followed by the
//!   body bytes exactly as encoded. The body names the signing key (id and public key), so a
//!   device verifies it offline; pinning the key id (`--trust-key`) makes that verification
//!   mean "from my satellite" rather than "from some satellite".
//! - **Return** `SRT1-<base64url(JSON)>`: the device gave the authorization up. Its `proof` is
//!   the hex SHA-256 of [`RETURN_CONTEXT`] followed by the authorization code, which only a
//!   holder of the code can compute; the satellite keeps a hash of the expected proof.
//!
//! Everything here is pure (no IO, no clock). `docs/reservation.md` is the reference.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::device::Udi;
use super::sync::key::{hex, unhex};
use super::sync::{PublicKeyId, SatelliteKey, parse_public_key};
use crate::domain::MAX_UNITS;

pub const REQUEST_PREFIX: &str = "SRQ1-";
pub const AUTHORIZATION_PREFIX: &str = "SAC1-";
pub const RETURN_PREFIX: &str = "SRT1-";
/// What an authorization signature covers before the body bytes.
pub const AUTHORIZATION_CONTEXT: &[u8] = b"satellite-reservation v1\n";
/// What a return proof hashes before the authorization code.
pub const RETURN_CONTEXT: &[u8] = b"satellite-reservation-return v1\n";
/// No code is longer than this (64 entitlements of 512-character tags fit).
pub const MAX_CODE_LEN: usize = 64 * 1024;

/// Why a code was refused. Nothing in a refused code is believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("the {what} is empty")]
    Empty { what: &'static str },
    #[error("the {what} is {len} characters long, more than the {max} a code can have")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// Another kind of code, or no code at all.
    #[error("not a {what}: it should start with `{expected}`{found}")]
    WrongPrefix {
        what: &'static str,
        expected: &'static str,
        found: String,
    },
    /// Not base64url, not JSON, or cut short.
    #[error("the {what} is damaged or truncated ({reason}); copy it again, whole")]
    Damaged { what: &'static str, reason: String },
    /// Decodes, but a field is unusable.
    #[error("the {what} is not valid: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// The signature does not verify with the key the code names.
    #[error(
        "bad signature: the authorization code was altered after it was signed, or was not \
         signed by the key it names"
    )]
    BadSignature,
    /// Signed by a key other than the one the device was told to trust.
    #[error(
        "the authorization code is signed by key {found}, not by the trusted key {expected}; \
         it does not come from the satellite you trust"
    )]
    UntrustedKey { expected: String, found: String },
}

impl CodeError {
    fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        CodeError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// One wanted or reserved entitlement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlement {
    pub tag: String,
    pub count: u64,
}

/// A device's reservation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestCode {
    pub udi: Udi,
    pub entitlements: Vec<Entitlement>,
    /// Random, chosen by the device; the authorization echoes it so the device knows the
    /// answer is to this request.
    pub nonce: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The signed body of an authorization code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    pub reservation_id: String,
    pub udi: Udi,
    /// The Smart Account domain.
    pub account: String,
    /// The VA path the units are reserved in.
    pub va: String,
    pub entitlements: Vec<Entitlement>,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    pub request_nonce: String,
    /// The signer's key id (hex SHA-256 of the public key).
    pub key_id: String,
    /// The signer's Ed25519 public key, 64 hex digits.
    pub public_key: String,
}

/// A device's return of its authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnCode {
    pub reservation_id: String,
    pub udi: Udi,
    #[serde(with = "time::serde::rfc3339")]
    pub returned_at: OffsetDateTime,
    /// [`return_proof`] of the authorization code.
    pub proof: String,
}

const REQUEST: &str = "reservation request code";
const AUTHORIZATION: &str = "authorization code";
const RETURN: &str = "return code";

impl RequestCode {
    pub fn encode(&self) -> String {
        format!("{REQUEST_PREFIX}{}", b64_encode(&to_json(self)))
    }

    pub fn decode(code: &str) -> Result<Self, CodeError> {
        let payload = strip(code, REQUEST, REQUEST_PREFIX)?;
        let r: RequestCode = from_json(REQUEST, &b64_decode(REQUEST, &payload)?)?;
        check_udi(REQUEST, &r.udi)?;
        check_entitlements(REQUEST, &r.entitlements)?;
        if r.nonce.is_empty() || r.nonce.len() > 128 {
            return Err(CodeError::invalid(
                REQUEST,
                "the nonce must be 1 to 128 characters",
            ));
        }
        Ok(r)
    }
}

impl ReturnCode {
    pub fn encode(&self) -> String {
        format!("{RETURN_PREFIX}{}", b64_encode(&to_json(self)))
    }

    pub fn decode(code: &str) -> Result<Self, CodeError> {
        let payload = strip(code, RETURN, RETURN_PREFIX)?;
        let r: ReturnCode = from_json(RETURN, &b64_decode(RETURN, &payload)?)?;
        check_udi(RETURN, &r.udi)?;
        if r.reservation_id.is_empty() || r.reservation_id.len() > 128 {
            return Err(CodeError::invalid(RETURN, "no reservation id"));
        }
        proof_bytes(&r.proof)
            .ok_or_else(|| CodeError::invalid(RETURN, "the proof is not 64 hex digits"))?;
        Ok(r)
    }

    /// The proof as bytes (checked by [`ReturnCode::decode`]).
    pub fn proof_bytes(&self) -> Option<[u8; 32]> {
        proof_bytes(&self.proof)
    }

    /// The value to compare with [`return_check`] of the authorization code.
    pub fn check(&self) -> [u8; 32] {
        sha256(&self.proof_bytes().unwrap_or_default())
    }
}

fn proof_bytes(proof: &str) -> Option<[u8; 32]> {
    unhex(proof).and_then(|b| b.try_into().ok())
}

/// Signs `body` with `key` and returns the authorization code. The body's `key_id` and
/// `public_key` are set from `key`.
pub fn sign_authorization(key: &SatelliteKey, mut body: Authorization) -> String {
    body.key_id = key.id().to_string();
    body.public_key = key.public_key_hex();
    body.entitlements.sort();
    let bytes = to_json(&body);
    let signature = key.sign(&signing_input(&bytes));
    format!(
        "{AUTHORIZATION_PREFIX}{}.{}",
        b64_encode(&bytes),
        hex(&signature.to_bytes())
    )
}

/// Verifies an authorization code offline: the signature with the public key the code names,
/// and, with `trust_key`, that this key is the pinned one.
pub fn open_authorization(code: &str, trust_key: Option<&str>) -> Result<Authorization, CodeError> {
    let payload = strip(code, AUTHORIZATION, AUTHORIZATION_PREFIX)?;
    let Some((body_b64, signature_hex)) = payload.split_once('.') else {
        return Err(CodeError::Damaged {
            what: AUTHORIZATION,
            reason: "it has no signature part".into(),
        });
    };
    let bytes = b64_decode(AUTHORIZATION, body_b64)?;
    let signature: [u8; 64] = unhex(signature_hex)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CodeError::Damaged {
            what: AUTHORIZATION,
            reason: "the signature is not 128 hex digits".into(),
        })?;
    // Only the signer is read before the signature verifies; the body is believed after.
    #[derive(Deserialize)]
    struct Signer {
        key_id: String,
        public_key: String,
    }
    let signer: Signer = from_json(AUTHORIZATION, &bytes).map_err(|e| match e {
        CodeError::Invalid { .. } => CodeError::BadSignature,
        other => other,
    })?;
    let key = parse_public_key(&signer.public_key).map_err(|_| CodeError::BadSignature)?;
    if PublicKeyId::of(&key).as_str() != signer.key_id {
        return Err(CodeError::BadSignature);
    }
    if let Some(expected) = trust_key {
        let expected = expected.trim().to_ascii_lowercase();
        if expected != signer.key_id {
            return Err(CodeError::UntrustedKey {
                expected,
                found: signer.key_id,
            });
        }
    }
    let signature = ed25519_dalek::Signature::from_bytes(&signature);
    key.verify_strict(&signing_input(&bytes), &signature)
        .map_err(|_| CodeError::BadSignature)?;
    let body: Authorization = from_json(AUTHORIZATION, &bytes)?;
    check_udi(AUTHORIZATION, &body.udi)?;
    check_entitlements(AUTHORIZATION, &body.entitlements)?;
    Ok(body)
}

/// The hex proof a return code carries for `authorization_code`.
pub fn return_proof(authorization_code: &str) -> String {
    hex(&raw_proof(authorization_code))
}

/// What the satellite keeps to check a later return of `authorization_code`: the SHA-256 of
/// the proof's bytes (so the stored value alone does not let anyone forge a return).
pub fn return_check(authorization_code: &str) -> [u8; 32] {
    sha256(&raw_proof(authorization_code))
}

fn raw_proof(authorization_code: &str) -> [u8; 32] {
    let mut input = RETURN_CONTEXT.to_vec();
    input.extend_from_slice(normalize(authorization_code).as_bytes());
    sha256(&input)
}

/// SHA-256 of `bytes`: the one implementation outside the domain (secrets at rest hash with it
/// too, see `app::secrets::hash`).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A code as pasted, without the whitespace a terminal or an e-mail may have added.
pub fn normalize(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut input = AUTHORIZATION_CONTEXT.to_vec();
    input.extend_from_slice(body);
    input
}

/// Checks the length and prefix of a code and returns what follows the prefix.
fn strip(code: &str, what: &'static str, prefix: &'static str) -> Result<String, CodeError> {
    let code = normalize(code);
    if code.is_empty() {
        return Err(CodeError::Empty { what });
    }
    if code.len() > MAX_CODE_LEN {
        return Err(CodeError::TooLong {
            what,
            len: code.len(),
            max: MAX_CODE_LEN,
        });
    }
    match code.strip_prefix(prefix) {
        Some(rest) => Ok(rest.to_string()),
        None => {
            let other = [
                (REQUEST_PREFIX, REQUEST),
                (AUTHORIZATION_PREFIX, AUTHORIZATION),
                (RETURN_PREFIX, RETURN),
            ]
            .into_iter()
            .find(|(p, _)| code.starts_with(p));
            let found = match other {
                Some((_, name)) => format!("; this is a {name}"),
                None => {
                    let head: String = code.chars().take(5).collect();
                    format!(", not `{head}`")
                }
            };
            Err(CodeError::WrongPrefix {
                what,
                expected: prefix,
                found,
            })
        }
    }
}

fn check_udi(what: &'static str, udi: &Udi) -> Result<(), CodeError> {
    for (name, v) in [("product id", &udi.pid), ("serial number", &udi.serial)] {
        if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) {
            return Err(CodeError::invalid(
                what,
                format!("the UDI {name} must be 1 to 128 characters"),
            ));
        }
    }
    Ok(())
}

fn check_entitlements(what: &'static str, list: &[Entitlement]) -> Result<(), CodeError> {
    if list.is_empty() {
        return Err(CodeError::invalid(what, "it names no entitlement"));
    }
    for (i, e) in list.iter().enumerate() {
        if e.tag.is_empty() || e.count == 0 {
            return Err(CodeError::invalid(
                what,
                format!(
                    "entitlement {} needs a tag and a count of at least 1",
                    i + 1
                ),
            ));
        }
        if e.count > MAX_UNITS {
            return Err(CodeError::invalid(
                what,
                format!(
                    "entitlement `{}` asks for {} units, more than the maximum of {MAX_UNITS}",
                    e.tag, e.count
                ),
            ));
        }
        if list[..i].iter().any(|x| x.tag == e.tag) {
            return Err(CodeError::invalid(
                what,
                format!("entitlement `{}` appears twice", e.tag),
            ));
        }
    }
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn from_json<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodeError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() || e.is_syntax() {
            CodeError::Damaged {
                what,
                reason: "its content is not complete JSON".into(),
            }
        } else {
            CodeError::invalid(what, e.to_string())
        }
    })
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5).
pub fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn b64_decode(what: &'static str, text: &str) -> Result<Vec<u8>, CodeError> {
    let damaged = |reason: &str| CodeError::Damaged {
        what,
        reason: reason.into(),
    };
    if text.len() % 4 == 1 {
        return Err(damaged("its length is impossible for base64url"));
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = B64
                .iter()
                .position(|x| x == c)
                .ok_or_else(|| damaged("it holds a character that is not base64url"))?;
            n |= (v as u32) << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
