//! Restoring a backup: `Store::import` checks the whole file, writes a new store beside the
//! target, migrates it and renames it into place.

use std::fs::File;
use std::io;
use std::path::Path;

use super::read::read_backup;
use super::{BackupError, BackupSummary, Phase, Progress};
use crate::store::schema::{self, MIGRATIONS, SCHEMA_VERSION};
use crate::store::{Store, StoreError};

impl Store {
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
    // sled's flush syncs its log, not the directories or new files: make the restored store durable
    // before the store is renamed into place, so a power cut after the restore cannot leave a
    // store whose name is on disk but whose records are not.
    crate::store::fsync::StoreFiles::open(tmp).map_err(|source| BackupError::Io {
        op: "make the restored store durable in",
        path: tmp.to_owned(),
        source,
    })?;
    Ok(())
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
