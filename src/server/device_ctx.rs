//! What every handler of the device listener shares: the context of its router, and the
//! client's address. The handlers of protocol v1 (`device.rs`), of the upstream's side of sync
//! (`sync.rs`) and of RUM reports (`rum.rs`) all use it; only `device.rs`, which builds the
//! router, imports the other two.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::Request;

use super::listen::Peer;
use super::ratelimit::FailureLimiter;
use crate::app::App;
use crate::pki::Pki;

/// What the device handlers share: one reference-counted handle, since axum clones a router's
/// state for each request (twice on the usage route), and a clone of the fields would count
/// each of their references up and down.
#[derive(Clone)]
pub struct DeviceCtx(Arc<DeviceShared>);

impl DeviceCtx {
    pub fn new(shared: DeviceShared) -> Self {
        DeviceCtx(Arc::new(shared))
    }
}

impl std::ops::Deref for DeviceCtx {
    type Target = DeviceShared;

    fn deref(&self) -> &DeviceShared {
        &self.0
    }
}

/// The fields of a [`DeviceCtx`].
pub struct DeviceShared {
    pub app: App,
    pub pki: Arc<Pki>,
    pub max_body_bytes: usize,
    pub limiter: Arc<FailureLimiter>,
    /// The sync engine, for the upstream side of sync.
    pub sync: Arc<crate::sync::SyncEngine>,
    /// The trust rules of the RUM endpoint: the ingest URL secret and `[rum]`.
    pub rum: Arc<super::rum::key::RumGate>,
}

/// A device as the actor of a request and of its events: `device:<instance id>`. Kept as the
/// id and formatted where a name is written, so that a usage report that changes nothing worth
/// an event builds no name for its caller.
#[derive(Clone, Copy, Debug)]
pub struct DeviceActor(pub crate::domain::InstanceId);

impl std::fmt::Display for DeviceActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "device:{}", self.0)
    }
}

/// The client's address, on a TLS connection (the admin socket has none).
pub fn peer_ip(req: &Request) -> Option<IpAddr> {
    match req.extensions().get::<Peer>() {
        Some(Peer::Tls { addr, .. }) => Some(addr.ip()),
        _ => None,
    }
}
