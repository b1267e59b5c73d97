//! Tests of the pure domain layer. Every test drives the catalog the way the real caller does:
//! an operation answers with a [`Change`], and the test applies it with [`Catalog::apply`]
//! (through [`Commit`]) before the next operation. Time is a fixed instant, never the clock.

mod access;
mod accounts;
mod answer;
mod cisco_acks;
mod cisco_devices;
mod compliance;
mod device_search;
mod devices;
mod events;
mod ids;
mod licenses;
mod load;
mod props;
mod reservations;
mod rum;
mod scope;
mod sync;
mod sync_apply;
mod sync_outbox;
mod sync_ownership;
mod tokens;
mod tree;
mod units;

use std::collections::BTreeSet;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;

/// The instant every test runs at.
const NOW: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

/// Where the tests' new entities get their ids: a sequence, as the domain never draws random
/// ones. Shared by the tests of one run, so no two entities get the same id.
static IDS: SequentialIds = SequentialIds::new();

fn admin() -> Principal {
    Principal::system("test-admin")
}

/// Commits accepted changes the way the real caller does: the operation answered with a
/// [`Change`] (which the store would make durable), and the change is applied to the catalog.
/// A method rather than a function so that `c.commit(c.create_va(..))` borrows `c` in turn.
trait Commit {
    /// Applies the change and returns the value the operation answered with.
    fn commit<T>(&mut self, r: Result<(Change, T), DomainError>) -> T;
    /// Applies the change of an operation that answers only with a change, and returns it.
    fn commit_change(&mut self, r: Result<Change, DomainError>) -> Change;
}

impl Commit for Catalog {
    #[track_caller]
    fn commit<T>(&mut self, r: Result<(Change, T), DomainError>) -> T {
        let (change, value) = r.unwrap_or_else(|e| panic!("operation refused: {e:?}"));
        self.apply(&change);
        value
    }

    #[track_caller]
    fn commit_change(&mut self, r: Result<Change, DomainError>) -> Change {
        let change = r.unwrap_or_else(|e| panic!("operation refused: {e:?}"));
        self.apply(&change);
        change
    }
}

/// The audit event of an accepted operator action; every one has exactly one.
#[track_caller]
fn ev(change: &Change) -> &NewEvent {
    change
        .event
        .as_ref()
        .expect("an operator action carries an audit event")
}

/// The error of an operation that must be refused.
#[track_caller]
fn refused<T: std::fmt::Debug>(r: Result<T, DomainError>) -> DomainError {
    match r {
        Ok(v) => panic!("operation accepted but should have been refused: {v:?}"),
        Err(e) => e,
    }
}

/// A catalog holding one active account.
fn with_account(name: &str, domain: &str) -> (Catalog, Account) {
    let mut c = Catalog::new();
    let a = c.commit(c.create_account(&admin(), name, domain, NOW, &IDS));
    (c, a)
}

fn add_account(c: &mut Catalog, name: &str, domain: &str) -> Account {
    c.commit(c.create_account(&admin(), name, domain, NOW, &IDS))
}

/// Creates a VA as system administrator and returns its id.
fn mk_va(c: &mut Catalog, parent: VaId, name: &str) -> VaId {
    c.commit(c.create_va(&admin(), parent, name, "", NOW, &IDS))
        .id
}

/// Creates `n` VAs nested one under the other below `parent`; returns them top first.
fn chain(c: &mut Catalog, parent: VaId, prefix: &str, n: usize) -> Vec<VaId> {
    let mut out = Vec::new();
    let mut at = parent;
    for i in 0..n {
        at = mk_va(c, at, &format!("{prefix}{i}"));
        out.push(at);
    }
    out
}

fn spec(tag: &str, quantity: i64, kind: LicenseKind) -> LicenseSpec {
    LicenseSpec {
        entitlement_tag: tag.to_string(),
        display_name: String::new(),
        quantity,
        kind,
        export_controlled: false,
        source: LicenseSource::Manual,
        order_ref: None,
        labels: BTreeSet::new(),
    }
}

fn perpetual(tag: &str, quantity: i64) -> LicenseSpec {
    spec(tag, quantity, LicenseKind::Perpetual)
}

/// A term valid at [`NOW`].
fn active_term() -> LicenseKind {
    LicenseKind::Term {
        start: datetime!(2025-01-01 0:00 UTC),
        end: datetime!(2027-01-01 0:00 UTC),
    }
}

/// A term that ended before [`NOW`].
fn expired_term() -> LicenseKind {
    LicenseKind::Term {
        start: datetime!(2024-01-01 0:00 UTC),
        end: datetime!(2025-06-01 0:00 UTC),
    }
}

/// A term that starts after [`NOW`].
fn future_term() -> LicenseKind {
    LicenseKind::Term {
        start: datetime!(2026-06-01 0:00 UTC),
        end: datetime!(2027-06-01 0:00 UTC),
    }
}

fn add_lic(c: &mut Catalog, va: VaId, s: LicenseSpec) -> License {
    c.commit(c.add_license(&admin(), va, s, NOW, &IDS))
}

fn token_spec() -> TokenSpec {
    TokenSpec {
        description: "lab routers".into(),
        expires_in_days: None,
        max_uses: None,
        allow_export_controlled: false,
    }
}

/// A distinct fake SHA-256 per `n`.
fn hash(n: u8) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[0] = n;
    h[31] = 0xa5;
    h
}

/// Creates a user holding `grants`, gives them an API token with secret hash `h`, and returns
/// the principal that token authenticates as.
fn user_with(c: &mut Catalog, name: &str, grants: &[RoleGrant], h: [u8; 32]) -> Principal {
    let u = c.commit(c.create_user(&admin(), name, NOW, &IDS));
    for g in grants {
        c.commit(c.grant_role(&admin(), u.id, *g));
    }
    c.commit(c.create_api_token(&admin(), u.id, "cli", None, h, NOW, &IDS));
    c.authenticate(&h, NOW)
        .expect("a fresh API token authenticates")
}

fn grant(role: Role, scope: Scope) -> RoleGrant {
    RoleGrant { role, scope }
}

/// The quantity of `tag` in `va` (all entries, expired or not).
fn qty_in(c: &Catalog, va: VaId, tag: &str) -> u64 {
    c.licenses_in(va)
        .filter(|l| l.entitlement_tag == tag)
        .map(|l| l.quantity)
        .sum()
}

/// Everything observable about one account's tree, licenses and tokens, for before/after
/// comparisons.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    vas: Vec<(VaId, Option<VaId>, String, String, usize)>,
    licenses: Vec<License>,
    tokens: Vec<RegistrationToken>,
}

fn snapshot(c: &Catalog, account: &Account) -> Snapshot {
    let mut vas: Vec<_> = c
        .subtree(account.default_va)
        .into_iter()
        .map(|v| {
            let va = c.va(v).expect("subtree lists existing VAs");
            (v, va.parent, va.name.clone(), c.va_path(v), c.level(v))
        })
        .collect();
    vas.sort();
    let mut licenses: Vec<License> = vas
        .iter()
        .flat_map(|(v, ..)| c.licenses_in(*v).cloned())
        .collect();
    licenses.sort_by_key(|l| l.id);
    let mut tokens: Vec<RegistrationToken> = vas
        .iter()
        .flat_map(|(v, ..)| c.tokens_in(*v).cloned())
        .collect();
    tokens.sort_by_key(|t| t.id);
    Snapshot {
        vas,
        licenses,
        tokens,
    }
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// Registers a device in `va` (through a token of its own) and returns its id.
fn register(c: &mut Catalog, va: VaId, n: u8) -> InstanceId {
    c.commit(c.create_token(&admin(), va, token_spec(), hash(100 + n), NOW, &IDS));
    register_with(c, hash(100 + n), n)
}

/// Registers device `P:S{n}` (certificate serial `C{n}`) with the token hashed `token` and
/// returns its id.
fn register_with(c: &mut Catalog, token: [u8; 32], n: u8) -> InstanceId {
    let r = Registration {
        token_hash: token,
        udi: Udi {
            pid: "P".into(),
            serial: format!("S{n}").into(),
        },
        hostname: "h".into(),
        product: "p".into(),
        version: "v".into(),
        force: false,
    };
    let (change, i) = c
        .register_device(&r, NOW, &IDS, |_| {
            Ok(IssuedIdentity {
                serial: format!("C{n}"),
                not_after: NOW + Duration::days(365),
            })
        })
        .expect("registered");
    c.apply(&change);
    i.id
}
