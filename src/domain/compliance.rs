//! Compliance (SPEC §4): which devices are authorized for which entitlement tags.
//!
//! Allocation is per VA and tag, in registration order, all-or-nothing per device, and a
//! strict prefix: devices are granted in order while the licenses valid now last; the first
//! device that does not fit, and every device registered after it, is `out_of_compliance`.
//! Export-controlled tags skip devices whose token did not allow them (`not_authorized`;
//! they hold no units). A tag without any license entry in the VA is `unknown`.
//!
//! Reserved units (SPEC §8b, `reservations.rs`) are consumed first: devices share
//! `available - reserved`, and the reserved units count as granted (up to what is valid now)
//! and requested, so `license list` shows them in use and a shortage they cause shows in the
//! compliance report.
//!
//! The catalog keeps, per VA and tag, the devices using it ordered by registration and the
//! total they ask for (`catalog::Pool`, in the catalog's devices area), updated incrementally
//! by `Catalog::apply`. A device's answer costs O(1) when the pool is not over-subscribed (the
//! common case) and a walk of the devices registered before it otherwise; nothing ever scans
//! all devices.
//!
//! The arithmetic below is plain: every total it adds (units valid now, units the devices of
//! a pool ask for, units reserved) is at most `MAX_UNITS` (10^12, `units.rs`), so a sum of a
//! few of them cannot come near `u64::MAX`.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::catalog::Catalog;
use super::ids::{InstanceId, VaId};
use super::model::{
    AuthorizationState, EntitlementStatus, InstanceStatus, LicenseKind, ProductInstance,
};
use super::units::sum_units;

mod spare;

pub use spare::SpareIn;
use spare::SpareMemo;

#[cfg(test)]
thread_local! {
    /// How many times [`Catalog::spare`] ran on this thread: tests count the work a report does.
    pub(super) static SPARE_CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The device timers of SPEC §4, each configurable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceTimers {
    pub certificate_validity: Duration,
    pub renew_after: Duration,
    pub report_interval: Duration,
    pub authorization_valid: Duration,
    pub deregister_after: Duration,
    pub clock_skew: Duration,
}

impl Default for DeviceTimers {
    fn default() -> Self {
        DeviceTimers {
            certificate_validity: Duration::days(365),
            renew_after: Duration::days(180),
            report_interval: Duration::days(30),
            authorization_valid: Duration::days(90),
            deregister_after: Duration::days(90),
            clock_skew: Duration::hours(1),
        }
    }
}

/// One line of the compliance report: a VA and a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComplianceLine {
    pub va: VaId,
    pub entitlement_tag: String,
    /// Units valid now.
    pub purchased: u64,
    /// Units asked for by devices allowed to use the tag.
    pub requested: u64,
    /// Units granted.
    pub granted: u64,
    /// Devices out of compliance for the tag.
    pub devices_short: usize,
    /// Other VAs of the account with spare units of this tag: (VA, spare units), most first.
    pub spare_in: SpareIn,
}

impl ComplianceLine {
    pub fn shortage(&self) -> u64 {
        self.requested - self.granted
    }
}

impl Catalog {
    /// Units of `tag` in `va` that count at `now` (term licenses between start and end).
    pub fn available(&self, va: VaId, tag: &str, now: OffsetDateTime) -> u64 {
        sum_units(
            self.licenses_of(va, tag)
                .filter(|l| l.is_valid_at(now))
                .map(|l| l.quantity),
        )
    }

    /// Whether any license entry of `tag` in `va` is export-controlled.
    pub fn is_export_controlled(&self, va: VaId, tag: &str) -> bool {
        self.export_controlled(va, tag) == Some(true)
    }

    /// `None` if the VA has no license entry of the tag at all; else whether any is
    /// export-controlled.
    fn export_controlled(&self, va: VaId, tag: &str) -> Option<bool> {
        let mut found = None;
        for l in self.licenses_of(va, tag) {
            found = Some(found.unwrap_or(false) | l.export_controlled);
        }
        found
    }

    fn eligible(&self, id: InstanceId, export: bool) -> bool {
        !export
            || self
                .fleet
                .instances
                .get(&id)
                .is_some_and(|i| i.export_allowed)
    }

    /// The status of `me` (possibly a version not yet applied) for `count` units of `tag`.
    pub fn entitlement_status(
        &self,
        me: &ProductInstance,
        tag: &str,
        count: u64,
        now: OffsetDateTime,
    ) -> EntitlementStatus {
        let Some(export) = self.export_controlled(me.va, tag) else {
            return EntitlementStatus::Unknown;
        };
        if export && !me.export_allowed {
            return EntitlementStatus::NotAuthorized;
        }
        let available = self
            .available(me.va, tag, now)
            .saturating_sub(self.reserved(me.va, tag));
        let pool = self.pool_of(me.va, tag);
        let mine_now = pool
            .and_then(|p| p.users.get(&me.order))
            .filter(|(id, _)| *id == me.id)
            .map_or(0, |(_, c)| *c);
        let others = pool.map_or(0, |p| p.total - mine_now);
        if !export && others + count <= available {
            return EntitlementStatus::Authorized;
        }
        let mut used = 0u64;
        if let Some(pool) = pool {
            for (_, (id, c)) in pool.users.before(me.order) {
                if *id == me.id || !self.eligible(*id, export) {
                    continue;
                }
                if used + c > available {
                    return EntitlementStatus::OutOfCompliance;
                }
                used += c;
            }
        }
        if used + count <= available {
            EntitlementStatus::Authorized
        } else {
            EntitlementStatus::OutOfCompliance
        }
    }

    /// The full answer for `me` at `now`.
    pub fn authorization(
        &self,
        me: &ProductInstance,
        now: OffsetDateTime,
        timers: &DeviceTimers,
    ) -> AuthorizationState {
        let base = me.last_report_at.unwrap_or(me.registered_at);
        let expires_at = base + timers.authorization_valid;
        let entitlements: Vec<(super::model::Tag, u64, EntitlementStatus)> = me
            .usage
            .iter()
            .map(|(tag, count)| {
                (
                    tag.clone(),
                    *count,
                    self.entitlement_status(me, tag, *count, now),
                )
            })
            .collect();
        let status = if now >= expires_at {
            InstanceStatus::AuthorizationExpired
        } else if me.last_report_at.is_none() {
            InstanceStatus::Registered
        } else if entitlements
            .iter()
            .all(|(_, _, s)| *s == EntitlementStatus::Authorized)
        {
            InstanceStatus::Authorized
        } else {
            InstanceStatus::OutOfCompliance
        };
        AuthorizationState {
            status,
            entitlements,
            expires_at,
            next_report_by: base + timers.report_interval,
        }
    }

    /// Devices by state, as of each device's last report aged by the clock: cheap enough for a
    /// million devices (no entitlement is re-evaluated), for status and metrics.
    pub fn device_states(
        &self,
        now: OffsetDateTime,
        timers: &DeviceTimers,
    ) -> BTreeMap<InstanceStatus, usize> {
        Self::states_of(self.instances(), now, timers)
    }

    /// A device's state as of its last answer, aged by the clock: what the overview counts and
    /// the device list shows, without re-evaluating its entitlements.
    pub fn reported_state(
        i: &ProductInstance,
        now: OffsetDateTime,
        timers: &DeviceTimers,
    ) -> InstanceStatus {
        let base = i.last_report_at.unwrap_or(i.registered_at);
        // `now >= base + valid`, with the instants compared as stamps: this runs for every
        // device when the states are counted, and a stamp compares bytewise.
        let expired = now
            .checked_sub(timers.authorization_valid)
            .is_some_and(|cutoff| base <= super::model::Stamp::from(cutoff));
        if expired {
            InstanceStatus::AuthorizationExpired
        } else {
            i.last_answer
                .as_ref()
                .map_or(InstanceStatus::Registered, |a| a.status)
        }
    }

    /// Devices by state among `devices` (see [`Catalog::device_states`]).
    pub(super) fn states_of<'a>(
        devices: impl Iterator<Item = &'a ProductInstance>,
        now: OffsetDateTime,
        timers: &DeviceTimers,
    ) -> BTreeMap<InstanceStatus, usize> {
        let mut out: BTreeMap<InstanceStatus, usize> = [
            InstanceStatus::Registered,
            InstanceStatus::Authorized,
            InstanceStatus::OutOfCompliance,
            InstanceStatus::AuthorizationExpired,
        ]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
        for i in devices {
            *out.entry(Self::reported_state(i, now, timers)).or_default() += 1;
        }
        out
    }

    /// Units granted and units requested, by reservations and eligible devices, and the
    /// number of devices short, for one VA and tag. Reservations come first.
    pub fn granted(&self, va: VaId, tag: &str, now: OffsetDateTime) -> (u64, u64, usize) {
        let (purchased, export) = self.stock_of(va, tag, now);
        self.allocate(va, tag, purchased, export)
    }

    /// What the license entries of `tag` in `va` say at `now`, in one pass over them: the
    /// units valid now ([`Catalog::available`]), and whether any entry is export-controlled
    /// (`None`: no entry at all). A report asks this once per line, not once per question.
    fn stock_of(&self, va: VaId, tag: &str, now: OffsetDateTime) -> (u64, Option<bool>) {
        let mut export = None;
        let valid = sum_units(self.licenses_of(va, tag).filter_map(|l| {
            export = Some(export.unwrap_or(false) | l.export_controlled);
            l.is_valid_at(now).then_some(l.quantity)
        }));
        (valid, export)
    }

    /// [`Catalog::granted`] given what [`Catalog::stock_of`] answered for the VA and tag.
    fn allocate(
        &self,
        va: VaId,
        tag: &str,
        purchased: u64,
        export: Option<bool>,
    ) -> (u64, u64, usize) {
        let reserved = self.reserved(va, tag);
        let held = reserved.min(purchased);
        let Some(pool) = self.pool_of(va, tag) else {
            return (held, reserved, 0);
        };
        let Some(export) = export else {
            return (0, reserved + pool.total, pool.users.len());
        };
        let available = purchased - held;
        if !export && pool.total <= available {
            return (held + pool.total, reserved + pool.total, 0);
        }
        let (mut used, mut requested, mut short, mut full) = (held, reserved, 0, false);
        for (id, c) in pool.users.values() {
            if !self.eligible(*id, export) {
                continue;
            }
            requested += c;
            if !full && used - held + c <= available {
                used += c;
            } else {
                full = true;
                short += 1;
            }
        }
        (used, requested, short)
    }

    /// Tags in use or licensed in `va`.
    fn tags_of(&self, va: VaId) -> std::collections::BTreeSet<String> {
        let mut tags: std::collections::BTreeSet<String> = self
            .licenses_in(va)
            .map(|l| l.entitlement_tag.clone())
            .collect();
        if let Some(set) = self.fleet.tags_in_use.get(&va) {
            tags.extend(set.iter().map(|t| t.to_string()));
        }
        if let Some(set) = self.reserves.reserved.get(&va) {
            tags.extend(set.keys().cloned());
        }
        tags
    }

    /// The compliance report of the given VAs; `only_short` keeps lines with a shortage.
    /// Where spare units are is computed once per tag for the whole report (`spare.rs`), so
    /// the cost does not grow with short lines × VAs.
    pub fn compliance(
        &self,
        vas: &[VaId],
        now: OffsetDateTime,
        only_short: bool,
    ) -> Vec<ComplianceLine> {
        let mut spare = SpareMemo::default();
        let mut out = Vec::new();
        for &va in vas {
            for tag in self.tags_of(va) {
                let (purchased, export) = self.stock_of(va, &tag, now);
                let (granted, requested, devices_short) =
                    self.allocate(va, &tag, purchased, export);
                if only_short && requested <= granted {
                    continue;
                }
                let spare_in = if requested > granted {
                    spare.elsewhere(self, va, &tag, now)
                } else {
                    SpareIn::default()
                };
                out.push(ComplianceLine {
                    va,
                    entitlement_tag: tag,
                    purchased,
                    requested,
                    granted,
                    devices_short,
                    spare_in,
                });
            }
        }
        out
    }

    /// Units of `tag` in `va` that nothing claims: valid units beyond what the VA's devices ask
    /// for and what is reserved there. Units left over only because an over-subscribed VA's
    /// allocation stopped early are not spare (taking them would deepen its shortage). O(1)
    /// unless the tag is export-controlled in the VA.
    pub fn spare(&self, va: VaId, tag: &str, now: OffsetDateTime) -> u64 {
        #[cfg(test)]
        SPARE_CALLS.with(|n| n.set(n.get() + 1));
        let (purchased, export) = self.stock_of(va, tag, now);
        let claimed = match export {
            // Devices that may not use the tag claim nothing; `allocate` counts reservations.
            Some(true) => self.allocate(va, tag, purchased, export).1,
            _ => self
                .pool_of(va, tag)
                .map_or(0, |p| p.total)
                .saturating_add(self.reserved(va, tag)),
        };
        purchased.saturating_sub(claimed)
    }

    /// Other VAs of the same account holding spare units of `tag`, most first: for one
    /// question (a reservation refused); a report keeps one [`SpareMemo`] for all its lines.
    pub(super) fn spare_elsewhere(&self, va: VaId, tag: &str, now: OffsetDateTime) -> SpareIn {
        SpareMemo::default().elsewhere(self, va, tag, now)
    }

    /// The earliest future instant at which a license of `va` starts or ends: compliance may
    /// change then without any request.
    pub fn next_license_boundary(&self, va: VaId, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.licenses_in(va)
            .filter_map(|l| match l.kind {
                LicenseKind::Term { start, end } => {
                    [start, end].into_iter().filter(|t| *t > now).min()
                }
                LicenseKind::Perpetual => None,
            })
            .min()
    }
}
