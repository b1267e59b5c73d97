//! Users, their role grants, and API tokens.

use serde::{Deserialize, Serialize};

use super::Time;
use crate::domain::{self, Catalog};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateUser {
    pub name: String,
}

/// The shortest console password accepted, in characters: long passphrases are the point,
/// not complexity rules.
pub const PASSWORD_MIN_LENGTH: usize = 12;
/// The longest console password accepted, in bytes, so hashing is bounded before it starts.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// `POST /v1/users/{user}/password`: a new console password, sent over the admin socket or
/// HTTPS only; the satellite keeps its argon2id hash.
#[derive(Clone, Serialize, Deserialize)]
pub struct SetPassword {
    pub password: String,
}

impl std::fmt::Debug for SetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPassword { .. }")
    }
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
