//! The sync messages as the domain sees them: what a child reports, what an upstream answers,
//! and what applying either did. The signed wire types are `protocol::sync`; the engine
//! converts at the edge.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::key::OutboxKey;
use crate::domain::ids::LicenseId;
use crate::domain::model::{LicenseKind, Udi};

/// One change a child reports, as the domain sees it (the wire type is converted at the edge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildChange {
    Registration {
        instance_id: String,
        /// VA path, `DOMAIN/Default/...` (or the account's name first).
        va: String,
        udi: Udi,
        hostname: String,
        product: String,
        version: String,
        registered_at: OffsetDateTime,
    },
    Removal {
        instance_id: String,
        reason: String,
    },
    Usage {
        va: String,
        tag: String,
        devices: u64,
        units_requested: u64,
        units_granted: u64,
        measured_at: OffsetDateTime,
    },
    /// A RUM report; `raw` is filled by the engine from the store when the child sends it.
    Rum {
        report_id: u64,
        udi: Udi,
        raw: String,
    },
}

/// One item of the child's outbox: the change, its tracking key and content digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutItem {
    pub key: OutboxKey,
    /// `None` for a removal (an acknowledgement forgets the key).
    pub digest: Option<[u8; 32]>,
    pub change: ChildChange,
}

/// A license line of an upstream pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamLicense {
    pub id: LicenseId,
    pub entitlement_tag: String,
    pub display_name: String,
    pub quantity: u64,
    pub kind: LicenseKind,
    pub export_controlled: bool,
    pub order_ref: Option<String>,
    pub labels: BTreeSet<String>,
}

/// A verified upstream response, as the domain needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamResponse {
    pub seq: u64,
    pub acks: Vec<u64>,
    /// Every VA of the dedicated subtree with its whole pool (path, licenses).
    pub pools: Vec<(String, Vec<UpstreamLicense>)>,
    pub removals: Vec<(String, String)>,
    pub revocations: Vec<(String, String)>,
}

/// What binding needs from the upstream's answer to a registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindInput {
    pub me: String,
    pub upstream: String,
    pub url: String,
    pub upstream_key: String,
    pub ca_pem: String,
    pub account_name: String,
    pub account_domain: String,
    /// Path of the dedicated root on the upstream, `DOMAIN/Default/...`.
    pub root_path: String,
}

/// What applying a response did, for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub acknowledged: usize,
    pub licenses_put: usize,
    pub licenses_removed: usize,
    pub vas_created: usize,
    pub devices_removed: usize,
    pub revocations: usize,
}

/// What applying a request did, for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub registrations: usize,
    pub removals: usize,
    pub usage: usize,
    pub rum_reports: usize,
}
