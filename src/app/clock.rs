//! The time the satellite acts on. Every decision with a date in it (validity, expiry,
//! renewal, clock skew, the failed-registration limiter, audit times) takes its time from the
//! [`Clock`] given to `App`: through `App::now`, which never goes back, or `App::clock_now`,
//! the raw clock for comparing with what devices send. The domain takes `now` as an argument;
//! tests drive a [`ManualClock`] instead of sleeping.
//!
//! Not read from here, because nothing is decided by them: durations measured with `Instant`
//! (latencies, start-up), network timeouts (`tokio::time`), the wall-clock stamp of a worker's
//! last round in `status`, and the device-side and operator commands (`agent`, `cli`), which
//! run in their own process on the machine's clock.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    pub fn set(&self, to: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
