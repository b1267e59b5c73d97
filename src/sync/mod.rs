//! The sync engine (SPEC §8): turns the catalog's view of reconciliation (`domain::sync`) into
//! signed messages (`protocol::sync`) and back, for both transports.
//!
//! - Child side: [`SyncEngine::export`] (`export.rs`) numbers and signs the next request (or
//!   returns the outstanding one, unchanged), [`SyncEngine::import`] (`import.rs`) verifies and
//!   applies a response, [`SyncEngine::sync_now`] does both over the network, and
//!   [`transport::register`] binds this satellite to an upstream.
//! - Upstream side: [`SyncEngine::answer`] (`answer.rs`) verifies and applies a child's request
//!   and returns the signed response (the same bytes again for a retried request).
//!
//! The scheduled network sync is a worker (`workers::sync`), which this module does not know:
//! it wakes it through [`SyncEngine::wake`].
//!
//! Each apply happens inside one `App::change`: the message is opened (signature, sender,
//! sequence, freshness) under the catalog's write lock, so two copies of one message racing
//! each other cannot both pass the sequence check, and the records, the sequence numbers and
//! the audit event become durable together. A refused message is audited too (`sync.refused`).

mod answer;
mod export;
mod import;
pub mod transport;

use std::sync::{Arc, Mutex};

use crate::app::{App, AppError};
use crate::config::SyncSettings;
use crate::domain::{Applied, Change, DomainError, NewEvent, RegistrationScan};
use crate::protocol::sync::{SatelliteKey, SyncError};
use time::OffsetDateTime;

/// Devices looked at per hold of the catalog's lock while the outbox's registrations are
/// scanned: 1–2 ms, the longest a device's report then waits for a turn. A device's report
/// takes the lock twice, so with 16,384 devices a chunk (25 ms) the devices' throughput fell
/// to ~100 reports a second during a scan of a million devices; the hand-overs themselves cost
/// microseconds.
const SCAN_CHUNK: usize = 1_024;

/// Why a sync operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    /// The message was refused; the reason is specific (see `docs/sync.md`).
    #[error("sync message refused: {0}")]
    Refused(#[from] SyncError),
    /// The state does not allow it (not bound, unknown child...).
    #[error(transparent)]
    App(#[from] AppError),
    /// The upstream could not be reached or answered with an error.
    #[error("{0}")]
    Transport(String),
    /// A bug or an unusable local file (key, certificate).
    #[error("{0}")]
    Internal(String),
}

impl From<DomainError> for SyncFailure {
    fn from(e: DomainError) -> Self {
        SyncFailure::App(e.into())
    }
}

/// What the network sync worker and `sync status` show.
#[derive(Clone, Debug, Default)]
pub struct SyncStatus {
    pub last_attempt: Option<OffsetDateTime>,
    pub last_success: Option<OffsetDateTime>,
    pub last_error: Option<(OffsetDateTime, String)>,
    pub next_attempt: Option<OffsetDateTime>,
    /// Failures since the last success (drives the backoff).
    pub failures: u32,
}

/// The outcome of applying a response.
#[derive(Clone, Debug)]
pub enum ImportOutcome {
    Applied {
        seq: u64,
        applied: Applied,
    },
    /// The response was applied before: nothing changed.
    AlreadyApplied {
        seq: u64,
    },
}

/// The engine: shared by the admin handlers, the device listener and the worker.
pub struct SyncEngine {
    pub app: App,
    pub key: Arc<SatelliteKey>,
    pub settings: SyncSettings,
    /// Where the client certificate for the upstream lives (`DATA/sync`).
    pub dir: std::path::PathBuf,
    status: Mutex<SyncStatus>,
    /// One network sync or export at a time.
    running: tokio::sync::Mutex<()>,
    /// Wakes the worker (`sync now`, binding).
    pub wake: tokio::sync::Notify,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SyncEngine {
    pub fn new(
        app: App,
        key: Arc<SatelliteKey>,
        settings: SyncSettings,
        dir: std::path::PathBuf,
    ) -> Self {
        SyncEngine {
            app,
            key,
            settings,
            dir,
            status: Mutex::new(SyncStatus::default()),
            running: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn status(&self) -> SyncStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_next_attempt(&self, at: Option<OffsetDateTime>) {
        self.update_status(|s| s.next_attempt = at);
    }

    fn update_status(&self, f: impl FnOnce(&mut SyncStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// A one-line problem for the alerts (`None` when sync is healthy or not configured):
    /// failing since the last success, or overdue (no success for two intervals).
    pub fn problem(&self, now: OffsetDateTime) -> Option<String> {
        let bound = self.app.read(|c| c.upstream_binding().cloned())?;
        let status = self.status();
        let last_success = status.last_success.or(bound.last_success);
        if let Some((at, error)) = &status.last_error
            && last_success.is_none_or(|s| s < *at)
        {
            return Some(format!(
                "sync with upstream `{}` is failing since {at}: {error}",
                bound.upstream
            ));
        }
        let interval = time::Duration::try_from(self.settings.interval?).unwrap_or_default();
        let since = last_success.unwrap_or(bound.bound_at);
        (now - since > interval * 2).then(|| {
            format!(
                "sync with upstream `{}` is overdue: no successful sync since {since}",
                bound.upstream
            )
        })
    }

    /// Changes not in any request yet (the outstanding request's are not counted).
    pub async fn pending(&self) -> usize {
        let scan = self.registration_scan().await;
        let now = self.app.now();
        self.app.read(|c| c.pending_count_scanned(&scan, now))
    }

    /// The registrations the upstream has not acknowledged, found [`SCAN_CHUNK`] devices at a
    /// time with the catalog let go in between and every waiting writer served first
    /// (`App::read_in_turn`), so that devices keep reporting while a large
    /// fleet is scanned (`RegistrationScan`).
    async fn registration_scan(&self) -> RegistrationScan {
        let mut scan = self.app.read(|c| c.registration_scan());
        while !self
            .app
            .read_in_turn(|c| c.scan_registrations(&mut scan, SCAN_CHUNK))
            .await
        {
            tokio::task::yield_now().await;
        }
        // The sort takes a few hundred milliseconds at a million devices: off the workers.
        match tokio::task::spawn_blocking(move || {
            scan.finish();
            scan
        })
        .await
        {
            Ok(scan) => scan,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the runtime shuts down: a scan not done finds nothing.
            Err(_) => RegistrationScan::default(),
        }
    }
}

fn not_bound() -> DomainError {
    DomainError::Refused(
        "this satellite is not bound to an upstream; bind it with `satellite sync register \
         --upstream URL --registration-token TOKEN`"
            .into(),
    )
}

/// The audit event of a refused sync message.
fn refusal_event(from: &str, kind: &str, e: &SyncError) -> Change {
    Change::new(
        NewEvent::new("sync.refused", from)
            .detail("kind", kind)
            .detail("reason", e),
    )
}
