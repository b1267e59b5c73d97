//! The Cisco reporting loop's area of the catalog (SPEC §11): the usage exports the satellite
//! wrote for Cisco's portal, the ACK files that came back, and the indexes derived from both.
//!
//! An ACK names the device file it answers by number only (`ACK_dev_<n>_...`), so every export
//! records which device and which reports went into which numbered file; numbers are unique
//! across all exports of the satellite (`next_file_id`), so any ACK maps to exactly one entry.
//! Whether a RUM report is acknowledged is derived here from the ACKs (`acked`), so the stored
//! report (`RumRecord`, `RelayedRum`) never changes format. Only this file changes the area.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Stored;
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AccountId, InstanceId, VaId};
use crate::domain::model::Udi;

/// Per device (product id, serial, holder), in UDI order.
pub(in crate::domain) type ByDevice<V> =
    std::collections::BTreeMap<(crate::domain::model::Text, Box<str>, ReportHolder), V>;

/// Where the reports of a device are held: by this satellite (one of its own devices) or by a
/// child satellite that relayed them (an ACK for them travels down to that child).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReportHolder {
    Local(InstanceId),
    Child(String),
}

/// One usage file written for Cisco's portal, keyed by the number of its first device file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiscoExport {
    /// The `<n>` of its first device file; its files are numbered on from there.
    pub first_file_id: u64,
    /// `UD_SA_<t>.tar.gz`.
    pub file_name: String,
    pub account: AccountId,
    /// The VA named in the manifest (the Default VA for a whole-account export).
    pub va: VaId,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    /// One entry per device file, in file order (`file_id` = `first_file_id` + index).
    pub devices: Vec<ExportedFile>,
}

/// One device file of an export: which device, and which of its reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedFile {
    pub file_id: u64,
    pub udi: Udi,
    pub holder: ReportHolder,
    pub report_ids: Vec<u64>,
}

/// One ACK file, kept byte for byte, keyed by the SHA-256 (hex) of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiscoAck {
    pub id: String,
    pub account: AccountId,
    /// The VA of the device (or of the child's dedicated subtree) when the ACK arrived.
    pub va: VaId,
    pub udi: Udi,
    pub holder: ReportHolder,
    /// The reports it acknowledges.
    pub report_ids: Vec<u64>,
    /// The device file it answers (`None`: it came down from the upstream satellite).
    pub file_id: Option<u64>,
    /// The file exactly as the portal wrote it: what is imported into the device.
    pub bytes: Vec<u8>,
    /// Whether it carries a `<smartLicensePolicy>`.
    pub has_policy: bool,
    pub received_at: OffsetDateTime,
    /// Delivered to the device (pull mode) or sent down to the child satellite holding it.
    pub delivery: Option<Delivery>,
}

/// The outcome of delivering an ACK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub at: OffsetDateTime,
    pub ok: bool,
    /// What happened, for the operator (an error, or where it went).
    pub detail: String,
}

/// A RUM report the satellite holds, as this area needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldReport {
    pub udi: Udi,
    pub holder: ReportHolder,
    pub received_at: OffsetDateTime,
}

/// Exports and ACKs. Read by the other domain files; changed only here.
#[derive(Clone, Debug, Default)]
pub struct CiscoAcks {
    pub exports: BTreeMap<u64, CiscoExport>,
    /// The number the next export's first device file gets.
    pub next_file_id: u64,
    pub acks: HashMap<String, CiscoAck>,
    /// (serial, report id) → the ACK that acknowledges it.
    pub acked: HashMap<(String, u64), String>,
    /// Device file number → the ACK that answers it.
    pub acked_files: HashMap<u64, String>,
    /// Every RUM report held (own and relayed), by (serial, report id).
    pub held: HashMap<(String, u64), HeldReport>,
}

impl CiscoAcks {
    /// The export entry of device file `file_id`, if the satellite wrote it.
    pub fn exported_file(&self, file_id: u64) -> Option<(&CiscoExport, &ExportedFile)> {
        let (_, export) = self.exports.range(..=file_id).next_back()?;
        let index = usize::try_from(file_id - export.first_file_id).ok()?;
        export.devices.get(index).map(|d| (export, d))
    }

    fn put_export(&mut self, e: CiscoExport) {
        let end = e.first_file_id + e.devices.len() as u64;
        self.next_file_id = self.next_file_id.max(end);
        self.exports.insert(e.first_file_id, e);
    }

    fn put_ack(&mut self, a: CiscoAck) {
        for id in &a.report_ids {
            self.acked
                .insert((a.udi.serial.to_string(), *id), a.id.clone());
        }
        if let Some(n) = a.file_id {
            self.acked_files.insert(n, a.id.clone());
        }
        self.acks.insert(a.id.clone(), a);
    }

    pub(in crate::domain) fn hold(
        &mut self,
        udi: &Udi,
        report_id: u64,
        holder: ReportHolder,
        at: OffsetDateTime,
    ) {
        self.held.insert(
            (udi.serial.to_string(), report_id),
            HeldReport {
                udi: udi.clone(),
                holder,
                received_at: at,
            },
        );
    }
}

impl Catalog {
    /// The ACKs of a device (an own device) not yet delivered to it, or whose last delivery
    /// failed, oldest first: what the pull-mode poller imports on its next poll.
    pub fn cisco_acks_to_deliver(&self, instance: InstanceId) -> Vec<&CiscoAck> {
        let mut out: Vec<&CiscoAck> = self
            .cisco
            .acks
            .values()
            .filter(|a| {
                a.holder == ReportHolder::Local(instance)
                    && a.delivery.as_ref().is_none_or(|d| !d.ok)
            })
            .collect();
        out.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
        out
    }

    /// The ACK with this id.
    pub fn cisco_ack(&self, id: &str) -> Option<&CiscoAck> {
        self.cisco.acks.get(id)
    }

    /// Whether a RUM report was acknowledged by Cisco.
    pub fn rum_acknowledged(&self, serial: &str, report_id: u64) -> bool {
        self.cisco
            .acked
            .contains_key(&(serial.to_owned(), report_id))
    }
}

impl Stored for CiscoExport {
    fn put(self, c: &mut Catalog) {
        c.cisco.put_export(self);
    }
}

impl Stored for CiscoAck {
    fn put(self, c: &mut Catalog) {
        c.cisco.put_ack(self);
    }
}
