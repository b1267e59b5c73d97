//! `satellite loadgen`: registers simulated devices and sends usage reports over real TLS,
//! then prints throughput, latency percentiles, errors and the server's memory. A thin shell
//! over [`crate::loadgen`]; `docs/benchmarks.md` shows it in use.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::loadgen::{self, Options, Target};

/// Load-test a satellite (or the bare baseline server of the benchmarks).
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// The device URL, e.g. https://127.0.0.1:8443.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// CA certificate that signed the server's certificate (the satellite's `ca.pem`).
    #[arg(long, value_name = "FILE")]
    pub ca: PathBuf,
    /// Registration token with at least --devices uses left (`satellite token create`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SATELLITE_REGISTRATION_TOKEN",
        hide_env_values = true,
        required_unless_present = "baseline_identity"
    )]
    pub token: Option<String>,
    /// Drive the bare baseline server (examples/baseline.rs) instead of a satellite: DIR holds
    /// the client certificate it signed (`client.pem`, `client.key`).
    #[arg(long, value_name = "DIR", conflicts_with = "token")]
    pub baseline_identity: Option<PathBuf>,
    /// Devices to register, each with a fresh TLS handshake.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub devices: usize,
    /// Usage reports to send in the timed phase (after the warm-up).
    #[arg(long, value_name = "M", default_value_t = 10_000)]
    pub reports: u64,
    /// Requests in flight at once; kept-alive connections while reporting.
    #[arg(long, value_name = "C", default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds of reporting before the timed phase starts.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub warmup: f64,
    /// Entitlement tag the devices report (one unit each).
    #[arg(long, value_name = "TAG", default_value = "loadgen")]
    pub tag: String,
    /// Send reports at this fixed total rate (per second) and measure latency from each
    /// report's intended send time; default: as fast as the server answers.
    #[arg(long, value_name = "PER_SEC")]
    pub rate: Option<f64>,
    /// Process id of the server, for its resident memory and CPU time per operation.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// No progress line on stderr (the default when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `satellite loadgen`. Exits non-zero, after printing the report, if any request
/// failed: figures with errors are not comparable.
pub async fn run(args: LoadgenArgs, json: bool) -> Result<()> {
    let ca_pem = read(&args.ca)?;
    let target = match (&args.baseline_identity, args.token) {
        (Some(dir), _) => Target::Baseline {
            cert_pem: read(&dir.join("client.pem"))?,
            key_pem: read(&dir.join("client.key"))?,
        },
        (None, Some(token)) => Target::Satellite { token },
        (None, None) => bail!("give a registration token with --token"),
    };
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        bail!("--warmup must be zero or more seconds");
    }
    let options = Options {
        url: args.url,
        ca_pem,
        target,
        devices: args.devices,
        reports: args.reports,
        concurrency: args.concurrency,
        warmup: Duration::from_secs_f64(args.warmup),
        tag: args.tag,
        rate: args.rate,
        server_pid: args.server_pid,
        progress: !args.quiet && std::io::stderr().is_terminal(),
    };
    let report = loadgen::run(&options).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    let failures = report.failures();
    if failures > 0 {
        bail!("{failures} requests failed; see the errors above");
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
