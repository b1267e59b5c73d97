//! The running satellite's state: the store, the in-memory catalog loaded from it, the clock,
//! and the single write path through which every operator change becomes durable.
//!
//! Write path: take the writer lock, let the domain validate against the catalog and produce a
//! `Change`, number its event, queue the change and the event as one store batch, apply it to
//! the catalog, and answer once the batch is on disk. A refused change touches neither the
//! store nor the catalog.
//!
//! `App` is the only way into the store: the server, the sync engine and the workers ask it
//! ([`App::wait_durable`], [`App::store_health`], [`App::rum_report_text`]...), and the daemon
//! opens the store through [`App::open`]. Outside `app/` and `store/`, only offline tools that
//! run while no daemon does open a store (`tests/store_access.rs` checks it).

pub mod clock;
pub mod ids;
mod load;
pub mod rum;
pub mod secrets;
mod turns;

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use time::OffsetDateTime;
use tracing::{error, info};

use crate::domain::{
    Catalog, Change, DeviceError, DeviceTimers, DomainError, Event, EventFilter, Principal,
};
use crate::store::{self, Store, StoreError, tables};

pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::RandomIds;
pub use rum::{RumOutcome, rum_input};

/// Why an operation failed: the domain refused it, or the store could not make it durable.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store's figures, satellite-wide (for system administrators and `/metrics`).
#[derive(Debug)]
pub struct StoreHealth {
    /// The space the store's files take on disk.
    pub bytes: Result<u64, StoreError>,
    pub schema_version: u32,
    /// Flushes (group commits, each one journal write and `fdatasync`) since the store was opened.
    pub flushes: u64,
    /// Total and longest time spent flushing, in microseconds.
    pub flush_micros: u64,
    pub flush_max_micros: u64,
    /// Non-empty batches staged since the store was opened.
    pub commits: u64,
    /// Checkpoints (sled flushed and synced, the journal emptied) since the store was opened.
    pub checkpoints: u64,
    /// Bytes of journal since the last checkpoint: what a start after a crash would replay.
    pub journal_bytes: u64,
    /// Why the store refuses writes, if a flush has failed.
    pub failure: Option<String>,
}

/// A cheap-`Clone` handle on the satellite's state.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    state: RwLock<State>,
    /// The writers waiting for `state`'s write lock or holding it (`turns.rs`).
    writers: turns::Writers,
    clock: Arc<dyn Clock>,
    timers: RwLock<DeviceTimers>,
    unreadable: Vec<String>,
    /// Whether the devices came from the snapshot of the last clean stop.
    devices_from_snapshot: bool,
    started_at: OffsetDateTime,
}

/// What the write lock protects: the catalog, the event numbering and the clock's high-water
/// mark.
struct State {
    catalog: Catalog,
    last_seq: u64,
    /// The latest time the satellite has acted on. The satellite's own "now" never goes below
    /// it, so setting the clock back cannot extend a token, an authorization or a certificate.
    high_water: OffsetDateTime,
}

impl State {
    /// Numbers the change's event, queues the change and the event as one store batch, and
    /// applies the change to the catalog: in this order, so the catalog never shows a change
    /// the store refused.
    fn commit(
        &mut self,
        store: &Store,
        change: Change,
        now: OffsetDateTime,
        actor: &dyn std::fmt::Display,
    ) -> Result<store::Staged, StoreError> {
        // The actor is named only for a change with an event: most usage reports have none.
        let event = change
            .event
            .clone()
            .map(|e| e.into_event(self.last_seq + 1, now, &actor.to_string()));
        let staged = store.stage(tables::batch_for(&change, event.as_ref()))?;
        if let Some(e) = &event {
            self.last_seq = e.seq;
        }
        self.catalog.apply_owned(change);
        Ok(staged)
    }
}

/// The changes of one [`App::change_many`], made under the write lock.
pub struct Steps<'a> {
    store: &'a Store,
    state: &'a mut State,
    now: OffsetDateTime,
    actor: &'a str,
    staged: Vec<store::Staged>,
}

impl Steps<'_> {
    /// The catalog with every change made so far applied.
    pub fn catalog(&self) -> &Catalog {
        &self.state.catalog
    }

    /// The time of every change of this sequence.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// Queues `change` and its event in the store and applies it to the catalog.
    pub fn apply(&mut self, change: Change) -> Result<(), AppError> {
        let staged = self
            .state
            .commit(self.store, change, self.now, &self.actor)?;
        self.staged.push(staged);
        Ok(())
    }
}

impl App {
    /// Opens the store in `dir` (created if missing) and loads the catalog from it: the way a
    /// running satellite gets at its store.
    pub fn open(
        dir: &Path,
        clock: Arc<dyn Clock>,
        timers: DeviceTimers,
    ) -> Result<App, StoreError> {
        let opening = Instant::now();
        let store = Store::open(dir, tables::TABLES)?;
        let opened = opening.elapsed();
        let app = App::load(store, clock, timers)?;
        info!(
            open_ms = opened.as_millis() as u64,
            load_ms = (opening.elapsed() - opened).as_millis() as u64,
            devices = app.read(|c| c.instance_count()),
            "store opened and catalog loaded"
        );
        Ok(app)
    }

    /// The process holding the store in `dir`, if one does (a satellite already serving it).
    /// Opens and creates nothing, so a daemon can ask before it touches a data directory.
    pub fn store_holder(dir: &Path) -> Option<u32> {
        Store::lock_holder(dir)
    }

    /// Loads the catalog from the store (see `load.rs`). A record that cannot be decoded is
    /// logged, listed in [`App::unreadable`] and skipped: the rest of the satellite keeps
    /// serving.
    pub fn load(
        store: Store,
        clock: Arc<dyn Clock>,
        timers: DeviceTimers,
    ) -> Result<App, StoreError> {
        let (catalog, mut unreadable, devices_from_snapshot) = load::catalog(&store);
        let (last_seq, last_event_at) = last_event(&store, &mut unreadable);
        let high_water = catalog
            .latest_contact()
            .into_iter()
            .chain(last_event_at)
            .max()
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let now = clock.now();
        Ok(App {
            inner: Arc::new(Inner {
                store,
                state: RwLock::new(State {
                    catalog,
                    last_seq,
                    high_water,
                }),
                writers: turns::Writers::default(),
                clock,
                timers: RwLock::new(timers),
                unreadable,
                devices_from_snapshot,
                started_at: now,
            }),
        })
    }

    /// The satellite's time: the clock, but never earlier than a time already acted on.
    pub fn now(&self) -> OffsetDateTime {
        let high_water = self.state().high_water;
        self.inner.clock.now().max(high_water)
    }

    /// The raw clock, for comparing with times devices send (clock skew detection).
    pub fn clock_now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    pub fn timers(&self) -> DeviceTimers {
        *self.inner.timers.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_timers(&self, timers: DeviceTimers) {
        *self.inner.timers.write().unwrap_or_else(|p| p.into_inner()) = timers;
    }

    pub fn started_at(&self) -> OffsetDateTime {
        self.inner.started_at
    }

    /// Waits until every change acknowledged or queued before this call is durable. A repeated
    /// request answers through it, so it cannot acknowledge a first copy still in flight.
    pub async fn wait_durable(&self) -> Result<(), StoreError> {
        self.inner.store.flush().await
    }

    /// Why the store refuses writes, if a group failed to be applied or flushed (`/readyz`).
    pub fn store_failure(&self) -> Option<String> {
        self.inner.store.write_failure()
    }

    /// The store's figures for `status` and `/metrics`.
    pub fn store_health(&self) -> StoreHealth {
        let store = &self.inner.store;
        let (flush_micros, flush_max_micros) = store.flush_time();
        StoreHealth {
            bytes: store.size_on_disk(),
            schema_version: store::SCHEMA_VERSION,
            flushes: store.flushes(),
            flush_micros,
            flush_max_micros,
            commits: store.commits(),
            checkpoints: store.checkpoints(),
            journal_bytes: store.journal_bytes(),
            failure: store.write_failure(),
        }
    }

    /// The text of a Cisco RUM report of one of this satellite's own devices, as it arrived.
    /// The catalog keeps only what compliance needs; the text is read from the store when a
    /// report is relayed upstream. `None` if no such report is stored.
    pub fn rum_report_text(
        &self,
        serial: &str,
        report_id: u64,
    ) -> Result<Option<String>, StoreError> {
        let key = tables::rum_key(serial, report_id);
        Ok(self
            .inner
            .store
            .get::<crate::domain::RumRecord>(&key)?
            .map(|r| r.raw))
    }

    /// Records skipped at load because they could not be decoded, with the reason.
    pub fn devices_from_snapshot(&self) -> bool {
        self.inner.devices_from_snapshot
    }

    pub fn unreadable(&self) -> &[String] {
        &self.inner.unreadable
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the current catalog.
    pub fn read<R>(&self, f: impl FnOnce(&Catalog) -> R) -> R {
        f(&self.state().catalog)
    }

    /// [`App::read`] after every writer that waits for the catalog has had its turn: for a
    /// reader that takes the catalog chunk after chunk, which would otherwise take it again
    /// before a waiting writer could (`turns.rs`).
    pub async fn read_in_turn<R>(&self, f: impl FnOnce(&Catalog) -> R) -> R {
        self.inner.writers.none().await;
        self.read(f)
    }

    /// Validates and commits one change on behalf of `actor`. Returns once the change and its
    /// event are on disk. The actor is formatted only if the change has an event.
    ///
    /// Under the write lock: validate, number the event, queue the batch in the store and
    /// apply the change to the catalog, so the store sees writes in the same order as the
    /// catalog. Outside the lock: wait until the store's committer has applied and flushed the
    /// batch's group, which concurrent writers share (group commit).
    pub async fn change<T, E>(
        &self,
        actor: impl std::fmt::Display,
        op: impl FnOnce(&Catalog, OffsetDateTime) -> Result<(Change, T), E>,
    ) -> Result<T, AppError>
    where
        E: Into<AppError>,
    {
        let (staged, out) = {
            let _turn = self.inner.writers.enter();
            let mut state = self.inner.state.write().unwrap_or_else(|p| p.into_inner());
            let now = self.inner.clock.now().max(state.high_water);
            // Recorded even if the operation is refused: a refusal because of the time (an
            // expired token) must not be undone by setting the clock back.
            state.high_water = now;
            let (change, out) = op(&state.catalog, now).map_err(Into::into)?;
            (state.commit(&self.inner.store, change, now, &actor)?, out)
        };
        staged.durable().await?;
        Ok(out)
    }

    /// Makes several changes on behalf of `actor` under one hold of the write lock, each
    /// computed on the catalog as the previous one left it and each with its own event: for a
    /// request that must be decided as a whole before any of it is applied (an envelope of RUM
    /// reports). `op` makes each change with [`Steps::apply`]. Returns once every change it
    /// made is on disk, also when `op` fails after making some.
    pub async fn change_many<T>(
        &self,
        actor: &str,
        op: impl FnOnce(&mut Steps<'_>) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let (staged, out) = {
            let _turn = self.inner.writers.enter();
            let mut state = self.inner.state.write().unwrap_or_else(|p| p.into_inner());
            let now = self.inner.clock.now().max(state.high_water);
            state.high_water = now;
            let mut steps = Steps {
                store: &self.inner.store,
                state: &mut state,
                now,
                actor,
                staged: Vec::new(),
            };
            let out = op(&mut steps);
            (steps.staged, out)
        };
        for s in staged {
            s.durable().await?;
        }
        out
    }

    /// Writes a backup of the whole store to `out`: one point in time across all tables.
    ///
    /// Holds the catalog's read lock for the whole export. Every writer stages its batch under
    /// the write lock, so no change can land in the middle of the copy; readers go on (until a
    /// writer queues for the lock, which the lock then serves first). Writers wait for the
    /// length of the export: measured at 0.14 s for 100k records of 250 bytes (27 MB) in a
    /// release build. Changes still queued for the store's committer are not included (the
    /// export pauses the committer; they land after it). Blocking: call it off the async
    /// runtime.
    pub fn backup(
        &self,
        out: &mut impl std::io::Write,
        progress: impl FnMut(store::backup::Progress),
    ) -> Result<store::BackupSummary, store::BackupError> {
        let _no_writers = self.state();
        self.inner.store.export(out, progress)
    }

    /// The newest events visible to `p` that match `filter`, newest first, at most `limit`.
    /// With `before`, only events numbered below it: pages back through a log of any length.
    pub fn events(
        &self,
        p: &Principal,
        filter: &EventFilter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        let items: Box<dyn Iterator<Item = Result<Event, StoreError>>> = match before {
            Some(seq) => Box::new(
                self.inner
                    .store
                    .scan_rev_below::<Event>(seq.to_be_bytes().to_vec()),
            ),
            None => Box::new(self.inner.store.scan_rev::<Event>()),
        };
        for item in items {
            let event = match item {
                Ok(e) => e,
                Err(e) => {
                    error!(cause = %e, "skipping an unreadable event");
                    continue;
                }
            };
            // The log is ordered by sequence, not by time (the clock may be set back), so a
            // time filter skips rather than stops.
            if filter.matches(&event) && self.read(|c| c.may_read_event(p, &event)) {
                out.push(event);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// The sequence number and time of the newest event, so numbering continues after a restart.
/// An unreadable newest event still reserves its number: the log is never rewritten.
fn last_event(store: &Store, unreadable: &mut Vec<String>) -> (u64, Option<OffsetDateTime>) {
    let seq = match store.last_key::<Event>() {
        Ok(Some(key)) => key
            .as_slice()
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or_default(),
        Ok(None) => 0,
        Err(e) => {
            unreadable.push(e.to_string());
            0
        }
    };
    let at = store.last::<Event>().ok().flatten().map(|e| e.at);
    (seq, at)
}
