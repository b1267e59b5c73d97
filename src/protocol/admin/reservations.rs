//! License reservation for disconnected devices (SPEC §8b).

use serde::{Deserialize, Serialize};

use super::Time;
use crate::domain::{self, Catalog};

/// `POST /v1/reservations`: reserve licenses for a disconnected device (SPEC §8b).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateReservation {
    /// The VA to reserve from (id or path).
    pub va: String,
    /// The device's request code (`SRQ1-...`).
    pub request: String,
    /// Allow reserving export-controlled tags.
    #[serde(default)]
    pub allow_export_controlled: bool,
}

/// `POST /v1/reservations/return`: the device's return code (`SRT1-...`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReturnReservation {
    pub code: String,
}

/// An active reservation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReservationView {
    pub id: String,
    pub account: String,
    pub va: String,
    pub va_path: String,
    pub udi: crate::protocol::device::Udi,
    pub entitlements: Vec<crate::protocol::reservation::Entitlement>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    pub created_by: String,
    pub request_nonce: String,
}

impl ReservationView {
    pub fn new(c: &Catalog, r: &domain::Reservation) -> Self {
        ReservationView {
            id: r.id.to_string(),
            account: c
                .account(r.account)
                .map_or_else(|| r.account.to_string(), |a| a.name.clone()),
            va: r.va.to_string(),
            va_path: c.va_path(r.va),
            udi: crate::protocol::device::Udi {
                pid: r.udi.pid.to_string(),
                serial: r.udi.serial.to_string(),
            },
            entitlements: r
                .entitlements
                .iter()
                .map(|(tag, count)| crate::protocol::reservation::Entitlement {
                    tag: tag.clone(),
                    count: *count,
                })
                .collect(),
            created_at: r.created_at,
            created_by: r.created_by.clone(),
            request_nonce: r.request_nonce.clone(),
        }
    }
}

/// The answer to `POST /v1/reservations`: the reservation and the code for the device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReservedView {
    pub reservation: ReservationView,
    /// The signed authorization code (`SAC1-...`) the device installs.
    pub authorization_code: String,
    /// The id of the key that signed it, for `agent reserve-install --trust-key`.
    pub key_id: String,
}

/// The answer to a return or a cancellation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleasedReservation {
    /// `returned` or `cancelled`.
    pub outcome: String,
    pub reservation: ReservationView,
}
