//! Cisco RUM reports on the CSLU-style endpoint (SPEC §3b), with the real report in
//! `tests/data/cisco-rum/`, and the trust rules of that channel: the per-account unguessable
//! URL, the guessable forms and the source networks of `[rum]`, refusals that look alike, a
//! report that names a device registered with protocol v1, and attribution to the source
//! address.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::devices::{register, runtime, usage};
use crate::util::{Daemon, Resp};

const FIXTURE: &str = include_str!("data/cisco-rum/example-rum-1671840750.xml");
const REPORT_ID: u64 = 1671840750;
const TAG: &str = "regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896";

/// The fixture with another report id (the id appears once, inside the signed payload).
fn with_id(id: u64) -> String {
    assert_eq!(FIXTURE.matches("1671840750").count(), 1);
    FIXTURE.replace("1671840750", &id.to_string())
}

/// The fixture rewritten to name another device (`pid`/`serial` everywhere the SUDI appears)
/// and to measure `count` units, as a sender who knows a registered device's UDI would forge.
fn forged(pid: &str, serial: &str, count: u64, id: u64) -> String {
    let text = with_id(id)
        .replace("C9800-CL-K9", pid)
        .replace("9NTUEA8FIIH", serial)
        .replace(r#"\"value\":\"3\""#, &format!(r#"\"value\":\"{count}\""#));
    assert!(text.contains(&format!(r#"\"value\":\"{count}\""#)));
    text
}

/// Everything a RUM upload may change, to compare before and after a refused one.
fn state(d: &Daemon) -> Value {
    json!({ "devices": d.cli_json(&["device", "list"]), "events": d.events() })
}

/// The events added since `before` events, oldest first.
fn new_events(d: &Daemon, before: usize) -> Vec<Value> {
    let mut all = d.events();
    all.reverse();
    all.split_off(before)
}

#[test]
fn a_real_rum_report_registers_the_device_once() {
    let d = Daemon::start();
    d.account("acme").license(TAG, 5);
    let api = d.device_api();
    let url = d.rum_path("acme");

    let events = d.event_count();
    let r = api.post_raw(&url, FIXTURE);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": [REPORT_ID], "duplicates": []}));
    // The event names the sender's address, not the SUDI the report claims.
    let added = new_events(&d, events);
    assert_eq!(added.len(), 1, "{added:#?}");
    assert_eq!(added[0]["action"], "device.register");
    assert_eq!(added[0]["actor"], "rum:127.0.0.1", "{added:#?}");

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
    let r = api.post_raw(&url, FIXTURE);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": [], "duplicates": [REPORT_ID]}));
    assert_eq!(state(&d), before);

    // Two reports in one body, one new and one seen: the device is still one instance.
    let body = format!("{}\n{}", with_id(REPORT_ID + 1), FIXTURE);
    let r = api.post_raw(&url, body);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"accepted": [REPORT_ID + 1], "duplicates": [REPORT_ID]})
    );
    assert_eq!(d.cli_json(&["device", "list"]).as_array().unwrap().len(), 1);

    // A report of an existing RUM-only device is attributed to the sender too.
    let events = d.event_count();
    let r = api.post_raw(&url, with_id(REPORT_ID + 2));
    assert_eq!(r.body["accepted"], json!([REPORT_ID + 2]), "{}", r.text);
    let added = new_events(&d, events);
    assert_eq!(added.len(), 1, "{added:#?}");
    assert_eq!(added[0]["action"], "device.rum_report");
    assert_eq!(added[0]["actor"], "rum:127.0.0.1", "{added:#?}");
}

#[test]
fn broken_rum_reports_are_refused_and_store_nothing() {
    let d = Daemon::start();
    d.account("acme");
    let api = d.device_api();
    let url = d.rum_path("acme");
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
        let r = api.post_raw(&url, body);
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
    let r = api.post_raw(&url, huge);
    r.assert_error(413, "payload_too_large");
    assert_eq!(state(&d), before, "nothing stored");

    // The intact report is still accepted: the refusals did not mark it seen.
    let r = api.post_raw(&url, fresh);
    assert_eq!(
        r.body,
        json!({"accepted": [42], "duplicates": []}),
        "{}",
        r.text
    );
}

/// The device registered with protocol v1 under `serial`, as `device show` gives it.
fn show(d: &Daemon, serial: &str) -> Value {
    let list = d.cli_json(&["device", "list", "--udi", serial]);
    let id = list[0]["id"].as_str().expect("the device is listed");
    d.cli_json(&["device", "show", id])
}

/// Everything the forged report of issue #10 changed: both devices, the pools, compliance.
fn pools_and_devices(d: &Daemon) -> Value {
    json!({
        "first": show(d, "FOCE1"),
        "second": show(d, "FOCE2"),
        "devices": d.cli_json(&["device", "list"]),
        "pools": d.cli_json(&["license", "list"]),
        "compliance": d.cli_json(&["compliance"]),
    })
}

/// Issue #10: a report without a client certificate naming the SUDI of a device registered
/// with protocol v1 took it over (500 units, the report's version, the other devices' units)
/// under an actor name the sender chose.
#[test]
fn a_rum_report_never_changes_a_device_registered_with_protocol_v1() {
    // The guessable URL of the original attack is on: the rule holds on every URL.
    let d = Daemon::start_with("", "[rum]\nguessable_urls = true\n");
    let secret = d.account("acme").license(TAG, 2).token().secret;
    let rt = runtime();
    let dirs = tempfile::tempdir().unwrap();
    let mut first = register(&rt, &d, &dirs.path().join("1"), &secret, "FOCE1");
    let mut second = register(&rt, &d, &dirs.path().join("2"), &secret, "FOCE2");
    let now = OffsetDateTime::now_utc();
    rt.block_on(first.report(usage(TAG, 1), now)).unwrap();
    rt.block_on(second.report(usage(TAG, 1), now)).unwrap();
    let before = pools_and_devices(&d);
    assert_eq!(before["first"]["version"], "17.9.4");
    assert_eq!(before["second"]["status"], "authorized", "{before:#}");

    let events = d.event_count();
    let attack = forged("C9300-24T", "FOCE1", 500, 7);
    let r = d
        .device_api()
        .post_raw("/cslu/v1/pi/acme-1", attack.clone());
    r.assert_error(409, "registered_natively");
    assert!(r.text.contains("C9300-24T:FOCE1"), "{}", r.text);
    assert_eq!(pools_and_devices(&d), before, "nothing changed");
    let added = new_events(&d, events);
    assert_eq!(added.len(), 1, "one audit event: {added:#?}");
    assert_eq!(added[0]["action"], "device.rum_refused");
    assert_eq!(added[0]["actor"], "rum:127.0.0.1");
    assert_eq!(added[0]["device"], before["first"]["id"]);
    assert!(
        added[0]["subject"]
            .as_str()
            .unwrap()
            .contains("C9300-24T:FOCE1")
    );

    // With a RUM-only device in the same envelope, on the account's own URL: the whole
    // request is refused, the RUM-only device is not created, one more event.
    let events = d.event_count();
    let mixed = format!("{}\n{}", with_id(REPORT_ID), attack);
    let r = d.device_api().post_raw(&d.rum_path("acme"), mixed);
    r.assert_error(409, "registered_natively");
    assert!(!r.text.contains("9NTUEA8FIIH"), "{}", r.text);
    assert_eq!(pools_and_devices(&d), before, "nothing changed");
    assert_eq!(new_events(&d, events).len(), 1);
    // The RUM-only report alone is accepted: the refusal did not mark it seen.
    let r = d.device_api().post_raw(&d.rum_path("acme"), FIXTURE);
    assert_eq!(r.body["accepted"], json!([REPORT_ID]), "{}", r.text);
    // The native devices still report as before.
    let answer = rt
        .block_on(second.report(usage(TAG, 1), OffsetDateTime::now_utc()))
        .unwrap();
    assert_eq!(answer.status, "authorized");
}

/// Three refusals of one body must not tell an unknown account, a wrong key and a source
/// outside `[rum] allow` apart.
fn assert_alike(refusals: &[(&str, Resp)]) {
    let (first_what, first) = &refusals[0];
    first.assert_error(404, "not_found");
    for (what, r) in &refusals[1..] {
        assert_eq!(
            (r.status, &r.text),
            (first.status, &first.text),
            "{what} is answered unlike {first_what}"
        );
    }
}

#[test]
fn the_ingest_url_needs_the_account_key_and_refusals_look_alike() {
    let d = Daemon::start();
    d.account("acme").license(TAG, 5);
    d.account("globex");
    let api = d.device_api();
    let acme = d.rum_path("acme");
    let key = acme.rsplit_once('-').unwrap().1.to_string();
    assert_eq!(key.len(), 32, "128 bits in hex: {acme}");
    let globex_key = d.rum_path("globex").rsplit_once('-').unwrap().1.to_string();
    assert_ne!(key, globex_key);

    let before = state(&d);
    let body = with_id(5);
    let refusals: Vec<(&str, Resp)> = vec![
        ("an unknown account", format!("/cslu/v1/pi/nobody-{key}")),
        (
            "a wrong key",
            format!("/cslu/v1/pi/acme-{}", "0".repeat(32)),
        ),
        (
            "another account's key",
            format!("/cslu/v1/pi/acme-{globex_key}"),
        ),
        (
            "a key cut short",
            format!("/cslu/v1/pi/acme-{}", &key[..31]),
        ),
        (
            "the guessable /cslu/v1/pi/acme-1",
            "/cslu/v1/pi/acme-1".into(),
        ),
        ("the guessable /cslu/v1/pi/acme", "/cslu/v1/pi/acme".into()),
        ("the guessable /cslu/v1/pi", "/cslu/v1/pi".into()),
    ]
    .into_iter()
    .map(|(what, path)| (what, api.post_raw(&path, body.clone())))
    .collect();
    assert_alike(&refusals);
    assert_eq!(state(&d), before, "nothing stored, nothing audited");

    // The account's URL, by name or by domain.
    let r = api.post_raw(&acme, body.clone());
    assert_eq!(r.body["accepted"], json!([5]), "{}", r.text);
    let r = api.post_raw(&format!("/cslu/v1/pi/acme.com-{key}"), with_id(6));
    assert_eq!(r.body["accepted"], json!([6]), "{}", r.text);
    let devices = d.cli_json(&["device", "list", "--account", "acme"]);
    assert_eq!(devices.as_array().unwrap().len(), 1);
}

#[test]
fn the_guessable_urls_work_only_when_turned_on() {
    let d = Daemon::start_with("", "[rum]\nguessable_urls = true\n");
    d.account("acme");
    let api = d.device_api();
    // `/cslu/v1/pi` without an account works while there is exactly one account.
    let r = api.post_raw("/cslu/v1/pi", with_id(1));
    assert_eq!(r.body["accepted"], json!([1]), "{}", r.text);
    let r = api.post_raw("/cslu/v1/pi/acme-1", with_id(2));
    assert_eq!(r.body["accepted"], json!([2]), "{}", r.text);
    let r = api.post_raw("/cslu/v1/pi/acme", with_id(3));
    assert_eq!(r.body["accepted"], json!([3]), "{}", r.text);
    d.account("globex");
    let before = state(&d);
    let r = api.post_raw("/cslu/v1/pi", with_id(4));
    r.assert_error(400, "malformed_request");
    assert!(r.text.contains("account show"), "{}", r.text);
    // An unknown account answers like a wrong key.
    let unknown = api.post_raw("/cslu/v1/pi/nobody-1", with_id(4));
    let wrong_key = api.post_raw(&format!("/cslu/v1/pi/acme-{}", "f".repeat(32)), with_id(4));
    assert_alike(&[("an unknown account", unknown), ("a wrong key", wrong_key)]);
    assert_eq!(state(&d), before);
    // The other account's name routes there; the keyed URL works as well.
    let r = api.post_raw("/cslu/v1/pi/globex-1", with_id(4));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api.post_raw(&d.rum_path("globex"), with_id(5));
    assert_eq!(r.body["accepted"], json!([5]), "{}", r.text);
    let globex = d.cli_json(&["device", "list", "--account", "globex"]);
    assert_eq!(globex.as_array().unwrap().len(), 1);
    assert_eq!(globex[0]["va_path"], "globex/Default");
}

#[test]
fn rum_reports_come_only_from_allowed_networks() {
    // Guessable URLs on, so only the source decides.
    let elsewhere = Daemon::start_with(
        "",
        "[rum]\nguessable_urls = true\nallow = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n",
    );
    elsewhere.account("acme");
    let api = elsewhere.device_api();
    let before = state(&elsewhere);
    let from_loopback = api.post_raw(&elsewhere.rum_path("acme"), FIXTURE);
    let unknown = api.post_raw(&format!("/cslu/v1/pi/nobody-{}", "0".repeat(32)), FIXTURE);
    assert_alike(&[
        ("a source outside `[rum] allow`", from_loopback),
        ("an unknown account", unknown),
    ]);
    assert_eq!(state(&elsewhere), before, "nothing stored, nothing audited");
    assert!(
        elsewhere
            .log()
            .contains("the source is not in `[rum] allow`"),
        "the log says why: {}",
        elsewhere.log()
    );

    let here = Daemon::start_with("", "[rum]\nallow = [\"10.0.0.0/8\", \"127.0.0.1/32\"]\n");
    here.account("acme");
    let r = here.device_api().post_raw(&here.rum_path("acme"), FIXTURE);
    assert_eq!(r.body["accepted"], json!([REPORT_ID]), "{}", r.text);
}

#[test]
fn the_ingest_url_is_shown_to_those_who_may_change_the_account() {
    let d = Daemon::start();
    d.account("acme");
    let shown = d.cli_json(&["account", "show", "acme"]);
    let path = shown["rum_ingest"]["path"].as_str().unwrap();
    assert!(path.starts_with("/cslu/v1/pi/acme-"), "{shown:#}");
    assert_eq!(
        shown["rum_ingest"]["url"],
        format!("https://{}{path}", d.device_addr),
        "the whole URL on the device listener"
    );
    let text = d.cli_ok(&["account", "show", "acme"]);
    assert!(
        text.contains(&format!("https://{}{path}", d.device_addr)),
        "{text}"
    );
    // Listings do not carry it.
    assert!(
        d.cli_json(&["account", "list"])[0]
            .get("rum_ingest")
            .is_none()
    );

    // A user who may only read the account does not get the URL that writes usage into it.
    d.cli_ok(&["user", "create", "auditor"]);
    d.cli_ok(&[
        "user",
        "grant",
        "auditor",
        "--role",
        "account-user",
        "--account",
        "acme",
    ]);
    let token = d.cli_json(&["api-token", "create", "--user", "auditor"])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let r = d.admin_api(Some(&token)).get("/v1/accounts/acme");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("rum_ingest").is_none(), "{}", r.text);
}
