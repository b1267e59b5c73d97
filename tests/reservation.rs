//! License reservation (SPEC §8b) end to end through the real binary: a device that can reach
//! nothing makes a request code, the operator reserves, the device installs the signed
//! authorization offline, returns it, and the operator releases the units. Every refusal
//! changes nothing.

use std::path::Path;

use serde_json::Value;

use crate::util::{Daemon, agent, agent_ok};

const ADV: &str = "regid.2019-03.com.example.ADV";

fn agent_err(dir: &Path, args: &[&str]) -> String {
    let out = agent(dir, args);
    assert!(
        !out.status.success(),
        "`agent {}` should have failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// (purchased, in use, balance) of ADV in `va` as `license list` shows it.
fn pool(d: &Daemon, va: &str) -> (u64, u64, i64) {
    let list = d.cli_json(&["license", "list", "--va", va]);
    let line = list["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .find(|p| p["entitlement_tag"] == ADV)
        .expect("a pool line for ADV")
        .clone();
    (
        line["purchased"].as_u64().expect("purchased"),
        line["in_use"].as_u64().expect("in use"),
        line["balance"].as_i64().expect("balance"),
    )
}

fn setup() -> (Daemon, tempfile::TempDir) {
    let d = Daemon::start();
    d.account("acme").child("lab").license(ADV, 5);
    (d, tempfile::tempdir().expect("tempdir"))
}

#[test]
fn a_disconnected_device_reserves_installs_and_returns_licenses() {
    let (d, tmp) = setup();
    let dev = tmp.path().join("dev");
    // The request code is alone on stdout: one line, no spaces.
    let request = agent_ok(
        &dev,
        &[
            "reserve-request",
            "--pid",
            "C9300-24T",
            "--serial",
            "FOC1",
            "--entitlement",
            &format!("{ADV}:3"),
        ],
    );
    let request = request.trim_end();
    assert!(request.starts_with("SRQ1-"), "{request}");
    assert!(!request.contains(char::is_whitespace), "{request}");

    // The exact documented form, with the aligned table and the code.
    let text = d.cli_ok(&["reserve", "--va", "acme/Default/lab", "--request", request]);
    assert!(text.contains("acme/Default/lab"), "{text}");
    assert!(text.contains("C9300-24T:FOC1"), "{text}");
    assert!(text.contains(&format!("{ADV}:3")), "{text}");
    let code = text
        .lines()
        .find(|l| l.starts_with("SAC1-"))
        .expect("an authorization code line")
        .to_string();
    let listed = d.cli_json(&["reserve", "list"]);
    let r = &listed.as_array().expect("a list")[0];
    assert_eq!(r["udi"]["serial"], "FOC1");
    let id = r["id"].as_str().expect("id").to_string();
    assert!(
        d.events()
            .iter()
            .any(|e| e["action"] == "reservation.create")
    );

    // Reserved units count as in use.
    assert_eq!(pool(&d, "acme/Default/lab"), (5, 3, 2));

    // A code with one character of its body changed is refused by the device.
    let at = 12;
    let flipped = if &code[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{}{}", &code[..at], flipped, &code[at + 1..]);
    let e = agent_err(&dev, &["reserve-install", "--code", &tampered]);
    assert!(e.contains("bad signature"), "{e}");

    // The untampered code installs; the device shows what it is authorized for.
    let installed = agent_ok(&dev, &["reserve-install", "--code", &code]);
    assert!(installed.contains("signature verifies"), "{installed}");
    assert!(
        installed.contains(ADV) && installed.contains(&id),
        "{installed}"
    );
    let shown = agent_ok(&dev, &["reservation"]);
    assert!(shown.contains(&id), "{shown}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dev.join("reservation.json"))
            .expect("stored")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // The device gives it back; the operator releases the units.
    let ret = agent_ok(&dev, &["reserve-return"]);
    let ret = ret.trim_end();
    assert!(ret.starts_with("SRT1-"), "{ret}");
    assert!(agent_ok(&dev, &["reservation"]).contains("no reservation is installed"));
    let text = d.cli_ok(&["reserve", "--return", ret]);
    assert!(
        text.contains(&format!("returned reservation {id}")),
        "{text}"
    );
    assert_eq!(pool(&d, "acme/Default/lab"), (5, 0, 5));
    assert_eq!(d.cli_json(&["reserve", "list"]), Value::Array(vec![]));

    // The same return code again changes nothing.
    let before = d.snapshot();
    let (code_, e) = d.cli_err(&["reserve", "--return", ret]);
    assert_eq!(code_, 1, "{e}");
    assert!(e.contains("already returned or cancelled"), "{e}");
    assert_eq!(d.snapshot(), before);
}

#[test]
fn bad_codes_are_refused_and_change_nothing() {
    let (d, tmp) = setup();
    let before = d.snapshot();
    for garbage in ["hello", "SRQ1-!!!!", "SRQ1-eyJ1ZGkiOnsicGlkIjoiQyJ9"] {
        let (code, e) = d.cli_err(&["reserve", "--va", "acme/Default/lab", "--request", garbage]);
        assert_eq!(code, 1, "{e}");
        assert!(e.contains("nothing was changed"), "{garbage}: {e}");
    }
    assert_eq!(d.snapshot(), before);

    // Asking for more than is spare names how many are spare.
    let dev = tmp.path().join("dev");
    let request = agent_ok(
        &dev,
        &[
            "reserve-request",
            "--pid",
            "P",
            "--serial",
            "S1",
            "--entitlement",
            &format!("{ADV}:9"),
        ],
    );
    let (_, e) = d.cli_err(&[
        "reserve",
        "--va",
        "acme/Default/lab",
        "--request",
        request.trim(),
    ]);
    assert!(e.contains("only 5 are spare"), "{e}");
    assert_eq!(d.snapshot(), before);

    // An authorization for another device is refused on this one, naming both UDIs.
    let other = tmp.path().join("other");
    let request = agent_ok(
        &other,
        &[
            "reserve-request",
            "--pid",
            "P",
            "--serial",
            "S2",
            "--entitlement",
            ADV,
        ],
    );
    let out = d.cli_json(&[
        "reserve",
        "--va",
        "acme/Default/lab",
        "--request",
        request.trim(),
    ]);
    let code = out["authorization_code"].as_str().expect("code");
    let key_id = out["key_id"].as_str().expect("key id");
    let e = agent_err(&dev, &["reserve-install", "--code", code]);
    assert!(e.contains("P:S2") && e.contains("P:S1"), "{e}");
    // A pinned key other than the satellite's is refused; the right one is accepted.
    let e = agent_err(
        &other,
        &[
            "reserve-install",
            "--code",
            code,
            "--trust-key",
            &"0".repeat(64),
        ],
    );
    assert!(e.contains("not by the trusted key"), "{e}");
    agent_ok(
        &other,
        &["reserve-install", "--code", code, "--trust-key", key_id],
    );

    // A lost device: the operator cancels, and is told the device still holds a code.
    let id = out["reservation"]["id"].as_str().expect("id");
    let text = d.cli_ok(&["reserve", "cancel", id]);
    assert!(text.contains("still holds an authorization code"), "{text}");
    assert_eq!(pool(&d, "acme/Default/lab"), (5, 0, 5));
}
