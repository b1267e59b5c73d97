//! Who owns what in a dedicated subtree, so that sync cannot conflict: the upstream owns its
//! pools and structure, the child its devices and usage. Each side refuses, with a message
//! naming the owner, every edit of what the other owns, and keeps its own rights.

use super::sync_apply::{PARIS, bound_child, line, report, rum_report, upstream_with_child};
use super::*;

/// Asserts the child's refusal of an edit the upstream owns: it names the upstream and says
/// that nothing was changed.
#[track_caller]
fn assert_upstream_owned(e: DomainError) {
    let m = e.to_string();
    assert!(
        matches!(e, DomainError::Refused(_))
            && m.contains("managed by upstream satellite `hq`")
            && m.contains("nothing was changed"),
        "{e:?}"
    );
}

/// Asserts the upstream's refusal of an edit the child owns: it names the child.
#[track_caller]
fn assert_dedicated(e: impl Into<DeviceError>) {
    let e = e.into();
    assert!(
        e.to_string()
            .contains("dedicated to child satellite `regional`"),
        "{e:?}"
    );
}

#[test]
fn a_child_refuses_license_edits_in_its_dedicated_subtree() {
    let (c, root, paris) = bound_child();
    let upstream_license = line(1, "T", 5).id;
    for va in [root, paris] {
        assert_upstream_owned(refused(c.add_license(
            &admin(),
            va,
            perpetual("T", 1),
            NOW,
            &IDS,
        )));
    }
    for quantity in [None, Some(1)] {
        assert_upstream_owned(refused(c.remove_license(
            &admin(),
            upstream_license,
            quantity,
            NOW,
        )));
    }
    // Transfers inside the subtree, out of it and into it.
    let account = c.upstream_binding().unwrap().account;
    let outside = c.account(account).unwrap().default_va;
    for (from, to) in [(root, paris), (root, outside), (outside, paris)] {
        let r = c.transfer_licenses(&admin(), from, to, "T", 1, None, NOW, &IDS);
        assert_upstream_owned(refused(r));
    }
}

#[test]
fn a_child_refuses_structure_edits_in_its_dedicated_subtree() {
    let (mut c, root, paris) = bound_child();
    let account = c.upstream_binding().unwrap().account;
    let default_va = c.account(account).unwrap().default_va;
    let outside = mk_va(&mut c, default_va, "outside");
    assert_upstream_owned(refused(c.create_va(&admin(), root, "below", "", NOW, &IDS)));
    assert_upstream_owned(refused(c.create_va(
        &admin(),
        paris,
        "below",
        "",
        NOW,
        &IDS,
    )));
    assert_upstream_owned(refused(c.move_va(&admin(), paris, outside)));
    assert_upstream_owned(refused(c.move_va(&admin(), outside, paris)));
    assert_upstream_owned(refused(c.delete_va(&admin(), paris, 0, NOW)));
}

#[test]
fn a_child_owns_the_devices_and_usage_of_its_dedicated_subtree() {
    let (mut c, root, paris) = bound_child();
    let id = register(&mut c, paris, 1);
    report(&mut c, id, 1, "T", 2);
    assert_eq!(c.in_use(paris, "T", NOW), 2);
    let (change, _) = c.move_device(&admin(), id, root).expect("moved");
    c.apply_owned(change);
    let (change, _) = c.remove_device(&admin(), id, NOW).expect("removed");
    c.apply_owned(change);
    assert!(c.instance(id).is_none());
}

#[test]
fn outside_its_dedicated_subtree_a_child_is_its_own_master() {
    let (mut c, root, _) = bound_child();
    let account = c.upstream_binding().unwrap().account;
    let default_va = c.account(account).unwrap().default_va;
    let lab = mk_va(&mut c, default_va, "lab");
    add_lic(&mut c, default_va, perpetual("T", 3));
    c.commit_change(c.transfer_licenses(&admin(), default_va, lab, "T", 1, None, NOW, &IDS));
    let created = c.commit(c.create_va(&admin(), lab, "bench", "", NOW, &IDS));
    c.commit_change(c.delete_va(&admin(), created.id, 0, NOW));
    assert_eq!((qty_in(&c, default_va, "T"), qty_in(&c, lab, "T")), (2, 1));
    // The dedicated subtree kept what the upstream sent.
    assert_eq!(qty_in(&c, root, "T"), 5);
}

#[test]
fn a_child_may_not_be_bound_twice() {
    let (c, _, _) = bound_child();
    let again = BindInput {
        root_path: PARIS.into(),
        ..super::sync_apply::bind_input()
    };
    let e = refused(c.bind_upstream(&admin(), &again, NOW, &IDS));
    assert!(
        matches!(&e, DomainError::Conflict(m) if m.contains("already bound to upstream `hq`")),
        "{e:?}"
    );
}

#[test]
fn an_upstream_refuses_devices_in_a_subtree_dedicated_to_a_child() {
    let (mut c, a, region) = upstream_with_child();
    let site = mk_va(&mut c, region, "site");
    for va in [region, site] {
        assert_dedicated(refused(c.create_token(
            &admin(),
            va,
            token_spec(),
            hash(50),
            NOW,
            &IDS,
        )));
    }
    // A device of the upstream's own may not move into the child's subtree either.
    let id = register(&mut c, a.default_va, 1);
    match c.move_device(&admin(), id, site) {
        Ok(_) => panic!("a device moved into a dedicated VA"),
        Err(e) => assert_dedicated(e),
    }
    assert_eq!(c.instance(id).map(|i| i.va), Some(a.default_va));
}

#[test]
fn an_upstream_keeps_the_pools_and_structure_of_a_dedicated_subtree() {
    let (mut c, _, region) = upstream_with_child();
    let site = c
        .commit(c.create_va(&admin(), region, "site", "", NOW, &IDS))
        .id;
    add_lic(&mut c, site, perpetual("T", 4));
    let child = c.child_satellite("regional").unwrap().clone();
    let pools: Vec<(String, usize)> = c
        .child_pools(&child)
        .into_iter()
        .map(|(path, licenses)| (path, licenses.len()))
        .collect();
    assert_eq!(
        pools,
        [
            ("acme.com/Default/region".to_string(), 0),
            ("acme.com/Default/region/site".to_string(), 1),
        ]
    );
    // The subtree stays where the child mirrors it, and is not deleted under it.
    let e = refused(c.delete_va(&admin(), region, 0, NOW));
    assert!(
        e.to_string()
            .contains("dedicated to child satellite `regional`"),
        "{e}"
    );
}

#[test]
fn an_upstream_refuses_rum_reports_for_a_subtree_dedicated_to_a_child() {
    let (mut c, a) = with_account("acme", "acme.com");
    let later = NOW + Duration::days(7);
    c.commit(c.add_child_satellite(&admin(), "regional", a.default_va, hash(7), later, NOW));
    let rum = rum_report(1);
    match c.check_rum(a.id, std::slice::from_ref(&rum)) {
        Ok(_) => panic!("a RUM envelope for a dedicated VA was accepted"),
        Err(e) => assert_dedicated(e),
    }
    match c.ingest_rum(a.id, &rum, NOW, &IDS) {
        Ok(_) => panic!("a RUM report for a dedicated VA was ingested"),
        Err(e) => assert_dedicated(e),
    }
}
