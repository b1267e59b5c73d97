//! [`Boxed`]: a hash table of boxed records found by the key inside each.
//!
//! A `HashMap<K, Box<T>>` keeps a copy of the key beside every box; this table keeps the box
//! alone, a word a slot, and compares the key of the record in each slot whose 7-bit hash tag
//! matches (almost always only the one it finds). At a million devices, with 2²¹ slots, a map
//! of id → box took 25 bytes a slot (52 MiB), this table 9 (19 MiB). Growing it reads every
//! record's key, which the map had at hand: see ARCHITECTURE.md.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

use crate::domain::ids::{InstanceId, LicenseId};
use crate::domain::model::{License, ProductInstance};

/// A record that carries the key it is found by.
pub(in crate::domain) trait Keyed {
    type Key: Eq + Hash;
    fn key(&self) -> &Self::Key;
}

impl Keyed for ProductInstance {
    type Key = InstanceId;
    fn key(&self) -> &InstanceId {
        &self.id
    }
}

impl Keyed for License {
    type Key = LicenseId;
    fn key(&self) -> &LicenseId {
        &self.id
    }
}

/// Boxed records by the key inside each, hashed with `S`.
#[derive(Clone, Debug)]
pub(in crate::domain) struct Boxed<T, S> {
    table: HashTable<Box<T>>,
    hasher: S,
}

impl<T, S: Default> Default for Boxed<T, S> {
    fn default() -> Self {
        Boxed {
            table: HashTable::new(),
            hasher: S::default(),
        }
    }
}

impl<T: Keyed, S: BuildHasher> Boxed<T, S> {
    fn hash(&self, key: &T::Key) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn get(&self, key: &T::Key) -> Option<&T> {
        self.table
            .find(self.hash(key), |x| x.key() == key)
            .map(|b| &**b)
    }

    pub fn get_mut(&mut self, key: &T::Key) -> Option<&mut T> {
        let hash = self.hash(key);
        self.table
            .find_mut(hash, |x| x.key() == key)
            .map(|b| &mut **b)
    }

    pub fn contains_key(&self, key: &T::Key) -> bool {
        self.get(key).is_some()
    }

    /// Adds a record, replacing the one of the same key.
    pub fn insert(&mut self, record: Box<T>) {
        let hash = self.hash(record.key());
        let hasher = &self.hasher;
        match self.table.entry(
            hash,
            |x| x.key() == record.key(),
            |x| hasher.hash_one(x.key()),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = record,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(record);
            }
        }
    }

    pub fn remove(&mut self, key: &T::Key) -> Option<Box<T>> {
        let hash = self.hash(key);
        let entry = self.table.find_entry(hash, |x| x.key() == key).ok()?;
        Some(entry.remove().0)
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &T> + Clone {
        self.table.iter().map(|b| &**b)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn reserve(&mut self, n: usize) {
        let hasher = &self.hasher;
        self.table.reserve(n, |x| hasher.hash_one(x.key()));
    }
}

impl<T: Keyed, S: BuildHasher> std::ops::Index<&T::Key> for Boxed<T, S> {
    type Output = T;

    fn index(&self, key: &T::Key) -> &T {
        self.get(key).expect("no record with this key")
    }
}

#[cfg(test)]
mod tests {
    use super::Boxed;
    use crate::domain::ids::LicenseId;
    use crate::domain::model::{License, LicenseKind, LicenseSource};

    fn license(n: u128, quantity: u64) -> Box<License> {
        Box::new(License {
            id: LicenseId(uuid::Uuid::from_u128(n)),
            account: crate::domain::AccountId(uuid::Uuid::from_u128(1)),
            va: crate::domain::VaId(uuid::Uuid::from_u128(2)),
            entitlement_tag: "t".into(),
            display_name: String::new(),
            quantity,
            kind: LicenseKind::Perpetual,
            export_controlled: false,
            source: LicenseSource::Manual,
            order_ref: None,
            labels: Default::default(),
            created_at: time::macros::datetime!(2026-01-01 0:00 UTC),
        })
    }

    /// Inserts, replacements and removals across growth, against a `HashMap`.
    #[test]
    fn a_boxed_table_answers_like_a_map() {
        use std::collections::HashMap;
        let mut t: Boxed<License, std::hash::RandomState> = Boxed::default();
        let mut model: HashMap<u128, u64> = HashMap::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..5_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = u128::from(x % 1_500);
            let id = LicenseId(uuid::Uuid::from_u128(n));
            if x.is_multiple_of(4) {
                assert_eq!(t.remove(&id).map(|l| l.quantity), model.remove(&n));
            } else {
                t.insert(license(n, round));
                model.insert(n, round);
            }
            assert_eq!(t.get(&id).map(|l| l.quantity), model.get(&n).copied());
        }
        assert_eq!(t.len(), model.len());
        for (n, q) in &model {
            assert_eq!(t[&LicenseId(uuid::Uuid::from_u128(*n))].quantity, *q);
        }
        let mut seen: Vec<u64> = t.values().map(|l| l.quantity).collect();
        let mut want: Vec<u64> = model.values().copied().collect();
        seen.sort_unstable();
        want.sort_unstable();
        assert_eq!(seen, want);
    }
}
