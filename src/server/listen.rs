//! Accept loops: TLS over TCP (devices, HTTPS admin) and plain HTTP over the admin Unix socket.
//!
//! axum has no TLS of its own, so each connection is accepted here, its TLS handshake run under
//! a deadline, the peer identity (client certificate or Unix credentials) attached to every
//! request as a [`Peer`] extension, and the connection served by hyper. On shutdown the loop
//! stops accepting and gives open connections a bounded time to finish their requests.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, info, warn};

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

/// Connection limits of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
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
    mut shutdown: Shutdown,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (tcp, addr) = tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    warn!(listener = name, cause = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!(listener = name, peer = %addr, limit = limits.max_connections,
                "connection refused: the connection limit is reached");
            continue;
        };
        let acceptor = tls.current();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
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
            serve_connection(stream, peer, router, watcher).await;
        });
    }
    drain(name, graceful, limits.drain_timeout).await;
}

/// Serves `router` over the admin Unix socket until `shutdown`, then drains.
pub async fn serve_unix(
    listener: UnixListener,
    router: Router,
    limits: Limits,
    mut shutdown: Shutdown,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
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
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let uid = stream.peer_cred().ok().map(|c| c.uid());
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            serve_connection(stream, Peer::Local { uid }, router, watcher).await;
        });
    }
    drain("admin-socket", graceful, limits.drain_timeout).await;
}

async fn serve_connection<S>(
    stream: S,
    peer: Peer,
    router: Router,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut req: axum::extract::Request<_>| {
        req.extensions_mut().insert(peer.clone());
        req
    });
    let builder = Builder::new(TokioExecutor::new());
    let conn = builder
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        debug!(cause = %e, "connection ended with an error");
    }
}

async fn drain(name: &'static str, graceful: GracefulShutdown, deadline: Duration) {
    let open = graceful.count();
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            listener = name,
            open, "drain deadline passed; closing remaining connections"
        );
    } else {
        info!(listener = name, "listener stopped");
    }
}
