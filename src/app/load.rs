//! Loading the catalog at start, and the snapshot that makes the next start fast.
//!
//! A start reads every table of the store, except that the devices, when the last stop was
//! clean, come from the snapshot it wrote (`store/snapshot.rs`): one sequential file decoded
//! on both cores instead of a scan of sled's largest tree. Decoding and indexing are
//! pipelined: producer threads decode batches of records, this thread adds them to the
//! catalog, so the records are never all held twice.

use std::sync::Mutex;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::App;
use crate::domain::ProductInstance;
use crate::domain::{Catalog, CatalogLoad, PreparedInstance, Preparer, Record};
use crate::store::{self, Block, SnapshotError, SnapshotReader, Store, StoreError, tables};

/// Records per batch sent from a producer to the indexing thread.
const BATCH: usize = 4096;
/// Devices per batch sent from a snapshot's decoding thread.
const DEVICE_BATCH: usize = 1024;

/// What a producer thread sends to the indexing thread.
enum Batch {
    Records(Vec<Record>),
    /// Devices, boxed and keyed on the producer's thread.
    Devices(Vec<PreparedInstance>),
}

/// A producer thread: sends batches, returns the records it could not read.
type Producer<'a> = Box<
    dyn FnOnce(&SyncSender<Batch>, &Preparer) -> Result<Vec<String>, SnapshotError> + Send + 'a,
>;

/// The catalog in `store`, the records that could not be read, and whether the devices came
/// from the snapshot.
pub(super) fn catalog(store: &Store) -> (Catalog, Vec<String>, bool) {
    if let Some(reader) = store.open_snapshot::<ProductInstance>() {
        let started = Instant::now();
        match from_snapshot(store, reader) {
            Ok(loaded) => {
                info!(
                    ms = started.elapsed().as_millis() as u64,
                    "devices read from the snapshot of the last stop"
                );
                store.discard_snapshot();
                return (loaded.0, loaded.1, true);
            }
            Err(e) => warn!(cause = %e, "the snapshot is not used; reading the whole store"),
        }
    }
    let (catalog, unreadable) = gather(
        0,
        vec![Box::new(|tx, prep| Ok(scan(store, None, tx, prep)))],
    )
    .expect("a scan of the store reports unreadable records, never an error");
    store.discard_snapshot();
    (catalog, unreadable, false)
}

/// The other tables from the store, the devices from the snapshot, its blocks decoded by two
/// threads (the first scans the store's small tables before it joins in).
fn from_snapshot(
    store: &Store,
    reader: SnapshotReader,
) -> Result<(Catalog, Vec<String>), SnapshotError> {
    let path = reader.path().to_owned();
    // Tables sized for the announced count, but never beyond what the file's size allows for
    // records of the size devices have (over 256 bytes encoded): a wrong header costs little.
    let expected = reader.expected().min(reader.bytes() / 256);
    let expected = usize::try_from(expected).unwrap_or(0);
    let reader = Mutex::new(reader);
    let blocks = |tx: &SyncSender<Batch>, prep: &Preparer| -> Result<(), SnapshotError> {
        let mut block = Block::default();
        loop {
            let more = reader
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next_block(&mut block)?;
            if !more {
                return Ok(());
            }
            // Small batches: large buffers freed on another thread make the allocator
            // consolidate its free lists over and over.
            let mut devices = Vec::with_capacity(DEVICE_BATCH);
            block.decode::<ProductInstance>(&path, |i| {
                devices.push(prep.prepare(i));
                if devices.len() == DEVICE_BATCH {
                    let full = std::mem::replace(&mut devices, Vec::with_capacity(DEVICE_BATCH));
                    // The receiver lives until every producer has returned.
                    let _ = tx.send(Batch::Devices(full));
                }
            })?;
            let _ = tx.send(Batch::Devices(devices));
        }
    };
    let devices_table = <ProductInstance as store::Record>::TABLE;
    gather(
        expected,
        vec![
            Box::new(|tx, prep| {
                let unreadable = scan(store, Some(devices_table), tx, prep);
                blocks(tx, prep).map(|()| unreadable)
            }),
            Box::new(|tx, prep| blocks(tx, prep).map(|()| Vec::new())),
        ],
    )
}

/// Scans every table but `skip`, sending batches (devices prepared).
fn scan(store: &Store, skip: Option<&str>, tx: &SyncSender<Batch>, prep: &Preparer) -> Vec<String> {
    let (mut records, mut devices) = (Vec::new(), Vec::new());
    let unreadable = tables::scan_records(store, skip, &mut |r: Record| {
        match r {
            Record::Instance(i) => devices.push(prep.prepare(i)),
            other => records.push(other),
        }
        if records.len() == BATCH {
            let _ = tx.send(Batch::Records(std::mem::take(&mut records)));
        }
        if devices.len() == BATCH {
            let _ = tx.send(Batch::Devices(std::mem::take(&mut devices)));
        }
    });
    let _ = tx.send(Batch::Records(records));
    let _ = tx.send(Batch::Devices(devices));
    unreadable
}

/// Runs the producers on their own threads and indexes what they send on this one. The first
/// producer error is the answer (the partly loaded catalog is dropped).
fn gather(
    devices: usize,
    producers: Vec<Producer<'_>>,
) -> Result<(Catalog, Vec<String>), SnapshotError> {
    let (tx, rx) = sync_channel::<Batch>(32);
    let mut load = CatalogLoad::new();
    load.reserve_devices(devices);
    let preparer = load.preparer();
    std::thread::scope(|scope| {
        let handles: Vec<_> = producers
            .into_iter()
            .map(|produce| {
                let (tx, preparer) = (tx.clone(), preparer.clone());
                std::thread::Builder::new()
                    .name("catalog-load".into())
                    .spawn_scoped(scope, move || produce(&tx, &preparer))
                    .expect("a thread to load the catalog")
            })
            .collect();
        drop(tx);
        let (mut waited, started) = (Duration::ZERO, Instant::now());
        loop {
            let before = Instant::now();
            let Ok(batch) = rx.recv() else { break };
            waited += before.elapsed();
            match batch {
                Batch::Records(records) => records.into_iter().for_each(|r| load.add(r)),
                Batch::Devices(devices) => devices.into_iter().for_each(|d| load.add_prepared(d)),
            }
        }
        let received = started.elapsed();
        let mut unreadable = Vec::new();
        for handle in handles {
            let produced = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            unreadable.extend(produced?);
        }
        let catalog = load.finish();
        debug!(
            total_ms = started.elapsed().as_millis() as u64,
            waiting_for_decoders_ms = waited.as_millis() as u64,
            bulk_indexes_ms = (started.elapsed() - received).as_millis() as u64,
            "catalog indexed"
        );
        Ok((catalog, unreadable))
    })
}

impl App {
    /// Writes the snapshot of the devices that the next start reads instead of scanning the
    /// store, holding the write lock so nothing changes meanwhile. For a clean stop, after the
    /// last write; a satellite whose store has failed a write writes none. Returns the file's
    /// size.
    pub fn write_snapshot(&self) -> Result<u64, StoreError> {
        let _turn = self.inner.writers.enter();
        let state = self.inner.state.write().unwrap_or_else(|p| p.into_inner());
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("the operating system's random source is unavailable");
        self.inner
            .store
            .write_snapshot(nonce, state.catalog.instances())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::app::App;
    use crate::app::clock::SystemClock;
    use crate::domain::{Catalog, Change, DeviceTimers, DomainError, Record};
    use crate::loadgen::fill::{FillOptions, fill};

    fn open(dir: &std::path::Path) -> App {
        App::open(dir, Arc::new(SystemClock), DeviceTimers::default()).expect("opens")
    }

    /// Every device, in id order: what two loads of one store must agree on.
    fn devices(c: &Catalog) -> Vec<String> {
        let mut out: Vec<_> = c.instances().map(|i| format!("{i:?}")).collect();
        out.sort();
        out
    }

    /// A start from the snapshot sees what a full start sees, uses the snapshot once, and a
    /// change made after it is not lost to the snapshot at the following start.
    #[tokio::test]
    async fn a_start_from_the_snapshot_sees_what_a_full_start_sees() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        fill(&FillOptions {
            store_dir: store.clone(),
            devices: 9000,
            vas: 20,
            tags: 4,
            seed: 3,
            oversubscribed_every: 5,
            progress: None,
            now: time::OffsetDateTime::now_utc(),
        })
        .unwrap();
        let app = open(&store);
        assert!(!app.devices_from_snapshot());
        let full = app.read(devices);
        assert_eq!(full.len(), 9000);
        app.write_snapshot().expect("snapshot written");
        let snapshot = store.with_extension("snapshot");
        assert!(snapshot.exists());
        drop(app);

        let app = open(&store);
        assert!(app.devices_from_snapshot());
        assert_eq!(app.read(devices), full);
        assert!(!snapshot.exists(), "a snapshot is used once, then removed");
        // One device renamed, then a stop without a snapshot (a crash).
        let mut renamed = app.read(|c| c.instances().next().cloned()).unwrap();
        renamed.hostname = "renamed-after-the-snapshot".into();
        app.change("test", |_, _| {
            Ok::<_, DomainError>((Change::silent().put(Record::Instance(renamed.clone())), ()))
        })
        .await
        .unwrap();
        let after = app.read(devices);
        drop(app);

        let app = open(&store);
        assert!(!app.devices_from_snapshot());
        assert_eq!(app.read(devices), after);
        assert_ne!(after, full);
    }
}
