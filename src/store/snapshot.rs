//! The snapshot of one table, written beside the store at a clean stop and read at the next
//! start instead of scanning that table in sled.
//!
//! Scanning sled's tree of a million device records takes seconds (its iterator searches each
//! node again for every key, and pages nodes in and out of its cache); reading the same records
//! from one sequential file, decoded on every core, takes a fraction of that. The snapshot is
//! only an accelerator: the store stays the truth, and any doubt means a full scan.
//!
//! **When a snapshot is trusted.** Writing one ends with a random 128-bit nonce stored in the
//! store's `__meta` tree (after the file is durable), and the file carries the same nonce.
//! Every open of the store takes the nonce out of `__meta` in the same flush as the open
//! (`Store::open`), before anything can be written: so a store that has changed since the
//! snapshot was written can no longer name it, whoever opened it (the daemon, a restore,
//! `loadgen fill`). A binary that predates snapshots would not take the nonce out, so the
//! schema version that introduced them (3) keeps such binaries from opening the store at all.
//! A snapshot whose nonce, table, checksums or record count do not match is ignored.
//!
//! **Layout** (integers little-endian): the header `SATSNAP1`, the format (`u32`, 1), the nonce
//! (16 bytes), the table name (`u16` length and bytes), the number of records (`u64`, so a
//! reader can size its tables); then blocks, each `u32` record count
//! (never 0), `u32` byte length, the records (each `u32` length and the record's stored bytes:
//! format byte and body, as in the table), and the CRC-32 of the block's bytes; then the end:
//! a `u32` 0 and the total record count as `u64`.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::codec::{self, CodecError, Record};
use crate::fsutil::{NewFile, WriteError};

const MAGIC: &[u8; 8] = b"SATSNAP1";
const FORMAT: u32 = 1;
/// Records per block: a block is the unit one decoding thread takes.
const BLOCK_RECORDS: usize = 4096;
/// A block larger than this is damage, not data (4096 records of at most `MAX_RECORD_BYTES`
/// would be more, but a device record is well under 4 KiB).
const MAX_BLOCK_BYTES: u32 = 64 * 1024 * 1024;

/// The key of the nonce in the store's `__meta` tree.
pub(crate) const NONCE_KEY: &[u8] = b"snapshot_nonce";

pub type Nonce = [u8; 16];

/// Why a snapshot was not used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not a snapshot of this store ({what})", path.display())]
    Mismatch { path: PathBuf, what: &'static str },
    #[error("{} is damaged: {what}", path.display())]
    Damaged { path: PathBuf, what: String },
    #[error("a record in {} cannot be decoded: {source}", path.display())]
    Record { path: PathBuf, source: CodecError },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Writes the records of `R` to `path` under `nonce`, durably (temporary file, fsync, rename,
/// directory fsync), mode 0600. Returns the file's size.
pub(crate) fn write<'a, R: Record + 'a>(
    path: &Path,
    nonce: &Nonce,
    records: impl ExactSizeIterator<Item = &'a R>,
) -> Result<u64, WriteError> {
    let mut file = NewFile::create(path, 0o600)?;
    let mut head = Vec::with_capacity(64);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT.to_le_bytes());
    head.extend_from_slice(nonce);
    head.extend_from_slice(&(R::TABLE.len() as u16).to_le_bytes());
    head.extend_from_slice(R::TABLE.as_bytes());
    head.extend_from_slice(&(records.len() as u64).to_le_bytes());
    file.write_all(&head)?;
    let (mut size, mut total) = (head.len() as u64, 0u64);
    // A block is framed in place: its count and length are written over the first 8 bytes
    // once its records are in, and its CRC appended.
    let mut block = Vec::with_capacity(1 << 20);
    let mut records = records.peekable();
    while records.peek().is_some() {
        block.clear();
        block.extend_from_slice(&[0; 8]);
        let mut count = 0u32;
        for record in records.by_ref().take(BLOCK_RECORDS) {
            let bytes = codec::encode(record);
            block.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            block.extend_from_slice(&bytes);
            count += 1;
        }
        let len = (block.len() - 8) as u32;
        block[..4].copy_from_slice(&count.to_le_bytes());
        block[4..8].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&block[8..]);
        block.extend_from_slice(&crc.to_le_bytes());
        file.write_all(&block)?;
        size += block.len() as u64;
        total += u64::from(count);
    }
    let mut end = [0u8; 12];
    end[4..].copy_from_slice(&total.to_le_bytes());
    file.write_all(&end)?;
    file.commit()?;
    Ok(size + end.len() as u64)
}

/// An open snapshot whose header matched: hands out its blocks, then checks its end.
#[derive(Debug)]
pub struct SnapshotReader {
    file: BufReader<File>,
    path: PathBuf,
    table: &'static str,
    /// The number of records the header announces (checked against the end).
    expected: u64,
    /// The file's size.
    bytes: u64,
    /// Records in the blocks handed out so far.
    seen: u64,
    ended: bool,
}

/// One block of stored records, checked against its CRC, not yet decoded. A reading thread
/// keeps one and has each block read into it: blocks are megabytes, and allocating and freeing
/// one per block costs the allocator more than decoding does.
#[derive(Debug, Default)]
pub struct Block {
    count: u32,
    bytes: Vec<u8>,
}

impl SnapshotReader {
    /// Opens the snapshot at `path` if it was written for `nonce` and table `R`.
    pub(crate) fn open<R: Record>(path: &Path, nonce: &Nonce) -> Result<Self, SnapshotError> {
        let read = |source| SnapshotError::Read {
            path: path.to_owned(),
            source,
        };
        let mismatch = |what| SnapshotError::Mismatch {
            path: path.to_owned(),
            what,
        };
        let mut file = BufReader::with_capacity(1 << 20, File::open(path).map_err(read)?);
        let mut head = [0u8; 30];
        file.read_exact(&mut head).map_err(read)?;
        if &head[..8] != MAGIC || head[8..12] != FORMAT.to_le_bytes() {
            return Err(mismatch("not a snapshot file of this format"));
        }
        if head[12..28] != nonce[..] {
            return Err(mismatch("its nonce is not the one the store recorded"));
        }
        let mut name = vec![0u8; usize::from(u16::from_le_bytes([head[28], head[29]]))];
        file.read_exact(&mut name).map_err(read)?;
        if name != R::TABLE.as_bytes() {
            return Err(mismatch("it holds another table"));
        }
        let mut expected = [0u8; 8];
        file.read_exact(&mut expected).map_err(read)?;
        let expected = u64::from_le_bytes(expected);
        // Every record takes at least its 4-byte length and its format byte: a header that
        // announces more than the file can hold is damage (and must not size any table).
        let len = file.get_ref().metadata().map_err(read)?.len();
        if expected > len / 5 {
            return Err(SnapshotError::Damaged {
                path: path.to_owned(),
                what: format!("its header announces {expected} records in {len} bytes"),
            });
        }
        Ok(SnapshotReader {
            file,
            path: path.to_owned(),
            table: R::TABLE,
            expected,
            bytes: len,
            seen: 0,
            ended: false,
        })
    }

    fn damaged(&self, what: impl Into<String>) -> SnapshotError {
        SnapshotError::Damaged {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    /// The next block, `None` after the end (whose record count has then been checked). After
    /// an error the reader hands out nothing more: the caller that got the error reports it,
    /// and another thread sharing the reader is not told about a misleading end.
    pub fn next_block(&mut self, into: &mut Block) -> Result<bool, SnapshotError> {
        if self.ended {
            return Ok(false);
        }
        let read = self.read_block(into);
        if read.is_err() {
            self.ended = true;
        }
        read
    }

    /// The number of records the snapshot says it holds (for sizing; the end checks it).
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// The file's size in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn read_block(&mut self, into: &mut Block) -> Result<bool, SnapshotError> {
        let path = self.path.clone();
        let truncated = move |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => SnapshotError::Damaged {
                path,
                what: "it ends before its end marker".into(),
            },
            _ => SnapshotError::Read { path, source: e },
        };
        let mut frame = [0u8; 8];
        self.file
            .read_exact(&mut frame)
            .map_err(truncated.clone())?;
        let count = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes"));
        if count == 0 {
            let low = u32::from_le_bytes(frame[4..].try_into().expect("4 bytes"));
            let mut high = [0u8; 4];
            self.file.read_exact(&mut high).map_err(truncated.clone())?;
            let total = u64::from(low) | u64::from(u32::from_le_bytes(high)) << 32;
            if total != self.seen || total != self.expected {
                return Err(self.damaged(format!(
                    "its end says {total} records, its header {}, its blocks hold {}",
                    self.expected, self.seen
                )));
            }
            self.ended = true;
            return Ok(false);
        }
        let len = u32::from_le_bytes(frame[4..].try_into().expect("4 bytes"));
        if len > MAX_BLOCK_BYTES {
            return Err(self.damaged(format!("a block claims {len} bytes")));
        }
        into.bytes.resize(len as usize + 4, 0);
        self.file.read_exact(&mut into.bytes).map_err(truncated)?;
        let (bytes, crc) = into.bytes.split_at(len as usize);
        if crc32fast::hash(bytes).to_le_bytes()[..] != crc[..] {
            return Err(self.damaged("a block's checksum does not match"));
        }
        into.bytes.truncate(len as usize);
        into.count = count;
        self.seen += u64::from(count);
        Ok(true)
    }

    /// Where the snapshot is, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The table the snapshot holds.
    pub fn table(&self) -> &'static str {
        self.table
    }
}

impl Block {
    /// Decodes the block's records one by one (upgrading older record formats as a scan
    /// would) and hands each to `each`.
    pub fn decode<R: Record>(
        &self,
        path: &Path,
        mut each: impl FnMut(R),
    ) -> Result<(), SnapshotError> {
        let damaged = |what: &str| SnapshotError::Damaged {
            path: path.to_owned(),
            what: what.into(),
        };
        let mut rest = &self.bytes[..];
        for _ in 0..self.count {
            let past = || damaged("a record runs past its block");
            let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(past)?;
            let len = u32::from_le_bytes(*len) as usize;
            let (record, tail) = tail.split_at_checked(len).ok_or_else(past)?;
            each(
                codec::decode(R::TABLE, &[], record).map_err(|source| SnapshotError::Record {
                    path: path.to_owned(),
                    source,
                })?,
            );
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(damaged("a block holds more than its records"));
        }
        Ok(())
    }
}

/// Removes the snapshot at `path` if there is one: once the store has been opened its nonce is
/// gone, so the file can never be used again.
pub(crate) fn discard(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::debug!(path = %path.display(), "old snapshot removed"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), cause = %e, "cannot remove an old snapshot")
        }
    }
}

/// Takes the snapshot nonce out of the store being opened (the open's flush makes that
/// durable before anything else is written).
pub(crate) fn take_nonce(db: &sled::Db) -> Result<Option<Nonce>, super::StoreError> {
    let meta = db
        .open_tree(super::schema::META_TREE)
        .map_err(super::StoreError::storage("open __meta"))?;
    let taken = meta
        .remove(NONCE_KEY)
        .map_err(super::StoreError::storage("take the snapshot nonce"))?;
    Ok(taken.and_then(|v| Nonce::try_from(&v[..]).ok()))
}

impl super::Store {
    /// Where the snapshot of this store is: beside its directory (`store.snapshot`).
    pub fn snapshot_path(&self) -> PathBuf {
        self.inner.path.with_extension("snapshot")
    }

    /// The snapshot of table `R` written at the last clean stop, if this open found its nonce
    /// and the file matches it. Anything else is logged and answered with `None`: the caller
    /// scans the store.
    pub fn open_snapshot<R: Record>(&self) -> Option<SnapshotReader> {
        let nonce = self.inner.snapshot_nonce.as_ref()?;
        match SnapshotReader::open::<R>(&self.snapshot_path(), nonce) {
            Ok(reader) => Some(reader),
            Err(e) => {
                tracing::warn!(cause = %e, "the snapshot is not used; reading the whole store");
                None
            }
        }
    }

    /// Removes the snapshot file: after an open it can never match again.
    pub fn discard_snapshot(&self) {
        discard(&self.snapshot_path());
    }

    /// Writes `records` (every record of table `R`, as the caller holds them) as the snapshot
    /// under `nonce`, then records the nonce in the store. The caller keeps every writer out
    /// meanwhile; everything staged before is made durable first, a store that has failed a
    /// write gets no snapshot, and the store refuses every batch afterwards (`Closed`): a
    /// snapshot is the last act before a stop. Returns the file's size.
    pub fn write_snapshot<'a, R: Record + 'a>(
        &self,
        nonce: Nonce,
        records: impl ExactSizeIterator<Item = &'a R>,
    ) -> Result<u64, super::StoreError> {
        // Closed first: a batch resolved from here on is refused, so the store cannot change
        // behind the snapshot while it names it (the caller holds its writers out as well).
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let sync = |group: &super::GroupCommit| {
            group
                .commit_blocking(Vec::new())
                .map_err(|cause| super::StoreError::Flush { cause })
        };
        sync(&self.inner.group)?;
        let size = write(&self.snapshot_path(), &nonce, records)?;
        let meta = self
            .inner
            .db
            .open_tree(super::schema::META_TREE)
            .map_err(super::StoreError::storage("open __meta"))?;
        meta.insert(NONCE_KEY, &nonce[..])
            .map_err(super::StoreError::storage("record the snapshot nonce"))?;
        sync(&self.inner.group)?;
        Ok(size)
    }
}

#[cfg(test)]
mod tests;
