//! Accept loops: TLS over TCP (devices, HTTPS admin) and plain HTTP over the admin Unix socket.
//!
//! axum has no TLS of its own, so each connection is accepted here, admitted by the listener's
//! [`Gate`] (a cap per listener and per source address), its TLS handshake run under a
//! deadline, the peer identity (client certificate or Unix credentials) attached to every
//! request as a [`Peer`] extension, and the connection served by hyper.
//!
//! A slow or idle client cannot hold a connection (SPEC §9, "Connections"): the first request
//! must begin within `header_timeout` of the handshake; later HTTP/1.1 headers must arrive
//! within `header_timeout` too (hyper's timer, which starts as soon as the connection waits
//! for a request, so it also ends a kept-alive connection that sends nothing); a connection
//! with no request in flight for `idle_timeout` is shut down gracefully, whatever its protocol;
//! HTTP/2 connections are pinged so that a peer that went away is noticed.
//! Request bodies are bounded in `server::limits`. On shutdown the loop stops accepting and
//! gives open connections `drain_timeout` to finish their requests; the rest are then closed.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use super::gate::Gate;
use super::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
pub enum Peer {
    /// A process on this machine, connected through the admin socket.
    Local { uid: Option<u32> },
    /// A TLS client, with the serial number of the certificate it presented, if any. The
    /// certificate is parsed once per connection, not per request.
    Tls {
        addr: SocketAddr,
        client_serial: Option<Arc<str>>,
    },
}

/// Connection limits of one listener (`[device]` in the configuration).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_address: usize,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    pub drain_timeout: Duration,
}

/// The TLS configuration a listener uses for new connections; replaceable at run time (a
/// reloaded certificate applies to the next handshake, open connections are not dropped).
#[derive(Clone)]
pub struct TlsSource(Arc<RwLock<TlsAcceptor>>);

impl TlsSource {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        TlsSource(Arc::new(RwLock::new(TlsAcceptor::from(config))))
    }

    pub fn replace(&self, config: Arc<rustls::ServerConfig>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = TlsAcceptor::from(config);
    }

    fn current(&self) -> TlsAcceptor {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Serves `router` over TLS on `listener` until `shutdown`, then drains.
pub async fn serve_tls(
    name: &'static str,
    listener: TcpListener,
    tls: TlsSource,
    router: Router,
    limits: Limits,
    metrics: Option<Metrics>,
    mut shutdown: Shutdown,
) {
    let gate = Gate::new(
        name,
        limits.max_connections,
        limits.max_per_address,
        metrics,
    );
    let mut connections = JoinSet::new();
    loop {
        let (tcp, addr) = tokio::select! {
            _ = shutdown.wait() => break,
            accepted = accept(&listener) => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    warn!(listener = name, cause = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        reap(&mut connections);
        // A refused connection is dropped here, which closes it; the gate logs refusals.
        let Some(ticket) = gate.admit(Some(addr.ip())) else {
            continue;
        };
        let acceptor = tls.current();
        let router = router.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _ticket = ticket;
            let stream =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        debug!(listener = name, peer = %addr, cause = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!(listener = name, peer = %addr, "TLS handshake timed out");
                        return;
                    }
                };
            let client_serial = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(crate::pki::peer_certificate_serial)
                .map(Arc::from);
            let peer = Peer::Tls {
                addr,
                client_serial,
            };
            serve_connection(stream, peer, router, limits, shutdown).await;
        });
    }
    drain(name, connections, limits.drain_timeout).await;
}

/// Accepts a TCP connection with Nagle's algorithm off. Every answer is written whole, so it has
/// nothing to coalesce; it only held back the answer to a fresh connection's first request
/// behind the handshake's last records (TLS 1.3 session tickets) until the client's delayed
/// ACK: 40 ms per registration (docs/benchmarks.md, "Registrations and Nagle's algorithm").
async fn accept(listener: &TcpListener) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    let (tcp, addr) = listener.accept().await?;
    if let Err(e) = tcp.set_nodelay(true) {
        debug!(peer = %addr, cause = %e, "TCP_NODELAY not set");
    }
    Ok((tcp, addr))
}

/// Serves `router` over the admin Unix socket until `shutdown`, then drains. The socket's file
/// mode is its access control, so only the listener's cap applies, not the per-address one.
pub async fn serve_unix(
    listener: UnixListener,
    router: Router,
    limits: Limits,
    mut shutdown: Shutdown,
) {
    let gate = Gate::new(
        "admin-socket",
        limits.max_connections,
        limits.max_per_address,
        None,
    );
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!(listener = "admin-socket", cause = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        reap(&mut connections);
        let Some(ticket) = gate.admit(None) else {
            continue;
        };
        let uid = stream.peer_cred().ok().map(|c| c.uid());
        let router = router.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _ticket = ticket;
            serve_connection(stream, Peer::Local { uid }, router, limits, shutdown).await;
        });
    }
    drain("admin-socket", connections, limits.drain_timeout).await;
}

/// Forgets the connection tasks that have finished, so the set holds only open connections.
fn reap(connections: &mut JoinSet<()>) {
    while connections.try_join_next().is_some() {}
}

/// Serves one connection until the peer closes it, it stays idle for `idle_timeout`, or the
/// satellite shuts down; the last two end it gracefully (requests in flight are finished).
async fn serve_connection<S>(
    stream: S,
    peer: Peer,
    router: Router,
    limits: Limits,
    mut shutdown: Shutdown,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let tracked = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let in_flight = tracked.begin();
        req.extensions_mut().insert(peer.clone());
        let call = router.clone().oneshot(req.map(axum::body::Body::new));
        async move {
            let response = call.await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| Tracked {
                body,
                _in_flight: in_flight,
            }))
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // Until its first request, a connection gets the header timeout: hyper's HTTP/1.1 header
    // timer only starts once the protocol is known, that is once the client has sent something.
    let idle = activity.idle_for(
        limits.header_timeout.min(limits.idle_timeout),
        limits.idle_timeout,
    );
    tokio::pin!(idle);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    debug!(cause = %e, "connection ended with an error");
                }
                return;
            }
            _ = &mut idle, if !closing => {
                debug!("closing an idle connection");
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = shutdown.wait(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Waits for the connection tasks until `deadline`, then closes the remaining connections.
async fn drain(name: &'static str, mut connections: JoinSet<()>, deadline: Duration) {
    let finished = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, finished).await.is_err() {
        warn!(
            listener = name,
            open = connections.len(),
            "drain deadline passed; closing remaining connections"
        );
        connections.shutdown().await;
    } else {
        info!(listener = name, "listener stopped");
    }
}

/// Whether a connection is busy: the requests in flight (from their headers until their
/// response body is dropped) and when the last one ended. Updated with a few atomic operations
/// per request, so that the idle watch costs the hot path nothing but wakes on its own timer.
struct Activity {
    start: Instant,
    /// Whether any request has begun.
    started: AtomicBool,
    in_flight: AtomicUsize,
    /// Milliseconds from `start` to the end of the latest request.
    last_ms: AtomicU64,
}

/// One request in flight; dropping it (with the response body) ends it.
struct InFlight(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            started: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.started.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    fn last_activity(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::SeqCst))
    }

    /// Resolves once no request has been in flight for `timeout`, or, before the first
    /// request, once the connection has been open for `first` without one.
    async fn idle_for(&self, first: Duration, timeout: Duration) {
        let mut wake = self.start + first;
        loop {
            tokio::time::sleep_until(wake.into()).await;
            let now = Instant::now();
            if !self.started.load(Ordering::Relaxed) {
                return;
            }
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                wake = now + timeout;
                continue;
            }
            let quiet_until = self.last_activity() + timeout;
            if now >= quiet_until {
                return;
            }
            wake = quiet_until;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        let ms = u64::try_from(activity.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        // The end time is stored before the count drops, so a watch that sees no request in
        // flight also sees when the last one ended.
        activity.last_ms.store(ms, Ordering::SeqCst);
        activity.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in flight until hyper has sent it all.
struct Tracked {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    /// A connection accepted by the TLS listeners answers without waiting for the client's ACK
    /// of what went before.
    #[tokio::test]
    async fn accepted_connections_send_without_nagle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        assert!(
            !client.nodelay().expect("read TCP_NODELAY"),
            "Nagle is on by default"
        );
        let (tcp, _) = super::accept(&listener).await.expect("accept");
        assert!(tcp.nodelay().expect("read TCP_NODELAY"));
        drop(client);
    }
}
