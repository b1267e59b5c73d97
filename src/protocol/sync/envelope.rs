//! The signed envelope every sync message and license file travels in, and the checks a
//! received file goes through ([`open`]).
//!
//! On disk and on the wire a file is pretty-printed JSON:
//!
//! ```text
//! { "format": 1, "kind": "sync_request", "signer": "<key id>", "body": { … }, "signature": "<hex>" }
//! ```
//!
//! The signature is Ed25519 over the **signing input**: the ASCII line
//! `satellite-sync v<format> <kind>\n` followed by the **canonical body**, the body serialized
//! compactly by serde_json from its typed struct (fields in declaration order, no whitespace,
//! sets sorted, no floats). The prefix binds the format and the kind, which sit outside the body,
//! so neither can be changed without breaking the signature.
//!
//! A receiver never verifies the bytes it was given: it parses the body into the typed struct
//! (refusing unknown fields), serializes that canonically and verifies the result. Whatever was
//! changed in a signed part — a value, an added field, a reordering — either fails to parse or
//! yields bytes the signer never signed; whitespace and key order in the file do not matter,
//! only the meaning does.

use std::fmt;

use ed25519_dalek::Signature;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::key::{TrustedPeer, hex, unhex};
use super::{FORMAT, Kind, MAX_FILE_BYTES, Recipient, SatelliteId, SatelliteKey, Signed};
use super::{PublicKeyId, TrustedKeys};

/// A signed message as written to a file or sent over the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    pub format: u32,
    pub kind: Kind,
    /// The [`PublicKeyId`] of the key that signed the body.
    pub signer: PublicKeyId,
    pub body: T,
    /// Ed25519 signature over the signing input, 128 lowercase hex digits.
    pub signature: String,
}

impl<T: Serialize> Envelope<T> {
    /// The file: pretty-printed JSON ending with a newline.
    pub fn to_json(&self) -> Result<Vec<u8>, SignError> {
        let mut out =
            serde_json::to_vec_pretty(self).map_err(|err| SignError::Encode(err.to_string()))?;
        out.push(b'\n');
        Ok(out)
    }
}

/// Why a message could not be signed: a bug in the caller, never a property of the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The body breaks a rule the receiver would refuse it for.
    #[error("cannot sign this {kind}: {reason}")]
    Invalid { kind: Kind, reason: String },
    /// The body cannot be serialized (a date outside years 0–9999).
    #[error("cannot encode the message: {0}")]
    Encode(String),
}

/// What a receiver checks a file against. Built per call by the caller, which owns the state.
#[derive(Clone, Copy)]
pub struct VerifyCtx<'a, L = fn(&SatelliteId) -> Option<u64>> {
    /// This satellite's id: sync messages must be addressed to it.
    pub me: &'a SatelliteId,
    /// Domains of the accounts this satellite holds: license files must name one of them.
    pub accounts: &'a [String],
    /// The pinned keys files are accepted from.
    pub trusted: &'a TrustedKeys,
    /// The highest sequence number applied from a sender, `None` if none yet.
    pub last_seq: L,
    pub now: OffsetDateTime,
    /// Files created longer ago than this are stale.
    pub max_age: Duration,
    /// How far a sender's clock may be ahead of ours.
    pub max_skew: Duration,
}

impl<L> fmt::Debug for VerifyCtx<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyCtx")
            .field("me", self.me)
            .field("accounts", &self.accounts)
            .field("trusted", self.trusted)
            .field("now", &self.now)
            .field("max_age", &self.max_age)
            .field("max_skew", &self.max_skew)
            .finish_non_exhaustive()
    }
}

/// Why a received file was refused. Each message says what was wrong and what to do; callers
/// branch on the variant (`Replayed` means "already applied": answer it as a no-op).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error(
        "the file is {size} bytes, more than the {max} bytes a sync file may have; \
         it was not written by a satellite"
    )]
    TooLarge { size: usize, max: usize },
    #[error(
        "the file ends early (line {line}, column {column}): it was cut off while being copied; \
         copy it again from the original"
    )]
    Truncated { line: usize, column: usize },
    #[error("the file is not a valid sync file: {0}")]
    Malformed(String),
    #[error(
        "the file has format {found}, newer than this satellite understands (format \
         {supported}); upgrade this satellite, or have the sender use the same version"
    )]
    FormatFromTheFuture { found: u64, supported: u32 },
    #[error(
        "this is a {found} file, but a {expected} was expected; check which file you passed \
         to which command"
    )]
    WrongKind { expected: Kind, found: String },
    #[error(
        "the file is signed by key {signer}, which is not pinned here; if you trust its \
         sender, pin that key first"
    )]
    UnknownSender { signer: PublicKeyId },
    #[error(
        "the signature does not verify: the file was modified after it was signed, or signed \
         by another key; get a fresh copy from the sender"
    )]
    BadSignature,
    #[error(
        "the file claims to come from `{claimed}` but is signed with the key pinned for \
         `{pinned}`; refuse it and tell the owner of `{pinned}`"
    )]
    SenderMismatch {
        claimed: SatelliteId,
        pinned: SatelliteId,
    },
    #[error("the file is addressed to satellite `{to}`, but this is `{me}`: it belongs elsewhere")]
    WrongRecipient { to: SatelliteId, me: SatelliteId },
    #[error(
        "the file is for account `{found}`, which this satellite does not hold; create or \
         restore that account first, or get the file for the right account"
    )]
    WrongAccount { found: String },
    #[error(
        "message {seq} was already applied (last applied: {last}); this file was imported \
         before, nothing to do"
    )]
    Replayed { seq: u64, last: u64 },
    #[error(
        "message {seq} is out of order: message {expected} comes first; apply the missing \
         file(s), or ask the sender to send them again"
    )]
    OutOfOrder { seq: u64, expected: u64 },
    #[error(
        "the file was created at {}, more than {} ago; it is too old to apply, ask the sender \
         for a fresh one",
        rfc3339(created_at),
        human(max_age)
    )]
    Stale {
        created_at: OffsetDateTime,
        max_age: Duration,
    },
    #[error(
        "the file was created at {}, but it is only {} here; check the clock of this \
         satellite and of the sender",
        rfc3339(created_at),
        rfc3339(now)
    )]
    CreatedInTheFuture {
        created_at: OffsetDateTime,
        now: OffsetDateTime,
    },
}

/// Signs `body` with `key`. The body is validated first, so a satellite never writes a file
/// its peer would refuse as malformed.
pub fn sign<T: Signed>(key: &SatelliteKey, body: T) -> Result<Envelope<T>, SignError> {
    body.validate().map_err(|reason| SignError::Invalid {
        kind: T::KIND,
        reason,
    })?;
    let format = body.format();
    let input = signing_input(T::KIND, format, &body).map_err(SignError::Encode)?;
    Ok(Envelope {
        format,
        kind: T::KIND,
        signer: key.id().clone(),
        body,
        signature: hex(&key.sign(&input).to_bytes()),
    })
}

/// The exact bytes the signature covers: `satellite-sync v<format> <kind>\n` + canonical body.
pub fn signing_input<T: Serialize>(kind: Kind, format: u32, body: &T) -> Result<Vec<u8>, String> {
    let mut input = format!("satellite-sync v{format} {kind}\n").into_bytes();
    serde_json::to_writer(&mut input, body).map_err(|err| err.to_string())?;
    Ok(input)
}

/// The first fields of any envelope, read leniently so a file of a newer format or another
/// kind gets that answer instead of a parse error about fields it may legitimately have.
#[derive(Deserialize)]
struct Probe {
    format: Option<u64>,
    kind: Option<String>,
}

/// Checks a received file and returns its body. The checks run in the order given in the
/// module docs, so only an authenticated file gets an answer about sequence or age.
pub fn open<T, L>(bytes: &[u8], ctx: &VerifyCtx<'_, L>) -> Result<T, SyncError>
where
    T: Signed,
    L: Fn(&SatelliteId) -> Option<u64>,
{
    let (body, peer) = authenticate::<T, L>(bytes, ctx)?;
    check_addressing(&body, peer, ctx)?;
    check_sequence(&body, ctx)?;
    check_age(&body, ctx)?;
    Ok(body)
}

/// Kind, structure and signature: the body, and the pinned peer whose key signed it.
fn authenticate<'k, T, L>(
    bytes: &[u8],
    ctx: &VerifyCtx<'k, L>,
) -> Result<(T, &'k TrustedPeer), SyncError>
where
    T: Signed,
{
    let kind = probe(bytes)?;
    if kind != T::KIND.as_str() {
        return Err(SyncError::WrongKind {
            expected: T::KIND,
            found: kind,
        });
    }
    let envelope: Envelope<T> = parse(bytes)?;
    envelope
        .body
        .validate()
        .map_err(|reason| SyncError::Malformed(format!("in the body: {reason}")))?;
    if u64::from(envelope.body.format()) > u64::from(envelope.format) {
        return Err(SyncError::Malformed(format!(
            "the body needs format {}, but the file says format {}",
            envelope.body.format(),
            envelope.format
        )));
    }
    let signature = signature(&envelope.signature)?;
    if envelope.signer.0.len() != 64 || unhex(&envelope.signer.0).is_none() {
        return Err(SyncError::Malformed(
            "`signer` must be a key id of 64 hex digits".into(),
        ));
    }

    let peer = ctx
        .trusted
        .get(&envelope.signer)
        .ok_or_else(|| SyncError::UnknownSender {
            signer: envelope.signer.clone(),
        })?;
    let input = signing_input(T::KIND, envelope.format, &envelope.body)
        .map_err(|err| SyncError::Malformed(format!("the body cannot be re-encoded: {err}")))?;
    peer.key
        .verify_strict(&input, &signature)
        .map_err(|_| SyncError::BadSignature)?;
    Ok((envelope.body, peer))
}

/// The sender is the name pinned with the key, and the file is addressed to this satellite
/// (or, for a license file, to an account it holds).
fn check_addressing<T: Signed, L>(
    body: &T,
    peer: &TrustedPeer,
    ctx: &VerifyCtx<'_, L>,
) -> Result<(), SyncError> {
    if body.sender() != &peer.name {
        return Err(SyncError::SenderMismatch {
            claimed: body.sender().clone(),
            pinned: peer.name.clone(),
        });
    }
    match body.recipient() {
        Recipient::Satellite(to) if to != ctx.me => Err(SyncError::WrongRecipient {
            to: to.clone(),
            me: ctx.me.clone(),
        }),
        Recipient::Account(domain) if !ctx.accounts.iter().any(|a| a == domain) => {
            Err(SyncError::WrongAccount {
                found: domain.to_owned(),
            })
        }
        _ => Ok(()),
    }
}

/// A numbered message is the next one from its sender: not a replay, not one skipped ahead.
fn check_sequence<T, L>(body: &T, ctx: &VerifyCtx<'_, L>) -> Result<(), SyncError>
where
    T: Signed,
    L: Fn(&SatelliteId) -> Option<u64>,
{
    let Some(seq) = body.seq() else {
        return Ok(());
    };
    let last = (ctx.last_seq)(body.sender()).unwrap_or(0);
    if seq <= last {
        return Err(SyncError::Replayed { seq, last });
    }
    if seq - last > 1 {
        return Err(SyncError::OutOfOrder {
            seq,
            expected: last + 1,
        });
    }
    Ok(())
}

/// Created neither longer ago than `max_age` nor later than the allowed clock skew.
fn check_age<T: Signed, L>(body: &T, ctx: &VerifyCtx<'_, L>) -> Result<(), SyncError> {
    let age = ctx.now - body.created_at();
    if age > ctx.max_age {
        return Err(SyncError::Stale {
            created_at: body.created_at(),
            max_age: ctx.max_age,
        });
    }
    if -age > ctx.max_skew {
        return Err(SyncError::CreatedInTheFuture {
            created_at: body.created_at(),
            now: ctx.now,
        });
    }
    Ok(())
}

/// What kind of file `bytes` holds, without verifying anything: for a CLI that wants to say
/// "this is a request, use `sync answer`". Checks size, syntax and format only.
pub fn peek_kind(bytes: &[u8]) -> Result<Kind, SyncError> {
    let kind = probe(bytes)?;
    [Kind::SyncRequest, Kind::SyncResponse, Kind::LicenseFile]
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or_else(|| SyncError::Malformed(format!("unknown kind `{kind}`")))
}

/// A file of `format` read by a satellite that reads formats up to `supported`.
pub(super) fn check_format(format: u64, supported: u32) -> Result<(), SyncError> {
    if format > u64::from(supported) {
        return Err(SyncError::FormatFromTheFuture {
            found: format,
            supported,
        });
    }
    if format == 0 {
        return Err(SyncError::Malformed("format 0 does not exist".into()));
    }
    Ok(())
}

/// Size, syntax, format: returns the envelope's `kind` text.
fn probe(bytes: &[u8]) -> Result<String, SyncError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(SyncError::TooLarge {
            size: bytes.len(),
            max: MAX_FILE_BYTES,
        });
    }
    let probe: Probe = parse(bytes)?;
    let format = probe
        .format
        .ok_or_else(|| SyncError::Malformed("the envelope has no `format`".into()))?;
    check_format(format, FORMAT)?;
    let kind = probe
        .kind
        .ok_or_else(|| SyncError::Malformed("the envelope has no `kind`".into()))?;
    if kind.len() > 64 {
        return Err(SyncError::Malformed(
            "the envelope's `kind` is too long".into(),
        ));
    }
    Ok(kind)
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SyncError> {
    serde_json::from_slice(bytes).map_err(|err| {
        if err.is_eof() {
            SyncError::Truncated {
                line: err.line(),
                column: err.column(),
            }
        } else {
            SyncError::Malformed(err.to_string())
        }
    })
}

fn signature(text: &str) -> Result<Signature, SyncError> {
    let bytes: [u8; 64] = unhex(text)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SyncError::Malformed("`signature` must be 128 hex digits".into()))?;
    Ok(Signature::from_bytes(&bytes))
}

fn rfc3339(t: &OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn human(d: &Duration) -> String {
    let secs = d.whole_seconds();
    match secs {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s => format!("{s} seconds"),
    }
}
