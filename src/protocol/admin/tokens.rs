//! Registration tokens, and the one answer that shows a new secret.

use serde::{Deserialize, Serialize};

use super::Time;
use crate::domain::{self, Catalog, TokenState};

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
