//! Prometheus metrics and the access log (SPEC §9, "Observability").
//!
//! A middleware on both routers ([`track`]) counts and times every request under its route
//! pattern and writes one access line for it (`metrics/access.rs`). Gauges are computed from
//! the catalog, the store and `/proc/self` at scrape time (`metrics/scrape.rs`,
//! `metrics/process.rs`); the exposition is negotiated, OpenMetrics or the Prometheus text
//! format 0.0.4 (`metrics/format.rs`). `docs/observability.md` lists every metric and how many
//! series a satellite exposes.
//!
//! Request metrics live in an explicit [`Registry`] owned by the daemon (no global recorder, so
//! tests can run several satellites in one process). Catalog gauges are built per scrape: a
//! scrape holds the catalog's read lock only while counting, never while encoding.

mod access;
mod format;
mod process;
mod scrape;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use format::Format;
pub use scrape::LicenseDetail;

use super::device_ctx::DeviceActor;
use crate::app::App;
use crate::domain::AlertInputs;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: &'static str,
    endpoint: String,
    method: &'static str,
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

/// The request metrics shared by both listeners, and the alert counts of the last round.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    refused: Family<RefusedLabels, Counter>,
    /// Alerts holding after the alerts worker's last round, by (kind, severity). A pair seen
    /// once stays, at 0 once it clears, so a query never confuses "none" with "not scraped".
    alerts: Mutex<BTreeMap<(&'static str, &'static str), i64>>,
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
            "Requests answered, by listener, route pattern, method and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to response headers, by listener and route pattern",
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
                alerts: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    fn observe(
        &self,
        listener: &'static str,
        endpoint: &str,
        method: &'static str,
        status: u16,
        secs: f64,
    ) {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                listener,
                endpoint: endpoint.to_owned(),
                method,
                status,
            })
            .inc();
        self.inner
            .latency
            .get_or_create(&EndpointLabels {
                listener,
                endpoint: endpoint.to_owned(),
            })
            .observe(secs);
    }

    /// Counts a connection refused by `listener` (see `server::gate`).
    pub fn connection_refused(&self, listener: &'static str, reason: &'static str) {
        self.inner
            .refused
            .get_or_create(&RefusedLabels { listener, reason })
            .inc();
    }

    /// Records the alerts holding now, by (kind, severity) (the alerts worker, every round).
    pub fn set_alerts(&self, holding: impl IntoIterator<Item = (&'static str, &'static str)>) {
        let mut counts = self.inner.alerts.lock().unwrap_or_else(|p| p.into_inner());
        counts.values_mut().for_each(|n| *n = 0);
        for key in holding {
            *counts.entry(key).or_default() += 1;
        }
    }

    /// The exposition in `format`: request metrics, then figures computed now.
    pub fn render(
        &self,
        app: &App,
        sync: Option<&crate::sync::SyncEngine>,
        cisco: Option<&crate::cisco::Poller>,
        certificates: &AlertInputs,
        format: Format,
        detail: LicenseDetail,
    ) -> String {
        let alerts = self
            .inner
            .alerts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (satellite, standard) =
            scrape::registries(app, (sync, cisco), certificates, &alerts, detail);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.inner.registry);
        let _ = encode_registry(&mut out, &satellite);
        let _ = encode_registry(&mut out, &standard);
        let _ = encode_eof(&mut out);
        match format {
            Format::OpenMetrics => out,
            Format::Text => format::to_text(&out),
        }
    }
}

/// Which listener a request came through, for the labels.
#[derive(Clone)]
pub struct Observed {
    pub metrics: Metrics,
    pub listener: &'static str,
}

/// Middleware (`limits::apply`): counts and times every request under its route pattern (never
/// the raw path, which would let clients create unbounded label values, and may carry a RUM
/// ingest key), and writes its access line. `run` answers the request.
pub async fn track<F>(o: &Observed, req: Request, run: impl FnOnce(Request) -> F) -> Response
where
    F: std::future::Future<Output = Response>,
{
    // The matched path is shared with the router (a reference count, not a copy).
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let endpoint = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        listener = o.listener,
        method = %method,
        endpoint = %endpoint,
        actor = tracing::field::Empty,
    );
    let line = access::Line::begin(o.listener, &req);
    let started = Instant::now();
    let (res, actor) = access::with_caller(tracing::Instrument::instrument(run(req), span)).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    o.metrics.observe(
        o.listener,
        endpoint,
        access::method_label(&method),
        status,
        elapsed.as_secs_f64(),
    );
    line.finish(&method, endpoint, status, elapsed, actor, &res);
    res
}

impl crate::workers::alerts::AlertCounts for Metrics {
    fn set_alerts(&self, holding: &mut dyn Iterator<Item = (&'static str, &'static str)>) {
        Metrics::set_alerts(self, holding);
    }
}

/// `GET /readyz`: 200 while the store accepts writes, 503 with the reason otherwise.
pub async fn ready(State(app): State<App>) -> Response {
    match app.store_failure() {
        None => (axum::http::StatusCode::OK, "ready\n").into_response(),
        Some(cause) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the store refuses writes after a failed flush ({cause}); restart the satellite\n"),
        )
            .into_response(),
    }
}

/// Records who is calling: in the current request span, and for the request's access line.
pub fn record_actor(actor: &str) {
    tracing::Span::current().record("actor", actor);
    access::record_caller(access::Caller::Named(actor.to_string()));
}

/// Records a device as the caller, like [`record_actor`], without naming it unless a span or
/// an access line needs the name: on the usage report path the request span and the access
/// log are usually off, and the name would be a string built per report for nothing.
pub fn record_device(device: DeviceActor) {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("actor", device.to_string().as_str());
    }
    access::record_caller(access::Caller::Device(device));
}
