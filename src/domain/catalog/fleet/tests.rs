//! The fleet's own structures, below what the catalog's operations can reach: a collision of
//! the (account, UDI) hash cannot be produced through the catalog, so it is produced here.

use super::Fleet;
use crate::domain::ids::InstanceId;

fn id(n: u128) -> InstanceId {
    InstanceId(uuid::Uuid::from_u128(n))
}

fn ids(f: &Fleet, key: u64) -> Vec<InstanceId> {
    f.udi_ids(key).collect()
}

#[test]
fn devices_sharing_a_udi_hash_are_all_found_and_each_leaves_alone() {
    let mut f = Fleet::default();
    f.add_udi(7, id(1));
    f.add_udi(7, id(2));
    f.add_udi(7, id(2));
    f.add_udi(7, id(3));
    f.add_udi(8, id(4));
    assert_eq!(ids(&f, 7), [id(1), id(2), id(3)]);
    assert_eq!(ids(&f, 8), [id(4)]);

    // The device in the main slot leaves: the next one takes its place.
    f.remove_udi(7, id(1));
    assert_eq!(ids(&f, 7), [id(2), id(3)]);
    // A device of another hash is not removed through this one.
    f.remove_udi(7, id(4));
    assert_eq!(ids(&f, 8), [id(4)]);
    f.remove_udi(7, id(3));
    assert_eq!(ids(&f, 7), [id(2)]);
    assert!(f.udi_collisions.is_empty());
    f.remove_udi(7, id(2));
    f.remove_udi(8, id(4));
    assert!(ids(&f, 7).is_empty());
    assert!(f.instances_by_udi.is_empty());
}
