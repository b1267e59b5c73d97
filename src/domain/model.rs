//! The entities of SPEC §2 and §7. Plain data: the rules that keep them consistent live in the
//! operation modules next to this one.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::{AccountId, ApiTokenId, LicenseId, TokenId, UserId, VaId};

mod answer;
mod stamp;
mod wire;
pub use answer::{LastAnswer, Lines, PACKED_LINES};
pub use stamp::{Seq, Stamp};
mod usage;
pub use usage::{TagCounts, intern};

/// Whether an account may be used. Accounts whose domain is a prefixed form of an existing
/// account's domain start `Pending` until a system administrator approves them, as the upstream
/// portal does for prefixed domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountStatus {
    Pending,
    Active,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Pending => "pending",
            AccountStatus::Active => "active",
        }
    }
}

/// A Smart Account as held locally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// The Smart Account domain identifier, a lowercase DNS name such as `example.com`.
    pub domain: String,
    pub status: AccountStatus,
    pub created_at: OffsetDateTime,
    /// The Default Virtual Account at the root of this account's tree.
    pub default_va: VaId,
}

/// A Virtual Account: a node of the account's tree that holds licenses, tokens and devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualAccount {
    pub id: VaId,
    pub account: AccountId,
    pub name: String,
    pub description: String,
    /// `None` only for the account's Default VA.
    pub parent: Option<VaId>,
    pub created_at: OffsetDateTime,
}

/// How long a license lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LicenseKind {
    Perpetual,
    /// Valid from `start` (inclusive) to `end` (exclusive). Dates come from the order, not
    /// from use: unused term licenses expire on the same date.
    Term {
        start: OffsetDateTime,
        end: OffsetDateTime,
    },
}

/// Where a license pool entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LicenseSource {
    Manual,
    Upstream,
    Reservation,
    Import,
}

impl LicenseSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseSource::Manual => "manual",
            LicenseSource::Upstream => "upstream",
            LicenseSource::Reservation => "reservation",
            LicenseSource::Import => "import",
        }
    }
}

/// A license pool entry: `quantity` units of one entitlement tag in one VA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    pub id: LicenseId,
    pub account: AccountId,
    pub va: VaId,
    pub entitlement_tag: String,
    pub display_name: String,
    pub quantity: u64,
    pub kind: LicenseKind,
    pub export_controlled: bool,
    pub source: LicenseSource,
    pub order_ref: Option<String>,
    /// Free-form labels (the upstream's "license tags"): for search only, never for access.
    pub labels: BTreeSet<String>,
    pub created_at: OffsetDateTime,
}

impl License {
    /// Whether the entry counts towards the pool at `now`.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        match self.kind {
            LicenseKind::Perpetual => true,
            LicenseKind::Term { start, end } => start <= now && now < end,
        }
    }

    /// Whether the entry can never count again.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        matches!(self.kind, LicenseKind::Term { end, .. } if end <= now)
    }
}

/// A registration token. The secret itself is never stored, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationToken {
    pub id: TokenId,
    pub account: AccountId,
    pub va: VaId,
    pub description: String,
    pub secret_hash: [u8; 32],
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub allow_export_controlled: bool,
    pub revoked_at: Option<OffsetDateTime>,
    pub created_by: String,
}

/// The roles of SPEC §7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    SystemAdmin,
    AccountAdmin,
    AccountUser,
    VaAdmin,
    VaUser,
    /// May scrape `/metrics` (satellite-wide figures) and nothing else: the role of a
    /// monitoring system's API token (SPEC §7). Appended last, so every stored grant keeps its
    /// encoding.
    MetricsReader,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::SystemAdmin,
        Role::AccountAdmin,
        Role::AccountUser,
        Role::VaAdmin,
        Role::VaUser,
        Role::MetricsReader,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system-admin",
            Role::AccountAdmin => "account-admin",
            Role::AccountUser => "account-user",
            Role::VaAdmin => "va-admin",
            Role::VaUser => "va-user",
            Role::MetricsReader => "metrics-reader",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What a role grant applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    System,
    Account(AccountId),
    /// A VA and its whole subtree.
    Va(VaId),
}

/// One role held by a user over one scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoleGrant {
    pub role: Role,
    pub scope: Scope,
}

/// An operator. Users authenticate with API tokens; the owner of the admin socket acts as
/// system administrator without one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub grants: BTreeSet<RoleGrant>,
    pub created_at: OffsetDateTime,
}

/// A user's console password as an argon2id PHC string (algorithm, parameters, salt and hash;
/// never the password). A record of its own, so the `User` record's format stays as it was.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPassword {
    pub user: UserId,
    pub phc: String,
    pub set_at: OffsetDateTime,
}

// The hash is not a secret in the sense of a token, but it is offline-guessable: keep it out of
// every log line a `{:?}` could reach.
impl std::fmt::Debug for UserPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPassword")
            .field("user", &self.user)
            .field("set_at", &self.set_at)
            .finish_non_exhaustive()
    }
}

/// A bearer token for the HTTPS admin API, stored as the SHA-256 of its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub user: UserId,
    pub description: String,
    pub secret_hash: [u8; 32],
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiToken {
    pub fn is_usable_at(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// An append-only audit record. `seq` is assigned when the event is committed and orders the
/// log; it is never reused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub account: Option<AccountId>,
    pub va: Option<VaId>,
    pub device: Option<String>,
    pub details: Vec<(String, String)>,
}

/// A device's unique identifier: product id and serial number, unique per account.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Udi {
    /// The product id repeats across a fleet: the catalog shares one copy among its devices.
    pub pid: Text,
    /// Boxed, not a `String`: 8 bytes less in every device record (see
    /// `domain::tests::load::a_device_record_fits_its_size_class`).
    pub serial: Box<str>,
}

impl std::fmt::Display for Udi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.pid, self.serial)
    }
}

/// How a device reached the satellite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceSource {
    /// The native protocol v1, with a token and an identity certificate.
    Native,
    /// Cisco RUM reports pushed to the CSLU-style endpoint.
    Rum,
}

/// The state of one entitlement of a device (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EntitlementStatus {
    Authorized,
    OutOfCompliance,
    NotAuthorized,
    Unknown,
}

impl EntitlementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EntitlementStatus::Authorized => "authorized",
            EntitlementStatus::OutOfCompliance => "out_of_compliance",
            EntitlementStatus::NotAuthorized => "not_authorized",
            EntitlementStatus::Unknown => "unknown",
        }
    }
}

/// The state of a device as a whole (SPEC §4), worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InstanceStatus {
    Registered,
    Authorized,
    OutOfCompliance,
    AuthorizationExpired,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Registered => "registered",
            InstanceStatus::Authorized => "authorized",
            InstanceStatus::OutOfCompliance => "out_of_compliance",
            InstanceStatus::AuthorizationExpired => "authorization_expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            InstanceStatus::Registered,
            InstanceStatus::Authorized,
            InstanceStatus::OutOfCompliance,
            InstanceStatus::AuthorizationExpired,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// The answer computed for a device: kept with the device so a repeated report gets exactly
/// the answer the first one got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationState {
    pub status: InstanceStatus,
    pub entitlements: Vec<(Tag, u64, EntitlementStatus)>,
    pub expires_at: OffsetDateTime,
    pub next_report_by: OffsetDateTime,
}

/// A registered device. Serialized as its fields read, the last answer as an
/// [`AuthorizationState`] (`model/wire.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductInstance {
    pub id: super::ids::InstanceId,
    pub account: AccountId,
    pub va: VaId,
    pub udi: Udi,
    pub hostname: Box<str>,
    /// Product and software version repeat across a fleet: the catalog shares one copy of
    /// each text among its devices (see [`Text`]).
    pub product: Text,
    pub version: Text,
    pub source: InstanceSource,
    pub registered_at: Stamp,
    /// Registration order within the satellite: earlier devices are authorized first.
    pub order: u64,
    pub token: Option<TokenId>,
    /// Taken from the registration token: may this device use export-controlled licenses?
    pub export_allowed: bool,
    /// Boxed strings, not `String`s (here, `hostname` and the UDI serial): 8 bytes less each
    /// keeps the record in the allocator's 320-byte class
    /// (`domain::tests::load::a_device_record_fits_its_size_class`).
    pub cert_serial: Option<Box<str>>,
    pub cert_not_after: Option<Stamp>,
    pub last_contact: Stamp,
    pub last_report_at: Option<Stamp>,
    pub last_seq: Option<Seq>,
    pub last_measured_at: Option<Stamp>,
    /// Entitlement tag → units in use, from the latest report. Tags at 0 are absent.
    pub usage: TagCounts,
    /// The answer to the latest report, returned again for a repeated `seq`: read it with
    /// [`ProductInstance::answer`], set it with [`ProductInstance::set_answer`]. Every change
    /// of `usage` sets or clears it.
    pub last_answer: Option<LastAnswer>,
    pub clock_skew: bool,
}

impl ProductInstance {
    /// A device first seen at `now` through `source`: no report, certificate, token, names or
    /// usage yet; each channel sets what it knows with struct update syntax.
    pub fn first_seen(
        id: super::ids::InstanceId,
        account: AccountId,
        va: VaId,
        udi: Udi,
        source: InstanceSource,
        order: u64,
        now: OffsetDateTime,
    ) -> Self {
        ProductInstance {
            id,
            account,
            va,
            udi,
            hostname: Box::default(),
            product: Text::default(),
            version: Text::default(),
            source,
            registered_at: now.into(),
            order,
            token: None,
            export_allowed: false,
            cert_serial: None,
            cert_not_after: None,
            last_contact: now.into(),
            last_report_at: None,
            last_seq: None,
            last_measured_at: None,
            usage: TagCounts::new(),
            last_answer: None,
            clock_skew: false,
        }
    }

    /// The answer to the latest report, if it is kept.
    pub fn answer(&self) -> Option<AuthorizationState> {
        self.last_answer.as_ref()?.answer(&self.usage)
    }

    /// Keeps `answer` as the answer to the latest report, computed for the current usage.
    pub fn set_answer(&mut self, answer: &AuthorizationState) {
        self.last_answer = Some(LastAnswer::new(answer, &self.usage));
    }
}

/// A certificate that must no longer be accepted (renewed, re-registered or deregistered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedCertificate {
    pub serial: String,
    pub instance: super::ids::InstanceId,
    pub revoked_at: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub reason: String,
}

/// A Cisco RUM report accepted through the CSLU endpoint, kept raw for relay upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RumRecord {
    pub report_id: u64,
    pub account: AccountId,
    pub instance: super::ids::InstanceId,
    pub udi: Udi,
    pub entitlement_tag: String,
    pub count: u64,
    pub received_at: OffsetDateTime,
    pub raw: String,
}

/// An entitlement tag as the catalog holds it: shared, since a million devices use the same
/// hundred tags (the catalog interns them when it loads a device). Stored as a string.
pub type Tag = std::sync::Arc<str>;

/// A text many records repeat (a device's product name and software version), shared like a
/// [`Tag`]. Stored as a string.
pub type Text = std::sync::Arc<str>;
