//! Backup files: a self-describing, checksummed copy of every table, independent of the engine
//! and of the record encoding.
//!
//! A backup holds the raw stored bytes of every record (format byte included), so it does not
//! depend on bincode or sled, and a restore puts back exactly what was there: records in an old
//! format are upgraded lazily on read as usual, and a backup from an older schema is migrated
//! when the restored store is first opened. The layout (all integers big-endian):
//!
//! ```text
//! magic "SATBAK01"
//! header   format u32 | schema u32 | created_at i64 (unix seconds) | tables u32 | records u64
//! table    name_len u16 | name | records u64 | records × entry
//! entry    key_len u32 | key | value_len u32 | value
//! trailer  records u64 | SHA-256 of every byte before it
//! ```
//!
//! The record count is written twice (header and trailer) so that a truncated file can say how
//! much is missing. Two hashes describe a backup, and they are not the same: the trailer's
//! *content checksum* covers every byte before it, while the *SHA-256* that `satellite backup`
//! prints and the audit log records covers the whole file, trailer included, so that it is what
//! `sha256sum FILE` prints and an operator can check a copy with standard tools. [`Store::import`](crate::store::Store::import) reads the whole file and checks its structure and checksum
//! before it writes anything, then writes into a temporary sibling directory that is renamed into
//! place only once complete: a damaged backup never leaves a half-restored store behind.
//!
//! [`Store::export`](crate::store::Store::export) is consistent only if nothing writes to the store while it runs; the caller
//! excludes writers (the app holds its catalog lock, see `App::backup`).
//!
//! One file per concern: `write.rs` exports, `read.rs` reads and checks a file (and `verify`),
//! `restore.rs` writes a checked file into a new store.

mod read;
mod restore;
mod write;

use std::io;
use std::path::PathBuf;

pub use read::{verify, verify_bytes};

use super::StoreError;

/// The backup format this satellite writes, and the newest it reads.
pub const BACKUP_FORMAT: u32 = 1;

const MAGIC: &[u8; 8] = b"SATBAK01";
/// The largest key and value a backup may hold. Export refuses larger entries, so every backup
/// it writes can be read back; import refuses them so a damaged length cannot allocate wildly.
const MAX_KEY_BYTES: u32 = 1 << 20;
const MAX_VALUE_BYTES: u32 = 64 << 20;
const MAX_TABLES: u32 = 4096;
/// How often (in records) progress is reported.
const PROGRESS_EVERY: u64 = 1000;

/// Why a backup could not be written or restored. Every message names the file or directory
/// and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Writing the backup to its destination failed.
    #[error("cannot write the backup: {0}")]
    Write(#[source] io::Error),

    /// A temporary file or directory (the export's scratch file, the restored store's
    /// directory) could not be created.
    #[error(transparent)]
    Scratch(#[from] crate::fsutil::WriteError),

    /// Reading the backup file, or writing the restored store's files, failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    /// The file does not start with the backup magic.
    #[error(
        "{} is not a satellite backup (it does not start with \"SATBAK01\")",
        path.display()
    )]
    NotABackup { path: PathBuf },

    /// The file was written by a newer satellite in a format this one cannot read.
    #[error(
        "backup {} has format version {found} but this satellite reads up to {supported}; \
         restore it with a newer satellite",
        path.display()
    )]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The backup holds a store of a newer schema than this satellite can open.
    #[error(
        "backup {} holds a store of schema version {found} but this satellite supports up to \
         {supported}; restore it with a newer satellite",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The file ends early.
    #[error(
        "backup {} is truncated: {detail}; the copy is incomplete, take or fetch it again",
        path.display()
    )]
    Truncated { path: PathBuf, detail: String },

    /// The content does not match the checksum in the trailer.
    #[error(
        "backup {} failed its checksum (SHA-256 mismatch): the file is damaged; restore from \
         another copy",
        path.display()
    )]
    ChecksumMismatch { path: PathBuf },

    /// The structure is inconsistent (a length or count that cannot be right).
    #[error("backup {} is damaged: {reason}; restore from another copy", path.display())]
    Damaged { path: PathBuf, reason: String },

    /// An entry is too large to be written to a backup.
    #[error("table {table} holds an entry of {len} bytes, too large for a backup")]
    Oversized { table: String, len: usize },

    /// A table changed while it was being exported: the caller did not exclude writers.
    #[error(
        "table {table} changed during the backup, so the copy would not be consistent (this is \
         a bug in satellite); take the backup again"
    )]
    Changed { table: String },

    /// The restore target already holds something.
    #[error(
        "{} already holds a store (or other files); restore into an empty or new directory",
        dir.display()
    )]
    TargetNotEmpty { dir: PathBuf },

    /// The store could not be read, or the restored store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub format: u32,
    /// The schema version of the store the backup was taken from.
    pub schema: u32,
    /// When the backup was taken, unix seconds.
    pub created_at: i64,
    /// Table names and their record counts, in file order.
    pub tables: Vec<(String, u64)>,
    pub records: u64,
    /// The size of the backup file.
    pub bytes: u64,
    /// The SHA-256 of the whole file, lower-case hex: what `sha256sum FILE` prints.
    pub sha256: String,
    /// The content checksum stored in the trailer (the SHA-256 of every byte before it),
    /// lower-case hex.
    pub content_sha256: String,
}

/// Which step a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Export,
    Verify,
    Restore,
}

/// Records done so far out of `total`, reported every thousand records and at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub records: u64,
    pub total: u64,
}

#[cfg(test)]
mod tests;
