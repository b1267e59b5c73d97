//! The Cisco reporting loop (SPEC §11): usage exports for Cisco's portal, the ACKs it returns,
//! and what waits per device. Archives and ACK files travel base64-encoded inside JSON, so the
//! CLI writes them through `fsutil` byte for byte.

use serde::{Deserialize, Serialize};

use super::Time;
use crate::domain::{self, Catalog, ReportHolder};

/// What an ACK deadline shows: the policy Cisco sends is kept opaque (its content is not
/// public), so the satellite does not claim to know the deadline.
pub const DEADLINE_UNKNOWN: &str = "unknown";

/// `POST /v1/cisco/export`: the scope of a usage export (neither: the caller's one account).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CiscoExportRequest {
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub va: Option<String>,
}

/// The answer to an export: the file to write, or `file: null` when nothing waits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CiscoExportView {
    /// `UD_SA_<t>.tar.gz`, the name the portal expects; `null` when there was nothing.
    pub file: Option<String>,
    pub account: String,
    pub va_path: String,
    pub devices: Vec<ExportedDeviceView>,
    pub reports: usize,
    /// The archive, base64 (absent in `--json` output of the CLI, which writes it to a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
}

/// One device file of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedDeviceView {
    /// The `<n>` of `dev_<n>_<t>.txt`, unique across this satellite's exports.
    pub file_id: u64,
    pub udi: String,
    /// `local`, or the child satellite that relayed the reports.
    pub held_by: String,
    pub reports: usize,
}

/// One ACK as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AckView {
    /// SHA-256 of the ACK file (hex).
    pub id: String,
    pub udi: String,
    pub account: String,
    pub va_path: String,
    pub held_by: String,
    /// The device file it answers (`null`: it came from the upstream satellite).
    pub file_id: Option<u64>,
    pub report_ids: Vec<u64>,
    pub has_policy: bool,
    pub bytes: usize,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: Time,
    pub delivery: Option<DeliveryView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryView {
    #[serde(with = "time::serde::rfc3339")]
    pub at: Time,
    pub ok: bool,
    pub detail: String,
}

/// The answer to `POST /v1/cisco/acks/import`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AckImportView {
    pub archive: String,
    pub imported: Vec<AckView>,
    /// ACKs of the archive imported before, byte for byte: nothing was done for them.
    pub already_imported: usize,
    pub reports_acknowledged: usize,
}

/// `GET /v1/cisco/ack?device=UDI`: the latest ACK of a device and its file, base64.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AckFileView {
    pub ack: AckView,
    pub file: String,
}

/// One line of `GET /v1/cisco/reports`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceReportsView {
    pub udi: String,
    pub account: String,
    pub va_path: String,
    pub held_by: String,
    pub reports_held: usize,
    pub waiting_for_ack: usize,
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_waiting: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_ack: Option<Time>,
    pub last_ack_id: Option<String>,
    pub last_ack_delivered: Option<bool>,
    /// Always `unknown`: the policy's content is opaque (docs/cisco.md).
    pub ack_deadline: String,
}

/// `local` or the child's name.
pub fn held_by(h: &ReportHolder) -> String {
    match h {
        ReportHolder::Local(_) => "local".into(),
        ReportHolder::Child(name) => format!("child:{name}"),
    }
}

fn account_name(c: &Catalog, id: domain::AccountId) -> String {
    c.account(id)
        .map_or_else(|| id.to_string(), |a| a.name.clone())
}

impl AckView {
    pub fn new(c: &Catalog, a: &domain::CiscoAck) -> Self {
        AckView {
            id: a.id.clone(),
            udi: a.udi.to_string(),
            account: account_name(c, a.account),
            va_path: c.va_path(a.va),
            held_by: held_by(&a.holder),
            file_id: a.file_id,
            report_ids: a.report_ids.clone(),
            has_policy: a.has_policy,
            bytes: a.bytes.len(),
            received_at: a.received_at,
            delivery: a.delivery.as_ref().map(|d| DeliveryView {
                at: d.at,
                ok: d.ok,
                detail: d.detail.clone(),
            }),
        }
    }
}

impl DeviceReportsView {
    pub fn new(c: &Catalog, d: &domain::DeviceReports) -> Self {
        DeviceReportsView {
            udi: d.udi.to_string(),
            account: account_name(c, d.account),
            va_path: c.va_path(d.va),
            held_by: held_by(&d.holder),
            reports_held: d.held,
            waiting_for_ack: d.waiting,
            oldest_waiting: d.oldest_waiting,
            last_ack: d.last_ack.as_ref().map(|a| a.received_at),
            last_ack_id: d.last_ack.as_ref().map(|a| a.id.clone()),
            last_ack_delivered: d
                .last_ack
                .as_ref()
                .map(|a| a.delivery.as_ref().is_some_and(|d| d.ok)),
            ack_deadline: DEADLINE_UNKNOWN.into(),
        }
    }
}

impl CiscoExportView {
    pub fn new(c: &Catalog, plan: &domain::ExportPlan, file: Option<String>) -> Self {
        CiscoExportView {
            file,
            account: account_name(c, plan.account),
            va_path: c.va_path(plan.va),
            devices: plan
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| ExportedDeviceView {
                    file_id: plan.first_file_id + i as u64,
                    udi: f.udi.to_string(),
                    held_by: held_by(&f.holder),
                    reports: f.reports.len(),
                })
                .collect(),
            reports: plan.report_count(),
            archive: None,
        }
    }
}
