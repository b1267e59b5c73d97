//! The devices area of the catalog: product instances and every index over them (by UDI, by
//! certificate serial, by VA, by last contact, the per-(VA, tag) pools compliance reads),
//! revoked certificates and the RUM reports already seen. Only this file changes them, so the
//! indexes always say what the device records say.

use std::collections::{BTreeSet, HashMap, HashSet};

use time::OffsetDateTime;

use super::{IdMap, Removable, Stored};
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AccountId, InstanceId, VaId};
use crate::domain::model::{
    ProductInstance, RevokedCertificate, RumRecord, Stamp, Tag, Text, Udi, intern,
};

mod load;
mod pool;
mod tables;
pub(in crate::domain) use pool::PoolUsers;
pub(in crate::domain) use tables::{ByUdi, Instances};
#[cfg(test)]
mod tests;
pub(in crate::domain) use load::Staged;
pub use load::{PreparedInstance, Preparer};

/// The key of a contact time in [`Fleet::by_contact`]: nanoseconds since 1970 in an `i64`
/// (years 1677 to 2262; times beyond are clamped, so readers that need the exact order check
/// the record). Half an `i128`'s width, which with its alignment made each entry 32 bytes
/// rather than 24.
pub(in crate::domain) fn contact_key(t: Stamp) -> i64 {
    let nanos = t.unix_nanos();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

/// The first [`TEXT_KEY_BYTES`] bytes of a text, ASCII letters lowercased, zero-padded: the
/// sort key of the prefix indexes. Texts that share these bytes share the key; a search for a
/// longer prefix walks them all and checks each whole text.
pub type TextKey = [u8; TEXT_KEY_BYTES];
pub const TEXT_KEY_BYTES: usize = 8;

pub fn text_key(s: &str) -> TextKey {
    let mut key = [0u8; TEXT_KEY_BYTES];
    for (k, b) in key.iter_mut().zip(s.bytes()) {
        *k = b.to_ascii_lowercase();
    }
    key
}

/// The devices of one VA that use one tag, in registration order.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    pub(in crate::domain) users: PoolUsers,
    pub(in crate::domain) total: u64,
}

/// The key of (account, UDI) in [`Fleet::instances_by_udi`]: a keyed hash, so the index holds
/// no copies of the strings. The one definition, for the catalog and for loading threads.
fn udi_key(hasher: &std::hash::RandomState, account: AccountId, udi: &Udi) -> u64 {
    use std::hash::BuildHasher;
    hasher.hash_one((account, udi))
}

/// How the UDI table rehashes a device it grows over: from the device's record, which every
/// id in it has in `instances`.
fn udi_rehash<'a>(
    instances: &'a Instances,
    hasher: &'a std::hash::RandomState,
) -> impl Fn(&InstanceId) -> u64 + 'a {
    move |id| {
        let i = instances
            .get(id)
            .expect("every device in the UDI index has its record in the catalog");
        udi_key(hasher, i.account, &i.udi)
    }
}

/// Makes `i` share the catalog's copy of its texts (`texts`: product, version, product id) and
/// tags (`tag_names`); `old` is the device's record already in the catalog, whose texts it
/// takes back when they are unchanged (a report), without a lookup.
fn share_texts(
    texts: &mut HashSet<Text>,
    tag_names: &mut HashSet<Tag>,
    i: &mut ProductInstance,
    old: Option<&ProductInstance>,
) {
    for (text, before) in [
        (&mut i.product, old.map(|o| &o.product)),
        (&mut i.version, old.map(|o| &o.version)),
        (&mut i.udi.pid, old.map(|o| &o.udi.pid)),
    ] {
        *text = match before {
            Some(before) if before == text => before.clone(),
            _ => intern(texts, text),
        };
    }
    i.usage.intern(tag_names);
    if let Some(answer) = &mut i.last_answer {
        answer.intern(tag_names);
    }
}

/// The devices and their indexes. Read by the other domain files; changed only here.
#[derive(Clone, Debug, Default)]
pub(in crate::domain) struct Fleet {
    /// The boxed records, by id (`fleet/tables.rs`). Boxed: a hash table keeps its values
    /// inline and grows by doubling, so at a million devices inline records would occupy two
    /// million ~370-byte slots.
    pub instances: Instances,
    /// Devices by (account, UDI) under a keyed hash of both, so the index holds no copies of
    /// the UDI strings. Read through [`Fleet::by_udi`].
    pub instances_by_udi: ByUdi,
    pub udi_hasher: std::hash::RandomState,
    pub instances_by_serial: HashMap<Box<str>, InstanceId>,
    pub instances_by_va: IdMap<VaId, BTreeSet<InstanceId>>,
    /// Devices by the first bytes of their UDI serial number and of their host name (see
    /// [`TextKey`]), for the console's prefix searches. Fixed-size keys rather than copies of
    /// the strings: 24 bytes per device and index plus the B-tree's nodes.
    pub by_serial_text: BTreeSet<(TextKey, InstanceId)>,
    pub by_hostname: BTreeSet<(TextKey, InstanceId)>,
    /// Devices by last contact, oldest first, for the expiry sweep.
    /// Keyed by the contact time in nanoseconds since 1970 (cheaper to compare than an
    /// `OffsetDateTime`, which normalizes its offset on every comparison).
    pub by_contact: BTreeSet<(i64, InstanceId)>,
    /// Per VA and tag, the devices using the tag in registration order. Looked up by `&str`
    /// on every report, so keyed by VA, then by the interned tag.
    pub pools: IdMap<VaId, HashMap<Tag, Pool>>,
    pub tags_in_use: IdMap<VaId, BTreeSet<Tag>>,
    /// Every entitlement tag a device uses, shared by all of them.
    pub tag_names: HashSet<Tag>,
    /// Every product name, software version and product id (the UDI's) of a device, shared
    /// the same way: at a million devices, three allocations less per device.
    pub texts: HashSet<Text>,
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
        udi_key(&self.udi_hasher, account, udi)
    }

    /// The device of `account` with `udi`.
    pub fn by_udi(&self, account: AccountId, udi: &Udi) -> Option<&ProductInstance> {
        let id = self
            .instances_by_udi
            .find(self.udi_key(account, udi), |id| {
                self.instances
                    .get(id)
                    .is_some_and(|i| i.account == account && &i.udi == udi)
            })?;
        self.instances.get(&id)
    }

    /// Makes a device share the catalog's copy of each of its entitlement tags, of its product
    /// name and of its version. A device already here that keeps its product and version (a
    /// report) takes its former copies back, without a lookup.
    fn share_texts(&mut self, i: &mut ProductInstance) {
        let old = self.instances.get(&i.id);
        share_texts(&mut self.texts, &mut self.tag_names, i, old);
    }

    pub fn put(&mut self, mut i: ProductInstance) {
        self.share_texts(&mut i);
        if let Some(old) = self.instances.get_mut(&i.id)
            && old.account == i.account
            && old.va == i.va
            && old.order == i.order
            && old.udi == i.udi
            && old.hostname == i.hostname
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
            *old = i;
        } else {
            self.take(i.id);
            self.index(i);
        }
    }

    fn index(&mut self, i: ProductInstance) {
        self.next_order = self.next_order.max(i.order + 1);
        if let Some(serial) = &i.cert_serial {
            self.instances_by_serial.insert(serial.clone(), i.id);
        }
        self.instances_by_va.entry(i.va).or_default().insert(i.id);
        self.by_serial_text.insert((text_key(&i.udi.serial), i.id));
        self.by_hostname.insert((text_key(&i.hostname), i.id));
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
        let (id, key) = (i.id, self.udi_key(i.account, &i.udi));
        self.instances.insert(Box::new(i));
        self.add_udi(key, id);
    }

    /// Indexes device `id`, whose record is in the catalog already, under UDI key `key`.
    fn add_udi(&mut self, key: u64, id: InstanceId) {
        let rehash = udi_rehash(&self.instances, &self.udi_hasher);
        self.instances_by_udi.insert(key, id, rehash);
    }

    pub fn take(&mut self, id: InstanceId) {
        let Some(i) = self.instances.remove(&id) else {
            return;
        };
        let key = self.udi_key(i.account, &i.udi);
        self.instances_by_udi.remove(key, id);
        if let Some(serial) = &i.cert_serial {
            self.instances_by_serial.remove(&**serial);
        }
        if let Some(set) = self.instances_by_va.get_mut(&i.va) {
            set.remove(&id);
        }
        self.by_serial_text.remove(&(text_key(&i.udi.serial), id));
        self.by_hostname.remove(&(text_key(&i.hostname), id));
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

/// The lowest and highest ids, the ends of a key range.
const FIRST_ID: InstanceId = InstanceId(uuid::Uuid::nil());
const LAST_ID: InstanceId = InstanceId(uuid::Uuid::from_u128(u128::MAX));

/// Which text a prefix search reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextIndex {
    /// The serial number of the UDI.
    Serial,
    Hostname,
}

/// Reads of the device indexes that page: each starts after a key the caller had, so page N
/// costs a B-tree descent and the page, never the N pages before it.
impl Catalog {
    /// Devices whose last contact is before `before`, oldest first.
    pub fn silent_since(&self, before: OffsetDateTime) -> impl Iterator<Item = &ProductInstance> {
        let before = Stamp::from(before);
        self.fleet
            .by_contact
            .iter()
            .take_while(move |(t, _)| *t <= contact_key(before))
            .filter_map(|(_, id)| self.fleet.instances.get(id))
            .filter(move |i| i.last_contact < before)
    }

    /// The latest contact of any device, for the clock's high-water mark.
    pub fn latest_contact(&self) -> Option<OffsetDateTime> {
        self.fleet
            .by_contact
            .iter()
            .rev()
            .take_while(|(t, _)| Some(*t) == self.fleet.by_contact.last().map(|(t, _)| *t))
            .filter_map(|(_, id)| self.fleet.instances.get(id))
            .map(|i| i.last_contact)
            .max()
            .map(Stamp::get)
    }

    /// The devices of `va` in id order, after `after`.
    pub fn instances_in_after(
        &self,
        va: VaId,
        after: Option<InstanceId>,
    ) -> impl Iterator<Item = &ProductInstance> {
        use std::ops::Bound::{Excluded, Unbounded};
        let start = after.map_or(Unbounded, Excluded);
        self.fleet
            .instances_by_va
            .get(&va)
            .into_iter()
            .flat_map(move |set| set.range((start, Unbounded)))
            .filter_map(|id| self.fleet.instances.get(id))
    }

    /// Candidates for the devices whose `index` text starts with `prefix` (ASCII case
    /// ignored), in key order, after the key `after`, each with its key. A candidate shares
    /// the prefix's first [`TEXT_KEY_BYTES`] bytes: for a longer prefix the caller checks the
    /// whole text.
    pub fn instances_by_prefix(
        &self,
        index: TextIndex,
        prefix: &str,
        after: Option<(TextKey, InstanceId)>,
    ) -> impl Iterator<Item = ((TextKey, InstanceId), &ProductInstance)> {
        use std::ops::Bound::{Excluded, Included};
        let low = text_key(prefix);
        let mut high = low;
        for b in high.iter_mut().skip(prefix.len()) {
            *b = u8::MAX;
        }
        let (first, last) = ((low, FIRST_ID), (high, LAST_ID));
        let start = match after {
            Some(key) if key >= first => Excluded(key),
            _ => Included(first),
        };
        let set = match index {
            TextIndex::Serial => &self.fleet.by_serial_text,
            TextIndex::Hostname => &self.fleet.by_hostname,
        };
        // A cursor at or past the last key has nothing after it (and `range` would panic).
        let past = matches!(start, Excluded(k) if k >= last);
        (!past)
            .then(|| set.range((start, Included(last))))
            .into_iter()
            .flatten()
            .filter_map(|key| self.fleet.instances.get(&key.1).map(|i| (*key, i)))
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
            .insert((self.udi.serial.to_string(), self.report_id), self.instance);
    }
}
