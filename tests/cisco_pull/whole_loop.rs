//! The whole Cisco loop in pull mode (SPEC §11), with the real RUM fixture: the satellite polls
//! the device, exports the report for Cisco's portal, imports the ACK archive the portal
//! returns, and hands the ACK to the device through `import` at the next poll; a device that
//! does not take it gets it again at the poll after, and a delivered ACK is not sent twice.

use super::{PASSWORD, acme, add, envelope, manual, poll};
use crate::cisco_acks::{ack_archive, ack_file};
use crate::util::Daemon;
use serde_json::Value;

use super::double::DeviceDouble;

fn actions(d: &Daemon, action: &str) -> Vec<Value> {
    d.events()
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect()
}

#[test]
fn the_real_report_goes_round_the_loop_and_its_ack_reaches_the_device() {
    let d = manual();
    acme(&d);
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    dev.add_reports([envelope()]);
    add(&d, "edge-1", &dev, PASSWORD);
    assert_eq!(poll(&d, "edge-1")["accepted"], 1);

    // Export for Cisco, and the portal's answer for the one device file.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let exported = d.cli_json(&["cisco", "export", "--out", out]);
    assert_eq!(exported["reports"], 1, "{exported:#}");
    let file_id = exported["devices"][0]["file_id"].as_u64().unwrap();
    let ack = ack_file("edge-1");
    let archive = dir.path().join("ACK_UD_SA.tar.gz");
    std::fs::write(&archive, ack_archive(&[(file_id, &ack)])).unwrap();
    d.cli_json(&["cisco", "import-ack", archive.to_str().unwrap()]);
    assert!(
        dev.state.lock().unwrap().imports.is_empty(),
        "nothing reaches the device before it is polled"
    );

    // The device does not take it: the reports are still polled, the failure is audited, and
    // the ACK waits.
    dev.state.lock().unwrap().refuse_imports = true;
    let o = poll(&d, "edge-1");
    assert_eq!(
        (o["acks_delivered"].as_u64(), o["acks_failed"].as_u64()),
        (Some(0), Some(1)),
        "{o:#}"
    );
    let failed = actions(&d, "cisco.ack_delivery_failed");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["actor"], "cisco-poll:edge-1");
    let view = d.cli_json(&["cisco", "reports"]);
    assert_eq!(view[0]["last_ack_delivered"], false, "{view:#}");

    // The next poll delivers it, byte for byte (`import_body = "xml"`, the default).
    dev.state.lock().unwrap().refuse_imports = false;
    let o = poll(&d, "edge-1");
    assert_eq!(o["acks_delivered"], 1, "{o:#}");
    assert_eq!(dev.state.lock().unwrap().imports, vec![ack.clone()]);
    let delivered = actions(&d, "cisco.ack_delivered");
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert_eq!(delivered[0]["actor"], "cisco-poll:edge-1");
    let view = d.cli_json(&["cisco", "reports"]);
    assert_eq!(view[0]["waiting_for_ack"], 0, "{view:#}");
    assert_eq!(view[0]["last_ack_delivered"], true, "{view:#}");

    // Delivered once: a further poll sends nothing.
    let o = poll(&d, "edge-1");
    assert_eq!(o["acks_delivered"], 0, "{o:#}");
    assert_eq!(dev.state.lock().unwrap().imports.len(), 1);
    let table = d.cli_ok(&["cisco", "poll", "edge-1"]);
    assert!(!table.contains("ACK file"), "{table}");
}

/// `import_body = "base64:FIELD"` carries the ACK as base64 in that JSON field.
#[test]
fn the_ack_goes_in_base64_when_the_operator_says_so() {
    use satellite::protocol::cisco::pull::{ImportEncoding, decode_import};
    let d = Daemon::start_with(
        "",
        "[cisco]\npoll_interval = \"off\"\nimport_body = \"base64:data\"\n",
    );
    acme(&d);
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    dev.add_reports([envelope()]);
    add(&d, "edge-1", &dev, PASSWORD);
    poll(&d, "edge-1");
    let dir = tempfile::tempdir().unwrap();
    let exported = d.cli_json(&["cisco", "export", "--out", dir.path().to_str().unwrap()]);
    let file_id = exported["devices"][0]["file_id"].as_u64().unwrap();
    let ack = ack_file("b64");
    let archive = dir.path().join("ack.tar.gz");
    std::fs::write(&archive, ack_archive(&[(file_id, &ack)])).unwrap();
    d.cli_json(&["cisco", "import-ack", archive.to_str().unwrap()]);
    assert_eq!(poll(&d, "edge-1")["acks_delivered"], 1);
    let body = dev.state.lock().unwrap().imports.pop().unwrap();
    let encoding = ImportEncoding::base64_json("data").unwrap();
    assert_eq!(decode_import(&body, &encoding).unwrap(), ack);
}
