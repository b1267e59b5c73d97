//! Named background work: periodic jobs with a status the CLI can show (`satellite status`).
//!
//! A worker is a `Worker` implementation run by [`spawn`]: it does one round of work, reports a
//! one-line status, then waits for its interval or for shutdown. No ad-hoc spawn loops: every
//! periodic job of the satellite is a worker, so its health is visible.

pub mod alerts;
pub mod expiry;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tracing::{info, warn};

use crate::protocol::admin::WorkerStatus;
use crate::shutdown::Shutdown;

/// One round of a periodic job.
pub trait Worker: Send + 'static {
    const NAME: &'static str;

    /// Does one round of work; `Ok` carries a one-line summary for `status`.
    fn work(&mut self) -> impl std::future::Future<Output = Result<String, String>> + Send;

    /// How long to wait before the next round.
    fn interval(&self) -> Duration;
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

/// Runs `worker` until shutdown: a round, then its interval, again.
pub fn spawn<W: Worker>(
    mut worker: W,
    registry: Registry,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    registry.set(W::NAME, "starting", String::new());
    tokio::spawn(async move {
        loop {
            match worker.work().await {
                Ok(summary) => registry.set(W::NAME, "ok", summary),
                Err(e) => {
                    warn!(worker = W::NAME, cause = %e, "worker round failed");
                    registry.set(W::NAME, "failing", e);
                }
            }
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(worker.interval()) => {}
            }
        }
        registry.set(W::NAME, "stopped", String::new());
        info!(worker = W::NAME, "worker stopped");
    })
}

/// When a round ran, for `status`: RFC 3339, whole seconds, so that it carries its date.
fn stamp(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
