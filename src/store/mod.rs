//! Persistence: typed tables over sled, atomic batches, and durable group commit.
//!
//! This module is the only code in satellite that names sled, and its `codec.rs` is the only
//! code that names bincode, so the storage engine and the encoding can each be replaced behind
//! one boundary. It knows nothing about licenses or devices: callers define [`Record`] types, each
//! of which lives in one table (one sled tree), and the store reads, scans and writes them.
//!
//! Writes go through a [`Batch`]: [`Store::commit`] (or [`Store::stage`], then
//! [`Staged::durable`]) queues the batch; one committer writes all the batches queued at that
//! moment to the journal as one frame, `fdatasync`s it, then applies them to sled in order (see
//! `commit.rs` and `journal.rs`); sled is flushed and its files synced at checkpoints
//! (`fsync.rs`). `Ok` from a commit means durable, across a killed process and a power cut, and
//! each batch is all-or-nothing after a crash: opening the store replays the journal.
//!
//! On open, the store checks its schema version and runs migrations (see `schema.rs`).

/// Backup files: `Store::export`, `Store::import` and `verify`.
pub mod backup;
mod codec;
mod commit;
mod error;
mod fsync;
mod journal;
mod schema;
mod snapshot;
/// The satellite's own tables; written separately, and the only part of this module that knows
/// the domain.
pub mod tables;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use backup::{BACKUP_FORMAT, BackupError, BackupSummary};
pub use codec::{CodecError, MAX_RECORD_BYTES, Record, decode, decode_payload, encode};
pub use error::StoreError;
pub use schema::{MIGRATIONS, Migration, MigrationCtx, RawEntry, SCHEMA_VERSION};
pub use snapshot::{Block, Nonce, SnapshotError, SnapshotReader};

use commit::GroupCommit;
use fsync::StoreFiles;

/// A batch queued by [`Store::stage`], not yet known to be on disk.
#[must_use = "a staged batch is not durable until `durable()` returns Ok"]
#[derive(Debug)]
pub struct Staged {
    store: Store,
    /// The batch's number in the commit queue; `None` for an empty batch.
    seq: Option<u64>,
}

impl Staged {
    /// Returns once the staged batch is on disk.
    pub async fn durable(self) -> Result<(), StoreError> {
        match self.seq {
            None => Ok(()),
            Some(seq) => self
                .store
                .inner
                .group
                .durable(seq)
                .await
                .map_err(|cause| StoreError::Flush { cause }),
        }
    }
}

/// A cheap-to-clone handle on the open store. The store closes (after a final flush) when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Shared>,
}

struct Shared {
    // Declared first so that it drops first: its drop applies and flushes what is pending and
    // joins the committer thread, which holds handles on `db` and the trees.
    group: GroupCommit,
    db: sled::Db,
    /// The registered tables, in registration order.
    trees: Vec<sled::Tree>,
    /// Table name to index in `trees`.
    index: HashMap<&'static str, usize>,
    path: PathBuf,
    /// The nonce of the snapshot written at the last clean stop, taken out of the store by
    /// this open (see `snapshot.rs`).
    snapshot_nonce: Option<Nonce>,
    /// Set when a snapshot is written: from then on every batch is refused, so nothing can be
    /// written that the snapshot lacks while the store names it.
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// One write: `value` `None` removes `key`. `T` addresses the tree: a table name in a batch,
/// an index into the store's trees once staged.
#[derive(Debug)]
struct Op<T> {
    tree: T,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// A set of writes to be committed together. Records are encoded when they are added, so a
/// batch holds only bytes and can be built anywhere.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<Op<&'static str>>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `record` under its key, replacing any record there.
    pub fn put<R: Record>(&mut self, record: &R) {
        self.ops.push(Op {
            tree: R::TABLE,
            key: record.key(),
            value: Some(encode(record)),
        });
    }

    /// Removes the record of type `R` under `key`, if there is one.
    pub fn delete<R: Record>(&mut self, key: &[u8]) {
        self.ops.push(Op {
            tree: R::TABLE,
            key: key.to_vec(),
            value: None,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir` with the given tables, at the current schema.
    pub fn open(dir: &Path, tables: &[&'static str]) -> Result<Store, StoreError> {
        Self::open_with(dir, tables, SCHEMA_VERSION, MIGRATIONS)
    }

    /// Opens the store as a satellite whose schema is `current_schema` with `migrations` would.
    /// Tests use it to play an older or a newer release.
    pub fn open_with(
        dir: &Path,
        tables: &[&'static str],
        current_schema: u32,
        migrations: &[Migration],
    ) -> Result<Store, StoreError> {
        for table in tables {
            if *table == schema::META_TREE || table.starts_with("__sled") {
                return Err(StoreError::ReservedTable {
                    table: (*table).to_owned(),
                });
            }
        }
        let path = dir.to_owned();
        let db = open_db(dir)?;
        // A store from a newer release is refused untouched. Otherwise the journal is replayed
        // first, at the schema its frames were written in, and the store migrated after.
        schema::refuse_foreign_or_newer(&db, &path, current_schema)?;
        let (journal, replayed) =
            journal::Journal::open(dir, &db).map_err(|cause| StoreError::Journal {
                path: dir.join(journal::JOURNAL_FILE),
                cause: cause.to_string(),
            })?;
        schema::ensure(&db, &path, current_schema, migrations)?;
        if replayed.groups > 0 {
            tracing::info!(
                groups = replayed.groups,
                writes = replayed.writes,
                "replayed the store's journal: the last stop was not clean"
            );
        }
        let snapshot_nonce = snapshot::take_nonce(&db)?;
        let mut trees = Vec::with_capacity(tables.len());
        let mut index = HashMap::with_capacity(tables.len());
        for table in tables {
            if !index.contains_key(table) {
                index.insert(*table, trees.len());
                trees.push(
                    db.open_tree(table)
                        .map_err(StoreError::storage("open_tree"))?,
                );
            }
        }
        // Whatever opening wrote (a new store, a migration, new tables) is made durable before
        // the first commit can be acknowledged.
        db.flush().map_err(StoreError::storage("flush"))?;
        let files = StoreFiles::open(dir).map_err(|source| StoreError::Open {
            path: path.clone(),
            cause: source.into(),
        })?;
        let group = GroupCommit::start(db.clone(), trees.clone(), files, journal)
            .map_err(StoreError::Thread)?;
        Ok(Store {
            inner: Arc::new(Shared {
                group,
                db,
                trees,
                index,
                path,
                snapshot_nonce,
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// A table to read: once every write answered so far is in sled.
    fn tree(&self, table: &str) -> Result<&sled::Tree, StoreError> {
        self.inner.group.settled();
        match self.inner.index.get(table) {
            Some(&i) => Ok(&self.inner.trees[i]),
            None => Err(StoreError::UnknownTable {
                table: table.to_owned(),
            }),
        }
    }

    /// Resolves a batch's tables for the committer, refusing it if the store is poisoned or a
    /// table is unknown.
    fn resolve(&self, batch: Batch) -> Result<commit::Writes, StoreError> {
        if let Some(cause) = self.inner.group.failure() {
            return Err(StoreError::Flush { cause });
        }
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        batch
            .ops
            .into_iter()
            .map(|Op { tree, key, value }| {
                Ok(Op {
                    tree: self.index(tree)?,
                    key,
                    value,
                })
            })
            .collect()
    }

    fn index(&self, table: &str) -> Result<usize, StoreError> {
        self.inner
            .index
            .get(table)
            .copied()
            .ok_or_else(|| StoreError::UnknownTable {
                table: table.to_owned(),
            })
    }

    /// Commits `batch` atomically and returns once it is on disk. An empty batch returns at
    /// once.
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.stage(batch)?.durable().await
    }

    /// Queues `batch` for the committer behind every batch staged before it, and returns a
    /// [`Staged`] to await its durability. The batch becomes visible to readers of the store
    /// once its group's journal write is synced (a read waits for sled to apply it). Callers
    /// that must write in the same order as an in-memory update stage under their own lock and
    /// await outside it, so concurrent writers share one journal write and one sync. Refused at once (and nothing
    /// queued) if the store is poisoned or a table is unknown.
    pub fn stage(&self, batch: Batch) -> Result<Staged, StoreError> {
        if batch.is_empty() {
            return Ok(Staged {
                store: self.clone(),
                seq: None,
            });
        }
        let writes = self.resolve(batch)?;
        let seq = self.inner.group.stage(writes);
        Ok(Staged {
            store: self.clone(),
            seq: Some(seq),
        })
    }

    /// Like [`Store::commit`] for callers outside an async runtime (tools, startup): journals
    /// and applies the batch behind everything queued, on the calling thread. Never call it
    /// from an async task.
    pub fn commit_blocking(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let writes = self.resolve(batch)?;
        self.inner
            .group
            .commit_blocking(writes)
            .map_err(|cause| StoreError::Flush { cause })
    }

    /// Waits until everything staged so far, including raw writes, is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        if let Some(cause) = self.inner.group.failure() {
            return Err(StoreError::Flush { cause });
        }
        let seq = self.inner.group.stage(Vec::new());
        Staged {
            store: self.clone(),
            seq: Some(seq),
        }
        .durable()
        .await
    }

    /// Reads the record of type `R` under `key`.
    pub fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>, StoreError> {
        let value = self
            .tree(R::TABLE)?
            .get(key)
            .map_err(StoreError::storage("get"))?;
        Ok(value
            .map(|bytes| decode(R::TABLE, key, &bytes))
            .transpose()?)
    }

    /// Iterates over all records of type `R` in key order. A record that cannot be read yields
    /// an `Err` for that item and the iteration goes on with the next one.
    pub fn scan<R: Record>(&self) -> impl Iterator<Item = Result<R, StoreError>> + use<R> {
        records::<R>(self.tree(R::TABLE).map(sled::Tree::iter))
    }

    /// Like [`Store::scan`], over the keys in `range`.
    pub fn scan_range<R: Record, B: RangeBounds<Vec<u8>>>(
        &self,
        range: B,
    ) -> impl Iterator<Item = Result<R, StoreError>> + use<R, B> {
        records::<R>(self.tree(R::TABLE).map(|tree| tree.range(range)))
    }

    /// Like [`Store::scan`], in descending key order.
    pub fn scan_rev<R: Record>(&self) -> impl Iterator<Item = Result<R, StoreError>> + use<R> {
        records::<R>(self.tree(R::TABLE).map(|tree| tree.iter().rev()))
    }

    /// Like [`Store::scan_rev`], starting below `key` (exclusive): for paging backwards.
    pub fn scan_rev_below<R: Record>(
        &self,
        key: Vec<u8>,
    ) -> impl Iterator<Item = Result<R, StoreError>> + use<R> {
        records::<R>(self.tree(R::TABLE).map(|tree| tree.range(..key).rev()))
    }

    /// The record of type `R` with the greatest key.
    pub fn last<R: Record>(&self) -> Result<Option<R>, StoreError> {
        let last = self
            .tree(R::TABLE)?
            .last()
            .map_err(StoreError::storage("last"))?;
        Ok(last
            .map(|(key, bytes)| decode(R::TABLE, &key, &bytes))
            .transpose()?)
    }

    /// The greatest key in `R`'s table, whether or not its record decodes.
    pub fn last_key<R: Record>(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let last = self
            .tree(R::TABLE)?
            .last()
            .map_err(StoreError::storage("last"))?;
        Ok(last.map(|(key, _)| key.to_vec()))
    }

    /// How many records of type `R` there are. This walks the table.
    pub fn count<R: Record>(&self) -> Result<usize, StoreError> {
        Ok(self.tree(R::TABLE)?.len())
    }

    /// Writes raw bytes (format byte included) under `key` in a registered table, bypassing the
    /// codec, durably (through the journal, as any commit). For tests and tooling, outside an
    /// async runtime's workers.
    pub fn put_raw(&self, table: &str, key: &[u8], bytes: &[u8]) -> Result<(), StoreError> {
        let op = Op {
            tree: self.index(table)?,
            key: key.to_vec(),
            value: Some(bytes.to_vec()),
        };
        self.inner
            .group
            .commit_blocking(vec![op])
            .map_err(|cause| StoreError::Flush { cause })
    }

    /// Reads the raw bytes under `key` in a registered table.
    pub fn get_raw(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self
            .tree(table)?
            .get(key)
            .map_err(StoreError::storage("get_raw"))?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// The space the store's files take on disk, in bytes: sled's and the journal's.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        let sled = self
            .inner
            .db
            .size_on_disk()
            .map_err(StoreError::storage("size_on_disk"))?;
        let journal =
            std::fs::metadata(self.inner.path.join(journal::JOURNAL_FILE)).map_or(0, |m| m.len());
        Ok(sled + journal)
    }

    /// Bytes of journal frames written since the last checkpoint: what a start after a crash
    /// would replay.
    pub fn journal_bytes(&self) -> u64 {
        self.inner.group.journal_bytes()
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many groups the store has synced to its journal (one `fdatasync` each) since it was
    /// opened.
    pub fn flushes(&self) -> u64 {
        self.inner.group.flushes()
    }

    /// How many checkpoints (sled flushed, its files synced, a new journal epoch) the store has
    /// taken since it was opened.
    pub fn checkpoints(&self) -> u64 {
        self.inner.group.checkpoints()
    }

    /// How many commit groups (one journal frame and one sync each) have been applied.
    pub fn groups(&self) -> u64 {
        self.inner.group.groups()
    }

    /// Why the store refuses writes, if a flush has failed (see `commit.rs`).
    pub fn write_failure(&self) -> Option<String> {
        self.inner.group.failure().map(|c| c.to_string())
    }

    /// Total and longest time spent flushing, in microseconds.
    pub fn flush_time(&self) -> (u64, u64) {
        self.inner.group.flush_time()
    }

    /// How many non-empty batches have been staged since the store was opened.
    pub fn commits(&self) -> u64 {
        self.inner.group.commits()
    }
}

/// Decodes the items of a sled iterator as records of type `R`; an unknown table becomes a
/// single `Err` item.
fn records<R: Record>(
    iter: Result<impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>, StoreError>,
) -> impl Iterator<Item = Result<R, StoreError>> {
    let (error, iter) = match iter {
        Ok(iter) => (None, Some(iter)),
        Err(err) => (Some(Err(err)), None),
    };
    error
        .into_iter()
        .chain(iter.into_iter().flatten().map(|item| {
            let (key, bytes) = item.map_err(StoreError::storage("scan"))?;
            Ok(decode(R::TABLE, &key, &bytes)?)
        }))
}

/// sled's page cache. Every record the satellite serves from lives in the catalog in memory;
/// sled reads only at start-up, for backups and to update records, so its default 1 GiB cache
/// would mostly duplicate the catalog (docs/benchmarks.md, "Scale"). At a million devices
/// 128 MiB held 88 MiB more than 32 MiB after start, for no more usage reports per second
/// (docs/benchmarks.md, "Memory per device at 1,000,000 devices").
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// sled's own periodic flush. Durability does not depend on it: the journal makes groups
/// durable and the committer flushes sled at checkpoints (`commit.rs`). It is kept because it
/// keeps sled's files close to its memory (a shorter replay after a crash), and because it is
/// what hands the start-up's freed memory back to the system: mimalloc returns freed pages only
/// when some thread allocates after its purge delay, and without this thread an idle daemon
/// kept ~200 MiB of load-time buffers at a million devices (docs/benchmarks.md, "A journal of
/// our own"). Unit tests turn it off, so that a store copied while open shows what the journal
/// alone recovers.
const SLED_FLUSH_EVERY_MS: Option<u64> = if cfg!(test) { None } else { Some(500) };

/// How long an open waits for a lock this process itself still holds.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the sled database. sled releases its directory lock from background threads when the
/// last handle of a previous open is dropped in this process, so a prompt reopen (a restore, a
/// test) may briefly find the lock held: wait for its release, for a bounded time. A lock that
/// another process holds is refused at once, naming it.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(SLED_FLUSH_EVERY_MS)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(e) if e.to_string().contains("could not acquire lock") => {
                let pid = Store::lock_holder(dir);
                let other = pid.is_some_and(|p| p != std::process::id());
                if other || std::time::Instant::now() >= deadline {
                    return Err(StoreError::Locked {
                        path: dir.to_owned(),
                        pid,
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(cause) => {
                return Err(StoreError::Open {
                    path: dir.to_owned(),
                    cause,
                });
            }
        }
    }
}

impl Store {
    /// The process holding the lock of the store in `dir`, if one does and the system says
    /// which (Linux lists every `flock` with its owner in `/proc/locks`). Opens nothing and
    /// creates nothing, so a daemon can ask before it touches a data directory.
    pub fn lock_holder(dir: &Path) -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        // sled locks the `db` file of its directory.
        let inode = std::fs::metadata(dir.join("db")).ok()?.ino();
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        lock_owner(&locks, inode)
    }
}

/// The owner of the `flock` on `inode` in the text of `/proc/locks`, whose lines read
/// `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF` (waiters have `->` after the number).
/// The device is not compared: its numbering differs between `stat` and this file on some
/// file systems, and an inode that is locked is enough to tell.
fn lock_owner(locks: &str, inode: u64) -> Option<u32> {
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, file, ..] => {
                let (_, ino) = file.rsplit_once(':')?;
                (ino.parse::<u64>().ok()? == inode).then(|| pid.parse().ok())?
            }
            _ => None,
        }
    })
}
