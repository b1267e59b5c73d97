//! What the child tracks per outbox item: a typed key, and one digest function per kind of
//! item. The key's text is what [`super::SyncedItem::key`] stores and what an outstanding
//! request lists, so [`OutboxKey`]'s `Display` and `FromStr` keep exactly the strings stores
//! already hold (`dev:ID`, `use:PATH\0TAG`, `rum:SERIAL\0REPORT`).

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;
use time::OffsetDateTime;

use super::messages::ChildChange;
use crate::domain::model::Udi;
use crate::domain::units::sum_units;

/// The key of one item of the child's outbox.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OutboxKey {
    /// A device of the dedicated subtree (this satellite's or one of its children's), by id.
    Device(String),
    /// The usage of one tag in one VA, the VA named by its domain path.
    Usage { va: String, tag: String },
    /// A Cisco RUM report, by the device's serial and the report's id.
    Rum { serial: String, report_id: u64 },
}

/// How a device's outbox key starts, before its instance id.
pub(super) const DEVICE_KEY_PREFIX: &str = "dev:";

impl fmt::Display for OutboxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboxKey::Device(id) => write!(f, "{DEVICE_KEY_PREFIX}{id}"),
            OutboxKey::Usage { va, tag } => write!(f, "use:{va}\0{tag}"),
            OutboxKey::Rum { serial, report_id } => write!(f, "rum:{serial}\0{report_id}"),
        }
    }
}

impl FromStr for OutboxKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{}` is not an outbox key", s.escape_debug());
        if let Some(id) = s.strip_prefix(DEVICE_KEY_PREFIX) {
            return Ok(OutboxKey::Device(id.to_string()));
        }
        if let Some(rest) = s.strip_prefix("use:") {
            // A VA path never holds a NUL, so the first one ends it.
            let (va, tag) = rest.split_once('\0').ok_or_else(bad)?;
            return Ok(OutboxKey::Usage {
                va: va.to_string(),
                tag: tag.to_string(),
            });
        }
        if let Some(rest) = s.strip_prefix("rum:") {
            // The report id is a number, so the last NUL ends the serial.
            let (serial, id) = rest.rsplit_once('\0').ok_or_else(bad)?;
            let report_id = id.parse().map_err(|_| bad())?;
            return Ok(OutboxKey::Rum {
                serial: serial.to_string(),
                report_id,
            });
        }
        Err(bad())
    }
}

/// A device as the child reports it upward: what its registration digest covers.
#[derive(Clone, Copy, Debug)]
pub(super) struct DeviceFacts<'a> {
    pub id: &'a str,
    /// The VA's domain path.
    pub va: &'a str,
    pub udi: &'a Udi,
    pub hostname: &'a str,
    pub product: &'a str,
    pub version: &'a str,
    pub registered_at: OffsetDateTime,
}

impl DeviceFacts<'_> {
    pub fn key(&self) -> OutboxKey {
        OutboxKey::Device(self.id.to_string())
    }

    /// The digest of a registration: it changes when anything the upstream shows changes.
    pub fn digest(&self) -> [u8; 32] {
        sha256(&[
            "registration",
            self.id,
            self.va,
            &self.udi.pid,
            &self.udi.serial,
            self.hostname,
            self.product,
            self.version,
            &self.registered_at.unix_timestamp_nanos().to_string(),
        ])
    }

    pub fn change(&self) -> ChildChange {
        ChildChange::Registration {
            instance_id: self.id.to_string(),
            va: self.va.to_string(),
            udi: self.udi.clone(),
            hostname: self.hostname.to_string(),
            product: self.product.to_string(),
            version: self.version.to_string(),
            registered_at: self.registered_at,
        }
    }
}

/// The usage numbers of one tag in one VA: devices, units requested, units granted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct UsageNumbers {
    pub devices: u64,
    pub requested: u64,
    pub granted: u64,
}

impl UsageNumbers {
    /// Adds the numbers of another source of the same VA and tag. Each addend is at most
    /// [`MAX_UNITS`](crate::domain::MAX_UNITS) and there are only a few (the local usage and
    /// what children reported), so the sums are exact; one over the bound is refused by the
    /// upstream, never applied.
    pub fn add(self, other: UsageNumbers) -> UsageNumbers {
        UsageNumbers {
            devices: sum_units([self.devices, other.devices]),
            requested: sum_units([self.requested, other.requested]),
            granted: sum_units([self.granted, other.granted]),
        }
    }

    /// The digest of a usage snapshot: it changes when one of the numbers does.
    pub fn digest(&self, key: &OutboxKey) -> [u8; 32] {
        sha256(&[
            &key.to_string(),
            &self.devices.to_string(),
            &self.requested.to_string(),
            &self.granted.to_string(),
        ])
    }
}

/// The digest of a RUM report's item: a report never changes, so its key is its content.
pub(super) fn rum_digest(key: &OutboxKey) -> [u8; 32] {
    sha256(&[&key.to_string()])
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
