//! Counting what happened in one phase: latencies, successes and errors by kind.
//!
//! Latencies are kept exactly (one `u32` of microseconds per request) rather than in a
//! histogram: a run is a fixed, bounded number of requests, four bytes each is small next to
//! the connections, and exact percentiles leave nothing to argue about at p99.9.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// What one worker saw; merged into one [`Tally`] per phase at the end.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency of every successful request, in microseconds.
    latencies_us: Vec<u32>,
    /// Failed requests by kind, with the first message seen of each kind.
    errors: BTreeMap<String, (u64, String)>,
}

impl Tally {
    /// A tally expecting about `n` requests.
    pub fn with_capacity(n: usize) -> Tally {
        Tally {
            latencies_us: Vec::with_capacity(n),
            errors: BTreeMap::new(),
        }
    }

    /// Records a success that took `latency`.
    pub fn ok(&mut self, latency: Duration) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.latencies_us.push(us);
    }

    /// Records a failure of `kind` (a stable code such as `transport` or `stale_seq`).
    pub fn error(&mut self, kind: String, message: String) {
        self.errors.entry(kind).or_insert((0, message)).0 += 1;
    }

    /// Adds another worker's tally to this one.
    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (kind, (n, message)) in other.errors {
            self.errors.entry(kind).or_insert((0, message)).0 += n;
        }
    }

    pub fn successes(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    pub fn failures(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    /// Errors by kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .iter()
            .map(|(k, (n, _))| (k.clone(), *n))
            .collect()
    }

    /// The first message of each error kind, for people.
    pub fn error_examples(&self) -> BTreeMap<String, String> {
        self.errors
            .iter()
            .map(|(k, (_, m))| (k.clone(), m.clone()))
            .collect()
    }

    /// Percentiles of the successful requests' latencies.
    pub fn latency(&mut self) -> Latency {
        self.latencies_us.sort_unstable();
        let v = &self.latencies_us;
        let ms = |us: u32| f64::from(us) / 1000.0;
        let mean = if v.is_empty() {
            0.0
        } else {
            v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64 / 1000.0
        };
        Latency {
            p50: ms(percentile(v, 0.50)),
            p90: ms(percentile(v, 0.90)),
            p99: ms(percentile(v, 0.99)),
            p999: ms(percentile(v, 0.999)),
            max: ms(v.last().copied().unwrap_or(0)),
            mean,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// The nearest-rank percentile `p` (0 < p ≤ 1) of sorted values; 0 for none.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values: &[u32], p: f64, expect: u32) {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        assert_eq!(percentile(&sorted, p), expect, "p{p} of {values:?}");
    }

    #[test]
    fn nearest_rank_percentiles() {
        check(&[], 0.5, 0);
        check(&[7], 0.999, 7);
        let hundred: Vec<u32> = (1..=100).collect();
        check(&hundred, 0.50, 50);
        check(&hundred, 0.90, 90);
        check(&hundred, 0.99, 99);
        check(&hundred, 0.999, 100);
    }

    #[test]
    fn merging_adds_counts_and_keeps_the_first_message() {
        let mut a = Tally::default();
        a.ok(Duration::from_millis(2));
        a.error("transport".into(), "first".into());
        let mut b = Tally::default();
        b.ok(Duration::from_millis(4));
        b.error("transport".into(), "second".into());
        b.error("stale_seq".into(), "stale".into());
        a.merge(b);
        assert_eq!(a.successes(), 2);
        assert_eq!(a.failures(), 3);
        assert_eq!(a.errors()["transport"], 2);
        assert_eq!(a.error_examples()["transport"], "first");
        assert_eq!(a.latency().p50, 2.0);
    }
}
