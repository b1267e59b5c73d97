//! Disconnected mode (SPEC §8): license files signed by a key the configuration trusts,
//! end to end through the real binary: `sync keygen` → config → `license sign` →
//! `license import`; and every refusal leaves licenses and the audit log as they were.

use std::path::{Path, PathBuf};
use std::process::Command;

use satellite::protocol::sync::envelope::signing_input;
use satellite::protocol::sync::{
    Envelope, FORMAT, Kind, LicenseFile, LicenseGrant, LicenseKind, LicenseLine, SatelliteId,
    SatelliteKey,
};
use serde_json::Value;

use crate::util::{BIN, Daemon};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Runs an offline command (no daemon involved), asserting success.
fn offline(args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(args)
        .arg("--json")
        .env_remove("SATELLITE_CONFIG")
        .env_remove("SATELLITE_TOKEN")
        .output()
        .expect("run the CLI");
    assert!(
        out.status.success(),
        "`satellite {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let v = offline(&["sync", "keygen", "--out", s(&key)]);
    let public = v["public_key"].as_str().expect("public key").to_string();
    assert_eq!(public.len(), 64);
    assert_eq!(v["key_id"].as_str().expect("key id").len(), 64);
    (key, public)
}

fn sign(key: &Path, account: &str, grants: &[&str], file_id: &str, out: &Path) {
    let mut args = vec![
        "license",
        "sign",
        "--key",
        s(key),
        "--account",
        account,
        "--file-id",
        file_id,
        "--out",
        s(out),
    ];
    for g in grants {
        args.extend(["--grant", g]);
    }
    offline(&args);
}

struct Setup {
    d: Daemon,
    dir: tempfile::TempDir,
    key: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(dir.path(), "portal.key");
    let d = Daemon::start_with(
        "",
        &format!(
            "[sync]\ntrusted_license_keys = [ {{ name = \"portal\", key = \"{public}\" }} ]\n"
        ),
    );
    d.account("acme").child("lab");
    d.account("globex");
    Setup { d, dir, key }
}

/// The observable state a refusal must not change.
fn state(d: &Daemon) -> (Value, usize) {
    (d.cli_json(&["license", "list"]), d.event_count())
}

/// `license import FILE` must fail with exit 1, name the cause, and change nothing.
fn refused(d: &Daemon, file: &Path, needles: &[&str]) {
    let before = state(d);
    let (code, stderr) = d.cli_err(&["license", "import", s(file)]);
    assert_eq!(code, 1, "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "expected `{n}` in: {stderr}");
    }
    assert_eq!(state(d), before, "a refused import changed something");
}

#[test]
fn a_signed_file_is_imported_once_with_source_import() {
    let t = setup();
    let file = t.dir.path().join("lic.json");
    sign(
        &t.key,
        "acme.com",
        &[
            "Default/lab:regid.dna-advantage:10",
            "Default:regid.network-essentials:3:2020-01-01:2099-01-01",
        ],
        "order-42",
        &file,
    );
    let events_before = t.d.event_count();
    let out = t.d.cli_ok(&["license", "import", s(&file)]);
    assert!(
        out.contains("imported 2 license(s) from file order-42"),
        "{out}"
    );
    assert!(out.contains("acme/Default/lab"), "{out}");

    let list = t.d.cli_json(&["license", "list"]);
    let entries = list["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{list}");
    assert!(entries.iter().all(|e| e["source"] == "import"), "{list}");
    let lab = entries
        .iter()
        .find(|e| e["entitlement_tag"] == "regid.dna-advantage")
        .expect("the lab license");
    assert_eq!(lab["quantity"], 10);
    assert_eq!(lab["va_path"], "acme/Default/lab");
    let term = entries
        .iter()
        .find(|e| e["entitlement_tag"] == "regid.network-essentials")
        .expect("the term license");
    assert_eq!(term["kind"], "term");

    let events = t.d.events();
    assert_eq!(events.len(), events_before + 1, "exactly one event");
    assert_eq!(events[0]["action"], "license.import", "{}", events[0]);

    // The same file again: refused, nothing changes.
    refused(
        &t.d,
        &file,
        &["`order-42` of issuer `portal` was already imported into account `acme` on"],
    );
    // Even with --json the import answers what it added.
    let file2 = t.dir.path().join("lic2.json");
    sign(
        &t.key,
        "acme.com",
        &["Default:regid.x:1"],
        "order-43",
        &file2,
    );
    let v = t.d.cli_json(&["license", "import", s(&file2)]);
    assert_eq!(v["file_id"], "order-43");
    assert_eq!(v["licenses"].as_array().expect("licenses").len(), 1);
}

/// File ids are the issuer's numbering per account: another tenant's file with the same id
/// imports (and so reveals nothing about the first); the same file twice is still refused.
#[test]
fn file_ids_are_unique_per_account_not_across_accounts() {
    let t = setup();
    let acme = t.dir.path().join("acme.json");
    sign(&t.key, "acme.com", &["Default:regid.a:5"], "order-1", &acme);
    let globex = t.dir.path().join("globex.json");
    sign(
        &t.key,
        "globex.com",
        &["Default:regid.b:3"],
        "order-1",
        &globex,
    );
    t.d.cli_ok(&["license", "import", s(&acme)]);
    let v = t.d.cli_json(&["license", "import", s(&globex)]);
    assert_eq!(v["account"], "globex.com");
    assert_eq!(v["licenses"][0]["quantity"], 3);
    for (file, account) in [(&acme, "acme"), (&globex, "globex")] {
        refused(
            &t.d,
            file,
            &[&format!("already imported into account `{account}`")],
        );
    }
    let list = t.d.cli_json(&["license", "list"]);
    assert_eq!(
        list["entries"].as_array().expect("entries").len(),
        2,
        "{list}"
    );
}

#[test]
fn forged_foreign_damaged_and_misaddressed_files_are_refused() {
    let t = setup();
    let dir = t.dir.path();

    // Signed by a key the configuration does not list.
    let (stranger, _) = keygen(dir, "stranger.key");
    let file = dir.join("untrusted.json");
    sign(&stranger, "acme.com", &["Default:regid.a:5"], "u-1", &file);
    refused(&t.d, &file, &["license file refused", "not pinned"]);

    // Modified after signing.
    let good = dir.join("good.json");
    sign(&t.key, "acme.com", &["Default:regid.a:5"], "g-1", &good);
    let text = std::fs::read_to_string(&good).expect("read");
    let tampered = dir.join("tampered.json");
    std::fs::write(
        &tampered,
        text.replace("\"quantity\": 5", "\"quantity\": 500"),
    )
    .expect("write");
    refused(&t.d, &tampered, &["signature does not verify"]);

    // Cut off while being copied.
    let truncated = dir.join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).expect("write");
    refused(&t.d, &truncated, &["ends early"]);

    // For an account this satellite does not hold.
    let foreign = dir.join("foreign.json");
    sign(
        &t.key,
        "initech.com",
        &["Default:regid.a:5"],
        "f-1",
        &foreign,
    );
    refused(&t.d, &foreign, &["initech.com", "does not hold"]);

    // For a VA the account does not have.
    let nowhere = dir.join("nowhere.json");
    sign(
        &t.key,
        "acme.com",
        &["Default/nowhere:regid.a:5"],
        "n-1",
        &nowhere,
    );
    refused(&t.d, &nowhere, &["Default/nowhere"]);

    // The untouched file still imports.
    t.d.cli_ok(&["license", "import", s(&good)]);
}

#[test]
fn a_va_user_cannot_import() {
    let t = setup();
    t.d.cli_ok(&["user", "create", "olivia"]);
    t.d.cli_ok(&[
        "user",
        "grant",
        "olivia",
        "--role",
        "va-user",
        "--va",
        "acme/Default/lab",
    ]);
    let api = t.d.cli_json(&["api-token", "create", "--user", "olivia"]);
    let secret = api["secret"].as_str().expect("secret");
    let file = t.dir.path().join("lic.json");
    sign(&t.key, "acme.com", &["Default/lab:regid.a:5"], "v-1", &file);
    let before = state(&t.d);
    let resp =
        t.d.admin_api(Some(secret))
            .post_raw("/v1/licenses/import", std::fs::read(&file).expect("read"));
    assert!(
        resp.status == 403 || resp.status == 404,
        "{} {}",
        resp.status,
        resp.text
    );
    assert_eq!(state(&t.d), before);
    // A file for an account the user cannot see reads as foreign.
    let other = t.dir.path().join("globex.json");
    sign(&t.key, "globex.com", &["Default:regid.a:5"], "v-2", &other);
    let resp =
        t.d.admin_api(Some(secret))
            .post_raw("/v1/licenses/import", std::fs::read(&other).expect("read"));
    resp.assert_error(422, "license_file_refused");
    assert_eq!(state(&t.d), before);
}

/// Signs `body` with the issuer key at `key` without the signer's own checks (as a faulty
/// portal could), so a refusal can only come from the importing satellite.
fn sign_anyway(key: &Path, body: LicenseFile, out: &Path) {
    use ed25519_dalek::Signer;
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let pem = std::fs::read_to_string(key).expect("read the key");
    let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).expect("a PKCS#8 key");
    let input = signing_input(Kind::LicenseFile, FORMAT, &body).expect("encode");
    let signature: String = signing
        .sign(&input)
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let envelope = Envelope {
        format: FORMAT,
        kind: Kind::LicenseFile,
        signer: SatelliteKey::load(key).expect("the key").id().clone(),
        body,
        signature,
    };
    std::fs::write(out, envelope.to_json().expect("encode")).expect("write");
}

/// A file for `acme.com` granting `quantity` units of `regid.a` to `Default/lab`.
fn one_line_file(quantity: u64) -> LicenseFile {
    LicenseFile {
        issuer: SatelliteId::new("portal"),
        account_domain: "acme.com".into(),
        file_id: format!("huge-{quantity}"),
        created_at: time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("whole seconds"),
        grants: vec![LicenseGrant {
            va: "Default/lab".into(),
            licenses: vec![LicenseLine {
                id: "l-1".into(),
                entitlement_tag: "regid.a".into(),
                display_name: "A".into(),
                quantity,
                kind: LicenseKind::Perpetual,
                start: None,
                end: None,
                export_controlled: false,
                order_ref: None,
                labels: Default::default(),
            }],
        }],
    }
}

#[test]
fn quantities_past_the_maximum_are_refused_and_nothing_is_imported() {
    let t = setup();
    let dir = t.dir.path();

    // The signing command refuses to write such a file.
    let out = Command::new(BIN)
        .args([
            "license",
            "sign",
            "--key",
            s(&t.key),
            "--account",
            "acme.com",
        ])
        .args(["--grant", "Default/lab:regid.a:1000000000001"])
        .args(["--out", s(&dir.join("never.json"))])
        .output()
        .expect("run the CLI");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("maximum of 1000000000000"), "{stderr}");
    assert!(!dir.join("never.json").exists());

    // A line past the maximum in a file signed anyway: refused when the file is read.
    for quantity in [1_000_000_000_001, i64::MAX as u64, u64::MAX] {
        let file = dir.join(format!("huge-{quantity}.json"));
        sign_anyway(&t.key, one_line_file(quantity), &file);
        refused(
            &t.d,
            &file,
            &[&quantity.to_string(), "maximum of 1000000000000"],
        );
    }

    // Lines within the maximum that pass it together in one VA and tag: refused whole.
    let file = dir.join("sum.json");
    sign(
        &t.key,
        "acme.com",
        &[
            "Default:regid.b:5",
            "Default/lab:regid.a:1000000000000",
            "Default/lab:regid.a:1",
        ],
        "sum-1",
        &file,
    );
    refused(
        &t.d,
        &file,
        &["regid.a", "acme/Default/lab", "maximum of 1000000000000"],
    );

    // A VA already holding the maximum takes no more from a file.
    let full = dir.join("full.json");
    sign(
        &t.key,
        "acme.com",
        &["Default/lab:regid.a:1000000000000"],
        "full-1",
        &full,
    );
    t.d.cli_ok(&["license", "import", s(&full)]);
    let more = dir.join("more.json");
    sign(
        &t.key,
        "acme.com",
        &["Default/lab:regid.a:1"],
        "more-1",
        &more,
    );
    refused(&t.d, &more, &["maximum of 1000000000000"]);
}
