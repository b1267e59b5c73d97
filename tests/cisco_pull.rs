//! Pull mode (SPEC §11) with the real binary and an HTTPS double of an IOS XE device
//! (`cisco_pull/double.rs`): adding devices with explicit trust, polling and ingesting the
//! real RUM fixture through the push path's rules, failures that leave everything as it was
//! (wrong credentials, a device down, garbage, truncated JSON, a certificate that is not the
//! pinned one), 10,000 reports from one device, no double counting, credentials never in the
//! clear at rest, and `import` delivering a file byte for byte.

mod double;
mod schedule;
mod whole_loop;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{BIN, Daemon};
use double::{DeviceDouble, Mode};

const FIXTURE: &str = include_str!("data/cisco-rum/example-rum-1671840750.xml");
const REPORT_ID: u64 = 1671840750;
const TAG: &str = "regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896";
const PASSWORD: &str = "Sw0rdfish-pw";

/// The fixture's envelope (the JSON inside `<RUMReport>`), as a device lists it.
fn envelope() -> String {
    satellite::protocol::rum::parse(FIXTURE.as_bytes())
        .unwrap()
        .remove(0)
        .raw
}

/// The envelope with another report id (the id appears once, inside the signed payload).
fn envelope_with_id(id: u64) -> String {
    envelope().replace(&REPORT_ID.to_string(), &id.to_string())
}

/// Runs the CLI with `stdin` as its standard input.
fn cli_with_stdin(d: &Daemon, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&d.config_path)
        .args(args)
        .env_remove("SATELLITE_SOCKET")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `cisco device add NAME` for `dev`, pinned by fingerprint, with `password`.
fn add(d: &Daemon, name: &str, dev: &DeviceDouble, password: &str) -> Value {
    let out = cli_with_stdin(
        d,
        &[
            "cisco",
            "device",
            "add",
            name,
            "--va",
            "acme/Default",
            "--address",
            &dev.address(),
            "--user",
            "slp",
            "--password-stdin",
            "--fingerprint",
            &dev.fingerprint,
            "--json",
        ],
        &format!("{password}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `cisco poll NAME --json`: the one outcome, whether the command succeeded or not.
fn poll(d: &Daemon, name: &str) -> Value {
    let out = d.cli(&["cisco", "poll", name, "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.success(),
        list[0]["outcome"] == "ok",
        "exit status follows the outcome: {list:#}"
    );
    list[0].clone()
}

/// What a poll may change: devices, pools and the audit log.
fn state(d: &Daemon) -> Value {
    json!({
        "devices": d.cli_json(&["device", "list"]),
        "licenses": d.cli_json(&["license", "list"]),
        "events": d.events(),
    })
}

/// A daemon that polls only when told (`cisco poll`), so each test decides when polls happen.
fn manual() -> Daemon {
    Daemon::start_with("", "[cisco]\npoll_interval = \"off\"\n")
}

fn acme(d: &Daemon) {
    d.account("acme").license(TAG, 5);
}

#[test]
fn a_poll_ingests_the_real_report_once_and_counts_it_in_compliance() {
    let d = manual();
    acme(&d);
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    dev.add_reports([envelope()]);
    let added = add(&d, "edge-1", &dev, PASSWORD);
    assert_eq!(added["status"], "never polled");
    assert_eq!(added["trust"], "fingerprint");
    assert!(!added.to_string().contains(PASSWORD));

    let o = poll(&d, "edge-1");
    assert_eq!(o["outcome"], "ok", "{o:#}");
    assert_eq!(
        (o["accepted"].as_u64(), o["held"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(dev.state.lock().unwrap().close_calls, 1);

    let list = d.cli_json(&["device", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
    assert_eq!(list[0]["udi_serial"], "9NTUEA8FIIH");
    assert_eq!(list[0]["source"], "cisco-rum");
    assert_eq!(list[0]["va_path"], "acme/Default");
    assert_eq!(d.cli_json(&["license", "list"])["pools"][0]["in_use"], 3);
    let events = d.events();
    assert_eq!(events[0]["action"], "device.register", "{events:#?}");
    assert_eq!(events[0]["actor"], "cisco-poll:edge-1");

    // The same reports again (the device keeps them until acknowledged): nothing twice.
    let before = state(&d);
    let o = poll(&d, "edge-1");
    assert_eq!(o["outcome"], "ok", "{o:#}");
    assert_eq!(
        (o["accepted"].as_u64(), o["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(state(&d), before);

    let shown = d.cli_json(&["cisco", "device", "show", "edge-1"]);
    assert_eq!(shown["status"], "ok");
    assert_eq!(shown["reports_held"], 1);
    assert_eq!(shown["failures"], 0);
    assert!(shown["next_poll"].is_null(), "polling is off: {shown:#}");
    let table = d.cli_ok(&["cisco", "device", "list"]);
    assert!(
        table.contains("edge-1") && table.contains(" ok "),
        "{table}"
    );
}

/// With scheduled polling on, the worker polls a device as soon as it is added; the wait for
/// it is bounded, and `status` shows the worker.
#[test]
fn the_worker_polls_a_new_device_at_once() {
    let d = Daemon::start();
    acme(&d);
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    dev.add_reports([envelope()]);
    add(&d, "edge-1", &dev, PASSWORD);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = d.cli_json(&["cisco", "device", "show", "edge-1"]);
        if shown["status"] == "ok" {
            assert_eq!(shown["reports_held"], 1);
            assert!(shown["next_poll"].is_string(), "{shown:#}");
            break;
        }
        assert!(Instant::now() < deadline, "not polled: {shown:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.cli_json(&["license", "list"])["pools"][0]["in_use"], 3);
    let status = d.cli_ok(&["status"]);
    assert!(status.contains("cisco"), "{status}");
}

#[test]
fn wrong_credentials_say_so_and_ingest_nothing() {
    let d = manual();
    acme(&d);
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    dev.add_reports([envelope()]);
    add(&d, "edge-1", &dev, "not-the-password");
    let before = state(&d);
    let o = poll(&d, "edge-1");
    assert_eq!(o["outcome"], "unauthorized", "{o:#}");
    assert!(o["error"].as_str().unwrap().contains("401"), "{o:#}");
    assert!(dev.state.lock().unwrap().requests_with_bad_auth > 0);
    assert_eq!(state(&d), before);
    let shown = d.cli_json(&["cisco", "device", "show", "edge-1"]);
    assert_eq!(shown["status"], "unauthorized");
    assert_eq!(shown["failures"], 1);
    assert!(shown["last_error"].as_str().unwrap().contains("user `slp`"));

    // An alert in the device's VA, and the figures of `/metrics`.
    let alerts = d.cli_json(&["alerts"]);
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "cisco_device_unreachable")
        .unwrap_or_else(|| panic!("{alerts:#}"));
    assert!(alert["va"].is_string(), "{alert:#}");
    assert!(
        alert["message"].as_str().unwrap().contains("edge-1"),
        "{alert:#}"
    );
    d.cli_ok(&["user", "create", "prom"]);
    d.cli_ok(&["user", "grant", "prom", "--role", "metrics-reader"]);
    let token = d.cli_json(&["api-token", "create", "--user", "prom"])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let text = d.admin_api(Some(&token)).get("/metrics").text;
    assert!(
        text.contains("satellite_cisco_polls_total{outcome=\"unauthorized\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("satellite_cisco_devices_unreachable 1"),
        "{text}"
    );

    // The right password: the alert ends.
    dev.state.lock().unwrap().password = "not-the-password".into();
    assert_eq!(poll(&d, "edge-1")["outcome"], "ok");
    let alerts = d.cli_json(&["alerts"]);
    assert!(
        !alerts.to_string().contains("cisco_device_unreachable"),
        "{alerts:#}"
    );
}

#[test]
fn a_device_that_is_down_garbled_or_cut_short_changes_nothing() {
    let d = manual();
    acme(&d);
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    dev.add_reports([envelope()]);
    add(&d, "edge-1", &dev, PASSWORD);
    let before = state(&d);
    for (mode, outcome, says) in [
        (Mode::Down, "unreachable", ""),
        (Mode::Garbage, "bad_answer", "JSON object"),
        (Mode::Truncated, "bad_answer", "JSON"),
    ] {
        dev.set_mode(mode.clone());
        let o = poll(&d, "edge-1");
        assert_eq!(o["outcome"], outcome, "{mode:?}: {o:#}");
        assert!(
            o["error"].as_str().unwrap().contains(says),
            "{mode:?}: {o:#}"
        );
        assert_eq!(state(&d), before, "{mode:?}");
    }
    // A port nobody listens on.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = nobody.local_addr().unwrap().port();
    drop(nobody);
    let out = cli_with_stdin(
        &d,
        &[
            "cisco",
            "device",
            "add",
            "gone",
            "--va",
            "acme/Default",
            "--address",
            &format!("127.0.0.1:{port}"),
            "--user",
            "slp",
            "--password-stdin",
            "--fingerprint",
            &dev.fingerprint,
        ],
        "pw\n",
    );
    assert!(out.status.success());
    assert_eq!(poll(&d, "gone")["outcome"], "unreachable");
    // Back up: the next poll succeeds and resets the failures.
    dev.set_mode(Mode::Normal);
    assert_eq!(poll(&d, "edge-1")["outcome"], "ok");
    assert_eq!(
        d.cli_json(&["cisco", "device", "show", "edge-1"])["failures"],
        0
    );
}

#[test]
fn a_certificate_that_is_not_the_pinned_one_is_refused_and_a_ca_is_trusted() {
    let d = manual();
    acme(&d);
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    let impostor = DeviceDouble::self_signed("slp", PASSWORD);
    impostor.add_reports([envelope()]);
    let out = cli_with_stdin(
        &d,
        &[
            "cisco",
            "device",
            "add",
            "edge-1",
            "--va",
            "acme/Default",
            "--address",
            &impostor.address(),
            "--user",
            "slp",
            "--password-stdin",
            "--fingerprint",
            &dev.fingerprint,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success());
    let before = state(&d);
    let o = poll(&d, "edge-1");
    assert_eq!(o["outcome"], "untrusted", "{o:#}");
    assert!(
        o["error"].as_str().unwrap().contains(&dev.fingerprint),
        "{o:#}"
    );
    assert_eq!(
        impostor.state.lock().unwrap().close_calls,
        0,
        "no request was sent"
    );
    assert_eq!(state(&d), before);

    let ca_dev = DeviceDouble::with_ca("slp", PASSWORD);
    ca_dev.add_reports([envelope()]);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_dev.ca_pem.as_ref().unwrap()).unwrap();
    let out = cli_with_stdin(
        &d,
        &[
            "cisco",
            "device",
            "add",
            "edge-ca",
            "--va",
            "acme/Default",
            "--address",
            &ca_dev.address(),
            "--user",
            "slp",
            "--password-stdin",
            "--ca",
            ca.to_str().unwrap(),
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(poll(&d, "edge-ca")["outcome"], "ok");
}

#[test]
fn ten_thousand_reports_from_one_device_are_ingested_once() {
    let d = manual();
    acme(&d);
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    dev.add_reports((0..10_000).map(|i| envelope_with_id(REPORT_ID + i)));
    add(&d, "edge-1", &dev, PASSWORD);
    let started = Instant::now();
    let o = poll(&d, "edge-1");
    let took = started.elapsed();
    assert_eq!(o["outcome"], "ok", "{o:#}");
    assert_eq!(o["accepted"], 10_000);
    eprintln!("10,000 pulled reports ingested in {took:?}");
    assert!(took < Duration::from_secs(120), "{took:?}");
    let o = poll(&d, "edge-1");
    assert_eq!(
        (o["accepted"].as_u64(), o["duplicates"].as_u64()),
        (Some(0), Some(10_000))
    );
    assert_eq!(d.cli_json(&["license", "list"])["pools"][0]["in_use"], 3);
    assert_eq!(d.cli_json(&["device", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn credentials_are_sealed_at_rest_and_survive_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let mut d = manual();
    acme(&d);
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    dev.add_reports([envelope()]);
    add(&d, "edge-1", &dev, PASSWORD);
    let key = d.data_dir.join("cisco-credentials.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let events = d.events();
    assert_eq!(events[0]["action"], "cisco.device_added");
    assert!(!events[0].to_string().contains(PASSWORD));
    let backup = d.data_dir.join("../backup.bin");
    d.cli_ok(&["backup", "--out", backup.to_str().unwrap()]);
    let bytes = std::fs::read(&backup).unwrap();
    assert!(
        !bytes
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes())
    );
    assert!(!d.log().contains(PASSWORD));

    d.restart();
    assert_eq!(poll(&d, "edge-1")["outcome"], "ok");
    assert!(!d.log().contains(PASSWORD));
    d.cli_ok(&["cisco", "device", "remove", "edge-1", "--yes"]);
    assert_eq!(d.events()[0]["action"], "cisco.device_removed");
    assert_eq!(d.cli_json(&["cisco", "device", "list"]), json!([]));
}

#[test]
fn trust_is_explicit_and_bad_input_changes_nothing() {
    let d = manual();
    acme(&d);
    let before = state(&d);
    let base = [
        "cisco",
        "device",
        "add",
        "edge-1",
        "--va",
        "acme/Default",
        "--user",
        "slp",
    ];
    let cases: &[(&[&str], &str)] = &[
        (&["--address", "10.0.0.5"], "trust is explicit"),
        (
            &["--address", "10.0.0.5", "--fingerprint", "abc"],
            "SHA-256",
        ),
        (
            &[
                "--address",
                "https://10.0.0.5",
                "--fingerprint",
                &"ab".repeat(32),
            ],
            "scheme",
        ),
        (
            &["--address", "10.0.0.5:0", "--fingerprint", &"ab".repeat(32)],
            "port",
        ),
    ];
    for (extra, says) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args.push("--password-stdin");
        let out = cli_with_stdin(&d, &args, "pw\n");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(state(&d), before);
    let (_, err) = d.cli_err(&["cisco", "device", "show", "nope"]);
    assert!(err.contains("not found"), "{err}");
}

/// `import` carries a file to the device byte for byte, in both encodings.
#[test]
fn import_delivers_the_file_byte_for_byte() {
    use satellite::cisco::DeviceClient;
    use satellite::domain::{AccountId, CiscoDevice, CiscoDeviceId, DeviceTrust, VaId};
    use satellite::protocol::cisco::pull::{ImportEncoding, decode_import, encode_import};
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    let fp = satellite::hex::decode_array::<32>(&dev.fingerprint).unwrap();
    let device = CiscoDevice {
        id: CiscoDeviceId(uuid::Uuid::from_u128(1)),
        account: AccountId(uuid::Uuid::from_u128(2)),
        va: VaId(uuid::Uuid::from_u128(3)),
        name: "edge-1".into(),
        address: dev.address(),
        username: "slp".into(),
        sealed_password: Vec::new(),
        trust: DeviceTrust::Fingerprint(fp),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        created_by: "test".into(),
    };
    let ack =
        b"<smartLicense><smartLicenseRumAck>\xe2\x9c\x93 ack</smartLicenseRumAck></smartLicense>\n";
    let rt = crate::devices::runtime();
    for encoding in [
        ImportEncoding::RawXml,
        ImportEncoding::base64_json("data").unwrap(),
    ] {
        let client = DeviceClient::new(
            &device,
            PASSWORD.to_string().into(),
            Duration::from_secs(10),
        )
        .unwrap();
        rt.block_on(client.import(encode_import(ack, &encoding)))
            .unwrap();
        let got = dev.state.lock().unwrap().imports.pop().unwrap();
        assert_eq!(got, encode_import(ack, &encoding));
        assert_eq!(decode_import(&got, &encoding).unwrap(), ack);
    }
}

/// A device's answer naming a device registered with protocol v1 is refused as a whole, as a
/// pushed envelope would be: nothing ingested, one `device.rum_refused` event by the poll.
#[test]
fn reports_naming_a_native_device_refuse_the_whole_poll() {
    let d = manual();
    let secret = d.account("acme").license(TAG, 5).token().secret;
    let rt = crate::devices::runtime();
    let dir = tempfile::tempdir().unwrap();
    let _native = crate::devices::register(&rt, &d, dir.path(), &secret, "FOCE1");
    let forged = envelope_with_id(7)
        .replace("C9800-CL-K9", "C9300-24T")
        .replace("9NTUEA8FIIH", "FOCE1");
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    dev.add_reports([envelope(), forged]);
    add(&d, "edge-1", &dev, PASSWORD);
    let before = json!({
        "devices": d.cli_json(&["device", "list"]),
        "licenses": d.cli_json(&["license", "list"]),
    });
    let events = d.event_count();
    let o = poll(&d, "edge-1");
    assert_eq!(o["outcome"], "refused", "{o:#}");
    assert!(
        o["error"].as_str().unwrap().contains("C9300-24T:FOCE1"),
        "{o:#}"
    );
    let after = json!({
        "devices": d.cli_json(&["device", "list"]),
        "licenses": d.cli_json(&["license", "list"]),
    });
    assert_eq!(after, before, "nothing ingested, not even the other report");
    let all = d.events();
    assert_eq!(all.len(), events + 1, "{all:#?}");
    assert_eq!(all[0]["action"], "device.rum_refused");
    assert_eq!(all[0]["actor"], "cisco-poll:edge-1");
}
