//! The audit log: one event per operator action or device lifecycle change, and its query.

use serde::{Deserialize, Serialize};

use super::Time;
use crate::domain;

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
