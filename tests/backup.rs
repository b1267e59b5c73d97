//! Backup while serving, restore offline (SPEC §9): the snapshot is one point in time, and a
//! damaged backup is refused without touching the target.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::Value;

use crate::util::{Daemon, assert_names, cli_with_config};

const TAG: &str = "regid.ADV";

/// Runs a CLI command against the daemon's configuration, asserting success.
fn ok(config: &Path, args: &[&str]) -> String {
    let out = cli_with_config(config, args);
    assert!(
        out.status.success(),
        "`satellite {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// `satellite restore`, expecting failure: returns the exit code and stderr.
fn restore_err(config: &Path, file: &Path, dir: &Path) -> (i32, String) {
    let out = cli_with_config(config, &["restore", "--in", s(file), "--data-dir", s(dir)]);
    assert!(
        !out.status.success(),
        "the restore should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().expect("an exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Registers a device with the agent and reports `count` of [`TAG`].
fn device(d: &Daemon, dir: &Path, serial: &str, count: u64) {
    let token = d.va("acme/Default").token();
    let url = format!("https://localhost:{}", d.device_addr.port());
    let ca = d.data_dir.join("tls").join("ca.pem");
    let agent = |args: &[&str]| {
        let mut all = vec!["agent", "--dir", s(dir)];
        all.extend_from_slice(args);
        d.cli_ok(&all);
    };
    agent(&[
        "register",
        "--url",
        &url,
        "--ca",
        s(&ca),
        "--token",
        &token.secret,
        "--pid",
        "C9300",
        "--serial",
        serial,
        "--hostname",
        serial,
    ]);
    agent(&["report", "--usage", &format!("{TAG}={count}")]);
}

fn count_of(events: &[Value], action: &str) -> usize {
    events.iter().filter(|e| e["action"] == action).count()
}

#[test]
fn a_backup_taken_while_writers_run_is_one_point_in_time() {
    let mut d = Daemon::start();
    d.account("acme").license(TAG, 3);
    let work = tempfile::tempdir().expect("tempdir");
    let agents = [work.path().join("agent1"), work.path().join("agent2")];
    device(&d, &agents[0], "S1", 2);
    device(&d, &agents[1], "S2", 2);

    // Two writers change the store while three backups are taken: one adds VAs and licenses
    // (each an event), the other adds tokens and has a device report changing usage (silent).
    let stop = AtomicBool::new(false);
    let rounds = AtomicUsize::new(0);
    let config = d.config_path.clone();
    let backups: Vec<PathBuf> = (1..=3)
        .map(|i| work.path().join(format!("b{i}.satbak")))
        .collect();
    let mut summaries = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let name = format!("w{i}");
                ok(
                    &config,
                    &["va", "create", &name, "--parent", "acme/Default"],
                );
                let va = format!("acme/Default/{name}");
                let quantity = (i % 4 + 1).to_string();
                ok(
                    &config,
                    &[
                        "license",
                        "add",
                        "--va",
                        &va,
                        "--tag",
                        TAG,
                        "--quantity",
                        &quantity,
                    ],
                );
                rounds.fetch_add(1, Ordering::Relaxed);
            }
        });
        scope.spawn(|| {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                ok(&config, &["token", "create", "--va", "acme/Default"]);
                let usage = format!("{TAG}={}", i % 3 + 1);
                ok(
                    &config,
                    &["agent", "--dir", s(&agents[0]), "report", "--usage", &usage],
                );
            }
        });
        for file in &backups {
            let start = rounds.load(Ordering::Relaxed);
            while rounds.load(Ordering::Relaxed) < start + 2 {
                std::thread::yield_now();
            }
            let out = ok(&config, &["backup", "--out", s(file), "--json"]);
            summaries.push(serde_json::from_str::<Value>(&out).expect("JSON summary"));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let counts: Vec<u64> = summaries
        .iter()
        .map(|s| s["tables"]["events"].as_u64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] < w[1]),
        "the writers ran between and during the backups: {counts:?}"
    );
    let live_events = d.events();
    d.stop();
    for file in &backups {
        assert!(file.exists());
        assert!(!PathBuf::from(format!("{}.partial", s(file))).exists());
    }

    // A second daemon, restarted on each restored backup in turn.
    let mut r = Daemon::start();
    r.stop();
    for (file, summary) in backups.iter().zip(&summaries) {
        std::fs::remove_dir_all(&r.data_dir).expect("empty the data directory");
        let out = ok(
            &r.config_path,
            &["restore", "--in", s(file), "--data-dir", s(&r.data_dir)],
        );
        assert_names(&out, &["restored", "records", "sha256", "tls/"]);
        r.start_again();
        check_restored(&r, summary, &live_events);
        r.stop();
    }
}

/// The restored store is the live one at one moment: its event log is a prefix of the live log
/// numbered 1..N without gaps, every object has its creating event (and no event lacks its
/// object), and the license totals agree with the events and the devices.
fn check_restored(r: &Daemon, summary: &Value, live_events: &[Value]) {
    let tables = &summary["tables"];
    let n = tables["events"].as_u64().expect("event count");
    let mut events = r.events();
    events.reverse();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "event numbers 1..N");
    let mut prefix: Vec<Value> = live_events
        .iter()
        .filter(|e| e["seq"].as_u64().unwrap() <= n)
        .cloned()
        .collect();
    prefix.reverse();
    assert_eq!(events, prefix, "the restored log is the live log up to N");
    // The backup's own event comes after the snapshot, in the live log.
    let own = live_events
        .iter()
        .find(|e| {
            e["action"] == "backup.create"
                && e["details"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|kv| kv[1] == summary["sha256"]))
        })
        .expect("a backup.create event with the file's checksum");
    assert!(own["seq"].as_u64().unwrap() > n);

    let vas = r.cli_json(&["va", "list"]);
    let vas = vas.as_array().expect("VAs");
    assert_eq!(
        vas.len() as u64,
        tables["virtual_accounts"].as_u64().unwrap()
    );
    assert_eq!(vas.len(), 1 + count_of(&events, "va.create"), "{vas:#?}");
    let tokens = r.cli_json(&["token", "list"]);
    assert_eq!(
        tokens.as_array().expect("tokens").len(),
        count_of(&events, "token.create")
    );
    let licenses = r.cli_json(&["license", "list"]);
    let entries = licenses["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), count_of(&events, "license.add"));
    let added: u64 = events
        .iter()
        .filter(|e| e["action"] == "license.add")
        .flat_map(|e| e["details"].as_array().unwrap().clone())
        .filter(|kv| kv[0] == "quantity")
        .map(|kv| kv[1].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    let pools = licenses["pools"].as_array().expect("pools");
    let purchased: u64 = pools.iter().map(|p| p["purchased"].as_u64().unwrap()).sum();
    assert_eq!(purchased, added, "purchased totals agree with the log");

    // Allocation is a strict prefix in registration order (S1 registered first), so what is
    // in use in acme/Default follows from the restored pool and the restored devices' usage.
    let devices = r.cli_json(&["device", "list"]);
    let mut devices = devices.as_array().expect("devices").clone();
    assert_eq!(devices.len(), 2);
    devices.sort_by_key(|d| d["udi_serial"].as_str().unwrap().to_string());
    let pool = pools
        .iter()
        .find(|p| p["va_path"] == "acme/Default" && p["entitlement_tag"] == TAG)
        .expect("the acme/Default pool");
    let purchased = pool["purchased"].as_u64().unwrap();
    let (mut fits, mut full) = (0, false);
    for device in &devices {
        let e = &device["entitlements"][0];
        let count = e["count"].as_u64().unwrap();
        full |= fits + count > purchased;
        if !full {
            fits += count;
        }
        let expected = if full {
            "out_of_compliance"
        } else {
            "authorized"
        };
        assert_eq!(e["status"], expected, "{device:#?}");
    }
    assert_eq!(pool["in_use"].as_u64(), Some(fits), "{pool:#?}");
}

#[test]
fn a_damaged_backup_or_a_busy_target_is_refused_and_nothing_is_touched() {
    let d = Daemon::start();
    d.account("acme").child("emea");
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("good.satbak");
    let summary = d.cli_json(&["backup", "--out", s(&file)]);
    let bytes = std::fs::read(&file).expect("read the backup");
    assert_eq!(&bytes[..8], b"SATBAK01");
    assert_eq!(summary["bytes"].as_u64(), Some(bytes.len() as u64));

    // The running daemon's own data directory: its socket answers.
    let out = d.cli(&["restore", "--in", s(&file)]);
    assert_eq!(out.status.code(), Some(1));
    assert_names(
        &String::from_utf8_lossy(&out.stderr),
        &["stop the daemon first"],
    );

    let busy = work.path().join("busy");
    std::fs::create_dir(&busy).expect("mkdir");
    std::fs::write(busy.join("keep"), b"mine").expect("write");
    let (code, err) = restore_err(&d.config_path, &file, &busy);
    assert_eq!(code, 1);
    assert_names(
        &err,
        &["already holds", "restore into an empty or new directory"],
    );
    assert_eq!(entries(&busy), ["keep"]);

    let truncated = work.path().join("truncated.satbak");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let target = work.path().join("new2");
    let (code, err) = restore_err(&d.config_path, &truncated, &target);
    assert_eq!(code, 1);
    let expected = format!("expected {} records", summary["records"]);
    assert_names(&err, &["truncated.satbak", "is truncated", &expected]);
    assert!(!target.exists());

    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    let corrupt = work.path().join("corrupt.satbak");
    std::fs::write(&corrupt, &flipped).expect("write");
    let target = work.path().join("new3");
    let (code, err) = restore_err(&d.config_path, &corrupt, &target);
    assert_eq!(code, 1);
    assert_names(&err, &["corrupt.satbak", "checksum", "damaged"]);
    assert!(!target.exists());

    // Nothing was left behind: no temporary directories beside the targets.
    assert_eq!(
        entries(work.path()),
        ["busy", "corrupt.satbak", "good.satbak", "truncated.satbak"]
    );
}

#[test]
fn only_a_system_administrator_may_take_a_backup_over_https() {
    let d = Daemon::start();
    d.account("acme");
    d.cli_ok(&["user", "create", "root"]);
    d.cli_ok(&["user", "grant", "root", "--role", "system-admin"]);
    d.cli_ok(&["user", "create", "olivia"]);
    d.cli_ok(&[
        "user",
        "grant",
        "olivia",
        "--role",
        "account-admin",
        "--account",
        "acme",
    ]);
    let secret = |user: &str| {
        d.cli_json(&["api-token", "create", "--user", user])["secret"]
            .as_str()
            .expect("secret")
            .to_string()
    };
    let (root, olivia) = (secret("root"), secret("olivia"));
    let events = d.event_count();
    d.admin_api(Some(&olivia))
        .get("/v1/backup")
        .assert_error(403, "forbidden");
    d.admin_api(None)
        .get("/v1/backup")
        .assert_error(401, "unauthorized");
    assert_eq!(d.event_count(), events, "a refused backup writes no event");

    // The CLI over HTTPS, as the system administrator.
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("remote.satbak");
    let ca = d.data_dir.join("tls").join("ca.pem");
    let url = format!("https://localhost:{}", d.admin_addr.port());
    let out = std::process::Command::new(crate::util::BIN)
        .args(["--url", &url, "--token", &root, "--ca", s(&ca)])
        .args(["backup", "--out", s(&file), "--json"])
        .env_remove("SATELLITE_CONFIG")
        .env_remove("SATELLITE_TOKEN")
        .output()
        .expect("run the CLI");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        summary["bytes"].as_u64(),
        Some(std::fs::metadata(&file).expect("the file").len())
    );
    let last = &d.events()[0];
    assert_eq!(last["action"], "backup.create");
    assert_eq!(last["actor"], "user:root");
}

/// `backup verify FILE` of a good file: what `backup` said it wrote, and its SHA-256.
fn check_verify(config: &Path, file: &Path, summary: &Value, sha: &str) {
    let verified = ok(config, &["backup", "verify", s(file), "--json"]);
    let verified: Value = serde_json::from_str(&verified).expect("JSON");
    assert_eq!(verified["sha256"].as_str(), Some(sha));
    assert_eq!(verified["tables"], summary["tables"]);
    assert_eq!(verified["records"], summary["records"]);
    assert_eq!(verified["schema_version"], summary["schema_version"]);
    let created = verified["created_at"].as_str().expect("created_at");
    time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
        .expect("created_at is RFC 3339");
    let text = ok(config, &["backup", "verify", s(file)]);
    assert_names(
        &text,
        &[
            "intact",
            "taken at",
            "records",
            "virtual_accounts 2",
            "schema",
            sha,
            "sha256sum",
        ],
    );
}

/// The SHA-256 of `bytes`, lower-case hex: what `sha256sum` prints.
fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_sha256_is_the_files_and_backup_verify_checks_a_file_offline() {
    let mut d = Daemon::start();
    d.account("acme").child("emea");
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("b.satbak");
    let summary = d.cli_json(&["backup", "--out", s(&file)]);
    let bytes = std::fs::read(&file).expect("read the backup");
    let sha = sha256_hex(&bytes);
    assert_eq!(summary["sha256"].as_str(), Some(sha.as_str()));
    // The trailer's checksum covers the content before it, and is named for what it is.
    assert_eq!(
        summary["content_sha256"].as_str(),
        Some(sha256_hex(&bytes[..bytes.len() - 32]).as_str())
    );
    let event = &d.events()[0];
    assert_eq!(event["action"], "backup.create");
    let details = event["details"].as_array().expect("details");
    assert!(
        details
            .iter()
            .any(|kv| kv[0] == "sha256" && kv[1] == sha.as_str()),
        "{event:#}"
    );
    let text = ok(
        &d.config_path,
        &["backup", "--out", s(&work.path().join("c.satbak"))],
    );
    let printed = text
        .lines()
        .find_map(|l| l.strip_prefix("sha256"))
        .and_then(|l| l.split_whitespace().next())
        .expect("a sha256 line");
    let second = std::fs::read(work.path().join("c.satbak")).expect("read");
    assert_eq!(printed, sha256_hex(&second));

    // Offline: the daemon is stopped.
    d.stop();
    check_verify(&d.config_path, &file, &summary, &sha);

    // A truncated file and a flipped byte: exit 1, the cause, nothing written.
    let config = d.config_path.clone();
    let truncated = work.path().join("truncated.satbak");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).expect("write");
    let mut flipped = bytes.clone();
    flipped[bytes.len() - 1] ^= 0x20;
    let corrupt = work.path().join("flipped.satbak");
    std::fs::write(&corrupt, &flipped).expect("write");
    let listed = entries(work.path());
    for (bad, cause) in [(&truncated, "is truncated"), (&corrupt, "damaged")] {
        let out = cli_with_config(&config, &["backup", "verify", s(bad)]);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        assert_names(&String::from_utf8_lossy(&out.stderr), &[s(bad), cause]);
        let out = cli_with_config(&config, &["backup", "verify", s(bad), "--json"]);
        assert_eq!(out.status.code(), Some(1));
        let err: Value = serde_json::from_slice(&out.stderr).expect("a JSON error");
        assert_eq!(err["error"]["code"], "invalid_backup");
    }
    assert_eq!(entries(work.path()), listed, "verify writes nothing");
}
