//! The access log: one line per request on either listener, under its own tracing target
//! (`satellite::access`, [`crate::logging::ACCESS_TARGET`]) so operators can route it
//! elsewhere or silence it (`info,satellite::access=off`).
//!
//! A line carries the listener, method, route pattern (never the raw path: an ingest URL
//! holds a secret key, and a path is whatever a client sends), status, latency to the
//! response headers, the caller once authenticated (`user:…`, `local:uid=…`, `device:…`,
//! `rum:<address>`), the source address (`unix` for the admin socket), and the body sizes
//! where known: the request's from its announced length, the response's when its length is
//! known before it is sent (every JSON answer; not a streamed backup). A refused
//! authentication (401) is marked `refused="authentication"`, so failed logins can be counted
//! per source.
//!
//! The caller is known only inside the handler, after authentication: `record_actor` puts it
//! in a task-local slot that [`with_caller`] opens around the request, since a handler runs in
//! the task of its connection. A device is kept there as its id and named only when a line is
//! written, so that with the access log off a usage report builds no string for its caller.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use hyper::body::Body as _;

use crate::logging::ACCESS_TARGET;
use crate::server::device_ctx::DeviceActor;
use crate::server::listen::Peer;

/// Who made a request, once authenticated.
pub(crate) enum Caller {
    /// An operator, a local user or a RUM source, already named.
    Named(String),
    /// A device, named `device:<id>` when the name is needed.
    Device(DeviceActor),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Named(name) => f.write_str(name),
            Caller::Device(device) => device.fmt(f),
        }
    }
}

tokio::task_local! {
    /// The caller of the request this task is serving, once authenticated.
    static CALLER: RefCell<Option<Caller>>;
}

/// Runs `request` with an empty caller slot; returns its output and the caller it recorded.
/// The slot lives in the task-local future itself and is taken back out of it afterwards, so
/// opening it allocates nothing.
pub(super) async fn with_caller<F: Future>(request: F) -> (F::Output, Option<Caller>) {
    let mut scoped = pin!(CALLER.scope(RefCell::new(None), request));
    let out = scoped.as_mut().await;
    let caller = scoped.take_value().and_then(RefCell::into_inner);
    (out, caller)
}

/// Records the caller of the request being served (no-op outside a request).
pub(super) fn record_caller(caller: Caller) {
    let _ = CALLER.try_with(|slot| *slot.borrow_mut() = Some(caller));
}

/// The method as a metric label: the standard methods by name, anything else as `other`, so
/// that a client cannot create label values (HTTP allows any token as a method).
pub(super) fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, name)| name)
}

/// What the access line knows before the request is served.
pub(super) struct Line {
    listener: &'static str,
    source: Source,
    request_bytes: Option<u64>,
}

/// Where a request came from. Kept as it is and formatted only when a line is written, so that
/// a satellite with the access log off builds no string for it per request.
enum Source {
    Addr(std::net::SocketAddr),
    Unix,
    Unknown,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Addr(addr) => addr.fmt(f),
            Source::Unix => f.write_str("unix"),
            Source::Unknown => f.write_str("unknown"),
        }
    }
}

impl Line {
    pub(super) fn begin(listener: &'static str, req: &Request) -> Line {
        let source = match req.extensions().get::<Peer>() {
            Some(Peer::Tls { addr, .. }) => Source::Addr(std::net::SocketAddr::new(
                addr.ip().to_canonical(),
                addr.port(),
            )),
            Some(Peer::Local { .. }) => Source::Unix,
            None => Source::Unknown,
        };
        Line {
            listener,
            source,
            request_bytes: content_length(req.headers()).or(req.body().size_hint().exact()),
        }
    }

    /// Writes the line.
    pub(super) fn finish(
        self,
        method: &Method,
        route: &str,
        status: u16,
        latency: Duration,
        actor: Option<Caller>,
        res: &Response,
    ) {
        let response_bytes = res
            .body()
            .size_hint()
            .exact()
            .or_else(|| content_length(res.headers()));
        let refused = (status == 401).then_some("authentication");
        tracing::info!(
            target: ACCESS_TARGET,
            listener = self.listener,
            method = method.as_str(),
            route,
            status,
            latency_ms = latency.as_micros() as f64 / 1000.0,
            // Named here, where the macro evaluates it only if the line is written.
            actor = actor.as_ref().map(ToString::to_string).as_deref(),
            // Formatted here, where the macro evaluates it only if the line is written.
            source = self.source.to_string().as_str(),
            request_bytes = self.request_bytes,
            response_bytes,
            refused,
            "request"
        );
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[tokio::test]
    async fn the_caller_recorded_inside_a_request_comes_back_out() {
        let ((), caller) =
            with_caller(async { record_caller(Caller::Named("user:alice".into())) }).await;
        assert_eq!(caller.map(|c| c.to_string()).as_deref(), Some("user:alice"));
        let id = crate::domain::InstanceId::fresh(&crate::app::RandomIds);
        let ((), device) =
            with_caller(async { record_caller(Caller::Device(DeviceActor(id))) }).await;
        assert_eq!(device.map(|c| c.to_string()), Some(format!("device:{id}")));
        let ((), none) = with_caller(async {}).await;
        assert!(none.is_none());
        // Outside a request nothing happens (and nothing panics).
        record_caller(Caller::Named("user:bob".into()));
    }
}
