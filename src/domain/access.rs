//! Role-based access at VA level (SPEC §7).
//!
//! Every admin call names its target (the system, an account, or a VA) and the access it
//! needs. A caller who may not read the target gets `NotFound`, exactly as if it did not exist,
//! so objects outside a user's scope cannot be discovered; a caller who may read but not write
//! gets `Forbidden`.

use super::catalog::Catalog;
use super::error::DomainError;
use super::ids::{AccountId, UserId, VaId};
use super::model::{Account, Role, RoleGrant, Scope, VirtualAccount};

/// The level of access an operation needs, ordered: `Write` implies `Read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

/// Who is calling: an actor name for the audit log and the grants it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub actor: String,
    pub user: Option<UserId>,
    pub grants: Vec<RoleGrant>,
}

impl Principal {
    /// The owner of the admin socket, or the daemon itself: system administrator.
    pub fn system(actor: impl Into<String>) -> Self {
        Principal {
            actor: actor.into(),
            user: None,
            grants: vec![RoleGrant {
                role: Role::SystemAdmin,
                scope: Scope::System,
            }],
        }
    }

    pub fn is_system_admin(&self) -> bool {
        self.grants.iter().any(|g| g.role == Role::SystemAdmin)
    }

    /// Whether `p` may read satellite-wide figures (`/metrics`): system administrators and
    /// holders of the metrics-reader role.
    pub fn may_read_metrics(&self) -> bool {
        self.grants
            .iter()
            .any(|g| matches!(g.role, Role::SystemAdmin | Role::MetricsReader))
    }
}

impl Catalog {
    /// The best access `p` has to `va`, if any.
    pub fn va_access(&self, p: &Principal, va: VaId) -> Option<Access> {
        let v = self.tree.vas.get(&va)?;
        p.grants
            .iter()
            .filter_map(|g| match (g.role, g.scope) {
                (Role::SystemAdmin, _) => Some(Access::Write),
                (Role::AccountAdmin, Scope::Account(a)) if a == v.account => Some(Access::Write),
                (Role::AccountUser, Scope::Account(a)) if a == v.account => Some(Access::Read),
                (Role::VaAdmin, Scope::Va(root)) if self.in_subtree(va, root) => {
                    Some(Access::Write)
                }
                (Role::VaUser, Scope::Va(root)) if self.in_subtree(va, root) => Some(Access::Read),
                _ => None,
            })
            .max()
    }

    /// The best access `p` has to the account as a whole (its VA tree, its purchases). Holders
    /// of VA-scoped roles see the account exists (`Read` is not granted to them here; they see
    /// it through [`Catalog::account_visible`]).
    pub fn account_access(&self, p: &Principal, account: AccountId) -> Option<Access> {
        p.grants
            .iter()
            .filter_map(|g| match (g.role, g.scope) {
                (Role::SystemAdmin, _) => Some(Access::Write),
                (Role::AccountAdmin, Scope::Account(a)) if a == account => Some(Access::Write),
                (Role::AccountUser, Scope::Account(a)) if a == account => Some(Access::Read),
                _ => None,
            })
            .max()
    }

    /// Whether `p` may learn that the account exists: any grant inside it.
    pub fn account_visible(&self, p: &Principal, account: AccountId) -> bool {
        self.account_access(p, account).is_some()
            || p.grants.iter().any(|g| match g.scope {
                Scope::Va(root) => self
                    .tree
                    .vas
                    .get(&root)
                    .is_some_and(|v| v.account == account),
                _ => false,
            })
    }

    /// The VA, if `p` has at least `need` on it; `NotFound` if `p` cannot read it.
    pub fn check_va(
        &self,
        p: &Principal,
        va: VaId,
        need: Access,
    ) -> Result<&VirtualAccount, DomainError> {
        match self.va_access(p, va) {
            None => Err(DomainError::not_found("virtual account", va)),
            Some(have) if have < need => Err(DomainError::Forbidden(format!(
                "{} may read but not change virtual account `{}`; ask an account-admin or a \
                 va-admin of it",
                p.actor,
                self.va_path(va)
            ))),
            Some(_) => Ok(&self.tree.vas[&va]),
        }
    }

    /// The account, if `p` has at least `need` on it; `NotFound` if it is invisible to `p`.
    pub fn check_account(
        &self,
        p: &Principal,
        account: AccountId,
        need: Access,
    ) -> Result<&Account, DomainError> {
        let found = self.tree.accounts.get(&account);
        match (found, self.account_access(p, account)) {
            (Some(a), Some(have)) if have >= need => Ok(a),
            (Some(a), _) if self.account_visible(p, account) => {
                Err(DomainError::Forbidden(format!(
                    "{} has no {} access to account `{}`; ask a system-admin for the \
                     account-admin role",
                    p.actor,
                    if need == Access::Write {
                        "write"
                    } else {
                        "account-wide read"
                    },
                    a.name
                )))
            }
            _ => Err(DomainError::not_found("account", account)),
        }
    }

    /// Satellite-wide operations (users, config, sync, backup) need `system-admin`.
    pub fn check_system(&self, p: &Principal) -> Result<(), DomainError> {
        if p.is_system_admin() {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "{} is not a system-admin; this operation is satellite-wide",
                p.actor
            )))
        }
    }
}
