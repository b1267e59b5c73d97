//! Group commit: many writers, one fsync.
//!
//! A commit is acknowledged only once its data is on disk, and the device path pushes thousands of
//! acknowledged writes a second; one `fsync` per write would cap that at the disk's flush rate.
//! Instead every writer applies its transaction in memory, takes a sequence number, and waits
//! until a single flusher thread has flushed past that number. The flusher always flushes
//! everything written so far, so all writers that arrived while the previous flush was running
//! share the next one.
//!
//! The flusher is a plain `std::thread`, not a tokio task: `sled::Db::flush` blocks, and a
//! dedicated thread keeps it off the async workers and works under any runtime, including the
//! current-thread runtime of `#[tokio::test]`. Writers wait on a `tokio::sync::watch` channel,
//! which needs no runtime to be woken.
//!
//! A failed flush poisons the committer for good. After a failed `fsync` the kernel may already
//! have dropped the dirty pages, so a later `fsync` can succeed without the data ever reaching
//! the disk; retrying would risk acknowledging lost writes. Every waiter of the failed round and
//! every later commit gets the error instead, and the operator restarts satellite once the disk
//! is healthy again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::watch;

/// What the flusher has achieved so far, published to waiting writers.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every write with a sequence number at or below this is on disk.
    flushed: u64,
    /// Set once a flush has failed; see the module docs for why this is permanent.
    failure: Option<Arc<str>>,
}

/// What the flusher thread is asked to do, guarded by the mutex its condition variable uses.
#[derive(Debug, Default)]
struct Work {
    stop: bool,
    /// Tests hold the flusher to make the batching of a round deterministic.
    held: bool,
}

struct State {
    db: sled::Db,
    written: AtomicU64,
    flushes: AtomicU64,
    /// Total time spent in flushes, in microseconds, and the longest flush.
    flush_micros: AtomicU64,
    flush_max_micros: AtomicU64,
    commits: AtomicU64,
    work: Mutex<Work>,
    wake: Condvar,
    progress: watch::Sender<Progress>,
}

/// The group committer owned by the store's shared state. Dropping it flushes what is pending
/// and joins the flusher thread.
pub(crate) struct GroupCommit {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`.
    pub(crate) fn start(db: sled::Db) -> std::io::Result<Self> {
        let (progress, _) = watch::channel(Progress::default());
        let state = Arc::new(State {
            db,
            written: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            flush_micros: AtomicU64::new(0),
            flush_max_micros: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            work: Mutex::new(Work::default()),
            wake: Condvar::new(),
            progress,
        });
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("store-flusher".to_owned())
            .spawn(move || flusher(&thread_state))?;
        Ok(Self {
            state,
            thread: Some(thread),
        })
    }

    /// Returns the cause of an earlier flush failure, if there was one. Writers check it before
    /// applying anything, so a poisoned store stops accepting writes.
    pub(crate) fn failure(&self) -> Option<Arc<str>> {
        self.state.progress.borrow().failure.clone()
    }

    /// Counts one applied commit, for [`GroupCommit::commits`].
    pub(crate) fn count_commit(&self) {
        self.state.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits until everything applied before this call is on disk, sharing the flush with every
    /// other writer waiting at the same time.
    pub(crate) async fn durable(&self) -> Result<(), Arc<str>> {
        // The transaction was applied before this increment, so any flush that starts after
        // reading a `written` at or above `seq` covers it.
        let seq = self.state.written.fetch_add(1, Ordering::SeqCst) + 1;
        let mut progress = self.state.progress.subscribe();
        self.notify();
        let reached = progress
            .wait_for(|p| p.flushed >= seq || p.failure.is_some())
            .await
            // The sender lives in `State`, which this `&self` keeps alive.
            .expect("the progress sender lives as long as the committer");
        // A failure is permanent and wins: once the store is poisoned nothing is acknowledged,
        // even if a flush happened to complete in between.
        if let Some(failure) = &reached.failure {
            return Err(Arc::clone(failure));
        }
        Ok(())
    }

    /// Flushes on the calling thread, for callers outside any async runtime. It shares the
    /// failure state with the flusher thread, so a failure here poisons async commits too.
    pub(crate) fn flush_blocking(&self) -> Result<(), Arc<str>> {
        if let Some(failure) = self.failure() {
            return Err(failure);
        }
        flush_once(&self.state).map(|_| ())
    }

    /// How many `fsync`s the store has issued.
    /// Total and longest flush time, in microseconds.
    pub(crate) fn flush_time(&self) -> (u64, u64) {
        (
            self.state.flush_micros.load(Ordering::Relaxed),
            self.state.flush_max_micros.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn flushes(&self) -> u64 {
        self.state.flushes.load(Ordering::Relaxed)
    }

    /// How many non-empty batches have been committed.
    pub(crate) fn commits(&self) -> u64 {
        self.state.commits.load(Ordering::Relaxed)
    }

    fn notify(&self) {
        // Taking the lock orders this wake-up after the flusher's check of `written`, so the
        // flusher cannot miss it between checking and going to sleep.
        let _work = self
            .state
            .work
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.state.wake.notify_one();
    }

    /// Holds or releases the flusher; while held it does not start a round.
    #[cfg(test)]
    pub(crate) fn hold(&self, held: bool) {
        let mut work = self
            .state
            .work
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        work.held = held;
        self.state.wake.notify_one();
    }

    /// The latest sequence number handed out, so tests can tell when writers are waiting.
    #[cfg(test)]
    pub(crate) fn written(&self) -> u64 {
        self.state.written.load(Ordering::SeqCst)
    }

    /// Makes the committer behave as if a flush had failed.
    #[cfg(test)]
    pub(crate) fn poison(&self, cause: &str) {
        self.state
            .progress
            .send_modify(|p| p.failure = Some(Arc::from(cause)));
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        {
            let mut work = self
                .state
                .work
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            work.stop = true;
            work.held = false;
            self.state.wake.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            // A flusher that panicked has already published the failure through its
            // `PanicGuard`; there is nothing left to report at drop time.
            let _ = thread.join();
        }
    }
}

/// The flusher thread: flush whenever something was written since the last flush, until told to
/// stop, and then once more so that no waiting writer is left behind.
fn flusher(state: &State) {
    let _guard = PanicGuard(state);
    let mut flushed = 0u64;
    loop {
        {
            let mut work = state.work.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                let pending = state.written.load(Ordering::SeqCst) > flushed;
                if (pending && !work.held) || (work.stop && !pending) {
                    break;
                }
                work = state
                    .wake
                    .wait(work)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if work.stop && state.written.load(Ordering::SeqCst) <= flushed {
                return;
            }
        }
        gather(state);
        // Everything numbered up to `target` was applied before it was numbered, so this one
        // flush makes all of it durable.
        let target = state.written.load(Ordering::SeqCst);
        match flush_once(state) {
            Ok(()) => {
                flushed = target;
                state
                    .progress
                    .send_modify(|p| p.flushed = p.flushed.max(target));
            }
            // `flush_once` has published the failure to every waiter; the committer is
            // poisoned, so there is nothing more for this thread to do.
            Err(_) => return,
        }
    }
}

/// The longest the flusher lets writers catch up before a flush.
const GATHER_LIMIT: std::time::Duration = std::time::Duration::from_micros(500);

/// Lets writers that are ready to run stage their writes before the flush starts, so that they
/// share it instead of each waiting for the next one. The flusher yields its CPU while new
/// writes keep arriving, and flushes as soon as a yield brings nothing new (or after
/// [`GATHER_LIMIT`]). On a busy core this turns a group of a few writes into a group of every
/// request that was ready; on an idle machine the first yield returns at once.
fn gather(state: &State) {
    let started = std::time::Instant::now();
    let mut seen = state.written.load(Ordering::SeqCst);
    loop {
        std::thread::yield_now();
        let now = state.written.load(Ordering::SeqCst);
        if now == seen || started.elapsed() >= GATHER_LIMIT {
            return;
        }
        seen = now;
    }
}

/// Fails every waiter if the flusher thread unwinds, so that no writer waits forever for a
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

/// Runs one `sled` flush, counting it and publishing a failure.
fn flush_once(state: &State) -> Result<(), Arc<str>> {
    state.flushes.fetch_add(1, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let result = state.db.flush();
    let micros = started.elapsed().as_micros() as u64;
    state.flush_micros.fetch_add(micros, Ordering::Relaxed);
    state.flush_max_micros.fetch_max(micros, Ordering::Relaxed);
    match result {
        Ok(_) => Ok(()),
        Err(err) => {
            let cause: Arc<str> = Arc::from(err.to_string());
            tracing::error!(cause = %cause, "store flush failed; refusing further writes");
            state.progress.send_modify(|p| {
                if p.failure.is_none() {
                    p.failure = Some(Arc::clone(&cause));
                }
            });
            Err(cause)
        }
    }
}
