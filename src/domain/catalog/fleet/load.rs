//! Loading the devices area from the store in bulk.
//!
//! A device read at start-up goes into the two hash tables at once (by id, by UDI) but its
//! B-tree index entries are only collected; [`Fleet::build_staged`] sorts them and builds each
//! B-tree from its sorted run. At a million devices that replaces about seven million inserts
//! at random places in large trees (each a descent with its cache misses, and nodes split to
//! half full) by sorts and a left-to-right build whose nodes are full: start-up spends seconds
//! less and the trees take less memory.

use std::collections::BTreeSet;

use crate::domain::catalog::fleet::{
    Fleet, Pool, TextKey, contact_key, share_texts, text_key, udi_key, udi_rehash,
};
use crate::domain::ids::{InstanceId, VaId};
use crate::domain::model::{ProductInstance, Tag};

/// Index entries of loaded devices, not yet in their B-trees.
#[derive(Debug, Default)]
pub(in crate::domain) struct Staged {
    by_va: Vec<(VaId, InstanceId)>,
    by_serial_text: Vec<(TextKey, InstanceId)>,
    by_hostname: Vec<(TextKey, InstanceId)>,
    by_contact: Vec<(i64, InstanceId)>,
    /// (VA, tag, registration order, device, units): one per device and tag it uses.
    pools: Vec<PoolEntry>,
}

#[derive(Debug)]
struct PoolEntry {
    va: VaId,
    tag: Tag,
    order: u64,
    id: InstanceId,
    count: u64,
}

impl Staged {
    pub fn is_empty(&self) -> bool {
        self.by_va.is_empty() && self.pools.is_empty()
    }
}

/// A device as a loading thread hands it over: boxed as the catalog keeps it, with its UDI
/// index key already computed (both cost the indexing thread time it cannot share).
#[derive(Debug)]
pub struct PreparedInstance {
    instance: Box<ProductInstance>,
    udi_key: u64,
}

/// Prepares devices on any thread; made by [`crate::domain::CatalogLoad::preparer`], so its
/// UDI keys are the ones the catalog computes.
#[derive(Clone, Debug)]
pub struct Preparer {
    udi_hasher: std::hash::RandomState,
}

impl Preparer {
    pub fn prepare(&self, i: ProductInstance) -> PreparedInstance {
        PreparedInstance {
            udi_key: udi_key(&self.udi_hasher, i.account, &i.udi),
            instance: Box::new(i),
        }
    }
}

impl Fleet {
    /// Makes room for `n` more devices in the hash tables and the staged entries: growing them
    /// by doubling would copy each several times.
    pub fn reserve(&mut self, n: usize, staged: &mut Staged) {
        self.instances.reserve(n);
        let rehash = udi_rehash(&self.instances, &self.udi_hasher);
        self.instances_by_udi.reserve(n, rehash);
        staged.by_va.reserve(n);
        staged.by_serial_text.reserve(n);
        staged.by_hostname.reserve(n);
        staged.by_contact.reserve(n);
        staged.pools.reserve(n * 2);
    }

    pub fn preparer(&self) -> Preparer {
        Preparer {
            udi_hasher: self.udi_hasher.clone(),
        }
    }

    /// Adds a device read from the store: into the hash tables now, into the B-trees when
    /// [`Fleet::build_staged`] runs. Each stored device comes once; should one come twice,
    /// the staged entries are built first and the second copy replaces the first the
    /// ordinary way.
    pub fn stage(&mut self, prepared: PreparedInstance, staged: &mut Staged) {
        let PreparedInstance {
            instance: mut i,
            udi_key,
        } = prepared;
        if self.instances.contains_key(&i.id) {
            self.build_staged(staged);
            return self.put(*i);
        }
        // Not in the catalog (checked above): no former copy to look for.
        share_texts(&mut self.texts, &mut self.tag_names, &mut i, None);
        self.next_order = self.next_order.max(i.order + 1);
        if let Some(serial) = &i.cert_serial {
            self.instances_by_serial.insert(serial.clone(), i.id);
        }
        if i.clock_skew {
            self.skewed.insert(i.id);
        }
        staged.by_va.push((i.va, i.id));
        staged.by_serial_text.push((text_key(&i.udi.serial), i.id));
        staged.by_hostname.push((text_key(&i.hostname), i.id));
        staged.by_contact.push((contact_key(i.last_contact), i.id));
        for (tag, count) in &i.usage {
            staged.pools.push(PoolEntry {
                va: i.va,
                tag: tag.clone(),
                order: i.order,
                id: i.id,
                count: *count,
            });
        }
        let id = i.id;
        self.instances.insert(i);
        self.add_udi(udi_key, id);
    }

    /// Puts every staged entry into its B-tree, leaving `staged` empty: the serial, host-name
    /// and contact sets on one thread, the per-VA sets and the pools on this one.
    pub fn build_staged(&mut self, staged: &mut Staged) {
        if staged.is_empty() {
            return;
        }
        let Staged {
            by_va,
            by_serial_text,
            by_hostname,
            by_contact,
            pools,
        } = std::mem::take(staged);
        let Fleet {
            instances_by_va,
            by_serial_text: serial_set,
            by_hostname: hostname_set,
            by_contact: contact_set,
            pools: pool_map,
            tags_in_use,
            ..
        } = self;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                merge_sorted(serial_set, by_serial_text, text_order);
                merge_sorted(hostname_set, by_hostname, text_order);
                merge_sorted(contact_set, by_contact, |(t, id)| (*t, id_order(id)));
            });
            build_by_va(instances_by_va, by_va);
            build_pools(pool_map, tags_in_use, pools);
        });
    }
}

/// Adds `entries` to `set`: built from the sorted run when the set is empty (the load), one by
/// one otherwise. `key` orders entries as `T`'s `Ord` does, as integers: ids and text keys
/// compare bytewise, which as arrays is a `memcmp` call per comparison.
fn merge_sorted<T: Ord + Copy, K: Ord>(
    set: &mut BTreeSet<T>,
    mut entries: Vec<T>,
    key: impl Fn(&T) -> K,
) {
    entries.sort_unstable_by_key(key);
    put_sorted(set, entries);
}

/// Adds entries already in order to `set`: built from them when the set is empty.
fn put_sorted<T: Ord>(set: &mut BTreeSet<T>, sorted: impl IntoIterator<Item = T>) {
    if set.is_empty() {
        *set = sorted.into_iter().collect();
    } else {
        set.extend(sorted);
    }
}

/// An id as an integer in the same order as its bytes.
fn id_order(id: &InstanceId) -> u128 {
    u128::from_be_bytes(*id.as_bytes())
}

fn text_order((text, id): &(TextKey, InstanceId)) -> (u64, u128) {
    (u64::from_be_bytes(*text), id_order(id))
}

fn build_by_va(
    by_va: &mut super::IdMap<VaId, BTreeSet<InstanceId>>,
    mut entries: Vec<(VaId, InstanceId)>,
) {
    entries.sort_unstable_by_key(|(va, id)| (u128::from_be_bytes(*va.as_bytes()), id_order(id)));
    for run in entries.chunk_by(|a, b| a.0 == b.0) {
        put_sorted(
            by_va.entry(run[0].0).or_default(),
            run.iter().map(|(_, id)| *id),
        );
    }
}

/// Builds the per-(VA, tag) pools. Tags are interned, so entries of one tag share one
/// allocation: grouping compares addresses, not strings.
fn build_pools(
    pools: &mut super::IdMap<VaId, std::collections::HashMap<Tag, Pool>>,
    tags_in_use: &mut super::IdMap<VaId, BTreeSet<Tag>>,
    mut entries: Vec<PoolEntry>,
) {
    let tag_addr = |e: &PoolEntry| e.tag.as_ptr() as usize;
    entries.sort_unstable_by_key(|e| (u128::from_be_bytes(*e.va.as_bytes()), tag_addr(e), e.order));
    for run in entries.chunk_by(|a, b| a.va == b.va && tag_addr(a) == tag_addr(b)) {
        let (va, tag) = (run[0].va, &run[0].tag);
        let pool = pools.entry(va).or_default().entry(tag.clone()).or_default();
        if pool.users.is_empty() {
            tags_in_use.entry(va).or_default().insert(tag.clone());
        }
        let users = run.iter().map(|e| (e.order, (e.id, e.count)));
        if pool.users.is_empty() {
            pool.users = users.collect();
        } else {
            pool.users.extend(users);
        }
        pool.total += run.iter().map(|e| e.count).sum::<u64>();
    }
}
