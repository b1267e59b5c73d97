//! Cisco devices polled for RUM reports: validation, unique names, scope and audit.

use super::*;

fn device_spec(va: VaId, name: &str) -> CiscoDeviceSpec {
    CiscoDeviceSpec {
        va,
        name: name.into(),
        address: "10.0.0.5:443".into(),
        username: "netops".into(),
        trust: DeviceTrust::Fingerprint([7; 32]),
    }
}

fn sealed(id: CiscoDeviceId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

#[test]
fn adding_a_device_seals_for_its_own_id_and_is_audited() {
    let (mut c, a) = with_account("Acme", "example.com");
    let r = c.add_cisco_device(
        &admin(),
        device_spec(a.default_va, "edge-1"),
        &sealed,
        NOW,
        &IDS,
    );
    let (change, _) = r.as_ref().expect("added");
    assert_eq!(ev(change).action, "cisco.device_added");
    let d = c.commit(r);
    assert_eq!(d.sealed_password, d.id.as_bytes().to_vec());
    assert_eq!(d.account, a.id);
    assert_eq!(
        c.cisco_device_named(a.id, "edge-1").map(|d| d.id),
        Some(d.id)
    );
    assert!(!format!("{d:?}").contains(&format!("{:?}", d.sealed_password)));
}

#[test]
fn a_name_is_unique_per_account_and_nothing_changes_on_a_refusal() {
    let (mut c, a) = with_account("Acme", "example.com");
    c.commit(c.add_cisco_device(
        &admin(),
        device_spec(a.default_va, "edge-1"),
        &sealed,
        NOW,
        &IDS,
    ));
    let e = refused(c.add_cisco_device(
        &admin(),
        device_spec(a.default_va, "edge-1"),
        &sealed,
        NOW,
        &IDS,
    ));
    assert!(
        matches!(e, DomainError::Conflict(ref m) if m.contains("edge-1")),
        "{e:?}"
    );
    assert_eq!(c.all_cisco_devices().len(), 1);
    let b = add_account(&mut c, "Beta", "beta.example");
    c.commit(c.add_cisco_device(
        &admin(),
        device_spec(b.default_va, "edge-1"),
        &sealed,
        NOW,
        &IDS,
    ));
    assert_eq!(c.all_cisco_devices().len(), 2);
}

#[test]
fn bad_names_addresses_users_and_ca_files_are_refused() {
    let (c, a) = with_account("Acme", "example.com");
    let cases: Vec<(CiscoDeviceSpec, &str)> = vec![
        (
            CiscoDeviceSpec {
                name: "".into(),
                ..device_spec(a.default_va, "x")
            },
            "name",
        ),
        (
            CiscoDeviceSpec {
                name: "a b".into(),
                ..device_spec(a.default_va, "x")
            },
            "name",
        ),
        (
            CiscoDeviceSpec {
                address: "https://r1".into(),
                ..device_spec(a.default_va, "x")
            },
            "scheme",
        ),
        (
            CiscoDeviceSpec {
                address: "r1:0".into(),
                ..device_spec(a.default_va, "x")
            },
            "port",
        ),
        (
            CiscoDeviceSpec {
                address: "r1:99999".into(),
                ..device_spec(a.default_va, "x")
            },
            "port",
        ),
        (
            CiscoDeviceSpec {
                address: "r1/path".into(),
                ..device_spec(a.default_va, "x")
            },
            "host",
        ),
        (
            CiscoDeviceSpec {
                address: "[::1".into(),
                ..device_spec(a.default_va, "x")
            },
            "`]`",
        ),
        (
            CiscoDeviceSpec {
                username: "a:b".into(),
                ..device_spec(a.default_va, "x")
            },
            "user",
        ),
        (
            CiscoDeviceSpec {
                trust: DeviceTrust::Ca("hello".into()),
                ..device_spec(a.default_va, "x")
            },
            "PEM",
        ),
    ];
    for (spec, word) in cases {
        let e = refused(c.add_cisco_device(&admin(), spec.clone(), &sealed, NOW, &IDS));
        assert!(
            matches!(e, DomainError::Invalid(ref m) if m.contains(word)),
            "{spec:?}: {e:?}"
        );
    }
    for ok in [
        "r1",
        "10.0.0.5",
        "r1.example.net:8443",
        "[2001:db8::5]:443",
        "[::1]",
    ] {
        assert_eq!(check_address(ok), Ok(()), "{ok}");
    }
}

#[test]
fn a_device_outside_the_callers_scope_is_not_found() {
    let (mut c, a) = with_account("Acme", "example.com");
    let lab = mk_va(&mut c, a.default_va, "lab");
    let ops = mk_va(&mut c, a.default_va, "ops");
    let d = c.commit(c.add_cisco_device(&admin(), device_spec(lab, "edge-1"), &sealed, NOW, &IDS));
    let ops_admin = user_with(
        &mut c,
        "olga",
        &[grant(Role::VaAdmin, Scope::Va(ops))],
        hash(9),
    );
    let e = refused(c.find_cisco_device(&ops_admin, "edge-1").map(|d| d.id));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
    let e = refused(c.remove_cisco_device(&ops_admin, d.id));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
    assert!(c.visible_cisco_devices(&ops_admin).is_empty());
    let e = refused(c.add_cisco_device(&ops_admin, device_spec(lab, "edge-2"), &sealed, NOW, &IDS));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
    let removed = c.commit(c.remove_cisco_device(&admin(), d.id));
    assert_eq!(removed.id, d.id);
    assert!(c.all_cisco_devices().is_empty());
    assert!(c.cisco_device_named(a.id, "edge-1").is_none());
}

#[test]
fn a_va_admin_cannot_add_a_device_whose_answers_act_on_the_whole_account() {
    // A poll ingests its answer like the account's ingest URL does: a report may name any
    // device of the account, devices it creates join the Default VA, and the ACKs of the
    // devices it names go to its address. So adding one is the ingest URL's power, which only
    // those who may change the account hold.
    let (mut c, a) = with_account("Acme", "example.com");
    let lab = mk_va(&mut c, a.default_va, "lab");
    let lab_admin = user_with(
        &mut c,
        "lena",
        &[grant(Role::VaAdmin, Scope::Va(lab))],
        hash(9),
    );
    let e = refused(c.add_cisco_device(&lab_admin, device_spec(lab, "edge-1"), &sealed, NOW, &IDS));
    assert!(
        matches!(e, DomainError::Forbidden(ref m) if m.contains("account-admin")),
        "{e:?}"
    );
    assert!(c.all_cisco_devices().is_empty(), "nothing changed");
    let account_admin = user_with(
        &mut c,
        "ada",
        &[grant(Role::AccountAdmin, Scope::Account(a.id))],
        hash(8),
    );
    let d = c.commit(c.add_cisco_device(
        &account_admin,
        device_spec(lab, "edge-1"),
        &sealed,
        NOW,
        &IDS,
    ));
    assert_eq!(d.va, lab);
}
