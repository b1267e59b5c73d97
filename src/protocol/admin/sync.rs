//! Sync (SPEC §8): child satellites, the binding to an upstream, sync status and outcomes,
//! and what children relay.

use serde::{Deserialize, Serialize};

use super::Time;
use crate::domain::{self, Catalog};

/// `POST /v1/sync/children`: dedicate a VA subtree to a child satellite.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChild {
    pub name: String,
    pub va: String,
    /// Days the registration token stays usable (default 7).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A child satellite, as its upstream sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildView {
    pub name: String,
    pub va: String,
    pub registered: bool,
    pub key: Option<String>,
    pub last_request_seq: u64,
    pub response_seq: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<Time>,
    pub devices: usize,
    pub pending_removals: usize,
}

/// The answer to `POST /v1/sync/children`: the token is shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildCreated {
    pub child: ChildView,
    pub registration_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub token_expires_at: Time,
}

/// `POST /v1/sync/register`: bind this satellite to an upstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterUpstream {
    pub url: String,
    pub token: String,
}

/// This satellite's binding to its upstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BindingView {
    pub upstream: String,
    pub url: String,
    pub upstream_key: String,
    /// This satellite's name at the upstream.
    pub me: String,
    pub va: String,
    #[serde(with = "time::serde::rfc3339")]
    pub bound_at: Time,
    pub next_seq: u64,
    pub outstanding_seq: Option<u64>,
    pub last_response_seq: u64,
}

/// `GET /v1/sync/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncStatusView {
    /// `disconnected`, `child`, `upstream` or `child+upstream`.
    pub role: String,
    /// This satellite's name as an upstream (`sync.name`).
    pub name: String,
    /// Key id and public key (hex) of this satellite's signing key.
    pub key_id: String,
    pub public_key: String,
    pub binding: Option<BindingView>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_attempt: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success: Option<Time>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_error_at: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt: Option<Time>,
    /// Changes not yet in a request.
    pub pending_changes: usize,
    /// Items the upstream has acknowledged.
    pub acknowledged_items: usize,
    pub problem: Option<String>,
    pub children: Vec<ChildView>,
}

/// What a sync (network or import) did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncOutcomeView {
    /// `applied` or `already_applied`.
    pub result: String,
    pub response_seq: u64,
    pub acknowledged: usize,
    pub licenses_changed: usize,
    pub licenses_removed: usize,
    pub vas_created: usize,
    pub devices_removed: usize,
}

/// A device registered with a child satellite (read-only on the upstream).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteDeviceView {
    pub id: String,
    pub child: String,
    pub va_path: String,
    pub pid: String,
    pub serial: String,
    pub hostname: String,
    pub product: String,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: Time,
    pub removal_ordered: bool,
}

/// A child's usage of one tag in one VA.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteUsageView {
    pub child: String,
    pub va_path: String,
    pub entitlement_tag: String,
    pub devices: u64,
    pub units_requested: u64,
    pub units_granted: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub measured_at: Time,
}

/// `GET /v1/sync/devices`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteDevices {
    pub devices: Vec<RemoteDeviceView>,
    pub usage: Vec<RemoteUsageView>,
    /// Cisco RUM reports relayed by children (the reports themselves are kept as received).
    pub rum_reports: Vec<RelayedRumView>,
}

/// A Cisco RUM report a child relayed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayedRumView {
    pub child: String,
    pub report_id: u64,
    pub pid: String,
    pub serial: String,
    /// Size of the report as the device sent it, in bytes.
    pub bytes: usize,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: Time,
}

impl ChildView {
    pub fn new(c: &Catalog, child: &domain::ChildSatellite) -> Self {
        ChildView {
            name: child.name.clone(),
            va: c.va_path(child.root),
            registered: child.key.is_some(),
            key: child.key.clone(),
            last_request_seq: child.last_request_seq,
            response_seq: child.response_seq,
            last_seen: child.last_seen,
            devices: c
                .remote_instances()
                .filter(|r| r.child == child.name)
                .count(),
            pending_removals: child.pending_removals.len(),
        }
    }
}

impl BindingView {
    pub fn new(c: &Catalog, b: &domain::UpstreamBinding) -> Self {
        BindingView {
            upstream: b.upstream.clone(),
            url: b.url.clone(),
            upstream_key: b.upstream_key.clone(),
            me: b.me.clone(),
            va: c.va_path(b.root),
            bound_at: b.bound_at,
            next_seq: b.next_seq,
            outstanding_seq: b.outstanding.as_ref().map(|o| o.seq),
            last_response_seq: b.last_response_seq,
        }
    }
}
