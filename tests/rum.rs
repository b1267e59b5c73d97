//! Cisco RUM reports on the CSLU-style endpoint (SPEC §3b), with the real report in
//! `tests/data/cisco-rum/`.

use serde_json::{Value, json};

use crate::util::Daemon;

const FIXTURE: &str = include_str!("data/cisco-rum/example-rum-1671840750.xml");
const REPORT_ID: u64 = 1671840750;
const TAG: &str = "regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896";

/// The fixture with another report id (the id appears once, inside the signed payload).
fn with_id(id: u64) -> String {
    assert_eq!(FIXTURE.matches("1671840750").count(), 1);
    FIXTURE.replace("1671840750", &id.to_string())
}

/// Everything a RUM upload may change, to compare before and after a refused one.
fn state(d: &Daemon) -> Value {
    json!({ "devices": d.cli_json(&["device", "list"]), "events": d.events() })
}

#[test]
fn a_real_rum_report_registers_the_device_once() {
    let d = Daemon::start();
    d.cli_ok(&["account", "create", "acme", "--domain", "acme.com"]);
    d.cli_ok(&[
        "license",
        "add",
        "--va",
        "acme/Default",
        "--tag",
        TAG,
        "--quantity",
        "5",
    ]);
    let api = d.device_api();

    let r = api.post_raw("/cslu/v1/pi/acme-1", FIXTURE);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": [REPORT_ID], "duplicates": []}));

    let list = d.cli_json(&["device", "list"]);
    let devices = list.as_array().unwrap();
    assert_eq!(devices.len(), 1, "{list:#}");
    let dev = &devices[0];
    assert_eq!(dev["udi_pid"], "C9800-CL-K9");
    assert_eq!(dev["udi_serial"], "9NTUEA8FIIH");
    assert_eq!(dev["source"], "cisco-rum");
    assert_eq!(dev["va_path"], "acme/Default");
    assert_eq!(dev["version"], "17.09.02");
    assert_eq!(
        dev["entitlements"],
        json!([{"entitlement_tag": TAG, "count": 3, "status": "authorized"}]),
        "the count is the latest measurement's value"
    );
    assert_eq!(dev["status"], "authorized");
    let pools = d.cli_json(&["license", "list"]);
    assert_eq!(pools["pools"][0]["in_use"], 3);
    assert_eq!(
        d.cli_json(&["device", "list", "--udi", "9NTUEA8FIIH"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The same report again: a duplicate, nothing changes.
    let before = state(&d);
    let r = api.post_raw("/cslu/v1/pi/acme-1", FIXTURE);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": [], "duplicates": [REPORT_ID]}));
    assert_eq!(state(&d), before);

    // Two reports in one body, one new and one seen: the device is still one instance.
    let body = format!("{}\n{}", with_id(REPORT_ID + 1), FIXTURE);
    let r = api.post_raw("/cslu/v1/pi/acme-1", body);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"accepted": [REPORT_ID + 1], "duplicates": [REPORT_ID]})
    );
    assert_eq!(d.cli_json(&["device", "list"]).as_array().unwrap().len(), 1);

    // `/cslu/v1/pi` without an account works while there is exactly one account.
    let r = api.post_raw("/cslu/v1/pi", with_id(REPORT_ID + 2));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["accepted"], json!([REPORT_ID + 2]));
    d.cli_ok(&["account", "create", "globex", "--domain", "globex.com"]);
    let before = state(&d);
    let r = api.post_raw("/cslu/v1/pi", with_id(REPORT_ID + 3));
    assert!((400..500).contains(&r.status), "{}", r.text);
    assert!(r.text.contains("account"), "{}", r.text);
    // An unknown account is not found.
    let r = api.post_raw("/cslu/v1/pi/nobody-1", with_id(REPORT_ID + 3));
    r.assert_error(404, "not_found");
    assert_eq!(state(&d), before);
    // The other account's name routes there.
    let r = api.post_raw("/cslu/v1/pi/globex-1", with_id(REPORT_ID + 3));
    assert_eq!(r.status, 200, "{}", r.text);
    let globex = d.cli_json(&["device", "list", "--account", "globex"]);
    assert_eq!(globex.as_array().unwrap().len(), 1);
    assert_eq!(globex[0]["va_path"], "globex/Default");
}

#[test]
fn broken_rum_reports_are_refused_and_store_nothing() {
    let d = Daemon::start();
    d.cli_ok(&["account", "create", "acme", "--domain", "acme.com"]);
    let api = d.device_api();
    let before = state(&d);
    let fresh = with_id(42);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unclosed element",
            fresh.replace("</RUMReport>", ""),
            "RUMReport",
        ),
        ("unclosed CDATA", fresh.replace("]]>", ""), "CDATA"),
        (
            "CDATA that is not JSON",
            "<RUMReport><![CDATA[this is not json]]></RUMReport>".to_string(),
            "JSON",
        ),
        (
            "missing report_id",
            fresh.replace("\\\"report_id\\\":42,", ""),
            "report_id",
        ),
        (
            "non-numeric count",
            fresh.replace("\\\"value\\\":\\\"3\\\"", "\\\"value\\\":\\\"three\\\""),
            "three",
        ),
        ("not XML or JSON", "report_id=42".to_string(), "XML"),
        ("empty", String::new(), "empty"),
    ];
    for (what, body, needle) in cases {
        assert_ne!(body, fresh, "{what}: the case must change the report");
        let r = api.post_raw("/cslu/v1/pi/acme-1", body);
        assert!(
            (400..500).contains(&r.status),
            "{what}: {} {}",
            r.status,
            r.text
        );
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{what}: the message should name `{needle}`: {}",
            r.text
        );
    }
    // More than 8 MiB.
    let mut huge = fresh.clone();
    huge.push_str(&" ".repeat(8 * 1024 * 1024 + 1));
    let r = api.post_raw("/cslu/v1/pi/acme-1", huge);
    r.assert_error(413, "payload_too_large");
    assert_eq!(state(&d), before, "nothing stored");

    // The intact report is still accepted: the refusals did not mark it seen.
    let r = api.post_raw("/cslu/v1/pi/acme-1", fresh);
    assert_eq!(
        r.body,
        json!({"accepted": [42], "duplicates": []}),
        "{}",
        r.text
    );
}
