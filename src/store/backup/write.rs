//! Writing a backup: `Store::export` walks every table under a paused commit queue and streams
//! the records through a hashing writer.

use std::io::{BufWriter, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;

use super::{
    BACKUP_FORMAT, BackupError, BackupSummary, MAGIC, MAX_KEY_BYTES, MAX_VALUE_BYTES,
    PROGRESS_EVERY, Phase, Progress,
};
use crate::hex::encode as hex;
use crate::store::{SCHEMA_VERSION, Store, StoreError};

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
        let tables = self.tables_in_order();
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
        let mut done = Done {
            records: 0,
            total,
            progress: &mut progress,
        };
        let mut summary_tables = Vec::with_capacity(tables.len());
        for ((name, tree), &count) in tables.iter().zip(&counts) {
            write_table(&mut w, name, tree, count, &mut done)?;
            summary_tables.push(((*name).to_owned(), count));
        }
        w.put(&total.to_be_bytes())?;
        let (bytes, hash) = w.finish()?;
        done.report();
        Ok(BackupSummary {
            format: BACKUP_FORMAT,
            schema: SCHEMA_VERSION,
            created_at,
            tables: summary_tables,
            records: total,
            bytes,
            sha256: hex(hash.file.as_ref()),
            content_sha256: hex(hash.content.as_ref()),
        })
    }

    /// The registered tables in registration order, which is the order of the backup file.
    fn tables_in_order(&self) -> Vec<(&'static str, &sled::Tree)> {
        let mut tables: Vec<(&'static str, &sled::Tree)> = self
            .inner
            .index
            .iter()
            .map(|(name, &i)| (*name, &self.inner.trees[i]))
            .collect();
        tables.sort_by_key(|(name, _)| self.inner.index[name]);
        tables
    }
}

/// The records written so far of `total`, and where progress goes.
struct Done<'p> {
    records: u64,
    total: u64,
    progress: &'p mut dyn FnMut(Progress),
}

impl Done<'_> {
    fn report(&mut self) {
        (self.progress)(Progress {
            phase: Phase::Export,
            records: self.records,
            total: self.total,
        });
    }
}

/// Writes one table: its name, its record count and every entry. The walk must find the
/// `count` records the header announced, or a writer was not excluded.
fn write_table<W: Write>(
    w: &mut HashWriter<'_, W>,
    name: &str,
    tree: &sled::Tree,
    count: u64,
    done: &mut Done<'_>,
) -> Result<(), BackupError> {
    w.put(&(name.len() as u16).to_be_bytes())?;
    w.put(name.as_bytes())?;
    w.put(&count.to_be_bytes())?;
    let oversized = |len: usize| BackupError::Oversized {
        table: name.to_owned(),
        len,
    };
    let mut written = 0u64;
    for item in tree.iter() {
        let (key, value) = item.map_err(StoreError::storage("backup scan"))?;
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
        done.records += 1;
        if done.records.is_multiple_of(PROGRESS_EVERY) {
            done.report();
        }
    }
    if written != count {
        return Err(BackupError::Changed {
            table: name.to_owned(),
        });
    }
    Ok(())
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

    /// Writes the trailer's checksum (the content's hash, not itself hashed into the content)
    /// and flushes; returns the size of the whole file and its two hashes.
    fn finish(mut self) -> Result<(u64, Hashes), BackupError> {
        let content = self.hash.clone().finish();
        self.hash.update(content.as_ref());
        let file = self.hash.finish();
        self.inner
            .write_all(content.as_ref())
            .map_err(BackupError::Write)?;
        self.inner.flush().map_err(BackupError::Write)?;
        let bytes = self.bytes + content.as_ref().len() as u64;
        Ok((bytes, Hashes { content, file }))
    }
}

/// The two hashes of a backup (see the module documentation).
struct Hashes {
    /// What the trailer holds: the SHA-256 of every byte before it.
    content: digest::Digest,
    /// The SHA-256 of the whole file, trailer included.
    file: digest::Digest,
}
