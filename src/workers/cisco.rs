//! The Cisco pull worker (`cisco` in `satellite status`): polls each Cisco device when it is
//! due (every `[cisco] poll_interval`, or after its backoff when its last poll failed), and
//! waits until the next device is due. Adding a device or reloading `[cisco]` wakes it.

use std::sync::Arc;

use super::{Wait, Worker};
use crate::cisco::Poller;

pub struct CiscoWorker {
    pub poller: Arc<Poller>,
}

impl Worker for CiscoWorker {
    const NAME: &'static str = "cisco";

    async fn work(&mut self) -> Result<String, String> {
        let outcomes = self.poller.poll_due().await;
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| o.outcome != "ok")
            .map(|o| format!("{} ({})", o.name, o.outcome))
            .collect();
        let accepted: u64 = outcomes.iter().map(|o| o.accepted).sum();
        let summary = format!(
            "{} device(s) polled, {accepted} new report(s)",
            outcomes.len()
        );
        if failed.is_empty() {
            Ok(summary)
        } else {
            Err(format!("{summary}; failed: {}", failed.join(", ")))
        }
    }

    fn next_wait(&mut self) -> Wait {
        match self.poller.due_in() {
            Some(wait) => Wait::For(wait),
            None if self.poller.settings().poll_interval.is_none() => Wait::Idle(
                "scheduled polling is off (`cisco.poll_interval = \"off\"`): `satellite cisco poll`"
                    .into(),
            ),
            None => Wait::Idle("no Cisco devices to poll".into()),
        }
    }

    fn first_wait(&mut self) -> Wait {
        self.next_wait()
    }

    fn woken(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.poller.wake.notified()
    }
}
