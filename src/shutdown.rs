//! One shutdown signal, fanned out to every listener and worker. The daemon triggers it on
//! SIGTERM/SIGINT; tests trigger it directly.

use tokio::sync::watch;

/// The sending side, held by whoever decides the satellite stops.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A cheap-`Clone` receiver that resolves once shutdown has begun.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected trigger and receiver.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Resolves when shutdown begins (at once if it already has).
    pub async fn wait(&mut self) {
        // An error means every trigger is gone, which can only happen while stopping.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn every_receiver_sees_the_trigger() {
        let (trigger, mut a) = super::channel();
        let mut b = a.clone();
        assert!(!a.is_triggered());
        trigger.trigger();
        a.wait().await;
        b.wait().await;
        assert!(b.is_triggered());
    }
}
