//! The kill -9 campaign (SPEC §9, Durability): a 2xx means on disk, and `kill -9` at any moment
//! loses nothing that was acknowledged and never leaves the store unopenable.
//!
//! One data directory, many cycles. Each cycle starts the real daemon, puts it under concurrent
//! load (devices registering, devices sending usage reports with increasing `seq`), records
//! every request that was answered 2xx, kills the daemon with SIGKILL after a random delay,
//! starts it again and checks that every acknowledged write is there.
//!
//! A report's usage count is its `seq`, so the usage the satellite holds for a device names the
//! report it stored: it must be one with a `seq` at or above the highest acknowledged one (a
//! later report that was sent but not answered may have landed too; that is allowed) and at or
//! below the highest one sent.
//!
//! `SATELLITE_CRASH_CYCLES` sets the number of cycles (default 20) and `SATELLITE_CRASH_SEED`
//! the seed of the kill delays and device choices (default: from the clock; always printed so
//! a failing run can be replayed). `benches/crash_campaign.sh` runs a long campaign.
//!
//! A power cut instead of a killed process: `SATELLITE_CRASH_DATA_DIR` puts the data directory
//! on a file system that can forget what was not synced (such as LazyFS), and
//! `SATELLITE_CRASH_AFTER_KILL` is a shell command run after each SIGKILL, before the restart,
//! that makes it forget (docs/reliability.md).

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;

use satellite::agent::{
    AgentError, AgentIdentity, DeviceClient, new_key_and_csr, register_raw, registration_client,
};
use satellite::protocol::device::{UsageLine, UsageRequest, codes};

use crate::devices::runtime;
use crate::util::Daemon;

const TAG: &str = "regid.2026-01.com.example.CRASH";
const DEFAULT_CYCLES: u64 = 20;
/// Concurrent clients per cycle: some register new devices, the others send usage reports.
const REGISTRARS: usize = 2;
const REPORTERS: usize = 6;
/// At most this many devices send reports in one cycle, so the load stays a burst of kept-alive
/// connections rather than a storm of handshakes as the campaign registers more devices.
const REPORTING_DEVICES: usize = 24;
/// The range of the random time between `ready` and SIGKILL.
const MIN_DELAY_MS: u64 = 3;
const MAX_DELAY_MS: u64 = 200;

/// A tiny xorshift64* generator: the campaign needs reproducible randomness, not a crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A device whose registration was acknowledged, and what the campaign knows of its reports.
struct Device {
    identity: AgentIdentity,
    /// The highest `seq` answered 2xx, or confirmed stored after a restart (0: none).
    acked: u64,
    /// The highest `seq` ever sent, answered or not.
    sent: u64,
}

/// What one client task did before the daemon died under it.
#[derive(Default)]
struct Outcome {
    registered: Vec<Device>,
    reported: Vec<Device>,
    acked_reports: u64,
    /// Answers that are neither a 2xx nor the broken connection of a killed daemon.
    unexpected: Vec<String>,
}

impl Outcome {
    /// Records why the task stopped. Once the daemon is killed every request fails to reach it;
    /// any other failure, or a failure before the kill, is a finding.
    fn stopped(&mut self, err: AgentError, killed: &AtomicBool, what: &str) {
        let after_kill = killed.load(Ordering::SeqCst);
        if !(after_kill && matches!(err, AgentError::Transport(_))) {
            self.unexpected.push(format!(
                "{what} failed {} the kill: {err}",
                if after_kill { "after" } else { "before" }
            ));
        }
    }
}

/// Registers new devices one after the other until the daemon is gone.
async fn registrar(
    url: String,
    ca_pem: String,
    token: String,
    serials: Arc<AtomicU64>,
    killed: Arc<AtomicBool>,
) -> Outcome {
    let mut out = Outcome::default();
    let http = registration_client(&ca_pem).expect("a registration client");
    loop {
        let serial = format!("CRASH{:07}", serials.fetch_add(1, Ordering::SeqCst));
        let (key_pem, csr) = new_key_and_csr(&serial).expect("a key and a CSR");
        let request = crate::util::register_request(&token, &serial, csr);
        match register_raw(&http, &url, &request).await {
            Ok(answer) => out.registered.push(Device {
                identity: AgentIdentity {
                    key_pem,
                    cert_pem: answer.certificate,
                    ca_pem: ca_pem.clone(),
                    instance_id: answer.instance_id,
                },
                acked: 0,
                sent: 0,
            }),
            Err(e) => {
                out.stopped(e, &killed, &format!("registering {serial}"));
                return out;
            }
        }
    }
}

/// Sends reports for `devices` in turn, each with the next `seq`, until the daemon is gone.
async fn reporter(url: String, mut devices: Vec<Device>, killed: Arc<AtomicBool>) -> Outcome {
    let mut out = Outcome::default();
    let clients: Vec<DeviceClient> = devices
        .iter()
        .map(|d| DeviceClient::new(&url, &d.identity).expect("a device client"))
        .collect();
    'run: while !devices.is_empty() {
        for (device, client) in devices.iter_mut().zip(&clients) {
            let seq = device.sent + 1;
            device.sent = seq;
            match client.usage(&report(seq)).await {
                Ok(answer) => {
                    if usage_of(&answer.entitlements) != Some(seq) {
                        out.unexpected.push(format!(
                            "device {} reported seq {seq} and was answered {answer:?}",
                            device.identity.instance_id
                        ));
                    }
                    device.acked = seq;
                    out.acked_reports += 1;
                }
                Err(e) => {
                    let what = format!("report {seq} of device {}", device.identity.instance_id);
                    out.stopped(e, &killed, &what);
                    break 'run;
                }
            }
        }
    }
    out.reported = devices;
    out
}

/// The report with `seq`: its usage count is the `seq` itself, so stored usage names its report.
fn report(seq: u64) -> UsageRequest {
    UsageRequest {
        seq,
        measured_at: OffsetDateTime::now_utc(),
        usage: vec![UsageLine {
            entitlement_tag: TAG.into(),
            count: seq,
        }],
    }
}

/// The count of [`TAG`] among a device's entitlements.
fn usage_of(entitlements: &[satellite::protocol::device::EntitlementState]) -> Option<u64> {
    entitlements
        .iter()
        .find(|e| e.entitlement_tag == TAG)
        .map(|e| e.count)
}

/// The campaign's totals, printed at the end (and by `benches/crash_campaign.sh`).
#[derive(Default, Debug)]
struct Totals {
    kills: u64,
    acked_registrations: u64,
    acked_reports: u64,
    /// Acknowledged writes missing after a restart. Must stay 0.
    losses: u64,
    /// Registrations stored although their answer never arrived (allowed).
    unacked_registrations_stored: u64,
    /// Devices whose stored report is newer than the last acknowledged one (allowed).
    unacked_reports_stored: u64,
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value:?} is not a number: {e}")),
    )
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_write() {
    let started = Instant::now();
    let cycles = env_u64("SATELLITE_CRASH_CYCLES").unwrap_or(DEFAULT_CYCLES);
    let seed = env_u64("SATELLITE_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_nanos() as u64
    });
    println!("crash campaign: {cycles} cycles, SATELLITE_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let rt = runtime();

    let mut d = match std::env::var_os("SATELLITE_CRASH_DATA_DIR") {
        Some(dir) => Daemon::start_custom(std::path::Path::new(&dir), &[]),
        None => Daemon::start(),
    };
    let after_kill = std::env::var("SATELLITE_CRASH_AFTER_KILL").ok();
    let token = d.account("acme").license(TAG, 1_000_000).token().secret;

    let serials = Arc::new(AtomicU64::new(0));
    let mut devices: Vec<Device> = Vec::new();
    let mut totals = Totals::default();
    let mut findings: Vec<String> = Vec::new();
    // Devices stored although their registration was never answered.
    let mut orphans: HashSet<String> = HashSet::new();
    // The devices the previous restart listed.
    let mut listed_before: HashSet<String> = HashSet::new();

    for cycle in 1..=cycles {
        let url = format!("https://{}", d.device_addr);
        let killed = Arc::new(AtomicBool::new(false));

        // This cycle's reporters take a random sample of the known devices, each device in one
        // task only, so that its `seq`s are sent in order.
        let mut groups: Vec<Vec<Device>> = (0..REPORTERS).map(|_| Vec::new()).collect();
        let mut idle: Vec<Device> = std::mem::take(&mut devices);
        for n in 0..REPORTING_DEVICES.min(idle.len()) {
            let pick = rng.between(0, idle.len() as u64 - 1) as usize;
            groups[n % REPORTERS].push(idle.swap_remove(pick));
        }
        let mut tasks = Vec::new();
        for group in groups {
            tasks.push(rt.spawn(reporter(url.clone(), group, Arc::clone(&killed))));
        }
        for _ in 0..REGISTRARS {
            tasks.push(rt.spawn(registrar(
                url.clone(),
                d.ca_pem.clone(),
                token.clone(),
                Arc::clone(&serials),
                Arc::clone(&killed),
            )));
        }

        // The one intended sleep: the random moment of the kill is the experiment.
        let delay = rng.between(MIN_DELAY_MS, MAX_DELAY_MS);
        std::thread::sleep(Duration::from_millis(delay));
        killed.store(true, Ordering::SeqCst);
        let status = d.kill9();
        totals.kills += 1;
        assert_eq!(
            status.signal(),
            Some(9),
            "cycle {cycle}: the daemon had already exited before SIGKILL ({status}); log:\n{}",
            d.log()
        );
        if let Some(command) = &after_kill {
            let run = std::process::Command::new("sh")
                .args(["-c", command])
                .status();
            assert!(
                run.as_ref().is_ok_and(|s| s.success()),
                "SATELLITE_CRASH_AFTER_KILL `{command}` failed: {run:?}"
            );
        }

        let mut touched = Vec::new();
        let mut fresh = 0;
        for task in tasks {
            let out = rt.block_on(task).expect("a client task");
            fresh += out.registered.len() as u64;
            totals.acked_registrations += out.registered.len() as u64;
            totals.acked_reports += out.acked_reports;
            findings.extend(
                out.unexpected
                    .into_iter()
                    .map(|u| format!("cycle {cycle}: {u}")),
            );
            touched.extend(out.registered);
            touched.extend(out.reported);
        }

        // The store must open: `start_again` waits for `ready` (and fails with the log if the
        // daemon gives up).
        d.start_again();
        let check = verify(
            &d,
            &rt,
            &mut touched,
            &idle,
            &mut orphans,
            &mut listed_before,
            cycle,
        );
        totals.losses += check.losses.len() as u64;
        totals.unacked_registrations_stored += check.unacked_registrations;
        totals.unacked_reports_stored += check.unacked_reports;
        findings.extend(check.losses);
        findings.extend(check.unexpected);
        println!(
            "cycle {cycle:>3}: killed after {delay:>3} ms, {fresh} new device(s), {} reporting, \
             {} device(s) in total, ok so far: {}",
            touched.len() as u64 - fresh,
            touched.len() + idle.len(),
            findings.is_empty()
        );
        devices.extend(touched);
        devices.extend(idle);
        if !findings.is_empty() {
            break;
        }
    }
    d.stop();

    let elapsed = started.elapsed();
    println!(
        "crash campaign result: seed {seed}, kills {}, acknowledged registrations {}, \
         acknowledged reports {}, acknowledged writes {}, losses {}, unacknowledged but stored: \
         {} registration(s) and {} report(s), {:.1} s",
        totals.kills,
        totals.acked_registrations,
        totals.acked_reports,
        totals.acked_registrations + totals.acked_reports,
        totals.losses,
        totals.unacked_registrations_stored,
        totals.unacked_reports_stored,
        elapsed.as_secs_f64()
    );
    assert!(
        findings.is_empty(),
        "the crash campaign found problems (seed {seed}):\n{}",
        findings.join("\n")
    );
    assert_eq!(totals.losses, 0);
    assert_eq!(totals.kills, cycles);
    assert!(
        totals.acked_registrations > 0 && totals.acked_reports > 0,
        "the campaign acknowledged too little to prove anything: {totals:?}"
    );
}

/// The most events the admin API returns in one listing.
const EVENTS_CAP: usize = 10_000;

/// At most five of `ids` and how many there are, for a readable failure.
fn sample<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    let all: Vec<&String> = ids.collect();
    if all.is_empty() {
        return String::new();
    }
    format!("{} ({:?}...)", all.len(), &all[..all.len().min(5)])
}

/// What one restart revealed.
#[derive(Default)]
struct Check {
    losses: Vec<String>,
    unexpected: Vec<String>,
    unacked_registrations: u64,
    unacked_reports: u64,
}

/// Checks the restarted daemon against what was acknowledged: every acknowledged registration
/// is listed, every device holds a report at or after its last acknowledged one, records and
/// their events were committed together, and no record is unreadable. The devices of this cycle
/// (`touched`) also resend their last acknowledged report, which must be answered as a repeat
/// or refused as stale, never applied anew; their `acked` then moves up to what was stored.
fn verify(
    d: &Daemon,
    rt: &tokio::runtime::Runtime,
    touched: &mut [Device],
    idle: &[Device],
    orphans: &mut HashSet<String>,
    listed_before: &mut HashSet<String>,
    cycle: u64,
) -> Check {
    let mut check = Check::default();
    let status = d.cli_json(&["status"]);
    if status["unreadable_records"] != Value::Array(Vec::new()) {
        check.unexpected.push(format!(
            "cycle {cycle}: unreadable records after the restart: {}",
            status["unreadable_records"]
        ));
    }

    let list = d.cli_json(&["device", "list", "--limit", "100000000"]);
    let stored: HashMap<String, Option<u64>> = list
        .as_array()
        .expect("the device list is an array")
        .iter()
        .map(|v| {
            let id = v["id"].as_str().expect("a device id").to_string();
            let usage = v["entitlements"]
                .as_array()
                .expect("entitlements")
                .iter()
                .find(|e| e["entitlement_tag"] == TAG)
                .map(|e| e["count"].as_u64().expect("a count"));
            (id, usage)
        })
        .collect();

    // A registration and its event are one transaction: after any crash, both or neither. The
    // admin API returns at most EVENTS_CAP events, the newest first; past that many, the check
    // covers the devices that appeared since the previous restart, whose events are the newest.
    let events = d.cli_json(&[
        "events",
        "--action",
        "device.register",
        "--limit",
        &EVENTS_CAP.to_string(),
    ]);
    let events = events.as_array().expect("the events are an array");
    let registered: HashSet<String> = events
        .iter()
        .map(|e| {
            e["device"]
                .as_str()
                .expect("the event's device")
                .to_string()
        })
        .collect();
    let listed: HashSet<String> = stored.keys().cloned().collect();
    let must_have_event: Vec<&String> = if events.len() < EVENTS_CAP {
        listed.iter().collect()
    } else {
        listed.difference(listed_before).collect()
    };
    let without_event = sample(
        must_have_event
            .into_iter()
            .filter(|id| !registered.contains(*id)),
    );
    let without_device = sample(registered.difference(&listed));
    if !without_event.is_empty() || !without_device.is_empty() {
        check.unexpected.push(format!(
            "cycle {cycle}: devices without their registration event: {without_event}; \
             registration events without their device: {without_device}"
        ));
    }
    listed_before.clone_from(&listed);

    let mut known = HashSet::new();
    let mut repeats = Vec::new();
    for device in touched.iter_mut() {
        known.insert(device.identity.instance_id.clone());
        let id = &device.identity.instance_id;
        match stored.get(id) {
            None => check.losses.push(format!(
                "cycle {cycle}: the acknowledged registration of device {id} is missing"
            )),
            Some(usage) => {
                let usage = usage.unwrap_or(0);
                if usage < device.acked {
                    check.losses.push(format!(
                        "cycle {cycle}: device {id} holds the report of seq {usage} but seq {} \
                         was acknowledged",
                        device.acked
                    ));
                } else if usage > device.sent {
                    check.unexpected.push(format!(
                        "cycle {cycle}: device {id} holds a report of seq {usage}, never sent \
                         (highest sent: {})",
                        device.sent
                    ));
                } else {
                    if usage > device.acked {
                        check.unacked_reports += 1;
                    }
                    if device.acked > 0 {
                        repeats.push((device.identity.clone(), device.acked, usage));
                    }
                    device.acked = usage;
                }
            }
        }
    }
    for device in idle {
        known.insert(device.identity.instance_id.clone());
        let id = &device.identity.instance_id;
        match stored.get(id) {
            None => check.losses.push(format!(
                "cycle {cycle}: the acknowledged registration of device {id} is missing"
            )),
            Some(usage) if usage.unwrap_or(0) < device.acked => check.losses.push(format!(
                "cycle {cycle}: device {id} holds the report of seq {usage:?} but seq {} was \
                 acknowledged",
                device.acked
            )),
            Some(usage) if usage.unwrap_or(0) > device.acked => check.unexpected.push(format!(
                "cycle {cycle}: device {id} sent nothing this cycle but now holds seq {usage:?} \
                 instead of {}",
                device.acked
            )),
            Some(_) => {}
        }
    }
    // What a restart loaded was on disk, acknowledged or not, and must stay there.
    for id in orphans.iter() {
        if !listed.contains(id) {
            check.unexpected.push(format!(
                "cycle {cycle}: device {id}, stored (unacknowledged) before an earlier kill, is \
                 gone"
            ));
        }
    }
    for id in listed.difference(&known) {
        if orphans.insert(id.clone()) {
            check.unacked_registrations += 1;
        }
    }

    let url = format!("https://{}", d.device_addr);
    let answers = rt.block_on(async {
        let mut tasks = Vec::new();
        for (identity, acked, usage) in repeats {
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let client = DeviceClient::new(&url, &identity).expect("a device client");
                let answer = client.usage(&report(acked)).await;
                (identity.instance_id, acked, usage, answer)
            }));
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("a repeat task"));
        }
        answers
    });
    for (id, acked, usage, answer) in answers {
        match answer {
            Ok(a) if usage == acked && usage_of(&a.entitlements) == Some(acked) => {}
            Err(e) if usage > acked && e.code() == Some(codes::STALE_SEQ) => {}
            other => check.unexpected.push(format!(
                "cycle {cycle}: device {id} resent its acknowledged seq {acked} (stored: seq \
                 {usage}) and got {other:?}"
            )),
        }
    }
    check
}
