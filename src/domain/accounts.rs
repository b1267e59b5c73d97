//! Accounts and the Virtual Account tree (SPEC §2).

use time::OffsetDateTime;

use super::access::{Access, Principal};
use super::catalog::{Catalog, Change, Record, Removal};
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{AccountId, IdSource, VaId};
use super::model::{Account, AccountStatus, VirtualAccount};

/// The deepest level a VA may sit at; the Default VA is level 1.
pub const MAX_VA_DEPTH: usize = 10;

/// The name of the VA every account is created with.
pub const DEFAULT_VA_NAME: &str = "Default";

/// Checks a Smart Account domain identifier: a lowercase DNS name of at least two labels.
pub fn validate_domain(domain: &str) -> Result<(), DomainError> {
    let bad = |why: &str| {
        Err(DomainError::Invalid(format!(
            "domain `{domain}` is not a valid Smart Account domain: {why} (expected a lowercase \
             DNS name such as `example.com` or `emea.example.com`)"
        )))
    };
    if domain.is_empty() || domain.len() > 253 {
        return bad("it must be 1 to 253 characters long");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return bad("it needs at least two labels");
    }
    for label in labels {
        if label.is_empty() || label.len() > 63 {
            return bad("each label must be 1 to 63 characters long");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return bad("only lowercase letters, digits, `-` and `.` are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label cannot start or end with `-`");
        }
    }
    Ok(())
}

fn validate_name(what: &str, name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(DomainError::Invalid(format!(
            "{what} name `{name}` must be 1 to 128 printable characters"
        )));
    }
    if name.contains('/') {
        return Err(DomainError::Invalid(format!(
            "{what} name `{name}` cannot contain `/` (it separates VA paths)"
        )));
    }
    Ok(())
}

impl Catalog {
    /// Creates an account with its Default VA. An account whose domain is a prefixed form of an
    /// existing account's domain (`abc.example.com` beside `example.com`) is a separate account
    /// and starts `pending` until approved.
    pub fn create_account(
        &self,
        p: &Principal,
        name: &str,
        domain: &str,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(Change, Account), DomainError> {
        self.check_system(p)?;
        validate_name("account", name)?;
        validate_domain(domain)?;
        if self.tree.accounts.values().any(|a| a.name == name) {
            return Err(DomainError::Conflict(format!(
                "an account named `{name}` already exists; account names are unique"
            )));
        }
        if let Some(a) = self.tree.accounts.values().find(|a| a.domain == domain) {
            return Err(DomainError::Conflict(format!(
                "domain `{domain}` already belongs to account `{}`; use a prefixed domain such \
                 as `abc.{domain}` for a separate account",
                a.name
            )));
        }
        let prefixed = self
            .tree
            .accounts
            .values()
            .any(|a| domain.ends_with(&format!(".{}", a.domain)));
        let account = Account {
            id: AccountId::fresh(ids),
            name: name.to_string(),
            domain: domain.to_string(),
            status: if prefixed {
                AccountStatus::Pending
            } else {
                AccountStatus::Active
            },
            created_at: now,
            default_va: VaId::fresh(ids),
        };
        let default = VirtualAccount {
            id: account.default_va,
            account: account.id,
            name: DEFAULT_VA_NAME.to_string(),
            description: String::new(),
            parent: None,
            created_at: now,
        };
        let event = NewEvent::new("account.create", name)
            .account(account.id)
            .detail("domain", domain)
            .detail("status", account.status.as_str());
        let change = Change::new(event)
            .put(Record::Account(account.clone()))
            .put(Record::Va(default));
        Ok((change, account))
    }

    /// Approves a pending account.
    pub fn approve_account(
        &self,
        p: &Principal,
        account: AccountId,
    ) -> Result<(Change, Account), DomainError> {
        self.check_system(p)?;
        let mut a = self
            .tree
            .accounts
            .get(&account)
            .cloned()
            .ok_or_else(|| DomainError::not_found("account", account))?;
        if a.status == AccountStatus::Active {
            return Err(DomainError::Refused(format!(
                "account `{}` is already active",
                a.name
            )));
        }
        a.status = AccountStatus::Active;
        let event = NewEvent::new("account.approve", &a.name).account(a.id);
        Ok((Change::new(event).put(Record::Account(a.clone())), a))
    }

    /// Creates a VA under `parent`, refusing a duplicate sibling name and level 11.
    pub fn create_va(
        &self,
        p: &Principal,
        parent: VaId,
        name: &str,
        description: &str,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(Change, VirtualAccount), DomainError> {
        let parent_va = self.check_va(p, parent, Access::Write)?;
        self.check_not_upstream_owned(parent)?;
        validate_name("virtual account", name)?;
        self.check_sibling_name(parent, name, None)?;
        let level = self.level(parent) + 1;
        if level > MAX_VA_DEPTH {
            return Err(DomainError::Refused(format!(
                "cannot create `{name}` under `{}`: it would sit at level {level}, and virtual \
                 accounts nest at most {MAX_VA_DEPTH} levels deep (the Default VA is level 1)",
                self.va_path(parent)
            )));
        }
        let va = VirtualAccount {
            id: VaId::fresh(ids),
            account: parent_va.account,
            name: name.to_string(),
            description: description.to_string(),
            parent: Some(parent),
            created_at: now,
        };
        let event = NewEvent::new("va.create", format!("{}/{name}", self.va_path(parent)))
            .account(va.account)
            .va(va.id)
            .detail("parent", parent);
        Ok((Change::new(event).put(Record::Va(va.clone())), va))
    }

    fn check_sibling_name(
        &self,
        parent: VaId,
        name: &str,
        except: Option<VaId>,
    ) -> Result<(), DomainError> {
        if self
            .children(parent)
            .any(|c| c.name == name && Some(c.id) != except)
        {
            return Err(DomainError::Conflict(format!(
                "`{}` already has a virtual account named `{name}`; sibling names are unique",
                self.va_path(parent)
            )));
        }
        Ok(())
    }

    /// Moves a VA (with its subtree) under a new parent of the same account.
    pub fn move_va(
        &self,
        p: &Principal,
        va: VaId,
        new_parent: VaId,
    ) -> Result<(Change, VirtualAccount), DomainError> {
        let current = self.check_va(p, va, Access::Write)?.clone();
        let target = self.check_va(p, new_parent, Access::Write)?;
        self.check_not_upstream_owned(va)?;
        self.check_not_upstream_owned(new_parent)?;
        // A child mirrors its dedicated subtree by path: moving the subtree, or anything in or
        // into it, would make the next response name VAs the child cannot place.
        if let Some(c) = self.child_satellites().find(|c| {
            self.in_subtree(c.root, va)
                || self.in_subtree(va, c.root)
                || self.in_subtree(new_parent, c.root)
        }) {
            return Err(DomainError::Refused(format!(
                "`{}` is (or is part of) the subtree dedicated to child satellite `{}`, which \
                 mirrors it by path; it cannot be moved while the child is bound",
                self.va_path(va),
                c.name
            )));
        }
        let Some(old_parent) = current.parent else {
            return Err(DomainError::Refused(
                "the Default virtual account is the root of its account and cannot be moved".into(),
            ));
        };
        // A VA-scoped administrator may not move the root of their own grant away.
        self.check_va(p, old_parent, Access::Write)?;
        if target.account != current.account {
            return Err(DomainError::Refused(
                "a virtual account cannot move to another account; licenses never move \
                 between Smart Accounts"
                    .into(),
            ));
        }
        if self.in_subtree(new_parent, va) {
            return Err(DomainError::Refused(format!(
                "cannot move `{}` under `{}`: that is inside its own subtree",
                self.va_path(va),
                self.va_path(new_parent)
            )));
        }
        self.check_sibling_name(new_parent, &current.name, Some(va))?;
        let deepest = self.level(new_parent) + self.subtree_height(va);
        if deepest > MAX_VA_DEPTH {
            return Err(DomainError::Refused(format!(
                "cannot move `{}` under `{}`: its subtree would reach level {deepest}, and \
                 virtual accounts nest at most {MAX_VA_DEPTH} levels deep",
                self.va_path(va),
                self.va_path(new_parent)
            )));
        }
        let mut moved = current;
        moved.parent = Some(new_parent);
        let event = NewEvent::new("va.move", self.va_path(va))
            .account(moved.account)
            .va(va)
            .detail("from", self.va_path(old_parent))
            .detail("to", self.va_path(new_parent));
        Ok((Change::new(event).put(Record::Va(moved.clone())), moved))
    }

    /// Deletes an empty VA: no child VAs, no licenses, no usable tokens, no devices
    /// (`devices` is the number registered in it, which the device registry knows).
    /// Tokens that can no longer be used are deleted with it.
    pub fn delete_va(
        &self,
        p: &Principal,
        va: VaId,
        devices: usize,
        now: OffsetDateTime,
    ) -> Result<Change, DomainError> {
        let current = self.check_va(p, va, Access::Write)?;
        let Some(parent) = current.parent else {
            return Err(DomainError::Refused(
                "the Default virtual account cannot be deleted".into(),
            ));
        };
        self.check_va(p, parent, Access::Write)?;
        self.check_not_upstream_owned(va)?;
        if let Some(c) = self
            .child_satellites()
            .find(|c| self.in_subtree(c.root, va))
        {
            return Err(DomainError::Refused(format!(
                "virtual account `{}` is dedicated to child satellite `{}`; it cannot be deleted                  while the child is bound",
                self.va_path(c.root),
                c.name
            )));
        }
        let path = self.va_path(va);
        let not_empty = |what: String| {
            Err(DomainError::Refused(format!(
                "virtual account `{path}` is not empty: it holds {what}; move or remove them first"
            )))
        };
        let children = self.children(va).count();
        if children > 0 {
            return not_empty(format!("{children} child virtual account(s)"));
        }
        let licenses = self.licenses_in(va).count();
        if licenses > 0 {
            return not_empty(format!("{licenses} license pool entr(ies)"));
        }
        let devices = devices.max(self.instance_count_in(va));
        if devices > 0 {
            return not_empty(format!("{devices} product instance(s)"));
        }
        if self.has_reservations_in(va) {
            return not_empty(
                "license reservation(s) of disconnected devices (return or cancel them)".into(),
            );
        }
        let usable = self
            .tokens_in(va)
            .filter(|t| t.state(now).is_usable())
            .count();
        if usable > 0 {
            return not_empty(format!(
                "{usable} active registration token(s) (revoke them)"
            ));
        }
        let mut change = Change::new(
            NewEvent::new("va.delete", &path)
                .account(current.account)
                .va(va),
        )
        .remove(Removal::Va(va));
        for t in self.tokens_in(va) {
            change = change.remove(Removal::Token(t.id));
        }
        // Roles scoped to the VA go with it, so no grant points at nothing.
        for u in self.users() {
            let scoped = |g: &super::model::RoleGrant| g.scope == super::model::Scope::Va(va);
            if u.grants.iter().any(scoped) {
                let mut kept = u.clone();
                kept.grants.retain(|g| !scoped(g));
                change = change.put(super::catalog::Record::User(kept));
            }
        }
        Ok(change)
    }
}
