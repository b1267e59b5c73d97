//! What a caller holds: the counts `status` shows, limited to what the caller may see.
//!
//! SPEC §7: every output is scoped. A system administrator sees the whole satellite; anyone
//! else sees the accounts, VAs, licenses, tokens and devices of their grants, and nothing that
//! would tell them how much else the satellite holds.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::access::Principal;
use super::catalog::Catalog;
use super::compliance::DeviceTimers;
use super::model::InstanceStatus;

/// Counts of the objects a caller may read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holdings {
    pub accounts: usize,
    pub virtual_accounts: usize,
    pub licenses: usize,
    pub tokens: usize,
    pub devices: usize,
    /// Devices by state as of their last report, aged by the clock.
    pub devices_by_state: BTreeMap<InstanceStatus, usize>,
}

impl Catalog {
    /// The counts `p` may see. For a system administrator these are satellite-wide totals,
    /// computed from the indexes; for anyone else a walk of the VAs `p` may read (and of their
    /// devices, for the states).
    pub fn holdings(&self, p: &Principal, now: OffsetDateTime, timers: &DeviceTimers) -> Holdings {
        let mut h = Holdings::default();
        let mut readable = Vec::new();
        for a in self.accounts().filter(|a| self.account_visible(p, a.id)) {
            h.accounts += 1;
            for v in self.vas_of(a.id) {
                if self.va_access(p, v.id).is_some() {
                    h.virtual_accounts += 1;
                    h.licenses += self.licenses_in(v.id).count();
                    h.tokens += self.tokens_in(v.id).count();
                    readable.push(v.id);
                }
            }
        }
        if p.is_system_admin() {
            h.devices = self.instance_count();
            h.devices_by_state = self.device_states(now, timers);
        } else {
            h.devices = readable.iter().map(|&va| self.instance_count_in(va)).sum();
            let devices = readable.iter().flat_map(|&va| self.instances_in(va));
            h.devices_by_state = Self::states_of(devices, now, timers);
        }
        h
    }
}
