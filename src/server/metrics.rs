//! Prometheus metrics (SPEC §9): request counts and latency per endpoint from a middleware on
//! both routers, and gauges computed from the catalog and the store at scrape time (devices by
//! state, licenses purchased and in use per VA and tag, store size, flushes).
//!
//! Request metrics live in an explicit [`Registry`] owned by the daemon (no global recorder, so
//! tests can run several satellites in one process). Catalog gauges are built per scrape: a
//! scrape holds the catalog's read lock only while counting, never while encoding.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::App;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: &'static str,
    endpoint: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    listener: &'static str,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    listener: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    va: String,
    entitlement_tag: String,
}

/// The request metrics shared by both listeners.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    refused: Family<RefusedLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("satellite");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register(
            "requests",
            "Requests answered, by endpoint and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to response, by endpoint",
            latency.clone(),
        );
        let refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections closed at once because the listener or their source address held as \
             many as allowed, by listener and reason",
            refused.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                refused,
            }),
        }
    }

    fn observe(
        &self,
        listener: &'static str,
        endpoint: String,
        method: String,
        status: u16,
        secs: f64,
    ) {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                listener,
                endpoint: endpoint.clone(),
                method,
                status,
            })
            .inc();
        self.inner
            .latency
            .get_or_create(&EndpointLabels { listener, endpoint })
            .observe(secs);
    }

    /// Counts a connection refused by `listener` (see `server::gate`).
    pub fn connection_refused(&self, listener: &'static str, reason: &'static str) {
        self.inner
            .refused
            .get_or_create(&RefusedLabels { listener, reason })
            .inc();
    }

    /// The text exposition: request metrics, then gauges computed now.
    pub fn render(&self, app: &App, sync: Option<&crate::sync::SyncEngine>) -> String {
        let now = app.now();
        let timers = app.timers();
        let (by_state, pools) = app.read(|c| {
            let by_state: BTreeMap<&'static str, i64> = c
                .device_states(now, &timers)
                .into_iter()
                .map(|(s, n)| (s.as_str(), n as i64))
                .collect();
            let mut pools = Vec::new();
            for (va, tag) in c.pool_keys() {
                let purchased = c.available(va, &tag, now);
                let (granted, _, _) = c.granted(va, &tag, now);
                pools.push((c.va_path(va), tag, purchased, granted));
            }
            (by_state, pools)
        });
        let mut scrape = Registry::with_prefix("satellite");
        let devices = Family::<StateLabels, Gauge>::default();
        for (state, n) in by_state {
            devices.get_or_create(&StateLabels { state }).set(n);
        }
        scrape.register("devices", "Registered devices by state", devices);
        let purchased = Family::<PoolLabels, Gauge>::default();
        let in_use = Family::<PoolLabels, Gauge>::default();
        for (va, tag, p, g) in pools {
            let labels = PoolLabels {
                va,
                entitlement_tag: tag,
            };
            purchased
                .get_or_create(&labels)
                .set(p.min(i64::MAX as u64) as i64);
            in_use
                .get_or_create(&labels)
                .set(g.min(i64::MAX as u64) as i64);
        }
        scrape.register(
            "licenses_purchased",
            "License units valid now, per VA and tag in use",
            purchased,
        );
        scrape.register(
            "licenses_in_use",
            "License units granted to devices, per VA and tag",
            in_use,
        );
        let store = app.store();
        let size = Gauge::<i64>::default();
        size.set(store.size_on_disk().unwrap_or(0) as i64);
        scrape.register("store_bytes", "Size of the store on disk", size);
        let flushes = Counter::<u64>::default();
        flushes.inc_by(store.flushes());
        scrape.register("store_flushes", "Store flushes (group commits)", flushes);
        let (total, max) = store.flush_time();
        let flush_secs = Counter::<f64>::default();
        flush_secs.inc_by(total as f64 / 1e6);
        scrape.register(
            "store_flush_seconds",
            "Time spent flushing the store",
            flush_secs,
        );
        let flush_max = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        flush_max.set(max as f64 / 1e6);
        scrape.register(
            "store_flush_max_seconds",
            "Longest store flush since start",
            flush_max,
        );
        let commits = Counter::<u64>::default();
        commits.inc_by(store.commits());
        scrape.register("store_commits", "Store transactions committed", commits);
        // Only on a satellite bound to an upstream: seconds since the last successful sync
        // (since binding if none yet), and failures since the last success.
        if let Some(sync) = sync
            && let Some(bound) = app.read(|c| c.upstream_binding().cloned())
        {
            let status = sync.status();
            let since = status
                .last_success
                .or(bound.last_success)
                .unwrap_or(bound.bound_at);
            let age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
            age.set((now - since).as_seconds_f64().max(0.0));
            scrape.register(
                "sync_age_seconds",
                "Seconds since the last successful sync with the upstream",
                age,
            );
            let failures = Gauge::<i64>::default();
            failures.set(i64::from(status.failures));
            scrape.register(
                "sync_failures",
                "Failed sync attempts since the last success",
                failures,
            );
        }

        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.inner.registry);
        let _ = encode_registry(&mut out, &scrape);
        let _ = encode_eof(&mut out);
        out
    }
}

/// Which listener a request came through, for the labels.
#[derive(Clone)]
pub struct Observed {
    pub metrics: Metrics,
    pub listener: &'static str,
}

/// Middleware: counts and times every request under its route pattern (never the raw path,
/// which would let clients create unbounded label values).
pub async fn track(State(o): State<Observed>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let span = tracing::info_span!(
        "request",
        listener = o.listener,
        method = %method,
        endpoint = %endpoint,
        actor = tracing::field::Empty,
    );
    let started = Instant::now();
    let res = tracing::Instrument::instrument(next.run(req), span).await;
    o.metrics.observe(
        o.listener,
        endpoint,
        method,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

/// `GET /readyz`: 200 while the store accepts writes, 503 with the reason otherwise.
pub async fn ready(State(app): State<App>) -> Response {
    match app.store().write_failure() {
        None => (axum::http::StatusCode::OK, "ready\n").into_response(),
        Some(cause) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the store refuses writes after a failed flush ({cause}); restart the satellite\n"),
        )
            .into_response(),
    }
}

/// Records who is calling in the current request span.
pub fn record_actor(actor: &str) {
    tracing::Span::current().record("actor", actor);
}
