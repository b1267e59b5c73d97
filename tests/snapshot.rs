//! The snapshot of the devices (`store/snapshot.rs`): a clean stop writes it, the next start
//! reads it once instead of scanning the store; after a kill -9, or when the file is damaged,
//! the start reads the whole store, and no state is ever lost or stale.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;
use time::OffsetDateTime;

use crate::devices::{register, runtime, usage};
use crate::util::Daemon;

const ADV: &str = "regid.2026-01.com.example.ADV";
const FROM_SNAPSHOT: &str = "devices read from the snapshot of the last stop";

/// The device list as the operator sees it, without the fields a start changes.
fn devices(d: &Daemon) -> Value {
    d.cli_json(&["device", "list"])
}

/// A daemon with four devices that reported usage in `acme/Default/emea`.
fn with_devices() -> (Daemon, Vec<String>, tempfile::TempDir) {
    let d = Daemon::start();
    let emea = d.account("acme").child("emea");
    emea.license(ADV, 3);
    let token = emea.token().secret;
    let rt = runtime();
    let dirs = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for serial in ["S1", "S2", "S3", "S4"] {
        let mut a = register(&rt, &d, &dirs.path().join(serial), &token, serial);
        rt.block_on(a.report(usage(ADV, 1), OffsetDateTime::now_utc()))
            .expect("report");
        ids.push(a.instance_id().to_string());
    }
    (d, ids, dirs)
}

#[test]
fn a_clean_stop_writes_the_snapshot_and_the_next_start_reads_it_once() {
    let (mut d, ids, _agents) = with_devices();
    let before = devices(&d);
    let compliance_before = d.cli_json(&["compliance", "--va", "acme/Default/emea"]);
    d.stop();
    let snapshot = d.data_dir.join("store.snapshot");
    let mode = std::fs::metadata(&snapshot)
        .expect("a clean stop writes the snapshot")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    d.start_again();
    assert_eq!(d.log().matches(FROM_SNAPSHOT).count(), 1, "{}", d.log());
    assert!(!snapshot.exists(), "a snapshot is read once, then removed");
    assert_eq!(devices(&d), before);
    assert_eq!(
        d.cli_json(&["compliance", "--va", "acme/Default/emea"]),
        compliance_before,
        "compliance from the snapshot's devices"
    );

    // A change, then a kill -9: no snapshot, the start reads the store and sees the change.
    d.cli_json(&["device", "move", &ids[0], "--to", "acme/Default"]);
    let moved = devices(&d);
    d.kill9();
    assert!(!snapshot.exists());
    d.start_again();
    assert_eq!(d.log().matches(FROM_SNAPSHOT).count(), 1, "{}", d.log());
    assert_eq!(devices(&d), moved);
    assert_ne!(moved, before);
}

#[test]
fn a_damaged_snapshot_is_refused_whole_and_the_store_is_read() {
    let (mut d, _ids, _agents) = with_devices();
    let before = devices(&d);
    d.stop();
    let snapshot = d.data_dir.join("store.snapshot");
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&snapshot, &bytes).unwrap();

    d.start_again();
    let log = d.log();
    assert!(!log.contains(FROM_SNAPSHOT), "{log}");
    assert!(log.contains("the snapshot is not used"), "{log}");
    assert!(log.contains("checksum"), "{log}");
    assert_eq!(devices(&d), before);
    assert!(!snapshot.exists(), "the damaged file is removed");
}

#[test]
fn an_older_snapshot_put_back_in_place_is_not_read() {
    let (mut d, ids, _agents) = with_devices();
    d.stop();
    let snapshot = d.data_dir.join("store.snapshot");
    let older = d.data_dir.parent().unwrap().join("older.snapshot");
    std::fs::copy(&snapshot, &older).unwrap();
    d.start_again();
    d.cli_json(&["device", "move", &ids[1], "--to", "acme/Default"]);
    let moved = devices(&d);
    d.stop();
    // The file of the first stop where the second stop's file was: another nonce.
    std::fs::copy(&older, &snapshot).unwrap();
    d.start_again();
    let log = d.log();
    assert_eq!(log.matches(FROM_SNAPSHOT).count(), 1, "{log}");
    assert!(
        log.contains("its nonce is not the one the store recorded"),
        "{log}"
    );
    assert_eq!(devices(&d), moved);
}
