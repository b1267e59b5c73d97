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
//!
//! `daemon/bind.rs` claims the listeners, the data directory and the admin socket;
//! `daemon/reload.rs` is the reload.

mod bind;
mod reload;

use bind::{already_serving, bind_socket, bind_tcp, prepare_data_dir};
use reload::reload_loop;

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
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
    /// `[cisco] ack_alert_after`, read by every alert derivation.
    cisco_ack_alert_after: Arc<std::sync::atomic::AtomicU32>,
    /// `[cisco]`, read by the Cisco poller; a reload wakes its worker.
    cisco: Arc<RwLock<crate::config::CiscoSettings>>,
    cisco_wake: Arc<tokio::sync::Notify>,
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
    let app = crate::systemd::extending_timeout("loading the catalog", || {
        App::open(&data_dir.join("store"), clock.clone(), timers)
    })
    .map_err(|e| match e {
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
        cisco_ack_alert_after: Arc::new(settings.cisco.ack_alert_after_days.into()),
        cisco: Arc::new(RwLock::new(settings.cisco.clone())),
        cisco_wake: Arc::new(tokio::sync::Notify::new()),
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
    write_snapshot(&app).await;
    info!("store flushed; satellite stopped");
    Ok(())
}

/// Writes the snapshot of the devices the next start reads instead of scanning the store
/// (`app/load.rs`). A failure costs only the next start's speed, so it is logged, not fatal.
async fn write_snapshot(app: &App) {
    let started = std::time::Instant::now();
    let devices = app.read(|c| c.instance_count());
    info!(
        devices,
        "writing the snapshot of the devices for the next start"
    );
    let writer = app.clone();
    let write = move || {
        crate::systemd::extending_timeout("writing the snapshot of the devices", || {
            writer.write_snapshot()
        })
    };
    match tokio::task::spawn_blocking(write).await {
        Ok(Ok(bytes)) => info!(
            bytes,
            ms = started.elapsed().as_millis() as u64,
            "snapshot written"
        ),
        Ok(Err(e)) => {
            warn!(cause = %e, "no snapshot written; the next start reads the whole store")
        }
        Err(e) => warn!(cause = %e, "no snapshot written; the next start reads the whole store"),
    }
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
        cisco_ack_alert_after: Arc::new(settings.cisco.ack_alert_after_days.into()),
        cisco: Arc::new(RwLock::new(settings.cisco.clone())),
        cisco_wake: Arc::new(tokio::sync::Notify::new()),
        settings: settings.clone(),
    };
    serve_live(settings, pki, live, listeners, shutdown).await
}

/// The start-up steps after the store and certificates are open, then serving until
/// `shutdown`: announce, open the signing key and RUM secret, start the workers, build the
/// routers, serve, and wait for every listener and worker to finish.
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
    let described = announce(&settings, &pki, device_addr, admin_addr);
    let watchdog = crate::systemd::spawn_watchdog(shutdown.clone());

    let workers = Registry::default();
    let metrics = Metrics::new();
    let sync = open_sync(&settings, &app)?;
    let rum = open_rum_gate(&settings, &live)?;
    let cisco = open_cisco(&settings, &live);
    let alert_inputs = AlertInputs {
        ca_not_after: Some(pki.ca_not_after()),
        server_cert_not_after: Some(pki.server_cert_not_after()),
        sync_problem: None,
        cisco_ack_alert_after: live.cisco_ack_alert_after.clone(),
        cisco_unreachable: Vec::new(),
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
        console: Arc::new(crate::server::console::Console::new(settings.console)),
        cisco: cisco.clone(),
    };
    let worker_tasks = spawn_workers(
        &settings,
        &live,
        (&sync, &cisco),
        &metrics,
        alert_inputs,
        &workers,
        &shutdown,
    );
    let device_ctx = device::DeviceCtx::new(device::DeviceShared {
        app: app.clone(),
        pki: pki.clone(),
        max_body_bytes: settings.device.max_body_bytes,
        limiter: Arc::new(FailureLimiter::new(10, time::Duration::minutes(1))),
        sync: sync.clone(),
        rum,
    });
    let routers = Routers {
        device: device_router(&settings, device_ctx, &metrics),
        admin: admin_router(&settings, ctx, &metrics),
    };
    let mut tasks = spawn_listeners(&settings, listeners, &tls, routers, &metrics, &shutdown);
    match admin_addr {
        Some(admin) => info!(devices = %device_addr, %admin, "satellite is ready"),
        None => info!(devices = %device_addr, admin = "off", "satellite is ready"),
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a listener task failed")?;
    }
    for task in worker_tasks.into_iter().chain(watchdog) {
        task.await.context("a worker failed")?;
    }
    let _ = std::fs::remove_file(&settings.admin.socket);
    Ok(())
}

/// Prints where everything is and tells systemd the daemon is ready. The listeners are bound
/// already, so a client that reads these lines can connect at once. Returns the listener lines
/// for `status`.
fn announce(
    settings: &Settings,
    pki: &Pki,
    device_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
) -> Vec<String> {
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
    described
}

/// Opens the sync engine with the satellite's Ed25519 signing key. The key signs sync messages
/// and reservation codes and is pinned by peers, so it is created once and never replaced.
fn open_sync(settings: &Settings, app: &App) -> Result<Arc<crate::sync::SyncEngine>> {
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
    Ok(Arc::new(crate::sync::SyncEngine::new(
        app.clone(),
        sync_key,
        settings.sync.clone(),
        sync_dir.clone(),
    )))
}

/// The RUM endpoint's gate with the secret behind every account's ingest URL: created once,
/// since devices are configured with the URLs it makes.
fn open_rum_gate(settings: &Settings, live: &Live) -> Result<Arc<RumGate>> {
    Ok(Arc::new(RumGate {
        key: IngestKey::load_or_create(&settings.data_dir)
            .context("cannot load or create the RUM ingest URL secret")?,
        settings: live.rum.clone(),
    }))
}

/// The Cisco poller (pull mode); its sealing key is created when the first device is added.
fn open_cisco(settings: &Settings, live: &Live) -> Arc<crate::cisco::Poller> {
    Arc::new(crate::cisco::Poller::new(
        live.app.clone(),
        settings.data_dir.clone(),
        live.cisco.clone(),
        live.cisco_wake.clone(),
    ))
}

/// Starts the periodic work: the expiry sweep, alert derivation and delivery, sync and the
/// Cisco poller.
fn spawn_workers(
    settings: &Settings,
    live: &Live,
    (sync, cisco): (&Arc<crate::sync::SyncEngine>, &Arc<crate::cisco::Poller>),
    metrics: &Metrics,
    alert_inputs: AlertInputs,
    workers: &Registry,
    shutdown: &Shutdown,
) -> Vec<tokio::task::JoinHandle<()>> {
    let app = &live.app;
    vec![
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
                .with_cisco(cisco.clone())
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
        workers::spawn(
            crate::workers::cisco::CiscoWorker {
                poller: cisco.clone(),
            },
            workers.clone(),
            shutdown.clone(),
        ),
    ]
}

/// The admin API with `/readyz`, behind the admin request limits. The HTTPS admin listener and
/// the admin socket serve the same router.
fn admin_router(settings: &Settings, ctx: AdminCtx, metrics: &Metrics) -> axum::Router {
    let app = ctx.app.clone();
    guarded(
        admin::router(ctx).merge(
            axum::Router::new()
                .route("/readyz", axum::routing::get(server_metrics::ready))
                .with_state(app),
        ),
        RequestLimits {
            max_body_bytes: settings.admin.max_body_bytes,
            larger_bodies: admin::larger_body_limit,
            body_timeout: settings.admin.body_timeout,
            request_timeout: settings.admin.request_timeout,
        },
        metrics,
        "admin",
    )
}

/// Protocol v1, the RUM endpoint and the upstream's sync endpoints, behind the device request
/// limits.
fn device_router(settings: &Settings, ctx: device::DeviceCtx, metrics: &Metrics) -> axum::Router {
    guarded(
        device::router(ctx),
        RequestLimits {
            max_body_bytes: settings.device.max_body_bytes,
            larger_bodies: device::larger_body_limit,
            body_timeout: settings.device.body_timeout,
            request_timeout: settings.device.request_timeout,
        },
        metrics,
        "devices",
    )
}

/// The routers the listeners serve.
struct Routers {
    device: axum::Router,
    admin: axum::Router,
}

/// Serves the device listener, the HTTPS admin listener if any, and the admin socket, each
/// until `shutdown` and its drain.
fn spawn_listeners(
    settings: &Settings,
    listeners: Listeners,
    tls: &TlsSource,
    routers: Routers,
    metrics: &Metrics,
    shutdown: &Shutdown,
) -> tokio::task::JoinSet<()> {
    let limits = connection_limits(settings);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(listen::serve_tls(
        "devices",
        listeners.device,
        tls.clone(),
        routers.device,
        limits,
        Some(metrics.clone()),
        shutdown.clone(),
    ));
    if let Some(l) = listeners.admin_https {
        tasks.spawn(listen::serve_tls(
            "admin",
            l,
            tls.clone(),
            routers.admin.clone(),
            limits,
            Some(metrics.clone()),
            shutdown.clone(),
        ));
    }
    tasks.spawn(listen::serve_unix(
        listeners.admin_socket,
        routers.admin,
        limits,
        shutdown.clone(),
    ));
    tasks
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
    limits::apply(
        router,
        request_limits,
        Observed {
            metrics: metrics.clone(),
            listener,
        },
    )
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
