//! The journal against real files: what a crash leaves (a torn frame, a torn header, frames of
//! an earlier epoch) is never replayed, and what was synced always is.

use std::fs::OpenOptions;

use super::*;
use crate::store::tests::copy_dir;

const TABLE: &str = "devices";

/// A sled database and its directory; the journal is opened beside it by each test.
fn sled_in(dir: &Path) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .expect("sled")
}

fn open(dir: &Path, db: &sled::Db) -> (Journal, Replayed) {
    let (mut journal, replayed) = Journal::open(dir, db).expect("the journal opens");
    journal.set_tables(vec![TABLE.as_bytes().to_vec(), b"other".to_vec()]);
    (journal, replayed)
}

fn put(key: &str, value: &str) -> Op<usize> {
    Op {
        tree: 0,
        key: key.as_bytes().to_vec(),
        value: Some(value.as_bytes().to_vec()),
    }
}

fn remove(key: &str) -> Op<usize> {
    Op {
        tree: 0,
        key: key.as_bytes().to_vec(),
        value: None,
    }
}

fn value(db: &sled::Db, key: &str) -> Option<String> {
    db.open_tree(TABLE)
        .expect("tree")
        .get(key)
        .expect("get")
        .map(|v| String::from_utf8(v.to_vec()).expect("utf-8"))
}

/// Groups written and synced but never applied (the process died) are applied by the next
/// open, in order, and only once: the open starts a new epoch. Frames written through the page
/// cache (where the file system has no direct IO) read the same.
#[test]
fn synced_groups_are_replayed_in_order_once() {
    synced_groups_are_replayed(true);
    synced_groups_are_replayed(false);
}

fn synced_groups_are_replayed(direct: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled_in(dir.path());
    let (mut journal, replayed) = open(dir.path(), &db);
    if !direct {
        journal.direct = None;
    }
    assert_eq!(replayed, Replayed::default(), "a new journal holds nothing");
    journal
        .append(&[vec![put("a", "1"), put("b", "1")], vec![put("c", "1")]])
        .expect("append");
    journal
        .append(&[vec![put("a", "2"), remove("b")]])
        .expect("append");
    let written = journal.len();
    assert!(written > 0);
    drop(journal);
    assert_eq!(value(&db, "a"), None, "nothing was applied to sled");

    let (journal, replayed) = open(dir.path(), &db);
    assert_eq!(
        replayed,
        Replayed {
            groups: 2,
            writes: 5
        }
    );
    assert_eq!(
        value(&db, "a").as_deref(),
        Some("2"),
        "the later write wins"
    );
    assert_eq!(value(&db, "b"), None, "the removal is replayed");
    assert_eq!(value(&db, "c").as_deref(), Some("1"));
    assert_eq!(
        journal.len(),
        0,
        "the replayed frames are behind a checkpoint"
    );
    drop(journal);

    // A write made after the replay is not undone by a second open.
    db.open_tree(TABLE)
        .expect("tree")
        .insert("a", "3")
        .expect("insert");
    let (journal, replayed) = open(dir.path(), &db);
    assert_eq!(replayed, Replayed::default(), "replayed once only");
    let epoch = journal.epoch;
    drop(journal);
    let (journal, _) = open(dir.path(), &db);
    assert_eq!(journal.epoch, epoch + 1, "every open starts a new epoch");
    assert_eq!(value(&db, "a").as_deref(), Some("3"));
}

/// A crash inside a frame's write leaves a frame that is short or fails its checksum: the
/// replay ends there, and the whole group is absent (it was never acknowledged).
#[test]
fn a_torn_frame_ends_the_replay_and_its_group_is_absent() {
    for tear in ["truncated", "flipped"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled_in(dir.path());
        let (mut journal, _) = open(dir.path(), &db);
        journal.append(&[vec![put("a", "1")]]).expect("append");
        let first = journal.end;
        journal
            .append(&[vec![put("b", "1"), put("c", "1")]])
            .expect("append");
        assert!(journal.end > first);
        drop(journal);
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join(JOURNAL_FILE))
            .expect("journal");
        match tear {
            "truncated" => file
                .set_len(first + FRAME_HEADER as u64 + 3)
                .expect("truncate"),
            _ => file
                .write_all_at(&[0xff], first + FRAME_HEADER as u64 + 5)
                .expect("flip a byte"),
        }
        drop(file);
        let (_, replayed) = open(dir.path(), &db);
        assert_eq!(replayed.groups, 1, "{tear}: the frame before the tear only");
        assert_eq!(value(&db, "a").as_deref(), Some("1"), "{tear}");
        assert_eq!(value(&db, "b"), None, "{tear}: no part of the torn group");
        assert_eq!(value(&db, "c"), None, "{tear}: no part of the torn group");
    }
}

/// After a checkpoint the frames of the earlier epoch stay in the file behind the new ones,
/// whole and with good checksums; they are not replayed.
#[test]
fn frames_of_an_earlier_epoch_are_not_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled_in(dir.path());
    let (mut journal, _) = open(dir.path(), &db);
    for n in 0..3 {
        journal
            .append(&[vec![put(&format!("old{n}"), "x")]])
            .expect("append");
    }
    journal.checkpointed().expect("checkpoint");
    // The same size as each old frame, so the next old frame starts right after it.
    journal.append(&[vec![put("new0", "y")]]).expect("append");
    drop(journal);
    let (_, replayed) = open(dir.path(), &db);
    assert_eq!(replayed.groups, 1);
    assert_eq!(value(&db, "new0").as_deref(), Some("y"));
    for n in 1..3 {
        assert_eq!(value(&db, &format!("old{n}")), None, "old{n} is of epoch 1");
    }
}

/// A crash while a checkpoint writes its header leaves the other slot, with the previous
/// epoch: its frames are replayed again, which changes nothing sled does not already hold.
#[test]
fn a_torn_header_falls_back_to_the_previous_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled_in(dir.path());
    let (mut journal, _) = open(dir.path(), &db);
    journal.append(&[vec![put("a", "1")]]).expect("append");
    assert_eq!(journal.epoch, 1);
    journal.checkpointed().expect("checkpoint");
    assert_eq!(journal.epoch, 2);
    drop(journal);
    let file = OpenOptions::new()
        .write(true)
        .open(dir.path().join(JOURNAL_FILE))
        .expect("journal");
    // Epoch 2 lives in slot 0; tear its epoch field.
    file.write_all_at(&[0xaa; 4], 10).expect("tear the header");
    drop(file);
    let (journal, replayed) = open(dir.path(), &db);
    assert_eq!(replayed.groups, 1, "epoch 1's frame again");
    assert_eq!(value(&db, "a").as_deref(), Some("1"));
    assert_eq!(journal.epoch, 2, "a new epoch after the replay");
}

/// Something other than satellite changed the file: both headers unreadable, or a frame whose
/// checksum holds but whose writes cannot be read. The open refuses, naming the file, and
/// applies nothing of the bad frame.
#[test]
fn a_damaged_journal_is_refused_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled_in(dir.path());
    let (mut journal, _) = open(dir.path(), &db);
    journal.append(&[vec![put("a", "1")]]).expect("append");
    // A frame that says it holds two writes but holds one, with a checksum that matches.
    journal.encode(&[vec![put("b", "1")]]).expect("encode");
    journal.buf[FRAME_HEADER..FRAME_HEADER + 4].copy_from_slice(&2u32.to_le_bytes());
    let crc = checksum(
        journal.salt,
        &journal.buf[..FRAME_HEADER],
        &journal.buf[FRAME_HEADER..],
    );
    journal.buf[4..8].copy_from_slice(&crc.to_le_bytes());
    journal
        .file
        .write_all_at(&journal.buf, journal.end)
        .expect("write the bad frame");
    drop(journal);
    let err = Journal::open(dir.path(), &db).err().expect("refused");
    let message = err.to_string();
    assert!(
        message.contains("passes its checksum but ends inside a write")
            && message.contains(JOURNAL_FILE),
        "{message}"
    );
    assert_eq!(value(&db, "b"), None, "nothing of the bad frame");

    let other = tempfile::tempdir().expect("tempdir");
    let db = sled_in(other.path());
    drop(open(other.path(), &db));
    let file = OpenOptions::new()
        .write(true)
        .open(other.path().join(JOURNAL_FILE))
        .expect("journal");
    file.write_all_at(b"garbage!", SLOT_BYTES).expect("slot 1");
    file.write_all_at(b"garbage!", 0).expect("slot 0");
    drop(file);
    let message = Journal::open(other.path(), &db)
        .err()
        .expect("refused")
        .to_string();
    assert!(message.contains("neither header"), "{message}");
}

/// The file grows in zero-filled chunks ahead of its frames, so most frames overwrite written
/// blocks; a group larger than a chunk grows it by as much as needed.
#[test]
fn the_file_grows_in_chunks_ahead_of_the_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled_in(dir.path());
    let (mut journal, _) = open(dir.path(), &db);
    let size = || {
        std::fs::metadata(dir.path().join(JOURNAL_FILE))
            .expect("journal")
            .len()
    };
    assert_eq!(size(), FRAMES_START, "a new journal is its head");
    journal.append(&[vec![put("a", "1")]]).expect("append");
    assert_eq!(size(), CHUNK);
    assert_eq!(
        journal.end,
        FRAMES_START + BLOCK,
        "a frame takes whole blocks"
    );
    let big = "v".repeat(3 * CHUNK as usize / 2);
    journal.append(&[vec![put("big", &big)]]).expect("append");
    assert_eq!(size(), 2 * CHUNK, "grown to the next chunk boundary");
    assert!(journal.end <= 2 * CHUNK && journal.end > CHUNK);
    drop(journal);
    let (_, replayed) = open(dir.path(), &db);
    assert_eq!(replayed.groups, 2);
    assert_eq!(value(&db, "big").map(|v| v.len()), Some(big.len()));
}

/// The store as a crash leaves it: its files copied while it is open, after commits that were
/// acknowledged but never flushed to sled's files. The copy opens with every commit, replayed
/// from the journal, and with none of sled's own flushes in between (sled has no periodic flush
/// and no checkpoint was due).
#[test]
fn a_store_copied_while_open_has_every_acknowledged_commit() {
    use crate::store::Store;
    let dir = tempfile::tempdir().expect("tempdir");
    let live = dir.path().join("live");
    let store = Store::open(&live, &["alpha"]).expect("open");
    for n in 0u32..50 {
        store
            .put_raw("alpha", &n.to_be_bytes(), format!("value {n}").as_bytes())
            .expect("a durable write");
    }
    store
        .put_raw("alpha", &7u32.to_be_bytes(), b"seven again")
        .expect("a durable write");
    assert_eq!(store.checkpoints(), 0, "no checkpoint was due");
    let copy = dir.path().join("copy");
    copy_dir(&live, &copy);
    drop(store);

    let reopened = Store::open(&copy, &["alpha"]).expect("the copy opens");
    for n in 0u32..50 {
        let expected = if n == 7 {
            "seven again".to_owned()
        } else {
            format!("value {n}")
        };
        assert_eq!(
            reopened.get_raw("alpha", &n.to_be_bytes()).expect("read"),
            Some(expected.into_bytes()),
            "write {n}"
        );
    }
}

/// When the journal passes its limit the committer takes a checkpoint: sled flushed, a new
/// epoch, the journal empty again, and every write still there after a reopen.
#[test]
fn a_full_journal_makes_a_checkpoint() {
    use crate::store::Store;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), &["alpha"]).expect("open");
    // Frames take a block each: a checkpoint after every fourth write.
    store.inner.group.checkpoint_at(4 * BLOCK);
    let value = vec![0x5a; 1000];
    for n in 0u32..20 {
        store
            .put_raw("alpha", &n.to_be_bytes(), &value)
            .expect("a durable write");
    }
    assert_eq!(store.checkpoints(), 5);
    drop(store);
    let store = Store::open(dir.path(), &["alpha"]).expect("reopen");
    assert_eq!(store.count::<Raw>().expect("count"), 20);
}

/// A record type over the test's raw table, for counting.
#[derive(serde::Serialize, serde::Deserialize)]
struct Raw;

impl crate::store::Record for Raw {
    const TABLE: &'static str = "alpha";
    const FORMAT: u8 = 1;
    fn key(&self) -> Vec<u8> {
        Vec::new()
    }
}

proptest::proptest! {
    /// Any group reads back as the writes it held, in order; and any bytes at all, read as a
    /// payload, give writes or a reason, never a panic.
    #[test]
    fn payloads_round_trip_and_any_bytes_are_safe(
        writes in proptest::collection::vec(
            (0usize..2, proptest::collection::vec(proptest::num::u8::ANY, 0..40),
             proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..200))),
            0..30,
        ),
        noise in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled_in(dir.path());
        let (mut journal, _) = open(dir.path(), &db);
        let group: Vec<Op<usize>> = writes
            .iter()
            .map(|(tree, key, value)| Op { tree: *tree, key: key.clone(), value: value.clone() })
            .collect();
        journal.encode(&[group]).expect("encode");
        let read = parse(&journal.buf[FRAME_HEADER..]).expect("a frame satellite wrote reads");
        proptest::prop_assert_eq!(read.len(), writes.len());
        for ((name, key, value), (tree, k, v)) in read.iter().zip(&writes) {
            proptest::prop_assert_eq!(*name, journal.tables[*tree].as_slice());
            proptest::prop_assert_eq!(*key, k.as_slice());
            proptest::prop_assert_eq!(*value, v.as_deref());
        }
        let _ = parse(&noise);
    }
}

/// A journal whose creation was cut short (its head still zeros: frames are written only after
/// a synced header) opens as a new one instead of refusing the store.
#[test]
fn a_journal_whose_header_was_never_written_opens_as_new() {
    for len in [0, BLOCK, FRAMES_START] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled_in(dir.path());
        std::fs::write(dir.path().join(JOURNAL_FILE), vec![0u8; len as usize]).expect("zeros");
        let (mut journal, replayed) = open(dir.path(), &db);
        assert_eq!(replayed, Replayed::default(), "{len} bytes");
        assert_eq!(journal.epoch, 1, "{len} bytes");
        journal.append(&[vec![put("a", "1")]]).expect("append");
        drop(journal);
        let (_, replayed) = open(dir.path(), &db);
        assert_eq!(replayed.groups, 1, "{len} bytes");
    }
}

/// A frame damaged after it was written (not torn by a crash: frames after it are whole) is
/// refused rather than silently ending the replay before them.
#[test]
fn a_damaged_frame_before_whole_ones_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled_in(dir.path());
    let (mut journal, _) = open(dir.path(), &db);
    journal.append(&[vec![put("a", "1")]]).expect("append");
    let second = journal.end;
    journal.append(&[vec![put("b", "1")]]).expect("append");
    journal.append(&[vec![put("c", "1")]]).expect("append");
    drop(journal);
    let file = OpenOptions::new()
        .write(true)
        .open(dir.path().join(JOURNAL_FILE))
        .expect("journal");
    file.write_all_at(&[0xff], second + FRAME_HEADER as u64 + 2)
        .expect("damage the second frame");
    drop(file);
    let message = Journal::open(dir.path(), &db)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        message.contains(&format!("at byte {second}")) && message.contains("cannot be read"),
        "{message}"
    );
}

/// Bytes laid out as a frame of the current epoch, but not checksummed with the epoch's salt
/// (a device's data inside an older frame could look like that at a block boundary), are not
/// replayed.
#[test]
fn a_frame_without_the_epochs_salt_is_not_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled_in(dir.path());
    let (mut journal, _) = open(dir.path(), &db);
    journal.append(&[vec![put("real", "1")]]).expect("append");
    let salt = journal.salt;
    journal.salt = salt ^ 1;
    journal.encode(&[vec![put("forged", "1")]]).expect("encode");
    journal.salt = salt;
    journal
        .file
        .write_all_at(&journal.buf, journal.end)
        .expect("write the forged frame");
    drop(journal);
    let (_, replayed) = open(dir.path(), &db);
    assert_eq!(replayed.groups, 1, "the real frame only");
    assert_eq!(value(&db, "real").as_deref(), Some("1"));
    assert_eq!(value(&db, "forged"), None);
}

/// The journal does not hold groups for long: with the interval at zero every group is followed
/// by a checkpoint, and with a short one a journal left alone is checkpointed by the idle
/// committer (sled's own writes since the last checkpoint are safe from a power cut only then).
#[test]
fn the_journal_is_checkpointed_on_time_busy_or_idle() {
    use crate::store::Store;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), &["alpha"]).expect("open");
    store
        .inner
        .group
        .checkpoint_every(std::time::Duration::ZERO);
    for n in 0u32..3 {
        store
            .put_raw("alpha", &n.to_be_bytes(), b"v")
            .expect("a durable write");
    }
    assert_eq!(store.checkpoints(), 3, "one after each group");
    assert_eq!(store.journal_bytes(), 0);

    store
        .inner
        .group
        .checkpoint_every(std::time::Duration::from_millis(100));
    for round in 1..=2u64 {
        let before = store.checkpoints();
        store
            .put_raw("alpha", &round.to_be_bytes(), b"w")
            .expect("a durable write");
        // Waits for the committer, not for a time: bounded, and ends as soon as it has acted.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while store.checkpoints() == before || store.journal_bytes() != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: no checkpoint of a journal left alone"
            );
            std::thread::yield_now();
        }
    }
}
