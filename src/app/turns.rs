//! Turns at the catalog's lock between its writers and a long reader that works in chunks.
//!
//! `std`'s lock serves a writer that waits before new readers, but when a reader lets go it
//! only wakes the writer; a reader that asks again at once gets the lock before the woken
//! writer has run. A reader that takes the lock chunk after chunk (the sync outbox's scan of a
//! million devices) would so keep every device waiting for the whole scan. So writers are
//! counted from before they ask for the lock until they have let go, and such a reader waits
//! between chunks until none is counted ([`super::App::read_in_turn`]).

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The writers waiting for the catalog's write lock or holding it.
#[derive(Default)]
pub(super) struct Writers {
    count: AtomicUsize,
    gone: Notify,
}

impl Writers {
    /// Counts a writer until the guard is dropped: take it before the write lock and keep it
    /// until the lock's guard is dropped.
    pub(super) fn enter(&self) -> WriterTurn<'_> {
        self.count.fetch_add(1, Ordering::AcqRel);
        WriterTurn(self)
    }

    /// Returns once no writer waits for the lock or holds it.
    pub(super) async fn none(&self) {
        loop {
            let gone = self.gone.notified();
            tokio::pin!(gone);
            // Registered before the count is read, so that the last writer's going is seen.
            gone.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            gone.await;
        }
    }
}

/// A writer's turn at the lock, counted until dropped.
pub(super) struct WriterTurn<'a>(&'a Writers);

impl Drop for WriterTurn<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.gone.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::Writers;

    #[test]
    fn a_reader_in_turn_waits_for_every_writer_counted() {
        let writers = Writers::default();
        assert!(
            writers.none().now_or_never().is_some(),
            "no writer: no wait"
        );

        let first = writers.enter();
        let second = writers.enter();
        let mut waiting = Box::pin(writers.none());
        assert!(
            (&mut waiting).now_or_never().is_none(),
            "two writers counted"
        );
        drop(first);
        assert!(
            (&mut waiting).now_or_never().is_none(),
            "one writer still counted"
        );
        drop(second);
        assert!(
            (&mut waiting).now_or_never().is_some(),
            "the last writer's going ends the wait"
        );
    }
}
