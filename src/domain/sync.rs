//! Upstream reconciliation (SPEC §8) as the catalog sees it: who owns what, and what a sync
//! message changes. The signed messages themselves are `protocol::sync`; the engine in
//! `crate::sync` converts between the two and does the IO.
//!
//! **Ownership.** An upstream dedicates a VA subtree to a child satellite ([`ChildSatellite`]).
//! The upstream owns the license pools and the VA structure of that subtree; the child owns the
//! product instances registered in it and their usage. So on the child, the mirrored subtree
//! ([`UpstreamBinding::root`]) refuses every license or structure edit with a message naming the
//! upstream; on the upstream, the dedicated subtree takes no registration tokens (devices
//! register with the child) and shows the child's devices and usage as read-only
//! [`RemoteInstance`] and [`RemoteUsage`] records. No field is written by both sides, so sync
//! cannot conflict.
//!
//! **The outbox is a difference, not a queue.** The child remembers, per item, what the
//! upstream has acknowledged ([`SyncedItem`]: a key and a digest of the content). What to send
//! is the difference between the current state of the dedicated subtree and that record:
//! registrations (new or changed devices), removals (acknowledged devices that are gone), usage
//! snapshots (per VA and tag, when the numbers changed) and relayed Cisco RUM reports. An
//! acknowledgement records exactly the items of the request it names, so every item crosses
//! once, whatever was retried, and the state survives restarts because it is the catalog's.
//! Tiers compose: a regional satellite relays the devices and usage its own children reported
//! as part of its own difference.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::access::{Access, Principal};
use super::catalog::{Catalog, Change, Record, Removal};
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{AccountId, InstanceId, LicenseId, VaId};
use super::model::{
    Account, AccountStatus, License, LicenseKind, LicenseSource, RevokedCertificate, Udi,
    VirtualAccount,
};
use super::units::{MAX_UNITS, check_units, sum_units};

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

/// One change a child reports, as the domain sees it (the wire type is converted at the edge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildChange {
    Registration {
        instance_id: String,
        /// VA path, `DOMAIN/Default/...` (or the account's name first).
        va: String,
        udi: Udi,
        hostname: String,
        product: String,
        version: String,
        registered_at: OffsetDateTime,
    },
    Removal {
        instance_id: String,
        reason: String,
    },
    Usage {
        va: String,
        tag: String,
        devices: u64,
        units_requested: u64,
        units_granted: u64,
        measured_at: OffsetDateTime,
    },
    /// A RUM report; `raw` is filled by the engine from the store when the child sends it.
    Rum {
        report_id: u64,
        udi: Udi,
        raw: String,
    },
}

/// One item of the child's outbox: the change, its tracking key and content digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutItem {
    pub key: String,
    /// `None` for a removal (an acknowledgement forgets the key).
    pub digest: Option<[u8; 32]>,
    pub change: ChildChange,
}

/// A license line of an upstream pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamLicense {
    pub id: LicenseId,
    pub entitlement_tag: String,
    pub display_name: String,
    pub quantity: u64,
    pub kind: LicenseKind,
    pub export_controlled: bool,
    pub order_ref: Option<String>,
    pub labels: BTreeSet<String>,
}

/// A verified upstream response, as the domain needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamResponse {
    pub seq: u64,
    pub acks: Vec<u64>,
    /// Every VA of the dedicated subtree with its whole pool (path, licenses).
    pub pools: Vec<(String, Vec<UpstreamLicense>)>,
    pub removals: Vec<(String, String)>,
    pub revocations: Vec<(String, String)>,
}

/// What binding needs from the upstream's answer to a registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindInput {
    pub me: String,
    pub upstream: String,
    pub url: String,
    pub upstream_key: String,
    pub ca_pem: String,
    pub account_name: String,
    pub account_domain: String,
    /// Path of the dedicated root on the upstream, `DOMAIN/Default/...`.
    pub root_path: String,
}

/// What applying a response did, for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub acknowledged: usize,
    pub licenses_put: usize,
    pub licenses_removed: usize,
    pub vas_created: usize,
    pub devices_removed: usize,
    pub revocations: usize,
}

/// What applying a request did, for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub registrations: usize,
    pub removals: usize,
    pub usage: usize,
    pub rum_reports: usize,
}

fn sha256(parts: &[&str]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p.as_bytes());
        ctx.update(&[0]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn validate_child_name(name: &str) -> Result<(), DomainError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(DomainError::Invalid(format!(
            "satellite name `{name}` must be 1-64 letters, digits, `-`, `_` or `.`"
        )));
    }
    Ok(())
}

impl Catalog {
    // ----- ownership -------------------------------------------------------------------------

    /// The binding to an upstream, if this satellite has one.
    pub fn upstream_binding(&self) -> Option<&UpstreamBinding> {
        self.binding.as_ref()
    }

    /// Refuses a license or structure edit of a VA whose pool the upstream owns.
    pub fn check_not_upstream_owned(&self, va: VaId) -> Result<(), DomainError> {
        match &self.binding {
            Some(b) if self.in_subtree(va, b.root) => Err(DomainError::Refused(format!(
                "virtual account `{}` is managed by upstream satellite `{}` ({}): its licenses \
                 and sub-accounts are changed there and arrive here with the next sync \
                 (`satellite sync now`); nothing was changed",
                self.va_path(va),
                b.upstream,
                b.url
            ))),
            _ => Ok(()),
        }
    }

    /// The child satellite a VA is dedicated to, if any.
    pub fn dedicated_to(&self, va: VaId) -> Option<&ChildSatellite> {
        self.child_sats
            .values()
            .find(|c| self.in_subtree(va, c.root))
    }

    /// Refuses registering devices in a VA dedicated to a child: they register with the child.
    pub fn check_not_dedicated(&self, va: VaId) -> Result<(), DomainError> {
        match self.dedicated_to(va) {
            Some(c) => Err(DomainError::Refused(format!(
                "virtual account `{}` is dedicated to child satellite `{}`: its devices register \
                 there (create the token on `{}`); nothing was changed",
                self.va_path(va),
                c.name,
                c.name
            ))),
            None => Ok(()),
        }
    }

    pub fn child_satellites(&self) -> impl Iterator<Item = &ChildSatellite> {
        self.child_sats.values()
    }

    pub fn child_satellite(&self, name: &str) -> Option<&ChildSatellite> {
        self.child_sats.get(name)
    }

    pub fn remote_instances(&self) -> impl Iterator<Item = &RemoteInstance> {
        self.remote_instances.values()
    }

    pub fn remote_usage(&self) -> impl Iterator<Item = &RemoteUsage> {
        self.remote_usage.values()
    }

    /// Units of `tag` in `va` granted to the devices of child satellites.
    pub fn remote_granted(&self, va: VaId, tag: &str) -> u64 {
        self.remote_usage_by_pool
            .get(&(va, tag.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The Cisco RUM reports children relayed, kept untouched.
    pub fn relayed_rum(&self) -> impl Iterator<Item = &RelayedRum> {
        self.relayed_rum.values()
    }

    // ----- upstream side ---------------------------------------------------------------------

    /// Dedicates the subtree of `va` to a new child satellite, with a registration token (its
    /// hash) the child uses once. System administrators only.
    pub fn add_child_satellite(
        &self,
        p: &Principal,
        name: &str,
        va: VaId,
        token_hash: [u8; 32],
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(Change, ChildSatellite), DomainError> {
        self.check_system(p)?;
        validate_child_name(name)?;
        let v = self
            .va(va)
            .ok_or_else(|| DomainError::not_found("virtual account", va))?;
        if self.child_sats.contains_key(name) {
            return Err(DomainError::Conflict(format!(
                "a child satellite named `{name}` already exists"
            )));
        }
        if let Some(c) = self
            .child_sats
            .values()
            .find(|c| self.in_subtree(va, c.root) || self.in_subtree(c.root, va))
        {
            return Err(DomainError::Conflict(format!(
                "virtual account `{}` overlaps `{}`, already dedicated to child satellite `{}`; \
                 a VA belongs to at most one child",
                self.va_path(va),
                self.va_path(c.root),
                c.name
            )));
        }
        if self.instance_count_in_subtree(va) > 0 {
            return Err(DomainError::Refused(format!(
                "virtual account `{}` has devices registered here; move or remove them before \
                 dedicating it to a child satellite",
                self.va_path(va)
            )));
        }
        let child = ChildSatellite {
            name: name.to_string(),
            account: v.account,
            root: va,
            token_hash,
            token_expires_at: expires_at,
            created_at: now,
            created_by: p.actor.clone(),
            key: None,
            cert_serial: None,
            registered_at: None,
            last_request_seq: 0,
            response_seq: 0,
            last_response: None,
            last_seen: None,
            pending_removals: Vec::new(),
        };
        let event = NewEvent::new("sync.child.create", name)
            .account(v.account)
            .va(va)
            .detail("va", self.va_path(va))
            .detail_time("token_expires_at", expires_at);
        Ok((
            Change::new(event).put(Record::ChildSatellite(child.clone())),
            child,
        ))
    }

    fn instance_count_in_subtree(&self, va: VaId) -> usize {
        self.subtree(va)
            .into_iter()
            .map(|v| self.instance_count_in(v))
            .sum()
    }

    /// The child satellite a registration token belongs to, if the token is usable by the
    /// satellite holding `key_hex`: unused, or used by that same key (a child whose binding
    /// failed on its side after the upstream answered may register again).
    pub fn child_by_token(
        &self,
        token_hash: &[u8; 32],
        key_hex: &str,
        now: OffsetDateTime,
    ) -> Result<&ChildSatellite, DomainError> {
        let child = self
            .child_sats
            .values()
            .find(|c| &c.token_hash == token_hash)
            .ok_or_else(|| {
                DomainError::Refused(
                    "the satellite registration token is not known to the upstream; check it, \
                     or create one there with `satellite sync child add`"
                        .into(),
                )
            })?;
        if child.key.as_deref().is_some_and(|k| k != key_hex) {
            return Err(DomainError::Refused(format!(
                "the satellite registration token of `{}` was already used; create a new child \
                 on the upstream to bind another satellite",
                child.name
            )));
        }
        if now >= child.token_expires_at {
            return Err(DomainError::Refused(format!(
                "the satellite registration token of `{}` expired at {}; create a new one",
                child.name, child.token_expires_at
            )));
        }
        Ok(child)
    }

    /// Pins a child's key and certificate: the token is spent.
    pub fn register_child_satellite(
        &self,
        token_hash: &[u8; 32],
        key_hex: &str,
        cert_serial: &str,
        now: OffsetDateTime,
    ) -> Result<(Change, ChildSatellite), DomainError> {
        let mut child = self.child_by_token(token_hash, key_hex, now)?.clone();
        child.key = Some(key_hex.to_string());
        child.cert_serial = Some(cert_serial.to_string());
        child.registered_at = Some(now);
        let event = NewEvent::new("sync.child.register", &child.name)
            .account(child.account)
            .va(child.root)
            .detail("key", key_hex)
            .detail("certificate_serial", cert_serial);
        Ok((
            Change::new(event).put(Record::ChildSatellite(child.clone())),
            child,
        ))
    }

    /// The VA a child's message names, which must lie in the child's subtree.
    fn child_va(&self, child: &ChildSatellite, path: &str) -> Result<VaId, DomainError> {
        self.va_by_path(child.account, path)
            .filter(|va| self.in_subtree(*va, child.root))
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "the request names virtual account `{path}`, which is not dedicated to \
                     satellite `{}`",
                    child.name
                ))
            })
    }

    /// Applies a verified request from a child and records the response produced for it.
    /// Atomic: the records, the child's sequence numbers and the stored response change
    /// together, so a retried request is answered with the same response.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_child_request(
        &self,
        name: &str,
        seq: u64,
        changes: &[ChildChange],
        response_seq: u64,
        response: String,
        now: OffsetDateTime,
    ) -> Result<(Change, Received), DomainError> {
        let mut child = self
            .child_sats
            .get(name)
            .cloned()
            .ok_or_else(|| DomainError::not_found("child satellite", name))?;
        let mut change = Change::silent();
        let mut received = Received::default();
        let mut removed: BTreeSet<&str> = BTreeSet::new();
        for c in changes {
            match c {
                ChildChange::Registration {
                    instance_id,
                    va,
                    udi,
                    hostname,
                    product,
                    version,
                    registered_at,
                } => {
                    let va = self.child_va(&child, va)?;
                    change = change.put(Record::RemoteInstance(RemoteInstance {
                        child: name.to_string(),
                        id: instance_id.clone(),
                        va,
                        udi: udi.clone(),
                        hostname: hostname.clone(),
                        product: product.clone(),
                        version: version.clone(),
                        registered_at: *registered_at,
                        received_at: now,
                    }));
                    received.registrations += 1;
                }
                ChildChange::Removal { instance_id, .. } => {
                    change = change.remove(Removal::RemoteInstance(RemoteInstance::key(
                        name,
                        instance_id,
                    )));
                    removed.insert(instance_id);
                    received.removals += 1;
                }
                ChildChange::Usage {
                    va,
                    tag,
                    devices,
                    units_requested,
                    units_granted,
                    measured_at,
                } => {
                    let va = self.child_va(&child, va)?;
                    check_child_usage(*devices, *units_requested, *units_granted)?;
                    let old = self
                        .remote_usage
                        .get(&RemoteUsage::key(name, va, tag))
                        .map_or(0, |u| u.units_granted);
                    self.check_remote_total(va, tag, old, *units_granted)?;
                    if *devices == 0 && *units_requested == 0 {
                        change =
                            change.remove(Removal::RemoteUsage(RemoteUsage::key(name, va, tag)));
                    } else {
                        change = change.put(Record::RemoteUsage(RemoteUsage {
                            child: name.to_string(),
                            va,
                            tag: tag.clone(),
                            devices: *devices,
                            units_requested: *units_requested,
                            units_granted: *units_granted,
                            measured_at: *measured_at,
                        }));
                    }
                    received.usage += 1;
                }
                ChildChange::Rum {
                    report_id,
                    udi,
                    raw,
                } => {
                    change = change.put(Record::RelayedRum(RelayedRum {
                        child: name.to_string(),
                        report_id: *report_id,
                        udi: udi.clone(),
                        raw: raw.clone(),
                        received_at: now,
                    }));
                    received.rum_reports += 1;
                }
            }
        }
        child
            .pending_removals
            .retain(|(id, _)| !removed.contains(id.as_str()));
        child.last_request_seq = seq;
        child.response_seq = response_seq;
        child.last_response = Some(response);
        child.last_seen = Some(now);
        let event = NewEvent::new("sync.request.apply", name)
            .account(child.account)
            .va(child.root)
            .detail("seq", seq)
            .detail("response_seq", response_seq)
            .detail("registrations", received.registrations)
            .detail("removals", received.removals)
            .detail("usage", received.usage)
            .detail("rum_reports", received.rum_reports);
        change.event = Some(event);
        Ok((change.put(Record::ChildSatellite(child)), received))
    }

    /// Orders the removal of a child's device; sent with every response until the child
    /// reports the device gone.
    pub fn order_remote_removal(
        &self,
        p: &Principal,
        instance_id: &str,
        reason: &str,
    ) -> Result<(Change, RemoteInstance), DomainError> {
        let remote = self
            .remote_instances
            .values()
            .find(|r| r.id == instance_id)
            .filter(|r| self.va_access(p, r.va).is_some())
            .cloned()
            .ok_or_else(|| DomainError::not_found("product instance of a child", instance_id))?;
        self.check_va(p, remote.va, Access::Write)?;
        let mut child = self
            .child_sats
            .get(&remote.child)
            .cloned()
            .ok_or_else(|| DomainError::not_found("child satellite", &remote.child))?;
        if !child
            .pending_removals
            .iter()
            .any(|(id, _)| id == instance_id)
        {
            child
                .pending_removals
                .push((instance_id.to_string(), reason.to_string()));
        }
        let event = NewEvent::new("sync.device.remove_order", instance_id)
            .account(child.account)
            .va(remote.va)
            .device(instance_id)
            .detail("child", &child.name)
            .detail("reason", reason);
        Ok((
            Change::new(event).put(Record::ChildSatellite(child)),
            remote,
        ))
    }

    /// The pools a response to `child` carries: every VA of its subtree with its licenses.
    pub fn child_pools(&self, child: &ChildSatellite) -> Vec<(String, Vec<&License>)> {
        self.subtree(child.root)
            .into_iter()
            .map(|va| {
                let mut licenses: Vec<&License> = self.licenses_in(va).collect();
                licenses.sort_by_key(|l| l.id);
                (self.domain_path(va), licenses)
            })
            .collect()
    }

    /// A VA path with the account's domain first (`example.com/Default/emea`): how sync
    /// messages name VAs, since both sides know the account by its domain.
    pub fn domain_path(&self, va: VaId) -> String {
        let path = self.va_path(va);
        let Some(v) = self.va(va) else {
            return path;
        };
        let Some(a) = self.account(v.account) else {
            return path;
        };
        match path.split_once('/') {
            Some((_, rest)) => format!("{}/{rest}", a.domain),
            None => path,
        }
    }

    // ----- child side ------------------------------------------------------------------------

    /// Binds this satellite to an upstream: creates (or adopts) the account by its domain and
    /// the path to the dedicated root. System administrators only; one upstream at most.
    pub fn bind_upstream(
        &self,
        p: &Principal,
        input: &BindInput,
        now: OffsetDateTime,
    ) -> Result<(Change, UpstreamBinding), DomainError> {
        self.check_system(p)?;
        if let Some(b) = &self.binding {
            return Err(DomainError::Conflict(format!(
                "this satellite is already bound to upstream `{}` ({}) as `{}`",
                b.upstream, b.url, b.me
            )));
        }
        let mut change = Change::silent();
        let (account, mut current) =
            match self.accounts().find(|a| a.domain == input.account_domain) {
                Some(a) => (a.id, a.default_va),
                None => {
                    if self
                        .account_by_name_or_domain(&input.account_name)
                        .is_some()
                    {
                        return Err(DomainError::Conflict(format!(
                            "an account named `{}` exists here with another domain; rename it \
                         before binding",
                            input.account_name
                        )));
                    }
                    let account = Account {
                        id: AccountId::new(),
                        name: input.account_name.clone(),
                        domain: input.account_domain.clone(),
                        status: AccountStatus::Active,
                        created_at: now,
                        default_va: VaId::new(),
                    };
                    change = change
                        .put(Record::Va(VirtualAccount {
                            id: account.default_va,
                            account: account.id,
                            name: super::DEFAULT_VA_NAME.to_string(),
                            description: String::new(),
                            parent: None,
                            created_at: now,
                        }))
                        .put(Record::Account(account.clone()));
                    (account.id, account.default_va)
                }
            };
        let segments = path_segments(&input.root_path)?;
        let mut created_here = false;
        for name in segments {
            let existing = (!created_here)
                .then(|| {
                    self.children(current)
                        .find(|v| v.name == name)
                        .map(|v| v.id)
                })
                .flatten();
            current = match existing {
                Some(id) => id,
                None => {
                    created_here = true;
                    let va = VirtualAccount {
                        id: VaId::new(),
                        account,
                        name: name.to_string(),
                        description: format!("managed by upstream {}", input.upstream),
                        parent: Some(current),
                        created_at: now,
                    };
                    let id = va.id;
                    change = change.put(Record::Va(va));
                    id
                }
            };
        }
        let binding = UpstreamBinding {
            me: input.me.clone(),
            upstream: input.upstream.clone(),
            url: input.url.clone(),
            upstream_key: input.upstream_key.clone(),
            ca_pem: input.ca_pem.clone(),
            account,
            root: current,
            root_path: input.root_path.clone(),
            bound_at: now,
            next_seq: 1,
            outstanding: None,
            last_response_seq: 0,
            last_success: None,
        };
        change.event = Some(
            NewEvent::new("sync.register", &input.upstream)
                .account(account)
                .va(current)
                .detail("url", &input.url)
                .detail("as", &input.me)
                .detail("va", &input.root_path)
                .detail("upstream_key", &input.upstream_key),
        );
        Ok((
            change.put(Record::UpstreamBinding(binding.clone())),
            binding,
        ))
    }

    /// What the upstream has not acknowledged yet, oldest kinds first (removals, registrations,
    /// usage, RUM reports), at most `max` items, and how many there are in all. RUM items carry
    /// no `raw` yet: the engine reads it from the store.
    pub fn outbox(&self, max: usize, now: OffsetDateTime) -> (Vec<OutItem>, usize) {
        let Some(b) = &self.binding else {
            return (Vec::new(), 0);
        };
        let vas = self.subtree(b.root);
        let in_tree: HashSet<VaId> = vas.iter().copied().collect();

        // Registrations: only devices whose digest differs from the acknowledged one become
        // candidates, and only the first `max` of them are materialized (at a million devices
        // a full copy of every registration would cost more than the export itself).
        enum Dev<'a> {
            Local(&'a super::model::ProductInstance),
            Remote(&'a RemoteInstance),
        }
        let mut regs: Vec<(OffsetDateTime, String, [u8; 32], Dev<'_>, VaId)> = Vec::new();
        for &va in &vas {
            let path = self.domain_path(va);
            for i in self.instances_in(va) {
                let id = i.id.to_string();
                let d = registration_digest(
                    &id,
                    &path,
                    &i.udi,
                    &i.hostname,
                    &i.product,
                    &i.version,
                    i.registered_at,
                );
                let key = format!("dev:{id}");
                if self.synced.get(&key) != Some(&d) {
                    regs.push((i.registered_at, key, d, Dev::Local(i), va));
                }
            }
        }
        // Devices of this satellite's own children, relayed up.
        let mut remote_ids: HashSet<&str> = HashSet::new();
        for r in self.remote_instances.values() {
            if !in_tree.contains(&r.va) {
                continue;
            }
            remote_ids.insert(&r.id);
            let path = self.domain_path(r.va);
            let d = registration_digest(
                &r.id,
                &path,
                &r.udi,
                &r.hostname,
                &r.product,
                &r.version,
                r.registered_at,
            );
            let key = format!("dev:{}", r.id);
            if self.synced.get(&key) != Some(&d) {
                regs.push((r.registered_at, key, d, Dev::Remote(r), r.va));
            }
        }
        regs.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));

        // Removals: acknowledged devices no longer in the subtree.
        let mut removals = Vec::new();
        for key in self.synced.keys() {
            let Some(id) = key.strip_prefix("dev:") else {
                continue;
            };
            let here = id
                .parse::<InstanceId>()
                .ok()
                .and_then(|i| self.instances.get(&i))
                .is_some_and(|i| in_tree.contains(&i.va))
                || remote_ids.contains(id);
            if !here {
                removals.push(OutItem {
                    key: key.clone(),
                    digest: None,
                    change: ChildChange::Removal {
                        instance_id: id.to_string(),
                        reason: "removed".into(),
                    },
                });
            }
        }
        removals.sort_by(|a, b| a.key.cmp(&b.key));

        // Usage snapshots per VA and tag: local devices and reservations, and children's.
        let mut usage: BTreeMap<(VaId, String), (u64, u64, u64)> = BTreeMap::new();
        for &va in &vas {
            let tags: BTreeSet<&str> = self
                .tags_in_use
                .get(&va)
                .into_iter()
                .flatten()
                .map(|t| &**t)
                .chain(
                    self.reserved
                        .get(&va)
                        .into_iter()
                        .flat_map(|r| r.keys().map(String::as_str)),
                )
                .collect();
            for tag in tags {
                let (granted, requested, _) = self.granted(va, tag, now);
                let devices = self.pool_of(va, tag).map_or(0, |p| p.users.len() as u64);
                let e = usage.entry((va, tag.to_string())).or_default();
                *e = add_usage(*e, (devices, requested, granted));
            }
        }
        for u in self.remote_usage.values() {
            if in_tree.contains(&u.va) {
                let e = usage.entry((u.va, u.tag.clone())).or_default();
                *e = add_usage(*e, (u.devices, u.units_requested, u.units_granted));
            }
        }
        let mut usages = Vec::new();
        let mut usage_keys: HashSet<String> = HashSet::new();
        for ((va, tag), (devices, requested, granted)) in usage {
            let path = self.domain_path(va);
            let key = format!("use:{path}\0{tag}");
            let digest = usage_digest(&key, (devices, requested, granted));
            usage_keys.insert(key.clone());
            if self.synced.get(&key) == Some(&digest) {
                continue;
            }
            usages.push(OutItem {
                key,
                digest: Some(digest),
                change: ChildChange::Usage {
                    va: path,
                    tag,
                    devices,
                    units_requested: requested,
                    units_granted: granted,
                    measured_at: now,
                },
            });
        }
        // A tag no longer used anywhere in a VA is reported once with zeros.
        for key in self.synced.keys() {
            if let Some(rest) = key.strip_prefix("use:")
                && !usage_keys.contains(key)
                && let Some((va, tag)) = rest.split_once('\0')
            {
                usages.push(OutItem {
                    key: key.clone(),
                    digest: None,
                    change: ChildChange::Usage {
                        va: va.to_string(),
                        tag: tag.to_string(),
                        devices: 0,
                        units_requested: 0,
                        units_granted: 0,
                        measured_at: now,
                    },
                });
            }
        }
        usages.sort_by(|a, b| a.key.cmp(&b.key));

        // Cisco RUM reports of devices in the subtree, and those children relayed.
        let mut rums = Vec::new();
        for ((serial, report_id), instance) in &self.rum_seen {
            let Some(i) = self.instances.get(instance) else {
                continue;
            };
            let key = format!("rum:{serial}\0{report_id}");
            if in_tree.contains(&i.va) && !self.synced.contains_key(&key) {
                let digest = sha256(&[&key]);
                rums.push(OutItem {
                    key,
                    digest: Some(digest),
                    change: ChildChange::Rum {
                        report_id: *report_id,
                        udi: i.udi.clone(),
                        raw: String::new(),
                    },
                });
            }
        }
        for r in self.relayed_rum.values() {
            let key = format!("rum:{}\0{}", r.udi.serial, r.report_id);
            if self.child_sats.contains_key(&r.child) && !self.synced.contains_key(&key) {
                let digest = sha256(&[&key]);
                rums.push(OutItem {
                    key,
                    digest: Some(digest),
                    change: ChildChange::Rum {
                        report_id: r.report_id,
                        udi: r.udi.clone(),
                        raw: r.raw.clone(),
                    },
                });
            }
        }
        rums.sort_by(|a, b| a.key.cmp(&b.key));

        let total = removals.len() + regs.len() + usages.len() + rums.len();
        let mut out: Vec<OutItem> = removals.into_iter().take(max).collect();
        let room = max.saturating_sub(out.len());
        for (registered_at, key, digest, dev, va) in regs.into_iter().take(room) {
            let change = match dev {
                Dev::Local(i) => ChildChange::Registration {
                    instance_id: i.id.to_string(),
                    va: self.domain_path(va),
                    udi: i.udi.clone(),
                    hostname: i.hostname.clone(),
                    product: i.product.clone(),
                    version: i.version.clone(),
                    registered_at,
                },
                Dev::Remote(r) => ChildChange::Registration {
                    instance_id: r.id.clone(),
                    va: self.domain_path(va),
                    udi: r.udi.clone(),
                    hostname: r.hostname.clone(),
                    product: r.product.clone(),
                    version: r.version.clone(),
                    registered_at,
                },
            };
            out.push(OutItem {
                key,
                digest: Some(digest),
                change,
            });
        }
        let room = max.saturating_sub(out.len());
        out.extend(usages.into_iter().chain(rums).take(room));
        (out, total)
    }

    /// Changes not in any request yet: the outbox, less the items of the outstanding request
    /// that have not changed since it was made.
    pub fn pending_count(&self, now: OffsetDateTime) -> usize {
        let (_, total) = self.outbox(0, now);
        let Some(b) = &self.binding else {
            return 0;
        };
        let Some(out) = &b.outstanding else {
            return total;
        };
        let in_flight = out
            .items
            .iter()
            .filter(|(key, digest)| {
                self.current_digest(b, key, now) == *digest
                    && self.synced.get(key) != digest.as_ref()
            })
            .count();
        total.saturating_sub(in_flight)
    }

    /// The digest an outbox item with `key` would have now; `None` if it is gone.
    fn current_digest(
        &self,
        b: &UpstreamBinding,
        key: &str,
        now: OffsetDateTime,
    ) -> Option<[u8; 32]> {
        if let Some(id) = key.strip_prefix("dev:") {
            if let Some(i) = id
                .parse::<InstanceId>()
                .ok()
                .and_then(|i| self.instances.get(&i))
                && self.in_subtree(i.va, b.root)
            {
                return Some(registration_digest(
                    id,
                    &self.domain_path(i.va),
                    &i.udi,
                    &i.hostname,
                    &i.product,
                    &i.version,
                    i.registered_at,
                ));
            }
            let r = self
                .remote_instances
                .values()
                .find(|r| r.id == id && self.in_subtree(r.va, b.root))?;
            return Some(registration_digest(
                id,
                &self.domain_path(r.va),
                &r.udi,
                &r.hostname,
                &r.product,
                &r.version,
                r.registered_at,
            ));
        }
        if let Some(rest) = key.strip_prefix("use:") {
            let (path, tag) = rest.split_once('\0')?;
            let va = self
                .va_by_path(b.account, path)
                .filter(|va| self.in_subtree(*va, b.root))?;
            let mut numbers = (0u64, 0u64, 0u64);
            let local = self.tags_in_use.get(&va).is_some_and(|t| t.contains(tag))
                || self.reserved.get(&va).is_some_and(|r| r.contains_key(tag));
            if local {
                let (granted, requested, _) = self.granted(va, tag, now);
                let devices = self.pool_of(va, tag).map_or(0, |p| p.users.len() as u64);
                numbers = add_usage(numbers, (devices, requested, granted));
            }
            let mut remote = false;
            for u in self
                .remote_usage
                .values()
                .filter(|u| u.va == va && u.tag == tag)
            {
                remote = true;
                numbers = add_usage(numbers, (u.devices, u.units_requested, u.units_granted));
            }
            if !local && !remote {
                return None;
            }
            return Some(usage_digest(key, numbers));
        }
        Some(sha256(&[key]))
    }

    /// Records the request numbered `seq` as sent and outstanding.
    pub fn record_outstanding(
        &self,
        outstanding: Outstanding,
    ) -> Result<(Change, UpstreamBinding), DomainError> {
        let mut b = self.bound()?.clone();
        let event = NewEvent::new("sync.request.create", &b.upstream)
            .account(b.account)
            .detail("seq", outstanding.seq)
            .detail("changes", outstanding.items.len());
        b.next_seq = outstanding.seq + 1;
        b.outstanding = Some(outstanding);
        Ok((
            Change::new(event).put(Record::UpstreamBinding(b.clone())),
            b,
        ))
    }

    fn bound(&self) -> Result<&UpstreamBinding, DomainError> {
        self.binding.as_ref().ok_or_else(|| {
            DomainError::Refused(
                "this satellite is not bound to an upstream; bind it with `satellite sync \
                 register --upstream URL --registration-token TOKEN`"
                    .into(),
            )
        })
    }

    /// Applies a verified response from the upstream, atomically.
    pub fn apply_upstream_response(
        &self,
        resp: &UpstreamResponse,
        now: OffsetDateTime,
    ) -> Result<(Change, Applied), DomainError> {
        let mut b = self.bound()?.clone();
        let mut change = Change::silent();
        let mut applied = Applied::default();

        // Acknowledgements: record exactly the items of the request acknowledged.
        if let Some(out) = &b.outstanding
            && resp.acks.contains(&out.seq)
        {
            for (key, digest) in &out.items {
                match digest {
                    Some(d) => {
                        change = change.put(Record::SyncedItem(SyncedItem {
                            key: key.clone(),
                            digest: *d,
                        }));
                    }
                    None => change = change.remove(Removal::SyncedItem(key.clone())),
                }
            }
            applied.acknowledged = out.items.len();
            b.outstanding = None;
        }

        // Pools: the response carries every VA of the subtree with its whole pool.
        let mut created: HashMap<String, VaId> = HashMap::new();
        let mut listed: BTreeSet<LicenseId> = BTreeSet::new();
        for (path, licenses) in &resp.pools {
            let va = self.mirror_va(&b, path, &mut created, &mut change, now)?;
            check_upstream_pool(&b.upstream, path, licenses)?;
            for l in licenses {
                listed.insert(l.id);
                let record = License {
                    id: l.id,
                    account: b.account,
                    va,
                    entitlement_tag: l.entitlement_tag.clone(),
                    display_name: l.display_name.clone(),
                    quantity: l.quantity,
                    kind: l.kind,
                    export_controlled: l.export_controlled,
                    source: LicenseSource::Upstream,
                    order_ref: l.order_ref.clone(),
                    labels: l.labels.clone(),
                    created_at: self.license(l.id).map_or(now, |old| old.created_at),
                };
                if self.license(l.id) != Some(&record) {
                    change = change.put(Record::License(record));
                    applied.licenses_put += 1;
                }
            }
        }
        applied.vas_created = created.len();
        for va in self.subtree(b.root) {
            for l in self.licenses_in(va) {
                if !listed.contains(&l.id) {
                    change = change.remove(Removal::License(l.id));
                    applied.licenses_removed += 1;
                }
            }
        }

        // Removals ordered upstream: the device leaves as if an operator removed it here.
        for (id, reason) in &resp.removals {
            let Ok(id) = id.parse::<InstanceId>() else {
                continue;
            };
            let Some(i) = self.instance(id) else {
                continue;
            };
            if !self.in_subtree(i.va, b.root) {
                continue;
            }
            if let Ok((c, _)) = self.deregister_device(
                id,
                "device.remove",
                &format!("removal ordered by upstream {}: {reason}", b.upstream),
                now,
            ) {
                change.put.extend(c.put);
                change.remove.extend(c.remove);
                applied.devices_removed += 1;
            }
        }
        for (serial, reason) in &resp.revocations {
            if self.revoked_certificate(serial).is_none()
                && let Some(i) = self.instance_by_serial(serial)
            {
                change = change.put(Record::Revoked(RevokedCertificate {
                    serial: serial.clone(),
                    instance: i.id,
                    revoked_at: now,
                    not_after: now + time::Duration::days(366),
                    reason: format!("revoked by upstream {}: {reason}", b.upstream),
                }));
                applied.revocations += 1;
            }
        }
        b.last_response_seq = resp.seq;
        b.last_success = Some(now);
        change.event = Some(
            NewEvent::new("sync.response.apply", &b.upstream)
                .account(b.account)
                .va(b.root)
                .detail("seq", resp.seq)
                .detail("acknowledged", applied.acknowledged)
                .detail("licenses_changed", applied.licenses_put)
                .detail("licenses_removed", applied.licenses_removed)
                .detail("devices_removed", applied.devices_removed),
        );
        Ok((change.put(Record::UpstreamBinding(b)), applied))
    }

    /// The local VA for an upstream pool path inside the dedicated subtree, created (with its
    /// missing parents) if the upstream added it since.
    fn mirror_va(
        &self,
        b: &UpstreamBinding,
        path: &str,
        created: &mut HashMap<String, VaId>,
        change: &mut Change,
        now: OffsetDateTime,
    ) -> Result<VaId, DomainError> {
        let outside = || {
            DomainError::Invalid(format!(
                "the response carries licenses for `{path}`, outside the subtree `{}` dedicated \
                 to this satellite",
                b.root_path
            ))
        };
        let rest = path
            .strip_prefix(b.root_path.as_str())
            .ok_or_else(outside)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err(outside());
        }
        let mut current = b.root;
        let mut prefix = b.root_path.clone();
        for name in rest.split('/').filter(|s| !s.is_empty()) {
            prefix = format!("{prefix}/{name}");
            if let Some(id) = created.get(&prefix) {
                current = *id;
                continue;
            }
            current = match self.children(current).find(|v| v.name == name) {
                Some(v) => v.id,
                None => {
                    let va = VirtualAccount {
                        id: VaId::new(),
                        account: b.account,
                        name: name.to_string(),
                        description: format!("managed by upstream {}", b.upstream),
                        parent: Some(current),
                        created_at: now,
                    };
                    let id = va.id;
                    created.insert(prefix.clone(), id);
                    change.put.push(Record::Va(va));
                    id
                }
            };
        }
        Ok(current)
    }

    /// A VA by path inside `account`: `DOMAIN/Default/...` or `NAME/Default/...` or
    /// `Default/...`.
    pub fn va_by_path(&self, account: AccountId, path: &str) -> Option<VaId> {
        let a = self.account(account)?;
        let mut parts: Vec<&str> = path.split('/').collect();
        if parts
            .first()
            .is_some_and(|s| *s == a.name || *s == a.domain)
        {
            parts.remove(0);
        }
        let mut current = None::<VaId>;
        for name in parts {
            current = match current {
                None => (name == super::DEFAULT_VA_NAME).then_some(a.default_va),
                Some(id) => self.children(id).find(|v| v.name == name).map(|v| v.id),
            };
            current?;
        }
        current
    }

    /// Items the upstream has acknowledged.
    pub fn synced_count(&self) -> usize {
        self.synced.len()
    }
}

/// The VA names after `Default` in `DOMAIN/Default/a/b`.
fn path_segments(path: &str) -> Result<Vec<&str>, DomainError> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.get(1) {
        Some(&super::DEFAULT_VA_NAME) if parts.iter().all(|p| !p.is_empty()) => {
            Ok(parts[2..].to_vec())
        }
        _ => Err(DomainError::Invalid(format!(
            "`{path}` is not a virtual account path of the form DOMAIN/Default/..."
        ))),
    }
}

/// Refuses an upstream pool whose entries of one tag hold more than [`MAX_UNITS`] together
/// (the decoder already refused any single entry above it). A response carries each pool
/// whole, so these sums are exactly what the VA would hold.
fn check_upstream_pool(
    upstream: &str,
    path: &str,
    licenses: &[UpstreamLicense],
) -> Result<(), DomainError> {
    let mut totals: BTreeMap<&str, u128> = BTreeMap::new();
    for l in licenses {
        check_units(
            &format!("license `{}` from upstream {upstream}", l.id),
            l.quantity,
        )?;
        *totals.entry(&l.entitlement_tag).or_default() += u128::from(l.quantity);
    }
    match totals.into_iter().find(|(_, t)| *t > u128::from(MAX_UNITS)) {
        Some((tag, total)) => Err(DomainError::Invalid(format!(
            "upstream {upstream} sent {total} units of `{tag}` for `{path}`, more than the \
             maximum of {MAX_UNITS} per virtual account and entitlement tag; nothing was applied"
        ))),
        None => Ok(()),
    }
}

/// A child's usage numbers, checked again here (the wire decoder checks them too): each at
/// most [`MAX_UNITS`], and no more units granted than requested.
fn check_child_usage(devices: u64, requested: u64, granted: u64) -> Result<(), DomainError> {
    if devices > MAX_UNITS {
        return Err(DomainError::Invalid(format!(
            "the number of devices is {devices}, more than the maximum of {MAX_UNITS}; nothing \
             was changed"
        )));
    }
    check_units("the units requested", requested)?;
    check_units("the units granted", granted)?;
    if granted > requested {
        return Err(DomainError::Invalid(format!(
            "the units granted ({granted}) exceed the units requested ({requested}); nothing \
             was changed"
        )));
    }
    Ok(())
}

/// Adds usage numbers (devices, requested, granted) of one VA and tag. Each addend is at most
/// [`MAX_UNITS`] and there are only a few (the local usage and what children reported), so
/// the sums are exact; one over the bound is refused by the upstream, never applied.
fn add_usage(a: (u64, u64, u64), b: (u64, u64, u64)) -> (u64, u64, u64) {
    (
        sum_units([a.0, b.0]),
        sum_units([a.1, b.1]),
        sum_units([a.2, b.2]),
    )
}

fn usage_digest(key: &str, (devices, requested, granted): (u64, u64, u64)) -> [u8; 32] {
    sha256(&[
        key,
        &devices.to_string(),
        &requested.to_string(),
        &granted.to_string(),
    ])
}

#[allow(clippy::too_many_arguments)]
fn registration_digest(
    instance_id: &str,
    va: &str,
    udi: &Udi,
    hostname: &str,
    product: &str,
    version: &str,
    registered_at: OffsetDateTime,
) -> [u8; 32] {
    sha256(&[
        "registration",
        instance_id,
        va,
        &udi.pid,
        &udi.serial,
        hostname,
        product,
        version,
        &registered_at.unix_timestamp_nanos().to_string(),
    ])
}
