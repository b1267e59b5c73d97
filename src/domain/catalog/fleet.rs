//! The devices area of the catalog: product instances and every index over them (by UDI, by
//! certificate serial, by VA, by last contact, the per-(VA, tag) pools compliance reads),
//! revoked certificates and the RUM reports already seen. Only this file changes them, so the
//! indexes always say what the device records say.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use time::OffsetDateTime;

use super::{IdMap, Removable, Stored};
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AccountId, InstanceId, VaId};
use crate::domain::model::{ProductInstance, RevokedCertificate, RumRecord, Tag, Udi};

/// The key of a contact time in [`Fleet::by_contact`].
pub(in crate::domain) fn contact_key(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos()
}

/// The devices of one VA that use one tag, in registration order.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    pub(in crate::domain) users: BTreeMap<u64, (InstanceId, u64)>,
    pub(in crate::domain) total: u64,
}

/// The devices whose (account, UDI) hash to one value: almost always one.
#[derive(Clone, Debug)]
pub(in crate::domain) enum UdiSlot {
    One(InstanceId),
    Many(Vec<InstanceId>),
}

/// The devices and their indexes. Read by the other domain files; changed only here.
#[derive(Clone, Debug, Default)]
pub(in crate::domain) struct Fleet {
    /// Boxed: a hash table keeps its values inline and grows by doubling, so at a million
    /// devices inline records would occupy two million ~470-byte slots.
    pub instances: IdMap<InstanceId, Box<ProductInstance>>,
    /// Devices by (account, UDI), keyed by a hash of both so the index holds no copies of
    /// the UDI strings; a collision keeps several ids, told apart by their records.
    pub instances_by_udi: IdMap<u64, UdiSlot>,
    pub udi_hasher: std::hash::RandomState,
    pub instances_by_serial: HashMap<String, InstanceId>,
    pub instances_by_va: IdMap<VaId, BTreeSet<InstanceId>>,
    /// Devices by last contact, oldest first, for the expiry sweep.
    /// Keyed by the contact time in nanoseconds since 1970 (cheaper to compare than an
    /// `OffsetDateTime`, which normalizes its offset on every comparison).
    pub by_contact: BTreeSet<(i128, InstanceId)>,
    /// Per VA and tag, the devices using the tag in registration order. Looked up by `&str`
    /// on every report, so keyed by VA, then by the interned tag.
    pub pools: IdMap<VaId, HashMap<Tag, Pool>>,
    pub tags_in_use: IdMap<VaId, BTreeSet<Tag>>,
    /// Every entitlement tag a device uses, shared by all of them.
    pub tag_names: HashSet<Tag>,
    /// Devices whose latest report had a skewed clock.
    pub skewed: BTreeSet<InstanceId>,
    /// The registration order the next device gets.
    pub next_order: u64,
    pub revoked: HashMap<String, RevokedCertificate>,
    /// RUM reports by (device serial, report id), with the device they were filed under.
    pub rum_seen: HashMap<(String, u64), InstanceId>,
}

impl Fleet {
    pub fn udi_key(&self, account: AccountId, udi: &Udi) -> u64 {
        use std::hash::BuildHasher;
        self.udi_hasher.hash_one((account, udi))
    }

    /// Adds a device read from the store. Each stored device comes once: it is indexed
    /// directly, without looking for an older copy to replace (a million lookups that all
    /// miss).
    pub fn load(&mut self, mut i: ProductInstance) {
        if self.instances.contains_key(&i.id) {
            return self.put(i);
        }
        self.intern_tags(&mut i);
        self.index(i);
    }

    /// Makes a device share the catalog's copy of each of its entitlement tags.
    fn intern_tags(&mut self, i: &mut ProductInstance) {
        i.usage.intern(&mut self.tag_names);
        if let Some(answer) = &mut i.last_answer {
            for (tag, _, _) in &mut answer.entitlements {
                *tag = crate::domain::model::intern(&mut self.tag_names, tag);
            }
        }
    }

    pub fn put(&mut self, mut i: ProductInstance) {
        self.intern_tags(&mut i);
        if let Some(old) = self.instances.get_mut(&i.id)
            && old.account == i.account
            && old.va == i.va
            && old.order == i.order
            && old.udi == i.udi
            && old.cert_serial == i.cert_serial
            && old.usage == i.usage
        {
            // A routine report or contact (the hot path) keeps every index key but the
            // contact time and the clock-skew flag: update those two in place rather than
            // un-indexing and re-indexing the device.
            if old.last_contact != i.last_contact {
                self.by_contact
                    .remove(&(contact_key(old.last_contact), i.id));
                self.by_contact.insert((contact_key(i.last_contact), i.id));
            }
            if i.clock_skew {
                self.skewed.insert(i.id);
            } else {
                self.skewed.remove(&i.id);
            }
            **old = i;
        } else {
            self.take(i.id);
            self.index(i);
        }
    }

    fn index(&mut self, i: ProductInstance) {
        self.next_order = self.next_order.max(i.order + 1);
        let key = self.udi_key(i.account, &i.udi);
        match self.instances_by_udi.entry(key) {
            Entry::Vacant(e) => {
                e.insert(UdiSlot::One(i.id));
            }
            Entry::Occupied(mut e) => match e.get_mut() {
                UdiSlot::One(other) if *other == i.id => {}
                UdiSlot::One(other) => {
                    let other = *other;
                    e.insert(UdiSlot::Many(vec![other, i.id]));
                }
                UdiSlot::Many(ids) => {
                    if !ids.contains(&i.id) {
                        ids.push(i.id);
                    }
                }
            },
        }
        if let Some(serial) = &i.cert_serial {
            self.instances_by_serial.insert(serial.clone(), i.id);
        }
        self.instances_by_va.entry(i.va).or_default().insert(i.id);
        self.by_contact.insert((contact_key(i.last_contact), i.id));
        if i.clock_skew {
            self.skewed.insert(i.id);
        }
        for (tag, count) in &i.usage {
            let pool = self
                .pools
                .entry(i.va)
                .or_default()
                .entry(tag.clone())
                .or_default();
            let fresh = pool.users.is_empty();
            pool.users.insert(i.order, (i.id, *count));
            pool.total += count;
            // A new pool is the first device of the tag in this VA: only then is the tag new.
            if fresh {
                self.tags_in_use
                    .entry(i.va)
                    .or_default()
                    .insert(tag.clone());
            }
        }
        self.instances.insert(i.id, Box::new(i));
    }

    pub fn take(&mut self, id: InstanceId) {
        let Some(i) = self.instances.remove(&id) else {
            return;
        };
        let key = self.udi_key(i.account, &i.udi);
        if let Entry::Occupied(mut e) = self.instances_by_udi.entry(key) {
            match e.get_mut() {
                UdiSlot::One(other) if *other == id => {
                    e.remove();
                }
                UdiSlot::One(_) => {}
                UdiSlot::Many(ids) => {
                    ids.retain(|x| *x != id);
                    if let [only] = ids[..] {
                        e.insert(UdiSlot::One(only));
                    }
                }
            }
        }
        if let Some(serial) = &i.cert_serial {
            self.instances_by_serial.remove(serial);
        }
        if let Some(set) = self.instances_by_va.get_mut(&i.va) {
            set.remove(&id);
        }
        self.by_contact.remove(&(contact_key(i.last_contact), id));
        self.skewed.remove(&id);
        self.leave_pools(&i);
    }

    /// Removes a device from the pools of the tags it used.
    fn leave_pools(&mut self, i: &ProductInstance) {
        for (tag, count) in &i.usage {
            let Some(pools) = self.pools.get_mut(&i.va) else {
                continue;
            };
            if let Some(pool) = pools.get_mut(&**tag) {
                pool.users.remove(&i.order);
                pool.total -= count;
                if pool.users.is_empty() {
                    pools.remove(&**tag);
                    if pools.is_empty() {
                        self.pools.remove(&i.va);
                    }
                    if let Some(tags) = self.tags_in_use.get_mut(&i.va) {
                        tags.remove(&**tag);
                    }
                }
            }
        }
    }
}

impl Stored for ProductInstance {
    fn put(self, c: &mut Catalog) {
        c.fleet.put(self);
    }
}

impl Removable for ProductInstance {
    type Key = InstanceId;
    fn take(id: InstanceId, c: &mut Catalog) {
        c.fleet.take(id);
    }
}

impl Stored for RevokedCertificate {
    fn put(self, c: &mut Catalog) {
        c.fleet.revoked.insert(self.serial.clone(), self);
    }
}

impl Removable for RevokedCertificate {
    type Key = String;
    fn take(serial: String, c: &mut Catalog) {
        c.fleet.revoked.remove(&serial);
    }
}

impl Stored for RumRecord {
    fn put(self, c: &mut Catalog) {
        let holder = super::ReportHolder::Local(self.instance);
        c.cisco
            .hold(&self.udi, self.report_id, holder, self.received_at);
        c.fleet
            .rum_seen
            .insert((self.udi.serial, self.report_id), self.instance);
    }
}
