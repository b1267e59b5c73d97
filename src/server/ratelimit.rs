//! Per-address limit on failed registrations (SPEC §3), so registration tokens cannot be
//! guessed: device registration (`/v1/register`) and child satellite registration
//! (`/v1/sync/register`) share one budget per client address, since both take a secret.
//! Successful registrations do not count. Time comes from the caller.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use time::{Duration, OffsetDateTime};

use super::error::ApiError;
use crate::protocol::device::codes;

/// Runs a registration `attempt` from `ip` unless the address has used up its failures (then
/// 429 with `Retry-After`, and `attempt` is not run), and counts a refusal of the caller's
/// request (4xx) as a failure. `now` is read before and after, since the attempt takes time.
pub async fn limited<T: IntoResponse>(
    limiter: &FailureLimiter,
    ip: Option<IpAddr>,
    now: impl Fn() -> OffsetDateTime,
    attempt: impl Future<Output = Result<T, ApiError>>,
) -> Response {
    if let Some(ip) = ip
        && let Some(wait) = limiter.check(&ip, now())
    {
        let mut res = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::RATE_LIMITED,
            format!("too many failed registrations from {ip}; retry in {wait} s"),
        )
        .into_response();
        res.headers_mut()
            .insert("retry-after", HeaderValue::from(wait));
        return res;
    }
    match attempt.await {
        Ok(answer) => answer.into_response(),
        Err(e) => {
            if let Some(ip) = ip
                && e.status.is_client_error()
            {
                limiter.failed(ip, now());
            }
            e.into_response()
        }
    }
}

/// At most `max_failures` failures per key (a client address; for console logins also a user
/// name) per `window`.
#[derive(Debug)]
pub struct FailureLimiter<K = IpAddr> {
    max_failures: u32,
    window: Duration,
    seen: Mutex<HashMap<K, (OffsetDateTime, u32)>>,
}

impl<K: Eq + Hash> FailureLimiter<K> {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        FailureLimiter {
            max_failures,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` if `addr` has used up its failures in the current window.
    pub fn check(&self, addr: &K, now: OffsetDateTime) -> Option<u64> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = seen.get(addr)?;
        let end = *start + self.window;
        (*count >= self.max_failures && now < end)
            .then(|| (end - now).whole_seconds().max(1) as u64)
    }

    /// Counts one failed registration from `addr`.
    pub fn failed(&self, addr: K, now: OffsetDateTime) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 100_000 {
            // Bounded memory under a spray of addresses: forget finished windows.
            let window = self.window;
            seen.retain(|_, (start, _)| *start + window > now);
        }
        let entry = seen.entry(addr).or_insert((now, 0));
        if entry.0 + self.window <= now {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let l = FailureLimiter::new(3, Duration::seconds(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = datetime!(2026-01-01 0:00 UTC);
        for _ in 0..3 {
            assert_eq!(l.check(&a, t0), None);
            l.failed(a, t0);
        }
        assert_eq!(l.check(&a, t0 + Duration::seconds(10)), Some(50));
        assert_eq!(l.check(&b, t0), None, "other addresses are not affected");
        assert_eq!(
            l.check(&a, t0 + Duration::seconds(60)),
            None,
            "a new window starts"
        );
        l.failed(a, t0 + Duration::seconds(60));
        assert_eq!(l.check(&a, t0 + Duration::seconds(61)), None);
    }
}
