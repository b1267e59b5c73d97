//! The fleet's two hash tables: devices by id, and devices by (account, UDI).
//!
//! Each holds one word or one id per device and no key beside it: the table of devices holds
//! the boxed records and finds one by the id inside it (`catalog/boxed.rs`); the UDI table holds
//! ids and tells devices apart by their records. A `HashMap` keeps a copy of the key in every
//! slot, and at a million devices both tables have 2²¹ slots: a map of id → box took 25 bytes a
//! slot (52 MiB), the table by id takes 9 (19 MiB); a map of UDI hash → id took 25 bytes a slot,
//! this table 17 (36 MiB).

use std::hash::BuildHasherDefault;

use hashbrown::HashTable;

use crate::domain::catalog::boxed::Boxed;
use crate::domain::ids::InstanceId;
use crate::domain::model::ProductInstance;

/// The devices by id: the boxed records, hashed by the id inside each with the catalog's
/// hasher for ids it generated.
pub(in crate::domain) type Instances =
    Boxed<ProductInstance, BuildHasherDefault<crate::domain::catalog::IdHasher>>;

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
