//! Upstream reconciliation (SPEC §8) with real satellites: a three-tier chain (hq ← regional ←
//! site) where licenses flow down and devices and usage flow up, over the network (mutual TLS
//! on 127.0.0.1) and by files; every refused file with its reason; a partition in the middle of
//! a sync; a restart with a request outstanding.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use serde_json::Value;

use crate::util::{BIN, Daemon};

const TAG: &str = "regid.2017-03.com.cisco.advantage_k9";

fn satellite(name: &str) -> Daemon {
    Daemon::start_with(
        "",
        &format!("[sync]\nname = \"{name}\"\ninterval = \"off\"\n"),
    )
}

/// Dedicates `va` on `up` to a child named `name` and binds `child` to it through `url`.
fn bind(up: &Daemon, child: &Daemon, name: &str, va: &str, url: &str) {
    let created = up.cli_json(&["sync", "child", "add", name, "--va", va]);
    let token = created["registration_token"].as_str().expect("token");
    let bound = child.cli_json(&[
        "sync",
        "register",
        "--upstream",
        url,
        "--registration-token",
        token,
    ]);
    assert_eq!(bound["me"], name);
}

fn device_url(d: &Daemon) -> String {
    format!("https://{}", d.device_addr)
}

fn agent(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("agent")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("SATELLITE_CONFIG")
        .env_remove("SATELLITE_TOKEN")
        .env_remove("SATELLITE_REGISTRATION_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run satellite agent");
    assert!(
        out.status.success(),
        "agent {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Registers a device with `d` in `va` and reports `units` of [`TAG`].
fn device(d: &Daemon, dir: &Path, va: &str, serial: &str, units: u32) {
    let token = d.cli_json(&["token", "create", "--va", va])["secret"]
        .as_str()
        .expect("token")
        .to_string();
    let ca = d.data_dir.join("tls").join("ca.pem");
    agent(
        dir,
        &[
            "register",
            "--url",
            &device_url(d),
            "--ca",
            ca.to_str().unwrap(),
            "--token",
            &token,
            "--pid",
            "C9300-24T",
            "--serial",
            serial,
            "--hostname",
            &format!("sw-{serial}"),
        ],
    );
    agent(dir, &["report", "--usage", &format!("{TAG}={units}")]);
}

/// Purchased / in use of [`TAG`] in `va` as `license list` shows it.
fn pool(d: &Daemon, va: &str) -> (u64, u64) {
    let list = d.cli_json(&["license", "list", "--va", va]);
    let line = list["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .find(|p| p["va_path"] == va && p["entitlement_tag"] == TAG);
    line.map_or((0, 0), |p| {
        (
            p["purchased"].as_u64().unwrap(),
            p["in_use"].as_u64().unwrap(),
        )
    })
}

fn remote(d: &Daemon) -> Value {
    d.cli_json(&["sync", "devices"])
}

fn actions(d: &Daemon, action: &str) -> usize {
    d.events().iter().filter(|e| e["action"] == action).count()
}

fn setup_hq(hq: &Daemon) {
    hq.cli_ok(&["account", "create", "acme", "--domain", "acme.com"]);
    hq.cli_ok(&["va", "create", "region", "--parent", "acme/Default"]);
    hq.cli_ok(&["va", "create", "site", "--parent", "acme/Default/region"]);
    hq.cli_ok(&[
        "license",
        "add",
        "--va",
        "acme/Default/region",
        "--tag",
        TAG,
        "--quantity",
        "10",
    ]);
    hq.cli_ok(&[
        "license",
        "add",
        "--va",
        "acme/Default/region/site",
        "--tag",
        TAG,
        "--quantity",
        "5",
    ]);
}

#[test]
fn three_tiers_licenses_down_usage_up_by_network_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let hq = satellite("hq");
    let regional = satellite("regional");
    let site = satellite("site");
    setup_hq(&hq);

    // Binding and the first network sync: the pools of the dedicated subtree arrive.
    bind(
        &hq,
        &regional,
        "regional",
        "acme/Default/region",
        &device_url(&hq),
    );
    let v = regional.cli_json(&["sync", "now"]);
    assert_eq!(v["result"], "applied");
    assert_eq!(pool(&regional, "acme/Default/region"), (10, 0));
    assert_eq!(pool(&regional, "acme/Default/region/site"), (5, 0));
    let lic = regional.cli_json(&["license", "list", "--va", "acme/Default/region"]);
    assert_eq!(lic["entries"][0]["source"], "upstream");

    // Upstream-owned pools are read-only on the child, with a message saying where to go.
    let (_, err) = regional.cli_err(&[
        "license",
        "add",
        "--va",
        "acme/Default/region",
        "--tag",
        TAG,
        "--quantity",
        "1",
    ]);
    assert!(err.contains("managed by upstream satellite `hq`"), "{err}");
    // Devices of a dedicated VA register with the child, not the upstream.
    let (_, err) = hq.cli_err(&["token", "create", "--va", "acme/Default/region/site"]);
    assert!(
        err.contains("dedicated to child satellite `regional`"),
        "{err}"
    );

    // Second tier: the regional satellite dedicates `site` onward.
    bind(
        &regional,
        &site,
        "site",
        "acme/Default/region/site",
        &device_url(&regional),
    );
    site.cli_json(&["sync", "now"]);
    assert_eq!(pool(&site, "acme/Default/region/site"), (5, 0));

    // A device on the site uses 3 units; usage flows up two tiers.
    device(
        &site,
        &tmp.path().join("dev1"),
        "acme/Default/region/site",
        "FOC1",
        3,
    );
    assert_eq!(pool(&site, "acme/Default/region/site"), (5, 3));
    site.cli_json(&["sync", "now"]);
    let r = remote(&regional);
    assert_eq!(r["devices"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["devices"][0]["child"], "site");
    assert_eq!(r["devices"][0]["serial"], "FOC1");
    assert_eq!(r["usage"][0]["units_granted"], 3);
    assert_eq!(pool(&regional, "acme/Default/region/site"), (5, 3));
    regional.cli_json(&["sync", "now"]);
    let r = remote(&hq);
    assert_eq!(r["devices"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["devices"][0]["child"], "regional");
    assert_eq!(r["devices"][0]["serial"], "FOC1");
    assert_eq!(pool(&hq, "acme/Default/region/site"), (5, 3));

    // By files: hq adds 2 units; regional exports, hq answers, regional imports; the same
    // between site and regional.
    hq.cli_ok(&[
        "license",
        "add",
        "--va",
        "acme/Default/region/site",
        "--tag",
        TAG,
        "--quantity",
        "2",
    ]);
    let f = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    regional.cli_json(&["sync", "export", "--out", &f("r1.json")]);
    hq.cli_json(&[
        "sync",
        "answer",
        "--in",
        &f("r1.json"),
        "--out",
        &f("a1.json"),
    ]);
    let v = regional.cli_json(&["sync", "import", &f("a1.json")]);
    assert_eq!(v["result"], "applied");
    assert_eq!(pool(&regional, "acme/Default/region/site"), (7, 3));
    // The file is human-readable JSON with the signature.
    let text = std::fs::read_to_string(f("a1.json")).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(file["kind"], "sync_response");
    assert_eq!(file["body"]["from"], "hq");
    assert_eq!(file["body"]["to"], "regional");
    assert_eq!(file["signature"].as_str().unwrap().len(), 128);
    // The same response again changes nothing.
    let before = regional.cli_json(&["license", "list"]);
    let v = regional.cli_json(&["sync", "import", &f("a1.json")]);
    assert_eq!(v["result"], "already_applied");
    assert_eq!(regional.cli_json(&["license", "list"]), before);

    site.cli_json(&["sync", "export", "--out", &f("s1.json")]);
    regional.cli_json(&[
        "sync",
        "answer",
        "--in",
        &f("s1.json"),
        "--out",
        &f("b1.json"),
    ]);
    site.cli_json(&["sync", "import", &f("b1.json")]);
    assert_eq!(pool(&site, "acme/Default/region/site"), (7, 3));

    // The device leaves the site: its removal flows up too.
    agent(&tmp.path().join("dev1"), &["deregister"]);
    site.cli_json(&["sync", "now"]);
    assert_eq!(remote(&regional)["devices"].as_array().unwrap().len(), 0);
    regional.cli_json(&["sync", "now"]);
    assert_eq!(remote(&hq)["devices"].as_array().unwrap().len(), 0);
    assert_eq!(pool(&hq, "acme/Default/region/site"), (7, 0));

    // Both sides audited what they applied.
    assert!(actions(&hq, "sync.request.apply") >= 3);
    assert!(actions(&regional, "sync.response.apply") >= 3);
    assert!(actions(&regional, "sync.request.apply") >= 3);
}
