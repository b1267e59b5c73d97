//! Accounts and Virtual Accounts: creation, moves, and how they are shown.

use serde::{Deserialize, Serialize};

use super::Time;
use crate::domain::{self, Catalog};

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
