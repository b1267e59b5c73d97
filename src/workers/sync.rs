//! The network sync worker (`sync` in `satellite status`): syncs with the upstream every
//! `sync.interval`, retries a failure after `sync.retry_min` doubling up to `sync.retry_max`
//! with jitter, and does nothing while the satellite is not bound.
//!
//! The schedule is derived from the engine's status whenever the worker computes its wait, so
//! `sync now` (which syncs at once through the same engine) and binding move it by waking the
//! worker (`SyncEngine::wake`).

use std::sync::Arc;
use std::time::Duration;

use super::{Wait, Worker};
use crate::sync::{ImportOutcome, SyncEngine};

/// The delay before retry number `failures` (1 = the first retry), jittered to between half
/// and all of `min(retry_max, retry_min × 2^(failures−1))`, so children of one upstream that
/// failed together do not retry together.
pub fn backoff(failures: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let delay = min.saturating_mul(1u32 << exp).min(max);
    delay.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

/// The network sync worker: one round is one `sync now`.
pub struct SyncWorker {
    pub engine: Arc<SyncEngine>,
}

impl SyncWorker {
    /// How long until the next attempt; `None` while not bound or while scheduled sync is off.
    fn due_in(&self) -> Option<Duration> {
        let engine = &self.engine;
        let binding = engine.app.read(|c| c.upstream_binding().cloned())?;
        let status = engine.status();
        let now = engine.app.now();
        let s = &engine.settings;
        let interval = s.interval?;
        let due = if status.failures > 0 {
            let last = status.last_attempt.unwrap_or(now);
            last + backoff(status.failures, s.retry_min, s.retry_max, random_unit())
        } else {
            match status.last_success.or(binding.last_success) {
                Some(t) => t + interval,
                None => now,
            }
        };
        Some(Duration::try_from(due - now).unwrap_or(Duration::ZERO))
    }
}

impl Worker for SyncWorker {
    const NAME: &'static str = "sync";

    async fn work(&mut self) -> Result<String, String> {
        match self.engine.sync_now("satellite:sync-worker").await {
            Ok(ImportOutcome::Applied { seq, applied }) => Ok(format!(
                "applied response {seq}: {} change(s) acknowledged, {} license(s) changed",
                applied.acknowledged, applied.licenses_put
            )),
            Ok(ImportOutcome::AlreadyApplied { seq }) => {
                Ok(format!("response {seq} was applied before"))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// The schedule is derived from the engine's status, and published for `sync status`.
    fn next_wait(&mut self) -> Wait {
        let wait = self.due_in();
        let now = self.engine.app.now();
        self.engine.set_next_attempt(wait.map(|w| now + w));
        match wait {
            Some(w) => Wait::For(w),
            None if self.engine.app.read(|c| c.upstream_binding().is_some()) => Wait::Idle(
                "scheduled sync is off (`sync.interval = \"off\"`): `satellite sync now` or files"
                    .into(),
            ),
            None => Wait::Idle("not bound to an upstream".into()),
        }
    }

    /// A restarted satellite keeps to its schedule: the next sync is due an interval after the
    /// last success, which the binding records.
    fn first_wait(&mut self) -> Wait {
        self.next_wait()
    }

    fn woken(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.engine.wake.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_jitters_within_half() {
        let (min, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(backoff(1, min, max, 1.0), Duration::from_secs(30));
        assert_eq!(backoff(2, min, max, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(3, min, max, 1.0), Duration::from_secs(120));
        assert_eq!(backoff(8, min, max, 1.0), Duration::from_secs(3600));
        assert_eq!(backoff(1000, min, max, 1.0), Duration::from_secs(3600));
        assert_eq!(backoff(1, min, max, 0.0), Duration::from_secs(15));
        assert_eq!(backoff(8, min, max, 0.0), Duration::from_secs(1800));
    }
}
