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

use crate::util::{BIN, Daemon, agent_ok};

const TAG: &str = "regid.2017-03.com.cisco.advantage_k9";

pub(crate) fn satellite(name: &str) -> Daemon {
    Daemon::start_with(
        "",
        &format!("[sync]\nname = \"{name}\"\ninterval = \"off\"\n"),
    )
}

/// Dedicates `va` on `up` to a child named `name` and binds `child` to it through `url`. The
/// token goes in the environment, as the README tells operators (the command line is visible
/// to other local users); `a_registration_token_is_checked_before_anything_is_trusted` binds
/// with the option.
pub(crate) fn bind(up: &Daemon, child: &Daemon, name: &str, va: &str, url: &str) {
    let created = up.cli_json(&["sync", "child", "add", name, "--va", va]);
    let token = created["registration_token"].as_str().expect("token");
    let out = Command::new(BIN)
        .args(["--config", child.config_path.to_str().expect("UTF-8 path")])
        .args(["sync", "register", "--upstream", url, "--json"])
        .env("SATELLITE_SYNC_REGISTRATION_TOKEN", token)
        .env_remove("SATELLITE_CONFIG")
        .env_remove("SATELLITE_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run satellite sync register");
    assert!(
        out.status.success(),
        "sync register failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bound: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(bound["me"], name);
}

pub(crate) fn device_url(d: &Daemon) -> String {
    format!("https://{}", d.device_addr)
}

/// Registers a device with `d` in `va` and reports `units` of [`TAG`].
fn device(d: &Daemon, dir: &Path, va: &str, serial: &str, units: u32) {
    let token = d.va(va).token().secret;
    let ca = d.data_dir.join("tls").join("ca.pem");
    agent_ok(
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
    agent_ok(dir, &["report", "--usage", &format!("{TAG}={units}")]);
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
    let region = hq.account("acme").child("region");
    let site = region.child("site");
    region.license(TAG, 10);
    site.license(TAG, 5);
}

/// hq with its licenses (`setup_hq`) and regional bound to `acme/Default/region`, by network.
pub(crate) fn hq_and_regional() -> (Daemon, Daemon) {
    let hq = satellite("hq");
    let regional = satellite("regional");
    setup_hq(&hq);
    bind(
        &hq,
        &regional,
        "regional",
        "acme/Default/region",
        &device_url(&hq),
    );
    (hq, regional)
}

#[test]
fn three_tiers_licenses_down_usage_up_by_network_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (hq, regional) = hq_and_regional();
    let site = satellite("site");

    // The first network sync after binding: the pools of the dedicated subtree arrive.
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
    hq.va("acme/Default/region/site").license(TAG, 2);
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
    // The same response again changes nothing, and says so with exit 1 (like a replayed
    // request on `sync answer`).
    let before = regional.cli_json(&["license", "list"]);
    let out = regional.cli(&["sync", "import", &f("a1.json"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stderr).expect("a JSON error");
    assert_eq!(err["error"]["code"], "already_applied");
    let (code, err) = regional.cli_err(&["sync", "import", &f("a1.json")]);
    assert_eq!(code, 1);
    assert!(err.contains("was applied before; nothing changed"), "{err}");
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
    agent_ok(&tmp.path().join("dev1"), &["deregister"]);
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

/// A response signed with hq's real key, for the refusals a satellite never writes itself.
fn forged_response(hq: &Daemon, seq: u64, age_days: i64) -> Vec<u8> {
    forged_response_with(hq, seq, age_days, vec![])
}

fn forged_response_with(
    hq: &Daemon,
    seq: u64,
    age_days: i64,
    pools: Vec<satellite::protocol::sync::PoolSnapshot>,
) -> Vec<u8> {
    use satellite::protocol::sync::{
        self, OffsetDateTime, SatelliteId, SatelliteKey, SyncResponse,
    };
    let key = SatelliteKey::load(&hq.data_dir.join("sync").join("key.pem")).expect("hq key");
    let created_at = (OffsetDateTime::now_utc() - sync::Duration::days(age_days))
        .replace_nanosecond(0)
        .unwrap();
    let body = SyncResponse {
        from: SatelliteId::new("hq"),
        to: SatelliteId::new("regional"),
        seq,
        acks: vec![],
        created_at,
        pools,
        removals: vec![],
        revocations: vec![],
        cisco_acks: vec![],
    };
    sync::sign(&key, body).unwrap().to_json().unwrap()
}

#[test]
fn every_refused_sync_file_gets_its_reason_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let f = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let (hq, regional) = hq_and_regional();
    let other = satellite("other");
    let stranger = satellite("hq2");
    hq.va("acme/Default").child("elsewhere");
    bind(
        &hq,
        &other,
        "other",
        "acme/Default/elsewhere",
        &device_url(&hq),
    );
    regional.cli_json(&["sync", "now"]);

    // A valid, applicable response (number 2), and defective copies of it.
    hq.va("acme/Default/region").license(TAG, 1);
    regional.cli_json(&["sync", "export", "--out", &f("r2.json")]);
    hq.cli_json(&[
        "sync",
        "answer",
        "--in",
        &f("r2.json"),
        "--out",
        &f("a2.json"),
    ]);
    let good = std::fs::read_to_string(f("a2.json")).unwrap();
    other.cli_json(&["sync", "export", "--out", &f("o1.json")]);
    hq.cli_json(&[
        "sync",
        "answer",
        "--in",
        &f("o1.json"),
        "--out",
        &f("for-other.json"),
    ]);

    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(f(name), bytes).unwrap();
        f(name)
    };
    let tampered = good.replacen("\"quantity\": 10", "\"quantity\": 11", 1);
    assert_ne!(tampered, good);
    let cases: Vec<(String, &str)> = vec![
        (
            write("tampered.json", tampered.as_bytes()),
            "the signature does not verify",
        ),
        (
            write("truncated.json", &good.as_bytes()[..good.len() / 2]),
            "the file ends early",
        ),
        (
            write("garbage.json", b"not json at all"),
            "not a valid sync file",
        ),
        (
            write(
                "future.json",
                good.replacen("\"format\": 1", "\"format\": 3", 1)
                    .as_bytes(),
            ),
            "newer than this satellite understands",
        ),
        (
            f("r2.json"),
            "this is a sync_request file, but a sync_response was expected",
        ),
        (
            f("for-other.json"),
            "addressed to satellite `other`, but this is `regional`",
        ),
        (
            write("gap.json", &forged_response(&hq, 5, 0)),
            "message 5 is out of order: message 2 comes first",
        ),
        (
            write("stale.json", &forged_response(&hq, 2, 40)),
            "too old to apply",
        ),
        (
            write(
                "incremental.json",
                &forged_response_with(
                    &hq,
                    2,
                    0,
                    vec![satellite::protocol::sync::PoolSnapshot {
                        va: "acme.com/Default/region".into(),
                        full: false,
                        licenses: vec![],
                        removed: vec![],
                    }],
                ),
            ),
            "applies full pools only",
        ),
    ];
    let before = regional.cli_json(&["license", "list"]);
    let refused_before = actions(&regional, "sync.refused");
    for (file, reason) in &cases {
        let (code, err) = regional.cli_err(&["sync", "import", file]);
        assert_eq!(code, 1);
        assert!(
            err.contains(reason),
            "{file}: expected `{reason}` in: {err}"
        );
        assert_eq!(
            regional.cli_json(&["license", "list"]),
            before,
            "{file} changed licenses"
        );
    }
    assert_eq!(
        actions(&regional, "sync.refused"),
        refused_before + cases.len()
    );

    // A request from a satellite the upstream never bound: unknown sender.
    let (_, err) = stranger.cli_err(&[
        "sync",
        "answer",
        "--in",
        &f("r2.json"),
        "--out",
        &f("x.json"),
    ]);
    assert!(err.contains("which is not pinned here"), "{err}");

    // The good file still applies: each refusal was about its own defect only.
    let v = regional.cli_json(&["sync", "import", &f("a2.json")]);
    assert_eq!(v["result"], "applied");
    assert_eq!(pool(&regional, "acme/Default/region"), (11, 0));

    // An older request after a newer one was applied is a replay the upstream refuses.
    regional.cli_json(&["sync", "export", "--out", &f("r3.json")]);
    hq.cli_json(&[
        "sync",
        "answer",
        "--in",
        &f("r3.json"),
        "--out",
        &f("a3.json"),
    ]);
    let (_, err) = hq.cli_err(&[
        "sync",
        "answer",
        "--in",
        &f("r2.json"),
        "--out",
        &f("y.json"),
    ]);
    assert!(err.contains("message 2 was already applied"), "{err}");
    // While the newest one, sent again, gets the same response byte for byte.
    hq.cli_json(&[
        "sync",
        "answer",
        "--in",
        &f("r3.json"),
        "--out",
        &f("a3-again.json"),
    ]);
    assert_eq!(
        std::fs::read(f("a3.json")).unwrap(),
        std::fs::read(f("a3-again.json")).unwrap()
    );
}

/// A TCP forwarder in front of an upstream, whose behaviour the test switches:
/// `PASS` forwards both ways; `CUT` forwards the child's request, lets the upstream process
/// it, and cuts the connection when the answer comes back (a partition mid-sync: the upstream
/// applied the request, the child never hears of it); `REFUSE` closes every connection at
/// once (the upstream is unreachable).
struct Forwarder {
    addr: std::net::SocketAddr,
    mode: Arc<AtomicU8>,
    cut: Arc<AtomicUsize>,
}

const PASS: u8 = 0;
const CUT: u8 = 1;
const REFUSE: u8 = 2;

/// Bytes from the child after which, in `CUT` mode, the upstream's answer is dropped: more
/// than a TLS handshake with a client certificate, less than the request the test makes.
const CUT_AFTER: usize = 12 * 1024;

/// A sync response is larger than this (signature, key id, pools); flow-control frames and
/// session tickets are smaller.
const RESPONSE_AT_LEAST: usize = 1024;

impl Forwarder {
    fn start(upstream: std::net::SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let cut = Arc::new(AtomicUsize::new(0));
        let (m, c) = (mode.clone(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if m.load(Ordering::SeqCst) == REFUSE {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let cutting = m.load(Ordering::SeqCst) == CUT;
                let sent = Arc::new(AtomicUsize::new(0));
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counter = sent.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        counter.fetch_add(n, Ordering::SeqCst);
                    }
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let (mut s_in, mut c_out) = (server, client);
                let cuts = c.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    let mut held = 0;
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        // Once the request is on its way, what the upstream sends is held back:
                        // small frames (flow control, session tickets) are dropped, and the
                        // connection is cut when the answer (over 1 KiB) arrives.
                        if cutting && sent.load(Ordering::SeqCst) >= CUT_AFTER {
                            held += n;
                            if held >= RESPONSE_AT_LEAST {
                                cuts.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            continue;
                        }
                        if c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_out.shutdown(Shutdown::Both);
                    let _ = s_in.shutdown(Shutdown::Both);
                });
            }
        });
        Forwarder { addr, mode, cut }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

#[test]
fn a_partition_mid_sync_is_retried_and_applied_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let hq = satellite("hq");
    let regional = satellite("regional");
    setup_hq(&hq);
    let fwd = Forwarder::start(hq.device_addr);
    bind(
        &hq,
        &regional,
        "regional",
        "acme/Default/region",
        &fwd.url(),
    );
    regional.cli_json(&["sync", "now"]);

    // Enough devices that the request is well past a TLS handshake in size.
    const DEVICES: usize = 40;
    for i in 0..DEVICES {
        device(
            &regional,
            &tmp.path().join(format!("d{i}")),
            "acme/Default/region",
            &format!("FOC{i:03}"),
            1,
        );
    }
    let status = regional.cli_json(&["sync", "status"]);
    let pending = status["pending_changes"].as_u64().unwrap();
    assert_eq!(
        pending,
        DEVICES as u64 + 1,
        "40 registrations and one usage snapshot"
    );

    // The partition: hq applies request 2, the answer is lost.
    fwd.set(CUT);
    let (_, err) = regional.cli_err(&["sync", "now"]);
    assert!(err.contains("/v1/sync"), "{err}");
    assert_eq!(fwd.cut.load(Ordering::SeqCst), 1, "the answer was cut");
    let child = &hq.cli_json(&["sync", "child", "list"])[0];
    assert_eq!(child["last_request_seq"], 2, "hq applied the request");
    assert_eq!(remote(&hq)["devices"].as_array().unwrap().len(), DEVICES);
    let status = regional.cli_json(&["sync", "status"]);
    assert_eq!(status["binding"]["outstanding_seq"], 2);
    assert!(status["last_error"].as_str().is_some());
    assert!(
        regional
            .cli_json(&["alerts"])
            .to_string()
            .contains("sync with upstream `hq` is failing"),
        "a failing sync raises an alert"
    );
    regional.cli_ok(&["user", "create", "prom"]);
    regional.cli_ok(&["user", "grant", "prom", "--role", "metrics-reader"]);
    let token = regional.cli_json(&["api-token", "create", "--user", "prom"])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let scrape = regional.admin_api(Some(&token)).get("/metrics").text;
    assert!(scrape.contains("satellite_sync_failures 1"), "{scrape}");
    assert!(scrape.contains("satellite_sync_age_seconds "), "{scrape}");

    // The retry sends the same request; hq answers it again without applying it again.
    fwd.set(PASS);
    let v = regional.cli_json(&["sync", "now"]);
    assert_eq!(v["result"], "applied");
    assert_eq!(v["response_seq"], 2);
    assert_eq!(v["acknowledged"], DEVICES as u64 + 1);
    assert_eq!(
        actions(&hq, "sync.request.apply"),
        2,
        "request 2 was applied once"
    );
    assert_eq!(actions(&hq, "sync.request.replayed"), 1);
    assert_eq!(remote(&hq)["devices"].as_array().unwrap().len(), DEVICES);
    // 40 units requested, 10 purchased: 10 in use.
    assert_eq!(pool(&hq, "acme/Default/region"), (10, 10));
    assert_eq!(remote(&hq)["usage"][0]["units_requested"], DEVICES as u64);
    let status = regional.cli_json(&["sync", "status"]);
    assert_eq!(status["pending_changes"], 0);
    assert!(status["binding"]["outstanding_seq"].is_null());
    assert!(status["problem"].is_null(), "{status}");

    // Nothing new: the next request carries no changes.
    let v = regional.cli_json(&["sync", "now"]);
    assert_eq!(v["acknowledged"], 0);
    assert_eq!(actions(&hq, "sync.request.apply"), 3);
}

#[test]
fn a_restart_with_a_request_outstanding_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let f = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let (hq, mut regional) = hq_and_regional();
    regional.cli_json(&["sync", "now"]);
    for i in 0..3 {
        device(
            &regional,
            &tmp.path().join(format!("d{i}")),
            "acme/Default/region",
            &format!("FOC{i}"),
            2,
        );
    }
    regional.cli_json(&["sync", "export", "--out", &f("before.json")]);

    // kill -9 with the request outstanding, and a device registered after it.
    regional.kill9();
    regional.start_again();
    device(
        &regional,
        &tmp.path().join("late"),
        "acme/Default/region",
        "FOC9",
        1,
    );
    let status = regional.cli_json(&["sync", "status"]);
    assert_eq!(status["binding"]["outstanding_seq"], 2);
    assert_eq!(
        status["pending_changes"], 2,
        "the late device and its usage wait"
    );

    // The outstanding request survived byte for byte; hq applies it.
    regional.cli_json(&["sync", "export", "--out", &f("after.json")]);
    assert_eq!(
        std::fs::read(f("before.json")).unwrap(),
        std::fs::read(f("after.json")).unwrap()
    );
    hq.cli_json(&[
        "sync",
        "answer",
        "--in",
        &f("after.json"),
        "--out",
        &f("a.json"),
    ]);
    regional.cli_json(&["sync", "import", &f("a.json")]);
    assert_eq!(remote(&hq)["devices"].as_array().unwrap().len(), 3);

    // The next request carries exactly what was left: the late device and the new usage.
    regional.cli_json(&["sync", "now"]);
    let r = remote(&hq);
    assert_eq!(r["devices"].as_array().unwrap().len(), 4);
    assert_eq!(r["usage"][0]["units_requested"], 7);
    assert_eq!(actions(&hq, "sync.request.apply"), 3);
    assert_eq!(regional.cli_json(&["sync", "status"])["pending_changes"], 0);
}

#[test]
fn the_sync_worker_retries_a_failed_sync_on_its_own() {
    let hq = satellite("hq");
    let regional = Daemon::start_with(
        "",
        "[sync]\nname = \"regional\"\ninterval = \"24h\"\nretry_min = \"1s\"\nretry_max = \"1s\"\n",
    );
    setup_hq(&hq);
    let fwd = Forwarder::start(hq.device_addr);
    fwd.set(PASS);
    bind(
        &hq,
        &regional,
        "regional",
        "acme/Default/region",
        &fwd.url(),
    );
    // The upstream becomes unreachable; an operator's `sync now` fails and says why.
    fwd.set(REFUSE);
    let (_, err) = regional.cli_err(&["sync", "now"]);
    assert!(err.contains("/v1/sync"), "{err}");
    assert!(regional.cli_json(&["sync", "status"])["next_attempt"].is_string());
    // When it is back, the worker's retry (after `retry_min`) syncs without anyone asking.
    fwd.set(PASS);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let s = regional.cli_json(&["sync", "status"]);
        if s["last_error"].is_null() && s["binding"]["last_response_seq"].as_u64() >= Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no retry succeeded: {s}"
        );
        std::thread::yield_now();
    }
    assert_eq!(pool(&regional, "acme/Default/region"), (10, 0));
    assert!(actions(&regional, "sync.failed") >= 1);
}

/// A minimal HTTP CONNECT proxy (what `sync.proxy` points at): answers each CONNECT and pipes
/// the tunnel. Counts the tunnels it opened and remembers their targets.
fn connect_proxy() -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let Some(target) = head
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split_whitespace().next())
                else {
                    let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
                    return;
                };
                log.lock().unwrap().push(target.to_string());
                let Ok(server) = TcpStream::connect(target) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let (mut a, mut b) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut a, &mut b);
                    let _ = b.shutdown(Shutdown::Write);
                });
                let (mut c, mut d) = (server, client);
                let _ = std::io::copy(&mut c, &mut d);
                let _ = d.shutdown(Shutdown::Both);
            });
        }
    });
    (addr, seen)
}

#[test]
fn binding_and_sync_go_through_the_configured_proxy() {
    let hq = satellite("hq");
    setup_hq(&hq);
    let (proxy, seen) = connect_proxy();
    let regional = Daemon::start_with(
        "",
        &format!("[sync]\nname = \"regional\"\ninterval = \"off\"\nproxy = \"http://{proxy}\"\n"),
    );
    bind(
        &hq,
        &regional,
        "regional",
        "acme/Default/region",
        &device_url(&hq),
    );
    regional.cli_json(&["sync", "now"]);
    assert_eq!(pool(&regional, "acme/Default/region"), (10, 0));
    let tunnels = seen.lock().unwrap().clone();
    assert!(
        tunnels.len() >= 3,
        "CA fetch, registration and sync: {tunnels:?}"
    );
    assert!(
        tunnels.iter().all(|t| *t == hq.device_addr.to_string()),
        "{tunnels:?}"
    );
}

#[test]
fn a_registration_token_is_checked_before_anything_is_trusted() {
    let hq = satellite("hq");
    let other_upstream = satellite("impostor");
    let regional = satellite("regional");
    setup_hq(&hq);
    let created = hq.cli_json(&[
        "sync",
        "child",
        "add",
        "regional",
        "--va",
        "acme/Default/region",
    ]);
    let token = created["registration_token"].as_str().unwrap().to_string();
    let register = |url: &str, token: &str| {
        regional
            .cli_err(&[
                "sync",
                "register",
                "--upstream",
                url,
                "--registration-token",
                token,
            ])
            .1
    };
    // The right token sent to another satellite: its CA does not match the token's pin.
    let err = register(&device_url(&other_upstream), &token);
    assert!(
        err.contains("this is not the upstream that issued the token"),
        "{err}"
    );
    // A malformed token, and an unknown secret with the right pin.
    let err = register(&device_url(&hq), "nonsense");
    assert!(err.contains("SECRET.FINGERPRINT"), "{err}");
    let (_, pin) = token.rsplit_once('.').unwrap();
    let err = register(&device_url(&hq), &format!("ssr_{}.{pin}", "0".repeat(64)));
    assert!(err.contains("not known to the upstream"), "{err}");
    assert!(
        regional.cli_json(&["sync", "status"])["binding"].is_null(),
        "nothing was bound"
    );
    // The token works once.
    regional.cli_json(&[
        "sync",
        "register",
        "--upstream",
        &device_url(&hq),
        "--registration-token",
        &token,
    ]);
    let third = satellite("third");
    let err = third
        .cli_err(&[
            "sync",
            "register",
            "--upstream",
            &device_url(&hq),
            "--registration-token",
            &token,
        ])
        .1;
    assert!(err.contains("was already used"), "{err}");
    // Only a bound child's certificate may post sync messages.
    let api = hq.device_api();
    let resp = api.post_raw("/v1/sync", "{}");
    resp.assert_error(401, "unauthorized");
}

#[test]
fn reserved_licenses_on_a_child_count_as_usage_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let (hq, regional) = hq_and_regional();
    regional.cli_json(&["sync", "now"]);
    let code = agent_ok(
        &tmp.path().join("offline"),
        &[
            "reserve-request",
            "--pid",
            "C9300-24T",
            "--serial",
            "OFF1",
            "--entitlement",
            &format!("{TAG}:2"),
        ],
    );
    regional.cli_json(&[
        "reserve",
        "--va",
        "acme/Default/region",
        "--request",
        code.trim(),
    ]);
    assert_eq!(pool(&regional, "acme/Default/region"), (10, 2));
    regional.cli_json(&["sync", "now"]);
    let r = remote(&hq);
    assert_eq!(r["usage"][0]["units_granted"], 2, "{r}");
    assert_eq!(r["usage"][0]["devices"], 0, "{r}");
    assert_eq!(pool(&hq, "acme/Default/region"), (10, 2));
}

#[test]
fn a_large_outbox_goes_up_in_bounded_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let hq = satellite("hq");
    let regional = Daemon::start_with(
        "",
        "[sync]\nname = \"regional\"\ninterval = \"off\"\nmax_changes_per_message = 3\n",
    );
    setup_hq(&hq);
    bind(
        &hq,
        &regional,
        "regional",
        "acme/Default/region",
        &device_url(&hq),
    );
    for i in 0..4 {
        device(
            &regional,
            &tmp.path().join(format!("d{i}")),
            "acme/Default/region",
            &format!("B{i}"),
            1,
        );
    }
    // 4 registrations and 1 usage snapshot, at most 3 per request.
    assert_eq!(regional.cli_json(&["sync", "now"])["acknowledged"], 3);
    assert_eq!(regional.cli_json(&["sync", "status"])["pending_changes"], 2);
    assert_eq!(remote(&hq)["devices"].as_array().unwrap().len(), 3);
    assert_eq!(regional.cli_json(&["sync", "now"])["acknowledged"], 2);
    assert_eq!(regional.cli_json(&["sync", "status"])["pending_changes"], 0);
    let r = remote(&hq);
    assert_eq!(r["devices"].as_array().unwrap().len(), 4);
    assert_eq!(r["usage"][0]["units_granted"], 4);
}

#[test]
fn a_removal_ordered_upstream_is_carried_out_by_the_child() {
    let tmp = tempfile::tempdir().unwrap();
    let (hq, regional) = hq_and_regional();
    device(
        &regional,
        &tmp.path().join("d"),
        "acme/Default/region",
        "GONE1",
        2,
    );
    regional.cli_json(&["sync", "now"]);
    let id = remote(&hq)["devices"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The upstream may not remove the child's device itself; it orders the removal.
    let ordered = hq.cli_json(&["sync", "remove-device", &id]);
    assert_eq!(ordered["removal_ordered"], true);
    assert_eq!(remote(&hq)["devices"][0]["removal_ordered"], true);
    let v = regional.cli_json(&["sync", "now"]);
    assert_eq!(v["devices_removed"], 1);
    assert_eq!(
        regional
            .cli_json(&["device", "list"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(pool(&regional, "acme/Default/region"), (10, 0));
    // The child reports the removal; the order is settled.
    regional.cli_json(&["sync", "now"]);
    assert_eq!(remote(&hq)["devices"].as_array().unwrap().len(), 0);
    assert_eq!(
        hq.cli_json(&["sync", "child", "list"])[0]["pending_removals"],
        0
    );
    // An unknown device cannot be ordered removed.
    let (_, err) = hq.cli_err(&["sync", "remove-device", "no-such-device"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn cisco_rum_reports_are_relayed_upstream_untouched() {
    const FIXTURE: &str = include_str!("data/cisco-rum/example-rum-1671840750.xml");
    let hq = satellite("hq");
    let regional = satellite("regional");
    hq.account("acme");
    // RUM devices land in the account's Default VA, so the whole account is dedicated.
    bind(&hq, &regional, "regional", "acme/Default", &device_url(&hq));
    regional.cli_json(&["sync", "now"]);
    let r = regional
        .device_api()
        .post_raw(&regional.rum_path("acme"), FIXTURE);
    assert_eq!(r.status, 200, "{}", r.text);
    regional.cli_json(&["sync", "now"]);
    let r = remote(&hq);
    let relayed = r["rum_reports"].as_array().expect("rum reports");
    assert_eq!(relayed.len(), 1, "{r}");
    assert_eq!(relayed[0]["child"], "regional");
    assert_eq!(relayed[0]["report_id"], 1671840750u64);
    assert_eq!(relayed[0]["serial"], "9NTUEA8FIIH");
    // The report exactly as the device sent it: the JSON inside the XML envelope's CDATA.
    let sent = FIXTURE
        .split_once("<![CDATA[")
        .and_then(|(_, rest)| rest.split_once("]]>"))
        .map(|(report, _)| report)
        .expect("the fixture wraps its report in CDATA");
    assert_eq!(relayed[0]["bytes"], sent.len());
    // The device the report registered is relayed too; a second sync relays nothing again.
    assert_eq!(r["devices"][0]["serial"], "9NTUEA8FIIH");
    assert_eq!(regional.cli_json(&["sync", "now"])["acknowledged"], 0);
    assert_eq!(remote(&hq)["rum_reports"].as_array().unwrap().len(), 1);
}

/// SPEC §3b across tiers: a RUM report cannot change a device a child registered with
/// protocol v1, neither on the child (refused, so nothing is relayed) nor on the upstream,
/// where the account's Default VA is dedicated to the child and its devices report there.
#[test]
fn rum_reports_cannot_change_native_devices_on_a_child_or_its_upstream() {
    const FIXTURE: &str = include_str!("data/cisco-rum/example-rum-1671840750.xml");
    let forged = FIXTURE
        .replace("C9800-CL-K9", "C9300-24T")
        .replace("9NTUEA8FIIH", "FOCE1");
    let hq = satellite("hq");
    let regional = satellite("regional");
    hq.account("acme");
    bind(&hq, &regional, "regional", "acme/Default", &device_url(&hq));
    let dir = tempfile::tempdir().unwrap();
    device(&regional, dir.path(), "acme/Default", "FOCE1", 1);
    regional.cli_json(&["sync", "now"]);
    let before = (regional.cli_json(&["device", "list"]), remote(&hq));
    assert_eq!(before.1["devices"][0]["serial"], "FOCE1", "{:#}", before.1);

    let r = regional
        .device_api()
        .post_raw(&regional.rum_path("acme"), forged.clone());
    r.assert_error(409, "registered_natively");
    regional.cli_json(&["sync", "now"]);
    assert_eq!(
        (regional.cli_json(&["device", "list"]), remote(&hq)),
        before
    );
    assert!(remote(&hq)["rum_reports"].as_array().unwrap().is_empty());

    let hq_devices = hq.cli_json(&["device", "list"]);
    let r = hq.device_api().post_raw(&hq.rum_path("acme"), forged);
    r.assert_error(422, "refused");
    assert!(
        r.text.contains("dedicated to child satellite `regional`"),
        "{}",
        r.text
    );
    assert_eq!(
        (hq.cli_json(&["device", "list"]), remote(&hq)),
        (hq_devices, before.1)
    );
}

/// `POST /v1/sync/register` from `client` with `token` (the secret part); status and response.
async fn register_child(
    s: &crate::inproc::Sat,
    client: &reqwest::Client,
    token: &str,
) -> reqwest::Response {
    let key = satellite::protocol::sync::SatelliteKey::generate().expect("a key");
    let (_, csr) = satellite::agent::new_key_and_csr("site").expect("a CSR");
    let body = satellite::sync::transport::RegisterRequest {
        token: token.to_owned(),
        public_key: key.public_key_hex(),
        csr,
    };
    client
        .post(format!("{}/v1/sync/register", s.url))
        .json(&body)
        .send()
        .await
        .expect("answered")
}

/// A client of the satellite's device listener that connects from `from`.
fn client_from(s: &crate::inproc::Sat, from: &str) -> reqwest::Client {
    let mut tls = std::sync::Arc::unwrap_or_clone(
        satellite::pki::client_config_trusting(&s.ca_pem).expect("the CA"),
    );
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .local_address(from.parse::<std::net::IpAddr>().expect("an address"))
        .build()
        .expect("a client")
}

/// Guessing a child's registration token is limited per address like device registration:
/// after 10 failures a minute, even the right token gets 429 with `Retry-After`, other
/// addresses are not affected, and the right token works once the window has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_a_child_registration_token_is_rate_limited_per_address() {
    use satellite::protocol::admin::{ChildCreated, CreateChild};
    let s = crate::inproc::Sat::start().await;
    s.account("acme").await;
    let created: ChildCreated = s
        .post(
            "/v1/sync/children",
            &CreateChild {
                name: "site".into(),
                va: "acme/Default".into(),
                expires_in_days: None,
            },
        )
        .await;
    let (secret, _pin) = created
        .registration_token
        .rsplit_once('.')
        .expect("SECRET.FINGERPRINT");
    let here = client_from(&s, "127.0.0.1");
    let guess = format!("ssr_{}", "0".repeat(64));
    for _ in 0..10 {
        let res = register_child(&s, &here, &guess).await;
        assert_eq!(res.status().as_u16(), 401);
    }
    let res = register_child(&s, &here, secret).await;
    assert_eq!(res.status().as_u16(), 429, "even the right token waits");
    let wait: u64 = res
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");

    // Another address has its own budget: its guess is checked (and refused), not limited.
    let there = client_from(&s, "127.0.0.2");
    assert_eq!(
        register_child(&s, &there, &guess).await.status().as_u16(),
        401
    );

    s.advance(time::Duration::seconds(61));
    let res = register_child(&s, &here, secret).await;
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.text().await);
    let children: Value = s.get("/v1/sync/children").await;
    assert_eq!(children[0]["registered"], true, "{children}");
}
