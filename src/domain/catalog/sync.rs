//! The sync area of the catalog: the records sync keeps on both sides (the child's binding and
//! acknowledged items, the upstream's children and what they reported) and their indexes. The
//! records are stored (`store::tables`), so their shape is pinned by golden-bytes tests. Only
//! this file changes the area, so the units granted per pool are always the sum of the
//! children's usage.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Removable, Stored};
use crate::domain::catalog::Catalog;
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

/// Both sides of sync. Read by the other domain files; changed only here.
#[derive(Clone, Debug, Default)]
pub struct SyncIndex {
    /// Child side: the binding to the upstream and what it acknowledged, by the stored text
    /// of each item's `OutboxKey`.
    pub binding: Option<UpstreamBinding>,
    pub synced: HashMap<String, [u8; 32]>,
    /// Upstream side: children, their devices, usage and relayed RUM reports.
    pub child_sats: BTreeMap<String, ChildSatellite>,
    pub remote_instances: BTreeMap<String, RemoteInstance>,
    pub remote_usage: BTreeMap<String, RemoteUsage>,
    /// Units granted by children per (VA, tag), for pools and compliance.
    pub remote_usage_by_pool: HashMap<(VaId, String), u64>,
    pub relayed_rum: HashMap<String, RelayedRum>,
}

impl SyncIndex {
    fn put_usage(&mut self, u: RemoteUsage) {
        let key = RemoteUsage::key(&u.child, u.va, &u.tag);
        self.take_usage(&key);
        // Bounded by `check_remote_total`; saturating only for records stored before the
        // bound existed.
        let total = self
            .remote_usage_by_pool
            .entry((u.va, u.tag.clone()))
            .or_default();
        *total = total.saturating_add(u.units_granted);
        self.remote_usage.insert(key, u);
    }

    fn take_usage(&mut self, key: &str) {
        if let Some(u) = self.remote_usage.remove(key) {
            let pool = (u.va, u.tag);
            if let Some(total) = self.remote_usage_by_pool.get_mut(&pool) {
                *total = total.saturating_sub(u.units_granted);
                if *total == 0 {
                    self.remote_usage_by_pool.remove(&pool);
                }
            }
        }
    }
}

impl Stored for UpstreamBinding {
    fn put(self, c: &mut Catalog) {
        c.sync.binding = Some(self);
    }
}

impl Stored for SyncedItem {
    fn put(self, c: &mut Catalog) {
        c.sync.synced.insert(self.key, self.digest);
    }
}

impl Removable for SyncedItem {
    type Key = String;
    fn take(key: String, c: &mut Catalog) {
        c.sync.synced.remove(&key);
    }
}

impl Stored for ChildSatellite {
    fn put(self, c: &mut Catalog) {
        c.sync.child_sats.insert(self.name.clone(), self);
    }
}

impl Removable for ChildSatellite {
    type Key = String;
    fn take(name: String, c: &mut Catalog) {
        c.sync.child_sats.remove(&name);
    }
}

impl Stored for RemoteInstance {
    fn put(self, c: &mut Catalog) {
        let key = RemoteInstance::key(&self.child, &self.id);
        c.sync.remote_instances.insert(key, self);
    }
}

impl Removable for RemoteInstance {
    type Key = String;
    fn take(key: String, c: &mut Catalog) {
        c.sync.remote_instances.remove(&key);
    }
}

impl Stored for RemoteUsage {
    fn put(self, c: &mut Catalog) {
        c.sync.put_usage(self);
    }
}

impl Removable for RemoteUsage {
    type Key = String;
    fn take(key: String, c: &mut Catalog) {
        c.sync.take_usage(&key);
    }
}

impl Stored for RelayedRum {
    fn put(self, c: &mut Catalog) {
        let holder = super::ReportHolder::Child(self.child.clone());
        c.cisco
            .hold(&self.udi, self.report_id, holder, self.received_at);
        let key = RelayedRum::key(&self.child, &self.udi.serial, self.report_id);
        c.sync.relayed_rum.insert(key, self);
    }
}
