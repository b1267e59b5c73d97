//! Named background work: periodic jobs with a status the CLI can show (`satellite status`).
//!
//! A worker is a [`Worker`] implementation run by [`spawn`], the one runner: it waits as the
//! worker says ([`Worker::next_wait`]: a fixed interval for the expiry sweep and the alerts, the
//! interval or the backoff for the sync worker, or idle until woken), does one round of work
//! and reports a one-line status, until shutdown. `sync now` and binding wake the sync worker
//! so it computes its wait again. The three periodic jobs of the satellite (expiry sweep,
//! alerts, upstream sync) are workers, so their health is visible in `status`; the only other
//! timer loop, the systemd watchdog ping (`systemd.rs`), has nothing to report.
//!
//! `workers` depends on `sync` (the sync worker and the sync alert read the engine), never the
//! other way: the engine wakes its worker through its own `Notify`.

pub mod alerts;
pub mod cisco;
pub mod expiry;
pub mod sync;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tracing::{info, warn};

use crate::protocol::admin::WorkerStatus;
use crate::shutdown::Shutdown;

/// When a worker's next round runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// After this long (zero: at once), or sooner if the worker is woken.
    For(Duration),
    /// Not until the worker is woken; `status` shows it idle, for this reason.
    Idle(String),
}

/// A periodic job: rounds of work, with a wait before each that the worker computes.
pub trait Worker: Send + 'static {
    const NAME: &'static str;

    /// Does one round of work; `Ok` carries a one-line summary for `status`.
    fn work(&mut self) -> impl std::future::Future<Output = Result<String, String>> + Send;

    /// How long to wait before the next round: asked after every round and whenever the
    /// worker is woken, so a worker whose schedule depends on its state (the sync worker's
    /// interval or backoff) computes it afresh each time.
    fn next_wait(&mut self) -> Wait;

    /// How long to wait before the first round: none, so that a worker's status is known as
    /// soon as the daemon starts, unless the worker keeps a schedule across restarts.
    fn first_wait(&mut self) -> Wait {
        Wait::For(Duration::ZERO)
    }

    /// Resolves when something asks the worker to compute its wait again (`sync now`, binding
    /// an upstream). Never, for a worker that only keeps its interval.
    fn woken(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        std::future::pending()
    }
}

/// The status of every worker, shared with the admin API.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<BTreeMap<&'static str, Entry>>>);

#[derive(Clone, Debug)]
struct Entry {
    state: &'static str,
    detail: String,
    last_run: Option<OffsetDateTime>,
    rounds: u64,
}

impl Registry {
    pub fn set(&self, name: &'static str, state: &'static str, detail: String) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(name).or_insert(Entry {
            state,
            detail: String::new(),
            last_run: None,
            rounds: 0,
        });
        entry.state = state;
        entry.detail = detail;
        if !matches!(state, "starting" | "stopped" | "idle") {
            entry.last_run = Some(OffsetDateTime::now_utc());
            entry.rounds += 1;
        }
    }

    pub fn statuses(&self) -> Vec<WorkerStatus> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(name, e)| WorkerStatus {
                name: name.to_string(),
                state: e.state.to_string(),
                detail: match e.last_run {
                    Some(t) => format!("{} (round {}, last {})", e.detail, e.rounds, stamp(t)),
                    None => e.detail.clone(),
                },
            })
            .collect()
    }
}

/// Runs `worker` until shutdown: wait as it says (or until it is woken and says again), a
/// round, again.
pub fn spawn<W: Worker>(
    mut worker: W,
    registry: Registry,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    registry.set(W::NAME, "starting", String::new());
    tokio::spawn(async move {
        let mut wait = worker.first_wait();
        loop {
            match until_due(&mut worker, &wait, &registry, &mut shutdown).await {
                Due::Stop => break,
                Due::Woken => {
                    wait = worker.next_wait();
                    continue;
                }
                Due::Now => {}
            }
            match worker.work().await {
                Ok(summary) => registry.set(W::NAME, "ok", summary),
                Err(e) => {
                    warn!(worker = W::NAME, cause = %e, "worker round failed");
                    registry.set(W::NAME, "failing", e);
                }
            }
            wait = worker.next_wait();
        }
        registry.set(W::NAME, "stopped", String::new());
        info!(worker = W::NAME, "worker stopped");
    })
}

/// Why a worker's wait ended.
enum Due {
    Now,
    Woken,
    Stop,
}

/// Waits out `wait`: a round that is due at once runs without looking at anything else.
/// Takes the worker by `&mut` so the waiting future is `Send` without asking workers to be
/// `Sync`.
async fn until_due<W: Worker>(
    worker: &mut W,
    wait: &Wait,
    registry: &Registry,
    shutdown: &mut Shutdown,
) -> Due {
    let sleep = match wait {
        Wait::For(d) if d.is_zero() => return Due::Now,
        Wait::For(d) => Some(*d),
        Wait::Idle(reason) => {
            registry.set(W::NAME, "idle", reason.clone());
            None
        }
    };
    let sleep = async {
        match sleep {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown.wait() => Due::Stop,
        _ = worker.woken() => Due::Woken,
        _ = sleep => Due::Now,
    }
}

/// When a round ran, for `status`: RFC 3339, whole seconds, so that it carries its date.
fn stamp(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::{Notify, mpsc};

    use super::*;

    /// Idle until woken with `due` set; then one round at once.
    struct OnDemand {
        due: Arc<AtomicBool>,
        wake: Arc<Notify>,
        rounds: mpsc::UnboundedSender<()>,
    }

    impl Worker for OnDemand {
        const NAME: &'static str = "on-demand";

        async fn work(&mut self) -> Result<String, String> {
            let _ = self.rounds.send(());
            Ok("done".into())
        }

        fn next_wait(&mut self) -> Wait {
            if self.due.swap(false, Ordering::SeqCst) {
                Wait::For(Duration::ZERO)
            } else {
                Wait::Idle("nothing to do".into())
            }
        }

        fn first_wait(&mut self) -> Wait {
            self.next_wait()
        }

        fn woken(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
            self.wake.notified()
        }
    }

    #[tokio::test]
    async fn an_idle_worker_runs_a_round_when_woken_and_stops_on_shutdown() {
        let (due, wake) = (Arc::new(AtomicBool::new(false)), Arc::new(Notify::new()));
        let (tx, mut rounds) = mpsc::unbounded_channel();
        let registry = Registry::default();
        let (trigger, shutdown) = crate::shutdown::channel();
        let worker = OnDemand {
            due: due.clone(),
            wake: wake.clone(),
            rounds: tx,
        };
        let task = spawn(worker, registry.clone(), shutdown);
        let state = || registry.statuses()[0].state.clone();
        let idle = async {
            while state() != "idle" {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), idle)
            .await
            .expect("the worker goes idle");
        // Woken without being due: it computes its wait again and stays idle.
        wake.notify_one();
        due.store(true, Ordering::SeqCst);
        wake.notify_one();
        // Bounded, so that a runner that misses the wake fails the test instead of hanging it.
        tokio::time::timeout(Duration::from_secs(30), rounds.recv())
            .await
            .expect("the wake runs a round")
            .expect("a round after the wake");
        assert!(rounds.try_recv().is_err(), "exactly one round");
        trigger.trigger();
        task.await.expect("the runner ends");
        let status = &registry.statuses()[0];
        assert_eq!(
            (status.name.as_str(), status.state.as_str()),
            ("on-demand", "stopped")
        );
    }
}
