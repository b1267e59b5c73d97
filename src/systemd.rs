//! The systemd notify protocol (`Type=notify`): READY once the store is open and the listeners
//! are bound, RELOADING/READY around a reload, STOPPING on shutdown, and WATCHDOG keep-alives at
//! half of `WatchdogSec` from a task on the async runtime (so a wedged runtime stops them and
//! systemd restarts the daemon). Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, warn};

use crate::shutdown::Shutdown;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(cause = %e, "cannot notify systemd");
    }
}

pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Sends WATCHDOG=1 at half the interval systemd asked for, until shutdown.
pub fn spawn_watchdog(mut shutdown: Shutdown) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()?;
    let every = (interval / 2).max(Duration::from_millis(10));
    debug!(
        every_ms = every.as_millis() as u64,
        "systemd watchdog enabled"
    );
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tick.tick() => send(&[NotifyState::Watchdog]),
            }
        }
    }))
}
