//! The child's outbox is a difference, not a queue: the current state of the dedicated subtree
//! less what the upstream acknowledged. A new device appears, an acknowledged unchanged one
//! does not, a changed one appears again, a removed one becomes a removal; usage is one line
//! per VA and tag; RUM reports go up once; `max` bounds a request but not the count. A request
//! once numbered keeps its items until it is acknowledged.

use super::sync_apply::{
    PARIS, ROOT, bound_child, move_device, remote_registration, report, respond, response,
    rum_report, send, sync_all,
};
use super::*;

/// The whole outbox, and how many items it holds in all.
fn outbox(c: &Catalog) -> (Vec<OutItem>, usize) {
    c.outbox(usize::MAX, NOW)
}

/// The instance ids of the registrations in `items`.
fn registered(items: &[OutItem]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match &i.change {
            ChildChange::Registration { instance_id, .. } => Some(instance_id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_satellite_that_is_not_bound_has_nothing_to_send() {
    let (mut c, a) = with_account("acme", "acme.com");
    register(&mut c, a.default_va, 1);
    assert_eq!(outbox(&c).1, 0);
    assert_eq!(c.pending_count(NOW), 0);
}

#[test]
fn a_new_device_in_the_subtree_appears_as_a_registration_with_its_path() {
    let (mut c, root, _) = bound_child();
    assert_eq!(outbox(&c).1, 0, "mirrored licenses are not sent back");
    let id = register(&mut c, root, 1);
    let (items, total) = outbox(&c);
    assert_eq!(total, 1, "{items:?}");
    assert!(items[0].digest.is_some());
    match &items[0].change {
        ChildChange::Registration {
            instance_id,
            va,
            udi,
            ..
        } => {
            assert_eq!(instance_id, &id.to_string());
            assert_eq!(va, ROOT, "sync names VAs by the account's domain");
            assert_eq!(udi.serial, "S1".into());
        }
        other => panic!("not a registration: {other:?}"),
    }
    // Asking again gives the same difference: reading the outbox changes nothing.
    assert_eq!(outbox(&c), (items, total));
}

#[test]
fn a_device_outside_the_subtree_is_not_sent() {
    let (mut c, _, _) = bound_child();
    let account = c.upstream_binding().unwrap().account;
    let default_va = c.account(account).unwrap().default_va;
    register(&mut c, default_va, 1);
    assert_eq!(outbox(&c).1, 0);
}

#[test]
fn an_acknowledged_device_that_did_not_change_is_not_sent_again() {
    let (mut c, root, _) = bound_child();
    register(&mut c, root, 1);
    sync_all(&mut c);
    assert_eq!(c.synced_count(), 1);
    assert_eq!(outbox(&c).1, 0);
    assert_eq!(c.pending_count(NOW), 0);
}

#[test]
fn a_device_that_changed_after_its_acknowledgement_is_sent_again() {
    let (mut c, root, paris) = bound_child();
    let id = register(&mut c, root, 1);
    sync_all(&mut c);
    move_device(&mut c, id, paris);
    let (items, total) = outbox(&c);
    assert_eq!(total, 1, "{items:?}");
    match &items[0].change {
        ChildChange::Registration { va, .. } => assert_eq!(va, PARIS),
        other => panic!("not a registration: {other:?}"),
    }
}

#[test]
fn an_acknowledged_device_that_is_gone_becomes_a_removal_once() {
    let (mut c, root, _) = bound_child();
    let id = register(&mut c, root, 1);
    sync_all(&mut c);
    let (change, _) = c.remove_device(&admin(), id, NOW).expect("removed");
    c.apply_owned(change);
    let (items, total) = outbox(&c);
    assert_eq!(total, 1, "{items:?}");
    assert_eq!(
        items[0].digest, None,
        "a removal's acknowledgement forgets the item"
    );
    assert!(
        matches!(&items[0].change, ChildChange::Removal { instance_id, .. }
            if instance_id == &id.to_string()),
        "{items:?}"
    );
    sync_all(&mut c);
    assert_eq!((c.synced_count(), outbox(&c).1), (0, 0));
}

#[test]
fn a_device_never_acknowledged_and_gone_is_not_sent_at_all() {
    let (mut c, root, _) = bound_child();
    let id = register(&mut c, root, 1);
    let (change, _) = c.remove_device(&admin(), id, NOW).expect("removed");
    c.apply_owned(change);
    assert_eq!(outbox(&c).1, 0);
}

#[test]
fn usage_is_one_line_per_va_and_tag_and_a_line_no_longer_used_is_sent_as_zero() {
    let (mut c, root, _) = bound_child();
    let id = register(&mut c, root, 1);
    report(&mut c, id, 1, "T", 2);
    let (items, _) = outbox(&c);
    let usage: Vec<_> = items
        .iter()
        .filter(|i| matches!(i.change, ChildChange::Usage { .. }))
        .collect();
    assert_eq!(usage.len(), 1, "{items:?}");
    assert_eq!(
        usage[0].change,
        ChildChange::Usage {
            va: ROOT.into(),
            tag: "T".into(),
            devices: 1,
            units_requested: 2,
            units_granted: 2,
            measured_at: NOW,
        }
    );
    sync_all(&mut c);
    assert_eq!(outbox(&c).1, 0);
    // The device stops using the tag: the line goes up once more, with zeros.
    report(&mut c, id, 2, "T", 0);
    let (items, total) = outbox(&c);
    assert_eq!(total, 1, "{items:?}");
    assert_eq!(items[0].digest, None);
    assert!(
        matches!(
            &items[0].change,
            ChildChange::Usage {
                devices: 0,
                units_requested: 0,
                units_granted: 0,
                ..
            }
        ),
        "{items:?}"
    );
}

#[test]
fn max_bounds_the_items_of_a_request_but_not_the_count_and_removals_come_first() {
    let (mut c, root, _) = bound_child();
    let gone = register(&mut c, root, 1);
    sync_all(&mut c);
    let (change, _) = c.remove_device(&admin(), gone, NOW).expect("removed");
    c.apply_owned(change);
    for n in 2..5 {
        register(&mut c, root, n);
    }
    let (items, total) = c.outbox(2, NOW);
    assert_eq!((items.len(), total), (2, 4), "{items:?}");
    assert!(
        matches!(items[0].change, ChildChange::Removal { .. }),
        "{items:?}"
    );
    assert!(
        matches!(items[1].change, ChildChange::Registration { .. }),
        "{items:?}"
    );
    assert_eq!(c.outbox(0, NOW), (vec![], 4));
}

#[test]
fn a_numbered_request_keeps_its_items_until_acknowledged() {
    let (mut c, root, paris) = bound_child();
    register(&mut c, root, 1);
    register(&mut c, root, 2);
    let first_of_outbox = registered(&c.outbox(1, NOW).0);
    let seq = send(&mut c, 1);
    let stored = c.upstream_binding().unwrap().outstanding.clone().unwrap();
    assert_eq!((stored.seq, stored.items.len()), (seq, 1));
    assert_eq!(c.upstream_binding().unwrap().next_seq, seq + 1);
    // What is in flight unchanged is not pending; the rest is.
    assert_eq!(c.pending_count(NOW), 1);
    register(&mut c, root, 3);
    assert_eq!(c.pending_count(NOW), 2);
    // A device changed while its request is in flight is pending again, and the request
    // itself keeps what it was made with.
    let sent: InstanceId = first_of_outbox[0].parse().unwrap();
    move_device(&mut c, sent, paris);
    assert_eq!(c.pending_count(NOW), 3);
    assert_eq!(
        c.upstream_binding().unwrap().outstanding.as_ref(),
        Some(&stored)
    );
    // Once acknowledged, the moved device and the two never sent remain.
    let next = c.upstream_binding().unwrap().last_response_seq + 1;
    respond(&mut c, response(next, vec![seq]));
    let (items, total) = outbox(&c);
    assert_eq!(total, 3, "{items:?}");
    assert!(registered(&items).contains(&sent.to_string()));
}

/// The id of the device `udi` of the bound account.
fn instance_id(c: &Catalog, udi: &Udi) -> InstanceId {
    let account = c.upstream_binding().unwrap().account;
    c.instance_by_udi(account, udi).expect("known").id
}

#[test]
fn a_rum_report_of_a_device_in_the_subtree_goes_up_once() {
    let (mut c, root, _) = bound_child();
    let account = c.upstream_binding().unwrap().account;
    let rum = rum_report(42);
    let change = c
        .ingest_rum(account, &rum, NOW, &IDS)
        .expect("ingested")
        .expect("new");
    c.apply_owned(change);
    assert_eq!(outbox(&c).1, 0, "the device is outside the subtree yet");
    let id = instance_id(&c, &rum.udi);
    move_device(&mut c, id, root);
    let (items, _) = outbox(&c);
    let rums: Vec<_> = items
        .iter()
        .filter_map(|i| match &i.change {
            ChildChange::Rum { report_id, raw, .. } => Some((*report_id, raw.clone())),
            _ => None,
        })
        .collect();
    // The engine fills `raw` from the store when it sends the request.
    assert_eq!(rums, [(42, String::new())], "{items:?}");
    sync_all(&mut c);
    assert_eq!(outbox(&c).1, 0);
}

#[test]
fn what_a_satellite_receives_from_its_own_child_is_relayed_up() {
    let (mut c, _, _) = bound_child();
    let paris = c
        .va_by_path(c.upstream_binding().unwrap().account, PARIS)
        .unwrap();
    let later = NOW + Duration::days(7);
    c.commit(c.add_child_satellite(&admin(), "branch", paris, hash(9), later, NOW));
    c.commit(c.register_child_satellite(&hash(9), "bb", "09", NOW));
    let udi = Udi {
        pid: "C9300".into(),
        serial: "B-RUM".into(),
    };
    let changes = [
        remote_registration("b1", PARIS),
        ChildChange::Rum {
            report_id: 7,
            udi: udi.clone(),
            raw: "{\"report\":7}".into(),
        },
    ];
    c.commit(c.apply_child_request("branch", 1, &changes, 1, String::new(), NOW));
    let (items, total) = outbox(&c);
    assert_eq!(total, 2, "{items:?}");
    assert_eq!(registered(&items), ["b1"]);
    assert!(
        items.iter().any(|i| i.change
            == ChildChange::Rum {
                report_id: 7,
                udi: udi.clone(),
                raw: "{\"report\":7}".into(),
            }),
        "a relayed report goes up with its raw text: {items:?}"
    );
    sync_all(&mut c);
    assert_eq!(outbox(&c).1, 0);
}

/// A scan in chunks (the engine lets the catalog go between them) of a subtree that changes
/// meanwhile: each device goes up at most once, as it is when the request is made, a device
/// gone is not sent, and what the chunks missed a scan now finds.
#[test]
fn a_scan_in_chunks_sends_each_device_once_as_it_is_when_the_request_is_made() {
    let (mut c, root, paris) = bound_child();
    // Devices 1, 3, 5 in the root VA (scanned first), 2, 4, 6 in Paris.
    let ids: Vec<InstanceId> = (1..=6)
        .map(|n| register(&mut c, if n % 2 == 1 { root } else { paris }, n))
        .collect();
    let mut scan = c.registration_scan();
    assert!(
        !c.scan_registrations(&mut scan, 2),
        "six devices, two a chunk"
    );
    assert!(!scan.is_done());

    // Between chunks: a device of Paris (not scanned yet) goes, the first device of the root
    // (scanned) moves to Paris (scanned later: seen twice), and a device arrives in the root.
    let gone = ids[1];
    let (change, _) = c.remove_device(&admin(), gone, NOW).expect("removed");
    c.apply_owned(change);
    let moved = ids[0];
    move_device(&mut c, moved, paris);
    let arrived = register(&mut c, root, 7);
    let mut chunks = 1;
    while !c.scan_registrations(&mut scan, 2) {
        chunks += 1;
    }
    assert!(chunks >= 3, "the scan went on in chunks ({chunks})");
    scan.finish();

    let (items, total) = c.outbox_scanned(&scan, usize::MAX, NOW);
    let sent = registered(&items);
    let once: std::collections::HashSet<&String> = sent.iter().collect();
    assert_eq!(once.len(), sent.len(), "each device at most once: {sent:?}");
    assert_eq!(total, sent.len(), "the count is what the scan found");
    assert!(
        !sent.contains(&gone.to_string()),
        "a device gone is not sent"
    );
    for id in &ids[2..] {
        assert!(sent.contains(&id.to_string()), "{id} is sent");
    }
    // Every registration goes as the device is now: as a scan of the whole subtree now has it
    // (the moved device with its new VA).
    let (now_items, _) = outbox(&c);
    for item in items.iter().filter(|i| i.digest.is_some()) {
        assert!(
            now_items.contains(item),
            "{item:?} is not the device as it is"
        );
    }
    assert!(
        sent.contains(&moved.to_string()),
        "the moved device is sent"
    );
    // What the chunks could miss (a device that arrived in a VA already scanned) is found now.
    let missed: Vec<String> = registered(&now_items)
        .into_iter()
        .filter(|id| !sent.contains(id))
        .collect();
    assert!(
        missed.is_empty() || missed == [arrived.to_string()],
        "only the device that arrived may be left for the next request: {missed:?}"
    );
}

/// A scan that is not done, or done but not put in order, finds nothing rather than
/// registrations in the wrong order.
#[test]
fn an_unfinished_scan_finds_no_registrations() {
    let (mut c, root, _) = bound_child();
    register(&mut c, root, 1);
    register(&mut c, root, 2);
    let mut scan = c.registration_scan();
    c.scan_registrations(&mut scan, 1);
    assert_eq!(c.outbox_scanned(&scan, usize::MAX, NOW), (vec![], 0));
    while !c.scan_registrations(&mut scan, 1) {}
    assert_eq!(c.outbox_scanned(&scan, usize::MAX, NOW), (vec![], 0));
    scan.finish();
    assert_eq!(c.outbox_scanned(&scan, usize::MAX, NOW), outbox(&c));
}
