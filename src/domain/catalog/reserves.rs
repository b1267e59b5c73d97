//! The reservations area of the catalog: active license reservations (SPEC §8b), by id and by
//! (account, UDI), and the units reserved per VA and tag. Only this file changes them, so the
//! totals compliance subtracts are always the sum of the reservations.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Removable, Stored};
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AccountId, ReservationId, VaId};
use crate::domain::model::Udi;

/// Units of licenses set aside in one VA for one disconnected device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: ReservationId,
    pub account: AccountId,
    pub va: VaId,
    pub udi: Udi,
    /// Entitlement tag → units reserved (each > 0).
    pub entitlements: BTreeMap<String, u64>,
    pub created_at: OffsetDateTime,
    /// Who reserved (the audit actor).
    pub created_by: String,
    /// The nonce of the device's request code, echoed in the authorization code.
    pub request_nonce: String,
    /// SHA-256 of the authorization code handed to the device.
    pub code_sha256: [u8; 32],
    /// SHA-256 of the proof a return code must carry (the proof is itself a hash of the
    /// authorization code, so only a holder of the code can produce it).
    pub return_proof_sha256: [u8; 32],
}

impl Reservation {
    /// `tag=count,tag=count`, for events and logs.
    pub fn summary(&self) -> String {
        self.entitlements
            .iter()
            .map(|(t, n)| format!("{t}={n}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Active reservations. Read by the other domain files; changed only here.
#[derive(Clone, Debug, Default)]
pub(in crate::domain) struct Reserves {
    pub reservations: HashMap<ReservationId, Reservation>,
    pub reservations_by_udi: HashMap<(AccountId, Udi), ReservationId>,
    /// Units reserved per VA and tag: compliance subtracts them before any device, so it must
    /// not walk the reservations.
    pub reserved: HashMap<VaId, BTreeMap<String, u64>>,
}

impl Reserves {
    fn put(&mut self, r: Reservation) {
        self.take(r.id);
        self.reservations_by_udi
            .insert((r.account, r.udi.clone()), r.id);
        let tags = self.reserved.entry(r.va).or_default();
        for (tag, n) in &r.entitlements {
            let total = tags.entry(tag.clone()).or_default();
            *total = total.saturating_add(*n);
        }
        self.reservations.insert(r.id, r);
    }

    fn take(&mut self, id: ReservationId) {
        let Some(r) = self.reservations.remove(&id) else {
            return;
        };
        self.reservations_by_udi.remove(&(r.account, r.udi.clone()));
        if let Some(tags) = self.reserved.get_mut(&r.va) {
            for (tag, n) in &r.entitlements {
                if let Some(total) = tags.get_mut(tag) {
                    *total = total.saturating_sub(*n);
                    if *total == 0 {
                        tags.remove(tag);
                    }
                }
            }
            if tags.is_empty() {
                self.reserved.remove(&r.va);
            }
        }
    }
}

impl Stored for Reservation {
    fn put(self, c: &mut Catalog) {
        c.reserves.put(self);
    }
}

impl Removable for Reservation {
    type Key = ReservationId;
    fn take(id: ReservationId, c: &mut Catalog) {
        c.reserves.take(id);
    }
}
