//! Sync messages between a satellite and its upstream (SPEC §8), and signed license files for
//! disconnected satellites: the wire types, the signed envelope, and the checks a received file
//! must pass before anything in it is believed.
//!
//! The same bytes travel over the network and across an air gap on a USB stick, so every message
//! is a self-contained, human-readable JSON file that a security officer can read before it
//! crosses. This module is pure: apart from the key-file helpers in [`key`] it does no IO, and
//! the current time is a parameter.
//!
//! # Messages
//!
//! - [`SyncRequest`] (child → upstream): the child's registrations, removals, usage snapshots
//!   and relayed Cisco RUM reports since the upstream last acknowledged it.
//! - [`SyncResponse`] (upstream → child): acknowledgements, the license pools of the Virtual
//!   Accounts dedicated to the child, device removals and certificate revocations ordered upstream.
//! - [`LicenseFile`] (any trusted issuer → disconnected satellite): licenses for `license import`.
//!
//! Each is wrapped in an [`Envelope`] naming the format, the kind of message and the signing key,
//! and signed with Ed25519 over the canonical encoding of its body (see [`envelope`]).
//!
//! # Sequence rules
//!
//! - Each side numbers the sync messages it sends, per peer: 1, 2, 3, … (`seq`). License files
//!   carry no sequence number; the importer remembers their `file_id` instead.
//! - A receiver applies `seq = last + 1` only, where `last` is the highest sequence number it has
//!   applied from that sender (0 when none). `seq ≤ last` is [`SyncError::Replayed`]: the message
//!   was already applied, and the caller answers it as a no-op (applying is idempotent).
//!   `seq > last + 1` is [`SyncError::OutOfOrder`]: a message was skipped and must be applied
//!   first.
//! - **A numbered message is immutable.** A sender keeps the last message it sent and, until it
//!   is acknowledged, sends that same message again rather than numbering a new one. The child
//!   therefore has at most one request outstanding; new changes wait for the next number, so an
//!   acknowledgement always covers exactly the changes of the message it names.
//! - The child's request carries `ack_upstream_seq`, the last response it applied; the
//!   upstream's response carries `acks`, the request numbers it applied. When the upstream sees
//!   a request it already applied (`Replayed`), it sends again the response it produced for it,
//!   so a lost response is recovered by re-sending the request.
//! - When a request's `ack_upstream_seq` is behind the last response the upstream sent (the
//!   child lost it, or was restored from a backup), the upstream numbers its next response
//!   `ack_upstream_seq + 1` and sends full pools, so the child can apply it.
//! - A message older than the receiver's `max_age`, or dated further in the future than its
//!   clock-skew allowance, is refused even if its number fits: a file carried across the air gap
//!   must not sit on a desk for months and then take effect.
//!
//! # Order of checks
//!
//! [`open`] checks, in this order: size → JSON syntax and truncation → format version → kind →
//! structure → signer pinned → signature → sender name → recipient → sequence → freshness. So a
//! file that is not authenticated never gets an answer about sequence numbers or freshness,
//! and nothing in a body is believed before its signature verifies.

pub mod envelope;
pub mod key;
pub mod messages;
mod rfc3339;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use envelope::{Envelope, SignError, SyncError, VerifyCtx, open, peek_kind, sign};
pub use key::{KeyError, PublicKeyId, SatelliteKey, TrustedKeys, TrustedPeer, parse_public_key};
pub use messages::{
    Change, CiscoAckLine, LicenseFile, LicenseGrant, LicenseKind, LicenseLine, PoolSnapshot,
    Removal, Revocation, SyncRequest, SyncResponse,
};

/// The time types of this API, re-exported so a client such as the fuzz crate needs no direct
/// dependency on `time` (and cannot pick a different version of it).
pub use time::{Duration, OffsetDateTime};

/// A reasonable `max_age` for a file carried across an air gap: long enough for paperwork,
/// short enough that a forgotten file cannot take effect months later.
pub const DEFAULT_MAX_AGE: Duration = Duration::days(30);

/// A reasonable `max_skew`: how far a sender's clock may be ahead of ours.
pub const DEFAULT_MAX_SKEW: Duration = Duration::minutes(5);

/// The format version this binary writes and the newest it reads. A file with a higher number
/// is refused with [`SyncError::FormatFromTheFuture`] before its body is parsed.
/// Format 2 added Cisco ACKs to responses; a message that needs nothing of format 2 is still
/// written in format 1 ([`Signed::format`]), so an older satellite reads it.
pub const FORMAT: u32 = 2;

/// The largest file [`open`] reads. Generous: a full request for 100 000 devices with their
/// usage is well under it; anything larger was not written by a satellite.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Longest satellite id, VA reference, instance id or entitlement tag accepted on the wire.
pub const MAX_ID_BYTES: usize = 512;

/// Longest free text (display names, host names, reasons) accepted on the wire.
pub const MAX_TEXT_BYTES: usize = 1024;

/// Longest relayed RUM report (`raw`), the Cisco JSON kept byte for byte.
pub const MAX_RAW_BYTES: usize = 1024 * 1024;

/// The name of a satellite as its peers know it (chosen at binding time). Printed in files so a
/// reader can tell who wrote a message and for whom.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SatelliteId(pub String);

impl SatelliteId {
    pub fn new(id: impl Into<String>) -> Self {
        SatelliteId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SatelliteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a signed file holds. Bound into the signature, so a signed message of one kind can
/// never be passed off as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SyncRequest,
    SyncResponse,
    LicenseFile,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SyncRequest => "sync_request",
            Kind::SyncResponse => "sync_response",
            Kind::LicenseFile => "license_file",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient<'a> {
    /// One satellite, by id (sync messages).
    Satellite(&'a SatelliteId),
    /// Whichever satellite holds this Smart Account, by domain (license files).
    Account(&'a str),
}

/// A message body that can be signed and opened. Implemented by the three message types; the
/// methods give [`open`] what it checks after the signature verifies.
pub trait Signed: Serialize + serde::de::DeserializeOwned {
    /// The envelope `kind` of this message.
    const KIND: Kind;
    /// The satellite or issuer that wrote the message; must be the name pinned with the key.
    fn sender(&self) -> &SatelliteId;
    /// Who the message is for.
    fn recipient(&self) -> Recipient<'_>;
    /// The sender's sequence number, if the message is sequenced.
    fn seq(&self) -> Option<u64>;
    /// When the sender wrote the message.
    fn created_at(&self) -> OffsetDateTime;
    /// Bounds and consistency rules serde cannot express. The message says what is wrong.
    fn validate(&self) -> Result<(), String>;
    /// The oldest format that can carry this message, which it is written in: a satellite of
    /// an older version reads every message that needs nothing newer, and refuses the others
    /// cleanly, naming both versions, before anything is applied.
    fn format(&self) -> u32 {
        1
    }
}
