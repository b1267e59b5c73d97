//! The audit log: every change produces exactly one event, written in the same store
//! transaction as the change itself.

use time::OffsetDateTime;

use super::ids::{AccountId, VaId};
use super::model::Event;

/// An event before it is numbered: what the operation did, to what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub action: &'static str,
    pub subject: String,
    pub account: Option<AccountId>,
    pub va: Option<VaId>,
    pub device: Option<String>,
    pub details: Vec<(String, String)>,
}

impl NewEvent {
    pub fn new(action: &'static str, subject: impl ToString) -> Self {
        NewEvent {
            action,
            subject: subject.to_string(),
            account: None,
            va: None,
            device: None,
            details: Vec::new(),
        }
    }

    pub fn account(mut self, account: AccountId) -> Self {
        self.account = Some(account);
        self
    }

    pub fn va(mut self, va: VaId) -> Self {
        self.va = Some(va);
        self
    }

    pub fn device(mut self, device: impl ToString) -> Self {
        self.device = Some(device.to_string());
        self
    }

    pub fn detail(mut self, key: &str, value: impl ToString) -> Self {
        self.details.push((key.to_string(), value.to_string()));
        self
    }

    /// A detail that is a time, in RFC 3339 with whole seconds like every time the CLI shows
    /// (a time's `Display` is not RFC 3339).
    pub fn detail_time(self, key: &str, t: OffsetDateTime) -> Self {
        let t = t.replace_nanosecond(0).unwrap_or(t);
        let text = t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string());
        self.detail(key, text)
    }

    /// Numbers the event and stamps it with its actor and time.
    pub fn into_event(self, seq: u64, at: OffsetDateTime, actor: &str) -> Event {
        Event {
            seq,
            at,
            actor: actor.to_string(),
            action: self.action.to_string(),
            subject: self.subject,
            account: self.account,
            va: self.va,
            device: self.device,
            details: self.details,
        }
    }
}

/// Which events a query wants. Every field narrows the result; `None` means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub account: Option<AccountId>,
    pub va: Option<VaId>,
    pub device: Option<String>,
    pub action: Option<String>,
}

impl EventFilter {
    pub fn matches(&self, e: &Event) -> bool {
        self.since.is_none_or(|t| e.at >= t)
            && self.until.is_none_or(|t| e.at < t)
            && self.account.is_none_or(|a| e.account == Some(a))
            && self.va.is_none_or(|v| e.va == Some(v))
            && self
                .device
                .as_ref()
                .is_none_or(|d| e.device.as_ref() == Some(d))
            && self
                .action
                .as_ref()
                .is_none_or(|a| e.action == *a || e.action.starts_with(&format!("{a}.")))
    }
}
