//! The running satellite's state: the store, the in-memory catalog loaded from it, the clock,
//! and the single write path through which every operator change becomes durable.
//!
//! Write path: take the writer lock, let the domain validate against the catalog and produce a
//! `Change`, number its event, commit the change and the event in one store transaction
//! (returns once flushed), then apply it to the catalog. Readers never see a change that is not
//! on disk, and a refused change touches neither the store nor the catalog.

pub mod clock;
pub mod secrets;

use std::sync::{Arc, RwLock};

use time::OffsetDateTime;
use tracing::error;

use crate::domain::{
    Account, ApiToken, Catalog, Change, DomainError, Event, EventFilter, License, Principal,
    Record, RegistrationToken, User, VirtualAccount,
};
use crate::store::{self, Store, StoreError, tables};

pub use clock::{Clock, ManualClock, SystemClock};

/// Why an operation failed: the domain refused it, or the store could not make it durable.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A cheap-`Clone` handle on the satellite's state.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    catalog: RwLock<Catalog>,
    /// Serialises writers and holds the sequence number of the last committed event.
    writer: tokio::sync::Mutex<u64>,
    clock: Arc<dyn Clock>,
    unreadable: Vec<String>,
    started_at: OffsetDateTime,
}

impl App {
    /// Loads the catalog from the store. A record that cannot be decoded is logged, listed in
    /// [`App::unreadable`] and skipped: the rest of the satellite keeps serving.
    pub fn load(store: Store, clock: Arc<dyn Clock>) -> Result<App, StoreError> {
        let mut unreadable = Vec::new();
        let mut records = Vec::new();
        fn collect<R: store::Record>(
            store: &Store,
            wrap: fn(R) -> Record,
            out: &mut Vec<Record>,
            bad: &mut Vec<String>,
        ) {
            for item in store.scan::<R>() {
                match item {
                    Ok(r) => out.push(wrap(r)),
                    Err(e) => {
                        error!(table = R::TABLE, cause = %e, "skipping an unreadable record");
                        bad.push(e.to_string());
                    }
                }
            }
        }
        collect::<Account>(&store, Record::Account, &mut records, &mut unreadable);
        collect::<VirtualAccount>(&store, Record::Va, &mut records, &mut unreadable);
        collect::<License>(&store, Record::License, &mut records, &mut unreadable);
        collect::<RegistrationToken>(&store, Record::Token, &mut records, &mut unreadable);
        collect::<User>(&store, Record::User, &mut records, &mut unreadable);
        collect::<ApiToken>(&store, Record::ApiToken, &mut records, &mut unreadable);
        let last_seq = last_event_seq(&store, &mut unreadable);
        let now = clock.now();
        Ok(App {
            inner: Arc::new(Inner {
                store,
                catalog: RwLock::new(Catalog::from_records(records)),
                writer: tokio::sync::Mutex::new(last_seq),
                clock,
                unreadable,
                started_at: now,
            }),
        })
    }

    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    pub fn started_at(&self) -> OffsetDateTime {
        self.inner.started_at
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Records skipped at load because they could not be decoded, with the reason.
    pub fn unreadable(&self) -> &[String] {
        &self.inner.unreadable
    }

    /// Runs `f` on the current catalog.
    pub fn read<R>(&self, f: impl FnOnce(&Catalog) -> R) -> R {
        let catalog = self
            .inner
            .catalog
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&catalog)
    }

    /// Validates and commits one operator change on behalf of `p`. Returns once the change and
    /// its event are on disk and visible to readers.
    pub async fn change<T>(
        &self,
        p: &Principal,
        op: impl FnOnce(&Catalog, OffsetDateTime) -> Result<(Change, T), DomainError>,
    ) -> Result<T, AppError> {
        let mut last_seq = self.inner.writer.lock().await;
        let now = self.now();
        let (change, out) = self.read(|c| op(c, now))?;
        let event = change
            .event
            .clone()
            .into_event(*last_seq + 1, now, &p.actor);
        self.inner
            .store
            .commit(tables::batch_for(&change, &event))
            .await?;
        *last_seq = event.seq;
        self.inner
            .catalog
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .apply(&change);
        Ok(out)
    }

    /// The newest events visible to `p` that match `filter`, newest first, at most `limit`.
    pub fn events(
        &self,
        p: &Principal,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.store.scan_rev::<Event>() {
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

/// The sequence number of the newest event, so numbering continues after a restart. An
/// unreadable newest event still reserves its number: the log is never rewritten.
fn last_event_seq(store: &Store, unreadable: &mut Vec<String>) -> u64 {
    match store.last_key::<Event>() {
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
    }
}
