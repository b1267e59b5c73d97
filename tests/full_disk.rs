//! A full disk (SPEC §9): the caller of a write that cannot be stored gets a clear error naming
//! the cause, never a 2xx; everything acknowledged before is still there once there is room
//! again, and the store opens.
//!
//! The disk is really filled, by one of two mechanisms:
//! - `tmpfs`: a small tmpfs mounted for the test holds the data directory, and a ballast file
//!   takes all of its space but a few hundred KiB, so the store hits `ENOSPC`. Needs the right to
//!   mount (root, as in this project's CI container).
//! - `prlimit`: the daemon runs under `prlimit --fsize=N` (util-linux) with `SIGXFSZ` ignored, so
//!   a write past `N` bytes fails with `EFBIG` as it would on a full disk. Needs no privileges.
//!
//! The test uses `tmpfs` when it may mount and `prlimit` otherwise; `SATELLITE_FULL_DISK=tmpfs`
//! or `=prlimit` forces one. When neither works the test fails and says why: it never passes
//! without having filled a disk.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use time::OffsetDateTime;

use satellite::agent::{
    AgentError, AgentIdentity, DeviceClient, new_key_and_csr, register_raw, registration_client,
};
use satellite::protocol::device::{UsageLine, UsageRequest, codes};

use crate::devices::runtime;
use crate::util::{Daemon, assert_names};

/// How big the tmpfs is; the ballast then takes all of it but [`ROOM`].
const TMPFS_SIZE: &str = "16m";
/// The space left to the store once the disk is "almost full".
const ROOM: u64 = 384 * 1024;
/// The room the `prlimit` mechanism leaves above the store's largest file. More than [`ROOM`]:
/// the store's engine writes its log in segments of 512 KiB and may begin a new one at start-up,
/// past the end of the file.
const PRLIMIT_ROOM: u64 = 2 * 1024 * 1024;
/// Usage lines per report: a report rewrites the device record, so big reports fill the disk
/// in tens of writes rather than thousands.
const LINES: usize = 64;
/// A bound on the writes of the filling phase, so a disk that never fills fails the test.
const MAX_WRITES: u64 = 20_000;

/// How the disk is made to fill up.
enum Mechanism {
    Tmpfs,
    Prlimit,
}

/// The directory the daemon's data lives in, on a disk the test can fill.
struct Disk {
    mechanism: Mechanism,
    /// The tmpfs mount point (tmpfs only).
    mount: Option<PathBuf>,
    data_dir: PathBuf,
    ballast: PathBuf,
    /// Removed after `Drop::drop` has unmounted the tmpfs inside it.
    _dir: tempfile::TempDir,
}

impl Disk {
    fn new() -> Disk {
        let dir = tempfile::tempdir().expect("temporary directory");
        let forced = std::env::var("SATELLITE_FULL_DISK").ok();
        let mount_point = dir.path().join("disk");
        std::fs::create_dir(&mount_point).expect("create the mount point");
        let mount_error = match forced.as_deref() {
            None | Some("tmpfs") => match run(Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={TMPFS_SIZE}"))
                .arg("tmpfs")
                .arg(&mount_point))
            {
                Ok(()) => {
                    println!(
                        "full disk: a {TMPFS_SIZE} tmpfs at {}",
                        mount_point.display()
                    );
                    return Disk {
                        mechanism: Mechanism::Tmpfs,
                        data_dir: mount_point.join("data"),
                        ballast: mount_point.join("ballast"),
                        mount: Some(mount_point),
                        _dir: dir,
                    };
                }
                Err(e) if forced.is_some() => panic!("SATELLITE_FULL_DISK=tmpfs: {e}"),
                Err(e) => e,
            },
            Some("prlimit") => "not tried (SATELLITE_FULL_DISK=prlimit)".to_owned(),
            Some(other) => panic!("SATELLITE_FULL_DISK={other:?}: use `tmpfs` or `prlimit`"),
        };
        if let Err(e) = run(Command::new("prlimit").arg("--version")) {
            panic!(
                "no way to fill a disk here: mounting a tmpfs failed ({mount_error}) and \
                 prlimit is unusable ({e}); install util-linux or run as root"
            );
        }
        println!("full disk: prlimit --fsize (tmpfs: {mount_error})");
        Disk {
            mechanism: Mechanism::Prlimit,
            data_dir: mount_point.join("data"),
            ballast: mount_point.join("ballast"),
            mount: None,
            _dir: dir,
        }
    }

    /// Leaves the store about [`ROOM`] bytes to grow, with the daemon running.
    fn nearly_fill(&self, d: &mut Daemon) {
        match self.mechanism {
            Mechanism::Tmpfs => {
                // Write until the file system refuses, then give back ROOM bytes.
                let mut ballast = File::create(&self.ballast).expect("create the ballast");
                let chunk = vec![0u8; 64 * 1024];
                let mut written = 0u64;
                loop {
                    match ballast.write(&chunk) {
                        Ok(0) => break,
                        Ok(n) => written += n as u64,
                        Err(e) if e.raw_os_error() == Some(28) => break,
                        Err(e) => panic!("writing the ballast: {e}"),
                    }
                }
                let _ = ballast.flush();
                ballast
                    .set_len(written.saturating_sub(ROOM))
                    .expect("shrink the ballast");
            }
            Mechanism::Prlimit => {
                // The limit applies to every file the daemon writes; the store's log is by far
                // the largest, so it is the one that hits it.
                d.stop();
                let limit = largest_file(&self.data_dir) + PRLIMIT_ROOM;
                d.set_wrapper(&[
                    "sh".to_owned(),
                    "-c".to_owned(),
                    // An ignored signal stays ignored across exec, so the write fails with
                    // EFBIG instead of SIGXFSZ killing the daemon.
                    "trap '' XFSZ; exec prlimit --fsize=\"$0\" -- \"$@\"".to_owned(),
                    limit.to_string(),
                ]);
                d.start_again();
            }
        }
    }

    /// The operating system's words for the failure, which the caller must be shown.
    fn cause(&self) -> &'static str {
        match self.mechanism {
            Mechanism::Tmpfs => "No space left on device",
            Mechanism::Prlimit => "File too large",
        }
    }

    /// Makes room again, with the daemon stopped.
    fn make_room(&self, d: &mut Daemon) {
        match self.mechanism {
            Mechanism::Tmpfs => std::fs::remove_file(&self.ballast).expect("remove the ballast"),
            Mechanism::Prlimit => d.set_wrapper(&[]),
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if let Some(mount) = &self.mount
            && run(Command::new("umount").arg(mount)).is_err()
        {
            let _ = run(Command::new("umount").arg("-l").arg(mount));
        }
    }
}

/// Runs a command, returning its stderr as the error if it fails.
fn run(command: &mut Command) -> Result<(), String> {
    match command.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{:?} exited with {}: {}",
            command,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run {command:?}: {e}")),
    }
}

/// The size of the largest file under `dir`.
fn largest_file(dir: &Path) -> u64 {
    let mut largest = 0;
    for entry in std::fs::read_dir(dir).expect("read the data directory") {
        let entry = entry.expect("a directory entry");
        let meta = entry.metadata().expect("metadata");
        largest = largest.max(if meta.is_dir() {
            largest_file(&entry.path())
        } else {
            meta.len()
        });
    }
    largest
}

/// A registered device and the last report the satellite acknowledged (0: none).
struct Device {
    identity: AgentIdentity,
    acked: u64,
    sent: u64,
}

async fn register(
    url: &str,
    ca_pem: &str,
    token: &str,
    serial: &str,
) -> Result<Device, AgentError> {
    let (key_pem, csr) = new_key_and_csr(serial).expect("a key and a CSR");
    let request = crate::util::register_request(token, serial, csr);
    let http = registration_client(ca_pem).expect("a registration client");
    let answer = register_raw(&http, url, &request).await?;
    Ok(Device {
        identity: AgentIdentity {
            key_pem,
            cert_pem: answer.certificate,
            ca_pem: ca_pem.into(),
            instance_id: answer.instance_id,
        },
        acked: 0,
        sent: 0,
    })
}

/// A big report: [`LINES`] tags, each counted `seq` times, so stored usage names its report.
fn big_report(seq: u64) -> UsageRequest {
    UsageRequest {
        seq,
        measured_at: OffsetDateTime::now_utc(),
        usage: (0..LINES)
            .map(|i| UsageLine {
                entitlement_tag: format!("regid.2026-01.com.example.FILL{i:03}.{}", "x".repeat(64)),
                count: seq,
            })
            .collect(),
    }
}

/// The refusal that ended a writer, or the reason it is not an acceptable one.
type Refusal = Result<(u16, String, String), String>;

fn refusal(err: AgentError) -> Refusal {
    match err {
        AgentError::Refused {
            status,
            code,
            message,
        } => Ok((status, code, message)),
        other => Err(format!("not a refusal with an error body: {other}")),
    }
}

/// What the filling phase achieved.
struct Filled {
    registered: Vec<Device>,
    reported: Vec<Device>,
    acked_writes: u64,
    refusals: Vec<Refusal>,
}

/// Two writers register devices and two send big reports, until each is refused once.
async fn fill(url: String, ca_pem: String, token: String, devices: Vec<Device>) -> Filled {
    let mut tasks = Vec::new();
    for w in 0..2u64 {
        let (url, ca_pem, token) = (url.clone(), ca_pem.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut registered = Vec::new();
            for n in 0..MAX_WRITES {
                match register(&url, &ca_pem, &token, &format!("FILL{w}{n:06}")).await {
                    Ok(device) => registered.push(device),
                    Err(e) => return (registered, Vec::new(), refusal(e)),
                }
            }
            (
                registered,
                Vec::new(),
                Err("the disk never filled".to_owned()),
            )
        }));
    }
    let mut halves: [Vec<Device>; 2] = [Vec::new(), Vec::new()];
    for (i, device) in devices.into_iter().enumerate() {
        halves[i % 2].push(device);
    }
    for mut half in halves {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let clients: Vec<DeviceClient> = half
                .iter()
                .map(|d| DeviceClient::new(&url, &d.identity).expect("a device client"))
                .collect();
            for _ in 0..MAX_WRITES {
                for (device, client) in half.iter_mut().zip(&clients) {
                    device.sent += 1;
                    match client.usage(&big_report(device.sent)).await {
                        Ok(_) => device.acked = device.sent,
                        Err(e) => return (Vec::new(), half, refusal(e)),
                    }
                }
            }
            (Vec::new(), half, Err("the disk never filled".to_owned()))
        }));
    }
    let mut filled = Filled {
        registered: Vec::new(),
        reported: Vec::new(),
        acked_writes: 0,
        refusals: Vec::new(),
    };
    for task in tasks {
        let (registered, reported, refusal) = task.await.expect("a writer task");
        filled.acked_writes += registered.len() as u64;
        filled.acked_writes += reported.iter().map(|d| d.acked).sum::<u64>();
        filled.registered.extend(registered);
        filled.reported.extend(reported);
        filled.refusals.push(refusal);
    }
    filled
}

/// Device id to the count its stored report gives the first fill tag (0: no report).
fn stored_devices(d: &Daemon) -> std::collections::HashMap<String, u64> {
    let first_tag = &big_report(0).usage[0].entitlement_tag;
    d.cli_json(&["device", "list", "--limit", "1000000"])
        .as_array()
        .expect("the device list is an array")
        .iter()
        .map(|v| {
            let usage = v["entitlements"]
                .as_array()
                .expect("entitlements")
                .iter()
                .find(|e| e["entitlement_tag"] == first_tag.as_str())
                .map_or(0, |e| e["count"].as_u64().expect("a count"));
            (v["id"].as_str().expect("an id").to_string(), usage)
        })
        .collect()
}

/// Asserts that every acknowledged registration and report is stored.
fn assert_acknowledged_present(d: &Daemon, devices: &[&Device], when: &str) {
    let stored = stored_devices(d);
    for device in devices {
        let id = &device.identity.instance_id;
        let usage = stored
            .get(id)
            .unwrap_or_else(|| panic!("{when}: the acknowledged registration of {id} is missing"));
        assert!(
            (device.acked..=device.sent).contains(usage),
            "{when}: device {id} holds report {usage}, but {} was acknowledged (sent up to {})",
            device.acked,
            device.sent
        );
    }
}

#[test]
fn a_full_disk_refuses_writes_clearly_and_keeps_every_acknowledged_one() {
    let disk = Disk::new();
    let rt = runtime();
    let mut d = Daemon::start_custom(&disk.data_dir, &[]);
    let token = d
        .account("acme")
        .license("regid.2026-01.com.example.ADV", 10)
        .token();
    let (secret, token_id) = (token.secret, token.id);

    // Devices registered while there is room; they send the big reports later.
    let url = |d: &Daemon| format!("https://{}", d.device_addr);
    let reporters: Vec<Device> = (0..4)
        .map(|n| {
            rt.block_on(register(&url(&d), &d.ca_pem, &secret, &format!("BASE{n}")))
                .expect("registration while there is room")
        })
        .collect();

    disk.nearly_fill(&mut d);
    let filled = rt.block_on(fill(url(&d), d.ca_pem.clone(), secret.clone(), reporters));
    println!(
        "full disk: {} write(s) acknowledged before the disk filled ({} registration(s), {} \
         report(s)); refusals: {:?}",
        filled.acked_writes,
        filled.registered.len(),
        filled.acked_writes - filled.registered.len() as u64,
        filled.refusals
    );
    assert!(
        filled.acked_writes > 0,
        "nothing was acknowledged before the disk filled: the test proves nothing"
    );

    // Each writer was stopped by a clear refusal naming the cause.
    for refusal in &filled.refusals {
        let (status, code, message) = refusal
            .as_ref()
            .unwrap_or_else(|e| panic!("a writer ended without a clear refusal: {e}"));
        assert_eq!(*status, 503, "{message}");
        assert_eq!(code, codes::UNAVAILABLE, "{message}");
        assert_names(message, &["durable", disk.cause()]);
    }

    // Later writes are refused too, over both interfaces, saying why.
    let later = rt
        .block_on(register(&url(&d), &d.ca_pem, &secret, "LATE0"))
        .err()
        .expect("a registration on a full disk is refused");
    let (status, code, message) = refusal(later).expect("a refusal with an error body");
    assert_eq!(
        (status, code.as_str()),
        (503, codes::UNAVAILABLE),
        "{message}"
    );
    let (exit, stderr) = d.cli_err(&[
        "license",
        "add",
        "--va",
        "acme/Default",
        "--tag",
        "regid.2026-01.com.example.LATE",
        "--quantity",
        "1",
    ]);
    assert_eq!(exit, 1, "{stderr}");
    assert_names(&stderr, &["store_unavailable", disk.cause()]);

    // Reads still answer, and show every acknowledged write.
    let acknowledged: Vec<&Device> = filled.registered.iter().chain(&filled.reported).collect();
    assert_acknowledged_present(&d, &acknowledged, "on the full disk");
    let shown_before_restart = stored_devices(&d);

    // A stop cannot flush: the daemon says so and exits with an error, not a crash.
    let status = d.stop_status().expect("the daemon exits after SIGTERM");
    assert!(
        status.code().is_some_and(|c| c != 0),
        "a daemon whose final flush failed must exit with an error code, not {status}"
    );
    assert_names(&d.log(), &["final flush of the store failed", disk.cause()]);

    // With room again, the store opens and holds every acknowledged write.
    disk.make_room(&mut d);
    d.start_again();
    let status = d.cli_json(&["status"]);
    assert_eq!(
        status["unreadable_records"],
        Value::Array(Vec::new()),
        "{status:#}"
    );
    assert_acknowledged_present(&d, &acknowledged, "after the restart");

    // Records and their events were committed together, and the token counts what is stored.
    let stored = stored_devices(&d);
    let events = d.cli_json(&[
        "events",
        "--action",
        "device.register",
        "--limit",
        "1000000",
    ]);
    let mut registered: Vec<String> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            e["device"]
                .as_str()
                .expect("the event's device")
                .to_string()
        })
        .collect();
    registered.sort();
    let mut listed: Vec<String> = stored.keys().cloned().collect();
    listed.sort();
    assert_eq!(listed, registered, "devices and their registration events");
    let uses = d
        .cli_json(&["token", "list"])
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["id"] == token_id.as_str())
        .expect("the token")["uses"]
        .as_u64()
        .expect("uses");
    assert_eq!(
        uses,
        stored.len() as u64,
        "the token's uses and the devices"
    );
    println!(
        "full disk: {} device(s) listed on the full disk, {} after the restart, {} acknowledged",
        shown_before_restart.len(),
        stored.len(),
        4 + filled.registered.len()
    );

    // And the satellite writes again.
    rt.block_on(register(&url(&d), &d.ca_pem, &secret, "AFTER0"))
        .expect("a registration once there is room again");
    d.stop();
}
