//! Phase 2, usage reports: `concurrency` lean connections ([`super::conn`]), each one
//! device with one request in flight, on `threads` current-thread runtimes of their own.
//!
//! The reporting connections do not run on the command's multi-thread runtime: a
//! current-thread runtime per generator thread has no work stealing and no cross-thread
//! wake-ups, so one thread drives every connection from one core, and `taskset` can pin the
//! generator to that core while the server has the other (`benches/compare.sh`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::body::UsageBody;
use super::conn::{Connection, Endpoint};
use super::report::PhaseReport;
use super::server::CpuClock;
use super::stats::Tally;
use super::workers::{Counters, Progress};
use super::{LoadgenError, Options, Target};
use crate::agent::AgentIdentity;
use crate::pki;

/// How often a connection serializes its report again with a new `measured_at`: a device's
/// clock reads to the second, and so does the generator's.
const REFRESH_MEASURED_AT: Duration = Duration::from_secs(1);

/// Warm-up, then `reports` reports shared by `concurrency` connections.
pub(super) async fn report_all(
    options: &Options,
    identities: &[AgentIdentity],
) -> Result<PhaseReport, LoadgenError> {
    let endpoint = Arc::new(Endpoint::usage(&options.url)?);
    let mut groups: Vec<Vec<Connection>> = (0..options.threads).map(|_| Vec::new()).collect();
    for w in 0..options.concurrency {
        let config = client_config(options, identities.get(w))?;
        let connection = Connection::new(Arc::clone(&endpoint), config, options.http1_only);
        groups[w % options.threads].push(connection);
    }
    let plan = Arc::new(ReportPlan {
        t0: Instant::now() + options.warmup,
        total: options.reports,
        rate: options.rate,
        tag: options.tag.clone(),
        per_worker: (options.reports as usize / options.concurrency) + 1,
    });
    let next = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(options.progress, "usage reports", options.reports);
    let mut threads = Vec::with_capacity(groups.len());
    for group in groups.into_iter().filter(|g| !g.is_empty()) {
        let shared = (Arc::clone(&plan), Arc::clone(&next), progress.counters());
        threads.push(generator_thread(group, shared)?);
    }
    let t0 = plan.t0;
    tokio::time::sleep_until(t0).await;
    let cpu = CpuClock::start(options.server_pid);
    let mut tally = Tally::with_capacity(options.reports as usize);
    let mut warmup = Tally::default();
    let mut last = t0;
    for thread in threads {
        let results = thread
            .await
            .expect("a load generator thread stopped without its results");
        for (t, w, finished) in results {
            tally.merge(t);
            warmup.merge(w);
            last = last.max(finished);
        }
    }
    let cpu = cpu.stop();
    progress.finish();
    let from = if options.rate.is_some() {
        "intended_send"
    } else {
        "send"
    };
    Ok(PhaseReport::new(tally, last - t0, cpu, &warmup, from))
}

/// The TLS configuration of reporting connection `w`: its registered device's identity
/// against a satellite, the one client certificate the baseline signed against the baseline.
fn client_config(
    options: &Options,
    identity: Option<&AgentIdentity>,
) -> Result<Arc<rustls::ClientConfig>, LoadgenError> {
    let invalid = |e: String| LoadgenError::Invalid(e);
    match (&options.target, identity) {
        (Target::Satellite { .. }, Some(id)) => {
            pki::client_config_with_identity(&id.ca_pem, &id.cert_pem, &id.key_pem)
                .map_err(|e| invalid(format!("device identity: {e}")))
        }
        (Target::Baseline { cert_pem, key_pem }, _) => {
            pki::client_config_with_identity(&options.ca_pem, cert_pem, key_pem)
                .map_err(|e| invalid(format!("baseline identity: {e}")))
        }
        (Target::Satellite { .. }, None) => {
            Err(invalid("not enough devices registered to report".into()))
        }
    }
}

/// What every reporting connection shares.
struct ReportPlan {
    /// The end of the warm-up: the measured phase starts here.
    t0: Instant,
    /// Reports in the measured phase, across all connections.
    total: u64,
    /// Reports per second across all connections (`None`: as fast as answered).
    rate: Option<f64>,
    tag: String,
    /// A tally's capacity: every connection's share, rounded up.
    per_worker: usize,
}

/// What one connection brings back: the measured tally, the warm-up tally, when it finished.
type WorkerResult = (Tally, Tally, Instant);

/// Starts one OS thread with a current-thread runtime driving `group`. The receiver yields
/// every connection's result once all of them are done.
fn generator_thread(
    group: Vec<Connection>,
    (plan, next, counters): (Arc<ReportPlan>, Arc<AtomicU64>, Arc<Counters>),
) -> Result<tokio::sync::oneshot::Receiver<Vec<WorkerResult>>, LoadgenError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LoadgenError::Invalid(format!("cannot start a runtime: {e}")))?;
    let (done, results) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("loadgen-report".to_owned())
        .spawn(move || {
            let results = runtime.block_on(async move {
                let mut set = JoinSet::new();
                for connection in group {
                    let shared = (Arc::clone(&plan), Arc::clone(&next), Arc::clone(&counters));
                    set.spawn(report_worker(connection, shared));
                }
                let mut results = Vec::with_capacity(set.len());
                while let Some(joined) = set.join_next().await {
                    results.push(joined.expect("a reporting worker panicked"));
                }
                results
            });
            let _ = done.send(results);
        })
        .map_err(|e| LoadgenError::Invalid(format!("cannot start a thread: {e}")))?;
    Ok(results)
}

/// One reporting connection: warms up until `t0`, then takes report numbers until `total` are
/// taken. At a fixed rate each report's latency counts from its intended send time, so a slow
/// answer delaying later reports is measured (no coordinated omission).
async fn report_worker(
    mut connection: Connection,
    (plan, next, counters): (Arc<ReportPlan>, Arc<AtomicU64>, Arc<Counters>),
) -> WorkerResult {
    let mut body = UsageBody::new(&plan.tag, 1, OffsetDateTime::now_utc());
    let mut built = Instant::now();
    let mut seq = 0u64;
    let mut warmup = Tally::default();
    while Instant::now() < plan.t0 {
        seq += 1;
        let sent = Instant::now();
        refresh(&mut body, &mut built, sent);
        match connection.post(body.with_seq(seq)).await {
            Ok(()) => warmup.ok(sent.elapsed()),
            Err((kind, message)) => warmup.error(kind, message),
        }
    }
    let mut tally = Tally::with_capacity(plan.per_worker);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= plan.total {
            break;
        }
        let start = match plan.rate {
            Some(rate) => {
                let intended = plan.t0 + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(intended).await;
                intended
            }
            None => Instant::now(),
        };
        seq += 1;
        refresh(&mut body, &mut built, start);
        match connection.post(body.with_seq(seq)).await {
            Ok(()) => tally.ok(start.elapsed()),
            Err((kind, message)) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tally.error(kind, message);
            }
        }
        counters.done.fetch_add(1, Ordering::Relaxed);
    }
    (tally, warmup, Instant::now())
}

/// Serializes the body again when its `measured_at` is a second old or more.
fn refresh(body: &mut UsageBody, built: &mut Instant, now: Instant) {
    if now.duration_since(*built) >= REFRESH_MEASURED_AT {
        body.refresh(OffsetDateTime::now_utc());
        *built = now;
    }
}
