//! Durable across power loss (SPEC §9): an answer to a change is written only after an `fsync`
//! or `fdatasync` of the store's journal has returned — the file each commit group is written
//! to before it is applied to sled (`src/store/journal.rs`) — not merely after a write, or
//! after sled's `sync_file_range` (which flushes neither the drive's write cache nor the file's
//! size).
//!
//! The real daemon runs under `strace -f`, which records the system calls of every thread in
//! the order they happen: a traced thread stops at each system call's entry and exit until
//! strace has printed it, so a call printed as returned before another is printed as entered
//! really returned first. Clients then make changes one at a time, each waiting for its answer:
//! operator commands over the admin socket, device registrations and usage reports over TLS.
//! From the trace, for every connection of a client, each write of the daemon to that
//! connection is taken with the last read from it before (the request). When the store's
//! journal was written between the two, the write is the acknowledgement of a change, and the
//! test demands an `fsync`/`fdatasync` of the journal that began after those journal writes had
//! returned, and returned before the acknowledgement was written. Every change the clients make
//! must be such an acknowledgement: a change that wrote no journal frame is counted short.
//!
//! The clients speak HTTP/1.1 so that everything the daemon writes to a connection after a
//! request is the answer to it (HTTP/2 also writes control frames of its own at any time).
//! Needs `strace` (Debian's `strace` package; `.ci/run` installs it) and the right to trace a
//! child process, which a root CI container has.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;

use satellite::agent::new_key_and_csr;
use satellite::protocol::device::{UsageLine, UsageRequest};

use crate::util::Daemon;

const TAG: &str = "regid.2026-01.com.example.POWER";
const DEVICES: usize = 2;
const REPORTS_PER_DEVICE: u64 = 12;
/// The system calls traced: reads and writes of connections, writes and syncs of files.
const TRACED: &str = "trace=read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg,\
                      pwrite64,pwritev,pwritev2,fsync,fdatasync,sync_file_range";

#[test]
fn every_acknowledgement_is_written_after_an_fsync_of_the_store() {
    let strace = Command::new("strace").arg("-V").output();
    assert!(
        strace.is_ok_and(|o| o.status.success()),
        "this test runs the daemon under strace: install it (`apt-get install strace`)"
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let trace_path = dir.path().join("daemon.trace");
    let data_dir = dir.path().join("data");
    let wrapper: Vec<String> = [
        "strace",
        "-f",
        "-qq",
        "-tt",
        "-yy",
        "-s",
        "0",
        "--seccomp-bpf",
        "-e",
        TRACED,
        "-o",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([trace_path.display().to_string()])
    .collect();
    let mut d = Daemon::start_custom(&data_dir, &wrapper);
    let daemon = Tracee::find(&trace_path);

    let mut changes = 0;
    for args in [
        &["account", "create", "acme", "--domain", "acme.com"][..],
        &[
            "license",
            "add",
            "--va",
            "acme/Default",
            "--tag",
            TAG,
            "--quantity",
            "100",
        ],
    ] {
        d.cli_ok(args);
        changes += 1;
    }
    let token = d.va("acme/Default").token().secret;
    changes += 1;
    changes += devices_register_and_report(&d, &token);

    let trace = daemon.stop(&mut d, &trace_path);
    let sled_log = data_dir.join("store").join("db").display().to_string();
    let (writes, unsynced) = sled_writes(&trace, &sled_log);
    assert!(
        writes > 0,
        "the trace shows no write to sled's log {sled_log}: a stop checkpoints, so there must \
         be some; the trace was not read right"
    );
    assert!(
        unsynced.is_empty(),
        "{} of {writes} writes to sled's log were not followed by an fsync or fdatasync of it \
         on the same thread (sled calls them stable and reuses the space they free; \
         vendor/sled/PATCHES.md): {:?}",
        unsynced.len(),
        unsynced.iter().take(3).collect::<Vec<_>>()
    );
    let journal = data_dir.join("store").join("journal").display().to_string();
    let verdict = check(
        &trace,
        &journal,
        d.device_addr.port(),
        &d.socket.display().to_string(),
    );
    println!(
        "power_loss: {} acknowledgements checked ({changes} changes made), {} syncs of the \
         store's journal, {} other writes to clients",
        verdict.acks, verdict.syncs, verdict.others
    );
    assert!(
        verdict.late.is_empty(),
        "{} of {} acknowledgements were written before an fsync of the store's journal had \
         returned; the first ones, with the trace from the request on:\n\n{}",
        verdict.late.len(),
        verdict.acks,
        verdict
            .late
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    assert!(
        verdict.acks >= changes,
        "the trace shows {} acknowledged writes but the clients made {changes} changes: the \
         trace was not read right",
        verdict.acks
    );
}

/// A value too large for sled's log goes to a blob file of its own, which sled writes just
/// before the log record that points to it (`vendor/sled/PATCHES.md`, change 3): the blob and
/// its directory must be synced before sled's log is written again, or a power cut could keep
/// the record and lose the blob. A child process (this test binary, running
/// [`large_value_probe`]) writes such a value through the store under strace.
#[test]
fn a_large_value_is_on_disk_before_the_log_can_point_to_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let trace_path = dir.path().join("probe.trace");
    let store = dir.path().join("store");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-tt", "-yy", "-s", "0", "-e"])
        .arg("trace=write,pwrite64,fsync,fdatasync,sync_file_range")
        .arg("-o")
        .arg(&trace_path)
        .arg(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "power_loss::large_value_probe", "--nocapture"])
        .args(["--test-threads=1"])
        .env(PROBE_ENV, &store)
        .output()
        .expect("strace runs (`apt-get install strace`)");
    assert!(
        out.status.success(),
        "the probe failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let trace = std::fs::read_to_string(&trace_path).expect("the trace");
    let (lines, calls) = parse(&trace);
    let blobs = format!("{}/blobs", store.display());
    let db = format!("{}/db", store.display());
    let blob_write = calls
        .iter()
        .rposition(|c| c.name == "write" && c.fd.starts_with(&format!("{blobs}/")))
        .unwrap_or_else(|| panic!("sled wrote no blob under {blobs}:\n{trace}"));
    let blob = calls[blob_write].fd.clone();
    let next_log_write = calls[blob_write..]
        .iter()
        .position(|c| c.fd == db && c.name.starts_with("pwrite"))
        .map(|i| blob_write + i)
        .unwrap_or_else(|| panic!("sled's log was not written after the blob:\n{trace}"));
    let synced = |fd: &str| {
        calls[blob_write..next_log_write]
            .iter()
            .any(|c| c.fd == fd && matches!(c.name.as_str(), "fsync" | "fdatasync") && c.ret == 0)
    };
    assert!(
        synced(&blob) && synced(&blobs),
        "the blob {blob} and its directory must be synced before sled's log is written again; \
         the trace from the blob's write on:\n{}",
        lines[calls[blob_write].entry..=calls[next_log_write].exit].join("\n")
    );
}

const PROBE_ENV: &str = "SATELLITE_LARGE_VALUE_PROBE";

/// The child side of [`a_large_value_is_on_disk_before_the_log_can_point_to_it`]: a value of
/// 512 KiB written through the store, which then closes (a checkpoint: sled's log written and
/// synced). Does nothing when run with the rest of the suite.
#[test]
fn large_value_probe() {
    let Some(dir) = std::env::var_os(PROBE_ENV) else {
        return;
    };
    let store = satellite::store::Store::open(Path::new(&dir), &["large"]).expect("the store");
    store
        .put_raw("large", b"value", &vec![7u8; 512 * 1024])
        .expect("a durable write");
    drop(store);
}

/// Registers [`DEVICES`] devices and sends each [`REPORTS_PER_DEVICE`] usage reports, one
/// request at a time over HTTP/1.1; returns how many changes were acknowledged.
fn devices_register_and_report(d: &Daemon, token: &str) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!("https://{}", d.device_addr);
    let mut changes = 0;
    for n in 0..DEVICES {
        let serial = format!("POWER{n:04}");
        let (key_pem, csr) = new_key_and_csr(&serial).expect("a key and a CSR");
        let request = crate::util::register_request(token, &serial, csr);
        let config = satellite::pki::client_config_trusting(&d.ca_pem).expect("CA config");
        let answer = rt.block_on(post(&http1(config), &url, "/v1/register", &request));
        changes += 1;
        let cert = answer["certificate"].as_str().expect("a certificate");
        let config = satellite::pki::client_config_with_identity(&d.ca_pem, cert, &key_pem)
            .expect("a device identity");
        let client = http1(config);
        for seq in 1..=REPORTS_PER_DEVICE {
            let report = UsageRequest {
                seq,
                measured_at: OffsetDateTime::now_utc(),
                usage: vec![UsageLine {
                    entitlement_tag: TAG.into(),
                    count: seq,
                }],
            };
            rt.block_on(post(&client, &url, "/v1/usage", &report));
            changes += 1;
        }
    }
    changes
}

/// An HTTPS client over `config` that speaks HTTP/1.1 only.
fn http1(config: Arc<rustls::ClientConfig>) -> reqwest::Client {
    let mut config = Arc::unwrap_or_clone(config);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .http1_only()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP/1.1 client")
}

/// POSTs `body` as JSON and returns the answer's body, asserting a 2xx.
async fn post<B: serde::Serialize>(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    body: &B,
) -> Value {
    let res = client
        .post(format!("{url}{path}"))
        .json(body)
        .send()
        .await
        .expect("an answer");
    let status = res.status();
    let text = res.text().await.expect("a body");
    assert!(status.is_success(), "POST {path} answered {status}: {text}");
    serde_json::from_str(&text).expect("a JSON body")
}

/// The daemon's own process under strace, so the test can stop it (strace blocks the signals
/// it is sent while it writes to a file) and never leaves it running.
struct Tracee {
    pid: Option<String>,
}

impl Tracee {
    /// Reads the daemon's process id from the trace: its first line is the daemon's main
    /// thread, the only one when it starts.
    fn find(trace: &Path) -> Tracee {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(trace).unwrap_or_default();
            if let Some(pid) = text
                .split_whitespace()
                .next()
                .filter(|_| text.contains('\n'))
            {
                return Tracee {
                    pid: Some(pid.to_owned()),
                };
            }
            assert!(Instant::now() < deadline, "strace wrote no trace");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon with SIGTERM, waits for strace to exit with its exit code 0, and
    /// returns the trace.
    fn stop(mut self, d: &mut Daemon, trace: &Path) -> String {
        signal(self.pid.take().as_deref(), "-TERM");
        d.stop();
        std::fs::read_to_string(trace).expect("the trace")
    }
}

impl Drop for Tracee {
    fn drop(&mut self) {
        signal(self.pid.as_deref(), "-KILL");
    }
}

fn signal(pid: Option<&str>, signal: &str) {
    if let Some(pid) = pid {
        let _ = Command::new("kill").arg(signal).arg(pid).status();
    }
}

/// What the trace shows.
#[derive(Debug, Default)]
struct Verdict {
    /// Writes to a client that followed a write to the store's journal made for its request.
    acks: usize,
    /// Completed syncs of the store's journal.
    syncs: usize,
    /// Writes to a client that answered no change (TLS handshakes and the like).
    others: usize,
    /// The acknowledgements without a sync before them, with their part of the trace.
    late: Vec<String>,
}

/// Checks every write to a client connection in `trace` (see the module docs). `db` is the
/// store's journal; clients are connections to the device listener on `port` or to the
/// admin socket at `socket`.
fn check(trace: &str, db: &str, port: u16, socket: &str) -> Verdict {
    let (lines, calls) = parse(trace);
    let local = format!("127.0.0.1:{port}->");
    let is_client = |fd: &str| {
        (fd.starts_with("TCP:[") && fd.contains(&local))
            || (fd.starts_with("UNIX-STREAM:[") && fd.contains(socket))
    };
    let store_writes: Vec<&Call> = calls
        .iter()
        .filter(|c| c.fd == db && c.name.starts_with("pwrite"))
        .collect();
    let syncs: Vec<&Call> = calls
        .iter()
        .filter(|c| c.fd == db && matches!(c.name.as_str(), "fsync" | "fdatasync") && c.ret == 0)
        .collect();
    let mut verdict = Verdict {
        syncs: syncs.len(),
        ..Verdict::default()
    };
    // The last request read from each client connection so far.
    let mut request: HashMap<&str, &Call> = HashMap::new();
    for call in calls.iter().filter(|c| is_client(&c.fd)) {
        if is_read(&call.name) {
            if call.ret > 0 {
                request.insert(&call.fd, call);
            }
            continue;
        }
        let Some(read) = request.get(call.fd.as_str()) else {
            verdict.others += 1;
            continue;
        };
        let written: Vec<&&Call> = store_writes
            .iter()
            .filter(|w| w.entry > read.exit && w.entry < call.entry)
            .collect();
        if written.is_empty() {
            verdict.others += 1;
            continue;
        }
        verdict.acks += 1;
        // The committer syncs the journal only once the group's frame is written; the sync must
        // start after a write made for this request returned.
        let covered = syncs.iter().any(|s| {
            s.entry > read.exit && s.exit < call.entry && written.iter().any(|w| w.exit < s.entry)
        });
        if !covered {
            verdict.late.push(lines[read.entry..=call.entry].join("\n"));
        }
    }
    verdict
}

/// The writes to sled's log file `db` in `trace`, and those that the same thread did not follow
/// with a successful `fsync` or `fdatasync` of the file as its next call on it (as sled 0.34's
/// own `sync_file_range` would not do: it flushes neither the drive's write cache nor the
/// file's size), by their trace lines.
fn sled_writes(trace: &str, db: &str) -> (usize, Vec<String>) {
    let (lines, calls) = parse(trace);
    let on_db: Vec<&Call> = calls.iter().filter(|c| c.fd == db).collect();
    let mut writes = 0;
    let mut unsynced = Vec::new();
    for (i, call) in on_db.iter().enumerate() {
        if !call.name.starts_with("pwrite") {
            continue;
        }
        writes += 1;
        let next = on_db[i + 1..].iter().find(|c| c.pid == call.pid);
        let synced = next.is_some_and(|c| {
            matches!(c.name.as_str(), "fsync" | "fdatasync") && c.ret == 0 && c.entry > call.exit
        });
        if !synced {
            unsynced.push(lines[call.entry].to_owned());
        }
    }
    (writes, unsynced)
}

fn is_read(name: &str) -> bool {
    matches!(name, "read" | "readv" | "recvfrom" | "recvmsg")
}

/// One system call: where in the trace it was entered and where it returned (the same line
/// unless another thread's call was printed in between), its descriptor's description (a
/// path, or a socket's addresses) and its result (-1 for an error or none).
#[derive(Debug)]
struct Call {
    /// The thread that made it.
    pid: String,
    name: String,
    fd: String,
    ret: i64,
    entry: usize,
    exit: usize,
}

/// Parses `strace -f -tt -yy` output: `PID TIME NAME(FD<DESC>, …) = RET`, split into
/// `… <unfinished ...>` and `PID TIME <... NAME resumed>…) = RET` when other threads' calls
/// came in between.
fn parse(trace: &str) -> (Vec<&str>, Vec<Call>) {
    let lines: Vec<&str> = trace.lines().collect();
    let mut calls = Vec::new();
    let mut pending: HashMap<&str, Call> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((pid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((_time, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        if rest.starts_with("<...") {
            if let Some(mut call) = pending.remove(pid) {
                call.exit = i;
                call.ret = result(rest);
                calls.push(call);
            }
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        let call = Call {
            pid: pid.to_owned(),
            name: name.to_owned(),
            fd: descriptor(args).to_owned(),
            ret: result(rest),
            entry: i,
            exit: i,
        };
        if rest.ends_with("<unfinished ...>") {
            pending.insert(pid, call);
        } else {
            calls.push(call);
        }
    }
    (lines, calls)
}

/// The description strace gives the first argument, `7</path>` or `9<TCP:[a->b]>`.
fn descriptor(args: &str) -> &str {
    let Some(start) = args.find('<') else {
        return "";
    };
    if !args[..start].bytes().all(|b| b.is_ascii_digit()) {
        return "";
    }
    let desc = &args[start + 1..];
    let end = if desc.contains(":[") {
        desc.find("]>").map(|e| e + 1)
    } else {
        desc.find('>')
    };
    end.map_or("", |e| &desc[..e])
}

/// The number after the last ` = `, or -1.
fn result(rest: &str) -> i64 {
    rest.rsplit_once(") = ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(-1)
}
