//! Applying sync messages in the pure domain: an upstream response on the child (licenses
//! mirrored, acknowledgements recorded exactly for the items stored with the request, a
//! response naming anything outside the dedicated subtree refused whole) and a child request on
//! the upstream (devices and usage recorded, a request over the bounds or from an unknown child
//! refused whole). The fixtures at the top are shared by the other `sync_*` files.
//!
//! Stale and duplicate sequence numbers are refused before the domain is reached, when the
//! signed message is opened (`protocol::sync`); the domain keeps the numbers and the stored
//! response that rule reads, which the tests here pin.

use super::*;

// ----- fixtures shared by the sync_* files -------------------------------------------------

/// The path the child's dedicated subtree has on both sides, and a VA the upstream adds below.
pub(super) const ROOT: &str = "acme.com/Default/emea";
pub(super) const PARIS: &str = "acme.com/Default/emea/paris";

/// What `satellite sync register` hands the domain once the upstream has answered.
pub(super) fn bind_input() -> BindInput {
    bind_input_at(ROOT)
}

/// The same, for a dedicated subtree at `root_path`.
pub(super) fn bind_input_at(root_path: &str) -> BindInput {
    BindInput {
        me: "site".into(),
        upstream: "hq".into(),
        url: "https://hq:8443".into(),
        upstream_key: "00".repeat(32),
        ca_pem: String::new(),
        account_name: "acme".into(),
        account_domain: "acme.com".into(),
        root_path: root_path.into(),
    }
}

/// A license line of an upstream pool; `id` makes its license id.
pub(super) fn line(id: u8, tag: &str, quantity: u64) -> UpstreamLicense {
    UpstreamLicense {
        id: LicenseId(uuid::Uuid::from_bytes([id; 16])),
        entitlement_tag: tag.into(),
        display_name: tag.into(),
        quantity,
        kind: LicenseKind::Perpetual,
        export_controlled: false,
        order_ref: None,
        labels: BTreeSet::new(),
    }
}

/// The pools of the fixture: 5 `T` in the dedicated root, 2 `T` in `paris` below it.
pub(super) fn pools() -> Vec<(String, Vec<UpstreamLicense>)> {
    vec![
        (ROOT.to_string(), vec![line(1, "T", 5)]),
        (PARIS.to_string(), vec![line(2, "T", 2)]),
    ]
}

/// An upstream response numbered `seq` acknowledging `acks`, carrying [`pools`].
pub(super) fn response(seq: u64, acks: Vec<u64>) -> UpstreamResponse {
    UpstreamResponse {
        seq,
        acks,
        pools: pools(),
        removals: vec![],
        revocations: vec![],
    }
}

/// A child bound to `hq` for [`ROOT`] that has applied a first response (the root and `paris`
/// mirrored with their licenses). Answers the catalog, the dedicated root and `paris`.
pub(super) fn bound_child() -> (Catalog, VaId, VaId) {
    let mut c = Catalog::new();
    let b = c.commit(c.bind_upstream(&admin(), &bind_input(), NOW, &IDS));
    respond(&mut c, response(1, vec![]));
    let paris = c.va_by_path(b.account, PARIS).expect("paris is mirrored");
    (c, b.root, paris)
}

/// Applies an upstream response and returns what it did.
#[track_caller]
pub(super) fn respond(c: &mut Catalog, resp: UpstreamResponse) -> Applied {
    c.commit(c.apply_upstream_response(&resp, NOW, &IDS))
}

/// Makes the next request the way the engine does: at most `max` outbox items, stored with
/// the request's number as the outstanding request. Returns the number.
pub(super) fn send(c: &mut Catalog, max: usize) -> u64 {
    let seq = c.upstream_binding().expect("bound").next_seq;
    let (items, _) = c.outbox(max, NOW);
    let items = items
        .into_iter()
        .map(|i| (i.key.to_string(), i.digest))
        .collect();
    c.commit(c.record_outstanding(Outstanding {
        seq,
        body: String::new(),
        items,
        created_at: NOW,
    }));
    seq
}

/// Sends a request with everything pending and applies the upstream's acknowledgement of it.
pub(super) fn sync_all(c: &mut Catalog) {
    let seq = send(c, usize::MAX);
    let next = c.upstream_binding().expect("bound").last_response_seq + 1;
    respond(c, response(next, vec![seq]));
}

/// Moves device `id` to `to` as an operator.
#[track_caller]
pub(super) fn move_device(c: &mut Catalog, id: InstanceId, to: VaId) {
    let (change, _) = c.move_device(&admin(), id, to).expect("moved");
    c.apply_owned(change);
}

/// A usage report of `count` units of `tag` by device `id`, applied.
#[track_caller]
pub(super) fn report(c: &mut Catalog, id: InstanceId, seq: u64, tag: &str, count: u64) {
    let timers = DeviceTimers::default();
    match c.report_usage(id, seq, NOW, &[(tag.to_owned(), count)], NOW, &timers) {
        Ok(UsageOutcome::Applied(change, _)) => c.apply_owned(change),
        other => panic!("report not applied: {other:?}"),
    }
}

/// The registration a child reports for device `id` in the VA at `va`.
pub(super) fn remote_registration(id: &str, va: &str) -> ChildChange {
    ChildChange::Registration {
        instance_id: id.into(),
        va: va.into(),
        udi: Udi {
            pid: "P".into(),
            serial: format!("R-{id}").into(),
        },
        hostname: "h".into(),
        product: "p".into(),
        version: "v".into(),
        registered_at: NOW,
    }
}

/// The usage a child reports for `tag` in the VA at `va`, by one device unless nothing is
/// requested.
pub(super) fn remote_usage(va: &str, tag: &str, requested: u64, granted: u64) -> ChildChange {
    ChildChange::Usage {
        va: va.into(),
        tag: tag.into(),
        devices: u64::from(requested > 0),
        units_requested: requested,
        units_granted: granted,
        measured_at: NOW,
    }
}

/// A Cisco RUM report numbered `id` of one unit of `T` by the device `C9300:RUM1`.
pub(super) fn rum_report(id: u64) -> RumInput {
    RumInput {
        report_id: id,
        udi: Udi {
            pid: "C9300".into(),
            serial: "RUM1".into(),
        },
        entitlement_tag: "T".into(),
        count: 1,
        software_version: None,
        raw: format!("{{\"report\":{id}}}"),
    }
}

/// An upstream with account acme and `Default/region` dedicated to the registered child
/// `regional`. Answers the catalog, the account and `region`.
pub(super) fn upstream_with_child() -> (Catalog, Account, VaId) {
    let (mut c, a) = with_account("acme", "acme.com");
    let region = mk_va(&mut c, a.default_va, "region");
    let later = NOW + Duration::days(7);
    c.commit(c.add_child_satellite(&admin(), "regional", region, hash(7), later, NOW));
    c.commit(c.register_child_satellite(&hash(7), "aa", "01", NOW));
    (c, a, region)
}

/// Applies the request numbered `seq` from child `regional`.
#[track_caller]
pub(super) fn child_request(c: &mut Catalog, seq: u64, changes: &[ChildChange]) -> Received {
    c.commit(c.apply_child_request(
        "regional",
        seq,
        changes,
        seq,
        format!("response {seq}"),
        NOW,
    ))
}

// ----- the child applies an upstream response ----------------------------------------------

#[test]
fn a_response_mirrors_the_pools_and_creates_the_vas_the_upstream_added() {
    let mut c = Catalog::new();
    let b = c.commit(c.bind_upstream(&admin(), &bind_input(), NOW, &IDS));
    let applied = respond(&mut c, response(1, vec![]));
    assert_eq!((applied.licenses_put, applied.vas_created), (2, 1));
    let paris = c.va_by_path(b.account, PARIS).expect("paris is created");
    assert_eq!(qty_in(&c, b.root, "T"), 5);
    assert_eq!(qty_in(&c, paris, "T"), 2);
    let mirrored = c
        .license(line(1, "T", 5).id)
        .expect("the upstream's id is kept");
    assert_eq!(mirrored.source, LicenseSource::Upstream);
    let binding = c.upstream_binding().unwrap();
    assert_eq!(binding.last_response_seq, 1);
    assert_eq!(binding.last_success, Some(NOW));
    // The same pools again change no license.
    let applied = respond(&mut c, response(2, vec![]));
    assert_eq!((applied.licenses_put, applied.vas_created), (0, 0));
}

#[test]
fn a_license_the_response_no_longer_lists_is_removed_and_a_changed_one_replaced() {
    let (mut c, root, paris) = bound_child();
    let resp = UpstreamResponse {
        pools: vec![(ROOT.to_string(), vec![line(1, "T", 8)])],
        ..response(2, vec![])
    };
    let applied = respond(&mut c, resp);
    assert_eq!((applied.licenses_put, applied.licenses_removed), (1, 1));
    assert_eq!(qty_in(&c, root, "T"), 8);
    assert_eq!(qty_in(&c, paris, "T"), 0);
}

#[test]
fn a_response_naming_a_pool_outside_the_subtree_is_refused_whole() {
    let (c, root, _) = bound_child();
    for outside in [
        "acme.com/Default/other",
        "acme.com/Default/emeax",
        "globex.com/Default",
    ] {
        let resp = UpstreamResponse {
            pools: vec![
                (ROOT.to_string(), vec![line(1, "T", 9)]),
                (outside.to_string(), vec![line(3, "T", 1)]),
            ],
            ..response(2, vec![])
        };
        let e = refused(c.apply_upstream_response(&resp, NOW, &IDS));
        assert!(
            e.to_string().contains("outside the subtree"),
            "{outside}: {e}"
        );
    }
    // The refusal is whole: no change to apply, and the root keeps 5, not 9.
    assert_eq!(qty_in(&c, root, "T"), 5);
    assert_eq!(c.upstream_binding().unwrap().last_response_seq, 1);
}

#[test]
fn a_response_to_a_satellite_that_is_not_bound_is_refused() {
    let c = Catalog::new();
    let e = refused(c.apply_upstream_response(&response(1, vec![]), NOW, &IDS));
    assert!(e.to_string().contains("not bound to an upstream"), "{e}");
}

#[test]
fn an_acknowledgement_records_exactly_the_items_stored_with_the_request() {
    let (mut c, root, paris) = bound_child();
    let first = register(&mut c, root, 1);
    let seq = send(&mut c, usize::MAX);
    let stored = c.upstream_binding().unwrap().outstanding.clone().unwrap();
    assert_eq!(stored.items.len(), 1, "{stored:?}");
    // After the request was made: a second device, and the first one moves.
    register(&mut c, root, 2);
    move_device(&mut c, first, paris);
    let applied = respond(&mut c, response(2, vec![seq]));
    assert_eq!(applied.acknowledged, 1);
    assert_eq!(c.synced_count(), 1);
    assert!(c.upstream_binding().unwrap().outstanding.is_none());
    // What was acknowledged is the first device as it was sent: both devices are due again.
    let (items, total) = c.outbox(100, NOW);
    assert_eq!(total, 2, "{items:?}");
}

#[test]
fn an_acknowledgement_of_another_number_records_nothing() {
    let (mut c, root, _) = bound_child();
    register(&mut c, root, 1);
    let seq = send(&mut c, usize::MAX);
    let applied = respond(&mut c, response(2, vec![seq + 1, seq - 1]));
    assert_eq!(applied.acknowledged, 0);
    assert_eq!(c.synced_count(), 0);
    let out = c.upstream_binding().unwrap().outstanding.as_ref();
    assert_eq!(
        out.map(|o| o.seq),
        Some(seq),
        "the request is still outstanding"
    );
    assert_eq!(c.upstream_binding().unwrap().last_response_seq, 2);
}

// ----- the upstream applies a child's request ----------------------------------------------

#[test]
fn a_child_request_records_its_devices_and_usage_and_the_response() {
    let (mut c, _, region) = upstream_with_child();
    let va = "acme.com/Default/region";
    let received = child_request(
        &mut c,
        1,
        &[remote_registration("d1", va), remote_usage(va, "T", 3, 2)],
    );
    assert_eq!((received.registrations, received.usage), (1, 1));
    let remote: Vec<_> = c.remote_instances().collect();
    assert_eq!(remote.len(), 1);
    assert_eq!(
        (remote[0].child.as_str(), remote[0].id.as_str()),
        ("regional", "d1")
    );
    assert_eq!(remote[0].va, region);
    assert_eq!(c.remote_granted(region, "T"), 2);
    // The numbers and the response the replay rule reads.
    let child = c.child_satellite("regional").unwrap();
    assert_eq!(child.last_request_seq, 1);
    assert_eq!(child.last_response.as_deref(), Some("response 1"));
    assert_eq!(child.last_seen, Some(NOW));
    // Usage of zero units forgets the line; a removal forgets the device.
    child_request(
        &mut c,
        2,
        &[
            ChildChange::Removal {
                instance_id: "d1".into(),
                reason: "removed".into(),
            },
            remote_usage(va, "T", 0, 0),
        ],
    );
    assert_eq!(c.remote_instances().count(), 0);
    assert_eq!(c.remote_usage().count(), 0);
}

#[test]
fn a_removal_reported_by_the_child_ends_the_removal_the_upstream_ordered() {
    let (mut c, _, _) = upstream_with_child();
    let va = "acme.com/Default/region";
    child_request(&mut c, 1, &[remote_registration("d1", va)]);
    c.commit(c.order_remote_removal(&admin(), "d1", "stolen"));
    let pending = &c.child_satellite("regional").unwrap().pending_removals;
    assert_eq!(pending, &[("d1".to_string(), "stolen".to_string())]);
    let removal = ChildChange::Removal {
        instance_id: "d1".into(),
        reason: "removed".into(),
    };
    child_request(&mut c, 2, &[removal]);
    assert!(
        c.child_satellite("regional")
            .unwrap()
            .pending_removals
            .is_empty()
    );
}

#[test]
fn a_child_request_over_the_bounds_is_refused_whole() {
    let (c, _, _) = upstream_with_child();
    let va = "acme.com/Default/region";
    let over = [
        (remote_usage(va, "T", 1, 2), "exceed the units requested"),
        (remote_usage(va, "T", MAX_UNITS + 1, 0), "maximum"),
        (
            remote_usage(va, "T", MAX_UNITS + 1, MAX_UNITS + 1),
            "maximum",
        ),
        (remote_usage("acme.com/Default", "T", 1, 1), "not dedicated"),
        (
            remote_registration("d2", "acme.com/Default/nowhere"),
            "not dedicated",
        ),
    ];
    for (bad, expected) in over {
        // A valid registration first: the refusal of the whole request drops it too.
        let changes = [remote_registration("d1", va), bad.clone()];
        let e = refused(c.apply_child_request("regional", 1, &changes, 1, String::new(), NOW));
        assert!(e.to_string().contains(expected), "{bad:?}: {e}");
    }
    assert_eq!(c.remote_instances().count(), 0);
    assert_eq!(c.child_satellite("regional").unwrap().last_request_seq, 0);
}

#[test]
fn a_request_from_a_child_the_upstream_does_not_know_is_refused() {
    let (c, _, _) = upstream_with_child();
    let changes = [remote_registration("d1", "acme.com/Default/region")];
    let e = refused(c.apply_child_request("stranger", 1, &changes, 1, String::new(), NOW));
    assert!(
        matches!(&e, DomainError::NotFound { what: "child satellite", id } if id == "stranger"),
        "{e:?}"
    );
}
