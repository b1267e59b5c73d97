//! License reservation (SPEC §8b): reserved units count as in use before any device, a return
//! releases them, and every refusal changes nothing.

use std::collections::BTreeMap;

use super::*;

const TAG: &str = "regid.dna-advantage";

fn udi(serial: &str) -> Udi {
    Udi {
        pid: "C9300".into(),
        serial: serial.into(),
    }
}

fn request(serial: &str, wants: &[(&str, u64)]) -> ReservationRequest {
    ReservationRequest {
        udi: udi(serial),
        entitlements: wants.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        nonce: format!("nonce-{serial}"),
    }
}

/// What the edge would sign: a code naming the reservation, and hashes derived from it.
fn issue(r: &Reservation, ctx: IssueContext<'_>) -> IssuedAuthorization {
    IssuedAuthorization {
        code: format!("code-{}-{}", r.id, ctx.va_path),
        code_sha256: hash(1),
        return_proof_sha256: hash(2),
    }
}

/// An account with a `lab` VA holding 5 units of [`TAG`], and `spare` holding 4.
fn setup() -> (Catalog, Account, VaId, VaId) {
    let (mut c, a) = with_account("acme", "acme.com");
    let lab = mk_va(&mut c, a.default_va, "lab");
    let other = mk_va(&mut c, a.default_va, "spare");
    add_lic(&mut c, lab, perpetual(TAG, 5));
    add_lic(&mut c, other, perpetual(TAG, 4));
    (c, a, lab, other)
}

fn reserve(c: &mut Catalog, va: VaId, serial: &str, n: u64) -> Reservation {
    c.commit(c.reserve(
        &admin(),
        va,
        &request(serial, &[(TAG, n)]),
        false,
        NOW,
        &IDS,
        issue,
    ))
    .0
}

/// A device registered in `va` reporting `count` units of [`TAG`].
fn device(c: &mut Catalog, va: VaId, serial: &str, count: u64) -> ProductInstance {
    let mut h = [0xee; 32];
    h[..serial.len()].copy_from_slice(serial.as_bytes());
    c.commit(c.create_token(&admin(), va, token_spec(), h, NOW, &IDS));
    let registration = Registration {
        token_hash: h,
        udi: udi(serial),
        hostname: serial.into(),
        product: "p".into(),
        version: "1".into(),
        force: false,
    };
    let (change, i) = c
        .register_device(&registration, NOW, &IDS, |_| {
            Ok(IssuedIdentity {
                serial: format!("cert-{serial}"),
                not_after: NOW + days(365),
            })
        })
        .expect("registered");
    c.apply(&change);
    let timers = DeviceTimers::default();
    match c
        .report_usage(i.id, 1, NOW, &[(TAG.into(), count)], NOW, &timers)
        .expect("reported")
    {
        UsageOutcome::Applied(change, _) => c.apply(&change),
        other => panic!("unexpected {other:?}"),
    }
    c.instance(i.id).expect("present").clone()
}

fn status_of(c: &Catalog, i: &ProductInstance) -> EntitlementStatus {
    c.entitlement_status(i, TAG, i.usage[TAG], NOW)
}

#[test]
fn reserved_units_are_in_use_before_any_device() {
    let (mut c, a, lab, _) = setup();
    let first = device(&mut c, lab, "D1", 2);
    assert_eq!(status_of(&c, &first), EntitlementStatus::Authorized);
    let (change, (r, code)) = c
        .reserve(
            &admin(),
            lab,
            &request("R1", &[(TAG, 3)]),
            false,
            NOW,
            &IDS,
            issue,
        )
        .expect("3 of 5 are spare");
    assert_eq!(code, format!("code-{}-acme/Default/lab", r.id));
    let e = ev(&change);
    assert_eq!(e.action, "reservation.create");
    assert_eq!(e.va, Some(lab));
    assert!(
        e.details
            .contains(&("entitlements".into(), format!("{TAG}=3")))
    );
    c.apply(&change);
    let stored = c.reservation(r.id).expect("stored");
    assert_eq!(
        (stored.code_sha256, stored.return_proof_sha256),
        (hash(1), hash(2))
    );
    assert_eq!(stored.account, a.id);
    assert_eq!(c.reserved(lab, TAG), 3);
    // 3 reserved + 2 for the first device: all 5 in use, nothing left for a second device,
    // which is out of compliance although it registered after the reservation was made.
    assert_eq!(c.granted(lab, TAG, NOW), (5, 5, 0));
    let second = device(&mut c, lab, "D2", 1);
    assert_eq!(
        status_of(&c, &c.instance(first.id).expect("first").clone()),
        EntitlementStatus::Authorized
    );
    assert_eq!(status_of(&c, &second), EntitlementStatus::OutOfCompliance);
    assert_eq!(c.granted(lab, TAG, NOW), (5, 6, 1));
    let line = &c.compliance(&[lab], NOW, true)[0];
    assert_eq!((line.purchased, line.requested, line.granted), (5, 6, 5));
    // `license list`: the pool's in-use count includes the reservation.
    let pool = c.pool(lab, NOW, |va, tag| c.granted(va, tag, NOW).0);
    assert_eq!((pool[0].in_use, pool[0].balance), (5, 0));
}

#[test]
fn a_return_releases_the_units_and_a_replay_is_refused() {
    let (mut c, _, lab, _) = setup();
    let r = reserve(&mut c, lab, "R1", 5);
    let d = device(&mut c, lab, "D1", 1);
    assert_eq!(status_of(&c, &d), EntitlementStatus::OutOfCompliance);
    let (change, returned) = c
        .return_reservation(&admin(), r.id, &udi("R1"), &hash(2))
        .expect("returned");
    assert_eq!(returned.id, r.id);
    c.apply(&change);
    assert_eq!(ev(&change).action, "reservation.return");
    assert!(c.reservation(r.id).is_none());
    assert!(c.reservation_by_udi(r.account, &udi("R1")).is_none());
    assert_eq!(c.reserved(lab, TAG), 0);
    assert_eq!(status_of(&c, &d), EntitlementStatus::Authorized);
    assert_eq!(c.granted(lab, TAG, NOW), (1, 1, 0));
    // The same return again: the reservation is gone.
    let e = refused(c.return_reservation(&admin(), r.id, &udi("R1"), &hash(2)));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
    // The device may reserve again once it returned.
    reserve(&mut c, lab, "R1", 4);
}

#[test]
fn a_return_with_a_wrong_proof_or_device_changes_nothing() {
    let (mut c, _, lab, _) = setup();
    let r = reserve(&mut c, lab, "R1", 2);
    let e = refused(c.return_reservation(&admin(), r.id, &udi("R1"), &hash(3)));
    assert!(
        matches!(&e, DomainError::Refused(m) if m.contains("proof does not match")),
        "{e:?}"
    );
    let e = refused(c.return_reservation(&admin(), r.id, &udi("OTHER"), &hash(2)));
    assert!(
        matches!(&e, DomainError::Refused(m) if m.contains("C9300:OTHER") && m.contains("C9300:R1")),
        "{e:?}"
    );
    assert_eq!(c.reserved(lab, TAG), 2);
}

#[test]
fn too_few_spare_units_are_refused_naming_where_spare_units_are() {
    let (mut c, a, lab, other) = setup();
    device(&mut c, lab, "D1", 2);
    reserve(&mut c, lab, "R1", 1);
    let before = snapshot(&c, &a);
    let e = refused(c.reserve(
        &admin(),
        lab,
        &request("R2", &[(TAG, 3)]),
        false,
        NOW,
        &IDS,
        issue,
    ));
    let DomainError::Refused(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains("only 2 are spare"), "{m}");
    assert!(
        m.contains("5 valid, 2 asked for by devices, 1 already reserved"),
        "{m}"
    );
    assert!(m.contains("acme/Default/spare (4)"), "{m}");
    assert!(m.contains("nothing was reserved"), "{m}");
    assert_eq!(snapshot(&c, &a), before);
    assert!(c.reservation_by_udi(a.id, &udi("R2")).is_none());
    assert_eq!(c.reserved(lab, TAG), 1);
    // A tag the VA has no license of has no spare unit.
    let e = refused(c.reserve(
        &admin(),
        lab,
        &request("R2", &[("nope", 1)]),
        false,
        NOW,
        &IDS,
        issue,
    ));
    assert!(matches!(&e, DomainError::Refused(m) if m.contains("only 0 are spare")));
    // Reserving elsewhere is fine, and lowers what is spare there.
    reserve(&mut c, other, "R2", 4);
    assert_eq!(c.spare(other, TAG, NOW), 0);
}

#[test]
fn one_reservation_per_device_and_none_for_registered_devices() {
    let (mut c, a, lab, other) = setup();
    let r = reserve(&mut c, lab, "R1", 1);
    let e = refused(c.reserve(
        &admin(),
        other,
        &request("R1", &[(TAG, 1)]),
        false,
        NOW,
        &IDS,
        issue,
    ));
    assert!(
        matches!(&e, DomainError::Conflict(m) if m.contains(&r.id.to_string()) && m.contains("return it first")),
        "{e:?}"
    );
    device(&mut c, lab, "D1", 1);
    let e = refused(c.reserve(
        &admin(),
        lab,
        &request("D1", &[(TAG, 1)]),
        false,
        NOW,
        &IDS,
        issue,
    ));
    assert!(
        matches!(&e, DomainError::Refused(m) if m.contains("reports its usage")),
        "{e:?}"
    );
    assert_eq!(c.reservations().count(), 1);
    assert_eq!(c.reserved(lab, TAG), 1);
    // A device holding a reservation may not register as well (it would count twice).
    let h = [0xab; 32];
    c.commit(c.create_token(&admin(), lab, token_spec(), h, NOW, &IDS));
    let registration = Registration {
        token_hash: h,
        udi: udi("R1"),
        hostname: "r1".into(),
        product: "p".into(),
        version: "1".into(),
        force: false,
    };
    let e = c
        .register_device(&registration, NOW, &IDS, |_| {
            unreachable!("refused before issuing")
        })
        .expect_err("a reserved device cannot register");
    assert!(e.to_string().contains("holds license reservation"), "{e}");
    assert!(c.instance_by_udi(a.id, &udi("R1")).is_none());
    // The same UDI in another account is another device.
    let b = add_account(&mut c, "globex", "globex.com");
    add_lic(&mut c, b.default_va, perpetual(TAG, 1));
    reserve(&mut c, b.default_va, "R1", 1);
    assert!(c.reservation_by_udi(a.id, &udi("R1")).is_some());
}

#[test]
fn export_controlled_tags_need_an_explicit_permission() {
    let (mut c, _, lab, _) = setup();
    let mut s = perpetual("regid.crypto", 2);
    s.export_controlled = true;
    add_lic(&mut c, lab, s);
    let req = request("R1", &[("regid.crypto", 1)]);
    let e = refused(c.reserve(&admin(), lab, &req, false, NOW, &IDS, issue));
    assert!(
        matches!(&e, DomainError::Refused(m) if m.contains("--allow-export-controlled")),
        "{e:?}"
    );
    c.commit(c.reserve(&admin(), lab, &req, true, NOW, &IDS, issue));
    assert_eq!(c.reserved(lab, "regid.crypto"), 1);
}

#[test]
fn malformed_requests_are_invalid() {
    let (c, _, lab, _) = setup();
    for req in [
        request("", &[(TAG, 1)]),
        request("R1", &[]),
        request("R1", &[(TAG, 0)]),
        request("R1", &[("has space", 1)]),
    ] {
        let e = refused(c.reserve(&admin(), lab, &req, false, NOW, &IDS, issue));
        assert!(matches!(e, DomainError::Invalid(_)), "{req:?}: {e:?}");
    }
}

#[test]
fn only_writers_of_the_va_may_reserve_return_or_cancel() {
    let (mut c, a, lab, other) = setup();
    let viewer = user_with(
        &mut c,
        "viewer",
        &[grant(Role::VaUser, Scope::Va(lab))],
        hash(10),
    );
    let e = refused(c.reserve(
        &viewer,
        lab,
        &request("R1", &[(TAG, 1)]),
        false,
        NOW,
        &IDS,
        issue,
    ));
    assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    let outsider = user_with(
        &mut c,
        "outsider",
        &[grant(Role::VaAdmin, Scope::Va(other))],
        hash(11),
    );
    let e = refused(c.reserve(
        &outsider,
        lab,
        &request("R1", &[(TAG, 1)]),
        false,
        NOW,
        &IDS,
        issue,
    ));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
    let lab_admin = user_with(
        &mut c,
        "labadm",
        &[grant(Role::VaAdmin, Scope::Va(lab))],
        hash(12),
    );
    let r = c
        .commit(c.reserve(
            &lab_admin,
            lab,
            &request("R1", &[(TAG, 1)]),
            false,
            NOW,
            &IDS,
            issue,
        ))
        .0;
    assert_eq!(r.created_by, "user:labadm");
    // Another VA's admin cannot learn the reservation exists; a reader may not change it.
    let e = refused(c.cancel_reservation(&outsider, r.id));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
    let e = refused(c.return_reservation(&outsider, r.id, &udi("R1"), &hash(2)));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
    let e = refused(c.cancel_reservation(&viewer, r.id));
    assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    let account_admin = user_with(
        &mut c,
        "owner",
        &[grant(Role::AccountAdmin, Scope::Account(a.id))],
        hash(13),
    );
    let (change, _) = c
        .cancel_reservation(&account_admin, r.id)
        .expect("cancelled");
    assert_eq!(ev(&change).action, "reservation.cancel");
    c.apply(&change);
    assert_eq!(c.reserved(lab, TAG), 0);
}

#[test]
fn a_va_with_reservations_cannot_be_deleted() {
    let (mut c, a, _, _) = setup();
    // A VA whose only license is a term license, reserved while it runs.
    let lab = mk_va(&mut c, a.default_va, "term-lab");
    let term = add_lic(&mut c, lab, spec(TAG, 1, active_term()));
    reserve(&mut c, lab, "R1", 1);
    // Once the term has ended the entry holds nothing valid and may be removed...
    let later = datetime!(2027-06-01 0:00 UTC);
    c.commit_change(c.remove_license(&admin(), term.id, None, later));
    // ...but the VA keeps the reservation and cannot be deleted.
    let e = refused(c.delete_va(&admin(), lab, 0, later));
    assert!(
        matches!(&e, DomainError::Refused(m) if m.contains("reservation")),
        "{e:?}"
    );
    // The reservation the VA can no longer cover shows as a shortage.
    let line = &c.compliance(&[lab], later, true)[0];
    assert_eq!((line.requested, line.granted), (1, 0));
}

#[test]
fn the_catalog_rebuilds_reservations_from_records() {
    let (mut c, _, lab, _) = setup();
    let r = reserve(&mut c, lab, "R1", 2);
    let records: Vec<Record> = vec![Record::Reservation(r.clone())];
    let rebuilt = Catalog::from_records(records);
    assert_eq!(rebuilt.reserved(lab, TAG), 2);
    assert_eq!(
        rebuilt
            .reservation_by_udi(r.account, &udi("R1"))
            .map(|x| x.id),
        Some(r.id)
    );
    assert_eq!(r.entitlements, BTreeMap::from([(TAG.to_string(), 2)]));
}

#[test]
fn reserved_units_cannot_be_removed_or_transferred_away() {
    let (mut c, _a, lab, other) = setup();
    reserve(&mut c, lab, "R1", 3);
    let id = c.licenses_in(lab).next().unwrap().id;
    // 5 units, 3 reserved: taking 3 would leave 2.
    let e = refused(c.remove_license(&admin(), id, Some(3), NOW));
    assert!(
        e.to_string().contains("reserved for disconnected devices"),
        "{e}"
    );
    let e = refused(c.transfer_licenses(&admin(), lab, other, TAG, 3, None, NOW, &IDS));
    assert!(
        e.to_string().contains("reserved for disconnected devices"),
        "{e}"
    );
    assert_eq!(c.licenses_in(lab).map(|l| l.quantity).sum::<u64>(), 5);
    // The 2 units nobody reserved can go.
    c.commit_change(c.transfer_licenses(&admin(), lab, other, TAG, 2, None, NOW, &IDS));
    assert_eq!(c.available(lab, TAG, NOW), 3);
}

/// SPEC §7: a refusal shown to a VA administrator names no VA outside its subtree — neither
/// where spare units are, nor where the same device is registered or reserved.
#[test]
fn refusals_name_nothing_outside_the_callers_subtree() {
    let (mut c, a, lab, other) = setup();
    let labadmin = user_with(
        &mut c,
        "lab",
        &[grant(Role::VaAdmin, Scope::Va(lab))],
        hash(7),
    );
    let m = refused(c.reserve(
        &labadmin,
        lab,
        &request("R2", &[(TAG, 6)]),
        false,
        NOW,
        &IDS,
        issue,
    ))
    .to_string();
    assert!(m.contains("only 5 are spare"), "{m}");
    assert!(
        !m.contains("acme/Default/spare"),
        "names a VA the caller cannot see: {m}"
    );
    assert!(m.contains("no other virtual account you can see"), "{m}");

    device(&mut c, other, "D9", 1);
    reserve(&mut c, other, "R9", 1);
    for serial in ["D9", "R9"] {
        let m = refused(c.reserve(
            &labadmin,
            lab,
            &request(serial, &[(TAG, 1)]),
            false,
            NOW,
            &IDS,
            issue,
        ))
        .to_string();
        assert!(m.contains("another virtual account"), "{m}");
        assert!(!m.contains("acme/Default/spare"), "{m}");
        let seen = c
            .reservation_by_udi(a.id, &udi(serial))
            .map(|r| r.id.to_string());
        if let Some(id) = seen {
            assert!(
                !m.contains(&id),
                "names a reservation the caller cannot see: {m}"
            );
        }
    }
}
