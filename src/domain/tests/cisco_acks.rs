//! The Cisco reporting loop on the catalog alone: an export plan and its record, an ACK
//! import mapped back through the device file number, what is acknowledged, and the alert for
//! reports waiting too long.

use std::sync::atomic::Ordering;

use super::*;

fn report(id: u64, serial: &str) -> RumInput {
    RumInput {
        report_id: id,
        udi: Udi {
            pid: "C9300".into(),
            serial: serial.into(),
        },
        entitlement_tag: "t".into(),
        count: 1,
        software_version: None,
        raw: "{}".into(),
    }
}

fn ack(file_id: u64, id: &str) -> AckInput {
    AckInput {
        id: id.into(),
        file_id,
        member: format!("ACK_dev_{file_id}_x"),
        bytes: id.as_bytes().to_vec(),
        has_policy: false,
    }
}

fn inputs(days: u32) -> AlertInputs {
    let inputs = AlertInputs::default();
    inputs.cisco_ack_alert_after.store(days, Ordering::Relaxed);
    inputs
}

fn overdue(c: &Catalog, now: OffsetDateTime, days: u32) -> Vec<String> {
    c.alerts(now, &DeviceTimers::default(), &inputs(days))
        .into_iter()
        .filter(|a| a.kind == "cisco_ack_overdue")
        .map(|a| a.key)
        .collect()
}

#[test]
fn an_ack_maps_back_through_its_device_file_and_acknowledges_its_reports() {
    let (mut c, a) = with_account("acme", "acme.com");
    for (id, serial) in [(1, "A"), (2, "A"), (3, "B")] {
        let change = c
            .ingest_rum(a.id, &report(id, serial), NOW, &IDS)
            .unwrap()
            .unwrap();
        c.apply(&change);
    }
    let scope = ExportScope::Account(a.id);
    let plan = c.plan_cisco_export(&admin(), scope).unwrap();
    assert_eq!(plan.first_file_id, 1);
    assert_eq!(plan.files.len(), 2);
    assert_eq!(plan.report_count(), 3);
    let (change, export) = c
        .record_cisco_export(&admin(), &plan, "UD_SA_1", NOW)
        .unwrap();
    assert_eq!(ev(&change).action, "cisco.export");
    c.apply(&change);
    assert_eq!(export.devices[1].file_id, 2);
    // A plan overtaken by another export is refused: numbers stay unique.
    assert!(matches!(
        c.record_cisco_export(&admin(), &plan, "UD_SA_2", NOW),
        Err(DomainError::Conflict(_))
    ));
    // Before the ACK the same reports go out again, numbered on.
    let again = c.plan_cisco_export(&admin(), scope).unwrap();
    assert_eq!((again.first_file_id, again.report_count()), (3, 3));

    // Waiting reports older than the limit raise one alert per device.
    let later = NOW + days(31);
    assert_eq!(
        overdue(&c, later, 30),
        ["cisco_ack_overdue:A", "cisco_ack_overdue:B"]
    );
    assert!(overdue(&c, later, 0).is_empty(), "0 turns the alert off");
    assert!(overdue(&c, NOW + days(29), 30).is_empty());

    // An ACK for a file no export wrote refuses the whole import.
    let e = refused(c.import_cisco_acks(&admin(), "x", &[ack(1, "a1"), ack(9, "a9")], NOW));
    assert!(e.to_string().contains("did not export"), "{e}");
    let (change, out) = c
        .import_cisco_acks(&admin(), "x", &[ack(1, "a1")], NOW)
        .unwrap();
    c.apply(&change);
    assert_eq!(out.imported[0].report_ids, [1, 2]);
    assert!(c.rum_acknowledged("A", 1) && c.rum_acknowledged("A", 2));
    assert!(!c.rum_acknowledged("B", 3));
    assert_eq!(overdue(&c, later, 30), ["cisco_ack_overdue:B"]);
    // Again: nothing new; another ACK for the same file: refused.
    let (_, out) = c
        .import_cisco_acks(&admin(), "x", &[ack(1, "a1")], NOW)
        .unwrap();
    assert_eq!((out.imported.len(), out.already), (0, 1));
    assert!(
        c.import_cisco_acks(&admin(), "x", &[ack(1, "other")], NOW)
            .is_err()
    );
    let left = c.plan_cisco_export(&admin(), scope).unwrap();
    assert_eq!(left.report_count(), 1, "only B's report is still waiting");

    // Delivery: the ACK waits for its device until an outcome is recorded.
    let instance = c.instances().find(|i| &*i.udi.serial == "A").unwrap().id;
    assert_eq!(c.cisco_acks_to_deliver(instance).len(), 1);
    let (change, _) = c
        .record_cisco_delivery(&admin(), "a1", true, "imported", NOW)
        .unwrap();
    assert_eq!(ev(&change).action, "cisco.ack_delivered");
    c.apply(&change);
    assert!(c.cisco_acks_to_deliver(instance).is_empty());
    let found = c.latest_cisco_ack(&admin(), "C9300:A", None).unwrap();
    assert_eq!(found.bytes, b"a1");
}

#[test]
fn an_ack_for_a_device_moved_out_of_the_importers_scope_reads_as_not_exported() {
    let (mut c, a) = with_account("acme", "acme.com");
    let lab = mk_va(&mut c, a.default_va, "lab");
    let ops = mk_va(&mut c, a.default_va, "ops");
    let change = c
        .ingest_rum(a.id, &report(1, "A"), NOW, &IDS)
        .unwrap()
        .unwrap();
    c.apply(&change);
    let instance = c.instances().find(|i| &*i.udi.serial == "A").unwrap().id;
    c.apply(&c.move_device(&admin(), instance, lab).unwrap().0);
    let lab_admin = user_with(
        &mut c,
        "lena",
        &[grant(Role::VaAdmin, Scope::Va(lab))],
        hash(9),
    );
    let plan = c
        .plan_cisco_export(&lab_admin, ExportScope::Va(lab))
        .unwrap();
    assert_eq!(plan.report_count(), 1);
    let (change, _) = c
        .record_cisco_export(&lab_admin, &plan, "UD_SA_1", NOW)
        .unwrap();
    c.apply(&change);
    // The device leaves the lab: its ACK is no longer the lab's to import.
    c.apply(&c.move_device(&admin(), instance, ops).unwrap().0);
    let e = refused(c.import_cisco_acks(&lab_admin, "x", &[ack(1, "a1")], NOW));
    assert!(e.to_string().contains("did not export"), "{e}");
    assert!(!c.rum_acknowledged("A", 1), "nothing changed");
    // Whoever may change the ops VA imports it.
    let (change, out) = c
        .import_cisco_acks(&admin(), "x", &[ack(1, "a1")], NOW)
        .unwrap();
    c.apply(&change);
    assert_eq!(out.imported[0].va, ops);
}

#[test]
fn an_ack_from_the_upstream_is_taken_only_for_reports_of_the_subtree_it_manages() {
    use super::sync_apply::{bound_child, move_device, rum_report};
    // Bound at Default/emea: a RUM device of Default was never relayed to the upstream, so
    // the upstream has no ACK to give for it, and one naming its reports is not taken.
    let (mut c, _, paris) = bound_child();
    let account = c.va(paris).unwrap().account;
    let change = c
        .ingest_rum(account, &rum_report(1), NOW, &IDS)
        .unwrap()
        .unwrap();
    c.apply(&change);
    let received = |id: &str| ReceivedAck {
        id: id.into(),
        udi: Udi {
            pid: "C9300".into(),
            serial: "RUM1".into(),
        },
        report_ids: vec![1],
        bytes: id.as_bytes().to_vec(),
        has_policy: false,
    };
    let response = || Change::new(NewEvent::new("sync.response", "hq"));
    let change = c.receive_cisco_acks(response(), &[received("a1")], NOW);
    assert!(change.put.is_empty(), "{:?}", change.put);
    c.apply(&change);
    assert!(!c.rum_acknowledged("RUM1", 1));
    // In the managed subtree, the same ACK is the device's.
    let instance = c.instances().find(|i| &*i.udi.serial == "RUM1").unwrap().id;
    move_device(&mut c, instance, paris);
    let change = c.receive_cisco_acks(response(), &[received("a1")], NOW);
    c.apply(&change);
    assert!(c.rum_acknowledged("RUM1", 1));
}
