//! `satellite loadgen`: registers simulated devices and sends usage reports over real TLS,
//! then prints throughput, latency percentiles, errors and the server's memory. A thin shell
//! over [`crate::loadgen`]; `docs/benchmarks.md` shows it in use.

use std::io::IsTerminal as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::Global;
use crate::loadgen::fill::{self, FillOptions};
use crate::loadgen::{self, Options, Target};

/// Load-test a satellite (or the bare baseline server of the benchmarks).
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = super::examples::LOADGEN
)]
pub struct LoadgenArgs {
    /// Offline tools (`fill`); without one, runs the load test.
    #[command(subcommand)]
    pub tool: Option<LoadgenTool>,
    /// The device URL, e.g. https://127.0.0.1:8443.
    #[arg(long, value_name = "URL", required = true)]
    pub url: Option<String>,
    /// CA certificate that signed the server's certificate (the satellite's `ca.pem`).
    #[arg(long, value_name = "FILE", required = true)]
    pub ca: Option<PathBuf>,
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
    /// Threads sending usage reports (each drives its share of the connections); one can
    /// be pinned to a core with `taskset`.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// Send usage reports over HTTP/1.1 only (the agent, and by default the generator, offers
    /// HTTP/2 first, which servers choose).
    #[arg(long)]
    pub http1: bool,
    /// Seconds of reporting before the timed phase starts.
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = parse_warmup)]
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

/// Offline load-generator tools.
#[derive(Debug, Subcommand)]
pub enum LoadgenTool {
    /// Fill an empty data directory's store with a large synthetic account (offline: the
    /// daemon must be stopped): one account `scale`, VAs, licenses and product instances.
    #[command(after_help = super::examples::LOADGEN_FILL)]
    Fill(FillArgs),
}

/// `satellite loadgen fill --data-dir DIR --devices N --vas V --tags T [--seed S]`.
#[derive(Debug, Args)]
pub struct FillArgs {
    /// Product instances to write.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub devices: usize,
    /// Virtual Accounts under the Default VA (a tree with fan-out 10).
    #[arg(long, value_name = "V", default_value_t = 1_000)]
    pub vas: usize,
    /// Distinct entitlement tags (one license entry per VA and tag).
    #[arg(long, value_name = "T", default_value_t = 100)]
    pub tags: usize,
    /// Seed of the generator: the same seed writes the same records.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Over-subscribe the pools of every Nth VA (¾ of their use); 0 for none.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub oversubscribe_every: usize,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `satellite loadgen`. Exits non-zero, after printing the report, if any request
/// failed: figures with errors are not comparable.
pub async fn run(args: LoadgenArgs, global: &Global) -> Result<()> {
    let json = global.json;
    if let Some(LoadgenTool::Fill(fill)) = args.tool {
        return run_fill(fill, global).await;
    }
    let (Some(url), Some(ca)) = (args.url, args.ca) else {
        bail!("give the device URL with --url and its CA with --ca");
    };
    let ca_pem = read(&ca)?;
    let target = match (&args.baseline_identity, args.token) {
        (Some(dir), _) => Target::Baseline {
            cert_pem: read(&dir.join("client.pem"))?,
            key_pem: read(&dir.join("client.key"))?,
        },
        (None, Some(token)) => Target::Satellite { token },
        (None, None) => bail!("give a registration token with --token"),
    };
    let options = Options {
        url,
        ca_pem,
        target,
        devices: args.devices,
        reports: args.reports,
        concurrency: args.concurrency,
        threads: args.threads,
        http1_only: args.http1,
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

/// `satellite loadgen fill`: refuses while a daemon answers on the data directory's admin
/// socket (sled's lock would refuse too, after a wait) or when the store is not empty.
async fn run_fill(args: FillArgs, global: &Global) -> Result<()> {
    let settings = global.settings()?;
    let socket = global.socket.clone().unwrap_or(settings.admin.socket);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        bail!(
            "a satellite is serving on {}; stop it first (the fill writes the store directly)",
            socket.display()
        );
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    let options = FillOptions {
        store_dir: settings.data_dir.join("store"),
        devices: args.devices,
        vas: args.vas,
        tags: args.tags,
        seed: args.seed,
        oversubscribed_every: args.oversubscribe_every,
        progress: (!args.quiet).then(|| std::io::stderr().is_terminal()),
        now: time::OffsetDateTime::now_utc(),
    };
    let summary = tokio::task::spawn_blocking(move || fill::fill(&options))
        .await
        .context("the fill thread failed")??;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "filled {}: account {}, {} VAs, {} licenses, {} devices ({} out of compliance) in \
             {:.1} s ({:.0} devices/s), store {:.1} MiB",
            settings.data_dir.display(),
            summary.account,
            summary.vas,
            summary.licenses,
            summary.devices,
            summary.out_of_compliance_devices,
            summary.seconds,
            summary.devices_per_second,
            summary.store_bytes as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}

/// Seconds of warm-up: zero or more.
fn parse_warmup(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(secs),
        _ => Err(format!("`{s}` is not zero or more seconds")),
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
