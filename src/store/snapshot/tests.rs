//! The snapshot file and its nonce: written, read back, trusted only by the open that follows
//! its write, and refused whole when anything about it is off.

use serde::{Deserialize, Serialize};

use super::*;
use crate::store::{Batch, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Device {
    id: u64,
    name: String,
}

impl Record for Device {
    const TABLE: &'static str = "devices";
    const FORMAT: u8 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.to_be_bytes().to_vec()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Other(u8);

impl Record for Other {
    const TABLE: &'static str = "other";
    const FORMAT: u8 = 1;
    fn key(&self) -> Vec<u8> {
        vec![self.0]
    }
}

const TABLES: &[&str] = &[Device::TABLE, Other::TABLE];

fn devices(n: u64) -> Vec<Device> {
    (0..n)
        .map(|id| Device {
            id,
            name: format!("device-{id}"),
        })
        .collect()
}

/// The store lives in `dir/store`, so its snapshot (`dir/store.snapshot`) stays in `dir`.
fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("store"), TABLES).expect("store opens")
}

fn read_all<R: Record>(mut reader: SnapshotReader) -> Result<Vec<R>, SnapshotError> {
    let path = reader.path().to_owned();
    let (mut out, mut block) = (Vec::new(), Block::default());
    while reader.next_block(&mut block)? {
        block.decode::<R>(&path, |r| out.push(r))?;
    }
    // After its end (or an error) a reader hands out nothing more.
    assert!(!reader.next_block(&mut block)?);
    Ok(out)
}

#[test]
fn the_open_after_a_write_reads_every_record_back() {
    let dir = tempfile::tempdir().unwrap();
    // More than one block, and a last block that is not full.
    let written = devices(BLOCK_RECORDS as u64 * 2 + 17);
    let store = open(&dir);
    let size = store.write_snapshot([7; 16], written.iter()).unwrap();
    assert_eq!(
        std::fs::metadata(store.snapshot_path()).unwrap().len(),
        size
    );
    drop(store);
    let store = open(&dir);
    let reader = store
        .open_snapshot::<Device>()
        .expect("the snapshot matches");
    assert_eq!(read_all::<Device>(reader).unwrap(), written);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(store.snapshot_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn only_the_first_open_after_a_write_trusts_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.write_snapshot([1; 16], devices(3).iter()).unwrap();
    drop(store);
    let store = open(&dir);
    // This open took the nonce; it writes, then stops without a snapshot (a crash, a tool).
    assert!(store.open_snapshot::<Device>().is_some());
    let mut batch = Batch::new();
    batch.put(&Device {
        id: 99,
        name: "new".into(),
    });
    store.commit_blocking(batch).unwrap();
    drop(store);
    let store = open(&dir);
    assert!(
        store.open_snapshot::<Device>().is_none(),
        "a snapshot older than the store's last write was offered"
    );
    assert!(
        store.snapshot_path().exists(),
        "the file itself is left for the caller"
    );
    store.discard_snapshot();
    assert!(!store.snapshot_path().exists());
}

#[test]
fn a_store_takes_no_write_after_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.write_snapshot([4; 16], devices(2).iter()).unwrap();
    let mut batch = Batch::new();
    batch.put(&Device {
        id: 7,
        name: "late".into(),
    });
    let err = store.commit_blocking(batch).unwrap_err();
    assert!(matches!(err, crate::store::StoreError::Closed), "{err}");
    drop(store);
    // The refused write is nowhere, and the snapshot still matches the store.
    let store = open(&dir);
    assert_eq!(store.get::<Device>(&7u64.to_be_bytes()).unwrap(), None);
    let reader = store
        .open_snapshot::<Device>()
        .expect("the snapshot matches");
    assert_eq!(read_all::<Device>(reader).unwrap(), devices(2));
}

#[test]
fn a_snapshot_of_another_store_or_table_is_not_offered() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store_a = open(&a);
    let store_b = open(&b);
    store_a.write_snapshot([1; 16], devices(3).iter()).unwrap();
    store_b.write_snapshot([2; 16], devices(3).iter()).unwrap();
    let path_b = store_b.snapshot_path();
    let path_a = store_a.snapshot_path();
    drop((store_a, store_b));
    // Store a's snapshot replaced by store b's: the nonce does not match.
    std::fs::copy(&path_b, &path_a).unwrap();
    assert!(open(&a).open_snapshot::<Device>().is_none());
    let err = SnapshotReader::open::<Other>(&path_b, &[2; 16]).unwrap_err();
    assert!(err.to_string().contains("another table"), "{err}");
}

/// Writes a snapshot of `n` devices under nonce [9; 16] and returns its bytes.
fn snapshot_bytes(dir: &tempfile::TempDir, n: u64) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.path().join("s.snapshot");
    write(&path, &[9; 16], devices(n).iter()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

fn read_damaged(path: &std::path::Path, bytes: &[u8]) -> SnapshotError {
    std::fs::write(path, bytes).unwrap();
    match SnapshotReader::open::<Device>(path, &[9; 16]) {
        Ok(reader) => read_all::<Device>(reader).expect_err("damage must be found"),
        Err(e) => e,
    }
}

#[test]
fn damage_anywhere_refuses_the_whole_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good) = snapshot_bytes(&dir, 10);
    let header = 8 + 4 + 16 + 2 + Device::TABLE.len() + 8;
    // A flipped byte inside a record: the block's checksum.
    let mut flipped = good.clone();
    flipped[header + 8 + 10] ^= 0x40;
    let err = read_damaged(&path, &flipped);
    assert!(err.to_string().contains("checksum"), "{err}");
    // Cut anywhere after the header: the end marker is missing.
    for cut in [header + 3, header + 20, good.len() - 12, good.len() - 1] {
        let err = read_damaged(&path, &good[..cut]);
        // Cut short enough, the header's count is already more than the file can hold.
        let text = err.to_string();
        assert!(
            text.contains("ends before its end marker") || text.contains("announces"),
            "cut {cut}: {err}"
        );
    }
    // An end that counts other records than the blocks hold.
    let mut count = good.clone();
    let at = good.len() - 8;
    count[at] ^= 1;
    let err = read_damaged(&path, &count);
    assert!(err.to_string().contains("end says"), "{err}");
    // A block claiming a huge length is refused before anything is allocated for it.
    let mut huge = good.clone();
    huge[header + 4..header + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = read_damaged(&path, &huge);
    assert!(err.to_string().contains("claims"), "{err}");
    // A header announcing more records than the file can hold is refused at open, before
    // anything is sized by it.
    let mut announced = good.clone();
    announced[header - 8..header].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&path, &announced).unwrap();
    let err = SnapshotReader::open::<Device>(&path, &[9; 16]).unwrap_err();
    assert!(err.to_string().contains("announces"), "{err}");
}

/// The file format is pinned: a snapshot written by one release is read by the next, or
/// refused by its format number, never misread.
#[test]
fn golden_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = snapshot_bytes(&dir, 1);
    let expected: Vec<u8> = [
        &b"SATSNAP1"[..],
        &1u32.to_le_bytes(),
        &[9; 16],
        &7u16.to_le_bytes(),
        b"devices",
        &1u64.to_le_bytes(),
        // One block of one record: count, byte length, the record (length, format byte 1,
        // bincode: id u64, name length u64, "device-0"), CRC-32.
        &1u32.to_le_bytes(),
        &29u32.to_le_bytes(),
        &25u32.to_le_bytes(),
        &[1],
        &0u64.to_le_bytes(),
        &8u64.to_le_bytes(),
        b"device-0",
    ]
    .concat();
    assert_eq!(bytes[..expected.len()], expected[..]);
    let crc = crc32fast::hash(&expected[expected.len() - 29..]);
    let end: Vec<u8> = [
        &crc.to_le_bytes()[..],
        &0u32.to_le_bytes(),
        &1u64.to_le_bytes(),
    ]
    .concat();
    assert_eq!(bytes[expected.len()..], end[..]);
}
