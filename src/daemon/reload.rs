//! SIGHUP: read and validate the configuration and the server certificate, then apply what may
//! change while serving, or keep everything as it was if anything is wrong.

use anyhow::{Context, Result};
use tracing::{info, warn};

use super::{Live, Reloader, device_timers};
use crate::pki::{self, Pki};
use crate::shutdown::Shutdown;

/// Applies each SIGHUP until shutdown.
pub(super) async fn reload_loop(
    mut live: Live,
    reloader: Reloader,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<()>,
    mut shutdown: Shutdown,
) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            request = requests.recv() => {
                if request.is_none() {
                    break;
                }
                crate::systemd::reloading();
                match reload(&mut live, &reloader) {
                    Ok(summary) => info!(%summary, "configuration reloaded"),
                    Err(e) => warn!(cause = %format!("{e:#}"), "reload refused; the previous configuration stays in force"),
                }
                crate::systemd::ready();
            }
        }
    }
}

/// The settings a reload applies to the running daemon; every other changed key is named in the
/// reload's summary as needing a restart (`Settings::changed_keys` lists them all).
const RELOADABLE: &[&str] = &[
    "log.level",
    "timers.certificate_validity",
    "timers.renew_after",
    "timers.report_interval",
    "timers.authorization_valid",
    "timers.deregister_after",
    "timers.clock_skew",
    "alerts.interval",
    "alerts.webhook",
    "tls",
    "rum.guessable_urls",
    "rum.allow",
    "cisco.ack_alert_after",
    "cisco.poll_interval",
    "cisco.retry_min",
    "cisco.retry_max",
    "cisco.timeout",
    "cisco.import_body",
];

/// Validates everything first, then applies: a bad configuration or certificate changes nothing.
fn reload(live: &mut Live, reloader: &Reloader) -> Result<String> {
    let new = (reloader.settings)()?;
    let pki = Pki::load_or_create(
        &new.data_dir.join("tls"),
        &pki::host_names(),
        live.app.now(),
    )
    .context("cannot reload the server certificate")?;
    let tls = match &new.tls {
        Some(files) => pki.server_config_with_files(&files.cert, &files.key)?,
        None => pki.server_config()?,
    };
    let unapplied: Vec<&str> = live
        .settings
        .changed_keys(&new)
        .into_iter()
        .filter(|key| !RELOADABLE.contains(key))
        .collect();
    (reloader.set_log_level)(&new.log.level)
        .map_err(|e| anyhow::anyhow!("cannot apply log.level: {e}"))?;
    live.app.set_timers(device_timers(&new.timers));
    *live.alerts.write().unwrap_or_else(|p| p.into_inner()) = new.alerts.clone();
    *live.rum.write().unwrap_or_else(|p| p.into_inner()) = new.rum.clone();
    live.cisco_ack_alert_after.store(
        new.cisco.ack_alert_after_days,
        std::sync::atomic::Ordering::Relaxed,
    );
    *live.cisco.write().unwrap_or_else(|p| p.into_inner()) = new.cisco.clone();
    live.cisco_wake.notify_one();
    live.tls.replace(tls);
    // `live.settings` stays what the daemon runs with: a key that needs a restart keeps its
    // running value, so the next reload names it again.
    let running = &mut live.settings;
    running.log.level = new.log.level;
    running.timers = crate::config::Timers {
        sweep_interval: running.timers.sweep_interval,
        ..new.timers
    };
    running.alerts = new.alerts;
    running.tls = new.tls;
    running.rum = new.rum;
    running.cisco = new.cisco;
    Ok(if unapplied.is_empty() {
        "log level, timers, alerts, [rum], [cisco] and server certificate applied".to_string()
    } else {
        format!(
            "log level, timers, alerts, [rum], [cisco] and server certificate applied; not applied until a restart: {}",
            unapplied.join(", ")
        )
    })
}
