//! The devices of one pool, by registration order.
//!
//! Most pools are small: at a million devices over 1,000 VAs and 100 tags, a pool holds about
//! twenty devices, and a B-tree of twenty entries takes three nodes of 368 to 464 bytes (about
//! 60 bytes per entry, over 100 MiB in all). A small pool is therefore a sorted vector (32
//! bytes per entry); a pool that grows past [`MANY`] devices becomes a B-tree, so that adding
//! or removing a device in the middle of a large pool stays a B-tree operation rather than
//! moving a long vector, and one that shrinks below [`FEW`] goes back to a vector.

use std::collections::BTreeMap;
use std::collections::btree_map;

use crate::domain::ids::InstanceId;

/// A device of a pool and the units it uses.
pub type PoolUser = (InstanceId, u64);

/// Above this many devices a pool is a B-tree.
const MANY: usize = 256;
/// Below this many devices a B-tree pool goes back to a vector (less than [`MANY`], so that
/// a pool hovering at the limit does not convert back and forth).
const FEW: usize = 128;

/// Registration order → device and units.
#[derive(Clone, Debug)]
pub enum PoolUsers {
    /// Sorted by registration order.
    Few(Vec<(u64, PoolUser)>),
    Many(BTreeMap<u64, PoolUser>),
}

impl Default for PoolUsers {
    fn default() -> Self {
        PoolUsers::Few(Vec::new())
    }
}

impl PoolUsers {
    pub fn len(&self) -> usize {
        match self {
            PoolUsers::Few(v) => v.len(),
            PoolUsers::Many(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, order: &u64) -> Option<&PoolUser> {
        match self {
            PoolUsers::Few(v) => v.binary_search_by_key(order, |e| e.0).ok().map(|i| &v[i].1),
            PoolUsers::Many(m) => m.get(order),
        }
    }

    /// Sets the device at `order`, returning the one it replaces.
    pub fn insert(&mut self, order: u64, user: PoolUser) -> Option<PoolUser> {
        match self {
            PoolUsers::Few(v) => match v.binary_search_by_key(&order, |e| e.0) {
                Ok(i) => Some(std::mem::replace(&mut v[i].1, user)),
                Err(i) => {
                    v.insert(i, (order, user));
                    if v.len() > MANY {
                        *self = PoolUsers::Many(std::mem::take(v).into_iter().collect());
                    }
                    None
                }
            },
            PoolUsers::Many(m) => m.insert(order, user),
        }
    }

    pub fn remove(&mut self, order: &u64) -> Option<PoolUser> {
        match self {
            PoolUsers::Few(v) => {
                let i = v.binary_search_by_key(order, |e| e.0).ok()?;
                let (_, user) = v.remove(i);
                if v.len() * 4 < v.capacity() {
                    v.shrink_to(v.len() * 2);
                }
                Some(user)
            }
            PoolUsers::Many(m) => {
                let user = m.remove(order)?;
                if m.len() < FEW {
                    *self = PoolUsers::Few(std::mem::take(m).into_iter().collect());
                }
                Some(user)
            }
        }
    }

    /// Adds devices, each at its order.
    pub fn extend(&mut self, users: impl IntoIterator<Item = (u64, PoolUser)>) {
        for (order, user) in users {
            self.insert(order, user);
        }
    }

    /// The devices in registration order.
    pub fn iter(&self) -> Iter<'_> {
        match self {
            PoolUsers::Few(v) => Iter::Few(v.iter()),
            PoolUsers::Many(m) => Iter::Many(m.range(..)),
        }
    }

    /// The devices registered before `order`, in registration order.
    pub fn before(&self, order: u64) -> Iter<'_> {
        match self {
            PoolUsers::Few(v) => Iter::Few(v[..v.partition_point(|e| e.0 < order)].iter()),
            PoolUsers::Many(m) => Iter::Many(m.range(..order)),
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &PoolUser> {
        self.iter().map(|(_, user)| user)
    }
}

impl FromIterator<(u64, PoolUser)> for PoolUsers {
    /// From devices in any order; a later device at the same order wins, as in a map.
    fn from_iter<I: IntoIterator<Item = (u64, PoolUser)>>(iter: I) -> Self {
        let mut users: Vec<(u64, PoolUser)> = iter.into_iter().collect();
        // A stable sort keeps devices at one order as they came: the last one is kept.
        users.sort_by_key(|e| e.0);
        users.reverse();
        users.dedup_by_key(|e| e.0);
        users.reverse();
        if users.len() > MANY {
            PoolUsers::Many(users.into_iter().collect())
        } else {
            users.shrink_to_fit();
            PoolUsers::Few(users)
        }
    }
}

impl std::ops::Index<&u64> for PoolUsers {
    type Output = PoolUser;

    fn index(&self, order: &u64) -> &PoolUser {
        self.get(order)
            .expect("no device at this registration order")
    }
}

/// The devices of a pool in registration order, as `(order, (device, units))`.
pub enum Iter<'a> {
    Few(std::slice::Iter<'a, (u64, PoolUser)>),
    Many(btree_map::Range<'a, u64, PoolUser>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a u64, &'a PoolUser);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(i) => i.next().map(|(order, user)| (order, user)),
            Iter::Many(i) => i.next(),
        }
    }
}
