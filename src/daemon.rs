//! `satellite serve`: the start-up, reload and shutdown sequences, written as scripts.
//!
//! Start: is another satellite serving the data directory? → TCP listeners → data directory →
//! store → catalog → certificates → admin socket → print where everything is → READY → serve.
//! The ports are bound before anything is created, so a daemon that cannot listen leaves a new
//! data directory uncreated; every start-up failure names its cause and the configuration key
//! or command that fixes it. Reload (SIGHUP): read and validate the configuration and the server
//! certificate; apply log level, timers, alert settings, `[rum]` and the certificate, or keep
//! the old ones if anything is wrong. Stop (SIGTERM/SIGINT): STOPPING, stop accepting, drain open
//! requests within `shutdown.drain_timeout`, stop workers, flush the store, exit 0.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, UnixListener};
use tracing::{info, warn};

use crate::app::{App, Clock, SystemClock};
use crate::config::{AlertsSettings, Settings};
use crate::domain::AlertInputs;
use crate::pki::{self, Pki};
use crate::protocol::sync::SatelliteKey;
use crate::server::admin::{self, AdminCtx};
use crate::server::device;
use crate::server::limits::{self, RequestLimits};
use crate::server::listen::{self, Limits, TlsSource};
use crate::server::metrics::{self as server_metrics, Metrics, Observed};
use crate::server::ratelimit::FailureLimiter;
use crate::server::rum::{IngestKey, RumGate};
use crate::shutdown::{self, Shutdown, ShutdownTrigger};
use crate::store::StoreError;
use crate::workers::alerts::AlertsWorker;
use crate::workers::expiry::ExpiryWorker;
use crate::workers::sync::SyncWorker;
use crate::workers::{self, Registry};

/// The listeners the daemon serves on, bound before anything is served.
pub struct Listeners {
    pub device: TcpListener,
    pub admin_https: Option<TcpListener>,
    pub admin_socket: UnixListener,
}

/// Changes the log filter of the running process.
pub type SetLogLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// How a running daemon re-reads its configuration on SIGHUP.
pub struct Reloader {
    /// Reads and validates the configuration again (same file, same command-line overrides).
    pub settings: Box<dyn Fn() -> Result<Settings> + Send + Sync>,
    /// Changes the log filter.
    pub set_log_level: SetLogLevel,
}

/// What a reload may change while serving.
#[derive(Clone)]
struct Live {
    app: App,
    tls: TlsSource,
    alerts: Arc<RwLock<AlertsSettings>>,
    /// `[rum]`, read by the RUM endpoint on every report.
    rum: Arc<RwLock<crate::config::RumSettings>>,
    settings: Settings,
}

/// Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads.
pub async fn serve(settings: Settings, reloader: Reloader) -> Result<()> {
    let (trigger, shutdown) = shutdown::channel();
    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    let signals = crate::signals::spawn(trigger.clone(), reload_tx)?;
    let result = run(
        settings,
        Arc::new(SystemClock),
        Some((reloader, reload_rx)),
        trigger,
        shutdown,
    )
    .await;
    signals.close();
    result
}

/// Opens everything, binds the configured addresses and serves until `shutdown`.
pub async fn run(
    settings: Settings,
    clock: Arc<dyn Clock>,
    reload: Option<(Reloader, tokio::sync::mpsc::UnboundedReceiver<()>)>,
    _trigger: ShutdownTrigger,
    shutdown: Shutdown,
) -> Result<()> {
    let data_dir = settings.data_dir.clone();
    // Asked before binding: a second daemon with the same configuration would otherwise be
    // told that its ports are in use, not why.
    if let Some(pid) = App::store_holder(&data_dir.join("store")) {
        return Err(already_serving(&data_dir, Some(pid)));
    }
    let (device_listener, admin_https) = bind_tcp(&settings).await?;
    prepare_data_dir(&data_dir)?;
    info!(path = %data_dir.display(), "opening the store");
    let timers = device_timers(&settings.timers);
    let app = App::open(&data_dir.join("store"), clock.clone(), timers).map_err(|e| match e {
        StoreError::Locked { pid, .. } => already_serving(&data_dir, pid),
        other => anyhow::Error::from(other),
    })?;
    if !app.unreadable().is_empty() {
        warn!(
            count = app.unreadable().len(),
            "some records could not be read and are skipped; `satellite status` lists them"
        );
    }
    let pki = Pki::load_or_create(&data_dir.join("tls"), &pki::host_names(), clock.now())
        .context("cannot prepare the device CA and server certificate")?;
    let tls = match &settings.tls {
        Some(files) => pki.server_config_with_files(&files.cert, &files.key)?,
        None => pki.server_config()?,
    };
    let admin_socket = bind_socket(&settings.admin.socket, settings.admin.socket_mode)?;
    let listeners = Listeners {
        device: device_listener,
        admin_https,
        admin_socket,
    };
    let live = Live {
        app: app.clone(),
        tls: TlsSource::new(tls),
        alerts: Arc::new(RwLock::new(settings.alerts.clone())),
        rum: Arc::new(RwLock::new(settings.rum.clone())),
        settings: settings.clone(),
    };
    if let Some((reloader, requests)) = reload {
        tokio::spawn(reload_loop(
            live.clone(),
            reloader,
            requests,
            shutdown.clone(),
        ));
    }
    serve_live(settings, Arc::new(pki), live, listeners, shutdown).await?;
    app.wait_durable()
        .await
        .context("final flush of the store failed")?;
    info!("store flushed; satellite stopped");
    Ok(())
}

/// Serves on already-bound listeners until `shutdown`, then drains them.
pub async fn serve_on(
    settings: Settings,
    app: App,
    pki: Arc<Pki>,
    tls: Arc<rustls::ServerConfig>,
    listeners: Listeners,
    shutdown: Shutdown,
) -> Result<()> {
    let live = Live {
        app,
        tls: TlsSource::new(tls),
        alerts: Arc::new(RwLock::new(settings.alerts.clone())),
        rum: Arc::new(RwLock::new(settings.rum.clone())),
        settings: settings.clone(),
    };
    serve_live(settings, pki, live, listeners, shutdown).await
}

async fn serve_live(
    settings: Settings,
    pki: Arc<Pki>,
    live: Live,
    listeners: Listeners,
    shutdown: Shutdown,
) -> Result<()> {
    let app = live.app.clone();
    let tls = live.tls.clone();
    let device_addr = listeners.device.local_addr()?;
    let admin_addr = match &listeners.admin_https {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let mut described = vec![format!("devices      https://{device_addr}")];
    if let Some(a) = admin_addr {
        described.push(format!("admin        https://{a}"));
    }
    described.push(format!("admin socket {}", settings.admin.socket.display()));
    // Operators (and tests) read these lines to find the satellite.
    println!("satellite {}", env!("CARGO_PKG_VERSION"));
    println!("data         {}", settings.data_dir.display());
    for line in &described {
        println!("{line}");
    }
    println!("device CA    {}", pki.ca_path().display());
    println!("ready");
    crate::systemd::ready();
    let watchdog = crate::systemd::spawn_watchdog(shutdown.clone());

    let workers = Registry::default();
    let metrics = Metrics::new();
    // The satellite's Ed25519 signing key: signs sync messages and reservation codes, pinned
    // by peers, so it is created once and never replaced.
    let sync_dir = settings.data_dir.join("sync");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&sync_dir)
        .with_context(|| format!("cannot create {}", sync_dir.display()))?;
    let sync_key = Arc::new(
        SatelliteKey::load_or_generate(&sync_dir.join("key.pem"))
            .context("cannot load or create the satellite's signing key")?,
    );
    let sync = Arc::new(crate::sync::SyncEngine::new(
        app.clone(),
        sync_key,
        settings.sync.clone(),
        sync_dir.clone(),
    ));
    // The secret behind every account's RUM ingest URL: created once, since devices are
    // configured with the URLs it makes.
    let rum = Arc::new(RumGate {
        key: IngestKey::load_or_create(&settings.data_dir)
            .context("cannot load or create the RUM ingest URL secret")?,
        settings: live.rum.clone(),
    });
    let alert_inputs = AlertInputs {
        ca_not_after: Some(pki.ca_not_after()),
        server_cert_not_after: Some(pki.server_cert_not_after()),
        sync_problem: None,
    };
    let ctx = AdminCtx {
        app: app.clone(),
        max_body_bytes: settings.admin.max_body_bytes,
        listeners: described,
        data_dir: settings.data_dir.display().to_string(),
        workers: workers.clone(),
        alert_inputs: alert_inputs.clone(),
        metrics: metrics.clone(),
        trusted_license_keys: settings.trusted_license_keys.clone(),
        sync: sync.clone(),
        ca_der: pki.ca_der().as_ref().to_vec(),
        rum: rum.clone(),
        device_url: device_url(device_addr),
    };
    let mut worker_tasks = vec![
        workers::spawn(
            ExpiryWorker {
                app: app.clone(),
                interval: settings.timers.sweep_interval,
            },
            workers.clone(),
            shutdown.clone(),
        ),
        workers::spawn(
            AlertsWorker::new(app.clone(), alert_inputs, live.alerts.clone())
                .with_sync(sync.clone())
                .with_metrics(metrics.clone()),
            workers.clone(),
            shutdown.clone(),
        ),
        workers::spawn(
            SyncWorker {
                engine: sync.clone(),
            },
            workers.clone(),
            shutdown.clone(),
        ),
    ];
    let admin_router = guarded(
        admin::router(ctx).merge(
            axum::Router::new()
                .route("/readyz", axum::routing::get(server_metrics::ready))
                .with_state(app.clone()),
        ),
        RequestLimits {
            max_body_bytes: settings.admin.max_body_bytes,
            larger_bodies: admin::larger_body_limit,
            body_timeout: settings.admin.body_timeout,
            request_timeout: settings.admin.request_timeout,
        },
        &metrics,
        "admin",
    );
    let device_router = guarded(
        device::router(device::DeviceCtx {
            app: app.clone(),
            pki: pki.clone(),
            max_body_bytes: settings.device.max_body_bytes,
            limiter: Arc::new(FailureLimiter::new(10, time::Duration::minutes(1))),
            sync: sync.clone(),
            rum,
        }),
        RequestLimits {
            max_body_bytes: settings.device.max_body_bytes,
            larger_bodies: device::larger_body_limit,
            body_timeout: settings.device.body_timeout,
            request_timeout: settings.device.request_timeout,
        },
        &metrics,
        "devices",
    );
    let limits = connection_limits(&settings);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(listen::serve_tls(
        "devices",
        listeners.device,
        tls.clone(),
        device_router,
        limits,
        Some(metrics.clone()),
        shutdown.clone(),
    ));
    if let Some(l) = listeners.admin_https {
        tasks.spawn(listen::serve_tls(
            "admin",
            l,
            tls.clone(),
            admin_router.clone(),
            limits,
            Some(metrics.clone()),
            shutdown.clone(),
        ));
    }
    tasks.spawn(listen::serve_unix(
        listeners.admin_socket,
        admin_router,
        limits,
        shutdown.clone(),
    ));
    match admin_addr {
        Some(admin) => info!(devices = %device_addr, %admin, "satellite is ready"),
        None => info!(devices = %device_addr, admin = "off", "satellite is ready"),
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a listener task failed")?;
    }
    for task in worker_tasks.drain(..).chain(watchdog) {
        task.await.context("a worker failed")?;
    }
    let _ = std::fs::remove_file(&settings.admin.socket);
    Ok(())
}

/// The base URL devices reach the device listener at, for the ingest URLs `account show`
/// prints: its address, or the host name when it listens on every address.
fn device_url(addr: std::net::SocketAddr) -> Option<String> {
    if !addr.ip().is_unspecified() {
        return Some(format!("https://{addr}"));
    }
    let host = pki::host_names().into_iter().find(|n| n != "localhost")?;
    Some(format!("https://{host}:{}", addr.port()))
}

/// Puts the request limits, then the request metrics, in front of a listener's router.
fn guarded(
    router: axum::Router,
    request_limits: RequestLimits,
    metrics: &Metrics,
    listener: &'static str,
) -> axum::Router {
    limits::apply(router, request_limits).layer(axum::middleware::from_fn_with_state(
        Observed {
            metrics: metrics.clone(),
            listener,
        },
        server_metrics::track,
    ))
}

/// The connection limits every listener applies (`[device]`, SPEC §9 "Connections").
fn connection_limits(settings: &Settings) -> Limits {
    let d = &settings.device;
    Limits {
        max_connections: d.max_connections,
        max_per_address: d.max_connections_per_address,
        handshake_timeout: d.handshake_timeout,
        header_timeout: d.header_timeout,
        idle_timeout: d.idle_timeout,
        http2_keepalive_interval: d.http2_keepalive_interval,
        http2_keepalive_timeout: d.http2_keepalive_timeout,
        drain_timeout: settings.shutdown.drain_timeout,
    }
}

/// The error of a second daemon on a data directory another one serves.
fn already_serving(dir: &Path, pid: Option<u32>) -> anyhow::Error {
    let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    anyhow::anyhow!(
        "a satellite is already serving {}{who}; stop it first, or give this one another data \
         directory (`data_dir` in the configuration, or --data-dir)",
        dir.display()
    )
}

/// Binds the device listener and the HTTPS admin listener. A failure names the configuration
/// key that sets the address, and says what to do when the address is taken.
async fn bind_tcp(settings: &Settings) -> Result<(TcpListener, Option<TcpListener>)> {
    let bind = |key: &'static str, what: &'static str, addr: std::net::SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|e| {
            let advice = match e.kind() {
                std::io::ErrorKind::AddrInUse => format!(
                    "another process listens there (another satellite?); stop it, or choose \
                     another address with `{key}` in the configuration"
                ),
                std::io::ErrorKind::PermissionDenied => {
                    format!("ports below 1024 need privileges; choose another port with `{key}`")
                }
                _ => format!("check `{key}` in the configuration"),
            };
            anyhow::anyhow!("cannot listen for {what} on {addr} (`{key}`): {e}; {advice}")
        })
    };
    let device = bind("device.listen", "devices", settings.device.listen).await?;
    let admin = match settings.admin.listen {
        Some(addr) => Some(bind("admin.listen", "the HTTPS admin API", addr).await?),
        None => None,
    };
    Ok((device, admin))
}

/// Whether an I/O failure means the directory may not be written (as opposed to a missing
/// disk or a full one).
fn not_writable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

/// The error for a data directory the satellite may not write.
fn unwritable(dir: &Path, e: &std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "the data directory {} is not writable ({e}); give the user satellite runs as write \
         access to it, or choose another with `data_dir` in the configuration or --data-dir",
        dir.display()
    )
}

/// Creates the data directory readable by its owner only. One that already exists with a
/// broader mode (made by hand, or by a packaging script's `mkdir`) is tightened to 0700: it
/// holds the store, the CA key and every tenant's records, and the files inside are only as
/// private as the directory.
fn prepare_data_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            if not_writable(&e) {
                unwritable(dir, &e)
            } else {
                anyhow::anyhow!("cannot create the data directory {}: {e}", dir.display())
            }
        })?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("cannot inspect the data directory {}", dir.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(
            || {
                format!(
                    "the data directory {} has mode {mode:04o}, open to other users, and cannot                      be made private; fix it with `chmod 700 {}`",
                    dir.display(),
                    dir.display()
                )
            },
        )?;
        warn!(
            path = %dir.display(),
            old_mode = %format_args!("{mode:04o}"),
            new_mode = %"0700",
            "the data directory was open to other users; made it private to the satellite"
        );
    }
    // Root-owned or read-only directories open fine and fail at the first write, deep in the
    // store: try one now, so the message says what is wrong.
    match crate::fsutil::unlinked_file(&dir.join("write-check"), 0o600) {
        Ok(_) => Ok(()),
        Err(crate::fsutil::WriteError::Io { source, .. }) if not_writable(&source) => {
            Err(unwritable(dir, &source))
        }
        Err(e) => Err(e.into()),
    }
}

/// Binds the admin socket with the configured mode. A socket file left by a crashed daemon is
/// replaced; one that a running daemon answers on is not.
fn bind_socket(path: &Path, mode: u32) -> Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another satellite is already serving on {}; stop it first or use another data \
                 directory",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot create the admin socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(listener)
}

/// The device timers the domain needs, from the validated configuration.
pub fn device_timers(t: &crate::config::Timers) -> crate::domain::DeviceTimers {
    crate::domain::DeviceTimers {
        certificate_validity: t.certificate_validity,
        renew_after: t.renew_after,
        report_interval: t.report_interval,
        authorization_valid: t.authorization_valid,
        deregister_after: t.deregister_after,
        clock_skew: t.clock_skew,
    }
}

/// Applies each SIGHUP until shutdown.
async fn reload_loop(
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
    Ok(if unapplied.is_empty() {
        "log level, timers, alerts, [rum] and server certificate applied".to_string()
    } else {
        format!(
            "log level, timers, alerts, [rum] and server certificate applied; not applied until a restart: {}",
            unapplied.join(", ")
        )
    })
}
