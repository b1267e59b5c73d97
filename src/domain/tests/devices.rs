//! The device write path in the catalog: a routine report updates the device's record in place
//! (only its contact time and clock-skew flag are index keys that change), and every index then
//! says exactly what one built from the devices' records would.

use super::*;

/// Recomputes the device indexes from the device records and compares them with the catalog's.
#[track_caller]
fn check_device_indexes(c: &Catalog) {
    let by_contact: BTreeSet<_> = c
        .fleet
        .instances
        .values()
        .map(|i| (crate::domain::catalog::contact_key(i.last_contact), i.id))
        .collect();
    assert_eq!(c.fleet.by_contact, by_contact, "by_contact");
    let skewed: BTreeSet<_> = c
        .fleet
        .instances
        .values()
        .filter(|i| i.clock_skew)
        .map(|i| i.id)
        .collect();
    assert_eq!(c.fleet.skewed, skewed, "skewed");
    for i in c.fleet.instances.values() {
        assert_eq!(
            c.instance_by_udi(i.account, &i.udi).map(|x| x.id),
            Some(i.id)
        );
        let serial = i
            .cert_serial
            .as_ref()
            .expect("a registered device has a serial");
        assert_eq!(c.fleet.instances_by_serial[serial], i.id);
        assert!(c.fleet.instances_by_va[&i.va].contains(&i.id));
        for (tag, count) in &i.usage {
            assert_eq!(
                c.pool_of(i.va, tag).expect("pool").users[&i.order],
                (i.id, *count)
            );
        }
    }
    for (va, pools) in &c.fleet.pools {
        for (tag, pool) in pools {
            assert_eq!(pool.total, pool.users.values().map(|(_, n)| n).sum::<u64>());
            assert!(
                pool.users
                    .values()
                    .all(|(id, _)| c.fleet.instances[id].va == *va)
            );
            assert!(c.fleet.tags_in_use[va].contains(tag), "tags_in_use");
        }
    }
}

#[test]
fn routine_reports_keep_every_device_index_true() {
    let (mut c, account) = with_account("acme", "acme.com");
    let va = account.default_va;
    add_lic(&mut c, va, perpetual("T", 1));
    c.commit(c.create_token(&admin(), va, token_spec(), hash(1), NOW, &IDS));
    let timers = DeviceTimers::default();
    let mut ids = Vec::new();
    for n in 0..2 {
        ids.push(register_with(&mut c, hash(1), n));
    }
    check_device_indexes(&c);

    // Round 1 changes the usage (the device is re-indexed); rounds 2 and 3 change only the
    // contact time, and the clock-skew flag on and off again (updated in place).
    let usage = vec![("T".to_owned(), 1)];
    let mut at = NOW;
    for seq in 1..=3u64 {
        for id in &ids {
            at += Duration::minutes(1);
            let measured = if seq == 2 {
                at - Duration::hours(2)
            } else {
                at
            };
            match c.report_usage(*id, seq, measured, &usage, at, &timers) {
                Ok(UsageOutcome::Applied(change, _)) => c.apply_owned(change),
                other => panic!("report {seq} not applied: {other:?}"),
            }
            check_device_indexes(&c);
            assert_eq!(c.fleet.instances[id].clock_skew, seq == 2);
            assert_eq!(c.fleet.instances[id].last_seq, Some(seq.into()));
        }
    }
    assert_eq!(c.latest_contact(), Some(at));
    // One unit of T: the first registered device has it, the second does not.
    let states: Vec<_> = ids
        .iter()
        .map(|id| {
            c.authorization(&c.fleet.instances[id], at, &timers)
                .entitlements[0]
                .2
        })
        .collect();
    assert_eq!(
        states,
        [
            EntitlementStatus::Authorized,
            EntitlementStatus::OutOfCompliance
        ]
    );
}

/// Contact times are indexed as `i64` nanoseconds, which end in 2262: later times share the
/// last key, and the expiry sweep and the clock's high-water mark still see them in order.
#[test]
fn contact_times_past_the_index_range_keep_their_order() {
    let (mut c, account) = with_account("acme", "acme.com");
    let va = account.default_va;
    let ids: Vec<InstanceId> = (0..3).map(|n| register(&mut c, va, n)).collect();
    let far = datetime!(2300-01-01 0:00 UTC);
    let farther = datetime!(2400-01-01 0:00 UTC);
    for (id, at) in ids.iter().zip([NOW, farther, far]) {
        let moved = ProductInstance {
            last_contact: at.into(),
            ..c.fleet.instances[id].clone()
        };
        c.fleet.put(moved);
    }
    check_device_indexes(&c);
    assert_eq!(c.latest_contact(), Some(farther));
    let silent = |before| -> Vec<InstanceId> { c.silent_since(before).map(|i| i.id).collect() };
    assert_eq!(silent(NOW + Duration::seconds(1)), [ids[0]]);
    assert_eq!(silent(datetime!(2350-01-01 0:00 UTC)), [ids[0], ids[2]]);
    assert_eq!(silent(farther).len(), 2);
    assert_eq!(silent(NOW), Vec::<InstanceId>::new());
}
