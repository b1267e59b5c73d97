//! The fleet's two hash tables: devices by id, and devices by (account, UDI).
//!
//! Each holds one word or one id per device and no key beside it: the table of devices holds
//! the boxed records and finds one by the id inside it; the UDI table holds ids and tells
//! devices apart by their records. A `HashMap` keeps a copy of the key in every slot, and at a
//! million devices both tables have 2²¹ slots: a map of id → box took 25 bytes a slot (52 MiB),
//! this table 9 (19 MiB); a map of UDI hash → id took 25 bytes a slot, this table 17 (36 MiB).
//! A lookup compares the records of the slots whose 7-bit hash tag matches: almost always the
//! one it finds.

use std::hash::{BuildHasher, BuildHasherDefault};

use hashbrown::HashTable;

use crate::domain::catalog::IdHasher;
use crate::domain::ids::InstanceId;
use crate::domain::model::ProductInstance;

fn id_hash(id: &InstanceId) -> u64 {
    BuildHasherDefault::<IdHasher>::default().hash_one(id)
}

/// The devices by id.
#[derive(Clone, Debug, Default)]
pub(in crate::domain) struct Instances {
    table: HashTable<Box<ProductInstance>>,
}

impl Instances {
    pub fn get(&self, id: &InstanceId) -> Option<&ProductInstance> {
        self.table.find(id_hash(id), |i| i.id == *id).map(|b| &**b)
    }

    pub fn get_mut(&mut self, id: &InstanceId) -> Option<&mut ProductInstance> {
        self.table
            .find_mut(id_hash(id), |i| i.id == *id)
            .map(|b| &mut **b)
    }

    pub fn contains_key(&self, id: &InstanceId) -> bool {
        self.get(id).is_some()
    }

    /// Adds a device, replacing the record of the same id.
    pub fn insert(&mut self, i: Box<ProductInstance>) {
        match self
            .table
            .entry(id_hash(&i.id), |x| x.id == i.id, |x| id_hash(&x.id))
        {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = i,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(i);
            }
        }
    }

    pub fn remove(&mut self, id: &InstanceId) -> Option<Box<ProductInstance>> {
        let entry = self.table.find_entry(id_hash(id), |i| i.id == *id).ok()?;
        Some(entry.remove().0)
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &ProductInstance> + Clone {
        self.table.iter().map(|b| &**b)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn reserve(&mut self, n: usize) {
        self.table.reserve(n, |x| id_hash(&x.id));
    }
}

impl std::ops::Index<&InstanceId> for Instances {
    type Output = ProductInstance;

    fn index(&self, id: &InstanceId) -> &ProductInstance {
        self.get(id).expect("no device with this id")
    }
}

/// The devices by (account, UDI): ids under the fleet's keyed hash of their (account, UDI)
/// (UDIs come from outside), told apart by their records. The table rehashes an id when it
/// grows, with the `rehash` its caller passes (the fleet's: from the device's record).
#[derive(Clone, Debug, Default)]
pub(in crate::domain) struct ByUdi {
    table: HashTable<InstanceId>,
}

impl ByUdi {
    /// The first device that `is` accepts among those that may be under `key`: the table
    /// reads the slots whose 7-bit tag matches the key's, so `is` also tells apart devices
    /// under other keys.
    pub fn find(&self, key: u64, is: impl FnMut(&&InstanceId) -> bool) -> Option<InstanceId> {
        self.table.iter_hash(key).find(is).copied()
    }

    /// Every device under `key`, `key_of` giving each device's key (tests).
    #[cfg(test)]
    pub fn all(&self, key: u64, key_of: impl Fn(&InstanceId) -> u64) -> Vec<InstanceId> {
        let mut ids: Vec<InstanceId> = self
            .table
            .iter_hash(key)
            .filter(|x| key_of(x) == key)
            .copied()
            .collect();
        ids.sort();
        ids
    }

    /// Adds device `id` under `key`, once.
    pub fn insert(&mut self, key: u64, id: InstanceId, rehash: impl Fn(&InstanceId) -> u64) {
        if self.table.find(key, |x| *x == id).is_none() {
            self.table.insert_unique(key, id, rehash);
        }
    }

    /// Removes device `id` from under `key`, leaving the others there.
    pub fn remove(&mut self, key: u64, id: InstanceId) {
        if let Ok(entry) = self.table.find_entry(key, |x| *x == id) {
            entry.remove();
        }
    }

    pub fn reserve(&mut self, n: usize, rehash: impl Fn(&InstanceId) -> u64) {
        self.table.reserve(n, rehash);
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}
