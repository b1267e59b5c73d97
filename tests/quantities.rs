//! The bound on quantities (10^12 units, `domain::MAX_UNITS`) at every edge: the operator CLI,
//! device usage reports and Cisco RUM reports. Past it a request is refused with a message
//! naming the maximum and nothing changes; no total shown can have wrapped or saturated.
//! License files and sync messages are covered in `license_import.rs` and the protocol's tests.

use reqwest::Method;
use serde_json::{Value, json};

use crate::inproc::{Sat, raw_refused, refused};
use crate::util::{BIN, Daemon, assert_names, parse_table};

const MAX: u64 = 1_000_000_000_000;
const TAG: &str = "regid.ADV";

fn add(d: &Daemon, va: &str, quantity: &str) -> std::process::Output {
    d.cli(&[
        "license",
        "add",
        "--va",
        va,
        "--tag",
        TAG,
        "--quantity",
        quantity,
    ])
}

/// Issue #10 item 7: `license add --quantity 9223372036854775807` twice was accepted and
/// `license list` showed PURCHASED 18446744073709551615 and a wrong BALANCE.
#[test]
fn adding_past_the_maximum_is_refused_and_license_list_stays_exact() {
    let d = Daemon::start();
    d.account("acme");
    let before = d.snapshot();
    for q in ["9223372036854775807", "1000000000001"] {
        let out = add(&d, "acme/Default", q);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_names(&stderr, &[q, "maximum of 1000000000000"]);
    }
    assert_eq!(d.snapshot(), before, "nothing was added");

    // The maximum is accepted once; a second time the VA's total would pass it.
    assert!(add(&d, "acme/Default", &MAX.to_string()).status.success());
    let before = d.snapshot();
    for q in [MAX.to_string(), "1".to_string()] {
        let out = add(&d, "acme/Default", &q);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_names(
            &String::from_utf8_lossy(&out.stderr),
            &["regid.ADV", "acme/Default", "maximum of 1000000000000"],
        );
    }
    assert_eq!(
        d.snapshot(),
        before,
        "license list and the audit log unchanged"
    );

    let text = d.cli_ok(&["license", "list"]);
    let table = parse_table(
        &text,
        &[
            "VIRTUAL ACCOUNT",
            "ENTITLEMENT TAG",
            "PURCHASED",
            "IN USE",
            "BALANCE",
            "NEXT EXPIRY",
        ],
        &[2, 3, 4],
    );
    let row = table.row_where(1, TAG);
    assert_eq!(row[2..5], ["1000000000000", "0", "1000000000000"], "{text}");

    // A transfer may not fill a VA past the bound either.
    d.cli_ok(&["va", "create", "lab", "--parent", "acme/Default"]);
    assert!(add(&d, "acme/Default/lab", "1").status.success());
    let before = d.snapshot();
    let (code, stderr) = d.cli_err(&[
        "license",
        "transfer",
        "--from",
        "acme/Default",
        "--to",
        "acme/Default/lab",
        "--tag",
        TAG,
        "--quantity",
        &MAX.to_string(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert_names(&stderr, &["acme/Default/lab", "maximum of 1000000000000"]);
    assert_eq!(d.snapshot(), before);
}

#[test]
fn the_help_of_quantity_names_the_maximum() {
    let out = std::process::Command::new(BIN)
        .args(["license", "add", "--help"])
        .output()
        .expect("run the CLI");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("1000000000000"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_counts_past_the_maximum_are_refused_and_change_nothing() {
    let s = Sat::start().await;
    s.account("acme").await;
    s.license("acme/Default", TAG, 10).await;
    let (token, _) = s.token("acme/Default").await;
    let mut d1 = s.register(&token, "P", "S1").await.expect("register");
    let mut d2 = s.register(&token, "P", "S2").await.expect("register");
    d2.report(&[(TAG, 2)]).await.expect("report");
    let devices = serde_json::to_value(s.devices("").await).unwrap();
    let events = s.all_events().await.len();

    // One count past the maximum: refused when decoded.
    for count in [u64::MAX, i64::MAX as u64, MAX + 1] {
        let r = d2.report(&[(TAG, count)]).await;
        refused(r, 400, "malformed_request");
    }
    let now = s
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let beyond_u64 = format!(
        r#"{{"seq": 99, "measured_at": "{now}", "usage": [{{"entitlement_tag": "{TAG}", "count": 18446744073709551616}}]}}"#
    );
    let r = d2
        .raw(Method::POST, "/v1/usage", beyond_u64.into_bytes())
        .await;
    raw_refused(&r, 400, "malformed_request");
    let r = d2
        .raw(
            Method::POST,
            "/v1/usage",
            json!({"seq": 99, "measured_at": now, "usage": [{"entitlement_tag": TAG, "count": MAX + 1}]})
                .to_string()
                .into_bytes(),
        )
        .await;
    raw_refused(&r, 400, "malformed_request");
    let message = r.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("maximum of 1000000000000"), "{message}");

    // Counts within the bound whose sum in the VA would pass it: refused by the domain.
    let r = d1.report(&[(TAG, MAX - 1)]).await;
    refused(r, 400, "invalid_request");
    assert_eq!(
        serde_json::to_value(s.devices("").await).unwrap(),
        devices,
        "no usage or report recorded"
    );
    assert_eq!(s.all_events().await.len(), events);
    assert_eq!(s.in_use("acme/Default", TAG).await, 2);

    // At the bound exactly, accepted. The first registered device asks for more than there
    // is, so it and every device after it wait (a strict prefix): nothing is in use.
    let a = d1.report(&[(TAG, MAX - 2)]).await.expect("report");
    assert_eq!(a.entitlements[0].status, "out_of_compliance");
    let list = s.licenses().await;
    let line = &list.pools[0];
    assert_eq!((line.purchased, line.in_use, line.balance), (10, 0, 10));
}

const FIXTURE: &str = include_str!("data/cisco-rum/example-rum-1671840750.xml");

/// The fixture with another report id, device serial and count.
fn rum(id: u64, serial: &str, count: &str) -> String {
    FIXTURE
        .replace("1671840750", &id.to_string())
        .replace("9NTUEA8FIIH", serial)
        .replace(
            "\\\"value\\\":\\\"3\\\"",
            &format!("\\\"value\\\":\\\"{count}\\\""),
        )
}

fn rum_state(d: &Daemon) -> Value {
    json!({
        "devices": d.cli_json(&["device", "list"]),
        "licenses": d.cli_json(&["license", "list"]),
        "events": d.events(),
    })
}

#[test]
fn a_rum_count_past_the_maximum_is_refused_and_records_nothing() {
    let d = Daemon::start();
    d.account("acme");
    let api = d.device_api();
    let url = d.rum_path("acme");
    let before = rum_state(&d);
    for count in [
        "1000000000001",
        "18446744073709551615",
        "99999999999999999999999",
    ] {
        let body = rum(1, "SERIAL1", count);
        assert!(body.contains(count), "the fixture holds the count");
        let r = api.post_raw(&url, body);
        r.assert_error(400, "malformed_request");
        assert!(
            r.text.contains("maximum of 1000000000000"),
            "{count}: {}",
            r.text
        );
    }
    assert_eq!(rum_state(&d), before, "nothing stored");

    // Two devices whose counts pass the bound together: the second report is refused.
    let r = api.post_raw(&url, rum(2, "SERIAL2", &MAX.to_string()));
    assert_eq!(
        r.body,
        json!({"accepted": [2], "duplicates": []}),
        "{}",
        r.text
    );
    let before = rum_state(&d);
    let r = api.post_raw(&url, rum(3, "SERIAL3", "1"));
    r.assert_error(400, "invalid_request");
    assert!(r.text.contains("maximum of 1000000000000"), "{}", r.text);
    assert_eq!(rum_state(&d), before, "nothing stored");
}
