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

/// How much more time each extension asks for, and how often one is sent.
const EXTEND: Duration = Duration::from_secs(15);
const EXTEND_EVERY: Duration = Duration::from_secs(5);

/// Runs `work` while telling systemd (when it supervises the daemon) every few seconds that it
/// needs more time, with `status` as the unit's status line: loading millions of devices at
/// start, or writing their snapshot at a stop, can outlast the unit's `TimeoutStartSec` and
/// `TimeoutStopSec`, which are sized for an ordinary start and stop. The first extension is
/// sent at once.
pub fn extending_timeout<T>(status: &str, work: impl FnOnce() -> T) -> T {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return work();
    }
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let status = status.to_owned();
    let ticker = std::thread::Builder::new()
        .name("systemd-extend".into())
        .spawn(move || {
            loop {
                let usec = u32::try_from(EXTEND.as_micros()).unwrap_or(u32::MAX);
                send(&[
                    NotifyState::ExtendTimeoutUsec(usec),
                    NotifyState::Status(&status),
                ]);
                match wait.recv_timeout(EXTEND_EVERY) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
        });
    let out = work();
    drop(done);
    if let Ok(ticker) = ticker {
        let _ = ticker.join();
    }
    out
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
