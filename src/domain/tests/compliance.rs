//! Compliance reports over many VAs (SPEC §4): the lines equal the straight definition, and
//! where spare units are is worked out once per VA and tag for a whole report, not once per
//! short line.

use proptest::prelude::*;

use super::*;

const TAGS: [&str; 3] = ["t0", "t1", "t2"];

/// The straight definition of one line's figures: units valid now, then reservations, then
/// the eligible devices in registration order while the units last (a strict prefix).
/// Answers (purchased, granted, requested, devices short), or `None` when the VA neither
/// licenses, uses nor reserves the tag.
fn naive_figures(c: &Catalog, va: VaId, tag: &str) -> Option<(u64, u64, u64, usize)> {
    let entries: Vec<&License> = c
        .licenses_in(va)
        .filter(|l| l.entitlement_tag == tag)
        .collect();
    let mut devices: Vec<&ProductInstance> = c
        .instances()
        .filter(|i| i.va == va && i.usage.contains_key(tag))
        .collect();
    let reserved = c.reserved(va, tag);
    if entries.is_empty() && devices.is_empty() && reserved == 0 {
        return None;
    }
    devices.sort_by_key(|i| i.order);
    let purchased: u64 = entries
        .iter()
        .filter(|l| l.is_valid_at(NOW))
        .map(|l| l.quantity)
        .sum();
    let asks = |i: &ProductInstance| i.usage.get(tag).copied().unwrap_or(0);
    if entries.is_empty() {
        let requested = reserved + devices.iter().map(|i| asks(i)).sum::<u64>();
        return Some((0, 0, requested, devices.len()));
    }
    let export = entries.iter().any(|l| l.export_controlled);
    let held = reserved.min(purchased);
    let (mut left, mut granted, mut requested) = (purchased - held, held, reserved);
    let (mut short, mut full) = (0, false);
    for i in devices.iter().filter(|i| !export || i.export_allowed) {
        let n = asks(i);
        requested += n;
        if !full && n <= left {
            left -= n;
            granted += n;
        } else {
            full = true;
            short += 1;
        }
    }
    Some((purchased, granted, requested, short))
}

/// Units nothing claims: valid units beyond what is reserved and what eligible devices ask.
fn naive_spare(c: &Catalog, va: VaId, tag: &str) -> u64 {
    naive_figures(c, va, tag).map_or(0, |(purchased, _, requested, _)| {
        purchased.saturating_sub(requested)
    })
}

/// The report as the definition states it, each VA's spare units asked for every short line.
fn naive_report(c: &Catalog, vas: &[VaId], only_short: bool) -> Vec<ComplianceLine> {
    let mut out = Vec::new();
    for &va in vas {
        let account = c.va(va).expect("a VA of the test").account;
        let others: Vec<VaId> = c
            .subtree(c.account(account).expect("its account").default_va)
            .into_iter()
            .filter(|v| *v != va)
            .collect();
        for tag in TAGS {
            let Some((purchased, granted, requested, devices_short)) = naive_figures(c, va, tag)
            else {
                continue;
            };
            if only_short && requested <= granted {
                continue;
            }
            let mut spare_in: Vec<(VaId, u64)> = Vec::new();
            if requested > granted {
                spare_in = others
                    .iter()
                    .map(|v| (*v, naive_spare(c, *v, tag)))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                spare_in.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            }
            out.push(ComplianceLine {
                va,
                entitlement_tag: tag.into(),
                purchased,
                requested,
                granted,
                devices_short,
                spare_in: spare_in.into(),
            });
        }
    }
    out
}

/// Registers device `n` in `va` through a token of its own and reports `usage`.
fn device(c: &mut Catalog, va: VaId, n: u8, export_allowed: bool, usage: &[(String, u64)]) {
    let mut spec = token_spec();
    spec.allow_export_controlled = export_allowed;
    c.commit(c.create_token(&admin(), va, spec, hash(100 + n), NOW, &IDS));
    let id = register_with(c, hash(100 + n), n);
    match c.report_usage(id, 1, NOW, usage, NOW, &DeviceTimers::default()) {
        Ok(UsageOutcome::Applied(change, _)) => c.apply_owned(change),
        other => panic!("report not applied: {other:?}"),
    }
}

/// Reserves `n` units of `tag` in `va` for a disconnected device; refused when too few are
/// spare, which the test takes as it comes.
fn try_reserve(c: &mut Catalog, va: VaId, serial: &str, tag: &str, n: u64) {
    let request = ReservationRequest {
        udi: Udi {
            pid: "R".into(),
            serial: serial.into(),
        },
        entitlements: [(tag.to_owned(), n)].into(),
        nonce: format!("nonce-{serial}"),
    };
    let issue = |_: &Reservation, _: IssueContext<'_>| IssuedAuthorization {
        code: format!("code-{serial}"),
        code_sha256: hash(1),
        return_proof_sha256: hash(2),
    };
    if let Ok((change, _)) = c.reserve(&admin(), va, &request, true, NOW, &IDS, issue) {
        c.apply(&change);
    }
}

#[derive(Clone, Debug)]
struct Lic {
    va: usize,
    tag: usize,
    qty: i64,
    kind: u8,
    export: bool,
}

#[derive(Clone, Debug)]
struct Dev {
    va: usize,
    export_allowed: bool,
    usage: Vec<(usize, u64)>,
}

fn lic() -> impl Strategy<Value = Lic> {
    (
        0usize..8,
        0usize..3,
        1i64..8,
        0u8..4,
        prop::bool::weighted(0.3),
    )
        .prop_map(|(va, tag, qty, kind, export)| Lic {
            va,
            tag,
            qty,
            kind,
            export,
        })
}

fn dev() -> impl Strategy<Value = Dev> {
    (
        0usize..8,
        any::<bool>(),
        prop::collection::vec((0usize..3, 1u64..4), 1..3),
    )
        .prop_map(|(va, export_allowed, usage)| Dev {
            va,
            export_allowed,
            usage,
        })
}

/// Two accounts: acme with five VAs (one nested), globex with three.
fn two_accounts() -> (Catalog, Vec<VaId>) {
    let (mut c, a) = with_account("acme", "acme.com");
    let b = add_account(&mut c, "globex", "globex.com");
    let a1 = mk_va(&mut c, a.default_va, "a1");
    let a2 = mk_va(&mut c, a.default_va, "a2");
    let a3 = mk_va(&mut c, a1, "a3");
    let a4 = mk_va(&mut c, a.default_va, "a4");
    let b1 = mk_va(&mut c, b.default_va, "b1");
    let b2 = mk_va(&mut c, b.default_va, "b2");
    let vas = vec![a.default_va, a1, a2, a3, a4, b.default_va, b1, b2];
    (c, vas)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_report_equals_the_straight_definition(
        lics in prop::collection::vec(lic(), 0..14),
        devs in prop::collection::vec(dev(), 0..14),
        reservations in prop::collection::vec((0usize..8, 0usize..3, 1u64..4), 0..4),
        subset in prop::collection::vec(any::<bool>(), 8),
    ) {
        let (mut c, vas) = two_accounts();
        for l in &lics {
            let mut s = spec(TAGS[l.tag], l.qty, match l.kind {
                0 => LicenseKind::Perpetual,
                1 => active_term(),
                2 => expired_term(),
                _ => future_term(),
            });
            s.export_controlled = l.export;
            add_lic(&mut c, vas[l.va], s);
        }
        for (n, d) in devs.iter().enumerate() {
            let mut usage: Vec<(String, u64)> = Vec::new();
            for (t, k) in &d.usage {
                if !usage.iter().any(|(u, _)| u == TAGS[*t]) {
                    usage.push((TAGS[*t].into(), *k));
                }
            }
            device(&mut c, vas[d.va], n as u8, d.export_allowed, &usage);
        }
        for (n, (va, tag, k)) in reservations.iter().enumerate() {
            try_reserve(&mut c, vas[*va], &format!("R{n}"), TAGS[*tag], *k);
        }

        let some: Vec<VaId> = vas.iter().zip(&subset).filter(|(_, s)| **s).map(|(v, _)| *v).collect();
        for list in [&vas, &some] {
            for only_short in [true, false] {
                prop_assert_eq!(
                    c.compliance(list, NOW, only_short),
                    naive_report(&c, list, only_short)
                );
            }
        }
        for va in &vas {
            for tag in TAGS {
                prop_assert_eq!(c.spare(*va, tag, NOW), naive_spare(&c, *va, tag));
            }
        }
        // The shortage alerts carry the same lists of spare units.
        let short = naive_report(&c, &vas, true);
        let alerts: Vec<Alert> = c
            .alerts(NOW, &DeviceTimers::default(), &AlertInputs::default())
            .into_iter()
            .filter(|a| a.kind == "insufficient_licenses")
            .collect();
        // Alerts are derived for the VAs with devices.
        let with_devices = |va: VaId| c.instances().any(|i| i.va == va);
        prop_assert_eq!(alerts.len(), short.iter().filter(|l| with_devices(l.va)).count());
        for a in &alerts {
            let line = short
                .iter()
                .find(|l| a.key == format!("insufficient_licenses:{}:{}", l.va, l.entitlement_tag))
                .expect("an alert for a short line");
            prop_assert_eq!(&a.spare_in, &line.spare_in);
        }
    }
}

/// Twelve VAs of one account: eight short of `T` (one unit, two devices asking one each), four
/// with spare units (5, 4, 3 and 2). Answers the catalog and the VAs, the short ones first.
fn eight_short_four_spare() -> (Catalog, Vec<VaId>) {
    let (mut c, a) = with_account("acme", "acme.com");
    let mut vas = Vec::new();
    for n in 0..12u8 {
        let va = mk_va(&mut c, a.default_va, &format!("v{n}"));
        if n < 8 {
            add_lic(&mut c, va, perpetual("T", 1));
            for k in 0..2 {
                device(&mut c, va, n * 2 + k, false, &[("T".into(), 1)]);
            }
        } else {
            add_lic(&mut c, va, perpetual("T", 13 - i64::from(n)));
        }
        vas.push(va);
    }
    (c, vas)
}

fn spare_calls() -> usize {
    super::super::compliance::SPARE_CALLS.with(std::cell::Cell::get)
}

#[test]
fn a_report_works_out_each_vas_spare_units_once_per_tag() {
    let (c, vas) = eight_short_four_spare();
    let before = spare_calls();
    let lines = c.compliance(&vas, NOW, true);
    let calls = spare_calls() - before;
    assert_eq!(lines.len(), 8);
    // Each short line lists the four VAs with spare units, most first.
    for l in &lines {
        let spare: Vec<u64> = l.spare_in.iter().map(|(_, n)| *n).collect();
        assert_eq!(spare, [5, 4, 3, 2], "{l:?}");
    }
    // Twelve VAs hold the tag: twelve evaluations, not one per VA for each of the eight
    // short lines (8 × 11 = 88).
    assert_eq!(calls, 12, "spare units evaluated {calls} times");

    // The alerts derive the same report: again once per VA, and all eight share one list.
    let before = spare_calls();
    let alerts = c.alerts(NOW, &DeviceTimers::default(), &AlertInputs::default());
    assert_eq!(spare_calls() - before, 12);
    assert_eq!(alerts.len(), 8);
    let system = admin();
    for a in &alerts {
        assert_eq!(a.spare_in.len(), 4);
        assert!(
            c.alert_message(a, &system)
                .contains("acme/Default/v8 has 5 spare")
        );
    }
}

#[test]
fn units_of_an_export_controlled_tag_are_spare_beyond_what_eligible_devices_ask() {
    // Devices not allowed export-controlled licenses claim nothing in y, so what the allowed
    // ones leave is spare for x; until then y is short itself and has nothing to give.
    let (mut c, a) = with_account("acme", "acme.com");
    let x = mk_va(&mut c, a.default_va, "x");
    let y = mk_va(&mut c, a.default_va, "y");
    add_lic(&mut c, x, perpetual("T", 1));
    device(&mut c, x, 0, false, &[("T".into(), 1)]);
    device(&mut c, x, 1, false, &[("T".into(), 1)]);
    let mut s = perpetual("T", 6);
    s.export_controlled = true;
    add_lic(&mut c, y, s);
    device(&mut c, y, 2, true, &[("T".into(), 4)]);
    device(&mut c, y, 3, false, &[("T".into(), 1)]);
    device(&mut c, y, 4, true, &[("T".into(), 3)]);
    // y: 6 units, eligible devices ask 4 then 3: the second is short, and 6 - 7 is not spare.
    // x: 1 unit for two devices: short; nothing spare in y.
    let lines = c.compliance(&[x, y], NOW, true);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.spare_in.is_empty()), "{lines:?}");
    // Add units to y: 9 units for 7 asked leaves 2 spare, shown to x; y itself is covered.
    let mut s = perpetual("T", 3);
    s.export_controlled = true;
    add_lic(&mut c, y, s);
    let lines = c.compliance(&[x, y], NOW, false);
    assert_eq!(lines[0].va, x);
    assert_eq!(
        lines[0].spare_in.iter().copied().collect::<Vec<_>>(),
        [(y, 2)]
    );
    assert_eq!(lines[1].va, y);
    assert!(lines[1].spare_in.is_empty());
    assert_eq!(
        (lines[1].purchased, lines[1].granted, lines[1].requested),
        (9, 7, 7)
    );
}
