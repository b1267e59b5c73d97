//! The one place that handles Unix signals: SIGTERM and SIGINT start the shutdown sequence.
//! SIGHUP is caught so that it never kills the daemon by default; it re-reads nothing yet and
//! says so in the log (configuration reload arrives with the operations work).

use anyhow::{Context, Result};
use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::{Handle, Signals};
use tracing::{info, warn};

use crate::shutdown::ShutdownTrigger;

/// Listens for signals on a background task until [`Handle::close`].
pub fn spawn(trigger: ShutdownTrigger) -> Result<Handle> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("cannot install signal handlers")?;
    let handle = signals.handle();
    tokio::spawn(async move {
        while let Some(signal) = signals.next().await {
            match signal {
                SIGHUP => warn!(
                    "SIGHUP received: configuration reload is not supported by this version; restart to apply changes"
                ),
                _ => {
                    info!(signal, "shutdown requested");
                    trigger.trigger();
                }
            }
        }
    });
    Ok(handle)
}
