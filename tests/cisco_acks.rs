//! The Cisco reporting loop through the real binary (SPEC §11, docs/cisco.md): the real RUM
//! report pushed to the CSLU-style endpoint, `cisco export` checked member by member, an ACK
//! archive laid out as the reader accepts it, `cisco import-ack`, `cisco ack`, `cisco
//! reports`; refused archives changing nothing but the one audit event; VA scope.

use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use crate::util::Daemon;

const FIXTURE: &str = include_str!("data/cisco-rum/example-rum-1671840750.xml");
const UDI: &str = "C9800-CL-K9:9NTUEA8FIIH";

/// The fixture with another report id (the id appears once, inside the signed payload).
pub fn with_id(id: u64) -> String {
    FIXTURE.replace("1671840750", &id.to_string())
}

/// The envelope text inside the fixture's CDATA section: what the satellite keeps and exports.
pub fn envelope(xml: &str) -> &str {
    let start = xml.find("<![CDATA[").unwrap() + "<![CDATA[".len();
    let end = xml.rfind("]]>").unwrap();
    &xml[start..end]
}

/// An ACK file as the reader accepts it, with a policy.
pub fn ack_file(tag: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?><smartLicense><smartLicenseRumAck><data>{tag}</data>\
         </smartLicenseRumAck><smartLicensePolicy><p>{tag}</p></smartLicensePolicy></smartLicense>"
    )
    .into_bytes()
}

pub fn targz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append(&h, *data).unwrap();
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// The portal's answer as inferred: an outer archive holding `ACK_UD_VA_...tar.gz`, which holds
/// one `ACK_dev_<n>_...` per device file.
pub fn ack_archive(acks: &[(u64, &[u8])]) -> Vec<u8> {
    let names: Vec<String> = acks
        .iter()
        .map(|(n, _)| format!("ACK_dev_{n}_24Jan05_14_03_09_417.txt"))
        .collect();
    let members: Vec<(&str, &[u8])> = names
        .iter()
        .zip(acks)
        .map(|(name, (_, data))| (name.as_str(), *data))
        .collect();
    let inner = targz(&members);
    targz(&[("ACK_UD_VA_24Jan05_14_03_09_417.tar.gz", &inner)])
}

/// The members of a gzip tar, in order.
pub fn members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Reports pushed, export checked byte for byte, the same reports again before the ACK, the
/// ACK imported (and again: a no-op), the ACK file fetched byte for byte, nothing left to export.
#[test]
fn the_real_report_goes_out_in_the_usage_file_and_its_ack_comes_back() {
    let d = Daemon::start();
    d.account("acme");
    let api = d.device_api();
    let url = d.rum_path("acme");
    for body in [FIXTURE.to_owned(), with_id(1671840751)] {
        let r = api.post_raw(&url, body);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();

    let first = d.cli_json(&["cisco", "export", "--out", out]);
    assert_eq!(first["reports"], 2, "{first:#}");
    assert_eq!(first["devices"][0]["udi"], UDI);
    assert_eq!(first["devices"][0]["file_id"], 1);
    assert!(
        first.get("archive").is_none(),
        "the archive goes to the file, not stdout"
    );
    let name = first["file"].as_str().unwrap();
    assert!(
        name.starts_with("UD_SA_") && name.ends_with(".tar.gz"),
        "{name}"
    );
    let bytes = std::fs::read(dir.path().join(name)).unwrap();
    let outer = members(&bytes);
    assert_eq!(outer.len(), 2);
    assert_eq!(outer[0].0, "manifest.mf");
    let manifest = String::from_utf8(outer[0].1.clone()).unwrap();
    assert!(manifest.contains("Smart-Account: acme\n"), "{manifest}");
    assert!(outer[1].0.starts_with("UD_VA_"), "{}", outer[1].0);
    let inner = members(&outer[1].1);
    assert_eq!(inner.len(), 1);
    assert!(inner[0].0.starts_with("dev_1_"), "{}", inner[0].0);
    let second = with_id(1671840751);
    let expected = format!(
        "<smartLicense><RUMReport><![CDATA[{}]]></RUMReport><RUMReport><![CDATA[{}]]></RUMReport></smartLicense>",
        envelope(FIXTURE),
        envelope(&second)
    );
    assert_eq!(
        String::from_utf8(inner[0].1.clone()).unwrap(),
        expected,
        "raw reports byte for byte"
    );
    let exported = d.events();
    assert_eq!(exported[0]["action"], "cisco.export", "{:#}", exported[0]);

    // Before an ACK, the same reports go out again, in a device file with a new number.
    let file = dir.path().join("again.tar.gz");
    let again = d.cli_json(&["cisco", "export", "--out", file.to_str().unwrap()]);
    assert_eq!(again["reports"], 2);
    assert_eq!(
        again["devices"][0]["file_id"], 2,
        "numbers are unique across exports"
    );
    let waiting = d.cli_json(&["cisco", "reports"]);
    assert_eq!(waiting[0]["waiting_for_ack"], 2, "{waiting:#}");
    assert_eq!(waiting[0]["ack_deadline"], "unknown");

    let ack = ack_file("one");
    let archive = write(dir.path(), "ACK_UD_SA.tar.gz", &ack_archive(&[(1, &ack)]));
    let events = d.event_count();
    let imported = d.cli_json(&["cisco", "import-ack", &archive]);
    assert_eq!(imported["reports_acknowledged"], 2, "{imported:#}");
    assert_eq!(imported["imported"][0]["udi"], UDI);
    assert_eq!(imported["imported"][0]["has_policy"], true);
    assert_eq!(d.event_count(), events + 1);
    assert_eq!(d.events()[0]["action"], "cisco.ack_import");

    let target = dir.path().join("ack.xml");
    d.cli_ok(&[
        "cisco",
        "ack",
        "--device",
        UDI,
        "--out",
        target.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        ack,
        "the ACK byte for byte"
    );
    let status = d.cli_json(&["cisco", "reports"]);
    assert_eq!(status[0]["reports_held"], 2, "{status:#}");
    assert_eq!(status[0]["waiting_for_ack"], 0, "{status:#}");
    assert!(status[0]["last_ack"].is_string(), "{status:#}");

    // The same archive again: a success that changes nothing but its audit event.
    let repeat = d.cli_json(&["cisco", "import-ack", &archive]);
    assert_eq!(repeat["already_imported"], 1, "{repeat:#}");
    assert_eq!(repeat["imported"], json!([]));
    assert_eq!(d.event_count(), events + 2);

    // Acknowledged reports are not exported again: a message, no file, no record.
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    let events = d.event_count();
    let none = d.cli_ok(&["cisco", "export", "--out", out]);
    assert!(none.contains("nothing to export"), "{none}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before.len());
    assert_eq!(d.event_count(), events);
}

/// Everything `cisco` shows, to compare before and after a refused import.
fn cisco_state(d: &Daemon) -> Value {
    json!({ "reports": d.cli_json(&["cisco", "reports"]), "snapshot": d.snapshot() })
}

#[test]
fn bad_ack_archives_are_refused_with_nothing_changed_but_one_event() {
    let d = Daemon::start();
    d.account("acme");
    let r = d.device_api().post_raw(&d.rum_path("acme"), FIXTURE);
    assert_eq!(r.status, 200, "{}", r.text);
    let dir = tempfile::tempdir().unwrap();
    let usage = dir.path().join("usage.tar.gz");
    d.cli_ok(&["cisco", "export", "--out", usage.to_str().unwrap()]);
    let good = ack_archive(&[(1, &ack_file("x"))]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not gzip", b"hello".to_vec(), "not gzip"),
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "ends too early",
        ),
        (
            "unknown device file",
            ack_archive(&[(99, &ack_file("x"))]),
            "did not export",
        ),
        (
            "usage export by mistake",
            std::fs::read(&usage).unwrap(),
            "usage export",
        ),
    ];
    for (what, bytes, message) in cases {
        let path = write(dir.path(), "bad.tar.gz", &bytes);
        let before = cisco_state(&d);
        let events = d.event_count();
        let (code, stderr) = d.cli_err(&["cisco", "import-ack", &path]);
        assert_eq!(code, 1, "{what}: {stderr}");
        assert!(stderr.contains(message), "{what}: {stderr}");
        let last = d.events();
        assert_eq!(last.len(), events + 1, "{what}: one event");
        assert_eq!(last[0]["action"], "cisco.ack_import_refused", "{what}");
        let mut after = cisco_state(&d);
        after["snapshot"]["events"] = before["snapshot"]["events"].clone();
        assert_eq!(after, before, "{what}: nothing changed");
    }
    let (code, stderr) = d.cli_err(&[
        "--json",
        "cisco",
        "import-ack",
        &write(dir.path(), "b", b"x"),
    ]);
    assert_eq!(code, 1);
    let error: Value = serde_json::from_str(&stderr).unwrap();
    assert_eq!(error["error"]["code"], "ack_archive_refused", "{error:#}");
    // Nothing is acknowledged: the report still waits.
    assert_eq!(d.cli_json(&["cisco", "reports"])[0]["waiting_for_ack"], 1);
}

#[test]
fn a_va_user_cannot_export_or_fetch_the_acks_of_another_va() {
    let d = Daemon::start();
    d.account("acme").child("lab");
    let r = d.device_api().post_raw(&d.rum_path("acme"), FIXTURE);
    assert_eq!(r.status, 200, "{}", r.text);
    let dir = tempfile::tempdir().unwrap();
    let usage = dir.path().join("usage.tar.gz");
    d.cli_ok(&["cisco", "export", "--out", usage.to_str().unwrap()]);
    let archive = write(
        dir.path(),
        "ack.tar.gz",
        &ack_archive(&[(1, &ack_file("x"))]),
    );
    d.cli_ok(&["cisco", "import-ack", &archive]);

    d.cli_ok(&["user", "create", "lab"]);
    d.cli_ok(&[
        "user",
        "grant",
        "lab",
        "--role",
        "va-admin",
        "--va",
        "acme/Default/lab",
    ]);
    let token = d.cli_json(&["api-token", "create", "--user", "lab"])["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let api = d.admin_api(Some(&token));
    api.post("/v1/cisco/export", &json!({"va": "acme/Default"}))
        .assert_error(404, "not_found");
    api.get(&format!("/v1/cisco/ack?device={UDI}"))
        .assert_error(404, "not_found");
    let own = api.post("/v1/cisco/export", &json!({"va": "acme/Default/lab"}));
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(
        own.body["file"],
        Value::Null,
        "nothing of the Default VA: {:#}",
        own.body
    );
    let seen = api.get("/v1/cisco/reports");
    assert_eq!(seen.body, json!([]), "{:#}", seen.body);
    // An ACK archive naming the other VA's device file reads as not exported.
    let other = ack_archive(&[(1, &ack_file("y"))]);
    let refused = api.post_raw("/v1/cisco/acks/import", other);
    refused.assert_error(422, "refused");
    assert!(refused.text.contains("did not export"), "{}", refused.text);
}

/// Tiers: a report pushed at the leaf travels up through mid to top, is exported at top, its
/// ACK imported there travels down two syncs to the leaf, which gives it byte for byte.
#[test]
fn an_ack_imported_at_the_top_reaches_the_leaf_holding_the_device() {
    use crate::sync::{bind, device_url, satellite};
    let top = satellite("top");
    let mid = satellite("mid");
    let leaf = satellite("leaf");
    top.account("acme");
    // RUM devices land in the account's Default VA, so the whole account is dedicated.
    bind(&top, &mid, "mid", "acme/Default", &device_url(&top));
    mid.cli_json(&["sync", "now"]);
    bind(&mid, &leaf, "leaf", "acme/Default", &device_url(&mid));
    leaf.cli_json(&["sync", "now"]);
    let r = leaf.device_api().post_raw(&leaf.rum_path("acme"), FIXTURE);
    assert_eq!(r.status, 200, "{}", r.text);
    leaf.cli_json(&["sync", "now"]);
    mid.cli_json(&["sync", "now"]);

    let dir = tempfile::tempdir().unwrap();
    let usage = dir.path().join("usage.tar.gz");
    let exported = top.cli_json(&["cisco", "export", "--out", usage.to_str().unwrap()]);
    assert_eq!(
        exported["devices"][0]["held_by"], "child:mid",
        "{exported:#}"
    );
    let inner = members(&members(&std::fs::read(&usage).unwrap())[1].1);
    assert!(
        inner[0]
            .1
            .windows(envelope(FIXTURE).len())
            .any(|w| w == envelope(FIXTURE).as_bytes())
    );
    let ack = ack_file("tiers");
    let archive = write(dir.path(), "ack.tar.gz", &ack_archive(&[(1, &ack)]));
    top.cli_ok(&["cisco", "import-ack", &archive]);
    assert_eq!(top.cli_json(&["cisco", "reports"])[0]["waiting_for_ack"], 0);

    // Before the syncs down the leaf has nothing.
    let (code, stderr) = leaf.cli_err(&["cisco", "ack", "--device", UDI, "--out", "/dev/null"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
    mid.cli_json(&["sync", "now"]);
    let at_mid = mid.cli_json(&["cisco", "reports"]);
    assert_eq!(at_mid[0]["held_by"], "child:leaf", "{at_mid:#}");
    assert_eq!(at_mid[0]["waiting_for_ack"], 0, "{at_mid:#}");
    leaf.cli_json(&["sync", "now"]);
    let target = dir.path().join("leaf-ack.xml");
    leaf.cli_ok(&[
        "cisco",
        "ack",
        "--device",
        UDI,
        "--out",
        target.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        ack,
        "byte for byte at the leaf"
    );
    let at_leaf = leaf.cli_json(&["cisco", "reports"]);
    assert_eq!(at_leaf[0]["held_by"], "local", "{at_leaf:#}");
    assert_eq!(at_leaf[0]["waiting_for_ack"], 0, "{at_leaf:#}");
    // Sent once: the next sync carries no ACK again.
    let applied: Vec<_> = leaf
        .events()
        .into_iter()
        .filter(|e| e["action"] == "sync.response.apply")
        .collect();
    let with_acks = applied
        .iter()
        .filter(|e| e.to_string().contains("cisco_acks"))
        .count();
    leaf.cli_json(&["sync", "now"]);
    let again = leaf
        .events()
        .into_iter()
        .filter(|e| e["action"] == "sync.response.apply" && e.to_string().contains("cisco_acks"))
        .count();
    assert_eq!((with_acks, again), (1, 1), "{applied:#?}");
}

/// Importing ACKs changes reports of some VA: a caller who may change none (a va-user, a
/// metrics reader) is refused before the body is read, and writes no event.
#[test]
fn a_caller_who_may_change_nothing_cannot_import_acks_or_write_events() {
    let d = Daemon::start();
    d.account("acme").child("lab");
    let mut tokens = Vec::new();
    for (user, grant) in [
        (
            "viewer",
            vec!["--role", "va-user", "--va", "acme/Default/lab"],
        ),
        ("prom", vec!["--role", "metrics-reader"]),
    ] {
        d.cli_ok(&["user", "create", user]);
        let mut args = vec!["user", "grant", user];
        args.extend(grant);
        d.cli_ok(&args);
        let token = d.cli_json(&["api-token", "create", "--user", user])["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        tokens.push(token);
    }
    let before = d.event_count();
    for token in &tokens {
        let api = d.admin_api(Some(token));
        let refused = api.post_raw("/v1/cisco/acks/import", b"not an archive".to_vec());
        refused.assert_error(403, "forbidden");
        assert!(refused.text.contains("ACK"), "{}", refused.text);
    }
    assert_eq!(d.event_count(), before, "no event written");
}
