//! The expiry sweep (SPEC §4): deregisters devices silent for longer than the authorization
//! validity plus the deregistration delay (the event says why), and forgets revoked
//! certificates once they have expired anyway.

use std::time::Duration;

use crate::app::App;

pub struct ExpiryWorker {
    pub app: App,
    pub interval: Duration,
}

impl ExpiryWorker {
    /// One sweep; returns (devices deregistered, revocations pruned).
    pub async fn sweep(&self) -> Result<(usize, usize), String> {
        let timers = self.app.timers();
        let now = self.app.now();
        let candidates = self.app.read(|c| c.devices_to_deregister(now, &timers));
        let mut deregistered = 0;
        for id in candidates {
            let done = self
                .app
                .change("satellite:expiry-sweep", |c, now| {
                    c.auto_deregister(id, now, &timers)
                })
                .await
                .map_err(|e| e.to_string())?;
            deregistered += usize::from(done);
        }
        let pruned = self
            .app
            .change("satellite:expiry-sweep", |c, now| {
                Ok::<_, crate::domain::DomainError>(c.prune_revocations(now))
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok((deregistered, pruned))
    }
}

impl super::Worker for ExpiryWorker {
    const NAME: &'static str = "expiry-sweep";

    async fn work(&mut self) -> Result<String, String> {
        let (devices, pruned) = self.sweep().await?;
        Ok(format!(
            "{devices} device(s) deregistered, {pruned} expired revocation(s) pruned"
        ))
    }

    fn next_wait(&mut self) -> super::Wait {
        super::Wait::For(self.interval)
    }
}
