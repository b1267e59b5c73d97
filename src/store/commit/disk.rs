//! The committer's writes to disk: a group to the journal, and checkpoints into sled's files
//! (`journal.rs`), with when the next checkpoint is due.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::super::journal::Disk;
use super::{State, Writes, poison};

/// The longest the journal holds groups before they are checkpointed into sled's files. Unit
/// tests set it themselves where they need it (`GroupCommit::checkpoint_every`), so that a slow
/// machine adds no checkpoint to the others.
pub(super) const CHECKPOINT_EVERY: Duration = if cfg!(test) {
    Duration::from_secs(3600)
} else {
    Duration::from_secs(1)
};

/// How long until the journal's groups are due in sled's files: `None` when it holds none.
/// Taking a checkpoint at least every [`CHECKPOINT_EVERY`], busy or idle, keeps the journal a
/// second's worth of groups, so a start after a crash replays little, and keeps sled's files
/// no more than a second behind what was answered (its own log writes are synced as it makes
/// them: `vendor/sled/PATCHES.md`).
pub(super) fn checkpoint_due_in(state: &State) -> Option<Duration> {
    if state.journal_bytes.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let every = Duration::from_millis(state.checkpoint_every_ms.load(Ordering::Relaxed));
    let since = state
        .checkpointed_at
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .elapsed();
    Some(every.saturating_sub(since))
}

fn lock_disk(state: &State) -> MutexGuard<'_, Disk> {
    state.disk.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes one group to the journal and syncs it, counting and timing it as the group's flush,
/// and publishing a failure. Call with the `apply` lock held.
pub(super) fn journal_group(state: &State, group: &[Writes]) -> Result<(), Arc<str>> {
    state.flushes.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    #[cfg(test)]
    let failure = state
        .work
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .fail_next_sync
        .take();
    #[cfg(not(test))]
    let failure: Option<String> = None;
    let result = match failure {
        Some(cause) => Err(cause),
        None => {
            let mut disk = lock_disk(state);
            let appended = disk.append(group);
            state
                .journal_bytes
                .store(disk.journal.len(), Ordering::Relaxed);
            appended
        }
    };
    let micros = started.elapsed().as_micros() as u64;
    state.flush_micros.fetch_add(micros, Ordering::Relaxed);
    state.flush_max_micros.fetch_max(micros, Ordering::Relaxed);
    result.map_err(|cause| poison(state, Arc::from(cause)))
}

/// Takes a checkpoint (`journal.rs`), publishing a failure. Call with the `apply` lock held.
pub(super) fn checkpoint(state: &State) -> Result<(), Arc<str>> {
    state.checkpoints.fetch_add(1, Ordering::Relaxed);
    *state
        .checkpointed_at
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    let result = lock_disk(state).checkpoint(&state.db);
    if result.is_ok() {
        state.journal_bytes.store(0, Ordering::Relaxed);
    }
    result.map_err(|cause| poison(state, Arc::from(cause)))
}
