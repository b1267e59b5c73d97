//! Ownership and the bookkeeping of sync, on the catalog alone: what each side refuses, and
//! that the outbox is exactly the difference from what was acknowledged.

use super::sync_apply::{bind_input_at as bind_input, line};
use super::*;

fn response(
    seq: u64,
    acks: Vec<u64>,
    pools: Vec<(String, Vec<UpstreamLicense>)>,
) -> UpstreamResponse {
    UpstreamResponse {
        seq,
        acks,
        pools,
        removals: vec![],
        revocations: vec![],
    }
}

#[test]
fn a_child_mirrors_the_dedicated_path_and_refuses_local_edits_there() {
    let mut c = Catalog::new();
    let b = c.commit(c.bind_upstream(
        &admin(),
        &bind_input("acme.com/Default/emea/paris"),
        NOW,
        &IDS,
    ));
    assert_eq!(c.va_path(b.root), "acme/Default/emea/paris");
    let e = refused(c.add_license(&admin(), b.root, perpetual("T", 1), NOW, &IDS));
    assert!(
        e.to_string().contains("managed by upstream satellite `hq`"),
        "{e}"
    );
    let e = refused(c.create_va(&admin(), b.root, "below", "", NOW, &IDS));
    assert!(e.to_string().contains("managed by upstream"), "{e}");
    // Outside the dedicated subtree the child is its own master.
    let acct = c.account(b.account).unwrap().default_va;
    c.commit(c.add_license(&admin(), acct, perpetual("T", 1), NOW, &IDS));
    // A second binding is refused.
    let e = refused(c.bind_upstream(&admin(), &bind_input("acme.com/Default/x"), NOW, &IDS));
    assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
}

#[test]
fn a_response_replaces_the_pools_and_acknowledges_exactly_the_outstanding_items() {
    let mut c = Catalog::new();
    let b = c.commit(c.bind_upstream(&admin(), &bind_input("acme.com/Default/emea"), NOW, &IDS));
    let pools = vec![
        ("acme.com/Default/emea".to_string(), vec![line(1, "T", 5)]),
        (
            "acme.com/Default/emea/new".to_string(),
            vec![line(2, "T", 2)],
        ),
    ];
    let (change, applied) = c
        .apply_upstream_response(&response(1, vec![], pools), NOW, &IDS)
        .unwrap();
    c.apply(&change);
    assert_eq!((applied.licenses_put, applied.vas_created), (2, 1));
    assert_eq!(c.licenses_in(b.root).map(|l| l.quantity).sum::<u64>(), 5);
    assert_eq!(c.upstream_binding().unwrap().last_response_seq, 1);

    let (items, total) = c.outbox(100, NOW);
    assert_eq!(total, 0, "nothing used yet: {items:?}");

    // Pretend a request with two items is outstanding, then acknowledged.
    let out = Outstanding {
        seq: 1,
        body: String::new(),
        items: vec![
            ("dev:a".into(), Some([1; 32])),
            ("use:x\0T".into(), Some([2; 32])),
        ],
        created_at: NOW,
    };
    c.commit(c.record_outstanding(out));
    assert_eq!(c.upstream_binding().unwrap().next_seq, 2);
    // The next response drops license 2 and acknowledges request 1.
    let pools = vec![("acme.com/Default/emea".to_string(), vec![line(1, "T", 7)])];
    let (change, applied) = c
        .apply_upstream_response(&response(2, vec![1], pools), NOW, &IDS)
        .unwrap();
    c.apply(&change);
    assert_eq!((applied.acknowledged, applied.licenses_removed), (2, 1));
    assert_eq!(c.synced_count(), 2);
    assert!(c.upstream_binding().unwrap().outstanding.is_none());
    // The acknowledged items that no longer exist come back as a removal and a zero usage.
    let (items, total) = c.outbox(100, NOW);
    assert_eq!(total, 2, "{items:?}");
    assert!(items.iter().all(|i| i.digest.is_none()));
    // A pool outside the dedicated subtree is refused as a whole.
    let pools = vec![("acme.com/Default/other".to_string(), vec![line(3, "T", 1)])];
    let e = refused(c.apply_upstream_response(&response(3, vec![], pools), NOW, &IDS));
    assert!(e.to_string().contains("outside the subtree"), "{e}");
}

#[test]
fn an_upstream_dedicates_once_and_a_token_binds_one_key() {
    let (mut c, a) = with_account("acme", "acme.com");
    let region = mk_va(&mut c, a.default_va, "region");
    let site = mk_va(&mut c, region, "site");
    let hash = [7; 32];
    let later = NOW + Duration::days(7);
    c.commit(c.add_child_satellite(&admin(), "regional", region, hash, later, NOW));
    // Overlapping subtrees and duplicate names are refused.
    let e = refused(c.add_child_satellite(&admin(), "other", site, [8; 32], later, NOW));
    assert!(e.to_string().contains("overlaps"), "{e}");
    // Devices of a dedicated VA register with the child.
    let e = refused(c.check_not_dedicated(site));
    assert!(
        e.to_string()
            .contains("dedicated to child satellite `regional`"),
        "{e}"
    );
    // The dedicated subtree cannot move: the child mirrors it by path.
    let elsewhere = mk_va(&mut c, a.default_va, "elsewhere");
    let e = refused(c.move_va(&admin(), region, elsewhere));
    assert!(
        e.to_string()
            .contains("dedicated to child satellite `regional`"),
        "{e}"
    );
    let e = refused(c.move_va(&admin(), site, elsewhere));
    assert!(e.to_string().contains("cannot be moved"), "{e}");
    // The token binds the first key; the same key may register again, another may not.
    c.commit(c.register_child_satellite(&hash, "aa", "01", NOW));
    c.commit(c.register_child_satellite(&hash, "aa", "02", NOW));
    assert_eq!(
        c.child_satellite("regional")
            .unwrap()
            .cert_serial
            .as_deref(),
        Some("02")
    );
    let e = refused(c.register_child_satellite(&hash, "bb", "03", NOW));
    assert!(e.to_string().contains("already used"), "{e}");
    // An expired token is refused.
    let e = refused(c.child_by_token(&hash, "aa", later));
    assert!(e.to_string().contains("expired"), "{e}");
    // Requests naming VAs outside the child's subtree are refused whole.
    let change = ChildChange::Usage {
        va: "acme.com/Default".into(),
        tag: "T".into(),
        devices: 1,
        units_requested: 1,
        units_granted: 1,
        measured_at: NOW,
    };
    let e = refused(c.apply_child_request("regional", 1, &[change], 1, String::new(), NOW));
    assert!(
        e.to_string()
            .contains("not dedicated to satellite `regional`"),
        "{e}"
    );
}

#[test]
fn outbox_keys_keep_the_text_stores_hold() {
    // Stored `SyncedItem` keys and outstanding requests hold these exact strings.
    let cases = [
        (OutboxKey::Device("a1".into()), "dev:a1"),
        (
            OutboxKey::Usage {
                va: "acme.com/Default/emea".into(),
                tag: "T".into(),
            },
            "use:acme.com/Default/emea\0T",
        ),
        (
            OutboxKey::Rum {
                serial: "FOC1".into(),
                report_id: 42,
            },
            "rum:FOC1\u{0}42",
        ),
    ];
    for (key, text) in cases {
        assert_eq!(key.to_string(), text);
        assert_eq!(text.parse::<OutboxKey>(), Ok(key));
    }
    for bad in ["", "dev", "use:no-nul", "rum:FOC1\0x", "other:1"] {
        assert!(bad.parse::<OutboxKey>().is_err(), "{bad:?}");
    }
}
