//! Phase 1, registrations, with the agent's own client; and the progress line of both phases.
//! Phase 2 is in [`super::reporting`].

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::report::PhaseReport;
use super::server::CpuClock;
use super::stats::Tally;
use super::{LoadgenError, Options, Target};
use crate::agent::{AgentError, AgentIdentity, new_key_and_csr, register_raw, registration_client};
use crate::protocol::device::{RegisterRequest, Udi, codes};

/// Refusals after which no registration can succeed: the run stops at the first one.
const FATAL_REGISTRATION_CODES: &[&str] = &[
    codes::INVALID_TOKEN,
    codes::TOKEN_EXPIRED,
    codes::TOKEN_REVOKED,
    codes::TOKEN_EXHAUSTED,
    codes::ACCOUNT_PENDING,
    codes::RATE_LIMITED,
];

/// A failed request: its kind (see [`super::PhaseReport::errors`]) and message.
type Failure = (String, String);

fn agent_failure(e: AgentError) -> Failure {
    let kind = match &e {
        AgentError::Refused { code, .. } => code.clone(),
        AgentError::Transport(_) => "transport".to_owned(),
        AgentError::Unexpected(_) => "unexpected".to_owned(),
        _ => "client".to_owned(),
    };
    (kind, e.to_string())
}

fn reqwest_failure(e: reqwest::Error) -> Failure {
    ("transport".to_owned(), e.without_url().to_string())
}

/// A registration prepared before the clock starts.
struct Job {
    request: RegisterRequest,
    key_pem: String,
    client: reqwest::Client,
}

/// Phase 1. Returns the phase report and the identities of the registered devices (none
/// against the baseline, which issues nothing).
pub(super) async fn register_all(
    options: &Options,
) -> Result<(PhaseReport, Vec<AgentIdentity>), LoadgenError> {
    let jobs = prepare_registrations(options)?;
    let total = jobs.len() as u64;
    let queue: JobQueue = Arc::new(std::sync::Mutex::new(jobs.into_iter().enumerate()));
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Progress::start(options.progress, "registrations", total);
    let cpu = CpuClock::start(options.server_pid);
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..options.concurrency.min(options.devices) {
        set.spawn(registration_worker(
            Arc::clone(&queue),
            Arc::clone(&stop),
            Arc::clone(&progress.counters),
            options.clone(),
        ));
    }
    let mut tally = Tally::with_capacity(options.devices);
    let mut identities = Vec::with_capacity(options.devices);
    let mut fatal = None;
    while let Some(joined) = set.join_next().await {
        let (t, issued, f) = joined.expect("a registration worker panicked");
        tally.merge(t);
        identities.extend(issued);
        fatal = fatal.or(f);
    }
    let elapsed = started.elapsed();
    let cpu = cpu.stop();
    progress.finish();
    if let Some(reason) = fatal {
        return Err(LoadgenError::Aborted {
            phase: "registrations",
            reason,
        });
    }
    identities.sort_by_key(|(i, _)| *i);
    let identities = identities.into_iter().map(|(_, id)| id).collect();
    let report = PhaseReport::new(tally, elapsed, cpu, &Tally::default(), "send");
    Ok((report, identities))
}

/// The registrations still to send, numbered, shared by the registration workers.
type JobQueue = Arc<std::sync::Mutex<std::iter::Enumerate<std::vec::IntoIter<Job>>>>;

/// Every device's key, CSR and request, made before the clock starts so that key generation
/// is not measured as the satellite's latency.
fn prepare_registrations(options: &Options) -> Result<Vec<Job>, LoadgenError> {
    let token = match &options.target {
        Target::Satellite { token } => token.clone(),
        Target::Baseline { .. } => "baseline".to_owned(),
    };
    // Serials are unique per run so that repeated runs against one satellite do not collide.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = &run[..8];
    let mut jobs = Vec::with_capacity(options.devices);
    for i in 0..options.devices {
        let udi = Udi {
            pid: "LOADGEN".to_owned(),
            serial: format!("LG{run}{i:07}"),
        };
        let (key_pem, csr) = new_key_and_csr(&format!("{} {}", udi.pid, udi.serial))
            .map_err(|e| LoadgenError::Invalid(e.to_string()))?;
        let client = registration_client(&options.ca_pem)
            .map_err(|e| LoadgenError::Invalid(e.to_string()))?;
        jobs.push(Job {
            request: RegisterRequest {
                token: token.clone(),
                udi,
                hostname: format!("loadgen-{i}"),
                product: "satellite loadgen".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                csr,
                force: false,
            },
            key_pem,
            client,
        });
    }
    Ok(jobs)
}

/// What one registration worker brings back: its tally, the identities issued to it (by job
/// number), and the refusal that stopped the run, if any.
type WorkerResult = (Tally, Vec<(usize, AgentIdentity)>, Option<String>);

/// One registration worker: takes jobs until the queue is empty or a fatal refusal stops
/// every worker.
async fn registration_worker(
    queue: JobQueue,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    options: Options,
) -> WorkerResult {
    let mut tally = Tally::default();
    let mut issued = Vec::new();
    let mut fatal = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
        let Some((i, job)) = next else { break };
        let sent = Instant::now();
        let result = register_one(&options, &job).await;
        drop(job.client);
        match result {
            Ok(identity) => {
                tally.ok(sent.elapsed());
                if let Some((cert_pem, instance_id)) = identity {
                    issued.push((
                        i,
                        AgentIdentity {
                            key_pem: job.key_pem,
                            cert_pem,
                            ca_pem: options.ca_pem.clone(),
                            instance_id,
                        },
                    ));
                }
            }
            Err((kind, message)) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                if FATAL_REGISTRATION_CODES.contains(&kind.as_str()) {
                    stop.store(true, Ordering::Relaxed);
                    fatal = Some(message.clone());
                }
                tally.error(kind, message);
            }
        }
        counters.done.fetch_add(1, Ordering::Relaxed);
    }
    (tally, issued, fatal)
}

/// One registration; against a satellite, the certificate and instance id it issued.
async fn register_one(options: &Options, job: &Job) -> Result<Option<(String, String)>, Failure> {
    match options.target {
        Target::Satellite { .. } => {
            let answer = register_raw(&job.client, &options.url, &job.request)
                .await
                .map_err(agent_failure)?;
            Ok(Some((answer.certificate, answer.instance_id)))
        }
        Target::Baseline { .. } => {
            let url = format!("{}/v1/register", options.url.trim_end_matches('/'));
            let response = job
                .client
                .post(url)
                .json(&job.request)
                .send()
                .await
                .map_err(reqwest_failure)?;
            let status = response.status();
            response.bytes().await.map_err(reqwest_failure)?;
            if !status.is_success() {
                return Err((format!("http_{}", status.as_u16()), status.to_string()));
            }
            Ok(None)
        }
    }
}

/// Requests done and failed so far, for the progress line.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) done: AtomicU64,
    pub(super) errors: AtomicU64,
}

/// A `\r` status line on stderr, twice a second, while a phase runs.
pub(super) struct Progress {
    counters: Arc<Counters>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub(super) fn start(enabled: bool, phase: &'static str, total: u64) -> Progress {
        let counters = Arc::new(Counters::default());
        let ticker = enabled.then(|| {
            let counters = Arc::clone(&counters);
            tokio::spawn(async move {
                let started = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tick.tick().await;
                    let done = counters.done.load(Ordering::Relaxed);
                    let errors = counters.errors.load(Ordering::Relaxed);
                    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\r{phase}: {done}/{total} ({rate:.0}/s), {errors} errors   "
                    );
                    let _ = err.flush();
                }
            })
        });
        Progress { counters, ticker }
    }

    /// The counters the workers advance.
    pub(super) fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    pub(super) fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{:72}\r", "");
            let _ = err.flush();
        }
    }
}
