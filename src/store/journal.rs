//! The store's journal: each commit group written once, synced once, before it is applied.
//!
//! A usage report is acknowledged only once it survives a power cut, and sled makes that
//! expensive: its flush hands the write of its log buffer to a thread of its IO pool, waits for
//! it, and ends with a sync of the file (`fdatasync`, as `vendor/sled` is patched; sled 0.34.7
//! itself only calls `sync_file_range`), and the store's directories need checking for files
//! sled created (`fsync.rs`). Per group that was three or four submissions to the disk and two
//! threads woken (docs/benchmarks.md, "A journal
//! of our own"). So the committer writes each group to this file first — one `pwrite` of one
//! frame and one `fdatasync` — and only then applies it to sled, in memory; sled is flushed and
//! synced only at a *checkpoint*, when the journal has grown past [`CHECKPOINT_BYTES`] or has
//! held groups for a second (`commit/disk.rs`), when asked (a snapshot, a stop) and when the
//! store closes. After a crash, opening the store
//! applies every frame written since the last checkpoint again (`replay`).
//!
//! Why replaying is right: every write the committer makes goes through the journal before it
//! reaches sled, and a checkpoint happens between groups, so sled's durable state is the last
//! checkpoint plus some prefix of the groups journaled since (sled writes its buffers in the
//! background too), possibly cut inside a group. Applying all of those groups again, in order,
//! gives every key the value of its last write — the state the acknowledged groups made — and a
//! group is whole or absent, since its frame is checked as one.
//!
//! The file: two header slots, a 4 KiB block each, then frames. A header slot holds the
//! *epoch*, the number of checkpoints taken, and a random *salt* drawn for it; a checkpoint (and
//! every open) writes the next epoch into the other slot, so a torn header write leaves the
//! previous one readable. A frame is `length u32 | crc32 u32 | epoch u64 | payload`, the
//! checksum over the salt, length, epoch and payload; replay stops at the first frame that is
//! short, fails its checksum or belongs to another epoch (the frames of earlier epochs stay in
//! the file and are overwritten), and refuses the journal if a whole frame of the epoch follows. A payload lists
//! its writes as `table name, key, put or remove, value`, by name so that replay does not depend
//! on the order tables are registered in.
//!
//! Frames start on 4 KiB boundaries (the bytes after a frame, up to the next, are padding) and
//! are written with direct IO where the file system allows it (`O_DIRECT`): one block-aligned
//! write straight to the disk, without the page cache's copy and write-back, then the
//! `fdatasync` that flushes the drive's cache. The file grows in zero-filled chunks ahead of the
//! frames, so that writing a frame usually overwrites allocated blocks and its `fdatasync` has no
//! metadata to write.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::Op;
use super::fsync::StoreFiles;

/// The journal's name in the store's directory.
pub(crate) const JOURNAL_FILE: &str = "journal";
/// The journal's size (frames since the last checkpoint) that makes the committer take a
/// checkpoint after the group that crossed it: the most a start after a crash replays.
pub(crate) const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
/// Where frames start; the two header slots live before, a block each (a torn write of one
/// block cannot reach the other). Frames start on multiples of [`BLOCK`].
const FRAMES_START: u64 = 2 * BLOCK;
/// The alignment of frames, and of the buffers, offsets and lengths of direct writes.
const BLOCK: u64 = 4096;
/// The header slots' offsets: the epoch's parity chooses.
const SLOT_BYTES: u64 = BLOCK;
const MAGIC: &[u8; 8] = b"SATJRNL1";
/// `magic | epoch u64 | salt u64 | crc32 u32`.
const HEADER_LEN: usize = 28;
const FRAME_HEADER: usize = 16;
/// The most a frame buffer keeps between groups.
const KEPT_BUFFER: usize = 1024 * 1024;
/// How far ahead of the frames the file is grown, with zeros.
const CHUNK: u64 = 1024 * 1024;

/// Writes a payload op's put marker.
const PUT: u8 = 1;
const REMOVE: u8 = 0;

/// An open journal, owned by the committer.
pub(crate) struct Journal {
    file: File,
    /// The same file opened for direct writes, where the file system supports them.
    direct: Option<File>,
    /// Frames are copied here, to a block-aligned offset, for a direct write.
    aligned: Vec<u8>,
    path: PathBuf,
    epoch: u64,
    /// A random number drawn for each epoch and kept in its header; every frame's checksum
    /// covers it, so bytes that merely look like a frame (a client's data inside an older frame,
    /// at a block boundary) do not pass for one.
    salt: u64,
    /// Where the next frame goes.
    end: u64,
    /// How much of the file is allocated and written (frames or zeros).
    prepared: u64,
    /// The registered tables' names, by the index a staged write uses.
    tables: Vec<Vec<u8>>,
    /// Reused for each frame.
    buf: Vec<u8>,
}

/// What the committer writes to and syncs: the journal, for every group, and sled's files, at
/// checkpoints.
pub(crate) struct Disk {
    pub(crate) files: StoreFiles,
    pub(crate) journal: Journal,
}

impl Disk {
    /// Writes `group` to the journal as one frame and syncs it; the error says what failed.
    pub(crate) fn append(&mut self, group: &[Vec<Op<usize>>]) -> Result<(), String> {
        self.journal.append(group).map_err(|err| {
            format!(
                "writing a commit group to the journal {} failed: {err}",
                self.journal.path.display()
            )
        })
    }

    /// A checkpoint: flushes sled, syncs its files (`fsync.rs`), then starts a new journal
    /// epoch, so that what the journal held is in sled's files for good.
    pub(crate) fn checkpoint(&mut self, db: &sled::Db) -> Result<(), String> {
        db.flush()
            .map_err(|err| format!("flushing the store failed: {err}"))?;
        self.files
            .sync()
            .map_err(|err| format!("fsync of the store's files failed: {err}"))?;
        self.journal.checkpointed().map_err(|err| {
            format!(
                "starting a new epoch of the journal {} failed: {err}",
                self.journal.path.display()
            )
        })
    }
}

/// What [`Journal::open`] found and applied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replayed {
    pub(crate) groups: u64,
    pub(crate) writes: u64,
}

/// Why the journal cannot be read.
#[derive(Debug)]
pub(crate) enum JournalError {
    Io(io::Error),
    /// Both header slots are damaged, or a frame whose checksum holds cannot be read: the file
    /// was changed by something other than satellite.
    Damaged(String),
    /// sled refused a replayed write or the checkpoint after replay.
    Storage(sled::Error),
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalError::Io(err) => write!(f, "{err}"),
            JournalError::Damaged(what) => write!(f, "{what}"),
            JournalError::Storage(err) => write!(f, "applying it to the store failed: {err}"),
        }
    }
}

impl From<io::Error> for JournalError {
    fn from(err: io::Error) -> Self {
        JournalError::Io(err)
    }
}

impl Journal {
    /// Opens (or creates) the journal of the store in `dir` and applies to `db` every group
    /// written since the last checkpoint; when there were any, flushes sled, syncs its files
    /// and starts a new epoch, so that what was replayed is never replayed over later writes.
    pub(crate) fn open(dir: &Path, db: &sled::Db) -> Result<(Journal, Replayed), JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let (file, _) = crate::fsutil::open_in_place(&path, 0o600)?;
        let len = file.metadata()?.len();
        let mut journal = Journal {
            direct: crate::fsutil::open_direct(&path)?,
            aligned: Vec::new(),
            file,
            path,
            epoch: 0,
            salt: 0,
            end: FRAMES_START,
            prepared: len.max(FRAMES_START),
            tables: Vec::new(),
            buf: Vec::new(),
        };
        // A journal whose header was never written (new, or its creation cut short: frames are
        // written only after a synced header) starts at epoch 1.
        let Some((epoch, salt)) = journal.read_header()? else {
            // The head written whole, so that the file starts allocated.
            journal.file.write_all_at(&[0; FRAMES_START as usize], 0)?;
            journal.write_header(1)?;
            File::open(dir)?.sync_all()?;
            return Ok((journal, Replayed::default()));
        };
        (journal.epoch, journal.salt) = (epoch, salt);
        let replayed = journal.replay(db)?;
        if replayed.groups > 0 {
            db.flush().map_err(JournalError::Storage)?;
            StoreFiles::open(dir)?;
        }
        // A new epoch at every open, replayed or not: one whose header write failed unseen (the
        // page cache may show it, the disk not) is never written to again.
        journal.checkpointed()?;
        Ok((journal, replayed))
    }

    /// Names the tables that staged writes index.
    pub(crate) fn set_tables(&mut self, tables: Vec<Vec<u8>>) {
        self.tables = tables;
    }

    /// Bytes of frames written since the last checkpoint.
    pub(crate) fn len(&self) -> u64 {
        self.end - FRAMES_START
    }

    /// Writes `group` as one frame and syncs it: on return it survives a power cut.
    pub(crate) fn append(&mut self, group: &[Vec<Op<usize>>]) -> io::Result<()> {
        self.encode(group)?;
        let padded = (self.buf.len() as u64).div_ceil(BLOCK) * BLOCK;
        let need = self.end + padded;
        if need > self.prepared {
            let grown = need.div_ceil(CHUNK) * CHUNK;
            let zeros = vec![0u8; (grown - self.prepared) as usize];
            self.file.write_all_at(&zeros, self.prepared)?;
            // Written back now, so that a direct write to these blocks finds nothing cached.
            self.file.sync_data()?;
            self.prepared = grown;
        }
        if let Some(direct) = &self.direct {
            let padded = padded as usize;
            if self.aligned.len() < padded + BLOCK as usize {
                self.aligned = vec![0; padded + BLOCK as usize];
            }
            let at = self.aligned.as_ptr().align_offset(BLOCK as usize);
            let block = &mut self.aligned[at..at + padded];
            block[..self.buf.len()].copy_from_slice(&self.buf);
            block[self.buf.len()..].fill(0);
            match direct.write_all_at(block, self.end) {
                Ok(()) => direct.sync_data()?,
                // A file system that opens files for direct IO but refuses the writes (its
                // blocks larger than ours): through the page cache from now on.
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => self.direct = None,
                Err(err) => return Err(err),
            }
        }
        if self.direct.is_none() {
            self.file.write_all_at(&self.buf, self.end)?;
            self.file.sync_data()?;
        }
        self.end = need;
        // A large group (an import, a fill) leaves no large buffer behind.
        if self.buf.capacity() > KEPT_BUFFER {
            self.buf = Vec::new();
            self.aligned = Vec::new();
        }
        Ok(())
    }

    /// Starts a new epoch once sled holds everything journaled (flushed and synced): the frames
    /// written so far are not replayed again.
    pub(crate) fn checkpointed(&mut self) -> io::Result<()> {
        self.write_header(self.epoch + 1)?;
        self.end = FRAMES_START;
        Ok(())
    }

    fn write_header(&mut self, epoch: u64) -> io::Result<()> {
        let mut salt = [0u8; 8];
        getrandom::fill(&mut salt).map_err(|err| io::Error::other(err.to_string()))?;
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&epoch.to_le_bytes());
        header[16..24].copy_from_slice(&salt);
        let crc = crc32fast::hash(&header[..24]);
        header[24..].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(&header, (epoch % 2) * SLOT_BYTES)?;
        self.file.sync_data()?;
        self.epoch = epoch;
        self.salt = u64::from_le_bytes(salt);
        Ok(())
    }

    /// The epoch and salt of the newest intact header slot; `None` when neither slot was ever
    /// written (all zeros, or beyond the end of the file).
    fn read_header(&self) -> Result<Option<(u64, u64)>, JournalError> {
        let slot = |n: u64| -> io::Result<Result<(u64, u64), bool>> {
            let mut header = [0u8; HEADER_LEN];
            match self.file.read_exact_at(&mut header, n * SLOT_BYTES) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(Err(true)),
                Err(err) => return Err(err),
            }
            let crc = u32::from_le_bytes(header[24..].try_into().expect("4 bytes"));
            let epoch = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
            let salt = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
            let intact = &header[..8] == MAGIC && crc32fast::hash(&header[..24]) == crc;
            // An epoch is written in the slot of its parity; one found elsewhere is not ours.
            if intact && epoch % 2 == n {
                return Ok(Ok((epoch, salt)));
            }
            Ok(Err(header.iter().all(|&b| b == 0)))
        };
        match (slot(0)?, slot(1)?) {
            (Ok(a), Ok(b)) => Ok(Some(a.max(b))),
            (Ok(a), Err(_)) | (Err(_), Ok(a)) => Ok(Some(a)),
            (Err(true), Err(true)) => Ok(None),
            (Err(_), Err(_)) => Err(JournalError::Damaged(format!(
                "neither header of the journal {} can be read",
                self.path.display()
            ))),
        }
    }

    /// Applies the current epoch's frames to `db`, in order, and leaves `end` after the last.
    fn replay(&mut self, db: &sled::Db) -> Result<Replayed, JournalError> {
        let mut trees: HashMap<Vec<u8>, sled::Tree> = HashMap::new();
        let mut replayed = Replayed::default();
        let mut payload = Vec::new();
        while self.read_frame(self.end, &mut payload)? {
            let writes = parse(&payload).map_err(|what| {
                JournalError::Damaged(format!(
                    "the frame at byte {} of the journal {} passes its checksum but {what}",
                    self.end,
                    self.path.display()
                ))
            })?;
            apply(db, &mut trees, &writes).map_err(JournalError::Storage)?;
            replayed.writes += writes.len() as u64;
            replayed.groups += 1;
            self.end += (FRAME_HEADER + payload.len()).div_ceil(BLOCK as usize) as u64 * BLOCK;
        }
        self.refuse_frames_beyond(&mut payload)?;
        Ok(replayed)
    }

    /// Frames are written one after another, each synced before the next, so the replay ends
    /// where a crash cut the last one short. A whole frame of this epoch further on means that
    /// one in the middle was damaged afterwards: refused, rather than dropping what follows it.
    fn refuse_frames_beyond(&self, payload: &mut Vec<u8>) -> Result<(), JournalError> {
        let mut at = self.end + BLOCK;
        while at < self.prepared {
            if self.read_frame(at, payload)? {
                return Err(JournalError::Damaged(format!(
                    "the frame at byte {} of the journal {} cannot be read, and a frame written \
                     after it, at byte {at}, can",
                    self.end,
                    self.path.display()
                )));
            }
            at += BLOCK;
        }
        Ok(())
    }

    /// Whether a whole frame of the current epoch, with its checksum, starts at `at`; if so its
    /// payload is left in `payload`.
    fn read_frame(&self, at: u64, payload: &mut Vec<u8>) -> io::Result<bool> {
        let mut head = [0u8; FRAME_HEADER];
        if at + FRAME_HEADER as u64 > self.prepared {
            return Ok(false);
        }
        self.file.read_exact_at(&mut head, at)?;
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let epoch = u64::from_le_bytes(head[8..].try_into().expect("8 bytes"));
        let end = at + FRAME_HEADER as u64 + u64::from(len);
        if len == 0 || epoch != self.epoch || end > self.prepared {
            return Ok(false);
        }
        payload.resize(len as usize, 0);
        self.file.read_exact_at(payload, at + FRAME_HEADER as u64)?;
        Ok(checksum(self.salt, &head, payload) == crc)
    }

    /// Encodes `group` as one frame in `buf`.
    fn encode(&mut self, group: &[Vec<Op<usize>>]) -> io::Result<()> {
        let too_large = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a commit group holds {what} too large for a journal frame (4 GiB)"),
            )
        };
        let buf = &mut self.buf;
        buf.clear();
        buf.resize(FRAME_HEADER, 0);
        let count: usize = group.iter().map(Vec::len).sum();
        buf.extend_from_slice(
            &u32::try_from(count)
                .map_err(|_| too_large("writes"))?
                .to_le_bytes(),
        );
        for op in group.iter().flatten() {
            let name = &self.tables[op.tree];
            buf.push(u8::try_from(name.len()).map_err(|_| too_large("a table name"))?);
            buf.extend_from_slice(name);
            let key_len = u32::try_from(op.key.len()).map_err(|_| too_large("a key"))?;
            buf.extend_from_slice(&key_len.to_le_bytes());
            buf.extend_from_slice(&op.key);
            match &op.value {
                Some(value) => {
                    buf.push(PUT);
                    let len = u32::try_from(value.len()).map_err(|_| too_large("a value"))?;
                    buf.extend_from_slice(&len.to_le_bytes());
                    buf.extend_from_slice(value);
                }
                None => buf.push(REMOVE),
            }
        }
        let len = u32::try_from(buf.len() - FRAME_HEADER).map_err(|_| too_large("writes"))?;
        buf[..4].copy_from_slice(&len.to_le_bytes());
        buf[8..16].copy_from_slice(&self.epoch.to_le_bytes());
        let crc = checksum(self.salt, &buf[..FRAME_HEADER], &buf[FRAME_HEADER..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }
}

/// The frame's checksum: over its epoch's salt, its length, its epoch and its payload.
fn checksum(salt: u64, head: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_le_bytes());
    hasher.update(&head[..4]);
    hasher.update(&head[8..FRAME_HEADER]);
    hasher.update(payload);
    hasher.finalize()
}

/// The unread part of a payload.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("ends inside a write");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
}

/// One write read from a payload: table, key, value (`None` removes).
type Write<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);

/// Reads a frame's payload whole, so that a frame that cannot be read applies nothing.
fn parse(payload: &[u8]) -> Result<Vec<Write<'_>>, &'static str> {
    let mut rest = Cursor(payload);
    let u32_at = |bytes: &[u8]| u32::from_le_bytes(bytes.try_into().expect("4 bytes")) as usize;
    let count = u32_at(rest.take(4)?);
    // Each write takes at least 10 bytes, so a count cannot reserve more than the payload.
    let mut writes = Vec::with_capacity(count.min(payload.len() / 10));
    for _ in 0..count {
        let name_len = rest.take(1)?[0] as usize;
        let name = rest.take(name_len)?;
        let key_len = u32_at(rest.take(4)?);
        let key = rest.take(key_len)?;
        let value = match rest.take(1)?[0] {
            PUT => {
                let len = u32_at(rest.take(4)?);
                Some(rest.take(len)?)
            }
            REMOVE => None,
            _ => return Err("holds a write that is neither put nor remove"),
        };
        writes.push((name, key, value));
    }
    if !rest.0.is_empty() {
        return Err("has bytes after its last write");
    }
    Ok(writes)
}

/// Applies one frame's writes to `db`, opening their tables as needed.
fn apply(
    db: &sled::Db,
    trees: &mut HashMap<Vec<u8>, sled::Tree>,
    writes: &[Write<'_>],
) -> Result<(), sled::Error> {
    for &(name, key, value) in writes {
        let tree = match trees.get(name) {
            Some(tree) => tree,
            None => {
                let tree = db.open_tree(name)?;
                trees.entry(name.to_vec()).or_insert(tree)
            }
        };
        match value {
            Some(value) => tree.insert(key, value).map(drop)?,
            None => tree.remove(key).map(drop)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
