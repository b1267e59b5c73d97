//! The store-wide schema version and the migrations between versions.
//!
//! Record format bytes (see `codec.rs`) handle a record whose shape changed; they are read lazily,
//! one record at a time. Some changes cannot be done that way: moving records to another table,
//! re-keying a table, splitting one record into two. Those are migrations. The `__meta` tree holds
//! the store's schema version as a big-endian `u32`; on open, a store at an older version is
//! migrated step by step, and a store at a newer version is refused so that an older binary never
//! writes into data it does not understand.
//!
//! Each step runs in one sled transaction together with the bump of the version, so a crash
//! during a migration leaves the store at the old version and the step simply runs again. The
//! price is that a step's writes are held in memory until it commits.

use std::cell::RefCell;
use std::path::Path;

use super::Op;
use super::codec::{self, Record};
use super::error::StoreError;

/// The schema version this satellite writes.
pub const SCHEMA_VERSION: u32 = 4;

/// The migrations from every older schema this satellite can still open, in order.
pub static MIGRATIONS: &[Migration] = &[
    Migration {
        from: 1,
        to: 2,
        name: "key imported license files by account, issuer and file id",
        run: rekey_imported_files,
    },
    Migration {
        from: 2,
        to: 3,
        name: "the store may name a snapshot of its device table (snapshot.rs)",
        run: no_records_change,
    },
    Migration {
        from: 3,
        to: 4,
        name: "the store keeps a journal of the changes since its last checkpoint (journal.rs)",
        run: no_records_change,
    },
];

/// Schemas 3 and 4 change no record: they exist so that a binary that predates them refuses the
/// store instead of opening it wrongly: one that predates snapshots would write without taking
/// the snapshot nonce out of `__meta`, and one that predates the journal would ignore the changes
/// it holds after a crash (and a later start would replay them over that binary's writes).
fn no_records_change(_: &MigrationCtx<'_>) -> Result<(), StoreError> {
    Ok(())
}

/// Applies `ops` in one sled transaction over `trees` (`Op::tree` indexes `trees`). sled
/// retries conflicts internally (so `ops` may be walked more than once), and its transactions
/// are crash-atomic: after recovery either all of the writes are there or none.
fn transact<'a, I>(trees: &[sled::Tree], ops: I) -> Result<(), sled::Error>
where
    I: IntoIterator<Item = &'a Op<usize>> + Clone,
{
    let result = sled::Transactional::transaction(trees, |views| {
        for op in ops.clone() {
            let view = &views[op.tree];
            match &op.value {
                Some(value) => view.insert(op.key.as_slice(), value.as_slice())?,
                None => view.remove(op.key.as_slice())?,
            };
        }
        Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(sled::transaction::TransactionError::Storage(err)) => Err(err),
        // The closure above never aborts.
        Err(sled::transaction::TransactionError::Abort(())) => Ok(()),
    }
}

/// The tree that holds store metadata; no table may use this name.
pub(crate) const META_TREE: &str = "__meta";

/// The key of the schema version in [`META_TREE`].
const SCHEMA_KEY: &[u8] = b"schema_version";

/// A raw key and value (format byte included), as a migration reads them.
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// One step from schema `from` to schema `to`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub from: u32,
    pub to: u32,
    /// A short description, shown in logs and errors.
    pub name: &'static str,
    /// Reads through the context and queues writes on it; the writes are applied only if this
    /// returns `Ok`.
    pub run: fn(&MigrationCtx<'_>) -> Result<(), StoreError>,
}

/// Raw access to the store's trees for a migration step. Reads see the store as it was before
/// the step; writes are queued and applied atomically when the step succeeds.
pub struct MigrationCtx<'a> {
    db: &'a sled::Db,
    writes: RefCell<Vec<Op<String>>>,
}

impl MigrationCtx<'_> {
    fn tree(&self, table: &str) -> Result<sled::Tree, StoreError> {
        if table == META_TREE {
            return Err(StoreError::ReservedTable {
                table: table.to_owned(),
            });
        }
        self.db
            .open_tree(table)
            .map_err(StoreError::storage("migration open_tree"))
    }

    /// Reads one raw value (format byte included) from any table, registered or not.
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self
            .tree(table)?
            .get(key)
            .map_err(StoreError::storage("migration get"))?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// Iterates over the raw keys and values of a table in key order.
    pub fn scan(
        &self,
        table: &str,
    ) -> Result<impl Iterator<Item = Result<RawEntry, StoreError>> + use<>, StoreError> {
        Ok(self.tree(table)?.iter().map(|item| {
            item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(StoreError::storage("migration scan"))
        }))
    }

    /// Queues a raw write.
    pub fn put(&self, table: &str, key: &[u8], value: Vec<u8>) {
        self.writes.borrow_mut().push(Op {
            tree: table.to_owned(),
            key: key.to_vec(),
            value: Some(value),
        });
    }

    /// Queues a write of a record in its current format.
    pub fn put_record<R: Record>(&self, record: &R) {
        self.put(R::TABLE, &record.key(), codec::encode(record));
    }

    /// Queues a removal.
    pub fn delete(&self, table: &str, key: &[u8]) {
        self.writes.borrow_mut().push(Op {
            tree: table.to_owned(),
            key: key.to_vec(),
            value: None,
        });
    }
}

/// Refuses, touching nothing, a store whose schema is newer than `current` and a directory that
/// holds data satellite did not write: called before the journal is replayed (and created), so
/// that a newer release's journal is left to that release and a foreign directory gets no file.
pub(crate) fn refuse_foreign_or_newer(
    db: &sled::Db,
    path: &Path,
    current: u32,
) -> Result<(), StoreError> {
    let meta = db
        .open_tree(META_TREE)
        .map_err(StoreError::storage("open __meta"))?;
    match stored_version(&meta, path)? {
        Some(found) if found > current => Err(StoreError::SchemaFromTheFuture {
            found,
            supported: current,
            path: path.to_owned(),
        }),
        None if holds_data(db)? => Err(StoreError::Unversioned {
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Brings the store at `path` to schema `current`, or refuses it. Called once from `Store::open`.
pub(crate) fn ensure(
    db: &sled::Db,
    path: &Path,
    current: u32,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    refuse_foreign_or_newer(db, path, current)?;
    let meta = db
        .open_tree(META_TREE)
        .map_err(StoreError::storage("open __meta"))?;
    let Some(mut version) = stored_version(&meta, path)? else {
        return mark_new(db, meta, path, current);
    };
    while version < current {
        let Some(step) = migrations.iter().find(|m| m.from == version) else {
            return Err(StoreError::NoMigrationPath {
                found: version,
                supported: current,
                path: path.to_owned(),
            });
        };
        migrate(db, &meta, path, step, current)?;
        version = step.to;
    }
    Ok(())
}

/// The schema version the store records, `None` if it records none (a new store).
fn stored_version(meta: &sled::Tree, path: &Path) -> Result<Option<u32>, StoreError> {
    let stored = meta
        .get(SCHEMA_KEY)
        .map_err(StoreError::storage("read schema version"))?;
    let Some(bytes) = stored else {
        return Ok(None);
    };
    let bytes: [u8; 4] =
        bytes
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::CorruptSchemaVersion {
                path: path.to_owned(),
                len: bytes.len(),
            })?;
    Ok(Some(u32::from_be_bytes(bytes)))
}

/// Records schema `current` in a new, empty store.
fn mark_new(db: &sled::Db, meta: sled::Tree, path: &Path, current: u32) -> Result<(), StoreError> {
    let ops = [Op {
        tree: 0,
        key: SCHEMA_KEY.to_vec(),
        value: Some(be(current)),
    }];
    transact(&[meta], &ops).map_err(StoreError::storage("write schema version"))?;
    db.flush().map_err(StoreError::storage("flush"))?;
    tracing::info!(path = %path.display(), schema = current, "created a new store");
    Ok(())
}

/// Runs one migration step and records its target version with its writes, atomically.
fn migrate(
    db: &sled::Db,
    meta: &sled::Tree,
    path: &Path,
    step: &Migration,
    current: u32,
) -> Result<(), StoreError> {
    let failed = |reason: String| StoreError::Migration {
        path: path.to_owned(),
        from: step.from,
        to: step.to,
        name: step.name,
        reason,
    };
    if step.to <= step.from || step.to > current {
        return Err(failed(format!(
            "the step goes to an invalid version {}",
            step.to
        )));
    }
    let ctx = MigrationCtx {
        db,
        writes: RefCell::new(Vec::new()),
    };
    (step.run)(&ctx).map_err(|err| failed(err.to_string()))?;
    apply_step(db, meta, ctx.writes.into_inner(), step.to)
        .map_err(|err| failed(err.to_string()))?;
    tracing::info!(
        path = %path.display(),
        from = step.from,
        to = step.to,
        migration = step.name,
        "migrated the store"
    );
    Ok(())
}

/// Applies a step's queued writes together with the new version, then flushes.
fn apply_step(
    db: &sled::Db,
    meta: &sled::Tree,
    writes: Vec<Op<String>>,
    to: u32,
) -> Result<(), StoreError> {
    let mut trees = vec![meta.clone()];
    let mut names = vec![META_TREE.to_owned()];
    let mut ops = vec![Op {
        tree: 0,
        key: SCHEMA_KEY.to_vec(),
        value: Some(be(to)),
    }];
    for Op {
        tree: table,
        key,
        value,
    } in writes
    {
        if table == META_TREE {
            return Err(StoreError::ReservedTable { table });
        }
        let tree = match names.iter().position(|n| *n == table) {
            Some(index) => index,
            None => {
                trees.push(
                    db.open_tree(&table)
                        .map_err(StoreError::storage("open_tree"))?,
                );
                names.push(table);
                trees.len() - 1
            }
        };
        ops.push(Op { tree, key, value });
    }
    transact(&trees, &ops).map_err(StoreError::storage("migration transaction"))?;
    db.flush().map_err(StoreError::storage("flush"))?;
    Ok(())
}

/// Whether any tree of the database, including sled's default tree, holds a value.
fn holds_data(db: &sled::Db) -> Result<bool, StoreError> {
    for name in db.tree_names() {
        let tree = db
            .open_tree(&name)
            .map_err(StoreError::storage("open_tree"))?;
        if !tree.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Schema 1 → 2: imported license files were keyed by file id alone, across accounts. Each is
/// read (its format-1 record upgrades with an empty issuer) and written under its new key. The
/// old keys are removed before any new one is written: the writes apply in order, and a new
/// key must not be removed by the deletion of an old key that happens to be equal.
fn rekey_imported_files(ctx: &MigrationCtx<'_>) -> Result<(), StoreError> {
    use crate::domain::ImportedFile;
    let mut records = Vec::new();
    for entry in ctx.scan(ImportedFile::TABLE)? {
        let (key, value) = entry?;
        let record: ImportedFile = codec::decode(ImportedFile::TABLE, &key, &value)?;
        ctx.delete(ImportedFile::TABLE, &key);
        records.push(record);
    }
    for record in &records {
        ctx.put_record(record);
    }
    Ok(())
}

fn be(version: u32) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}
