//! Tests of `backup`.

use std::path::Path;

use aws_lc_rs::digest;

use super::*;
use crate::hex::encode as hex;
use crate::store::{SCHEMA_VERSION, Store};

const TABLES: &[&str] = &["alpha", "empty", "beta"];

/// A store with odd keys and values: empty, binary, long, and enough records to report
/// progress.
fn sample(dir: &Path, many: u64) -> Store {
    let store = Store::open(dir, TABLES).expect("open");
    let odd: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (Vec::new(), Vec::new()),
        (vec![0], vec![0xff; 3]),
        (vec![0xff; 300], b"\x01plain".to_vec()),
        ("clé".as_bytes().to_vec(), vec![7; 200_000]),
    ];
    for (k, v) in &odd {
        store.put_raw("alpha", k, v).expect("put");
    }
    for i in 0..many {
        let value = [&[1u8][..], &i.to_le_bytes(), b"record"].concat();
        store
            .put_raw("beta", &i.to_be_bytes(), &value)
            .expect("put");
    }
    store
}

fn export(store: &Store) -> (Vec<u8>, BackupSummary, Vec<Progress>) {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let summary = store.export(&mut out, |p| seen.push(p)).expect("export");
    (out, summary, seen)
}

fn raw(store: &Store) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    for name in TABLES {
        for item in store.tree(name).expect("table").iter() {
            let (k, v) = item.expect("read");
            all.push((name.to_string(), k.to_vec(), v.to_vec()));
        }
    }
    all
}

/// Opens a restored store. sled releases the directory lock of the import's handle from
/// background threads, so the first attempts right after an import may find it locked.
fn open_restored(dir: &Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(dir, TABLES) {
            Ok(store) => return store,
            Err(StoreError::Open { .. } | StoreError::Locked { .. })
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("the restored store does not open: {e}"),
        }
    }
}

/// Recomputes the trailer of an edited backup, so that a test reaches the check after the
/// checksum.
fn reseal(bytes: &mut Vec<u8>) {
    bytes.truncate(bytes.len() - 32);
    let hash = digest::digest(&digest::SHA256, bytes);
    bytes.extend_from_slice(hash.as_ref());
}

struct Case {
    dir: tempfile::TempDir,
    file: PathBuf,
    target: PathBuf,
}

impl Case {
    fn new(bytes: &[u8]) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("backup.satbak");
        std::fs::write(&file, bytes).expect("write");
        let target = dir.path().join("restored");
        Case { dir, file, target }
    }

    /// Imports, expecting a refusal that left no trace: no target, no temporary directory.
    fn refused(&self) -> BackupError {
        let err = Store::import(&self.file, &self.target, TABLES, |_| {})
            .expect_err("the import should be refused");
        assert!(!self.target.exists(), "the target was created: {err}");
        let left: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, ["backup.satbak"], "something was left behind: {err}");
        err
    }
}

#[test]
fn round_trip_restores_every_record_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sample(&dir.path().join("live"), 2500);
    let before = raw(&store);
    let (bytes, summary, progress) = export(&store);
    assert_eq!(summary.records, 2504);
    assert_eq!(summary.bytes, bytes.len() as u64);
    assert_eq!(
        summary.tables,
        [
            ("alpha".into(), 4),
            ("empty".into(), 0),
            ("beta".into(), 2500)
        ]
    );
    assert_eq!(progress.last().map(|p| p.records), Some(2504));
    assert!(progress.windows(2).all(|w| w[0].records < w[1].records));
    drop(store);

    let case = Case::new(&bytes);
    let mut seen = Vec::new();
    let restored =
        Store::import(&case.file, &case.target, TABLES, |p| seen.push(p)).expect("import");
    assert_eq!(restored, summary);
    assert!(seen.iter().any(|p| p.phase == Phase::Verify));
    assert_eq!(
        seen.last().map(|p| (p.phase, p.records)),
        Some((Phase::Restore, 2504))
    );
    let reopened = open_restored(&case.target);
    assert_eq!(raw(&reopened), before);
    assert_eq!(verify(&case.file, |_| {}).expect("verify"), summary);
}

#[test]
fn an_existing_empty_directory_is_a_valid_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, _, _) = export(&sample(&dir.path().join("live"), 3));
    let case = Case::new(&bytes);
    std::fs::create_dir(&case.target).expect("mkdir");
    Store::import(&case.file, &case.target, TABLES, |_| {}).expect("import");
    assert_eq!(raw(&open_restored(&case.target)).len(), 7);
}

#[test]
fn a_truncated_backup_is_refused_and_says_how_much_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, summary, _) = export(&sample(&dir.path().join("live"), 50));
    let header = 8 + 4 + 4 + 8 + 4 + 8;
    for cut in [
        0,
        1,
        7,
        8,
        13,
        header - 1,
        header,
        header + 3,
        1000,
        100_000,
    ] {
        let err = Case::new(&bytes[..cut]).refused();
        assert!(
            matches!(err, BackupError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains("is truncated"), "{err}");
    }
    let err = Case::new(&bytes[..100_000]).refused().to_string();
    assert!(
        err.contains(&format!("expected {} records, found 2", summary.records)),
        "{err}"
    );
    for cut in [bytes.len() - 40, bytes.len() - 1] {
        let err = Case::new(&bytes[..cut]).refused().to_string();
        assert!(err.contains("checksum trailer is missing"), "{err}");
    }
}

#[test]
fn any_flipped_byte_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("live"), TABLES).expect("open");
    store.put_raw("alpha", b"key", b"\x01value").expect("put");
    store.put_raw("beta", b"", b"").expect("put");
    let (bytes, _, _) = export(&store);
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        let err = Case::new(&damaged).refused();
        assert!(
            !matches!(err, BackupError::Io { .. } | BackupError::Store(_)),
            "byte {at}: {err}"
        );
    }
    // A flip inside a value is caught by the checksum alone.
    let value_at = bytes
        .windows(6)
        .position(|w| w == b"\x01value")
        .expect("the value is in the file");
    let mut damaged = bytes.clone();
    damaged[value_at + 2] ^= 1;
    let err = Case::new(&damaged).refused();
    assert!(matches!(err, BackupError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("the file is damaged"), "{err}");
}

#[test]
fn a_file_that_is_not_a_backup_is_refused() {
    let err = Case::new(b"SQLite format 3\0 and more bytes").refused();
    assert!(matches!(err, BackupError::NotABackup { .. }), "{err}");
    assert!(
        err.to_string().contains("is not a satellite backup"),
        "{err}"
    );
}

#[test]
fn bytes_after_the_checksum_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut bytes, _, _) = export(&sample(&dir.path().join("live"), 1));
    bytes.push(0);
    let err = Case::new(&bytes).refused();
    assert!(
        err.to_string().contains("bytes after the checksum"),
        "{err}"
    );
}

#[test]
fn a_backup_from_a_newer_format_or_schema_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, _, _) = export(&sample(&dir.path().join("live"), 1));
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(BACKUP_FORMAT + 1).to_be_bytes());
    reseal(&mut newer);
    let err = Case::new(&newer).refused().to_string();
    assert!(
        err.contains(&format!("format version {}", BACKUP_FORMAT + 1))
            && err.contains(&format!("reads up to {BACKUP_FORMAT}")),
        "{err}"
    );
    let mut newer = bytes;
    newer[12..16].copy_from_slice(&(SCHEMA_VERSION + 1).to_be_bytes());
    reseal(&mut newer);
    let err = Case::new(&newer).refused().to_string();
    assert!(
        err.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
            && err.contains(&format!("supports up to {SCHEMA_VERSION}")),
        "{err}"
    );
}

#[test]
fn a_non_empty_target_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, _, _) = export(&sample(&dir.path().join("live"), 1));
    let case = Case::new(&bytes);
    std::fs::create_dir(&case.target).expect("mkdir");
    std::fs::write(case.target.join("keep"), b"mine").expect("write");
    let err = Store::import(&case.file, &case.target, TABLES, |_| {}).expect_err("refused");
    assert!(matches!(err, BackupError::TargetNotEmpty { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("restore into an empty or new directory")
    );
    let left: Vec<_> = std::fs::read_dir(&case.target)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["keep"]);
    assert_eq!(
        std::fs::read(case.target.join("keep")).expect("read"),
        b"mine"
    );
}

#[test]
fn the_sha256_is_the_whole_files_and_the_content_checksum_is_the_trailers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, summary, _) = export(&sample(&dir.path().join("live"), 3));
    // What `sha256sum FILE` prints.
    let whole = hex(digest::digest(&digest::SHA256, &bytes).as_ref());
    assert_eq!(summary.sha256, whole);
    assert_eq!(summary.content_sha256, hex(&bytes[bytes.len() - 32..]));
    assert_ne!(summary.sha256, summary.content_sha256);
    // Reading the file back gives both the same.
    let read = verify_bytes(&bytes).expect("verifies");
    assert_eq!(read, summary);
}
