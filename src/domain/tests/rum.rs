//! The trust rules of the RUM channel in the domain (SPEC §3b): a report never changes a
//! device registered with protocol v1, whether an envelope is checked first or a report is
//! ingested directly, and the envelope check names every such device once.

use super::*;

fn report(pid: &str, serial: &str, id: u64, count: u64) -> RumInput {
    RumInput {
        report_id: id,
        udi: Udi {
            pid: pid.into(),
            serial: serial.into(),
        },
        entitlement_tag: "T".into(),
        count,
        software_version: Some("17.09.02".into()),
        raw: "{}".into(),
    }
}

/// Registers a device with protocol v1 (`force` re-registers an existing UDI).
fn register_native(c: &mut Catalog, serial: &str, force: bool) -> ProductInstance {
    let r = Registration {
        token_hash: hash(1),
        udi: Udi {
            pid: "P".into(),
            serial: serial.into(),
        },
        hostname: "h".into(),
        product: "p".into(),
        version: "v1".into(),
        force,
    };
    let (change, i) = c
        .register_device(&r, NOW, &IDS, |_| {
            Ok(IssuedIdentity {
                serial: format!("C-{serial}"),
                not_after: NOW + Duration::days(365),
            })
        })
        .expect("registered");
    c.apply_owned(change);
    i
}

fn with_token() -> (Catalog, Account) {
    let (mut c, account) = with_account("acme", "acme.com");
    c.commit(c.create_token(
        &admin(),
        account.default_va,
        token_spec(),
        hash(1),
        NOW,
        &IDS,
    ));
    (c, account)
}

#[test]
fn an_envelope_naming_a_native_device_is_refused_as_a_whole_with_one_event() {
    let (mut c, account) = with_token();
    let native = register_native(&mut c, "N1", false);
    let envelope = [
        report("R", "RUM-ONLY", 1, 2),
        report("P", "N1", 2, 500),
        report("P", "N1", 3, 500),
    ];
    let refusal = c
        .check_rum(account.id, &envelope)
        .expect("checked")
        .expect("refused");
    assert_eq!(
        refusal.error,
        DeviceError::RegisteredNatively(vec![native.udi.clone()]),
        "each device is named once"
    );
    assert!(
        refusal.error.to_string().contains("P:N1"),
        "{}",
        refusal.error
    );
    let event = ev(&refusal.audit);
    assert_eq!(event.action, "device.rum_refused");
    assert_eq!(
        event.device.as_deref(),
        Some(native.id.to_string().as_str())
    );
    assert!(refusal.audit.put.is_empty() && refusal.audit.remove.is_empty());
    // Without the native device the envelope may be applied.
    assert!(c.check_rum(account.id, &envelope[..1]).unwrap().is_none());
}

#[test]
fn ingesting_a_report_for_a_native_device_is_refused_even_without_the_check() {
    let (mut c, account) = with_token();
    let native = register_native(&mut c, "N1", false);
    let err = c
        .ingest_rum(account.id, &report("P", "N1", 1, 500), NOW, &IDS)
        .unwrap_err();
    assert_eq!(err, DeviceError::RegisteredNatively(vec![native.udi]));
}

#[test]
fn a_rum_device_registered_natively_later_no_longer_takes_rum_reports() {
    let (mut c, account) = with_token();
    let change = c
        .ingest_rum(account.id, &report("P", "N1", 1, 2), NOW, &IDS)
        .unwrap()
        .expect("new report");
    c.apply_owned(change);
    assert_eq!(
        c.instance_by_udi(account.id, &report("P", "N1", 0, 0).udi)
            .unwrap()
            .source,
        InstanceSource::Rum
    );
    register_native(&mut c, "N1", true);
    let again = report("P", "N1", 2, 2);
    assert!(matches!(
        c.ingest_rum(account.id, &again, NOW, &IDS),
        Err(DeviceError::RegisteredNatively(_))
    ));
    assert!(c.check_rum(account.id, &[again]).unwrap().is_some());
}
