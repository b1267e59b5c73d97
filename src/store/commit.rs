//! Group commit: many writers, one journal write, one `fdatasync`.
//!
//! A commit is acknowledged only once its data is on disk, and the device path pushes thousands of
//! acknowledged writes a second; one `fsync` per write would cap that at the disk's flush rate.
//! So writers do not write to the store themselves: each *enqueues* its batch (in the order it
//! was staged) and takes a sequence number, and one committer thread takes every pending batch,
//! writes them all to the journal as one frame and syncs it (`journal.rs`), applies them to
//! sled in memory, and publishes that everything up to the group's last number is durable. A
//! group is whole or absent after a crash (its frame is checked as one), so each batch in it is
//! too, and batches are applied in queue order, which is the order the callers staged them in.
//!
//! sled itself is flushed only at checkpoints: when the journal has grown past its limit or has
//! held groups for a second (busy or idle), when [`GroupCommit::commit_blocking`] is given no
//! writes (a snapshot), and when the store closes.
//! A checkpoint flushes sled, syncs its files (`fsync.rs`: new blobs and snapshots, and the
//! directories that name them) and starts a new journal epoch. sled writes its log buffers on a
//! thread of its IO pool; sled is built from `vendor/sled`, patched to wake one idle pool
//! thread per job rather than all seven, and to end each log write with `fdatasync` rather than
//! `sync_file_range`, which survives no power cut (`vendor/sled/PATCHES.md`).
//!
//! Before it takes a group the committer yields its CPU while new batches keep arriving
//! ([`gather`]), so that writers that are ready to run join the group instead of waiting for the
//! next one.
//!
//! The committer is a plain `std::thread`, not a tokio task: sled blocks, and a dedicated thread
//! keeps it off the async workers and works under any runtime, including the current-thread
//! runtime of `#[tokio::test]`. Writers wait on a `tokio::sync::watch` channel, which needs no
//! runtime to be woken.
//!
//! The committer wakes **one** writer per group, not each of them. Waking a task from outside
//! the runtime writes to the runtime's wake-up descriptor, and on a busy core the kernel then
//! switches straight to the woken worker: it answers that one writer, finds nothing else to do
//! and sleeps again, and the committer wakes the next one — two context switches per writer,
//! thirty-odd per group, most of a report's CPU beyond the bare server's
//! (docs/benchmarks.md, "Waking a group's writers once"). So the committer only records how far
//! it got ([`State::durable`]) and wakes one waiting writer ([`State::released`]); that writer,
//! running on the runtime, publishes the progress on the watch channel, which wakes the others
//! on the worker itself, without a system call. A writer publishes whatever it finds recorded
//! before it looks, so none depends on being the one woken. Failures are published by the
//! committer directly.
//!
//! A failed flush — or a failed apply of a group, whose writers' changes the caller has already
//! shown in memory — poisons the committer for good. After a failed `fsync` the kernel may
//! already have dropped the dirty pages, so a later `fsync` can succeed without the data ever
//! reaching the disk; retrying would risk acknowledging lost writes. Every waiter of the failed
//! round and every later commit gets the error instead, and the operator restarts satellite
//! once the disk is healthy again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::Op;
use super::fsync::StoreFiles;
use super::journal::{CHECKPOINT_BYTES, Disk, Journal};
use disk::{CHECKPOINT_EVERY, checkpoint, checkpoint_due_in, journal_group};

/// One staged batch: its writes, with tables resolved to indexes into the committer's trees.
pub(crate) type Writes = Vec<Op<usize>>;

/// What the committer has achieved so far, published to waiting writers.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every batch with a sequence number at or below this is on disk.
    flushed: u64,
    /// Set once a flush has failed; see the module docs for why this is permanent.
    failure: Option<Arc<str>>,
}

/// The queue and the committer's instructions, guarded by the mutex its condition variable uses.
#[derive(Debug, Default)]
struct Work {
    /// Batches staged and not yet taken by the committer, in staging order.
    queue: Vec<Writes>,
    /// The sequence number of the latest staged batch or flush request; taken under this lock,
    /// so numbers follow the queue order.
    written: u64,
    stop: bool,
    /// Whether the committer waits on the condition variable, so that writers wake it only
    /// then (a wake-up is a system call even when nobody waits).
    sleeping: bool,
    /// Tests hold the committer to make the batching of a round deterministic.
    held: bool,
    /// Tests make the next group fail to apply.
    #[cfg(test)]
    fail_next: Option<String>,
    /// Tests make the next sync of the store's files fail, as an `fsync` error would.
    #[cfg(test)]
    fail_next_sync: Option<String>,
}

struct State {
    db: sled::Db,
    /// The journal each group is written to before it is applied, and sled's files, synced at
    /// checkpoints (`journal.rs`). Locked only while the `apply` lock is held, so never
    /// contended.
    disk: Mutex<Disk>,
    /// The journal's size that makes the committer take a checkpoint ([`CHECKPOINT_BYTES`];
    /// tests lower it).
    checkpoint_at: AtomicU64,
    checkpoints: AtomicU64,
    /// The journal's frames since the last checkpoint, in bytes, kept by `disk.rs` with each
    /// append and checkpoint (read without the disk's lock, which a sync holds).
    journal_bytes: AtomicU64,
    /// Every registered table, indexed as in [`Writes`].
    trees: Vec<sled::Tree>,
    flushes: AtomicU64,
    groups: AtomicU64,
    /// Total time spent in flushes, in microseconds, and the longest flush.
    flush_micros: AtomicU64,
    flush_max_micros: AtomicU64,
    commits: AtomicU64,
    work: Mutex<Work>,
    wake: Condvar,
    /// Held while a group is applied and flushed; [`GroupCommit::pause`] takes it so that a
    /// reader of the whole store (a backup) sees no group half-applied. Taken before `work`.
    apply: Mutex<()>,
    /// What writers are told, once one of them publishes [`State::durable`] (or the committer
    /// publishes a failure).
    progress: watch::Sender<Progress>,
    /// Every batch numbered up to this is on disk: the committer's own record, ahead of
    /// `progress` until a writer publishes it.
    durable: AtomicU64,
    /// The committer's one wake-up per group: a waiting writer is woken to publish `durable`.
    released: Notify,
    /// Every batch numbered up to this is applied to sled: behind `durable` while the committer
    /// applies a group whose writers it has already released.
    applied: AtomicU64,
    /// Readers waiting for `applied` (`GroupCommit::settled`) wait on this.
    applied_lock: Mutex<()>,
    applied_changed: Condvar,
    /// The longest the journal holds groups before a checkpoint ([`CHECKPOINT_EVERY`]; tests
    /// change it), and when the last one was taken.
    checkpoint_every_ms: AtomicU64,
    checkpointed_at: Mutex<Instant>,
    /// Tests hold it to keep the committer from applying a group it has made durable.
    #[cfg(test)]
    apply_gate: Mutex<()>,
}

/// The group committer owned by the store's shared state. Dropping it applies and flushes what
/// is pending and joins the committer thread.
pub(crate) struct GroupCommit {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the committer thread for `db`, journaling every group in `journal` before it
    /// writes it to `trees`, and flushing sled and syncing `files` (the store's files on disk)
    /// at checkpoints.
    pub(crate) fn start(
        db: sled::Db,
        trees: Vec<sled::Tree>,
        files: StoreFiles,
        mut journal: Journal,
    ) -> std::io::Result<Self> {
        let (progress, _) = watch::channel(Progress::default());
        journal.set_tables(trees.iter().map(|t| t.name().to_vec()).collect());
        let state = Arc::new(State {
            db,
            disk: Mutex::new(Disk { files, journal }),
            checkpoint_at: AtomicU64::new(CHECKPOINT_BYTES),
            checkpoints: AtomicU64::new(0),
            journal_bytes: AtomicU64::new(0),
            trees,
            flushes: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            flush_micros: AtomicU64::new(0),
            flush_max_micros: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            work: Mutex::new(Work::default()),
            wake: Condvar::new(),
            apply: Mutex::new(()),
            progress,
            durable: AtomicU64::new(0),
            released: Notify::new(),
            applied: AtomicU64::new(0),
            applied_lock: Mutex::new(()),
            applied_changed: Condvar::new(),
            checkpoint_every_ms: AtomicU64::new(CHECKPOINT_EVERY.as_millis() as u64),
            checkpointed_at: Mutex::new(Instant::now()),
            #[cfg(test)]
            apply_gate: Mutex::new(()),
        });
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("store-flusher".to_owned())
            .spawn(move || committer(&thread_state))?;
        Ok(Self {
            state,
            thread: Some(thread),
        })
    }

    /// Returns the cause of an earlier failure, if there was one. Writers check it before
    /// staging anything, so a poisoned store stops accepting writes.
    pub(crate) fn failure(&self) -> Option<Arc<str>> {
        self.state.progress.borrow().failure.clone()
    }

    /// Queues `writes` behind every batch staged before, and returns the sequence number that
    /// [`GroupCommit::durable`] waits for. An empty batch queues nothing but still asks for a
    /// flush of everything before it.
    pub(crate) fn stage(&self, writes: Writes) -> u64 {
        let mut work = self.lock_work();
        if !writes.is_empty() {
            work.queue.push(writes);
            self.state.commits.fetch_add(1, Ordering::Relaxed);
        }
        work.written += 1;
        if work.sleeping {
            self.state.wake.notify_one();
        }
        work.written
    }

    /// Waits until the batch numbered `seq` (and so everything staged before it) is on disk,
    /// sharing the flush with every other writer of its group.
    pub(crate) async fn durable(&self, seq: u64) -> Result<(), Arc<str>> {
        let mut progress = self.state.progress.subscribe();
        loop {
            // Registered before anything is read, so that a group completed after the reads
            // below wakes this writer or another one, which then publishes it.
            let released = self.state.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            self.state.publish();
            {
                let reached = progress.borrow_and_update();
                // A failure is permanent and wins: once the store is poisoned nothing is
                // acknowledged, even if a flush happened to complete in between.
                if let Some(failure) = &reached.failure {
                    return Err(Arc::clone(failure));
                }
                if reached.flushed >= seq {
                    return Ok(());
                }
            }
            tokio::select! {
                biased;
                () = &mut released => {}
                changed = progress.changed() => changed
                    // The sender lives in `State`, which this `&self` keeps alive.
                    .expect("the progress sender lives as long as the committer"),
            }
        }
    }

    /// Applies `writes` behind everything queued and makes them durable, on the calling thread,
    /// for callers outside any async runtime. With no writes it takes a checkpoint: sled flushed
    /// and synced, so that what was written to sled directly (the snapshot's nonce) is durable
    /// too. It shares the failure state with the committer, so a failure here poisons async
    /// commits too.
    pub(crate) fn commit_blocking(&self, writes: Writes) -> Result<(), Arc<str>> {
        let _apply = self.lock_apply();
        if let Some(failure) = self.failure() {
            return Err(failure);
        }
        let (mut group, target) = {
            let mut work = self.lock_work();
            work.written += 1;
            (std::mem::take(&mut work.queue), work.written)
        };
        let checkpoint = writes.is_empty();
        if !writes.is_empty() {
            self.state.commits.fetch_add(1, Ordering::Relaxed);
            group.push(writes);
        }
        commit_group(&self.state, group, target, checkpoint)?;
        // The committer may be asleep with no checkpoint due: it sets its timer anew.
        self.state.wake.notify_one();
        // Called off the runtime, and rarely: async writers of the same group are told at once.
        self.state.publish();
        Ok(())
    }

    /// Returns once every batch made durable so far is applied to sled, so that a read sees
    /// every write answered before it. Two atomic loads when nothing is pending; otherwise it
    /// waits on the condition the committer signals right after each apply. Under
    /// [`GroupCommit::pause`] nothing is pending: a round applies before it lets go of the lock.
    pub(crate) fn settled(&self) {
        let durable = self.state.durable.load(Ordering::Acquire);
        if self.state.applied.load(Ordering::Acquire) >= durable {
            return;
        }
        let mut waiting = self
            .state
            .applied_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while self.state.applied.load(Ordering::Acquire) < durable {
            waiting = self
                .state
                .applied_changed
                .wait(waiting)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Keeps the committer from applying anything until the guard is dropped. Batches staged
    /// meanwhile wait in the queue.
    pub(crate) fn pause(&self) -> MutexGuard<'_, ()> {
        self.lock_apply()
    }

    /// Total and longest flush time, in microseconds.
    pub(crate) fn flush_time(&self) -> (u64, u64) {
        (
            self.state.flush_micros.load(Ordering::Relaxed),
            self.state.flush_max_micros.load(Ordering::Relaxed),
        )
    }

    /// How many groups have been synced to the journal (one `fdatasync` each).
    pub(crate) fn flushes(&self) -> u64 {
        self.state.flushes.load(Ordering::Relaxed)
    }

    /// How many checkpoints (sled flushed and its files synced) the committer has taken.
    pub(crate) fn checkpoints(&self) -> u64 {
        self.state.checkpoints.load(Ordering::Relaxed)
    }

    /// Bytes of journal frames since the last checkpoint.
    pub(crate) fn journal_bytes(&self) -> u64 {
        self.state.journal_bytes.load(Ordering::Relaxed)
    }

    /// How many groups the committer has applied (one journal frame and one sync each).
    pub(crate) fn groups(&self) -> u64 {
        self.state.groups.load(Ordering::Relaxed)
    }

    /// How many non-empty batches have been staged.
    pub(crate) fn commits(&self) -> u64 {
        self.state.commits.load(Ordering::Relaxed)
    }

    fn lock_work(&self) -> MutexGuard<'_, Work> {
        self.state
            .work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_apply(&self) -> MutexGuard<'_, ()> {
        self.state
            .apply
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        {
            let mut work = self.lock_work();
            work.stop = true;
            work.held = false;
            self.state.wake.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            // A committer that panicked has already published the failure through its
            // `PanicGuard`; there is nothing left to report at drop time.
            let _ = thread.join();
        }
    }
}

impl State {
    /// Tells the writers waiting on `progress` what the committer has recorded as durable; no
    /// wake-up when that is already known.
    fn publish(&self) {
        let durable = self.durable.load(Ordering::Acquire);
        self.progress.send_if_modified(|p| {
            let newer = durable > p.flushed;
            if newer {
                p.flushed = durable;
            }
            newer
        });
    }
}

/// The committer thread: whenever something was staged (or a flush asked for) since the last
/// round, apply the queue and flush, until told to stop, and then once more so that no waiting
/// writer is left behind.
fn committer(state: &State) {
    let _guard = PanicGuard(state);
    // `commit_blocking` also records progress, so what is done is read from there.
    let flushed = || state.durable.load(Ordering::Acquire);
    loop {
        {
            let mut work = state.work.lock().unwrap_or_else(PoisonError::into_inner);
            let mut idle = false;
            loop {
                let pending = work.written > flushed();
                if (pending && !work.held) || (work.stop && !pending) {
                    break;
                }
                // Idle with journaled groups: a checkpoint when the interval is up.
                let due_in = if work.held {
                    None
                } else {
                    checkpoint_due_in(state)
                };
                if due_in.is_some_and(|d| d.is_zero()) {
                    idle = true;
                    break;
                }
                work.sleeping = true;
                work = match due_in {
                    Some(wait) => {
                        let waited = state.wake.wait_timeout(work, wait);
                        waited.unwrap_or_else(PoisonError::into_inner).0
                    }
                    None => state
                        .wake
                        .wait(work)
                        .unwrap_or_else(PoisonError::into_inner),
                };
                work.sleeping = false;
            }
            let stop = work.stop && work.written <= flushed();
            if stop || idle {
                drop(work);
                // A clean stop leaves the journal empty, so the next start replays nothing.
                let _apply = state.apply.lock().unwrap_or_else(PoisonError::into_inner);
                let journaled = state.journal_bytes.load(Ordering::Relaxed) > 0;
                if state.progress.borrow().failure.is_none() && journaled {
                    let _ = checkpoint(state);
                }
                if stop {
                    return;
                }
                continue;
            }
        }
        gather(state);
        let _apply = state.apply.lock().unwrap_or_else(PoisonError::into_inner);
        let (group, target) = {
            let mut work = state.work.lock().unwrap_or_else(PoisonError::into_inner);
            #[cfg(test)]
            if let Some(cause) = work.fail_next.take() {
                drop(work);
                poison(state, Arc::from(cause));
                return;
            }
            (std::mem::take(&mut work.queue), work.written)
        };
        if target <= flushed() {
            // `commit_blocking` took this round's work.
            continue;
        }
        if commit_group(state, group, target, false).is_err() {
            // `commit_group` has published the failure to every waiter; the committer is
            // poisoned, so there is nothing more for this thread to do.
            return;
        }
    }
}

/// The longest the committer lets writers catch up before taking a group.
const GATHER_LIMIT: Duration = Duration::from_micros(500);

/// Lets writers that are ready to run stage their batches before the group is taken, so that
/// they share it instead of each waiting for the next one. The committer yields its CPU while
/// new batches keep arriving, and goes ahead as soon as a yield brings nothing new (or after
/// [`GATHER_LIMIT`]). On a busy core this turns a group of a few writes into a group of every
/// request that was ready; on an idle machine the first yield returns at once.
fn gather(state: &State) {
    let written = || {
        state
            .work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .written
    };
    let started = Instant::now();
    let mut seen = written();
    loop {
        std::thread::yield_now();
        let now = written();
        if now == seen || started.elapsed() >= GATHER_LIMIT {
            return;
        }
        seen = now;
    }
}

/// Writes `group` (batches in staging order) to the journal and syncs it, publishes that
/// everything numbered up to `target` is durable, applies the group to sled, then takes a
/// checkpoint when asked, when the journal has grown past its limit or when one is due. Call
/// with the `apply` lock held. On failure the store is poisoned and every waiter gets the cause.
fn commit_group(
    state: &State,
    group: Vec<Writes>,
    target: u64,
    checkpoint_now: bool,
) -> Result<(), Arc<str>> {
    if !group.is_empty() {
        state.groups.fetch_add(1, Ordering::Relaxed);
        journal_group(state, &group)?;
    }
    // On disk: the writers are answered while sled takes the group. Store readers wait for
    // that (`GroupCommit::settled`), so a read after an answer sees the write.
    state.durable.fetch_max(target, Ordering::AcqRel);
    state.released.notify_one();
    let applied = if group.is_empty() {
        Ok(())
    } else {
        #[cfg(test)]
        let _gate = state
            .apply_gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        apply_group(&state.trees, &group)
    };
    // Readers wait for this, not for the checkpoint below; after a failed apply too (they then
    // read what sled has: the store is poisoned, and a restart applies the journal).
    state.applied.fetch_max(target, Ordering::AcqRel);
    drop(
        state
            .applied_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    state.applied_changed.notify_all();
    if let Err(err) = applied {
        return Err(poison(
            state,
            Arc::from(format!("applying a commit group failed: {err}")),
        ));
    }
    let journaled = state.journal_bytes.load(Ordering::Relaxed);
    let full = journaled >= state.checkpoint_at.load(Ordering::Relaxed);
    if checkpoint_now || full || checkpoint_due_in(state).is_some_and(|d| d.is_zero()) {
        checkpoint(state)?;
    }
    Ok(())
}

/// Applies the batches of a group to sled, in order, as plain writes: the group is already in
/// the journal, which makes it whole after a crash (`journal.rs`), so sled's transactions
/// would only cost.
fn apply_group(trees: &[sled::Tree], group: &[Writes]) -> Result<(), sled::Error> {
    for op in group.iter().flatten() {
        let tree = &trees[op.tree];
        match &op.value {
            Some(value) => tree.insert(op.key.as_slice(), value.as_slice())?,
            None => tree.remove(op.key.as_slice())?,
        };
    }
    Ok(())
}

/// Fails every waiter if the committer thread unwinds, so that no writer waits forever for a
/// flush that will never come.
struct PanicGuard<'a>(&'a State);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.progress.send_modify(|p| {
                p.failure
                    .get_or_insert_with(|| Arc::from("the store flusher thread panicked"));
            });
        }
    }
}

/// Records `cause` as the store's permanent failure (unless one is recorded already), tells
/// every waiter, and returns it.
fn poison(state: &State, cause: Arc<str>) -> Arc<str> {
    tracing::error!(cause = %cause, "store write failed; refusing further writes");
    state.progress.send_modify(|p| {
        if p.failure.is_none() {
            p.failure = Some(Arc::clone(&cause));
        }
    });
    cause
}

mod disk;
#[cfg(test)]
mod hooks;
