//! What tests use to steer the committer: hold it, make a step fail, gate its applies, ask
//! where it stands.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};

use super::GroupCommit;

impl GroupCommit {
    /// Keeps the committer from applying the groups it makes durable until the guard is dropped.
    pub(crate) fn gate_apply(&self) -> MutexGuard<'_, ()> {
        self.state
            .apply_gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the committer take a checkpoint whenever the journal has held groups for `every`.
    pub(crate) fn checkpoint_every(&self, every: std::time::Duration) {
        self.state
            .checkpoint_every_ms
            .store(every.as_millis() as u64, Ordering::Relaxed);
    }

    /// Makes the committer take a checkpoint whenever the journal holds `bytes` or more.
    pub(crate) fn checkpoint_at(&self, bytes: u64) {
        self.state.checkpoint_at.store(bytes, Ordering::Relaxed);
    }

    /// Holds or releases the committer; while held it does not start a round.
    pub(crate) fn hold(&self, held: bool) {
        let mut work = self.lock_work();
        work.held = held;
        self.state.wake.notify_one();
    }

    /// Whether the committer has recorded everything handed out as durable and gone back to
    /// waiting for work: the end of a round, for tests.
    pub(crate) fn idle(&self) -> bool {
        let work = self.lock_work();
        work.sleeping && self.state.durable.load(Ordering::Acquire) >= work.written
    }

    /// The latest sequence number handed out, so tests can tell when writers are waiting.
    pub(crate) fn written(&self) -> u64 {
        self.lock_work().written
    }

    /// Makes the committer behave as if a flush had failed.
    pub(crate) fn poison(&self, cause: &str) {
        self.state
            .progress
            .send_modify(|p| p.failure = Some(Arc::from(cause)));
    }

    /// Makes the next group fail to apply, as a sled write error would.
    pub(crate) fn fail_next_group(&self, cause: &str) {
        self.lock_work().fail_next = Some(cause.to_owned());
    }

    /// Makes the next sync of the store's files fail, as a failed `fsync` would.
    pub(crate) fn fail_next_sync(&self, cause: &str) {
        self.lock_work().fail_next_sync = Some(cause.to_owned());
    }
}
