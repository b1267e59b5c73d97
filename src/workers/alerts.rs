//! Alert notification (SPEC §6): derives the alerts, logs the new ones at warn level, and POSTs
//! new ones to the configured local webhook. An alert counts as sent only once the webhook
//! answered 2xx; until then it is retried every round. An alert that clears and comes back is
//! sent again.
//!
//! The log gets each new alert once. A round with more than [`LOGGED_ALERTS`] new ones (the
//! first round after starting a large satellite: every alert that holds is new to it) logs one
//! summary line with counts by kind and severity, then the first [`LOGGED_ALERTS`] alerts, most
//! severe first, and points at `satellite alerts` for the rest. The counts are also published
//! as the `satellite_alerts` metric.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;
use tracing::{debug, warn};

use crate::app::App;
use crate::config::AlertsSettings;
use crate::domain::{Alert, AlertInputs, DeviceTimers, Principal};

/// Where the counts of holding alerts go after every round: the `satellite_alerts` metric
/// (implemented by `server::metrics::Metrics`, so this module does not import the server).
pub trait AlertCounts: Send + Sync + 'static {
    /// The alerts holding now, one `(kind, severity)` each.
    fn set_alerts(&self, holding: &mut dyn Iterator<Item = (&'static str, &'static str)>);
}

/// The most alerts one round logs one by one; beyond it the round logs a summary instead.
pub const LOGGED_ALERTS: usize = 10;

pub struct AlertsWorker {
    pub app: App,
    pub inputs: AlertInputs,
    /// Where the sync problem alert comes from, if sync runs.
    pub sync: Option<Arc<crate::sync::SyncEngine>>,
    /// Where the unreachable Cisco devices come from (pull mode).
    cisco: Option<Arc<crate::cisco::Poller>>,
    /// Interval and webhook; replaced on reload.
    pub settings: Arc<RwLock<AlertsSettings>>,
    pub sent: HashSet<String>,
    logged: HashSet<String>,
    client: reqwest::Client,
    /// Where the counts of holding alerts are published, if anywhere.
    metrics: Option<Box<dyn AlertCounts>>,
}

impl AlertsWorker {
    pub fn new(app: App, inputs: AlertInputs, settings: Arc<RwLock<AlertsSettings>>) -> Self {
        AlertsWorker {
            app,
            inputs,
            sync: None,
            cisco: None,
            settings,
            sent: HashSet::new(),
            logged: HashSet::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            metrics: None,
        }
    }

    /// Publishes the counts of holding alerts to `metrics` after every round.
    pub fn with_metrics(mut self, metrics: impl AlertCounts) -> Self {
        self.metrics = Some(Box::new(metrics));
        self
    }

    /// Raises an alert for each Cisco device the poller cannot reach.
    pub fn with_cisco(mut self, cisco: Arc<crate::cisco::Poller>) -> Self {
        self.cisco = Some(cisco);
        self
    }

    /// Raises the upstream-sync alert from `sync`'s status.
    pub fn with_sync(mut self, sync: Arc<crate::sync::SyncEngine>) -> Self {
        self.sync = Some(sync);
        self
    }

    /// The alerts that hold now. Deriving them reads the whole catalog (the compliance of
    /// every VA with devices: a tenth of a second or more at a thousand VAs), and even the time
    /// and the sync and Cisco inputs take the catalog's lock, which waits behind any writer. So
    /// all of it runs on a blocking thread: the runtime's workers go on serving meanwhile.
    pub async fn current(&self) -> Result<Vec<Alert>, String> {
        let app = self.app.clone();
        let mut inputs = self.inputs.clone();
        let (sync, cisco) = (self.sync.clone(), self.cisco.clone());
        tokio::task::spawn_blocking(move || {
            let now = app.now();
            if let Some(sync) = &sync {
                inputs.sync_problem = sync.problem(now);
            }
            if let Some(cisco) = &cisco {
                inputs.cisco_unreachable = cisco.unreachable_devices();
            }
            derive(&app, now, &app.timers(), &inputs)
        })
        .await
        .map_err(|e| format!("deriving the alerts failed: {e}; retrying next round"))
    }

    /// One round: returns (alerts holding, newly delivered to the webhook).
    pub async fn round(&mut self) -> Result<(usize, usize), String> {
        let alerts = self.current().await?;
        let keys: HashSet<String> = alerts.iter().map(|a| a.key.clone()).collect();
        self.sent.retain(|k| keys.contains(k));
        self.logged.retain(|k| keys.contains(k));
        if let Some(metrics) = &self.metrics {
            metrics.set_alerts(&mut alerts.iter().map(|a| (a.kind, a.severity.as_str())));
        }
        let new: Vec<&Alert> = alerts
            .iter()
            .filter(|a| self.logged.insert(a.key.clone()))
            .collect();
        log_new(&new, alerts.len());
        let webhook = self
            .settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .webhook
            .clone();
        let Some(url) = &webhook else {
            return Ok((alerts.len(), 0));
        };
        let fresh: Vec<&Alert> = alerts
            .iter()
            .filter(|a| !self.sent.contains(&a.key))
            .collect();
        if fresh.is_empty() {
            return Ok((alerts.len(), 0));
        }
        let body = json!({
            "alerts": fresh.iter().map(|a| json!({
                "key": a.key,
                "kind": a.kind,
                "severity": a.severity.as_str(),
                "account": a.account.map(|x| x.to_string()),
                "va": a.va.map(|x| x.to_string()),
                "message": a.message,
            })).collect::<Vec<_>>()
        });
        let res = self
            .client
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("webhook {url} unreachable: {e}; retrying next round"))?;
        if !res.status().is_success() {
            return Err(format!(
                "webhook {url} answered {}; retrying next round",
                res.status()
            ));
        }
        let n = fresh.len();
        for a in fresh {
            self.sent.insert(a.key.clone());
        }
        Ok((alerts.len(), n))
    }
}

/// The alerts that hold at `now`, with messages in full: the log and the webhook are the
/// satellite's own channels. Blocking: holds the catalog's read lock while it derives them.
fn derive(
    app: &App,
    now: OffsetDateTime,
    timers: &DeviceTimers,
    inputs: &AlertInputs,
) -> Vec<Alert> {
    let system = Principal::system("satellite");
    let started = Instant::now();
    let (alerts, held) = app.read(|c| {
        let locked = Instant::now();
        let alerts: Vec<Alert> = c
            .alerts(now, timers, inputs)
            .into_iter()
            .map(|mut a| {
                a.message = c.alert_message(&a, &system);
                a
            })
            .collect();
        (alerts, locked.elapsed())
    });
    log_derived(alerts.len(), started.elapsed(), held);
    alerts
}

/// Logs at debug level how long deriving the alerts took, and how much of it held the catalog's
/// read lock (during which every write waits).
fn log_derived(alerts: usize, took: Duration, held: Duration) {
    debug!(
        alerts,
        took_ms = took.as_secs_f64() * 1e3,
        lock_held_ms = held.as_secs_f64() * 1e3,
        "alerts derived in {:.1} ms, catalog read lock held {:.1} ms",
        took.as_secs_f64() * 1e3,
        held.as_secs_f64() * 1e3
    );
}

/// Logs the alerts new this round (most severe first): each one, or a summary and the first
/// [`LOGGED_ALERTS`] when there are more.
fn log_new(new: &[&Alert], holding: usize) {
    if new.len() > LOGGED_ALERTS {
        let mut counts: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
        for a in new {
            *counts
                .entry(a.kind)
                .or_default()
                .entry(a.severity.as_str())
                .or_default() += 1;
        }
        let counts = counts
            .iter()
            .map(|(kind, by_severity)| {
                let severities: Vec<String> = by_severity
                    .iter()
                    .rev()
                    .map(|(severity, n)| format!("{n} {severity}"))
                    .collect();
                format!("{kind}: {}", severities.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ");
        warn!(
            new = new.len(),
            holding,
            counts = counts.as_str(),
            "{} new alerts; the first {LOGGED_ALERTS} follow, `satellite alerts` lists them all",
            new.len()
        );
    }
    for a in new.iter().take(LOGGED_ALERTS) {
        warn!(
            kind = a.kind,
            severity = a.severity.as_str(),
            "alert: {}",
            a.message
        );
    }
}

impl super::Worker for AlertsWorker {
    const NAME: &'static str = "alerts";

    async fn work(&mut self) -> Result<String, String> {
        let (holding, sent) = self.round().await?;
        Ok(format!(
            "{holding} alert(s) held at that round, {sent} sent to the webhook"
        ))
    }

    fn next_wait(&mut self) -> super::Wait {
        super::Wait::For(
            self.settings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .interval,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::macros::datetime;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::app::{ManualClock, RandomIds};
    use crate::domain::{DeviceTimers, LicenseKind, LicenseSource, LicenseSpec, Principal};
    use crate::server::metrics::{Format, LicenseDetail, Metrics};

    /// A webhook that answers the given statuses in turn and hands every body it got back.
    async fn webhook(statuses: Vec<u16>) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for status in statuses {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then exactly Content-Length bytes of body.
                let body = loop {
                    let n = conn.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break body.to_string();
                        }
                    }
                };
                tx.send(body).unwrap();
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                conn.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn new_alerts_are_posted_once_and_retried_until_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let now = datetime!(2026-06-01 0:00 UTC);
        let clock = Arc::new(ManualClock::new(now));
        let app = App::open(dir.path(), clock.clone(), DeviceTimers::default()).unwrap();
        let p = Principal::system("test");
        let account = app
            .change("test", |c, now| {
                c.create_account(&p, "acme", "acme.com", now, &RandomIds)
            })
            .await
            .unwrap();
        let spec = LicenseSpec {
            entitlement_tag: "T".into(),
            display_name: String::new(),
            quantity: 3,
            kind: LicenseKind::Term {
                start: datetime!(2026-01-01 0:00 UTC),
                end: datetime!(2026-06-05 0:00 UTC),
            },
            export_controlled: false,
            source: LicenseSource::Manual,
            order_ref: None,
            labels: Default::default(),
        };
        app.change("test", |c, now| {
            c.add_license(&p, account.default_va, spec, now, &RandomIds)
        })
        .await
        .unwrap();

        let (url, mut bodies) = webhook(vec![500, 200]).await;
        let settings = Arc::new(RwLock::new(AlertsSettings {
            interval: Duration::from_secs(60),
            webhook: Some(url),
        }));
        let metrics = Metrics::new();
        let mut worker = AlertsWorker::new(app.clone(), AlertInputs::default(), settings)
            .with_metrics(metrics.clone());
        // The count the last round published, as `/metrics` shows it.
        let published = || {
            let text = metrics.render(
                &app,
                None,
                None,
                &AlertInputs::default(),
                Format::Text,
                LicenseDetail::Va,
            );
            text.lines()
                .find(|l| l.starts_with("satellite_alerts{kind=\"license_expiring\""))
                .and_then(|l| l.rsplit(' ').next().map(str::to_owned))
        };

        // The webhook fails: the alert is not marked sent.
        let err = worker.round().await.unwrap_err();
        assert!(err.contains("answered 500"), "{err}");
        let first = bodies.recv().await.unwrap();
        assert!(
            first.contains("license_expiring") && first.contains("within 7 days"),
            "{first}"
        );
        // Retried next round and accepted.
        assert_eq!(worker.round().await.unwrap(), (1, 1));
        assert_eq!(published().as_deref(), Some("1"));
        assert_eq!(bodies.recv().await.unwrap(), first);
        // Nothing new: nothing posted (the fake webhook would not answer a third request).
        assert_eq!(worker.round().await.unwrap(), (1, 0));
        // Once the licenses have expired the alert clears.
        clock.advance(time::Duration::days(10));
        assert_eq!(worker.round().await.unwrap(), (0, 0));
        assert_eq!(published().as_deref(), Some("0"));
    }

    /// Deriving the alerts runs off the async runtime: while it waits for the catalog (here
    /// held by a writer), another task of the same single-threaded runtime still runs.
    #[tokio::test]
    async fn deriving_the_alerts_leaves_the_runtime_free() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::mpsc;

        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 0:00 UTC)));
        let app = App::open(dir.path(), clock, DeviceTimers::default()).unwrap();
        let settings = Arc::new(RwLock::new(AlertsSettings {
            interval: Duration::from_secs(60),
            webhook: None,
        }));
        let mut worker = AlertsWorker::new(app.clone(), AlertInputs::default(), settings);

        // A writer on a thread of its own holds the catalog until a task of this runtime lets
        // it go; should that task never run, it gives up after 10 s and says so.
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let released = Arc::new(AtomicBool::new(false));
        let writer = std::thread::spawn({
            let released = released.clone();
            move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(app.change("test", |_, _| {
                    held_tx.send(()).unwrap();
                    let let_go = release_rx.recv_timeout(Duration::from_secs(10)).is_ok();
                    released.store(let_go, Ordering::SeqCst);
                    Err::<(crate::domain::Change, ()), _>(crate::domain::DomainError::Refused(
                        "nothing to change".into(),
                    ))
                }))
            }
        });
        held_rx.recv().unwrap();

        let (round, ()) = tokio::join!(worker.round(), async {
            let _ = release_tx.send(());
        });
        assert_eq!(round.unwrap(), (0, 0));
        assert!(writer.join().unwrap().is_err());
        assert!(
            released.load(Ordering::SeqCst),
            "the runtime was blocked while the alerts waited for the catalog"
        );
    }
}
