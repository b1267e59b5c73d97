//! What the console's pages of accounts, licenses, tokens and users share: the VAs a user may
//! read in tree order (for the tree and for every VA field of a form), reading a form's
//! fields with errors that name the field, and the one-time display of a new secret.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use axum::http::StatusCode;
use time::{Duration, OffsetDateTime};

use super::guard::Fields;
use crate::domain::{Catalog, Principal, VaId};
use crate::server::error::ApiError;

/// A page narrowed to one VA (`?va=`), or not.
#[derive(serde::Deserialize)]
pub struct Narrow {
    pub va: Option<String>,
}

impl Narrow {
    /// The VA named, if any (an empty field names none).
    pub fn va(&self) -> Option<&str> {
        self.va.as_deref().filter(|v| !v.is_empty())
    }
}

/// The VAs a page shows: the one `va` names (not found outside `p`'s scope), or every VA `p`
/// may read, in tree order.
pub fn page_scope(c: &Catalog, p: &Principal, va: Option<&str>) -> Result<Vec<VaId>, ApiError> {
    Ok(match va {
        Some(r) => vec![crate::server::admin::va_ref(c, p, r)?],
        None => visible_tree(c, p, &account_roots(c, p))
            .into_iter()
            .map(|v| v.id)
            .collect(),
    })
}

/// A VA as a form offers it: its id (the value sent) and its path (what people read).
pub struct VaOption {
    pub id: String,
    pub path: String,
}

/// A VA `p` may read, in tree order, with its depth among the VAs `p` may read (a va-user's
/// VA is a root of their tree).
pub struct Visible {
    pub id: VaId,
    pub depth: usize,
}

/// The VAs of `roots`' trees that `p` may read, parents before children, siblings by name.
pub fn visible_tree(c: &Catalog, p: &Principal, roots: &[VaId]) -> Vec<Visible> {
    fn walk(c: &Catalog, p: &Principal, va: VaId, depth: usize, out: &mut Vec<Visible>) {
        let readable = c.va_access(p, va).is_some();
        if readable {
            out.push(Visible { id: va, depth });
        }
        let mut children: Vec<_> = c.children(va).collect();
        children.sort_by(|a, b| a.name.cmp(&b.name));
        for child in children {
            walk(c, p, child.id, depth + usize::from(readable), out);
        }
    }
    let mut out = Vec::new();
    for root in roots {
        walk(c, p, *root, 0, &mut out);
    }
    out
}

/// The Default VAs of the accounts `p` sees, by account name.
pub fn account_roots(c: &Catalog, p: &Principal) -> Vec<VaId> {
    let mut accounts: Vec<_> = c
        .accounts()
        .filter(|a| c.account_visible(p, a.id))
        .collect();
    accounts.sort_by(|a, b| a.name.cmp(&b.name));
    accounts.iter().map(|a| a.default_va).collect()
}

/// Every VA `p` may read, as form options in tree order.
pub fn va_options(c: &Catalog, p: &Principal) -> Vec<VaOption> {
    visible_tree(c, p, &account_roots(c, p))
        .into_iter()
        .map(|v| VaOption {
            id: v.id.to_string(),
            path: c.va_path(v.id),
        })
        .collect()
}

/// A form field's text, trimmed; an absent field is empty.
pub fn text<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).unwrap_or("").trim()
}

/// An optional number field: empty is `None`, anything else must parse.
pub fn number<T: FromStr>(fields: &Fields, name: &str, label: &str) -> Result<Option<T>, ApiError> {
    let raw = text(fields, name);
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{label} must be a whole number, not `{raw}`"),
        )
    })
}

/// A number field that must be given.
pub fn required<T: FromStr>(fields: &Fields, name: &str, label: &str) -> Result<T, ApiError> {
    number(fields, name, label)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{label} is required"),
        )
    })
}

/// What a refused form sent, to fill the form in again with it (without its CSRF token).
#[derive(Default)]
pub struct Sent(Vec<(String, String)>);

impl Sent {
    pub fn of(fields: &Fields) -> Sent {
        Sent(
            fields
                .0
                .iter()
                .filter(|(k, _)| k != "csrf")
                .cloned()
                .collect(),
        )
    }

    /// The value sent for `name`; empty if none.
    pub fn value(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Whether a checkbox `name` was ticked.
    pub fn ticked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// How long a new secret waits to be shown once: the redirect after the form is followed at
/// once, so this only bounds what an abandoned redirect leaves in memory.
const SHOWN_WITHIN: Duration = Duration::minutes(5);
/// The most secrets waiting to be shown at once; beyond that the oldest are dropped.
const MAX_WAITING: usize = 1024;

/// New secrets waiting to be shown once, in memory only. A form that creates a secret answers
/// with a redirect (so a reload does not create another) to a page that takes the secret from
/// here: the secret is never in a URL, and a reload of that page finds nothing.
#[derive(Debug, Default)]
pub struct ShownOnce {
    waiting: Mutex<HashMap<String, (String, OffsetDateTime)>>,
}

impl ShownOnce {
    /// Keeps `secret` for one showing under `key` (the session's and the object's).
    pub fn put(&self, key: String, secret: String, now: OffsetDateTime) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.retain(|_, (_, at)| now - *at < SHOWN_WITHIN);
        if waiting.len() >= MAX_WAITING
            && let Some(oldest) = waiting
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            waiting.remove(&oldest);
        }
        waiting.insert(key, (secret, now));
    }

    /// The secret under `key`, removed: it is shown this once.
    pub fn take(&self, key: &str, now: OffsetDateTime) -> Option<String> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting
            .remove(key)
            .filter(|(_, at)| now - *at < SHOWN_WITHIN)
            .map(|(secret, _)| secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_shown_once_and_not_after_its_time() {
        let shown = ShownOnce::default();
        let t = OffsetDateTime::UNIX_EPOCH;
        shown.put("a".into(), "s1".into(), t);
        assert_eq!(shown.take("a", t).as_deref(), Some("s1"));
        assert_eq!(shown.take("a", t), None);
        shown.put("b".into(), "s2".into(), t);
        assert_eq!(shown.take("b", t + SHOWN_WITHIN), None);
    }
}
