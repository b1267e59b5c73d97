//! The network sync worker (`sync` in `satellite status`): syncs with the upstream every
//! `sync.interval`, retries a failure after `sync.retry_min` doubling up to `sync.retry_max`
//! with jitter, and does nothing while the satellite is not bound.
//!
//! The schedule is derived from the engine's status on every round, so `sync now` (which
//! syncs at once through the same engine) and binding simply move it.

use std::sync::Arc;
use std::time::Duration;

use super::SyncEngine;
use crate::shutdown::Shutdown;
use crate::workers::Registry;

pub const NAME: &str = "sync";

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

/// How long until the next attempt; `None` while not bound.
fn next_wait(engine: &SyncEngine) -> Option<Duration> {
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

/// Runs until shutdown.
pub async fn run(engine: Arc<SyncEngine>, registry: Registry, mut shutdown: Shutdown) {
    loop {
        let wait = next_wait(&engine);
        if wait.is_none() {
            let bound = engine.app.read(|c| c.upstream_binding().is_some());
            registry.set(
                NAME,
                "idle",
                if bound {
                    "scheduled sync is off (`sync.interval = \"off\"`): `satellite sync now` or files"
                        .into()
                } else {
                    "not bound to an upstream".into()
                },
            );
        }
        let until = wait.map(|w| engine.app.now() + w);
        engine.set_next_attempt(until);
        let sleep = async {
            match wait {
                Some(w) => tokio::time::sleep(w).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = engine.wake.notified() => continue,
            _ = sleep => {}
        }
        match engine.sync_now("satellite:sync-worker").await {
            Ok(super::ImportOutcome::Applied { seq, applied }) => registry.set(
                NAME,
                "ok",
                format!(
                    "applied response {seq}: {} change(s) acknowledged, {} license(s) changed",
                    applied.acknowledged, applied.licenses_put
                ),
            ),
            Ok(super::ImportOutcome::AlreadyApplied { seq }) => {
                registry.set(NAME, "ok", format!("response {seq} was applied before"))
            }
            Err(e) => registry.set(NAME, "failing", e.to_string()),
        }
    }
    registry.set(NAME, "stopped", String::new());
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
