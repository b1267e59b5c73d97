//! The load generator behind `satellite loadgen`: many simulated devices over real TLS.
//!
//! Operators size a deployment with it and the benchmarks (`benches/compare.sh`,
//! `docs/benchmarks.md`) measure the satellite against a bare TLS server with it. A run has
//! two phases, each a fixed number of requests so that it always ends:
//!
//! 1. **Registrations**: `devices` devices register with a fresh key, a fresh HTTP client and
//!    therefore a fresh TLS handshake each, `concurrency` at a time. Keys and CSRs are made
//!    before the clock starts so the figure is the server's, not the generator's key
//!    generation.
//! 2. **Usage reports**: `concurrency` connections, each one device on one kept-alive
//!    mutual-TLS connection with one request in flight, report usage for `warmup` (not
//!    counted), then share `reports` reports. In the default closed loop a request's latency
//!    runs from its send; with a fixed `rate` it runs from the time the schedule meant it to
//!    be sent, so a stalled server is charged for the requests it delayed (no coordinated
//!    omission).
//!
//! Registrations use the agent's own code ([`crate::agent`]): what is measured is what a
//! device experiences. Reports use a lean client (`conn.rs`, `body.rs`) that puts the same
//! bytes on the wire as the agent (same TLS configuration and ALPN, same request, the body
//! serialized once and patched) without a general client's per-request work, on `threads`
//! current-thread runtimes: the generator must be able to saturate the bare server, or the
//! ratio measures the generator (SPEC §10). Against the bare baseline server ([`Target::Baseline`]) the same
//! bodies are posted over the same kind of connection, but nothing is registered: every
//! connection presents one client certificate the baseline signed with the same kind of CA.
//! Every phase reports both sides' busy cores (CPU time over wall time, `server.rs`).

mod body;
mod conn;
mod report;
mod reporting;
mod server;
mod stats;
mod workers;

pub mod fill;

use std::fmt;
use std::time::Duration;

pub use report::{PhaseReport, Report, ServerReport};
pub use stats::Latency;

/// Whom the generator talks to.
#[derive(Clone)]
pub enum Target {
    /// A satellite: devices register with this registration token (it needs at least
    /// `devices` uses left) and report with the identities they were issued.
    Satellite { token: String },
    /// The bare baseline server (`examples/baseline.rs`), which answers `204` to anything.
    /// Registrations post the same body and expect any 2xx; reports present this client
    /// certificate and key (PEM) on every connection.
    Baseline { cert_pem: String, key_pem: String },
}

impl fmt::Debug for Target {
    /// Never prints the token or the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Satellite { .. } => f.write_str("Satellite"),
            Target::Baseline { .. } => f.write_str("Baseline"),
        }
    }
}

/// One run of the load generator.
#[derive(Debug, Clone)]
pub struct Options {
    /// The device URL, `https://HOST:PORT`.
    pub url: String,
    /// The CA certificate (PEM) that signed the server's certificate.
    pub ca_pem: String,
    pub target: Target,
    /// Devices to register (phase 1). Against a satellite, at least `concurrency` when
    /// `reports` is not zero: each reporting worker is one of these devices.
    pub devices: usize,
    /// Usage reports in the timed part of phase 2.
    pub reports: u64,
    /// Requests in flight at once, in both phases; in phase 2, kept-alive connections.
    pub concurrency: usize,
    /// Threads driving the reporting connections, each a current-thread runtime; one is
    /// enough to saturate a one-core bare server and can be pinned with `taskset`.
    pub threads: usize,
    /// Report over HTTP/1.1 only, instead of offering HTTP/2 first as the agent does.
    pub http1_only: bool,
    /// How long phase 2 runs before its clock starts.
    pub warmup: Duration,
    /// The entitlement tag every report uses (one unit).
    pub tag: String,
    /// Reports per second of the whole run, or `None` for as fast as the server answers.
    pub rate: Option<f64>,
    /// The server's process id, for its memory and CPU time (same machine only).
    pub server_pid: Option<u32>,
    /// Print a progress line on stderr.
    pub progress: bool,
}

/// Why a run could not be made or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The options cannot work; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// The server refused in a way that no later request can succeed (a bad or used-up
    /// token, for example); the message is the server's.
    #[error("stopped during {phase}: {reason}")]
    Aborted { phase: &'static str, reason: String },
}

impl Options {
    fn check(&self) -> Result<(), LoadgenError> {
        let invalid = |m: String| Err(LoadgenError::Invalid(m));
        if self.concurrency == 0 {
            return invalid("--concurrency must be at least 1".into());
        }
        if self.threads == 0 {
            return invalid("--threads must be at least 1".into());
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return invalid(format!("--rate must be a positive number, got {rate}"));
        }
        if self.tag.is_empty() || self.tag.contains(char::is_whitespace) {
            return invalid(format!("--tag {:?} must be a non-empty word", self.tag));
        }
        if matches!(self.target, Target::Satellite { .. })
            && self.reports > 0
            && self.devices < self.concurrency
        {
            return invalid(format!(
                "--devices ({}) must be at least --concurrency ({}): every reporting \
                 connection is a registered device with its own certificate",
                self.devices, self.concurrency
            ));
        }
        Ok(())
    }
}

/// Runs both phases and reports what happened. Failed requests are counted, not fatal: the
/// caller decides what a run with errors is worth (`satellite loadgen` exits non-zero).
pub async fn run(options: &Options) -> Result<Report, LoadgenError> {
    options.check()?;
    let (registrations, identities) = workers::register_all(options).await?;
    let usage = if options.reports > 0 {
        Some(reporting::report_all(options, &identities).await?)
    } else {
        None
    };
    let server = options.server_pid.and_then(|pid| {
        server::memory(pid).map(|m| ServerReport {
            pid,
            rss_kib: m.rss_kib,
            peak_rss_kib: m.peak_kib,
        })
    });
    Ok(Report {
        url: options.url.clone(),
        mode: match options.target {
            Target::Satellite { .. } => "satellite",
            Target::Baseline { .. } => "baseline",
        },
        concurrency: options.concurrency,
        rate: options.rate,
        warmup_secs: options.warmup.as_secs_f64(),
        registrations,
        usage,
        server,
    })
}
