//! The child's outbox: the difference between the dedicated subtree as it is now and what the
//! upstream acknowledged ([`super::SyncedItem`]). Nothing is queued, so nothing can diverge:
//! an item is in the outbox exactly when its current digest differs from the acknowledged one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use time::OffsetDateTime;

use super::key::{DEVICE_KEY_PREFIX, DeviceFacts, OutboxKey, UsageNumbers, rum_digest};
use super::messages::{ChildChange, OutItem};
use crate::domain::catalog::Catalog;
use crate::domain::catalog::{RemoteInstance, UpstreamBinding};
use crate::domain::ids::{InstanceId, VaId};
use crate::domain::model::ProductInstance;

/// The VAs of the dedicated subtree, parents first, and as a set.
struct Subtree {
    vas: Vec<VaId>,
    set: HashSet<VaId>,
}

impl Subtree {
    fn contains(&self, va: VaId) -> bool {
        self.set.contains(&va)
    }
}

/// A device the child reports upward: one registered here, or one a child of this satellite
/// reported (tiers compose).
#[derive(Clone, Copy)]
enum OutDevice<'a> {
    Local(&'a ProductInstance),
    Remote(&'a RemoteInstance),
}

impl OutDevice<'_> {
    fn va(&self) -> VaId {
        match self {
            OutDevice::Local(i) => i.va,
            OutDevice::Remote(r) => r.va,
        }
    }

    /// What the upstream is told about the device, its VA named by `path`.
    fn facts<'p>(&'p self, id: &'p str, path: &'p str) -> DeviceFacts<'p> {
        match self {
            OutDevice::Local(i) => DeviceFacts {
                id,
                va: path,
                udi: &i.udi,
                hostname: &i.hostname,
                product: &i.product,
                version: &i.version,
                registered_at: i.registered_at.into(),
            },
            OutDevice::Remote(r) => DeviceFacts {
                id,
                va: path,
                udi: &r.udi,
                hostname: &r.hostname,
                product: &r.product,
                version: &r.version,
                registered_at: r.registered_at,
            },
        }
    }
}

/// The registrations of the dedicated subtree that differ from what the upstream acknowledged,
/// found a chunk of devices at a time ([`Catalog::scan_registrations`]), so that the caller can
/// let go of the catalog between chunks: at a million devices the whole scan takes over a
/// second, during which no device could otherwise report. A device that changes while the scan
/// goes on is seen as it was or as it is (or, moved to a VA already scanned, not at all): the
/// outbox is a difference, so what one scan misses the next one finds, and every registration
/// that goes into a request is checked against the catalog as it is then
/// ([`Catalog::outbox_scanned`]).
#[derive(Debug, Default)]
pub struct RegistrationScan {
    /// The subtree's VAs when the scan began, parents first.
    vas: Vec<VaId>,
    /// The VA being scanned, and the last device of it looked at.
    next_va: usize,
    after: Option<InstanceId>,
    done: bool,
    /// Whether `found` is in order ([`RegistrationScan::finish`]).
    sorted: bool,
    /// What was found, oldest registration first once the scan is finished.
    found: Vec<Found>,
}

/// A registration found by a [`RegistrationScan`]: when, and which device.
#[derive(Debug)]
struct Found {
    registered_at: OffsetDateTime,
    id: String,
}

/// Buffers reused while a scan looks at devices: the device's id and outbox key as text, and
/// the VAs' paths.
#[derive(Default)]
struct Looked {
    id: String,
    key: String,
    paths: BTreeMap<VaId, String>,
}

impl RegistrationScan {
    /// Whether every device has been looked at.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Puts what a done scan found in the order requests carry registrations, oldest first,
    /// without the catalog (at a million devices the sort takes a few hundred milliseconds).
    /// A device moved to a VA scanned later was seen twice: once is enough, since what is sent
    /// is checked again anyway.
    pub fn finish(&mut self) {
        if self.sorted {
            return;
        }
        self.found.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        self.found.dedup_by(|a, b| a.id == b.id);
        self.found
            .sort_unstable_by(|a, b| (a.registered_at, &a.id).cmp(&(b.registered_at, &b.id)));
        self.sorted = true;
    }

    /// What a done and finished scan found; nothing for any other, rather than registrations
    /// in the wrong order.
    fn ready(&self) -> &[Found] {
        if self.done && self.sorted {
            &self.found
        } else {
            &[]
        }
    }
}

impl Catalog {
    /// A scan of the registrations to send, not yet begun: nothing to find when this satellite
    /// is bound to no upstream.
    pub fn registration_scan(&self) -> RegistrationScan {
        match &self.sync.binding {
            // Room for every device at once: growing the list inside a chunk would copy tens of
            // megabytes while the catalog is held (pages not written to cost no memory).
            Some(b) => RegistrationScan {
                vas: self.subtree(b.root),
                found: Vec::with_capacity(
                    self.fleet.instances.len() + self.sync.remote_instances.len(),
                ),
                ..RegistrationScan::default()
            },
            None => RegistrationScan {
                done: true,
                ..RegistrationScan::default()
            },
        }
    }

    /// Looks at up to `budget` more devices of `scan` (the children's devices in one go, at
    /// the end), and returns whether the scan is done.
    pub fn scan_registrations(&self, scan: &mut RegistrationScan, budget: usize) -> bool {
        if scan.done {
            return true;
        }
        let mut looked = Looked::default();
        let mut seen = 0;
        while let Some(&va) = scan.vas.get(scan.next_va) {
            for device in self.instances_in_after(va, scan.after) {
                if seen == budget {
                    return false;
                }
                seen += 1;
                scan.after = Some(device.id);
                looked.id.clear();
                let _ = write!(looked.id, "{}", device.id);
                if let Some(found) = self.changed(OutDevice::Local(device), &mut looked) {
                    scan.found.push(found);
                }
            }
            scan.next_va += 1;
            scan.after = None;
        }
        let set: HashSet<VaId> = scan.vas.iter().copied().collect();
        for r in self.sync.remote_instances.values() {
            if set.contains(&r.va) {
                looked.id.clear();
                looked.id.push_str(&r.id);
                if let Some(found) = self.changed(OutDevice::Remote(r), &mut looked) {
                    scan.found.push(found);
                }
            }
        }
        scan.done = true;
        true
    }

    /// The registration of `device` (its id in `looked.id`) if it differs from the
    /// acknowledged one.
    fn changed(&self, device: OutDevice<'_>, looked: &mut Looked) -> Option<Found> {
        let path = looked
            .paths
            .entry(device.va())
            .or_insert_with(|| self.domain_path(device.va()));
        let facts = device.facts(&looked.id, path);
        let digest = facts.digest();
        looked.key.clear();
        looked.key.push_str(DEVICE_KEY_PREFIX);
        looked.key.push_str(&looked.id);
        (self.sync.synced.get(looked.key.as_str()) != Some(&digest)).then(|| Found {
            registered_at: facts.registered_at,
            id: looked.id.clone(),
        })
    }

    /// What the upstream has not acknowledged yet, oldest kinds first (removals, registrations,
    /// usage, RUM reports), at most `max` items, and how many there are in all. RUM items carry
    /// no `raw` yet: the engine reads it from the store. Scans every device at once; see
    /// [`RegistrationScan`] for a scan in chunks.
    pub fn outbox(&self, max: usize, now: OffsetDateTime) -> (Vec<OutItem>, usize) {
        self.outbox_scanned(&self.whole_scan(), max, now)
    }

    /// A registration scan of every device at once, finished.
    fn whole_scan(&self) -> RegistrationScan {
        let mut scan = self.registration_scan();
        self.scan_registrations(&mut scan, usize::MAX);
        scan.finish();
        scan
    }

    /// [`Catalog::outbox`] with the registrations of a done and finished `scan` (in any other
    /// it finds none), each checked against
    /// the catalog as it is now: a device gone or moved out of the subtree is left out (its
    /// removal is among the removals), one changed since goes with its current facts, one the
    /// upstream has acknowledged since is skipped. The count is the scan's for registrations.
    pub fn outbox_scanned(
        &self,
        scan: &RegistrationScan,
        max: usize,
        now: OffsetDateTime,
    ) -> (Vec<OutItem>, usize) {
        let Some(b) = &self.sync.binding else {
            return (Vec::new(), 0);
        };
        let vas = self.subtree(b.root);
        let tree = Subtree {
            set: vas.iter().copied().collect(),
            vas,
        };
        let removals = self.removed_devices(&tree);
        let usage = self.changed_usage(&tree, now);
        let rums = self.unsent_rum(&tree);
        let total = removals.len() + scan.ready().len() + usage.len() + rums.len();

        let mut out: Vec<OutItem> = removals.into_iter().take(max).collect();
        if out.len() < max {
            self.registrations_now(scan, &tree, max - out.len(), &mut out);
        }
        let room = max.saturating_sub(out.len());
        out.extend(usage.into_iter().chain(rums).take(room));
        (out, total)
    }

    /// Up to `room` registrations of `scan` as they are now, into `out`.
    fn registrations_now(
        &self,
        scan: &RegistrationScan,
        tree: &Subtree,
        room: usize,
        out: &mut Vec<OutItem>,
    ) {
        let remote: HashMap<&str, &RemoteInstance> = self
            .sync
            .remote_instances
            .values()
            .filter(|r| tree.contains(r.va))
            .map(|r| (r.id.as_str(), r))
            .collect();
        let mut paths: BTreeMap<VaId, String> = BTreeMap::new();
        let mut added = 0;
        for found in scan.ready() {
            if added == room {
                break;
            }
            let local = found
                .id
                .parse::<InstanceId>()
                .ok()
                .and_then(|i| self.fleet.instances.get(&i))
                .filter(|i| tree.contains(i.va))
                .map(OutDevice::Local);
            let Some(device) =
                local.or_else(|| remote.get(found.id.as_str()).map(|r| OutDevice::Remote(r)))
            else {
                continue;
            };
            let path = paths
                .entry(device.va())
                .or_insert_with(|| self.domain_path(device.va()));
            let facts = device.facts(&found.id, path);
            let digest = facts.digest();
            let key = facts.key();
            if self.sync.synced.get(&key.to_string()) == Some(&digest) {
                continue;
            }
            out.push(OutItem {
                key,
                digest: Some(digest),
                change: facts.change(),
            });
            added += 1;
        }
    }

    /// Removals: acknowledged devices no longer in the subtree.
    fn removed_devices(&self, tree: &Subtree) -> Vec<OutItem> {
        let remote_ids: HashSet<&str> = self
            .sync
            .remote_instances
            .values()
            .filter(|r| tree.contains(r.va))
            .map(|r| r.id.as_str())
            .collect();
        let mut removals = Vec::new();
        for stored in self.sync.synced.keys() {
            let Ok(OutboxKey::Device(id)) = stored.parse::<OutboxKey>() else {
                continue;
            };
            let here = id
                .parse::<InstanceId>()
                .ok()
                .and_then(|i| self.fleet.instances.get(&i))
                .is_some_and(|i| tree.contains(i.va))
                || remote_ids.contains(id.as_str());
            if !here {
                removals.push(OutItem {
                    key: OutboxKey::Device(id.clone()),
                    digest: None,
                    change: ChildChange::Removal {
                        instance_id: id,
                        reason: "removed".into(),
                    },
                });
            }
        }
        sort_by_stored_key(&mut removals);
        removals
    }

    /// The usage numbers of the devices and reservations of this satellite in one VA and tag.
    fn local_usage(&self, va: VaId, tag: &str, now: OffsetDateTime) -> UsageNumbers {
        let (granted, requested, _) = self.granted(va, tag, now);
        let devices = self.pool_of(va, tag).map_or(0, |p| p.users.len() as u64);
        UsageNumbers {
            devices,
            requested,
            granted,
        }
    }

    /// Usage snapshots per VA and tag (local devices and reservations, and children's) that
    /// differ from the acknowledged ones; a tag no longer used anywhere in a VA is reported
    /// once with zeros.
    fn changed_usage(&self, tree: &Subtree, now: OffsetDateTime) -> Vec<OutItem> {
        let mut usage: BTreeMap<(VaId, String), UsageNumbers> = BTreeMap::new();
        for &va in &tree.vas {
            for tag in self.local_tags(va) {
                let e = usage.entry((va, tag.to_string())).or_default();
                *e = e.add(self.local_usage(va, tag, now));
            }
        }
        for u in self
            .sync
            .remote_usage
            .values()
            .filter(|u| tree.contains(u.va))
        {
            let e = usage.entry((u.va, u.tag.clone())).or_default();
            *e = e.add(remote_numbers(u));
        }
        let mut usages = Vec::new();
        let mut current: HashSet<String> = HashSet::new();
        for ((va, tag), numbers) in usage {
            let va = self.domain_path(va);
            let item = usage_item(va, tag, numbers, now);
            let stored = item.key.to_string();
            let acknowledged = self.sync.synced.get(&stored) == item.digest.as_ref();
            current.insert(stored);
            if !acknowledged {
                usages.push(item);
            }
        }
        for stored in self.sync.synced.keys().filter(|k| !current.contains(*k)) {
            if let Ok(OutboxKey::Usage { va, tag }) = stored.parse() {
                let mut zeros = usage_item(va, tag, UsageNumbers::default(), now);
                zeros.digest = None;
                usages.push(zeros);
            }
        }
        sort_by_stored_key(&mut usages);
        usages
    }

    /// The tags this satellite's devices or reservations use in `va`.
    fn local_tags(&self, va: VaId) -> BTreeSet<&str> {
        let in_use = self.fleet.tags_in_use.get(&va).into_iter().flatten();
        let reserved = self
            .reserves
            .reserved
            .get(&va)
            .into_iter()
            .flat_map(|r| r.keys());
        in_use
            .map(|t| &**t)
            .chain(reserved.map(String::as_str))
            .collect()
    }

    /// Cisco RUM reports of devices in the subtree, and those children relayed, not yet
    /// acknowledged.
    fn unsent_rum(&self, tree: &Subtree) -> Vec<OutItem> {
        let mut rums = Vec::new();
        let mut push = |serial: &str, report_id: u64, udi: &crate::domain::Udi, raw: &str| {
            let key = OutboxKey::Rum {
                serial: serial.to_string(),
                report_id,
            };
            if !self.sync.synced.contains_key(&key.to_string()) {
                rums.push(OutItem {
                    digest: Some(rum_digest(&key)),
                    key,
                    change: ChildChange::Rum {
                        report_id,
                        udi: udi.clone(),
                        raw: raw.to_string(),
                    },
                });
            }
        };
        for ((serial, report_id), instance) in &self.fleet.rum_seen {
            if let Some(i) = self.fleet.instances.get(instance)
                && tree.contains(i.va)
            {
                push(serial, *report_id, &i.udi, "");
            }
        }
        for r in self.sync.relayed_rum.values() {
            if self.sync.child_sats.contains_key(&r.child) {
                push(&r.udi.serial, r.report_id, &r.udi, &r.raw);
            }
        }
        sort_by_stored_key(&mut rums);
        rums
    }

    /// Changes not in any request yet: the outbox, less the items of the outstanding request
    /// that have not changed since it was made. Scans every device at once.
    pub fn pending_count(&self, now: OffsetDateTime) -> usize {
        self.pending_count_scanned(&self.whole_scan(), now)
    }

    /// [`Catalog::pending_count`] with the registrations of a finished `scan`.
    pub fn pending_count_scanned(&self, scan: &RegistrationScan, now: OffsetDateTime) -> usize {
        let (_, total) = self.outbox_scanned(scan, 0, now);
        let Some(b) = &self.sync.binding else {
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
                    && self.sync.synced.get(key) != digest.as_ref()
            })
            .count();
        total.saturating_sub(in_flight)
    }

    /// The digest the outbox item stored as `key` would have now; `None` if it is gone.
    fn current_digest(
        &self,
        b: &UpstreamBinding,
        key: &str,
        now: OffsetDateTime,
    ) -> Option<[u8; 32]> {
        let key: OutboxKey = key.parse().ok()?;
        match &key {
            OutboxKey::Device(id) => {
                let local = id
                    .parse::<InstanceId>()
                    .ok()
                    .and_then(|i| self.fleet.instances.get(&i))
                    .map(OutDevice::Local);
                let remote = || {
                    self.sync
                        .remote_instances
                        .values()
                        .find(|r| r.id == *id && self.in_subtree(r.va, b.root))
                        .map(OutDevice::Remote)
                };
                let device = local
                    .filter(|d| self.in_subtree(d.va(), b.root))
                    .or_else(remote)?;
                Some(device.facts(id, &self.domain_path(device.va())).digest())
            }
            OutboxKey::Usage { va: path, tag } => {
                let va = self
                    .va_by_path(b.account, path)
                    .filter(|va| self.in_subtree(*va, b.root))?;
                self.current_usage(va, tag, now).map(|n| n.digest(&key))
            }
            OutboxKey::Rum { .. } => Some(rum_digest(&key)),
        }
    }

    /// The usage of one VA and tag as the outbox would report it; `None` if nothing uses it.
    fn current_usage(&self, va: VaId, tag: &str, now: OffsetDateTime) -> Option<UsageNumbers> {
        let local = self
            .fleet
            .tags_in_use
            .get(&va)
            .is_some_and(|t| t.contains(tag))
            || self
                .reserves
                .reserved
                .get(&va)
                .is_some_and(|r| r.contains_key(tag));
        let mut numbers = UsageNumbers::default();
        if local {
            numbers = numbers.add(self.local_usage(va, tag, now));
        }
        let mut remote = false;
        for u in self
            .sync
            .remote_usage
            .values()
            .filter(|u| u.va == va && u.tag == tag)
        {
            remote = true;
            numbers = numbers.add(remote_numbers(u));
        }
        (local || remote).then_some(numbers)
    }

    /// Items the upstream has acknowledged.
    pub fn synced_count(&self) -> usize {
        self.sync.synced.len()
    }
}

fn remote_numbers(u: &super::RemoteUsage) -> UsageNumbers {
    UsageNumbers {
        devices: u.devices,
        requested: u.units_requested,
        granted: u.units_granted,
    }
}

/// The usage item of one VA (by path) and tag, with the digest of its numbers.
fn usage_item(va: String, tag: String, numbers: UsageNumbers, now: OffsetDateTime) -> OutItem {
    let change = ChildChange::Usage {
        va: va.clone(),
        tag: tag.clone(),
        devices: numbers.devices,
        units_requested: numbers.requested,
        units_granted: numbers.granted,
        measured_at: now,
    };
    let key = OutboxKey::Usage { va, tag };
    OutItem {
        digest: Some(numbers.digest(&key)),
        key,
        change,
    }
}

/// Sorts items by the text their keys are stored as, the order requests always had.
fn sort_by_stored_key(items: &mut [OutItem]) {
    items.sort_by_cached_key(|i| i.key.to_string());
}
