//! The poll schedule on the injected clock: a new device is due at once, a failing one is
//! retried after `retry_min` doubling up to `retry_max`, a healthy one every `poll_interval`.
//! The poller runs against an in-process satellite on a `ManualClock`; time moves only when
//! the test moves it.

use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use time::Duration;

use super::double::DeviceDouble;
use super::{PASSWORD, envelope};
use crate::inproc::Sat;
use satellite::app::RandomIds;
use satellite::cisco::Poller;
use satellite::config::CiscoSettings;
use satellite::domain::{CiscoDeviceSpec, DeviceTrust, Principal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_to_the_cap_and_successes_wait_an_interval() {
    let s = Sat::start().await;
    let account = s.account("acme").await;
    let va = account.default_va.parse().unwrap();
    let dev = DeviceDouble::self_signed("slp", PASSWORD);
    dev.add_reports([envelope()]);
    let data = tempfile::tempdir().unwrap();
    let settings = CiscoSettings {
        poll_interval: Some(StdDuration::from_secs(3600)),
        retry_min: StdDuration::from_secs(60),
        retry_max: StdDuration::from_secs(240),
        timeout: StdDuration::from_secs(10),
        ack_alert_after_days: 30,
        import_encoding: satellite::protocol::cisco::pull::ImportEncoding::RawXml,
    };
    let poller = Poller::new(
        s.app.clone(),
        data.path().to_owned(),
        Arc::new(RwLock::new(settings)),
        Arc::default(),
    );
    poller.ready_to_seal().unwrap();
    let fp = satellite::hex::decode_array::<32>(&dev.fingerprint).unwrap();
    let spec = CiscoDeviceSpec {
        va,
        name: "edge-1".into(),
        address: dev.address(),
        username: "slp".into(),
        trust: DeviceTrust::Fingerprint(fp),
    };
    let admin = Principal::system("test");
    let device = s
        .app
        .change("test", |c, now| {
            c.add_cisco_device(
                &admin,
                spec,
                &|id| poller.seal(id, "wrong"),
                now,
                &RandomIds,
            )
        })
        .await
        .unwrap();

    // Never polled: due now.
    assert_eq!(poller.due_in(), Some(StdDuration::ZERO));
    let polled = |n: usize, outcome: &str, outcomes: Vec<satellite::cisco::PollOutcome>| {
        assert_eq!(outcomes.len(), n, "{outcomes:?}");
        if n > 0 {
            assert_eq!(outcomes[0].outcome, outcome, "{outcomes:?}");
        }
    };
    polled(1, "unauthorized", poller.poll_due().await);
    // Retries after 1, 2, 4 and (capped) 4 minutes; nothing is due in between.
    for (failures, wait) in [(1u32, 60i64), (2, 120), (3, 240), (4, 240)] {
        let status = poller.status_of(device.id, s.now());
        assert_eq!(status.failures, failures);
        assert_eq!(poller.due_in(), Some(StdDuration::from_secs(wait as u64)));
        polled(0, "", poller.poll_due().await);
        s.advance(Duration::seconds(wait - 1));
        polled(0, "", poller.poll_due().await);
        s.advance(Duration::seconds(1));
        polled(1, "unauthorized", poller.poll_due().await);
    }
    // The right password (as `device remove` and `add` would give): an hour between polls.
    dev.state.lock().unwrap().password = "wrong".into();
    s.advance(Duration::seconds(240));
    polled(1, "ok", poller.poll_due().await);
    let status = poller.status_of(device.id, s.now());
    assert_eq!((status.failures, status.reports_held), (0, Some(1)));
    assert_eq!(status.next_poll, Some(s.now() + Duration::hours(1)));
    s.advance(Duration::minutes(59));
    polled(0, "", poller.poll_due().await);
    s.advance(Duration::minutes(1));
    polled(1, "ok", poller.poll_due().await);
}
