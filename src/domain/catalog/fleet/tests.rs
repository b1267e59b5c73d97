//! The fleet's own structures, below what the catalog's operations can reach: a collision of
//! the (account, UDI) hash cannot be produced through the catalog, so it is produced here.

use std::sync::Arc;

use super::{ByUdi, Fleet};
use crate::domain::ids::{AccountId, InstanceId, VaId};
use crate::domain::model::{InstanceSource, ProductInstance, Udi};

fn id(n: u128) -> InstanceId {
    InstanceId(uuid::Uuid::from_u128(n))
}

#[test]
fn devices_sharing_a_udi_hash_are_all_found_and_each_leaves_alone() {
    // The key of each device as a collision would give: 1–3 under 7, 4 under 8, and a
    // thousand others under keys of their own, so that the table grows and rehashes.
    let key_of = |x: &InstanceId| match x.0.as_u128() {
        1..=3 => 7,
        4 => 8,
        n => n as u64 + 1_000,
    };
    let mut t = ByUdi::default();
    for n in [1, 2, 2, 3, 4] {
        t.insert(key_of(&id(n)), id(n), key_of);
    }
    for n in 10..1_010 {
        t.insert(key_of(&id(n)), id(n), key_of);
    }
    assert_eq!(t.all(7, key_of), [id(1), id(2), id(3)]);
    assert_eq!(t.all(8, key_of), [id(4)]);
    assert_eq!(t.find(7, |x| **x == id(2)), Some(id(2)));
    assert_eq!(t.find(7, |x| **x == id(500)), None);
    assert_eq!(t.all(key_of(&id(500)), key_of), [id(500)]);

    t.remove(7, id(1));
    assert_eq!(t.all(7, key_of), [id(2), id(3)]);
    // A device that is not there: nothing changes.
    t.remove(7, id(1));
    t.remove(8, id(9));
    assert_eq!(t.all(7, key_of), [id(2), id(3)]);
    assert_eq!(t.all(8, key_of), [id(4)]);
    t.remove(7, id(3));
    t.remove(7, id(2));
    t.remove(8, id(4));
    assert!(t.all(7, key_of).is_empty() && t.all(8, key_of).is_empty());
    for n in 10..1_010 {
        t.remove(key_of(&id(n)), id(n));
    }
    assert!(t.is_empty());
}

fn device(n: u128, product: &str, version: &str) -> ProductInstance {
    let udi = Udi {
        pid: "C9300-24T".into(),
        serial: format!("FOC{n:08}").into(),
    };
    let (account, va) = (
        AccountId(uuid::Uuid::from_u128(1)),
        VaId(uuid::Uuid::from_u128(2)),
    );
    let now = time::macros::datetime!(2026-01-01 00:00 UTC);
    ProductInstance {
        product: product.into(),
        version: version.into(),
        ..ProductInstance::first_seen(id(n), account, va, udi, InstanceSource::Native, 0, now)
    }
}

#[test]
fn devices_share_one_copy_of_each_product_name_version_and_product_id() {
    let mut f = Fleet::default();
    f.put(device(1, "Catalyst 9300", "17.9.4"));
    f.put(device(2, "Catalyst 9300", "17.9.4"));
    f.put(device(3, "Catalyst 9300", "17.12.1"));
    let text = |f: &Fleet, n: u128| {
        let i = &f.instances[&id(n)];
        (i.product.clone(), i.version.clone())
    };
    let ((p1, v1), (p2, v2), (p3, v3)) = (text(&f, 1), text(&f, 2), text(&f, 3));
    assert!(Arc::ptr_eq(&p1, &p2) && Arc::ptr_eq(&p1, &p3));
    assert!(Arc::ptr_eq(&v1, &v2));
    assert!(!Arc::ptr_eq(&v1, &v3));
    assert_eq!(&*v3, "17.12.1");

    // A device put again with texts of its own (a report, a new version) shares them too.
    f.put(device(2, "Catalyst 9300", "17.12.1"));
    f.put(device(1, "Catalyst 9300", "17.9.4"));
    let ((q1, w1), (q2, w2)) = (text(&f, 1), text(&f, 2));
    assert!(Arc::ptr_eq(&q1, &p1) && Arc::ptr_eq(&q2, &p1));
    assert!(Arc::ptr_eq(&w1, &v1) && Arc::ptr_eq(&w2, &v3));
    // Each device built its own product id: they share the first one now.
    let pid = |n: u128| f.instances[&id(n)].udi.pid.clone();
    assert!(Arc::ptr_eq(&pid(1), &pid(2)) && Arc::ptr_eq(&pid(1), &pid(3)));
}

/// Random inserts and removals against a `BTreeMap`: the pool answers as the map does while it
/// grows into a B-tree and shrinks back into a vector.
#[test]
fn a_pool_answers_like_a_map_as_it_grows_and_shrinks() {
    use std::collections::BTreeMap;

    use super::PoolUsers;

    let mut pool = PoolUsers::default();
    let mut model: BTreeMap<u64, (InstanceId, u64)> = BTreeMap::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |below: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % below
    };
    let (mut saw_many, mut saw_few_again) = (false, false);
    for step in 0..6_000u64 {
        // Mostly inserts first, mostly removals after: the pool crosses both limits.
        let insert = next(100) < if step < 3_000 { 80 } else { 20 };
        let order = next(400);
        if insert {
            let user = (id(u128::from(order)), step);
            assert_eq!(pool.insert(order, user), model.insert(order, user));
        } else {
            assert_eq!(pool.remove(&order), model.remove(&order));
        }
        match pool {
            PoolUsers::Many(_) => saw_many = true,
            PoolUsers::Few(_) if saw_many => saw_few_again = true,
            PoolUsers::Few(_) => {}
        }
        let probe = next(401);
        assert_eq!(pool.len(), model.len());
        assert_eq!(pool.get(&probe), model.get(&probe));
        assert!(
            pool.before(probe).eq(model.range(..probe)),
            "before {probe}"
        );
    }
    assert!(saw_many && saw_few_again, "the pool crossed both limits");
    assert!(pool.iter().eq(model.iter()));
    let rebuilt: PoolUsers = model.iter().rev().map(|(k, v)| (*k, *v)).collect();
    assert!(rebuilt.iter().eq(model.iter()));
}
