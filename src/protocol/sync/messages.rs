//! The bodies of sync messages and license files. Field names are the contract between
//! satellites of different versions and what a security officer reads in a file: add fields in
//! a new format, never rename them.
//!
//! Every struct denies unknown fields, times are RFC 3339, ids are strings, and there are no
//! floats and no hash maps, so serializing a parsed body gives the same bytes on every machine
//! (the canonical encoding the signature covers).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Kind, MAX_ID_BYTES, MAX_RAW_BYTES, MAX_TEXT_BYTES, Recipient, SatelliteId, Signed};
use crate::domain::MAX_UNITS;
use crate::protocol::device::Udi;

/// Child → upstream: what changed on the child since the upstream last acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// The child satellite.
    pub from: SatelliteId,
    /// The upstream satellite.
    pub to: SatelliteId,
    /// The child's request number (1, 2, 3, …).
    pub seq: u64,
    /// The last response of the upstream the child applied (0 when none).
    pub ack_upstream_seq: u64,
    #[serde(with = "super::rfc3339")]
    pub created_at: OffsetDateTime,
    /// In the order they happened on the child.
    pub changes: Vec<Change>,
}

/// One change reported by the child. The `kind` field tells which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// A device registered (or re-registered) on the child.
    Registration {
        instance_id: String,
        /// The upstream's id or path of the dedicated VA the device belongs to.
        va: String,
        udi: Udi,
        hostname: String,
        product: String,
        version: String,
        #[serde(with = "super::rfc3339")]
        registered_at: OffsetDateTime,
    },
    /// A device left the child (deregistered, removed by an operator, timed out).
    Removal { instance_id: String, reason: String },
    /// Usage of one entitlement tag in one VA at `measured_at`: a snapshot, not a delta, so
    /// applying it twice changes nothing.
    Usage {
        va: String,
        entitlement_tag: String,
        /// Devices using the tag.
        devices: u64,
        /// Units those devices asked for.
        units_requested: u64,
        /// Units the child could authorize from its pool.
        units_granted: u64,
        #[serde(with = "super::rfc3339")]
        measured_at: OffsetDateTime,
    },
    /// A Cisco RUM report received on the CSLU endpoint, relayed untouched.
    RumReport {
        report_id: u64,
        udi: Udi,
        /// The report exactly as the device sent it (Cisco's JSON, with its signature).
        raw: String,
    },
}

/// Upstream → child: acknowledgements and the state the upstream owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    /// The upstream satellite.
    pub from: SatelliteId,
    /// The child satellite.
    pub to: SatelliteId,
    /// The upstream's response number for this child (1, 2, 3, …).
    pub seq: u64,
    /// The request numbers applied upstream, ascending.
    pub acks: Vec<u64>,
    #[serde(with = "super::rfc3339")]
    pub created_at: OffsetDateTime,
    /// License pools of the VAs dedicated to the child.
    pub pools: Vec<PoolSnapshot>,
    /// Devices the upstream orders the child to remove.
    pub removals: Vec<Removal>,
    /// Device certificates that must no longer be accepted.
    pub revocations: Vec<Revocation>,
    /// Cisco ACK files for devices whose RUM reports the child relayed (format 2: absent, and
    /// the file written in format 1, when there is none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cisco_acks: Vec<CiscoAckLine>,
}

/// One Cisco ACK file on its way down to the satellite that holds the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiscoAckLine {
    pub udi: Udi,
    /// The RUM reports it acknowledges, ascending.
    pub report_ids: Vec<u64>,
    /// The ACK file byte for byte, base64.
    pub file: String,
    pub has_policy: bool,
}

/// The largest ACK file a response carries, base64 (the ACK reader's limit of 1 MiB, encoded).
pub const MAX_ACK_FILE_BASE64: usize = (1 << 20) / 3 * 4 + 4;
/// At most this many reports acknowledged by one ACK line.
pub const MAX_ACK_REPORTS: usize = 100_000;

/// The license pool of one dedicated VA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSnapshot {
    /// The upstream's id or path of the VA.
    pub va: String,
    /// `true`: `licenses` is the whole pool and replaces it. `false`: each line replaces the
    /// line with the same id (or is added), and the ids in `removed` are deleted.
    pub full: bool,
    pub licenses: Vec<LicenseLine>,
    /// License ids to delete; empty in a full snapshot.
    pub removed: Vec<String>,
}

/// One license pool entry as it travels: `quantity` units of one entitlement tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseLine {
    /// Stable across syncs: the upstream's license id.
    pub id: String,
    pub entitlement_tag: String,
    pub display_name: String,
    pub quantity: u64,
    pub kind: LicenseKind,
    /// Set for term licenses only: valid from `start` (inclusive) …
    #[serde(default, with = "super::rfc3339::option")]
    pub start: Option<OffsetDateTime>,
    /// … to `end` (exclusive).
    #[serde(default, with = "super::rfc3339::option")]
    pub end: Option<OffsetDateTime>,
    pub export_controlled: bool,
    #[serde(default)]
    pub order_ref: Option<String>,
    /// Free-form labels (the upstream's "license tags"), sorted.
    #[serde(default)]
    pub labels: BTreeSet<String>,
}

/// `perpetual` or `term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseKind {
    Perpetual,
    Term,
}

/// A device removal ordered upstream, or reported by the child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    pub instance_id: String,
    pub reason: String,
}

/// A certificate revoked upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub certificate_serial: String,
    pub reason: String,
}

/// Licenses for a disconnected satellite (`license import FILE`), signed by an issuer whose key
/// the configuration trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseFile {
    /// Who issued the file; must be the name the issuer's key is trusted under.
    pub issuer: SatelliteId,
    /// The Smart Account the licenses belong to; the importing satellite must hold it.
    pub account_domain: String,
    /// Unique per file, so an importer can refuse a file it already imported even after the
    /// licenses were moved or removed.
    pub file_id: String,
    #[serde(with = "super::rfc3339")]
    pub created_at: OffsetDateTime,
    pub grants: Vec<LicenseGrant>,
}

/// Licenses for one VA of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseGrant {
    /// VA path (`ACCOUNT/Default/child`) or id in the importing satellite.
    pub va: String,
    pub licenses: Vec<LicenseLine>,
}

impl Signed for SyncRequest {
    const KIND: Kind = Kind::SyncRequest;

    fn sender(&self) -> &SatelliteId {
        &self.from
    }

    fn recipient(&self) -> Recipient<'_> {
        Recipient::Satellite(&self.to)
    }

    fn seq(&self) -> Option<u64> {
        Some(self.seq)
    }

    fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    fn validate(&self) -> Result<(), String> {
        satellite_id("from", &self.from)?;
        satellite_id("to", &self.to)?;
        positive("seq", self.seq)?;
        for (i, change) in self.changes.iter().enumerate() {
            let at = format!("changes[{i}]");
            match change {
                Change::Registration {
                    instance_id,
                    va,
                    udi,
                    hostname,
                    product,
                    version,
                    ..
                } => {
                    text(&at, "instance_id", instance_id, MAX_ID_BYTES)?;
                    text(&at, "va", va, MAX_ID_BYTES)?;
                    self::udi(&at, udi)?;
                    // A device registered by a Cisco RUM report has no host name (and may
                    // lack the others): empty is allowed, unbounded or control bytes are not.
                    optional_text(&at, "hostname", hostname)?;
                    optional_text(&at, "product", product)?;
                    optional_text(&at, "version", version)?;
                }
                Change::Removal {
                    instance_id,
                    reason,
                } => {
                    text(&at, "instance_id", instance_id, MAX_ID_BYTES)?;
                    text(&at, "reason", reason, MAX_TEXT_BYTES)?;
                }
                Change::Usage {
                    va,
                    entitlement_tag,
                    devices,
                    units_requested,
                    units_granted,
                    ..
                } => {
                    text(&at, "va", va, MAX_ID_BYTES)?;
                    tag(&at, entitlement_tag)?;
                    at_most(&format!("{at}.devices"), *devices)?;
                    at_most(&format!("{at}.units_requested"), *units_requested)?;
                    if units_granted > units_requested {
                        return Err(format!(
                            "{at}: units_granted ({units_granted}) exceeds units_requested \
                             ({units_requested})"
                        ));
                    }
                }
                Change::RumReport { udi, raw, .. } => {
                    self::udi(&at, udi)?;
                    if raw.is_empty() || raw.len() > MAX_RAW_BYTES {
                        return Err(format!("{at}.raw must be 1 to {MAX_RAW_BYTES} bytes"));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Signed for SyncResponse {
    const KIND: Kind = Kind::SyncResponse;

    fn sender(&self) -> &SatelliteId {
        &self.from
    }

    fn recipient(&self) -> Recipient<'_> {
        Recipient::Satellite(&self.to)
    }

    fn seq(&self) -> Option<u64> {
        Some(self.seq)
    }

    fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    fn validate(&self) -> Result<(), String> {
        satellite_id("from", &self.from)?;
        satellite_id("to", &self.to)?;
        positive("seq", self.seq)?;
        if self.acks.contains(&0) || !self.acks.is_sorted_by(|a, b| a < b) {
            return Err("acks must be request numbers ≥ 1, ascending, without repeats".into());
        }
        let mut vas = BTreeSet::new();
        for (i, pool) in self.pools.iter().enumerate() {
            let at = format!("pools[{i}]");
            text(&at, "va", &pool.va, MAX_ID_BYTES)?;
            if !vas.insert(pool.va.as_str()) {
                return Err(format!("{at}: VA `{}` has two pools", pool.va));
            }
            let mut ids = BTreeSet::new();
            lines(&at, &pool.licenses, &mut ids)?;
            if pool.full && !pool.removed.is_empty() {
                return Err(format!(
                    "{at}: a full snapshot cannot list removed licenses"
                ));
            }
            for id in &pool.removed {
                text(&at, "removed", id, MAX_ID_BYTES)?;
                if !ids.insert(id.as_str()) {
                    return Err(format!("{at}: license `{id}` is listed twice"));
                }
            }
        }
        for (i, r) in self.removals.iter().enumerate() {
            let at = format!("removals[{i}]");
            text(&at, "instance_id", &r.instance_id, MAX_ID_BYTES)?;
            text(&at, "reason", &r.reason, MAX_TEXT_BYTES)?;
        }
        for (i, r) in self.revocations.iter().enumerate() {
            let at = format!("revocations[{i}]");
            text(
                &at,
                "certificate_serial",
                &r.certificate_serial,
                MAX_ID_BYTES,
            )?;
            text(&at, "reason", &r.reason, MAX_TEXT_BYTES)?;
        }
        for (i, a) in self.cisco_acks.iter().enumerate() {
            let at = format!("cisco_acks[{i}]");
            udi(&at, &a.udi)?;
            if a.report_ids.is_empty()
                || a.report_ids.len() > MAX_ACK_REPORTS
                || !a.report_ids.is_sorted_by(|x, y| x < y)
            {
                return Err(format!(
                    "{at}.report_ids must be 1 to {MAX_ACK_REPORTS} ids, ascending, without repeats"
                ));
            }
            text(&at, "file", &a.file, MAX_ACK_FILE_BASE64)?;
        }
        Ok(())
    }

    fn format(&self) -> u32 {
        if self.cisco_acks.is_empty() { 1 } else { 2 }
    }
}

impl Signed for LicenseFile {
    const KIND: Kind = Kind::LicenseFile;

    fn sender(&self) -> &SatelliteId {
        &self.issuer
    }

    fn recipient(&self) -> Recipient<'_> {
        Recipient::Account(&self.account_domain)
    }

    fn seq(&self) -> Option<u64> {
        None
    }

    fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    fn validate(&self) -> Result<(), String> {
        satellite_id("issuer", &self.issuer)?;
        tag("", &self.account_domain)
            .map_err(|_| "account_domain must be a domain name such as example.com".to_string())?;
        text("", "file_id", &self.file_id, MAX_ID_BYTES)?;
        if self.grants.iter().all(|g| g.licenses.is_empty()) {
            return Err("a license file must grant at least one license".into());
        }
        let mut ids = BTreeSet::new();
        for (i, grant) in self.grants.iter().enumerate() {
            let at = format!("grants[{i}]");
            text(&at, "va", &grant.va, MAX_ID_BYTES)?;
            lines(&at, &grant.licenses, &mut ids)?;
        }
        Ok(())
    }
}

/// Checks license lines, collecting their ids into `ids` so repeats are refused.
fn lines<'a>(
    at: &str,
    lines: &'a [LicenseLine],
    ids: &mut BTreeSet<&'a str>,
) -> Result<(), String> {
    for (j, l) in lines.iter().enumerate() {
        let at = format!("{at}.licenses[{j}]");
        text(&at, "id", &l.id, MAX_ID_BYTES)?;
        if !ids.insert(l.id.as_str()) {
            return Err(format!("{at}: license `{}` is listed twice", l.id));
        }
        tag(&at, &l.entitlement_tag)?;
        text(&at, "display_name", &l.display_name, MAX_TEXT_BYTES)?;
        positive(&format!("{at}.quantity"), l.quantity)?;
        at_most(&format!("{at}.quantity"), l.quantity)?;
        match (l.kind, l.start, l.end) {
            (LicenseKind::Perpetual, None, None) => {}
            (LicenseKind::Perpetual, _, _) => {
                return Err(format!("{at}: a perpetual license has no start or end"));
            }
            (LicenseKind::Term, Some(start), Some(end)) if start < end => {}
            (LicenseKind::Term, _, _) => {
                return Err(format!("{at}: a term license needs a start before its end"));
            }
        }
        if let Some(order) = &l.order_ref {
            text(&at, "order_ref", order, MAX_TEXT_BYTES)?;
        }
        for label in &l.labels {
            text(&at, "labels", label, MAX_TEXT_BYTES)?;
        }
    }
    Ok(())
}

fn satellite_id(field: &str, id: &SatelliteId) -> Result<(), String> {
    tag("", &id.0).map_err(|_| {
        format!("`{field}` must be a satellite id of 1 to {MAX_ID_BYTES} bytes without spaces")
    })
}

fn positive(field: &str, n: u64) -> Result<(), String> {
    if n == 0 {
        return Err(format!("`{field}` must be at least 1"));
    }
    Ok(())
}

/// A quantity within the satellite's bound (`domain::MAX_UNITS`), like every quantity it
/// accepts from anywhere; the totals it keeps stay exact that way.
fn at_most(field: &str, n: u64) -> Result<(), String> {
    if n > MAX_UNITS {
        return Err(format!(
            "`{field}` is {n}, more than the maximum of {MAX_UNITS}"
        ));
    }
    Ok(())
}

/// Non-empty, bounded, no control characters.
fn text(at: &str, field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        let sep = if at.is_empty() { "" } else { "." };
        return Err(format!(
            "`{at}{sep}{field}` must be 1 to {max} bytes without control characters"
        ));
    }
    Ok(())
}

/// Empty, or as [`text`] with [`MAX_TEXT_BYTES`].
fn optional_text(at: &str, field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    text(at, field, value, MAX_TEXT_BYTES)
}

/// An entitlement tag (or another token that cannot hold spaces).
fn tag(at: &str, value: &str) -> Result<(), String> {
    text(at, "entitlement_tag", value, MAX_ID_BYTES)?;
    if value.contains(' ') {
        return Err(format!("`{at}`: `{value}` must not contain spaces"));
    }
    Ok(())
}

fn udi(at: &str, udi: &Udi) -> Result<(), String> {
    text(at, "udi.pid", &udi.pid, 128)?;
    text(at, "udi.serial", &udi.serial, 128)
}
