//! Admin API wire types: the JSON the operator CLI and the daemon exchange. Field names are a
//! contract with scripts that use `--json`; add fields, never rename them.
//!
//! Objects are referred to by id or, for humans, by name: an account by its name or domain, a
//! VA by `ACCOUNT/Default/child/...` (its path from the Default VA, prefixed by the account).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{self, Catalog, TokenState};

pub type Time = OffsetDateTime;

/// The error body of every failed call, admin and device alike.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: Time,
    #[serde(with = "time::serde::rfc3339")]
    pub now: Time,
    /// `satellite` for a system administrator; `granted` when the counts below are limited to
    /// the caller's grants (SPEC §7).
    pub scope: String,
    pub accounts: usize,
    pub virtual_accounts: usize,
    pub licenses: usize,
    pub tokens: usize,
    pub devices: usize,
    /// Devices by state (`registered`, `authorized`, `out_of_compliance`, `authorization_expired`).
    pub devices_by_state: Vec<(String, usize)>,
    /// Satellite-wide figures: for system administrators only (absent otherwise).
    #[serde(flatten)]
    pub satellite: Option<SatelliteStatus>,
}

/// The part of [`Status`] about the satellite itself rather than the caller's objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SatelliteStatus {
    pub data_dir: String,
    pub store_bytes: u64,
    pub schema_version: u32,
    pub users: usize,
    /// Store flushes (group commits) since start and the mean flush time in milliseconds.
    pub store_flushes: u64,
    pub store_flush_mean_ms: f64,
    /// Set when a flush failed: the store refuses writes until restart.
    pub store_failure: Option<String>,
    pub unreadable_records: Vec<String>,
    pub listeners: Vec<String>,
    pub workers: Vec<WorkerStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub name: String,
    pub state: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateAccount {
    pub name: String,
    pub domain: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub domain: String,
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    pub default_va: String,
    /// Where Cisco devices push RUM reports for this account (SPEC §3b): only in `account
    /// show`, and only to callers who may change the account, since the URL lets its holder
    /// report usage for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rum_ingest: Option<RumIngestView>,
}

/// An account's unguessable RUM ingest URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RumIngestView {
    /// `/cslu/v1/pi/<account>-<key>`, on the device listener.
    pub path: String,
    /// The whole URL, when the satellite knows the address devices reach it at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl From<&domain::Account> for AccountView {
    fn from(a: &domain::Account) -> Self {
        AccountView {
            id: a.id.to_string(),
            name: a.name.clone(),
            domain: a.domain.clone(),
            status: a.status.as_str().to_string(),
            created_at: a.created_at,
            default_va: a.default_va.to_string(),
            rum_ingest: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateVa {
    /// The parent VA (id or path).
    pub parent: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveVa {
    pub parent: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VaView {
    pub id: String,
    pub account: String,
    pub name: String,
    pub path: String,
    pub parent: Option<String>,
    pub level: usize,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
}

impl VaView {
    pub fn new(c: &Catalog, v: &domain::VirtualAccount) -> Self {
        VaView {
            id: v.id.to_string(),
            account: v.account.to_string(),
            name: v.name.clone(),
            path: c.va_path(v.id),
            parent: v.parent.map(|p| p.to_string()),
            level: c.level(v.id),
            description: v.description.clone(),
            created_at: v.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddLicense {
    pub va: String,
    pub entitlement_tag: String,
    #[serde(default)]
    pub display_name: String,
    pub quantity: i64,
    /// Term licenses give both; perpetual licenses neither.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start: Option<Time>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub end: Option<Time>,
    #[serde(default)]
    pub export_controlled: bool,
    #[serde(default)]
    pub order_ref: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferLicenses {
    pub from: String,
    pub to: String,
    pub entitlement_tag: String,
    pub quantity: i64,
    #[serde(default)]
    pub license: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LicenseView {
    pub id: String,
    pub va: String,
    pub va_path: String,
    pub entitlement_tag: String,
    pub display_name: String,
    pub quantity: u64,
    pub kind: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub start: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub end: Option<Time>,
    pub export_controlled: bool,
    pub source: String,
    pub order_ref: Option<String>,
    pub labels: Vec<String>,
}

impl LicenseView {
    pub fn new(c: &Catalog, l: &domain::License) -> Self {
        let (kind, start, end) = match l.kind {
            domain::LicenseKind::Perpetual => ("perpetual", None, None),
            domain::LicenseKind::Term { start, end } => ("term", Some(start), Some(end)),
        };
        LicenseView {
            id: l.id.to_string(),
            va: l.va.to_string(),
            va_path: c.va_path(l.va),
            entitlement_tag: l.entitlement_tag.clone(),
            display_name: l.display_name.clone(),
            quantity: l.quantity,
            kind: kind.into(),
            start,
            end,
            export_controlled: l.export_controlled,
            source: l.source.as_str().into(),
            order_ref: l.order_ref.clone(),
            labels: l.labels.iter().cloned().collect(),
        }
    }
}

/// One line of `license list`: a VA and a tag.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolLineView {
    pub va: String,
    pub va_path: String,
    pub entitlement_tag: String,
    pub display_name: String,
    pub purchased: u64,
    pub in_use: u64,
    pub balance: i64,
    pub export_controlled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_expiry: Option<Time>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LicenseList {
    pub pools: Vec<PoolLineView>,
    pub entries: Vec<LicenseView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateToken {
    pub va: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    #[serde(default)]
    pub max_uses: Option<u32>,
    #[serde(default)]
    pub allow_export_controlled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub va: String,
    pub va_path: String,
    pub description: String,
    pub state: String,
    pub uses: u32,
    pub max_uses: Option<u32>,
    pub allow_export_controlled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: Time,
    pub created_by: String,
}

impl TokenView {
    pub fn new(c: &Catalog, t: &domain::RegistrationToken, now: Time) -> Self {
        let state: TokenState = t.state(now);
        TokenView {
            id: t.id.to_string(),
            va: t.va.to_string(),
            va_path: c.va_path(t.va),
            description: t.description.clone(),
            state: state.as_str().into(),
            uses: t.uses,
            max_uses: t.max_uses,
            allow_export_controlled: t.allow_export_controlled,
            created_at: t.created_at,
            expires_at: t.expires_at,
            created_by: t.created_by.clone(),
        }
    }
}

/// The answer to a token or API-token creation: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedSecret<T> {
    pub secret: String,
    #[serde(flatten)]
    pub object: T,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateUser {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantRole {
    pub role: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub va: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantView {
    pub role: String,
    pub scope: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub grants: Vec<GrantView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
}

impl UserView {
    pub fn new(c: &Catalog, u: &domain::User) -> Self {
        let grants = u
            .grants
            .iter()
            .map(|g| GrantView {
                role: g.role.as_str().into(),
                scope: match g.scope {
                    domain::Scope::System => "satellite".into(),
                    domain::Scope::Account(a) => c
                        .account(a)
                        .map_or_else(|| a.to_string(), |a| format!("account {}", a.name)),
                    domain::Scope::Va(v) => format!("va {}", c.va_path(v)),
                },
            })
            .collect();
        UserView {
            id: u.id.to_string(),
            name: u.name.clone(),
            grants,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateApiToken {
    pub user: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiTokenView {
    pub id: String,
    pub user: String,
    pub description: String,
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<Time>,
}

impl ApiTokenView {
    pub fn new(c: &Catalog, t: &domain::ApiToken, now: Time) -> Self {
        ApiTokenView {
            id: t.id.to_string(),
            user: c
                .user(t.user)
                .map_or_else(|| t.user.to_string(), |u| u.name.clone()),
            description: t.description.clone(),
            state: if t.revoked_at.is_some() {
                "revoked"
            } else if t.is_usable_at(now) {
                "active"
            } else {
                "expired"
            }
            .into(),
            created_at: t.created_at,
            expires_at: t.expires_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventView {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: Time,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub account: Option<String>,
    pub va: Option<String>,
    pub device: Option<String>,
    pub details: Vec<(String, String)>,
}

impl From<domain::Event> for EventView {
    fn from(e: domain::Event) -> Self {
        EventView {
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            account: e.account.map(|a| a.to_string()),
            va: e.va.map(|v| v.to_string()),
            device: e.device,
            details: e.details,
        }
    }
}

/// Query parameters of `GET /v1/events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventQuery {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<Time>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<Time>,
    pub account: Option<String>,
    pub va: Option<String>,
    pub device: Option<String>,
    pub action: Option<String>,
    pub limit: Option<usize>,
    /// Only events numbered below this (paging back from the oldest event of a page).
    pub before: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceView {
    pub id: String,
    pub account: String,
    pub va: String,
    pub va_path: String,
    pub udi_pid: String,
    pub udi_serial: String,
    pub hostname: String,
    pub product: String,
    pub version: String,
    pub source: String,
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: Time,
    #[serde(with = "time::serde::rfc3339")]
    pub last_contact: Time,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_report_at: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub certificate_expires_at: Option<Time>,
    #[serde(with = "time::serde::rfc3339")]
    pub authorization_expires_at: Time,
    #[serde(with = "time::serde::rfc3339")]
    pub next_report_by: Time,
    pub clock_skew: bool,
    pub entitlements: Vec<crate::protocol::device::EntitlementState>,
}

impl DeviceView {
    pub fn new(
        c: &Catalog,
        i: &domain::ProductInstance,
        now: Time,
        timers: &domain::DeviceTimers,
    ) -> Self {
        let a = c.authorization(i, now, timers);
        let auth = crate::protocol::device::Authorization::from_state(i.id, &a);
        DeviceView {
            id: i.id.to_string(),
            account: i.account.to_string(),
            va: i.va.to_string(),
            va_path: c.va_path(i.va),
            udi_pid: i.udi.pid.clone(),
            udi_serial: i.udi.serial.clone(),
            hostname: i.hostname.clone(),
            product: i.product.clone(),
            version: i.version.clone(),
            source: match i.source {
                domain::InstanceSource::Native => "native",
                domain::InstanceSource::Rum => "cisco-rum",
            }
            .into(),
            status: auth.status,
            registered_at: i.registered_at,
            last_contact: i.last_contact,
            last_report_at: i.last_report_at,
            certificate_expires_at: i.cert_not_after,
            authorization_expires_at: a.expires_at,
            next_report_by: a.next_report_by,
            clock_skew: i.clock_skew,
            entitlements: auth.entitlements,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveDevice {
    pub va: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemovedDevice {
    pub id: String,
    pub released: Vec<crate::protocol::device::UsageLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpareView {
    pub va: String,
    pub va_path: String,
    pub spare: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComplianceView {
    pub va: String,
    pub va_path: String,
    pub entitlement_tag: String,
    pub purchased: u64,
    pub requested: u64,
    pub granted: u64,
    pub shortage: u64,
    pub devices_short: usize,
    pub spare_in: Vec<SpareView>,
}

impl ComplianceView {
    pub fn new(c: &Catalog, l: domain::ComplianceLine) -> Self {
        ComplianceView {
            va: l.va.to_string(),
            va_path: c.va_path(l.va),
            shortage: l.shortage(),
            entitlement_tag: l.entitlement_tag,
            purchased: l.purchased,
            requested: l.requested,
            granted: l.granted,
            devices_short: l.devices_short,
            spare_in: l
                .spare_in
                .into_iter()
                .map(|(va, spare)| SpareView {
                    va: va.to_string(),
                    va_path: c.va_path(va),
                    spare,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertView {
    pub key: String,
    pub kind: String,
    pub severity: String,
    pub account: Option<String>,
    pub va: Option<String>,
    /// Rendered for the caller: it names only VAs the caller may read.
    pub message: String,
    /// For a shortage: VAs with spare units of the tag, among those the caller may read.
    #[serde(default)]
    pub spare_in: Vec<SpareView>,
}

impl AlertView {
    /// The alert as `p` may see it (SPEC §7).
    pub fn new(c: &Catalog, a: &domain::Alert, p: &domain::Principal) -> Self {
        AlertView {
            key: a.key.clone(),
            kind: a.kind.into(),
            severity: a.severity.as_str().into(),
            account: a.account.map(|x| x.to_string()),
            va: a.va.map(|x| x.to_string()),
            message: c.alert_message(a, p),
            spare_in: a
                .spare_in
                .iter()
                .filter(|(va, _)| c.va_access(p, *va).is_some())
                .map(|&(va, spare)| SpareView {
                    va: va.to_string(),
                    va_path: c.va_path(va),
                    spare,
                })
                .collect(),
        }
    }
}

/// The answer to `POST /v1/licenses/import`: what a license file added.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LicenseImportView {
    pub file_id: String,
    pub account: String,
    pub issuer: String,
    /// The key id of the key that signed the file.
    pub signer: String,
    pub licenses: Vec<LicenseView>,
}

// ----- sync (SPEC §8) -------------------------------------------------------------------------

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

/// `POST /v1/reservations`: reserve licenses for a disconnected device (SPEC §8b).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateReservation {
    /// The VA to reserve from (id or path).
    pub va: String,
    /// The device's request code (`SRQ1-...`).
    pub request: String,
    /// Allow reserving export-controlled tags.
    #[serde(default)]
    pub allow_export_controlled: bool,
}

/// `POST /v1/reservations/return`: the device's return code (`SRT1-...`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReturnReservation {
    pub code: String,
}

/// An active reservation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReservationView {
    pub id: String,
    pub account: String,
    pub va: String,
    pub va_path: String,
    pub udi: crate::protocol::device::Udi,
    pub entitlements: Vec<crate::protocol::reservation::Entitlement>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    pub created_by: String,
    pub request_nonce: String,
}

impl ReservationView {
    pub fn new(c: &Catalog, r: &domain::Reservation) -> Self {
        ReservationView {
            id: r.id.to_string(),
            account: c
                .account(r.account)
                .map_or_else(|| r.account.to_string(), |a| a.name.clone()),
            va: r.va.to_string(),
            va_path: c.va_path(r.va),
            udi: crate::protocol::device::Udi {
                pid: r.udi.pid.clone(),
                serial: r.udi.serial.clone(),
            },
            entitlements: r
                .entitlements
                .iter()
                .map(|(tag, count)| crate::protocol::reservation::Entitlement {
                    tag: tag.clone(),
                    count: *count,
                })
                .collect(),
            created_at: r.created_at,
            created_by: r.created_by.clone(),
            request_nonce: r.request_nonce.clone(),
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

/// The answer to `POST /v1/reservations`: the reservation and the code for the device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReservedView {
    pub reservation: ReservationView,
    /// The signed authorization code (`SAC1-...`) the device installs.
    pub authorization_code: String,
    /// The id of the key that signed it, for `agent reserve-install --trust-key`.
    pub key_id: String,
}

/// The answer to a return or a cancellation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleasedReservation {
    /// `returned` or `cancelled`.
    pub outcome: String,
    pub reservation: ReservationView,
}
