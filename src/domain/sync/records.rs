//! The records sync keeps on both sides: the child's binding and acknowledged items, the
//! upstream's children and what they reported. They are stored (`store::tables`), so their
//! shape is pinned by golden-bytes tests; they import nothing of the catalog, which indexes
//! them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::ids::{AccountId, VaId};
use crate::domain::model::Udi;

/// Child side: the binding to the upstream (at most one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamBinding {
    /// This satellite's name as the upstream knows it (messages are `from` it).
    pub me: String,
    /// The upstream's name (messages are `to` it).
    pub upstream: String,
    /// The upstream's device listener, `https://host:port`.
    pub url: String,
    /// The upstream's Ed25519 public key (hex), pinned at binding.
    pub upstream_key: String,
    /// The upstream's device CA (PEM), pinned at binding through the token's fingerprint.
    pub ca_pem: String,
    pub account: AccountId,
    /// The mirrored root of the dedicated subtree.
    pub root: VaId,
    /// Its path on the upstream (`DOMAIN/Default/...`).
    pub root_path: String,
    pub bound_at: OffsetDateTime,
    /// The number the next new request gets.
    pub next_seq: u64,
    /// The request sent and not yet acknowledged: sent again, unchanged, until it is.
    pub outstanding: Option<Outstanding>,
    /// The last upstream response applied (0: none).
    pub last_response_seq: u64,
    pub last_success: Option<OffsetDateTime>,
}

/// A numbered request waiting for its acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outstanding {
    pub seq: u64,
    /// The request body as JSON (the engine re-signs it unchanged when it is re-sent).
    pub body: String,
    /// What an acknowledgement records: item key and content digest (`None`: a removal).
    pub items: Vec<(String, Option<[u8; 32]>)>,
    pub created_at: OffsetDateTime,
}

/// Child side: an item the upstream acknowledged, with the digest of what it acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedItem {
    pub key: String,
    pub digest: [u8; 32],
}

/// Upstream side: a VA subtree dedicated to a child satellite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSatellite {
    pub name: String,
    pub account: AccountId,
    pub root: VaId,
    /// SHA-256 of the satellite registration token.
    pub token_hash: [u8; 32],
    pub token_expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    /// The child's Ed25519 public key (hex), pinned at registration.
    pub key: Option<String>,
    /// Serial of the client certificate issued to the child at registration.
    pub cert_serial: Option<String>,
    pub registered_at: Option<OffsetDateTime>,
    /// The last request applied from the child (0: none).
    pub last_request_seq: u64,
    /// The number of the last response sent.
    pub response_seq: u64,
    /// That response, as sent, for a child that did not receive it.
    pub last_response: Option<String>,
    pub last_seen: Option<OffsetDateTime>,
    /// Devices the upstream ordered removed, sent until the child reports them gone.
    pub pending_removals: Vec<(String, String)>,
}

/// Upstream side: a device registered with a child (read-only here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteInstance {
    pub child: String,
    pub id: String,
    pub va: VaId,
    pub udi: Udi,
    pub hostname: String,
    pub product: String,
    pub version: String,
    pub registered_at: OffsetDateTime,
    pub received_at: OffsetDateTime,
}

/// Upstream side: a child's usage of one tag in one VA (a snapshot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteUsage {
    pub child: String,
    pub va: VaId,
    pub tag: String,
    pub devices: u64,
    pub units_requested: u64,
    pub units_granted: u64,
    pub measured_at: OffsetDateTime,
}

/// Upstream side: a Cisco RUM report relayed by a child, kept untouched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedRum {
    pub child: String,
    pub report_id: u64,
    pub udi: Udi,
    pub raw: String,
    pub received_at: OffsetDateTime,
}

impl RemoteInstance {
    pub fn key(child: &str, id: &str) -> String {
        format!("{child}\0{id}")
    }
}

impl RemoteUsage {
    pub fn key(child: &str, va: VaId, tag: &str) -> String {
        format!("{child}\0{va}\0{tag}")
    }
}

impl RelayedRum {
    pub fn key(child: &str, serial: &str, report_id: u64) -> String {
        format!("{child}\0{serial}\0{report_id}")
    }
}
