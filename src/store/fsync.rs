//! Making a checkpoint survive a power cut (`commit.rs`, `journal.rs`): `fdatasync` of sled's
//! data file after each of sled's flushes, and `fsync` of new files and of the directories
//! whenever sled has created, grown, renamed or removed a file there.
//!
//! sled 0.34.7 writes its log with `pwrite` and calls it stable after `sync_file_range` on Linux
//! (`pagecache/iobuf.rs`). That waits for the kernel to write the range out, but it neither
//! flushes the drive's volatile write cache nor writes the file's metadata (its size, as the
//! log grows), so a power cut can take back what sled reported as flushed — and sled reuses the
//! space of what a stable write superseded. `vendor/sled` is patched to `fdatasync` instead
//! (`vendor/sled/PATCHES.md`; `tests/power_loss.rs` checks every write to `db` in a trace). What
//! that leaves out are sled's other files and the directories: after each of sled's flushes at
//! a checkpoint the committer calls [`StoreFiles::sync`], and only then starts a new journal
//! epoch (until then the journal still holds every group since the last checkpoint).
//!
//! What sled 0.34.7 keeps in the store's directory (`config.rs`, `pagecache/`):
//! - `db`: the log and its pages, one file for the life of the store. sled never replaces it:
//!   it appends segments, reuses freed segments in place and truncates free ones at the end,
//!   all on the same inode, so the handle opened here stays the live file, and `fdatasync`
//!   covers its size changes.
//! - `conf`: written once when the store is created, without a sync.
//! - `blobs/<lsn>`: a page or value too large for a log segment (about 128 KiB and more) gets a
//!   file of its own, written without a sync just before the log record that points to it.
//! - `snap.<lsn>`: a snapshot of the page table, written by a background thread as
//!   `snap.<lsn>.generating`, synced, renamed into place, older ones removed; the directory is
//!   never synced.
//!
//! Creating, renaming and removing names change a directory, which syncing `db` does not make
//! durable. Syncing both directories after every group would cost a drive cache flush each,
//! even when nothing changed (about 1 ms each on the development machine, half an
//! `fdatasync`), so instead both are listed after each group (microseconds: a handful of
//! names) and only when a name or a length differs from the last synced listing are the new or
//! changed files synced, then the directory. A file that changes after its listing shows up in
//! the next one; the groups that depend on a blob list it, because sled writes the blob before
//! its flush returns.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// sled's data file in the store's directory (sled 0.34.7, `Config::db_path`).
const DATA_FILE: &str = "db";
/// Where sled writes values too large for its log (sled 0.34.7, `Config::blob_path`).
const BLOB_DIR: &str = "blobs";

/// Open handles on the store's files, synced after every group. Opened once per store.
pub(crate) struct StoreFiles {
    db: File,
    dirs: [WatchedDir; 2],
    /// How many times a directory was synced, for tests.
    dir_syncs: u64,
}

/// A directory whose entries are synced when they change.
struct WatchedDir {
    path: PathBuf,
    handle: File,
    /// Each entry's name and length when the directory was last synced, without the data file
    /// (synced after every group anyway, and growing all the time); `None` before the first
    /// sync, so that the first one syncs the directory whatever it holds.
    synced: Option<BTreeMap<OsString, u64>>,
}

impl StoreFiles {
    /// Opens sled's data file and directories in `dir` (after sled has opened the store there)
    /// and makes everything in them durable: what sled wrote before without a sync (a new
    /// store's `conf`, a migration's records), the directories, and the store's own name in
    /// its parent directory.
    pub(crate) fn open(dir: &Path) -> io::Result<StoreFiles> {
        let db = File::open(dir.join(DATA_FILE))?;
        let dirs = [
            WatchedDir::open(dir)?,
            WatchedDir::open(&dir.join(BLOB_DIR))?,
        ];
        let mut files = StoreFiles {
            db,
            dirs,
            dir_syncs: 0,
        };
        files.sync()?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        Ok(files)
    }

    /// Makes everything sled has written so far durable: its blob and snapshot files and the
    /// directory entries naming them first (a log record must not outlive the blob it points
    /// to), then the data file. Call after sled's flush.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        for dir in &mut self.dirs {
            if dir.sync_if_changed()? {
                self.dir_syncs += 1;
            }
        }
        self.db.sync_data()
    }

    /// How many times a directory has been synced since the store was opened.
    #[cfg(test)]
    pub(crate) fn dir_syncs(&self) -> u64 {
        self.dir_syncs
    }
}

impl WatchedDir {
    fn open(path: &Path) -> io::Result<WatchedDir> {
        Ok(WatchedDir {
            path: path.to_owned(),
            handle: File::open(path)?,
            synced: None,
        })
    }

    /// Lists the directory and, if anything differs from the last synced listing, syncs every
    /// new or changed entry and then the directory. Returns whether it synced.
    fn sync_if_changed(&mut self) -> io::Result<bool> {
        let listing = self.list()?;
        if self.synced.as_ref() == Some(&listing) {
            return Ok(false);
        }
        let synced = self.synced.take().unwrap_or_default();
        for (name, len) in &listing {
            if synced.get(name) == Some(len) {
                continue;
            }
            match File::open(self.path.join(name)) {
                Ok(file) => file.sync_all()?,
                // Removed since the listing (an old snapshot, a renamed temporary file): the
                // directory sync below records the removal.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        self.handle.sync_all()?;
        self.synced = Some(listing);
        Ok(true)
    }

    fn list(&self) -> io::Result<BTreeMap<OsString, u64>> {
        let mut listing = BTreeMap::new();
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            let name = entry.file_name();
            // The data file is synced at every checkpoint anyway, and the journal by each
            // group: both change all the time.
            if name == DATA_FILE || name == super::journal::JOURNAL_FILE {
                continue;
            }
            match entry.metadata() {
                Ok(meta) => {
                    listing.insert(name, meta.len());
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sled writes a value too large for its log to `blobs/`; the next sync finds it and syncs
    /// it with its directory, and a sync with nothing new syncs no directory.
    #[test]
    fn a_new_blob_is_synced_with_its_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().path(dir.path()).open().expect("sled");
        let mut files = StoreFiles::open(dir.path()).expect("the store's files");
        let opened = files.dir_syncs();
        assert_eq!(opened, 2, "opening syncs both directories once");

        db.insert(b"small", b"value".as_slice()).expect("insert");
        db.flush().expect("flush");
        files.sync().expect("sync");
        assert_eq!(
            files.dir_syncs(),
            opened,
            "a small write changes no directory"
        );

        db.insert(b"large", vec![7u8; 512 * 1024]).expect("insert");
        db.flush().expect("flush");
        let blobs = std::fs::read_dir(dir.path().join(BLOB_DIR))
            .expect("blobs")
            .count();
        assert!(
            blobs >= 1,
            "sled 0.34 writes a value this large to {BLOB_DIR}/"
        );
        files.sync().expect("sync");
        assert!(
            files.dir_syncs() > opened,
            "the new blob's directory was synced"
        );
        assert_eq!(
            files.dirs[1].synced.as_ref().map(BTreeMap::len),
            Some(blobs),
            "every blob is recorded as synced"
        );

        let synced = files.dir_syncs();
        files.sync().expect("sync");
        assert_eq!(files.dir_syncs(), synced, "nothing changed since");
    }

    /// sled hands each flush's log write to its IO thread pool (`vendor/sled/PATCHES.md`). A
    /// flush must wake one of the pool's idle threads, not every one of them: unpatched sled
    /// 0.34.7 woke all seven per flush. The pool is global to the process, so the count is
    /// taken in a child process running only [`sled_io_wake_ups_per_flush`].
    #[test]
    fn a_flush_wakes_one_sled_io_thread() {
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "store::fsync::tests::sled_io_wake_ups_per_flush"])
            .args(["--nocapture", "--test-threads=1"])
            .env(PROBE_ENV, "1")
            .output()
            .expect("the probe runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "the probe failed: {stdout}");
        let per_flush: f64 = stdout
            .lines()
            .find_map(|l| Some(l.split_once("sled-io switches per flush: ")?.1))
            .unwrap_or_else(|| panic!("the probe printed no figure: {stdout}"))
            .trim()
            .parse()
            .expect("a number");
        // One thread's wake-up, plus the times it blocks in the write and its `fdatasync`
        // (measured: 2.5 with `sync_file_range`, 4.5 with `fdatasync`), stays under six; waking
        // all seven idle threads costs at least seven.
        assert!(
            per_flush < 6.0,
            "each flush cost {per_flush:.1} context switches of sled IO threads; one thread \
             should be woken per flush, not every idle one"
        );
    }

    const PROBE_ENV: &str = "SATELLITE_SLED_WAKE_PROBE";

    /// The child side of [`a_flush_wakes_one_sled_io_thread`]; does nothing when run with the
    /// rest of the suite.
    #[test]
    fn sled_io_wake_ups_per_flush() {
        if std::env::var_os(PROBE_ENV).is_none() {
            return;
        }
        const FLUSHES: u32 = 200;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().path(dir.path()).open().expect("sled");
        let flush = |i: u32| {
            db.insert(i.to_be_bytes(), b"value".as_slice())
                .expect("insert");
            db.flush().expect("flush");
        };
        // The first jobs start the pool; let its threads settle into waiting.
        for i in 0..20 {
            flush(i);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let before = sled_io_switches();
        for i in 0..FLUSHES {
            flush(1000 + i);
        }
        let after = sled_io_switches();
        println!(
            "sled-io switches per flush: {:.2}",
            (after - before) as f64 / f64::from(FLUSHES)
        );
    }

    /// Context switches so far of this process's threads named `sled-io-N`.
    fn sled_io_switches() -> u64 {
        let mut total = 0;
        for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
            let path = task.expect("task").path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if !comm.starts_with("sled-io-") {
                continue;
            }
            let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
            total += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        total
    }

    /// A directory without sled's data file is not taken for a store.
    #[test]
    fn opening_needs_the_data_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = StoreFiles::open(dir.path()).err().expect("no data file");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
