//! Pull mode (SPEC §11): the satellite polls IOS XE devices over their `/smartlic-service`
//! REST API and ingests their RUM reports through the same path as pushed ones.
//!
//! One poll of a device: open its sealed password (`seal.rs`), `POST close-reports`, `GET
//! all-reports` (`client.rs`), decode with `protocol::cisco::pull` (the same parser and
//! `checked` function as a pushed body), then `App::ingest_rum`, the push endpoint's own path:
//! it decides the reports as a whole and applies them under one hold of the write lock;
//! `Catalog::check_rum`
//! refuses the batch when it names a device registered with protocol v1 (audited) or would
//! touch a VA dedicated to a child; `Catalog::ingest_rum` de-duplicates by (serial, report id).
//! Every event's actor is `cisco-poll:<device name>`. Devices learned from a poll join the
//! account's Default VA, like pushed ones; the polled device's own VA decides who manages it.
//!
//! Each device's status (last poll, last success, last error, consecutive failures, reports the
//! device held at the last poll, next poll) lives in memory: it is rebuilt by the first round
//! after a restart, which polls every device at once, so a restart costs one poll per device
//! and no store write per poll. The scheduled polling is `workers/cisco.rs`.

pub mod client;
pub mod seal;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::app::{App, AppError, RumOutcome, rum_input};
use crate::config::CiscoSettings;
use crate::domain::{CiscoDevice, CiscoDeviceId, Principal, RumInput};
use crate::protocol::cisco::pull;
pub use client::{ClientError, DeviceClient, FailureKind};
pub use seal::{CredentialKey, SealError};

/// Every `outcome` label of `satellite_cisco_polls_total`, so each is exported from the start.
pub const OUTCOMES: &[&str] = &[
    "ok",
    "unreachable",
    "untrusted",
    "unauthorized",
    "bad_answer",
    "refused",
    "error",
];

/// What is known of one device's polling, in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceStatus {
    pub last_poll: Option<OffsetDateTime>,
    pub last_success: Option<OffsetDateTime>,
    /// The last poll's outcome label (`ok`, `unreachable`, ...).
    pub last_outcome: Option<&'static str>,
    pub last_error: Option<String>,
    /// Failed polls since the last success.
    pub failures: u32,
    /// Reports the device held at the last successful poll.
    pub reports_held: Option<u64>,
    pub next_poll: Option<OffsetDateTime>,
}

impl DeviceStatus {
    /// Whether the last poll could not reach the device (or trust it, or log in): the alert.
    pub fn unreachable(&self) -> bool {
        matches!(
            self.last_outcome,
            Some("unreachable" | "untrusted" | "unauthorized")
        )
    }
}

/// What one poll came to, for `satellite cisco poll`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollOutcome {
    pub device: CiscoDeviceId,
    pub name: String,
    pub outcome: &'static str,
    pub accepted: u64,
    pub duplicates: u64,
    pub held: u64,
    /// ACK files delivered through `import` by this poll.
    pub acks_delivered: u64,
    /// ACK files the device did not take (each tried again at the next poll).
    pub acks_failed: u64,
    pub error: Option<String>,
}

/// The poller: the sealing key, the settings, every device's status and the poll counters.
pub struct Poller {
    pub app: App,
    /// The data directory, where the sealing key is created at first need.
    data_dir: std::path::PathBuf,
    key: std::sync::OnceLock<CredentialKey>,
    settings: Arc<RwLock<CiscoSettings>>,
    status: Mutex<HashMap<CiscoDeviceId, DeviceStatus>>,
    polls: BTreeMap<&'static str, AtomicU64>,
    /// Wakes the worker so it computes its wait again (a device added, settings reloaded).
    pub wake: Arc<Notify>,
    /// One poll of a device at a time: the worker and `cisco poll` never overlap.
    busy: tokio::sync::Mutex<()>,
}

impl Poller {
    pub fn new(
        app: App,
        data_dir: std::path::PathBuf,
        settings: Arc<RwLock<CiscoSettings>>,
        wake: Arc<Notify>,
    ) -> Self {
        Poller {
            app,
            data_dir,
            key: std::sync::OnceLock::new(),
            settings,
            status: Mutex::new(HashMap::new()),
            polls: OUTCOMES.iter().map(|o| (*o, AtomicU64::new(0))).collect(),
            wake,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    pub fn settings(&self) -> CiscoSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The sealing key, loaded, or created the first time a device is added.
    fn key(&self) -> Result<&CredentialKey, SealError> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let key = CredentialKey::load_or_create(&self.data_dir)?;
        Ok(self.key.get_or_init(|| key))
    }

    /// Makes sure the sealing key is there, so that sealing under the write lock cannot fail.
    pub fn ready_to_seal(&self) -> Result<(), SealError> {
        self.key().map(drop)
    }

    /// Seals a password for device `id`; call [`Poller::ready_to_seal`] first.
    pub fn seal(&self, id: CiscoDeviceId, password: &str) -> Vec<u8> {
        self.key()
            .expect("ready_to_seal loaded the key before")
            .seal(id, password)
    }

    /// The status of a device at `now` (all empty before its first poll). It takes no lock of
    /// the catalog, so it may be called inside `App::read`.
    pub fn status_of(&self, id: CiscoDeviceId, now: OffsetDateTime) -> DeviceStatus {
        let mut status = {
            let map = self.status.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&id).cloned().unwrap_or_default()
        };
        status.next_poll = self.next_poll(&status, now);
        status
    }

    /// Polls done since start, by outcome label.
    pub fn poll_counts(&self) -> Vec<(&'static str, u64)> {
        self.polls
            .iter()
            .map(|(k, v)| (*k, v.load(Ordering::Relaxed)))
            .collect()
    }

    /// The devices whose last poll could not reach, trust or log in to them, with the reason:
    /// the `cisco_device_unreachable` alerts. Call it outside `App::read`.
    pub fn unreachable_devices(&self) -> Vec<(CiscoDeviceId, String)> {
        let held: Vec<CiscoDeviceId> = self
            .app
            .read(|c| c.all_cisco_devices().iter().map(|d| d.id).collect());
        let map = self.status.lock().unwrap_or_else(|p| p.into_inner());
        held.into_iter()
            .filter_map(|id| {
                let s = map.get(&id).filter(|s| s.unreachable())?;
                Some((id, s.last_error.clone().unwrap_or_default()))
            })
            .collect()
    }

    /// When a device is next due: at once if never polled; an interval after a success; after a
    /// failure, `retry_min` doubled per further failure up to `retry_max`. `None` while
    /// scheduled polling is off.
    fn next_poll(&self, s: &DeviceStatus, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let settings = self.settings();
        let interval = settings.poll_interval?;
        let Some(last) = s.last_poll else {
            return Some(now);
        };
        let wait = if s.failures == 0 {
            interval
        } else {
            backoff(s.failures, settings.retry_min, settings.retry_max)
        };
        Some(last + wait)
    }

    /// The wait until the first device is due; `None` when nothing is scheduled.
    pub fn due_in(&self) -> Option<Duration> {
        let now = self.app.now();
        let devices: Vec<CiscoDeviceId> = self
            .app
            .read(|c| c.all_cisco_devices().iter().map(|d| d.id).collect());
        devices
            .into_iter()
            .filter_map(|id| self.status_of(id, now).next_poll)
            .min()
            .map(|due| Duration::try_from(due - now).unwrap_or(Duration::ZERO))
    }

    /// Polls every device that is due now; returns their outcomes.
    pub async fn poll_due(&self) -> Vec<PollOutcome> {
        let now = self.app.now();
        let due: Vec<CiscoDeviceId> = self
            .app
            .read(|c| {
                c.all_cisco_devices()
                    .iter()
                    .map(|d| d.id)
                    .collect::<Vec<_>>()
            })
            .into_iter()
            .filter(|id| self.status_of(*id, now).next_poll.is_some_and(|t| t <= now))
            .collect();
        let mut out = Vec::new();
        for id in due {
            if let Some(outcome) = self.poll(id).await {
                out.push(outcome);
            }
        }
        out
    }

    /// Polls one device now and records the outcome; `None` if the device is gone.
    pub async fn poll(&self, id: CiscoDeviceId) -> Option<PollOutcome> {
        let _one = self.busy.lock().await;
        let device = self.app.read(|c| c.cisco_device(id).cloned())?;
        let result = self.fetch_and_ingest(&device).await;
        let now = self.app.now();
        let outcome = match result {
            Ok(o) => o,
            Err((label, message)) => PollOutcome {
                device: id,
                name: device.name.clone(),
                outcome: label,
                accepted: 0,
                duplicates: 0,
                held: 0,
                acks_delivered: 0,
                acks_failed: 0,
                error: Some(message),
            },
        };
        self.record(&outcome, now);
        Some(outcome)
    }

    fn record(&self, o: &PollOutcome, now: OffsetDateTime) {
        if let Some(counter) = self.polls.get(o.outcome) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let mut map = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.entry(o.device).or_default();
        s.last_poll = Some(now);
        s.last_outcome = Some(o.outcome);
        s.last_error = o.error.clone();
        if o.outcome == "ok" {
            s.last_success = Some(now);
            s.failures = 0;
            s.reports_held = Some(o.held);
        } else {
            s.failures = s.failures.saturating_add(1);
        }
        match &o.error {
            Some(e) => {
                tracing::warn!(device = %o.name, outcome = o.outcome, error = %e, "Cisco poll failed")
            }
            None => tracing::info!(
                device = %o.name, accepted = o.accepted, duplicates = o.duplicates,
                "Cisco device polled"
            ),
        }
    }

    /// Removes what is known of a removed device.
    pub fn forget(&self, id: CiscoDeviceId) {
        let mut map = self.status.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&id);
    }

    async fn fetch_and_ingest(
        &self,
        device: &CiscoDevice,
    ) -> Result<PollOutcome, (&'static str, String)> {
        let password = self
            .key()
            .and_then(|k| k.open(device.id, &device.sealed_password))
            .map_err(|e| ("error", e.to_string()))?;
        let fail = |e: ClientError| (e.kind.label(), e.message);
        let client = DeviceClient::new(device, password, self.settings().timeout).map_err(fail)?;
        client.close_reports().await.map_err(fail)?;
        let pulled = client.all_reports().await.map_err(fail)?;
        let held = pulled.reports.len() as u64;
        let reports: Vec<RumInput> = pulled.reports.into_iter().map(rum_input).collect();
        let actor = format!("cisco-poll:{}", device.name);
        let refused = |e: &dyn std::fmt::Display| {
            (
                "refused",
                format!("the device's reports were refused as a whole, nothing was ingested: {e}"),
            )
        };
        let (accepted, duplicates) =
            match self.app.ingest_rum(&actor, device.account, &reports).await {
                Ok(RumOutcome::Done {
                    accepted,
                    duplicates,
                }) => (accepted.len() as u64, duplicates.len() as u64),
                Ok(RumOutcome::Refused(e)) | Err(AppError::Device(e)) => return Err(refused(&e)),
                Err(AppError::Domain(e)) => return Err(refused(&e)),
                Err(e) => return Err(("error", e.to_string())),
            };
        let (acks_delivered, acks_failed) = self.deliver_acks(&client, device, &reports).await;
        Ok(PollOutcome {
            device: device.id,
            name: device.name.clone(),
            outcome: "ok",
            accepted,
            duplicates,
            held,
            acks_delivered,
            acks_failed,
            error: None,
        })
    }
}

impl Poller {
    /// Hands the device the ACK files waiting for the devices its reports name (SPEC §11,
    /// pull mode), oldest first, each through `POST /smartlic-service/import`, and records each
    /// outcome (`cisco.ack_delivered` or `cisco.ack_delivery_failed`, one audited change each).
    /// Runs after the reports are ingested, so a delivery that fails never costs the reports;
    /// an ACK the device did not take waits for the next poll. Returns (delivered, failed).
    async fn deliver_acks(
        &self,
        client: &DeviceClient,
        device: &CiscoDevice,
        reports: &[RumInput],
    ) -> (u64, u64) {
        let waiting: Vec<(String, Vec<u8>)> = self.app.read(|c| {
            let mut seen = std::collections::HashSet::new();
            let mut out = Vec::new();
            for r in reports {
                let Some(instance) = c.instance_by_udi(device.account, &r.udi) else {
                    continue;
                };
                if seen.insert(instance.id) {
                    let acks = c.cisco_acks_to_deliver(instance.id);
                    out.extend(acks.into_iter().map(|a| (a.id.clone(), a.bytes.clone())));
                }
            }
            out
        });
        let encoding = self.settings().import_encoding.clone();
        let actor = format!("cisco-poll:{}", device.name);
        let principal = Principal::system(actor.clone());
        let (mut delivered, mut failed) = (0, 0);
        for (ack, bytes) in waiting {
            let result = client.import(pull::encode_import(&bytes, &encoding)).await;
            let (ok, detail) = match &result {
                Ok(_) => (true, format!("imported by {}", device.name)),
                Err(e) => (false, e.message.clone()),
            };
            let recorded = self
                .app
                .change(&actor, |c, now| {
                    c.record_cisco_delivery(&principal, &ack, ok, &detail, now)
                })
                .await;
            match recorded {
                Ok(_) if ok => delivered += 1,
                Ok(_) => failed += 1,
                Err(e) => {
                    failed += 1;
                    tracing::warn!(device = %device.name, ack = %ack, error = %e,
                        "the outcome of an ACK delivery could not be recorded");
                }
            }
            if !ok {
                tracing::warn!(device = %device.name, ack = %ack, error = %detail,
                    "the device did not take its ACK; it is tried again at the next poll");
                // The device refused or could not be reached: the next ACKs would fare the same.
                break;
            }
        }
        (delivered, failed)
    }
}

/// The wait before retry number `failures` (1 = the first): `min` doubled per further
/// failure, at most `max`.
pub fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    min.saturating_mul(1u32 << exp).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let (min, max) = (Duration::from_secs(60), Duration::from_secs(3600));
        assert_eq!(backoff(1, min, max), Duration::from_secs(60));
        assert_eq!(backoff(2, min, max), Duration::from_secs(120));
        assert_eq!(backoff(6, min, max), Duration::from_secs(1920));
        assert_eq!(backoff(7, min, max), Duration::from_secs(3600));
        assert_eq!(backoff(u32::MAX, min, max), Duration::from_secs(3600));
    }
}
