//! The one place that handles Unix signals. SIGTERM and SIGINT start the shutdown sequence
//! (telling systemd STOPPING=1 first); SIGHUP asks for a configuration reload, which never stops
//! the daemon.

use anyhow::{Context, Result};
use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::{Handle, Signals};
use tokio::sync::mpsc;
use tracing::info;

use crate::shutdown::ShutdownTrigger;

/// Listens for signals on a background task until [`Handle::close`]. Each SIGHUP sends one
/// message on `reload`.
pub fn spawn(trigger: ShutdownTrigger, reload: mpsc::UnboundedSender<()>) -> Result<Handle> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("cannot install signal handlers")?;
    let handle = signals.handle();
    tokio::spawn(async move {
        while let Some(signal) = signals.next().await {
            if signal == SIGHUP {
                info!("SIGHUP received: reloading the configuration");
                let _ = reload.send(());
            } else {
                info!(signal, "shutdown requested");
                crate::systemd::stopping();
                trigger.trigger();
            }
        }
    });
    Ok(handle)
}
