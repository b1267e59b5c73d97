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
//! `sha256sum FILE` prints and an operator can check a copy with standard tools. [`Store::import`] reads the whole file and checks its structure and checksum
//! before it writes anything, then writes into a temporary sibling directory that is renamed into
//! place only once complete: a damaged backup never leaves a half-restored store behind.
//!
//! [`Store::export`] is consistent only if nothing writes to the store while it runs; the caller
//! excludes writers (the app holds its catalog lock, see `App::backup`).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;

use super::schema::{self, META_TREE, MIGRATIONS, SCHEMA_VERSION};
use super::{Store, StoreError};
use crate::hex::encode as hex;

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

impl Store {
    /// Writes every registered table to `out` as a backup file. The result is a consistent
    /// snapshot only if nothing writes to the store meanwhile: the caller must exclude writers.
    pub fn export(
        &self,
        out: &mut impl Write,
        mut progress: impl FnMut(Progress),
    ) -> Result<BackupSummary, BackupError> {
        // No commit group may land in the middle of the copy; groups staged meanwhile wait.
        let _paused = self.inner.group.pause();
        let mut tables: Vec<(&str, &sled::Tree)> = self
            .inner
            .index
            .iter()
            .map(|(name, &i)| (*name, &self.inner.trees[i]))
            .collect();
        tables.sort_by_key(|(name, _)| self.inner.index[name]);
        // Counted first so that the header can say how many records follow; nothing writes
        // meanwhile, so the walk below finds the same number.
        let counts: Vec<u64> = tables.iter().map(|(_, t)| t.len() as u64).collect();
        let total: u64 = counts.iter().sum();
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);

        let mut w = HashWriter::new(out);
        w.put(MAGIC)?;
        w.put(&BACKUP_FORMAT.to_be_bytes())?;
        w.put(&SCHEMA_VERSION.to_be_bytes())?;
        w.put(&created_at.to_be_bytes())?;
        w.put(&(tables.len() as u32).to_be_bytes())?;
        w.put(&total.to_be_bytes())?;
        let mut done = 0u64;
        let mut summary_tables = Vec::with_capacity(tables.len());
        for ((name, tree), &count) in tables.iter().zip(&counts) {
            w.put(&(name.len() as u16).to_be_bytes())?;
            w.put(name.as_bytes())?;
            w.put(&count.to_be_bytes())?;
            let mut written = 0u64;
            for item in tree.iter() {
                let (key, value) = item.map_err(StoreError::storage("backup scan"))?;
                let oversized = |len: usize| BackupError::Oversized {
                    table: (*name).to_owned(),
                    len,
                };
                if key.len() > MAX_KEY_BYTES as usize {
                    return Err(oversized(key.len()));
                }
                if value.len() > MAX_VALUE_BYTES as usize {
                    return Err(oversized(value.len()));
                }
                w.put(&(key.len() as u32).to_be_bytes())?;
                w.put(&key)?;
                w.put(&(value.len() as u32).to_be_bytes())?;
                w.put(&value)?;
                written += 1;
                done += 1;
                if done.is_multiple_of(PROGRESS_EVERY) {
                    progress(Progress {
                        phase: Phase::Export,
                        records: done,
                        total,
                    });
                }
            }
            if written != count {
                return Err(BackupError::Changed {
                    table: (*name).to_owned(),
                });
            }
            summary_tables.push(((*name).to_owned(), count));
        }
        w.put(&total.to_be_bytes())?;
        let (mut out, hash, bytes) = w.finish();
        out.write_all(hash.content.as_ref())
            .map_err(BackupError::Write)?;
        out.flush().map_err(BackupError::Write)?;
        progress(Progress {
            phase: Phase::Export,
            records: done,
            total,
        });
        Ok(BackupSummary {
            format: BACKUP_FORMAT,
            schema: SCHEMA_VERSION,
            created_at,
            tables: summary_tables,
            records: total,
            bytes: bytes + hash.content.as_ref().len() as u64,
            sha256: hex(hash.file.as_ref()),
            content_sha256: hex(hash.content.as_ref()),
        })
    }

    /// Restores the backup `file` as a new store in `dir`, which must not exist or be empty.
    ///
    /// The whole file is checked first (structure, counts, checksum); nothing is written unless
    /// it is intact. The store is then written into a temporary sibling of `dir`, migrated if
    /// the backup is from an older schema, given the trees of `tables`, and renamed to `dir`. On any failure `dir` is as it was and the temporary directory is gone.
    pub fn import(
        file: &Path,
        dir: &Path,
        tables: &[&'static str],
        mut progress: impl FnMut(Progress),
    ) -> Result<BackupSummary, BackupError> {
        ensure_empty(dir)?;
        let summary = read_backup(file, Phase::Verify, &mut progress, |_, _, _| Ok(()))?;
        if summary.schema > SCHEMA_VERSION {
            return Err(BackupError::NewerSchema {
                path: file.to_owned(),
                found: summary.schema,
                supported: SCHEMA_VERSION,
            });
        }
        let tmp = crate::fsutil::private_dir_beside(dir, "restore")?;
        let result = write_store(file, &tmp, &summary, tables, &mut progress).and_then(|()| {
            std::fs::rename(&tmp, dir).map_err(|source| BackupError::Io {
                op: "move the restored store to",
                path: dir.to_owned(),
                source,
            })
        });
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(summary)
    }
}

/// Checks a backup file completely (structure, counts, checksum) without restoring it.
pub fn verify(
    file: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<BackupSummary, BackupError> {
    read_backup(file, Phase::Verify, &mut progress, |_, _, _| Ok(()))
}

/// Writes the verified backup into a new store at `tmp` and brings it to the current schema,
/// so that a restored store is known to open (and is migrated) before it is moved.
fn write_store(
    file: &Path,
    tmp: &Path,
    expected: &BackupSummary,
    tables: &[&'static str],
    progress: &mut dyn FnMut(Progress),
) -> Result<(), BackupError> {
    let db = sled::Config::new()
        .path(tmp)
        .open()
        .map_err(|cause| StoreError::Open {
            path: tmp.to_owned(),
            cause,
        })?;
    // Marks the new store with the backup's schema, so that opening it below migrates it.
    schema::ensure(&db, tmp, expected.schema, &[])?;
    let mut tree: Option<(usize, sled::Tree)> = None;
    let mut batch = sled::Batch::default();
    let mut pending = 0usize;
    let apply = |tree: &Option<(usize, sled::Tree)>, batch: &mut sled::Batch| match tree {
        Some((_, t)) => t
            .apply_batch(std::mem::take(batch))
            .map_err(StoreError::storage("restore write")),
        None => Ok(()),
    };
    let summary = read_backup(file, Phase::Restore, progress, |table, key, value| {
        if tree.as_ref().is_none_or(|(i, _)| *i != table) {
            apply(&tree, &mut batch)?;
            pending = 0;
            let name = &expected.tables[table].0;
            let t = db
                .open_tree(name)
                .map_err(StoreError::storage("restore open_tree"))?;
            tree = Some((table, t));
        }
        batch.insert(key, value);
        pending += 1;
        if pending >= 10_000 {
            apply(&tree, &mut batch)?;
            pending = 0;
        }
        Ok(())
    })?;
    apply(&tree, &mut batch)?;
    if summary.sha256 != expected.sha256 {
        // The file changed between the check and the restore.
        return Err(BackupError::ChecksumMismatch {
            path: file.to_owned(),
        });
    }
    drop(tree);
    // Migrates a backup from an older schema now, on this handle, as `Store::open` would. The
    // store is not closed and reopened here: sled releases its directory lock from background
    // threads, so an immediate reopen in the same process can find it still locked.
    schema::ensure(&db, tmp, SCHEMA_VERSION, MIGRATIONS)?;
    for table in tables {
        db.open_tree(table)
            .map_err(StoreError::storage("restore open_tree"))?;
    }
    db.flush().map_err(StoreError::storage("restore flush"))?;
    // sled's flush is only `sync_file_range`: make the restored files and directories durable
    // before the store is renamed into place, so a power cut after the restore cannot leave a
    // store whose name is on disk but whose records are not.
    super::fsync::StoreFiles::open(tmp).map_err(|source| BackupError::Io {
        op: "make the restored store durable in",
        path: tmp.to_owned(),
        source,
    })?;
    Ok(())
}

/// Reads a backup from start to end, checking it, and hands each record to `sink` as (table
/// index in file order, key, value). Returns the summary only if the file is intact.
fn read_backup(
    path: &Path,
    phase: Phase,
    progress: &mut dyn FnMut(Progress),
    sink: impl FnMut(usize, &[u8], &[u8]) -> Result<(), BackupError>,
) -> Result<BackupSummary, BackupError> {
    let file = File::open(path).map_err(|source| BackupError::Io {
        op: "open the backup",
        path: path.to_owned(),
        source,
    })?;
    let reader = BufReader::with_capacity(1 << 16, file);
    read_backup_from(path, reader, phase, progress, sink)
}

/// Checks a backup held in memory, as [`verify`] checks a file (the fuzz target's entry:
/// whatever the bytes, an error or a summary, never a panic or a wild allocation).
pub fn verify_bytes(bytes: &[u8]) -> Result<BackupSummary, BackupError> {
    let label = Path::new("<in memory>");
    read_backup_from(label, bytes, Phase::Verify, &mut |_| {}, |_, _, _| Ok(()))
}

/// The backup reader over any byte source; `path` names it in errors.
fn read_backup_from<R: Read>(
    path: &Path,
    reader: R,
    phase: Phase,
    progress: &mut dyn FnMut(Progress),
    mut sink: impl FnMut(usize, &[u8], &[u8]) -> Result<(), BackupError>,
) -> Result<BackupSummary, BackupError> {
    let mut r = HashReader::new(path, reader);
    let damaged = |reason: String| BackupError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let truncated = |detail: String| BackupError::Truncated {
        path: path.to_owned(),
        detail,
    };

    let mut magic = [0u8; 8];
    let got = r.fill(&mut magic)?;
    if got == 0 {
        return Err(truncated("the file is empty".into()));
    }
    if magic[..got] != MAGIC[..got] {
        return Err(BackupError::NotABackup {
            path: path.to_owned(),
        });
    }
    if got < magic.len() {
        return Err(truncated("the header is incomplete".into()));
    }
    let header = |r: &mut HashReader<_>, buf: &mut [u8]| -> Result<(), BackupError> {
        if r.fill(buf)? < buf.len() {
            return Err(truncated("the header is incomplete".into()));
        }
        Ok(())
    };
    let mut b4 = [0u8; 4];
    let mut b8 = [0u8; 8];
    header(&mut r, &mut b4)?;
    let format = u32::from_be_bytes(b4);
    if format > BACKUP_FORMAT {
        return Err(BackupError::NewerFormat {
            path: path.to_owned(),
            found: format,
            supported: BACKUP_FORMAT,
        });
    }
    if format == 0 {
        return Err(damaged("its format version is 0".into()));
    }
    header(&mut r, &mut b4)?;
    let schema = u32::from_be_bytes(b4);
    header(&mut r, &mut b8)?;
    let created_at = i64::from_be_bytes(b8);
    header(&mut r, &mut b4)?;
    let table_count = u32::from_be_bytes(b4);
    header(&mut r, &mut b8)?;
    let total = u64::from_be_bytes(b8);
    if table_count > MAX_TABLES {
        return Err(damaged(format!("it claims {table_count} tables")));
    }

    let mut found = 0u64;
    let short = |found: u64| truncated(format!("expected {total} records, found {found}"));
    let mut tables = Vec::with_capacity(table_count as usize);
    let mut key = Vec::new();
    let mut value = Vec::new();
    for index in 0..table_count as usize {
        let mut b2 = [0u8; 2];
        r.exact(&mut b2).map_err(|e| e.or(short(found)))?;
        let mut name = vec![0u8; u16::from_be_bytes(b2) as usize];
        r.exact(&mut name).map_err(|e| e.or(short(found)))?;
        let name = String::from_utf8(name)
            .map_err(|_| damaged(format!("table {} has a name that is not UTF-8", index + 1)))?;
        if name.is_empty() || name == META_TREE || name.starts_with("__sled") {
            return Err(damaged(format!("it holds a table named {name:?}")));
        }
        if tables.iter().any(|(n, _)| *n == name) {
            return Err(damaged(format!("table {name} appears twice")));
        }
        r.exact(&mut b8).map_err(|e| e.or(short(found)))?;
        let count = u64::from_be_bytes(b8);
        if count > total - found {
            return Err(damaged(format!(
                "table {name} claims {count} records but the header counts {total} in all"
            )));
        }
        for _ in 0..count {
            r.entry(&mut key, MAX_KEY_BYTES, &name)
                .map_err(|e| e.or(short(found)))?;
            r.entry(&mut value, MAX_VALUE_BYTES, &name)
                .map_err(|e| e.or(short(found)))?;
            sink(index, &key, &value)?;
            found += 1;
            if found.is_multiple_of(PROGRESS_EVERY) {
                progress(Progress {
                    phase,
                    records: found,
                    total,
                });
            }
        }
        tables.push((name, count));
    }
    if found != total {
        return Err(damaged(format!(
            "the header counts {total} records but the tables hold {found}"
        )));
    }
    let missing = || truncated("the checksum trailer is missing".into());
    r.exact(&mut b8).map_err(|e| e.or(missing()))?;
    let digest = r.digest();
    let mut sha = [0u8; 32];
    if r.fill(&mut sha)? < sha.len() {
        return Err(missing());
    }
    if sha != digest.as_ref() {
        return Err(BackupError::ChecksumMismatch {
            path: path.to_owned(),
        });
    }
    if u64::from_be_bytes(b8) != total {
        return Err(damaged(
            "the trailer's record count differs from the header's".into(),
        ));
    }
    let mut rest = [0u8; 1];
    if r.fill(&mut rest)? > 0 {
        return Err(damaged("there are bytes after the checksum".into()));
    }
    progress(Progress {
        phase,
        records: found,
        total,
    });
    Ok(BackupSummary {
        format,
        schema,
        created_at,
        tables,
        records: total,
        bytes: r.bytes,
        sha256: hex(r.hash.finish().as_ref()),
        content_sha256: hex(&sha),
    })
}

/// A read failure: the file ended (the caller knows what was expected) or another error.
enum ReadError {
    Eof,
    Other(BackupError),
}

impl ReadError {
    fn or(self, eof: BackupError) -> BackupError {
        match self {
            ReadError::Eof => eof,
            ReadError::Other(e) => e,
        }
    }
}

/// Reads a file while hashing what it reads.
struct HashReader<'a, R> {
    path: &'a Path,
    inner: R,
    hash: digest::Context,
    bytes: u64,
}

impl<'a, R: Read> HashReader<'a, R> {
    fn new(path: &'a Path, inner: R) -> Self {
        HashReader {
            path,
            inner,
            hash: digest::Context::new(&digest::SHA256),
            bytes: 0,
        }
    }

    /// Reads as much of `buf` as the file has (hashing it); returns how much was read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, BackupError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(BackupError::Io {
                        op: "read the backup",
                        path: self.path.to_owned(),
                        source,
                    });
                }
            }
        }
        self.hash.update(&buf[..got]);
        self.bytes += got as u64;
        Ok(got)
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        match self.fill(buf) {
            Ok(n) if n == buf.len() => Ok(()),
            Ok(_) => Err(ReadError::Eof),
            Err(e) => Err(ReadError::Other(e)),
        }
    }

    /// Reads one length-prefixed byte string into `out`.
    fn entry(&mut self, out: &mut Vec<u8>, max: u32, table: &str) -> Result<(), ReadError> {
        let mut b4 = [0u8; 4];
        self.exact(&mut b4)?;
        let len = u32::from_be_bytes(b4);
        if len > max {
            return Err(ReadError::Other(BackupError::Damaged {
                path: self.path.to_owned(),
                reason: format!("an entry of table {table} claims {len} bytes"),
            }));
        }
        out.resize(len as usize, 0);
        self.exact(out)
    }

    /// The content checksum: the hash of everything read so far. Reading goes on hashing, so
    /// that once the trailer is read `hash` holds the whole file's.
    fn digest(&self) -> digest::Digest {
        self.hash.clone().finish()
    }
}

/// Writes through a buffer while hashing what it writes.
struct HashWriter<'a, W: Write> {
    inner: BufWriter<&'a mut W>,
    hash: digest::Context,
    bytes: u64,
}

impl<'a, W: Write> HashWriter<'a, W> {
    fn new(inner: &'a mut W) -> Self {
        HashWriter {
            inner: BufWriter::with_capacity(1 << 16, inner),
            hash: digest::Context::new(&digest::SHA256),
            bytes: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.inner.write_all(bytes).map_err(BackupError::Write)
    }

    /// Returns a buffered writer for the trailer, the content checksum to write there (and
    /// the whole file's hash once it is written), and the bytes written so far.
    fn finish(mut self) -> (BufWriter<&'a mut W>, Hashes, u64) {
        let content = self.hash.clone().finish();
        self.hash.update(content.as_ref());
        let file = self.hash.finish();
        (self.inner, Hashes { content, file }, self.bytes)
    }
}

/// The two hashes of a backup (see the module documentation).
struct Hashes {
    /// What the trailer holds: the SHA-256 of every byte before it.
    content: digest::Digest,
    /// The SHA-256 of the whole file, trailer included.
    file: digest::Digest,
}

/// Refuses a restore target that exists and is not an empty directory.
fn ensure_empty(dir: &Path) -> Result<(), BackupError> {
    let not_empty = || BackupError::TargetNotEmpty {
        dir: dir.to_owned(),
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(not_empty()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Err(not_empty()),
        Err(source) => Err(BackupError::Io {
            op: "read the restore target",
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| BackupError::Io {
            op: "sync the directory",
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests;
