//! What a run measured, printed for people or as JSON (`--json`) for scripts such as
//! `benches/compare.sh`. The JSON field names are what those scripts read: add fields, do not
//! rename them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::server::CpuTimes;
use super::stats::{Latency, Tally};

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    /// `satellite` or `baseline`.
    pub mode: &'static str,
    pub concurrency: usize,
    /// The fixed rate asked for, if any (reports per second).
    pub rate: Option<f64>,
    pub warmup_secs: f64,
    pub registrations: PhaseReport,
    /// Absent when no reports were asked for.
    pub usage: Option<PhaseReport>,
    /// Absent without a server pid.
    pub server: Option<ServerReport>,
}

/// One phase: fixed count of requests, `concurrency` at a time.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// Timed requests sent (successes plus failures).
    pub requests: u64,
    pub ok: u64,
    /// Failed timed requests by kind: the satellite's error code (`stale_seq`, ...),
    /// `http_NNN` for a bare status, `transport` (connect, TLS, reset, timeout) or `unexpected`.
    pub errors: BTreeMap<String, u64>,
    /// The first message of each error kind.
    pub error_examples: BTreeMap<String, String>,
    /// From the start of the timed part to the last answer.
    pub elapsed_secs: f64,
    /// Successful requests per second.
    pub per_sec: f64,
    /// Latency of successful requests.
    pub latency_ms: Latency,
    /// `send` (closed loop) or `intended_send` (fixed rate: includes time queued behind a
    /// slow server).
    pub latency_from: &'static str,
    /// Requests of the warm-up, not counted above.
    pub warmup_requests: u64,
    pub warmup_errors: u64,
    /// Server CPU time (user + system, all threads) during the timed part, if known.
    pub server_cpu_secs: Option<f64>,
    /// Server CPU time per successful request, in microseconds.
    pub server_cpu_us_per_op: Option<f64>,
    /// Server CPU time over the phase's wall time: the server's cores kept busy (1.0 is one
    /// core). A saturated single-core server is near 1; below 0.85 the generator, not the
    /// server, set the pace (SPEC §10).
    pub server_busy_cores: Option<f64>,
    /// This generator's own CPU time (all threads) during the timed part.
    pub generator_cpu_secs: Option<f64>,
    /// The generator's CPU time over the phase's wall time.
    pub generator_busy_cores: Option<f64>,
}

/// The server process after the run.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    pub pid: u32,
    /// Resident memory at the end (`VmRSS`).
    pub rss_kib: u64,
    /// The most it was ever resident (`VmHWM`).
    pub peak_rss_kib: u64,
}

impl PhaseReport {
    pub(super) fn new(
        mut tally: Tally,
        elapsed: Duration,
        cpu: CpuTimes,
        warmup: &Tally,
        latency_from: &'static str,
    ) -> PhaseReport {
        let ok = tally.successes();
        let secs = elapsed.as_secs_f64();
        let busy = |c: Option<Duration>| c.filter(|_| secs > 0.0).map(|c| c.as_secs_f64() / secs);
        let server_cpu = cpu.server;
        PhaseReport {
            requests: ok + tally.failures(),
            ok,
            errors: tally.errors(),
            error_examples: tally.error_examples(),
            elapsed_secs: secs,
            per_sec: if secs > 0.0 { ok as f64 / secs } else { 0.0 },
            latency_ms: tally.latency(),
            latency_from,
            warmup_requests: warmup.successes() + warmup.failures(),
            warmup_errors: warmup.failures(),
            server_cpu_secs: server_cpu.map(|c| c.as_secs_f64()),
            server_cpu_us_per_op: server_cpu
                .filter(|_| ok > 0)
                .map(|c| c.as_secs_f64() * 1e6 / ok as f64),
            server_busy_cores: busy(cpu.server),
            generator_cpu_secs: cpu.generator.map(|c| c.as_secs_f64()),
            generator_busy_cores: busy(cpu.generator),
        }
    }

    fn failures(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl Report {
    /// Failed timed requests of both phases.
    pub fn failures(&self) -> u64 {
        self.registrations.failures() + self.usage.as_ref().map_or(0, PhaseReport::failures)
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let rate = match self.rate {
            Some(r) => format!(", fixed rate {r}/s"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{} at {}: concurrency {}{rate}",
            self.mode, self.url, self.concurrency
        );
        phase_text(&mut out, "registrations", &self.registrations);
        if let Some(usage) = &self.usage {
            phase_text(&mut out, "usage reports", usage);
        }
        if let Some(s) = &self.server {
            let _ = writeln!(
                out,
                "server pid {}: resident {:.1} MiB (peak {:.1} MiB)",
                s.pid,
                s.rss_kib as f64 / 1024.0,
                s.peak_rss_kib as f64 / 1024.0
            );
        }
        out
    }
}

/// Below this many busy server cores a closed-loop run may be bounded by its generator
/// (SPEC §10), for a server on one core.
const SATURATED: f64 = 0.85;

fn phase_text(out: &mut String, name: &str, p: &PhaseReport) {
    if p.requests == 0 {
        let _ = writeln!(out, "{name}: none");
        return;
    }
    let _ = writeln!(
        out,
        "{name}: {} ok of {} in {:.2} s = {:.0}/s",
        p.ok, p.requests, p.elapsed_secs, p.per_sec
    );
    let l = &p.latency_ms;
    let _ = writeln!(
        out,
        "  latency ms (from {}): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        p.latency_from.replace('_', " "),
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max
    );
    if let (Some(cpu), Some(per_op)) = (p.server_cpu_secs, p.server_cpu_us_per_op) {
        let _ = writeln!(
            out,
            "  server CPU {cpu:.2} s = {per_op:.0} µs per operation"
        );
    }
    let cores = |c: Option<f64>| {
        c.map_or("unknown (no --server-pid)".to_owned(), |c| {
            format!("{c:.2}")
        })
    };
    let _ = writeln!(
        out,
        "  cores busy: server {}, generator {}",
        cores(p.server_busy_cores),
        cores(p.generator_busy_cores)
    );
    if p.latency_from == "send" && p.server_busy_cores.is_some_and(|c| c < SATURATED) {
        let _ = writeln!(
            out,
            "  note: the server's core was less than {:.0}% busy: if the generator's core is \
             full, this figure is the generator's limit, not the server's",
            SATURATED * 100.0
        );
    }
    if p.warmup_requests > 0 {
        let _ = writeln!(
            out,
            "  warm-up: {} requests ({} failed), not counted",
            p.warmup_requests, p.warmup_errors
        );
    }
    for (kind, n) in &p.errors {
        let example = p.error_examples.get(kind).map_or("", String::as_str);
        let _ = writeln!(out, "  ERRORS {kind}: {n} (e.g. {example})");
    }
}
