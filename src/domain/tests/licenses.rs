//! License pools: adding, removing, transferring and the per-tag summary.

use super::*;

const TAG: &str = "regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71";

fn two_vas() -> (Catalog, Account, VaId, VaId) {
    let (mut c, a) = with_account("Acme", "example.com");
    let x = mk_va(&mut c, a.default_va, "x");
    let y = mk_va(&mut c, a.default_va, "y");
    (c, a, x, y)
}

#[test]
fn add_license_records_the_entry() {
    let (mut c, a, x, _) = two_vas();
    let mut s = spec(TAG, 7, active_term());
    s.labels = ["lab".to_string()].into();
    s.order_ref = Some("SO-1".into());
    let l = add_lic(&mut c, x, s);
    assert_eq!(l.quantity, 7);
    assert_eq!(l.account, a.id);
    assert_eq!(l.va, x);
    assert_eq!(
        l.display_name, TAG,
        "an empty display name falls back to the tag"
    );
    assert_eq!(c.license(l.id), Some(&l));
    assert_eq!(c.licenses_in(x).count(), 1);
}

#[test]
fn zero_and_negative_quantities_are_refused() {
    let (c, _, x, _) = two_vas();
    for q in [0, -1, i64::MIN] {
        let e = refused(c.add_license(&admin(), x, perpetual(TAG, q), NOW, &IDS));
        assert!(
            matches!(e, DomainError::Invalid(ref m) if m.contains("greater than 0")),
            "{q}: {e:?}"
        );
    }
}

#[test]
fn a_term_must_end_after_it_starts() {
    let (c, _, x, _) = two_vas();
    let t = datetime!(2026-03-01 0:00 UTC);
    for (start, end) in [(t, t), (t, t - days(1))] {
        let e = refused(c.add_license(
            &admin(),
            x,
            spec(TAG, 1, LicenseKind::Term { start, end }),
            NOW,
            &IDS,
        ));
        assert!(
            matches!(e, DomainError::Invalid(ref m) if m.contains("end after")),
            "{e:?}"
        );
    }
    assert_eq!(c.licenses_in(x).count(), 0);
}

#[test]
fn bad_tags_and_labels_are_refused() {
    let (c, _, x, _) = two_vas();
    for tag in ["", "has space", "ctl\u{7}"] {
        let e = refused(c.add_license(&admin(), x, perpetual(tag, 1), NOW, &IDS));
        assert!(matches!(e, DomainError::Invalid(_)), "{tag:?}: {e:?}");
    }
    let mut s = perpetual(TAG, 1);
    s.labels = [String::new()].into();
    assert!(matches!(
        refused(c.add_license(&admin(), x, s, NOW, &IDS)),
        DomainError::Invalid(_)
    ));
}

#[test]
fn transfer_of_more_than_exists_names_the_available_count() {
    let (mut c, a, x, y) = two_vas();
    add_lic(&mut c, x, perpetual(TAG, 3));
    add_lic(&mut c, x, perpetual(TAG, 2));
    add_lic(&mut c, x, spec(TAG, 50, expired_term()));
    add_lic(&mut c, x, perpetual("other", 50));
    let before = snapshot(&c, &a);
    let e = refused(c.transfer_licenses(&admin(), x, y, TAG, 6, None, NOW, &IDS));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("only 5 unexpired")),
        "{e:?}"
    );
    assert_eq!(snapshot(&c, &a), before);
    // Exactly what is there moves.
    c.commit_change(c.transfer_licenses(&admin(), x, y, TAG, 5, None, NOW, &IDS));
    assert_eq!(qty_in(&c, y, TAG), 5);
    assert_eq!(qty_in(&c, x, TAG), 50, "only the expired entry stays");
}

#[test]
fn transfer_quantity_and_endpoints_are_validated() {
    let (mut c, _, x, y) = two_vas();
    add_lic(&mut c, x, perpetual(TAG, 3));
    for q in [0, -2] {
        let e = refused(c.transfer_licenses(&admin(), x, y, TAG, q, None, NOW, &IDS));
        assert!(matches!(e, DomainError::Invalid(_)), "{q}: {e:?}");
    }
    let e = refused(c.transfer_licenses(&admin(), x, x, TAG, 1, None, NOW, &IDS));
    assert!(matches!(e, DomainError::Invalid(_)), "{e:?}");
    let e = refused(c.transfer_licenses(&admin(), x, VaId::fresh(&IDS), TAG, 1, None, NOW, &IDS));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
}

#[test]
fn transfer_across_accounts_is_refused() {
    let (mut c, a, x, _) = two_vas();
    let b = add_account(&mut c, "Other", "other.org");
    add_lic(&mut c, x, perpetual(TAG, 3));
    let before = snapshot(&c, &a);
    let e = refused(c.transfer_licenses(&admin(), x, b.default_va, TAG, 1, None, NOW, &IDS));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("between Smart Accounts")),
        "{e:?}"
    );
    assert_eq!(snapshot(&c, &a), before);
    assert_eq!(c.licenses_in(b.default_va).count(), 0);
}

#[test]
fn a_partial_transfer_splits_one_entry_keeping_dates_and_labels() {
    let (mut c, a, x, y) = two_vas();
    let mut s = spec(TAG, 10, active_term());
    s.labels = ["lab".to_string(), "q3".to_string()].into();
    s.order_ref = Some("SO-42".into());
    s.export_controlled = true;
    let orig = add_lic(&mut c, x, s);
    let change = c.commit_change(c.transfer_licenses(&admin(), x, y, TAG, 4, None, NOW, &IDS));
    assert_eq!(ev(&change).action, "license.transfer");
    assert_eq!(ev(&change).account, Some(a.id));

    let stay = c
        .license(orig.id)
        .expect("the original entry stays, smaller");
    assert_eq!(stay.va, x);
    assert_eq!(stay.quantity, 6);
    let moved: Vec<&License> = c.licenses_in(y).collect();
    assert_eq!(moved.len(), 1);
    let m = moved[0];
    assert_ne!(m.id, orig.id);
    assert_eq!(m.quantity, 4);
    assert_eq!(m.kind, orig.kind);
    assert_eq!(m.labels, orig.labels);
    assert_eq!(m.order_ref, orig.order_ref);
    assert_eq!(m.export_controlled, orig.export_controlled);
    assert_eq!(m.created_at, orig.created_at);
    assert_eq!(m.account, a.id);
    assert_eq!(c.licenses_in(x).count(), 1);
}

#[test]
fn a_whole_entry_transfer_moves_the_entry_and_takes_the_oldest_first() {
    let (mut c, _, x, y) = two_vas();
    let old = c.commit(c.add_license(&admin(), x, perpetual(TAG, 2), NOW - days(10), &IDS));
    let new = c.commit(c.add_license(&admin(), x, perpetual(TAG, 5), NOW, &IDS));
    c.commit_change(c.transfer_licenses(&admin(), x, y, TAG, 3, None, NOW, &IDS));
    // The older entry moved whole (same id), one unit of the newer one was split off.
    assert_eq!(c.license(old.id).unwrap().va, y);
    assert_eq!(c.license(new.id).unwrap().quantity, 4);
    assert_eq!(c.license(new.id).unwrap().va, x);
    assert_eq!(qty_in(&c, y, TAG), 3);
    assert_eq!(c.licenses_in(y).count(), 2);
}

#[test]
fn transfer_of_a_named_entry_takes_only_that_entry() {
    let (mut c, _, x, y) = two_vas();
    let a1 = add_lic(&mut c, x, perpetual(TAG, 2));
    let a2 = add_lic(&mut c, x, perpetual(TAG, 5));
    let e = refused(c.transfer_licenses(&admin(), x, y, TAG, 3, Some(a1.id), NOW, &IDS));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("only 2")),
        "{e:?}"
    );
    c.commit_change(c.transfer_licenses(&admin(), x, y, TAG, 5, Some(a2.id), NOW, &IDS));
    assert_eq!(c.license(a2.id).unwrap().va, y);
    assert_eq!(c.license(a1.id).unwrap().va, x);
}

#[test]
fn expired_term_entries_are_neither_transferable_nor_purchased() {
    let (mut c, _, x, y) = two_vas();
    let expired = add_lic(&mut c, x, spec(TAG, 8, expired_term()));
    let e = refused(c.transfer_licenses(&admin(), x, y, TAG, 1, None, NOW, &IDS));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("only 0")),
        "{e:?}"
    );
    let pool = c.pool(x, NOW, |_, _| 0);
    assert_eq!(pool.len(), 1);
    assert_eq!(pool[0].purchased, 0);
    assert_eq!(pool[0].balance, 0);
    // The same entry counted while it was valid.
    let before_end = datetime!(2025-05-31 0:00 UTC);
    assert_eq!(c.pool(x, before_end, |_, _| 0)[0].purchased, 8);
    assert!(c.license(expired.id).unwrap().is_expired_at(NOW));
}

#[test]
fn future_term_entries_transfer_but_do_not_count_yet() {
    let (mut c, _, x, y) = two_vas();
    add_lic(&mut c, x, spec(TAG, 4, future_term()));
    assert_eq!(c.pool(x, NOW, |_, _| 0)[0].purchased, 0);
    c.commit_change(c.transfer_licenses(&admin(), x, y, TAG, 4, None, NOW, &IDS));
    let start = datetime!(2026-06-01 0:00 UTC);
    assert_eq!(c.pool(y, start, |_, _| 0)[0].purchased, 4);
    assert_eq!(c.pool(y, start - days(1), |_, _| 0)[0].purchased, 0);
}

#[test]
fn pool_sums_purchased_per_tag_and_computes_the_balance() {
    let (mut c, _, x, y) = two_vas();
    add_lic(&mut c, x, perpetual("a", 3));
    add_lic(&mut c, x, spec("a", 4, active_term()));
    add_lic(&mut c, x, spec("a", 100, expired_term()));
    let mut ec = perpetual("b", 2);
    ec.export_controlled = true;
    ec.display_name = "B licence".into();
    add_lic(&mut c, x, ec);
    add_lic(&mut c, y, perpetual("a", 1000));

    let pool = c.pool(x, NOW, |va, tag| {
        assert_eq!(va, x);
        match tag {
            "a" => 9,
            "b" => 1,
            _ => panic!("unexpected tag {tag}"),
        }
    });
    assert_eq!(pool.len(), 2);
    let a = &pool[0];
    assert_eq!((a.va, a.entitlement_tag.as_str()), (x, "a"));
    assert_eq!((a.purchased, a.in_use, a.balance), (7, 9, -2));
    assert!(!a.export_controlled);
    assert_eq!(a.next_expiry, Some(datetime!(2027-01-01 0:00 UTC)));
    let b = &pool[1];
    assert_eq!(b.entitlement_tag, "b");
    assert_eq!(b.display_name, "B licence");
    assert_eq!((b.purchased, b.in_use, b.balance), (2, 1, 1));
    assert!(b.export_controlled);
    assert_eq!(b.next_expiry, None);

    assert!(
        c.pool(c.va(x).unwrap().parent.unwrap(), NOW, |_, _| 0)
            .is_empty()
    );
}

#[test]
fn remove_a_whole_entry_or_part_of_it() {
    let (mut c, a, x, _) = two_vas();
    let l = add_lic(&mut c, x, perpetual(TAG, 10));
    let change = c.commit_change(c.remove_license(&admin(), l.id, Some(4), NOW));
    assert_eq!(ev(&change).action, "license.remove");
    assert_eq!(ev(&change).account, Some(a.id));
    assert_eq!(ev(&change).va, Some(x));
    assert_eq!(c.license(l.id).unwrap().quantity, 6);

    for q in [0, -1, 7] {
        let e = refused(c.remove_license(&admin(), l.id, Some(q), NOW));
        assert!(
            matches!(e, DomainError::Invalid(ref m) if m.contains("holds 6")),
            "{q}: {e:?}"
        );
    }
    let change = c.commit_change(c.remove_license(&admin(), l.id, None, NOW));
    assert_eq!(change.remove, vec![Removal::License(l.id)]);
    assert!(c.license(l.id).is_none());
    assert_eq!(c.licenses_in(x).count(), 0);
    let e = refused(c.remove_license(&admin(), l.id, None, NOW));
    assert!(
        matches!(
            e,
            DomainError::NotFound {
                what: "license",
                ..
            }
        ),
        "{e:?}"
    );
}

/// The per-(VA, tag) index that compliance reads must follow adds, splits, moves and removals.
#[test]
fn the_tag_index_follows_every_license_change() {
    let (mut c, _a, x, y) = two_vas();
    let l = c.commit(c.add_license(&admin(), x, perpetual("T", 5), NOW, &IDS));
    c.commit(c.add_license(&admin(), x, perpetual("U", 2), NOW, &IDS));
    assert_eq!((c.available(x, "T", NOW), c.available(y, "T", NOW)), (5, 0));
    c.commit_change(c.transfer_licenses(&admin(), x, y, "T", 2, None, NOW, &IDS));
    assert_eq!((c.available(x, "T", NOW), c.available(y, "T", NOW)), (3, 2));
    assert_eq!(c.vas_with_tag("T").count(), 2);
    c.commit_change(c.transfer_licenses(&admin(), x, y, "T", 3, None, NOW, &IDS));
    assert_eq!((c.available(x, "T", NOW), c.available(y, "T", NOW)), (0, 5));
    assert_eq!(c.vas_with_tag("T").collect::<Vec<_>>(), vec![y]);
    for id in c.licenses_of(y, "T").map(|l| l.id).collect::<Vec<_>>() {
        c.commit_change(c.remove_license(&admin(), id, None, NOW));
    }
    assert_eq!(c.available(y, "T", NOW), 0);
    assert_eq!(c.vas_with_tag("T").count(), 0);
    assert_eq!(c.available(x, "U", NOW), 2, "other tags untouched");
    assert!(c.license(l.id).is_none() || c.license(l.id).unwrap().va == y);
}
