//! Admission of new connections (SPEC §9, "Connections"): a cap per listener, and a lower cap per
//! source address so that one client cannot take every connection and lock every device out.
//!
//! A connection is counted from its acceptance until it is closed (handshake included), by a
//! [`Ticket`] that gives its place back when dropped. A refused connection is closed at once.
//! Refusals come in floods, so they are not logged one by one: they are counted (the metric
//! `satellite_connections_refused_total`) and logged at most once per [`REFUSAL_LOG_INTERVAL`]
//! per listener, with the number refused since the previous line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::warn;

use super::metrics::Metrics;

/// At most one refusal line per listener in this interval.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The listener holds `max_connections` connections.
    ListenerFull,
    /// The source address holds `max_connections_per_address` connections.
    AddressFull,
}

impl Refusal {
    /// The value of the metric's `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ListenerFull => "connection_limit",
            Refusal::AddressFull => "address_limit",
        }
    }
}

/// The admission state of one listener. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    listener: &'static str,
    max_connections: usize,
    max_per_address: usize,
    open: Mutex<Open>,
    refusals: Mutex<RefusalLog>,
    metrics: Option<Metrics>,
}

/// Open connections, in total and per source. A source leaves the map with its last
/// connection, so the map never holds more than `max_connections` entries.
#[derive(Default)]
struct Open {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// A connection's place; dropping it frees the place.
pub struct Ticket {
    gate: Arc<Inner>,
    source: Option<IpAddr>,
}

impl Gate {
    pub fn new(
        listener: &'static str,
        max_connections: usize,
        max_per_address: usize,
        metrics: Option<Metrics>,
    ) -> Self {
        Gate {
            inner: Arc::new(Inner {
                listener,
                max_connections,
                max_per_address,
                open: Mutex::new(Open::default()),
                refusals: Mutex::new(RefusalLog::new(REFUSAL_LOG_INTERVAL)),
                metrics,
            }),
        }
    }

    /// Admits a connection from `peer` (`None` for a local socket, which only counts towards the
    /// listener's cap), or refuses it, counting and maybe logging the refusal.
    pub fn admit(&self, peer: Option<IpAddr>) -> Option<Ticket> {
        let source = peer.map(source_of);
        match self.try_admit(source) {
            Ok(ticket) => Some(ticket),
            Err(refusal) => {
                self.refused(refusal, peer);
                None
            }
        }
    }

    fn try_admit(&self, source: Option<IpAddr>) -> Result<Ticket, Refusal> {
        let inner = &self.inner;
        let mut open = inner.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= inner.max_connections {
            return Err(Refusal::ListenerFull);
        }
        if let Some(source) = source {
            let held = open.by_source.entry(source).or_default();
            if *held >= inner.max_per_address {
                return Err(Refusal::AddressFull);
            }
            *held += 1;
        }
        open.total += 1;
        Ok(Ticket {
            gate: inner.clone(),
            source,
        })
    }

    fn refused(&self, refusal: Refusal, peer: Option<IpAddr>) {
        let inner = &self.inner;
        if let Some(metrics) = &inner.metrics {
            metrics.connection_refused(inner.listener, refusal.as_str());
        }
        let report = inner
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .refuse(refusal, Instant::now());
        if let Some(counts) = report {
            warn!(
                listener = inner.listener,
                at_connection_limit = counts.listener_full,
                at_address_limit = counts.address_full,
                last_peer = %peer.map_or_else(|| "unix".to_string(), |ip| ip.to_string()),
                max_connections = inner.max_connections,
                max_per_address = inner.max_per_address,
                "connections refused since the last report (reported at most every {} s)",
                REFUSAL_LOG_INTERVAL.as_secs()
            );
        }
    }

    /// Connections open now (for tests and status).
    pub fn open(&self) -> usize {
        self.inner
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .total
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(source) = self.source
            && let Some(held) = open.by_source.get_mut(&source)
        {
            *held -= 1;
            if *held == 0 {
                open.by_source.remove(&source);
            }
        }
    }
}

/// The source a connection counts against: its IPv4 address (also when it arrives as an
/// IPv4-mapped IPv6 address on a dual-stack listener), or its IPv6 /64 network, since one host
/// usually holds a whole /64 and could otherwise pick a fresh address per connection.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// Refusals counted since the last log line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefusalCounts {
    pub listener_full: u64,
    pub address_full: u64,
}

/// Decides when refusals are logged: the first at once, later ones at most once per interval,
/// carrying every refusal counted since the previous line. Time is passed in, so tests need no
/// clock.
#[derive(Debug)]
pub struct RefusalLog {
    interval: Duration,
    last_line: Option<Instant>,
    counts: RefusalCounts,
}

impl RefusalLog {
    pub fn new(interval: Duration) -> Self {
        RefusalLog {
            interval,
            last_line: None,
            counts: RefusalCounts::default(),
        }
    }

    /// Counts one refusal at `now`; returns the counts to log when a line is due.
    pub fn refuse(&mut self, refusal: Refusal, now: Instant) -> Option<RefusalCounts> {
        match refusal {
            Refusal::ListenerFull => self.counts.listener_full += 1,
            Refusal::AddressFull => self.counts.address_full += 1,
        }
        let due = self
            .last_line
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if !due {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_is_one_line_per_interval_with_the_count() {
        let start = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(10));
        let first = log.refuse(Refusal::AddressFull, start);
        assert_eq!(
            first,
            Some(RefusalCounts {
                listener_full: 0,
                address_full: 1
            })
        );
        let mut lines = 0;
        for i in 1..=10_000u64 {
            // 10,000 refusals in 9.999 s: no line at all.
            let at = start + Duration::from_micros(i * 999);
            let refusal = if i % 2 == 0 {
                Refusal::AddressFull
            } else {
                Refusal::ListenerFull
            };
            lines += usize::from(log.refuse(refusal, at).is_some());
        }
        assert_eq!(lines, 0, "no line within the interval");
        let next = log.refuse(Refusal::ListenerFull, start + Duration::from_secs(10));
        assert_eq!(
            next,
            Some(RefusalCounts {
                listener_full: 5_001,
                address_full: 5_000
            }),
            "the next line carries every refusal since the previous one"
        );
    }

    #[test]
    fn each_source_address_has_its_own_cap_below_the_listeners() {
        let gate = Gate::new("test", 5, 2, None);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = gate.admit(Some(a)).expect("first from a");
        let _a2 = gate.admit(Some(a)).expect("second from a");
        assert!(gate.try_admit(Some(a)).err() == Some(Refusal::AddressFull));
        let _b1 = gate.admit(Some(b)).expect("b is not held back by a");
        drop(a1);
        let _a3 = gate
            .admit(Some(a))
            .expect("a's closed connection freed its place");
        let _local = gate
            .admit(None)
            .expect("a local connection counts only globally");
        let _b2 = gate.admit(Some(b)).expect("fifth");
        assert!(gate.try_admit(Some(b)).err() == Some(Refusal::ListenerFull));
        assert_eq!(gate.open(), 5);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(source_of(one), source_of(two));
        assert_eq!(source_of(one), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_of(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
