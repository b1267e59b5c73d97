//! Registration tokens (SPEC §2): the secret a device presents once to join a VA.

use time::{Duration, OffsetDateTime};

use super::access::{Access, Principal};
use super::catalog::{Catalog, Change, Record};
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{IdSource, TokenId, VaId};
use super::model::RegistrationToken;

/// The shortest and longest lifetimes a token may be given, in days.
pub const TOKEN_DAYS: std::ops::RangeInclusive<u32> = 1..=365;
/// The lifetime of a token when none is asked for.
pub const DEFAULT_TOKEN_DAYS: u32 = 30;

/// What an operator asks for when creating a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSpec {
    pub description: String,
    pub expires_in_days: Option<u32>,
    pub max_uses: Option<u32>,
    pub allow_export_controlled: bool,
}

/// Where a token stands, worst first: a revoked token stays revoked even after it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
    Exhausted,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
            TokenState::Exhausted => "exhausted",
        }
    }

    pub fn is_usable(self) -> bool {
        self == TokenState::Active
    }
}

impl RegistrationToken {
    pub fn state(&self, now: OffsetDateTime) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if now >= self.expires_at {
            TokenState::Expired
        } else if self.max_uses.is_some_and(|m| self.uses >= m) {
            TokenState::Exhausted
        } else {
            TokenState::Active
        }
    }
}

impl Catalog {
    /// Creates a token for `va`. `secret_hash` is the SHA-256 of the secret the caller generated
    /// and will show once; the secret itself never reaches the domain.
    pub fn create_token(
        &self,
        p: &Principal,
        va: VaId,
        spec: TokenSpec,
        secret_hash: [u8; 32],
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(Change, RegistrationToken), DomainError> {
        let v = self.check_va(p, va, Access::Write)?;
        self.check_not_dedicated(va)?;
        let days = spec.expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
        if !TOKEN_DAYS.contains(&days) {
            return Err(DomainError::Invalid(format!(
                "token expiry of {days} days is out of range: tokens expire after 1 to 365 days \
                 (default {DEFAULT_TOKEN_DAYS})"
            )));
        }
        if spec.max_uses == Some(0) {
            return Err(DomainError::Invalid(
                "max uses must be at least 1 (omit it for a token without a use limit)".into(),
            ));
        }
        if spec.description.len() > 512 {
            return Err(DomainError::Invalid(
                "token description is longer than 512 characters".into(),
            ));
        }
        if self.credentials.tokens_by_hash.contains_key(&secret_hash) {
            return Err(DomainError::Conflict(
                "token secret collision; retry".into(),
            ));
        }
        let token = RegistrationToken {
            id: TokenId::fresh(ids),
            account: v.account,
            va,
            description: spec.description,
            secret_hash,
            created_at: now,
            expires_at: now + Duration::days(i64::from(days)),
            max_uses: spec.max_uses,
            uses: 0,
            allow_export_controlled: spec.allow_export_controlled,
            revoked_at: None,
            created_by: p.actor.clone(),
        };
        let mut event = NewEvent::new("token.create", token.id)
            .account(v.account)
            .va(va)
            .detail("expires_in_days", days)
            .detail("allow_export_controlled", token.allow_export_controlled);
        if let Some(m) = token.max_uses {
            event = event.detail("max_uses", m);
        }
        Ok((Change::new(event).put(Record::Token(token.clone())), token))
    }

    /// Revokes a token; devices already registered with it stay registered.
    pub fn revoke_token(
        &self,
        p: &Principal,
        id: TokenId,
        now: OffsetDateTime,
    ) -> Result<(Change, RegistrationToken), DomainError> {
        let token = self
            .credentials
            .tokens
            .get(&id)
            .ok_or_else(|| DomainError::not_found("token", id))?;
        self.check_va(p, token.va, Access::Read)
            .map_err(|_| DomainError::not_found("token", id))?;
        self.check_va(p, token.va, Access::Write)?;
        if token.revoked_at.is_some() {
            return Err(DomainError::Refused(format!(
                "token `{id}` is already revoked"
            )));
        }
        let mut revoked = token.clone();
        revoked.revoked_at = Some(now);
        let event = NewEvent::new("token.revoke", id)
            .account(token.account)
            .va(token.va);
        Ok((
            Change::new(event).put(Record::Token(revoked.clone())),
            revoked,
        ))
    }

    /// Finds the token a device presents and checks it can register one more device.
    pub fn usable_token(
        &self,
        secret_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<&RegistrationToken, DomainError> {
        let token = self
            .token_by_hash(secret_hash)
            .ok_or_else(|| DomainError::not_found("token", "presented"))?;
        match token.state(now) {
            TokenState::Active => Ok(token),
            state => Err(DomainError::Refused(format!(
                "registration token `{}` is {}",
                token.id,
                state.as_str()
            ))),
        }
    }
}
