//! The bound on quantities (`units.rs`): every way units enter a VA is refused past
//! [`MAX_UNITS`] with a message naming it, changing nothing; and a property test over random
//! operations near the bound checks every total against the exact sum computed in `u128`.

use proptest::prelude::*;

use super::*;

const TAG: &str = "T";
const MAX: u64 = MAX_UNITS;

/// The error of a refused device operation.
#[track_caller]
fn device_refused<T: std::fmt::Debug>(r: Result<T, DeviceError>) -> DeviceError {
    match r {
        Ok(v) => panic!("device operation accepted but should have been refused: {v:?}"),
        Err(e) => e,
    }
}

/// Asserts a refusal for exceeding the bound: invalid, naming the maximum.
#[track_caller]
fn assert_bound(e: impl Into<DeviceError>) {
    let e = e.into();
    assert!(
        matches!(&e, DeviceError::Domain(DomainError::Invalid(m))
            if m.contains("maximum of 1000000000000") && m.contains("nothing was changed")),
        "{e:?}"
    );
}

/// Sends a usage report of `count` units of [`TAG`]; applies it if accepted.
fn report(c: &mut Catalog, id: InstanceId, seq: u64, count: u64) -> Result<(), DeviceError> {
    let timers = DeviceTimers::default();
    match c.report_usage(id, seq, NOW, &[(TAG.into(), count)], NOW, &timers)? {
        UsageOutcome::Applied(change, _) => c.apply(&change),
        UsageOutcome::Repeat(_) => panic!("seq {seq} repeated"),
    }
    Ok(())
}

#[test]
fn adding_the_maximum_twice_is_refused_and_changes_nothing() {
    let (mut c, a) = with_account("acme", "acme.com");
    let va = a.default_va;
    add_lic(&mut c, va, perpetual(TAG, MAX as i64));
    let before = snapshot(&c, &a);
    assert_bound(refused(c.add_license(
        &admin(),
        va,
        perpetual(TAG, 1),
        NOW,
        &IDS,
    )));
    // A single entry past the bound is refused whatever the VA holds.
    for q in [MAX as i64 + 1, i64::MAX] {
        let e = refused(c.add_license(&admin(), va, perpetual("U", q), NOW, &IDS));
        assert!(e.to_string().contains(&q.to_string()), "{e}");
        assert_bound(e);
    }
    assert_eq!(snapshot(&c, &a), before);
    // Another tag, or the same tag in another VA, has its own bound.
    add_lic(&mut c, va, perpetual("U", MAX as i64));
    let pool = c.pool(va, NOW, |_, _| 0);
    assert_eq!(
        pool.iter().map(|l| l.purchased).collect::<Vec<_>>(),
        [MAX, MAX]
    );
    assert_eq!(pool[0].balance, MAX as i64);
}

#[test]
fn a_transfer_may_not_fill_a_va_past_the_bound() {
    let (mut c, a) = with_account("acme", "acme.com");
    let x = mk_va(&mut c, a.default_va, "x");
    let y = mk_va(&mut c, a.default_va, "y");
    add_lic(&mut c, x, perpetual(TAG, MAX as i64));
    add_lic(&mut c, y, perpetual(TAG, 1));
    let before = snapshot(&c, &a);
    assert_bound(refused(c.transfer_licenses(
        &admin(),
        x,
        y,
        TAG,
        MAX as i64,
        None,
        NOW,
        &IDS,
    )));
    assert_bound(refused(c.transfer_licenses(
        &admin(),
        y,
        x,
        TAG,
        1,
        None,
        NOW,
        &IDS,
    )));
    assert_bound(refused(c.transfer_licenses(
        &admin(),
        x,
        y,
        TAG,
        i64::MAX,
        None,
        NOW,
        &IDS,
    )));
    assert_eq!(snapshot(&c, &a), before);
    c.commit_change(c.transfer_licenses(&admin(), x, y, TAG, MAX as i64 - 1, None, NOW, &IDS));
    assert_eq!(
        (c.available(x, TAG, NOW), c.available(y, TAG, NOW)),
        (1, MAX)
    );
}

#[test]
fn expired_entries_count_toward_the_bound() {
    // Validity changes with time, so the bound holds for all entries of a tag at once: no
    // moment can make the units valid together exceed it.
    let (mut c, a) = with_account("acme", "acme.com");
    add_lic(&mut c, a.default_va, spec(TAG, MAX as i64, expired_term()));
    assert_bound(refused(c.add_license(
        &admin(),
        a.default_va,
        spec(TAG, 1, future_term()),
        NOW,
        &IDS,
    )));
}

#[test]
fn devices_and_reservations_of_a_va_ask_for_at_most_the_bound_together() {
    let (mut c, a) = with_account("acme", "acme.com");
    let va = a.default_va;
    let other = mk_va(&mut c, va, "other");
    add_lic(&mut c, va, perpetual(TAG, 10));
    let d1 = register(&mut c, va, 1);
    let d2 = register(&mut c, va, 2);
    let d3 = register(&mut c, other, 3);
    report(&mut c, d1, 1, MAX - 5).expect("within the bound");
    let before = c.instance(d2).cloned();
    assert_bound(device_refused(report(&mut c, d2, 1, 6)));
    assert_bound(device_refused(report(&mut c, d2, 2, u64::MAX)));
    assert_eq!(c.instance(d2).cloned(), before, "the device is unchanged");
    report(&mut c, d2, 3, 5).expect("exactly at the bound");
    // A device may lower its own count, or repeat it, at the bound.
    report(&mut c, d1, 2, MAX - 5).expect("the same count again");
    report(&mut c, d1, 3, MAX - 6).expect("lower");
    assert_eq!(c.granted(va, TAG, NOW).1, MAX - 1);
    // Moving a device into the VA counts its units there.
    report(&mut c, d3, 1, 2).expect("in its own VA");
    assert_bound(device_refused(c.move_device(&admin(), d3, va)));
    assert_eq!(c.instance(d3).map(|i| i.va), Some(other));
    // A reservation is spare units only, and counts with the devices.
    add_lic(&mut c, other, perpetual(TAG, MAX as i64));
    let req = ReservationRequest {
        udi: Udi {
            pid: "P".into(),
            serial: "R".into(),
        },
        entitlements: [(TAG.to_string(), MAX + 1)].into(),
        nonce: "n".into(),
    };
    let e = refused(c.reserve(&admin(), other, &req, false, NOW, &IDS, |_, _| {
        unreachable!("a refused reservation is not signed")
    }));
    assert_bound(e);
}

#[test]
fn a_rum_report_past_the_bound_is_refused_and_records_nothing() {
    let (mut c, a) = with_account("acme", "acme.com");
    let input = |id: u64, serial: &str, count: u64| RumInput {
        report_id: id,
        udi: Udi {
            pid: "C9300".into(),
            serial: serial.into(),
        },
        entitlement_tag: TAG.into(),
        count,
        software_version: None,
        raw: "{}".into(),
    };
    let change = c
        .ingest_rum(a.id, &input(1, "A", MAX), NOW, &IDS)
        .expect("at the bound")
        .expect("new");
    c.apply(&change);
    assert_bound(device_refused(c.ingest_rum(
        a.id,
        &input(2, "B", 1),
        NOW,
        &IDS,
    )));
    assert!(!c.rum_seen("B", 2), "nothing recorded");
    assert_eq!(c.instance_count(), 1);
    // The device itself may report the same count again.
    let change = c
        .ingest_rum(a.id, &input(3, "A", MAX), NOW, &IDS)
        .expect("the same count")
        .expect("new");
    c.apply(&change);
}

#[test]
fn a_license_file_past_the_bound_is_refused_whole() {
    let (mut c, a) = with_account("acme", "acme.com");
    let lab = mk_va(&mut c, a.default_va, "lab");
    let half = (MAX / 2 + 1) as i64;
    let file = LicenseImport {
        file_id: "f-1".into(),
        issuer: "portal".into(),
        signer: "portal".into(),
        account_domain: "acme.com".into(),
        grants: vec![ImportGrant {
            va: "Default/lab".into(),
            licenses: vec![
                perpetual("U", 1),
                perpetual(TAG, half),
                perpetual(TAG, half),
            ],
        }],
    };
    let e = refused(c.import_licenses(&admin(), &file, NOW, &IDS));
    assert!(e.to_string().starts_with("grants[0].licenses[2]: "), "{e}");
    assert_bound(e);
    assert_eq!(c.licenses_in(lab).count(), 0);
    assert!(c.imported_file(a.id, "portal", "f-1").is_none());
}

#[test]
fn a_childs_grants_past_the_bound_are_refused_whole() {
    let (mut c, a) = with_account("acme", "acme.com");
    let region = mk_va(&mut c, a.default_va, "region");
    c.commit(c.add_child_satellite(&admin(), "regional", region, [7; 32], NOW + days(7), NOW));
    let usage = |requested: u64, granted: u64| ChildChange::Usage {
        va: "acme.com/Default/region".into(),
        tag: TAG.into(),
        devices: 1,
        units_requested: requested,
        units_granted: granted,
        measured_at: NOW,
    };
    for (requested, granted) in [(u64::MAX, 1), (MAX + 1, MAX + 1), (5, 6)] {
        let e = refused(c.apply_child_request(
            "regional",
            1,
            &[usage(requested, granted)],
            1,
            String::new(),
            NOW,
        ));
        assert!(matches!(e, DomainError::Invalid(_)), "{e:?}");
        assert_eq!(c.remote_granted(region, TAG), 0);
    }
    c.commit(c.apply_child_request("regional", 1, &[usage(MAX, MAX)], 1, String::new(), NOW));
    assert_eq!(c.remote_granted(region, TAG), MAX);
}

#[test]
fn an_upstream_pool_past_the_bound_is_not_applied() {
    let mut c = Catalog::new();
    let input = super::sync_apply::bind_input();
    let b = c.commit(c.bind_upstream(&admin(), &input, NOW, &IDS));
    let line = |id: u8, quantity: u64| UpstreamLicense {
        id: LicenseId(uuid::Uuid::from_bytes([id; 16])),
        entitlement_tag: TAG.into(),
        display_name: TAG.into(),
        quantity,
        kind: LicenseKind::Perpetual,
        export_controlled: false,
        order_ref: None,
        labels: BTreeSet::new(),
    };
    for lines in [vec![line(1, MAX), line(2, 1)], vec![line(1, u64::MAX)]] {
        let resp = UpstreamResponse {
            seq: 1,
            acks: vec![],
            pools: vec![("acme.com/Default/emea".into(), lines)],
            removals: vec![],
            revocations: vec![],
        };
        let e = refused(c.apply_upstream_response(&resp, NOW, &IDS));
        assert!(e.to_string().contains("maximum of 1000000000000"), "{e}");
        assert_eq!(c.licenses_in(b.root).count(), 0);
        assert_eq!(c.upstream_binding().map(|b| b.last_response_seq), Some(0));
    }
}

/// One random operation on the pools of [`TAG`] in three VAs and four devices.
#[derive(Clone, Debug)]
enum Op {
    Add { va: usize, qty: i64 },
    Transfer { from: usize, to: usize, qty: i64 },
    Remove { entry: usize, qty: Option<i64> },
    Report { device: usize, count: u64 },
    Move { device: usize, to: usize },
}

/// Quantities near the bound, at both ends, in the middle, past it and nonsense.
fn qty() -> impl Strategy<Value = i64> {
    let max = MAX as i64;
    prop_oneof![
        3 => 1i64..=3,
        3 => (max - 3)..=max,
        2 => (max / 2 - 1)..=(max / 2 + 1),
        1 => (max + 1)..=(max + 2),
        1 => Just(i64::MAX),
        1 => -1i64..=0,
    ]
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => qty().prop_filter_map("a count is not negative", |q| u64::try_from(q).ok()),
        1 => Just(u64::MAX),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..3, qty()).prop_map(|(va, qty)| Op::Add { va, qty }),
        2 => (0usize..3, 0usize..3, qty()).prop_map(|(from, to, qty)| Op::Transfer { from, to, qty }),
        1 => (any::<usize>(), prop::option::of(qty())).prop_map(|(entry, qty)| Op::Remove { entry, qty }),
        3 => (0usize..4, count()).prop_map(|(device, count)| Op::Report { device, count }),
        1 => (0usize..4, 0usize..3).prop_map(|(device, to)| Op::Move { device, to }),
    ]
}

/// The expected state: units of license entries per VA and each device's (VA, count), with
/// every sum taken in `u128` so the model itself cannot overflow.
struct Model {
    units: [u128; 3],
    devices: [(usize, u64); 4],
}

impl Model {
    fn asked(&self, va: usize, except: Option<usize>) -> u128 {
        self.devices
            .iter()
            .enumerate()
            .filter(|(d, (v, _))| *v == va && Some(*d) != except)
            .map(|(_, (_, n))| u128::from(*n))
            .sum()
    }

    /// Units granted in `va`: devices in registration order while the units last.
    fn granted(&self, va: usize) -> u128 {
        let mut used = 0u128;
        for (v, n) in &self.devices {
            if *v == va && *n > 0 {
                if used + u128::from(*n) > self.units[va] {
                    break;
                }
                used += u128::from(*n);
            }
        }
        used
    }
}

/// Applies an accepted operation's change; says whether it was accepted.
fn accepted<E: std::fmt::Debug>(c: &mut Catalog, r: Result<Change, E>) -> bool {
    r.map(|change| c.apply(&change)).is_ok()
}

/// The catalog under test, its three VAs and four devices (two share a VA), and the model.
struct World {
    c: Catalog,
    vas: [VaId; 3],
    devices: Vec<InstanceId>,
    m: Model,
    seq: u64,
}

const BOUND: u128 = MAX as u128;

impl World {
    fn new() -> World {
        let (mut c, a) = with_account("acme", "acme.com");
        let x = mk_va(&mut c, a.default_va, "x");
        let y = mk_va(&mut c, a.default_va, "y");
        let vas = [a.default_va, x, y];
        let homes = [0, 1, 1, 2];
        let devices = homes
            .iter()
            .zip(0u8..)
            .map(|(v, n)| register(&mut c, vas[*v], n))
            .collect();
        let m = Model {
            units: [0; 3],
            devices: homes.map(|v| (v, 0)),
        };
        World {
            c,
            vas,
            devices,
            m,
            seq: 0,
        }
    }

    /// Runs `op`, asserting it is accepted exactly when the model says the bound allows it.
    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let (c, vas, m) = (&mut self.c, self.vas, &mut self.m);
        match *op {
            Op::Add { va, qty } => {
                let ok = qty > 0 && m.units[va] + qty as u128 <= BOUND;
                let r = c.add_license(&admin(), vas[va], perpetual(TAG, qty), NOW, &IDS);
                prop_assert_eq!(accepted(c, r.map(|(ch, _)| ch)), ok, "{:?}", op);
                if ok {
                    m.units[va] += qty as u128;
                }
            }
            Op::Transfer { from, to, qty } => {
                let ok = from != to
                    && qty > 0
                    && m.units[from] >= qty as u128
                    && m.units[to] + qty as u128 <= BOUND;
                let r =
                    c.transfer_licenses(&admin(), vas[from], vas[to], TAG, qty, None, NOW, &IDS);
                prop_assert_eq!(accepted(c, r), ok, "{:?}", op);
                if ok {
                    m.units[from] -= qty as u128;
                    m.units[to] += qty as u128;
                }
            }
            Op::Remove { entry, qty } => {
                let entries: Vec<License> = vas
                    .iter()
                    .flat_map(|v| c.licenses_in(*v).cloned())
                    .collect();
                let Some(l) = entries.get(entry % entries.len().max(1)) else {
                    return Ok(());
                };
                let take = qty.unwrap_or(l.quantity as i64);
                let ok = take > 0 && take as u64 <= l.quantity;
                let r = c.remove_license(&admin(), l.id, qty, NOW);
                prop_assert_eq!(accepted(c, r), ok, "{:?}", op);
                if ok {
                    let va = vas.iter().position(|v| *v == l.va).expect("one of ours");
                    m.units[va] -= take as u128;
                }
            }
            Op::Report { device, count } => {
                let (va, _) = m.devices[device];
                let ok = count == 0 || m.asked(va, Some(device)) + u128::from(count) <= BOUND;
                self.seq += 1;
                let r = report(c, self.devices[device], self.seq, count);
                prop_assert_eq!(r.is_ok(), ok, "{:?}", op);
                if ok {
                    m.devices[device].1 = count;
                }
            }
            Op::Move { device, to } => {
                let (from, n) = m.devices[device];
                let ok = from != to && m.asked(to, None) + u128::from(n) <= BOUND;
                let r = c.move_device(&admin(), self.devices[device], vas[to]);
                prop_assert_eq!(accepted(c, r.map(|(ch, _)| ch)), ok, "{:?}", op);
                if ok {
                    m.devices[device].0 = to;
                }
            }
        }
        Ok(())
    }

    /// Every total the catalog computes equals the model's exact sum and stays within the
    /// bound: units valid, units asked for and granted, and the `license list` line.
    fn check(&self) -> Result<(), TestCaseError> {
        let (c, m) = (&self.c, &self.m);
        for (i, va) in self.vas.iter().enumerate() {
            let (granted, requested, _) = c.granted(*va, TAG, NOW);
            prop_assert!(m.units[i] <= BOUND && m.asked(i, None) <= BOUND);
            prop_assert_eq!(u128::from(c.available(*va, TAG, NOW)), m.units[i]);
            prop_assert_eq!(u128::from(requested), m.asked(i, None));
            prop_assert_eq!(u128::from(granted), m.granted(i));
            let stored: u128 = c.licenses_in(*va).map(|l| u128::from(l.quantity)).sum();
            prop_assert_eq!(stored, m.units[i]);
            let line = c
                .pool(*va, NOW, |v, t| c.in_use(v, t, NOW))
                .into_iter()
                .next();
            if let Some(line) = line {
                prop_assert_eq!(u128::from(line.purchased), m.units[i]);
                prop_assert_eq!(u128::from(line.in_use), m.granted(i));
                prop_assert_eq!(
                    i128::from(line.balance),
                    m.units[i] as i128 - m.granted(i) as i128
                );
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn totals_near_the_bound_are_exact_and_never_exceed_it(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        let mut w = World::new();
        for op in &ops {
            w.step(op)?;
            w.check()?;
        }
    }
}
