//! The store's error type.
//!
//! Callers branch on the cause (a record from a newer satellite is not the same problem as a
//! full disk), and operators read the message, so every variant is documented and every message
//! says what went wrong, where, and what to do about it. sled's own transaction conflicts never
//! appear here: sled retries a conflicting transaction internally until it applies.

use std::path::PathBuf;
use std::sync::Arc;

use super::codec::CodecError;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store directory could not be opened as a sled database. The cause is part of the
    /// message rather than a `source`, so that an error chain does not print it twice.
    #[error(
        "cannot open the store at {}: {cause}; check that the directory is writable by \
         satellite",
        path.display()
    )]
    Open { path: PathBuf, cause: sled::Error },

    /// Another process holds the store's lock: a satellite serving it, or an offline tool
    /// (`restore`, `loadgen fill`) working on it. `pid` is the holder when the system says.
    #[error(
        "the store at {} is in use by another satellite process{}; stop it first, or use \
         another data directory",
        path.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, pid: Option<u32> },

    /// The committer thread could not be started when opening the store.
    #[error("cannot start the store committer thread: {0}; the system is out of threads or memory")]
    Thread(#[source] std::io::Error),

    /// sled reported an I/O or corruption error during an operation.
    #[error(
        "store {op} failed: {source}; check free disk space and the file system, then restart \
         satellite"
    )]
    Storage {
        op: &'static str,
        source: sled::Error,
    },

    /// A stored record could not be decoded; the message names its table and key.
    #[error(transparent)]
    Codec(#[from] CodecError),

    /// The store was written by a newer satellite with a schema this one does not know.
    #[error(
        "store at {} has schema version {found} but this satellite supports up to {supported}; \
         run a newer satellite or restore a backup",
        path.display()
    )]
    SchemaFromTheFuture {
        found: u32,
        supported: u32,
        path: PathBuf,
    },

    /// A migration step failed. The step is applied in one transaction, so the store is still
    /// at schema `from`.
    #[error(
        "migrating the store at {} from schema {from} to {to} ({name}) failed: {reason}; the \
         store is unchanged at schema {from}: fix the cause and restart, or restore a backup",
        path.display()
    )]
    Migration {
        path: PathBuf,
        from: u32,
        to: u32,
        name: &'static str,
        reason: String,
    },

    /// The store has an older schema that this satellite has no migration from.
    #[error(
        "store at {} has schema version {found} and this satellite (schema {supported}) has no \
         migration from it; migrate it with an intermediate satellite release first",
        path.display()
    )]
    NoMigrationPath {
        found: u32,
        supported: u32,
        path: PathBuf,
    },

    /// The schema version record exists but is not a 4-byte big-endian number.
    #[error(
        "store at {} has a damaged schema version record ({len} bytes instead of 4); restore \
         a backup",
        path.display()
    )]
    CorruptSchemaVersion { path: PathBuf, len: usize },

    /// The directory holds data but no schema version, so it was not written by satellite.
    #[error(
        "store at {} holds data but no schema version, so satellite did not create it; point \
         satellite at an empty directory or at its own store",
        path.display()
    )]
    Unversioned { path: PathBuf },

    /// A record type or raw access named a table that was not passed to `Store::open`.
    #[error(
        "table {table} is not registered with the store; add it to the table list passed to \
         Store::open (this is a bug in satellite)"
    )]
    UnknownTable { table: String },

    /// A table name collides with a tree the store keeps for itself.
    #[error("table name {table} is reserved by the store; choose another name")]
    ReservedTable { table: String },

    /// The journal of the store (`journal.rs`) could not be opened or replayed. The store is
    /// left as it was: nothing after the damaged part was applied.
    #[error(
        "cannot replay the store's journal {}: {cause}; it may hold changes acknowledged since \
         the last checkpoint, so satellite does not start without it: fix the cause, or move \
         the file aside to start without them (they are lost), or restore a backup",
        path.display()
    )]
    Journal { path: PathBuf, cause: String },

    /// A flush to disk failed. The store refuses all further writes because a failed `fsync`
    /// cannot be safely retried; see `commit.rs`.
    #[error(
        "the store could not be flushed to disk ({cause}); writes since the last successful \
         flush may be lost and the store refuses further writes: fix the disk, then restart \
         satellite"
    )]
    Flush { cause: Arc<str> },

    /// A snapshot has been written for a stop: the store takes no more writes.
    #[error(
        "the store takes no more writes: the satellite is stopping and has written its \
         snapshot; retry once it runs again"
    )]
    Closed,

    /// The snapshot of a table could not be written at a stop; the next start scans the store.
    #[error("cannot write the snapshot of the store: {0}; the next start reads the whole store")]
    Snapshot(#[from] crate::fsutil::WriteError),
}

impl StoreError {
    /// Wraps a sled error from operation `op`.
    pub(crate) fn storage(op: &'static str) -> impl FnOnce(sled::Error) -> Self {
        move |source| Self::Storage { op, source }
    }
}
