//! Operators, their role grants and their API tokens (SPEC §7).

use std::collections::BTreeSet;

use time::{Duration, OffsetDateTime};

use super::access::{Access, Principal};
use super::catalog::{Catalog, Change, Record, Removal};
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{ApiTokenId, IdSource, UserId};
use super::model::{ApiToken, Role, RoleGrant, Scope, User, UserPassword};

/// A step of signing in to the web console, each audited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleStep {
    Login,
    LoginFailed,
    Logout,
}

impl Catalog {
    pub fn create_user(
        &self,
        p: &Principal,
        name: &str,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(Change, User), DomainError> {
        self.check_system(p)?;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        {
            return Err(DomainError::Invalid(format!(
                "user name `{name}` must be 1 to 64 characters of letters, digits, `.`, `_`, `-`, `@`"
            )));
        }
        if self.credentials.users.values().any(|u| u.name == name) {
            return Err(DomainError::Conflict(format!(
                "a user named `{name}` already exists"
            )));
        }
        let user = User {
            id: UserId::fresh(ids),
            name: name.to_string(),
            grants: BTreeSet::new(),
            created_at: now,
        };
        let event = NewEvent::new("user.create", name);
        Ok((Change::new(event).put(Record::User(user.clone())), user))
    }

    /// Deletes a user together with their API tokens.
    pub fn delete_user(&self, p: &Principal, id: UserId) -> Result<Change, DomainError> {
        self.check_system(p)?;
        let user = self
            .credentials
            .users
            .get(&id)
            .ok_or_else(|| DomainError::not_found("user", id))?;
        let mut change =
            Change::new(NewEvent::new("user.delete", &user.name)).remove(Removal::User(id));
        for t in self.api_tokens_of(id) {
            change = change.remove(Removal::ApiToken(t.id));
        }
        if self.password_of(id).is_some() {
            change = change.remove(Removal::Password(id));
        }
        Ok(change)
    }

    /// Sets a user's console password, given as its argon2id PHC string (hashing is the
    /// caller's: it takes time and memory the domain does not spend). A user may set their own;
    /// a system administrator anyone's. Another user is "not found", as elsewhere.
    pub fn set_password(
        &self,
        p: &Principal,
        id: UserId,
        phc: String,
        now: OffsetDateTime,
    ) -> Result<Change, DomainError> {
        if p.user != Some(id) {
            self.check_system(p)
                .map_err(|_| DomainError::not_found("user", id))?;
        }
        let user = self
            .credentials
            .users
            .get(&id)
            .ok_or_else(|| DomainError::not_found("user", id))?;
        if !phc.starts_with("$argon2id$") {
            return Err(DomainError::Invalid(
                "a console password is stored as an argon2id PHC string".into(),
            ));
        }
        let event = NewEvent::new("user.passwd", &user.name);
        let record = UserPassword {
            user: id,
            phc,
            set_at: now,
        };
        Ok(Change::new(event).put(Record::Password(record)))
    }

    /// The principal a console session acts as: the user's grants as they are now, so a role
    /// revoked takes effect on the next page.
    pub fn console_principal(&self, id: UserId) -> Option<Principal> {
        let user = self.credentials.users.get(&id)?;
        Some(Principal {
            actor: format!("user:{}", user.name),
            user: Some(user.id),
            grants: user.grants.iter().copied().collect(),
        })
    }

    /// The audit event of a console sign-in step: it changes no record. `who` is the user's
    /// name, or a placeholder for a name that is not a user's, so that guessed names (perhaps
    /// a password typed in the wrong box) are not stored.
    pub fn console_event(&self, step: ConsoleStep, who: &str, source: &str) -> Change {
        let event = match step {
            ConsoleStep::Login => NewEvent::new("console.login", who),
            ConsoleStep::LoginFailed => NewEvent::new("console.login_failed", who),
            ConsoleStep::Logout => NewEvent::new("console.logout", who),
        };
        Change::new(event.detail("source", source))
    }

    /// Grants a role over a scope; the scope must fit the role and exist.
    pub fn grant_role(
        &self,
        p: &Principal,
        id: UserId,
        grant: RoleGrant,
    ) -> Result<(Change, User), DomainError> {
        self.check_system(p)?;
        let user = self
            .credentials
            .users
            .get(&id)
            .ok_or_else(|| DomainError::not_found("user", id))?;
        let (fits, subject) = match (grant.role, grant.scope) {
            (Role::SystemAdmin | Role::MetricsReader, Scope::System) => {
                (true, "satellite".to_string())
            }
            (Role::AccountAdmin | Role::AccountUser, Scope::Account(a)) => {
                let acc = self
                    .tree
                    .accounts
                    .get(&a)
                    .ok_or_else(|| DomainError::not_found("account", a))?;
                (true, format!("account {}", acc.name))
            }
            (Role::VaAdmin | Role::VaUser, Scope::Va(v)) => {
                if !self.tree.vas.contains_key(&v) {
                    return Err(DomainError::not_found("virtual account", v));
                }
                (true, format!("virtual account {}", self.va_path(v)))
            }
            _ => (false, String::new()),
        };
        if !fits {
            return Err(DomainError::Invalid(format!(
                "role {} does not apply to that scope: system-admin and metrics-reader take no \
                 scope, account-admin/account-user take --account, va-admin/va-user take --va",
                grant.role.as_str()
            )));
        }
        let mut updated = user.clone();
        if !updated.grants.insert(grant) {
            return Err(DomainError::Refused(format!(
                "user `{}` already holds {} on {subject}",
                user.name,
                grant.role.as_str()
            )));
        }
        let mut event = NewEvent::new("user.grant", &user.name)
            .detail("role", grant.role.as_str())
            .detail("scope", &subject);
        event = scope_tags(self, event, grant.scope);
        Ok((
            Change::new(event).put(Record::User(updated.clone())),
            updated,
        ))
    }

    pub fn revoke_role(
        &self,
        p: &Principal,
        id: UserId,
        grant: RoleGrant,
    ) -> Result<(Change, User), DomainError> {
        self.check_system(p)?;
        let user = self
            .credentials
            .users
            .get(&id)
            .ok_or_else(|| DomainError::not_found("user", id))?;
        let mut updated = user.clone();
        if !updated.grants.remove(&grant) {
            return Err(DomainError::Refused(format!(
                "user `{}` does not hold {} on that scope",
                user.name,
                grant.role.as_str()
            )));
        }
        let event = scope_tags(
            self,
            NewEvent::new("user.revoke", &user.name).detail("role", grant.role.as_str()),
            grant.scope,
        );
        Ok((
            Change::new(event).put(Record::User(updated.clone())),
            updated,
        ))
    }

    /// Creates an API token for `user`. A system-admin may create one for anybody; a user may
    /// create one for themselves.
    // The request's parts, then `now` and `ids`, the inputs every operation takes.
    #[allow(clippy::too_many_arguments)]
    pub fn create_api_token(
        &self,
        p: &Principal,
        user: UserId,
        description: &str,
        expires_in_days: Option<u32>,
        secret_hash: [u8; 32],
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(Change, ApiToken), DomainError> {
        if p.user != Some(user) {
            self.check_system(p)?;
        }
        let u = self
            .credentials
            .users
            .get(&user)
            .ok_or_else(|| DomainError::not_found("user", user))?;
        if expires_in_days == Some(0) {
            return Err(DomainError::Invalid(
                "API token expiry must be at least 1 day (omit it for no expiry)".into(),
            ));
        }
        let token = ApiToken {
            id: ApiTokenId::fresh(ids),
            user,
            description: description.to_string(),
            secret_hash,
            created_at: now,
            expires_at: expires_in_days.map(|d| now + Duration::days(i64::from(d))),
            revoked_at: None,
        };
        let event = NewEvent::new("api_token.create", token.id).detail("user", &u.name);
        Ok((
            Change::new(event).put(Record::ApiToken(token.clone())),
            token,
        ))
    }

    pub fn revoke_api_token(
        &self,
        p: &Principal,
        id: ApiTokenId,
        now: OffsetDateTime,
    ) -> Result<Change, DomainError> {
        let t = self
            .credentials
            .api_tokens
            .get(&id)
            .ok_or_else(|| DomainError::not_found("API token", id))?;
        if p.user != Some(t.user) {
            self.check_system(p)
                .map_err(|_| DomainError::not_found("API token", id))?;
        }
        if t.revoked_at.is_some() {
            return Err(DomainError::Refused(format!(
                "API token `{id}` is already revoked"
            )));
        }
        let mut revoked = t.clone();
        revoked.revoked_at = Some(now);
        let event = NewEvent::new("api_token.revoke", id);
        Ok(Change::new(event).put(Record::ApiToken(revoked)))
    }

    /// The principal behind a bearer token, if the token is known and usable.
    pub fn authenticate(&self, secret_hash: &[u8; 32], now: OffsetDateTime) -> Option<Principal> {
        let token = self.api_token_by_hash(secret_hash)?;
        if !token.is_usable_at(now) {
            return None;
        }
        let user = self.credentials.users.get(&token.user)?;
        Some(Principal {
            actor: format!("user:{}", user.name),
            user: Some(user.id),
            grants: user.grants.iter().copied().collect(),
        })
    }

    /// Whether `p` may read events about `account`/`va` (system events need system-admin).
    pub fn may_read_event(&self, p: &Principal, e: &super::model::Event) -> bool {
        if p.is_system_admin() {
            return true;
        }
        match (e.va, e.account) {
            (Some(va), _) if self.tree.vas.contains_key(&va) => {
                self.va_access(p, va) >= Some(Access::Read)
            }
            (_, Some(a)) => self.account_access(p, a).is_some(),
            _ => false,
        }
    }
}

fn scope_tags(c: &Catalog, event: NewEvent, scope: Scope) -> NewEvent {
    match scope {
        Scope::System => event,
        Scope::Account(a) => event.account(a),
        Scope::Va(v) => match c.va(v) {
            Some(va) => event.account(va.account).va(v),
            None => event.va(v),
        },
    }
}
