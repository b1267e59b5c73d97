//! Tests of the store against real directories: atomic commits, reopening, corrupt records,
//! group commit, and schema migration between releases.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::*;

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
struct Usage {
    device: u64,
    seq: u64,
    units: u32,
}

impl Record for Usage {
    const TABLE: &'static str = "usage";
    const FORMAT: u8 = 1;
    fn key(&self) -> Vec<u8> {
        [self.device.to_be_bytes(), self.seq.to_be_bytes()].concat()
    }
}

/// A record whose table is never registered.
#[derive(Debug, Serialize, Deserialize)]
struct Stray;

impl Record for Stray {
    const TABLE: &'static str = "stray";
    const FORMAT: u8 = 1;
    fn key(&self) -> Vec<u8> {
        Vec::new()
    }
}

const TABLES: &[&str] = &[Device::TABLE, Usage::TABLE];

fn device(id: u64, name: &str) -> Device {
    Device {
        id,
        name: name.to_owned(),
    }
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path(), TABLES).expect("store opens")
}

fn key(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

#[tokio::test]
async fn batch_across_tables_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut batch = Batch::new();
    batch.put(&device(1, "gw-1"));
    batch.put(&Usage {
        device: 1,
        seq: 1,
        units: 10,
    });
    batch.put(&Usage {
        device: 1,
        seq: 2,
        units: 20,
    });
    assert_eq!(batch.len(), 3);
    store.commit(batch).await.expect("commit");
    assert_eq!(store.commits(), 1);
    drop(store);

    let store = open(&dir);
    assert_eq!(
        store.get::<Device>(&key(1)).expect("get"),
        Some(device(1, "gw-1"))
    );
    let usage: Vec<Usage> = store
        .scan::<Usage>()
        .collect::<Result<_, _>>()
        .expect("scan");
    assert_eq!(usage.iter().map(|u| u.units).collect::<Vec<_>>(), [10, 20]);
    assert!(store.size_on_disk().expect("size") > 0);
    assert_eq!(store.path(), dir.path());
}

#[tokio::test]
async fn delete_removes_the_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut batch = Batch::new();
    batch.put(&device(1, "a"));
    batch.put(&device(2, "b"));
    store.commit(batch).await.expect("commit");
    let mut batch = Batch::new();
    batch.delete::<Device>(&key(1));
    store.commit(batch).await.expect("commit");
    drop(store);

    let store = open(&dir);
    assert_eq!(store.get::<Device>(&key(1)).expect("get"), None);
    assert_eq!(store.count::<Device>().expect("count"), 1);
}

#[tokio::test]
async fn ranges_and_ordering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut batch = Batch::new();
    for id in 1..=5 {
        batch.put(&device(id, &format!("d{id}")));
    }
    store.commit(batch).await.expect("commit");
    let ids = |items: Vec<Result<Device, StoreError>>| -> Vec<u64> {
        items.into_iter().map(|d| d.expect("decodes").id).collect()
    };
    assert_eq!(
        ids(store.scan_range::<Device, _>(key(2)..key(4)).collect()),
        [2, 3]
    );
    assert_eq!(ids(store.scan_rev::<Device>().collect()), [5, 4, 3, 2, 1]);
    assert_eq!(store.last::<Device>().expect("last"), Some(device(5, "d5")));
    assert_eq!(store.last::<Usage>().expect("last"), None);
    assert!(store.commit(Batch::new()).await.is_ok());
    assert_eq!(store.commits(), 1, "an empty batch is not a commit");
}

#[tokio::test]
async fn a_corrupt_record_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut batch = Batch::new();
    for id in 1..=3 {
        batch.put(&device(id, "ok"));
    }
    store.commit(batch).await.expect("commit");
    store
        .put_raw(Device::TABLE, &key(2), &[1, 0xde, 0xad])
        .expect("put_raw");
    store.flush().await.expect("flush");
    assert_eq!(
        store.get_raw(Device::TABLE, &key(2)).expect("get_raw"),
        Some(vec![1, 0xde, 0xad])
    );

    let items: Vec<Result<Device, StoreError>> = store.scan().collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[2].is_ok());
    let message = items[1]
        .as_ref()
        .expect_err("record 2 is corrupt")
        .to_string();
    assert!(message.contains("table devices"), "{message}");
    assert!(message.contains("0x0000000000000002"), "{message}");
    assert!(matches!(
        store.get::<Device>(&key(2)),
        Err(StoreError::Codec(_))
    ));
}

#[tokio::test]
async fn unregistered_tables_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    assert!(matches!(
        store.get::<Stray>(b""),
        Err(StoreError::UnknownTable { .. })
    ));
    let items: Vec<_> = store.scan::<Stray>().collect();
    assert!(matches!(
        items.as_slice(),
        [Err(StoreError::UnknownTable { .. })]
    ));
    let mut batch = Batch::new();
    batch.put(&Stray);
    assert!(matches!(
        store.commit(batch).await,
        Err(StoreError::UnknownTable { .. })
    ));
    drop(store);
    let reserved = Store::open(dir.path(), &["__meta"]);
    assert!(matches!(reserved, Err(StoreError::ReservedTable { .. })));
}

#[test]
fn commit_blocking_is_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut batch = Batch::new();
    batch.put(&device(7, "tool"));
    store.commit_blocking(batch).expect("commit");
    assert!(store.flushes() >= 1);
    drop(store);
    assert_eq!(
        open(&dir).get::<Device>(&key(7)).expect("get"),
        Some(device(7, "tool"))
    );
}

/// With the committer held, 200 writers queue up; releasing it makes one flush serve them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_share_one_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store.inner.group.hold(true);
    let tasks: Vec<_> = (0..200u64)
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut batch = Batch::new();
                batch.put(&device(id, "c"));
                store.commit(batch).await
            })
        })
        .collect();
    while store.inner.group.written() < 200 {
        tokio::task::yield_now().await;
    }
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "no commit returns before its flush"
    );
    store.inner.group.hold(false);
    for task in tasks {
        task.await.expect("task").expect("commit");
    }
    assert_eq!(store.commits(), 200);
    assert_eq!(store.flushes(), 1, "one flush served all 200 commits");
}

/// Free-running concurrent commits are all acknowledged, all durable, and share flushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_are_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let tasks: Vec<_> = (0..500u64)
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut batch = Batch::new();
                batch.put(&device(id, "many"));
                batch.put(&Usage {
                    device: id,
                    seq: 0,
                    units: 1,
                });
                store.commit(batch).await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("commit");
    }
    assert_eq!(store.commits(), 500);
    assert!(store.flushes() <= store.commits());
    drop(store);
    let store = open(&dir);
    assert_eq!(store.count::<Device>().expect("count"), 500);
    assert_eq!(store.count::<Usage>().expect("count"), 500);
}

#[tokio::test]
async fn a_failed_flush_refuses_all_later_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store.inner.group.poison("disk on fire");
    let mut batch = Batch::new();
    batch.put(&device(1, "x"));
    let err = store.commit(batch).await.expect_err("poisoned");
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert!(matches!(store.flush().await, Err(StoreError::Flush { .. })));
    assert_eq!(
        store.get::<Device>(&key(1)).expect("get"),
        None,
        "nothing was applied"
    );
}

fn puts(devices: &[Device]) -> Batch {
    let mut batch = Batch::new();
    for d in devices {
        batch.put(d);
    }
    batch
}

/// Batches staged by several writers while the committer is busy wait in the queue (invisible
/// to readers), then land together: one group, one journal frame, one sync, in staging order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_batches_land_in_one_group_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store.inner.group.hold(true);
    let mut first = puts(&[device(1, "a")]);
    first.put(&Usage {
        device: 1,
        seq: 1,
        units: 5,
    });
    let staged = vec![
        store.stage(first).expect("stage"),
        store.stage(puts(&[device(2, "b")])).expect("stage"),
        store.stage(puts(&[device(1, "c")])).expect("stage"),
        store.stage(puts(&[device(3, "gone")])).expect("stage"),
    ];
    let mut delete = Batch::new();
    delete.delete::<Device>(&key(3));
    let mut staged = staged;
    staged.push(store.stage(delete).expect("stage"));
    assert_eq!(
        store.get::<Device>(&key(1)).expect("get"),
        None,
        "a queued batch is not applied yet"
    );
    let waiters: Vec<_> = staged
        .into_iter()
        .map(|s| tokio::spawn(s.durable()))
        .collect();
    store.inner.group.hold(false);
    for w in waiters {
        w.await.expect("task").expect("durable");
    }
    assert_eq!(store.commits(), 5);
    assert_eq!(store.groups(), 1, "one group for the five batches");
    assert_eq!(store.flushes(), 1, "one flush for the five batches");
    drop(store);

    let store = open(&dir);
    assert_eq!(
        store.get::<Device>(&key(1)).expect("get"),
        Some(device(1, "c")),
        "the later write wins"
    );
    assert_eq!(
        store.get::<Device>(&key(2)).expect("get"),
        Some(device(2, "b"))
    );
    assert_eq!(store.get::<Device>(&key(3)).expect("get"), None);
    assert_eq!(store.count::<Usage>().expect("count"), 1);
}

/// Counts the wake-ups of one waiting writer, and the thread that woke it last.
#[derive(Default)]
struct CountingWaker {
    wakes: std::sync::atomic::AtomicUsize,
}

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Lets the held committer go and waits until it has committed what was staged and gone back to
/// waiting; fails after 30 s rather than hang.
fn release_and_wait_for_the_group(store: &Store) {
    store.inner.group.hold(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !store.inner.group.idle() {
        assert!(
            std::time::Instant::now() < deadline,
            "the group never ended"
        );
        std::thread::yield_now();
    }
}

/// The committer wakes one writer of a finished group, not each of them: a wake-up from
/// outside the runtime is a system call and, on a busy core, a switch to the woken worker
/// and back (`commit.rs`, module docs). The writer it wakes tells the others when it runs.
#[test]
fn the_committer_wakes_one_writer_per_group() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    const WRITERS: u64 = 8;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store.inner.group.hold(true);
    let mut writers: Vec<_> = (1..=WRITERS)
        .map(|id| {
            let staged = store.stage(puts(&[device(id, "w")])).expect("stage");
            (
                Box::pin(staged.durable()),
                Arc::new(CountingWaker::default()),
            )
        })
        .collect();
    for (future, waker) in &mut writers {
        let waker = Waker::from(Arc::clone(waker));
        let pending = future.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(pending.is_pending(), "nothing is durable while held");
    }
    let wakes = |writers: &[(_, Arc<CountingWaker>)]| -> Vec<usize> {
        writers
            .iter()
            .map(|(_, w)| w.wakes.load(std::sync::atomic::Ordering::SeqCst))
            .collect()
    };
    assert_eq!(wakes(&writers), vec![0; WRITERS as usize]);
    release_and_wait_for_the_group(&store);
    assert_eq!(store.groups(), 1, "one group for the {WRITERS} writers");
    let woken: Vec<usize> = (0..writers.len())
        .filter(|&i| wakes(&writers)[i] > 0)
        .collect();
    assert_eq!(
        woken.len(),
        1,
        "the committer woke {} of the group's writers ({:?}); it should wake one",
        woken.len(),
        wakes(&writers)
    );
    // The woken writer finds its batch durable and tells the others, from this thread.
    let (first, first_waker) = &mut writers[woken[0]];
    let waker = Waker::from(Arc::clone(first_waker));
    let ready = first.as_mut().poll(&mut Context::from_waker(&waker));
    assert!(matches!(ready, Poll::Ready(Ok(()))), "{ready:?}");
    assert!(
        wakes(&writers).iter().all(|&n| n == 1),
        "every writer is woken once: {:?}",
        wakes(&writers)
    );
    for (i, (future, waker)) in writers.iter_mut().enumerate() {
        if i == woken[0] {
            continue;
        }
        let waker = Waker::from(Arc::clone(waker));
        let ready = future.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(
            matches!(ready, Poll::Ready(Ok(()))),
            "writer {i}: {ready:?}"
        );
    }
}

/// A writer that gives up waiting (its request was dropped) does not strand the others: the
/// wake-up it was given passes to another writer.
#[test]
fn a_dropped_writer_passes_its_wake_up_on() {
    use std::future::Future;
    use std::task::{Context, Waker};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store.inner.group.hold(true);
    let mut writers: Vec<_> = (1..=2)
        .map(|id| {
            let staged = store.stage(puts(&[device(id, "w")])).expect("stage");
            (
                Some(Box::pin(staged.durable())),
                Arc::new(CountingWaker::default()),
            )
        })
        .collect();
    for (future, waker) in &mut writers {
        let waker = Waker::from(Arc::clone(waker));
        let future = future.as_mut().expect("future");
        assert!(
            future
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
    }
    release_and_wait_for_the_group(&store);
    let woken = writers
        .iter()
        .position(|(_, w)| w.wakes.load(std::sync::atomic::Ordering::SeqCst) > 0)
        .expect("one writer woken");
    let other = 1 - woken;
    writers[woken].0 = None;
    assert_eq!(
        writers[other]
            .1
            .wakes
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the dropped writer's wake-up went to the other one"
    );
    let waker = Waker::from(Arc::clone(&writers[other].1));
    let future = writers[other].0.as_mut().expect("future");
    let ready = future.as_mut().poll(&mut Context::from_waker(&waker));
    assert!(matches!(ready, std::task::Poll::Ready(Ok(()))), "{ready:?}");
}

/// Writers that give up while their group is committed (a dropped request) strand none of the
/// others, whichever writer the committer happens to wake: twenty rounds of twenty writers on
/// two worker threads, a third of them aborted as the committer is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_that_give_up_strand_no_other_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    for round in 0..20u64 {
        store.inner.group.hold(true);
        let (mut waiting, mut giving_up) = (Vec::new(), Vec::new());
        for i in 0..20u64 {
            let staged = store
                .stage(puts(&[device(round * 100 + i, "w")]))
                .expect("stage");
            let task = tokio::spawn(staged.durable());
            if i % 3 == 0 {
                giving_up.push(task);
            } else {
                waiting.push(task);
            }
        }
        tokio::task::yield_now().await;
        store.inner.group.hold(false);
        for task in &giving_up {
            task.abort();
        }
        for task in waiting {
            tokio::time::timeout(std::time::Duration::from_secs(60), task)
                .await
                .unwrap_or_else(|_| panic!("round {round}: a waiting writer was never told"))
                .expect("task")
                .expect("durable");
        }
    }
    assert_eq!(store.count::<Device>().expect("count"), 400);
}

/// A group of single writes lands in staging order, deletes included.
#[tokio::test]
async fn a_group_of_single_writes_keeps_its_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store.inner.group.hold(true);
    let mut delete = Batch::new();
    delete.delete::<Device>(&key(5));
    let staged = [
        store.stage(puts(&[device(5, "x")])).expect("stage"),
        store.stage(delete).expect("stage"),
        store.stage(puts(&[device(6, "y")])).expect("stage"),
        store.stage(puts(&[device(6, "z")])).expect("stage"),
    ];
    store.inner.group.hold(false);
    for s in staged {
        s.durable().await.expect("durable");
    }
    assert_eq!(store.groups(), 1);
    assert_eq!(store.get::<Device>(&key(5)).expect("get"), None);
    assert_eq!(
        store.get::<Device>(&key(6)).expect("get"),
        Some(device(6, "z"))
    );
}

/// A group that cannot be applied fails every writer in it, applies none of them, and poisons
/// the store for every later write.
#[tokio::test]
async fn a_failed_group_fails_all_its_writers_and_poisons_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store.inner.group.hold(true);
    let staged: Vec<_> = (1..=3)
        .map(|id| store.stage(puts(&[device(id, "lost")])).expect("stage"))
        .collect();
    store.inner.group.fail_next_group("disk on fire");
    store.inner.group.hold(false);
    for s in staged {
        let err = s.durable().await.expect_err("the group failed");
        assert!(err.to_string().contains("disk on fire"), "{err}");
    }
    for id in 1..=3 {
        assert_eq!(store.get::<Device>(&key(id)).expect("get"), None);
    }
    let err = store
        .stage(puts(&[device(9, "later")]))
        .expect_err("poisoned");
    assert!(matches!(err, StoreError::Flush { .. }), "{err}");
    assert!(store.write_failure().is_some());
}

/// A failed `fsync` of the store's files fails the writers of the group and poisons the store:
/// after a failed `fsync` the kernel may have dropped the data, so nothing later is trusted.
#[tokio::test]
async fn a_failed_fsync_fails_the_group_and_poisons_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store
        .inner
        .group
        .fail_next_sync("Input/output error (os error 5)");
    let err = store
        .commit(puts(&[device(1, "unsynced")]))
        .await
        .expect_err("the sync failed");
    assert!(err.to_string().contains("Input/output error"), "{err}");
    let err = store
        .stage(puts(&[device(2, "later")]))
        .expect_err("poisoned");
    assert!(matches!(err, StoreError::Flush { .. }), "{err}");
    assert!(matches!(store.flush().await, Err(StoreError::Flush { .. })));
}

/// A blocking commit applies what async writers queued before it first.
#[tokio::test]
async fn commit_blocking_applies_the_queue_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store.inner.group.hold(true);
    let queued = store
        .stage(puts(&[device(1, "queued"), device(2, "queued")]))
        .expect("stage");
    store
        .commit_blocking(puts(&[device(1, "blocking")]))
        .expect("commit");
    queued.durable().await.expect("durable");
    assert_eq!(
        store.get::<Device>(&key(1)).expect("get"),
        Some(device(1, "blocking"))
    );
    assert_eq!(
        store.get::<Device>(&key(2)).expect("get"),
        Some(device(2, "queued"))
    );
    store.inner.group.hold(false);
}

/// A test migration from schema 1 to 2: upper-case every device name and mark it with `!`, so
/// that running it twice would show.
fn shout(ctx: &MigrationCtx<'_>) -> Result<(), StoreError> {
    for item in ctx.scan(Device::TABLE)? {
        let (key, bytes) = item?;
        let mut device: Device = decode(Device::TABLE, &key, &bytes)?;
        device.name = format!("{}!", device.name.to_uppercase());
        ctx.put_record(&device);
    }
    ctx.delete(
        Usage::TABLE,
        &Usage {
            device: 1,
            seq: 1,
            units: 0,
        }
        .key(),
    );
    Ok(())
}

const SHOUT: Migration = Migration {
    from: 1,
    to: 2,
    name: "shout device names",
    run: shout,
};

fn broken(_: &MigrationCtx<'_>) -> Result<(), StoreError> {
    Err(StoreError::UnknownTable {
        table: "broken on purpose".to_owned(),
    })
}

fn seed_v1(dir: &tempfile::TempDir) {
    let store = Store::open_with(dir.path(), TABLES, 1, &[]).expect("v1 opens");
    let mut batch = Batch::new();
    batch.put(&device(1, "gw"));
    batch.put(&device(2, "edge"));
    batch.put(&Usage {
        device: 1,
        seq: 1,
        units: 5,
    });
    store.commit_blocking(batch).expect("commit");
}

#[test]
fn a_newer_release_migrates_and_an_older_one_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_v1(&dir);

    let names = |store: &Store| -> Vec<String> {
        store
            .scan::<Device>()
            .map(|d| d.expect("decodes").name)
            .collect()
    };
    let v2 = Store::open_with(dir.path(), TABLES, 2, &[SHOUT]).expect("v2 migrates");
    assert_eq!(names(&v2), ["GW!", "EDGE!"]);
    assert_eq!(v2.count::<Usage>().expect("count"), 0);
    drop(v2);

    // Reopening at schema 2 does not run the migration again.
    let v2 = Store::open_with(dir.path(), TABLES, 2, &[SHOUT]).expect("v2 reopens");
    assert_eq!(names(&v2), ["GW!", "EDGE!"]);
    drop(v2);

    let err = Store::open_with(dir.path(), TABLES, 1, &[]).expect_err("v1 refuses v2");
    assert!(matches!(
        err,
        StoreError::SchemaFromTheFuture {
            found: 2,
            supported: 1,
            ..
        }
    ));
    let expected = format!(
        "store at {} has schema version 2 but this satellite supports up to 1; run a newer \
         satellite or restore a backup",
        dir.path().display()
    );
    assert_eq!(err.to_string(), expected);
}

#[test]
fn a_failed_migration_leaves_the_old_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_v1(&dir);
    let step = Migration {
        run: broken,
        ..SHOUT
    };
    let err = Store::open_with(dir.path(), TABLES, 2, &[step]).expect_err("migration fails");
    assert!(
        matches!(err, StoreError::Migration { from: 1, to: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("broken on purpose"), "{err}");
    let v1 = Store::open_with(dir.path(), TABLES, 1, &[]).expect("still at schema 1");
    assert_eq!(
        v1.get::<Device>(&key(1)).expect("get"),
        Some(device(1, "gw"))
    );
    drop(v1);

    // Each step commits on its own: reaching 2 succeeds even though 3 is out of reach.

    let err = Store::open_with(dir.path(), TABLES, 3, &[SHOUT]).expect_err("no path to 3");
    assert!(
        matches!(
            err,
            StoreError::NoMigrationPath {
                found: 2,
                supported: 3,
                ..
            }
        ),
        "{err}"
    );

    let v1 = Store::open_with(dir.path(), TABLES, 1, &[]);
    assert!(
        matches!(v1, Err(StoreError::SchemaFromTheFuture { .. })),
        "step 1 to 2 committed"
    );
}

#[test]
fn a_directory_with_foreign_data_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = sled::open(dir.path()).expect("sled opens");
        db.insert(b"someone", b"else").expect("insert");
        db.flush().expect("flush");
    }
    let err = Store::open(dir.path(), TABLES).expect_err("foreign data");
    assert!(matches!(err, StoreError::Unversioned { .. }), "{err}");
    assert!(
        !dir.path().join(journal::JOURNAL_FILE).exists(),
        "nothing was created in the foreign directory"
    );
}

/// A release that crashed leaves changes in the journal, written at its schema; the next
/// release replays them at that schema and migrates after, so they are migrated like the rest.
#[test]
fn the_journal_is_replayed_before_the_store_is_migrated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live = dir.path().join("live");
    let old = Store::open_with(&live, TABLES, 1, &[]).expect("schema 1");
    let mut batch = Batch::new();
    batch.put(&device(1, "one"));
    old.commit_blocking(batch).expect("durable");
    // The crash: the store's files as they are now, sled never flushed since the commit.
    let copy = dir.path().join("copy");
    copy_dir(&live, &copy);
    drop(old);
    let new = Store::open_with(&copy, TABLES, 2, &[SHOUT]).expect("migrated");
    assert_eq!(
        new.get::<Device>(&key(1)).expect("read"),
        Some(device(1, "ONE!")),
        "the replayed record was migrated"
    );
}

/// Copies a store's directory as it is on disk: what a crash at this moment leaves.
pub(super) fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn store_handles_are_cheap_clones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let clone = store.clone();
    assert!(Arc::ptr_eq(&store.inner, &clone.inner));
    assert!(format!("{store:?}").contains("Store"));
}

#[test]
fn the_holder_of_a_stores_lock_is_read_from_the_system() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    assert_eq!(Store::lock_holder(&path), None, "no store, no lock");
    let store = Store::open(&path, &["t"]).expect("open");
    if std::path::Path::new("/proc/locks").exists() {
        assert_eq!(Store::lock_holder(&path), Some(std::process::id()));
    }
    drop(store);
}

#[test]
fn lock_lines_are_matched_by_inode_and_waiters_are_skipped() {
    let locks = "1: POSIX  ADVISORY  WRITE 10 fd:01:77 0 EOF\n\
                 2: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF\n\
                 2: -> FLOCK  ADVISORY  WRITE 5151 fd:01:1234567 0 EOF\n\
                 3: FLOCK  ADVISORY  WRITE 99 00:2a:88 0 EOF\n";
    assert_eq!(lock_owner(locks, 1234567), Some(4242));
    assert_eq!(lock_owner(locks, 88), Some(99));
    assert_eq!(lock_owner(locks, 77), None, "a POSIX lock is not sled's");
    assert_eq!(lock_owner(locks, 5), None);
}

/// A group's writers are answered once its journal frame is synced, before sled has the group;
/// a read through the store after that waits for sled, so it sees every answered write.
#[test]
fn writers_are_answered_before_sled_applies_and_readers_wait_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let gate = store.inner.group.gate_apply();
    let mut batch = Batch::new();
    batch.put(&device(1, "one"));
    rt.block_on(store.commit(batch))
        .expect("durable while sled has not applied it");
    let raw = &store.inner.trees[store.index(Device::TABLE).expect("table")];
    assert_eq!(
        raw.get(key(1)).expect("sled"),
        None,
        "sled has not applied it"
    );

    let (about_to_read, reading) = std::sync::mpsc::channel();
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            about_to_read.send(()).expect("the test waits");
            store.get::<Device>(&key(1))
        })
    };
    reading.recv().expect("the reader starts");
    drop(gate);
    assert_eq!(
        reader.join().expect("the reader").expect("read"),
        Some(device(1, "one")),
        "the read waited for sled"
    );
}
