//! Devices as operators see them, moved and removed.

use serde::{Deserialize, Serialize};

use super::Time;
use crate::domain::{self, Catalog};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceView {
    pub id: String,
    pub account: String,
    pub va: String,
    pub va_path: String,
    pub udi_pid: String,
    pub udi_serial: String,
    pub hostname: String,
    pub product: String,
    pub version: String,
    pub source: String,
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: Time,
    #[serde(with = "time::serde::rfc3339")]
    pub last_contact: Time,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_report_at: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub certificate_expires_at: Option<Time>,
    #[serde(with = "time::serde::rfc3339")]
    pub authorization_expires_at: Time,
    #[serde(with = "time::serde::rfc3339")]
    pub next_report_by: Time,
    pub clock_skew: bool,
    pub entitlements: Vec<crate::protocol::device::EntitlementState>,
}

impl DeviceView {
    pub fn new(
        c: &Catalog,
        i: &domain::ProductInstance,
        now: Time,
        timers: &domain::DeviceTimers,
    ) -> Self {
        let a = c.authorization(i, now, timers);
        let auth = crate::protocol::device::Authorization::from_state(i.id, &a);
        DeviceView {
            id: i.id.to_string(),
            account: i.account.to_string(),
            va: i.va.to_string(),
            va_path: c.va_path(i.va),
            udi_pid: i.udi.pid.to_string(),
            udi_serial: i.udi.serial.to_string(),
            hostname: i.hostname.to_string(),
            product: i.product.to_string(),
            version: i.version.to_string(),
            source: match i.source {
                domain::InstanceSource::Native => "native",
                domain::InstanceSource::Rum => "cisco-rum",
            }
            .into(),
            status: auth.status,
            registered_at: i.registered_at.into(),
            last_contact: i.last_contact.into(),
            last_report_at: i.last_report_at.map(domain::Stamp::get),
            certificate_expires_at: i.cert_not_after.map(domain::Stamp::get),
            authorization_expires_at: a.expires_at,
            next_report_by: a.next_report_by,
            clock_skew: i.clock_skew,
            entitlements: auth.entitlements,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveDevice {
    pub va: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemovedDevice {
    pub id: String,
    pub released: Vec<crate::protocol::device::UsageLine>,
}
