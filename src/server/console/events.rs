//! The audit log, filtered by action, VA, device and time, newest first, in pages: the admin
//! API's event query (`App::events` with an `EventFilter`), so a user reads exactly the events
//! `satellite events` shows them, and a VA outside their scope is not found.

use std::time::Instant;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use time::OffsetDateTime;

use super::devices::{timed, when};
use super::guard::SignedIn;
use super::{refused, render};
use crate::domain::{Access, EventFilter};
use crate::server::admin::devices::{device_ref, vas_in_scope};
use crate::server::admin::{AdminCtx, va_ref};
use crate::server::error::ApiError;

/// Events per page.
const PAGE: usize = 50;

pub fn routes() -> Router<AdminCtx> {
    Router::new().route("/ui/events", get(events))
}

#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    va: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    /// Only events numbered below this: the next page.
    before: Option<u64>,
}

pub struct Line {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub va: String,
    pub details: String,
}

#[derive(askama::Template)]
#[template(path = "console/events.html")]
struct EventsPage {
    user: String,
    csrf: String,
    q: EventsQuery,
    vas: Vec<(String, String)>,
    lines: Vec<Line>,
    next: Option<String>,
}

pub async fn events(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Query(q): Query<EventsQuery>,
) -> Response {
    let started = Instant::now();
    let p = &me.principal;
    let read = ctx.app.read(|c| {
        let va = match q.va.as_str() {
            "" => None,
            v => {
                let id = va_ref(c, p, v)?;
                c.check_va(p, id, Access::Read)?;
                Some(id)
            }
        };
        // A device is named by its id or `PID:SERIAL`; a removed one only by its id.
        let device = match q.device.trim() {
            "" => None,
            d => Some(device_ref(c, p, d).map_or(d.to_string(), |id| id.to_string())),
        };
        let filter = EventFilter {
            since: time_field("since", &q.since)?,
            until: time_field("until", &q.until)?,
            account: None,
            va,
            device,
            action: (!q.action.trim().is_empty()).then(|| q.action.trim().to_string()),
        };
        let choices = vas_in_scope(c, p, None, None)?
            .into_iter()
            .map(|v| (v.to_string(), c.va_path(v)))
            .collect::<Vec<_>>();
        Ok::<_, ApiError>((filter, choices))
    });
    let (filter, vas) = match read {
        Ok(r) => r,
        Err(e) => return timed(started, refused(&e)),
    };
    let found = match ctx.app.events(p, &filter, q.before, PAGE) {
        Ok(found) => found,
        Err(e) => return timed(started, refused(&ApiError::from(e))),
    };
    let next = (found.len() == PAGE)
        .then(|| found.last().map(|e| next_query(&q, e.seq)))
        .flatten();
    let lines = ctx.app.read(|c| {
        found
            .into_iter()
            .map(|e| Line {
                seq: e.seq,
                at: when(e.at),
                va: e.va.map(|v| c.va_path(v)).unwrap_or_default(),
                details: e
                    .details
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                actor: e.actor,
                action: e.action,
                subject: e.subject,
            })
            .collect()
    });
    let page = EventsPage {
        user: me.name.clone(),
        csrf: me.session.csrf.clone(),
        q,
        vas,
        lines,
        next,
    };
    timed(started, render(StatusCode::OK, &page))
}

/// A time from the form: RFC 3339, or a browser's `YYYY-MM-DDTHH:MM[:SS]` read as UTC, or a
/// date (midnight UTC).
fn time_field(name: &str, s: &str) -> Result<Option<OffsetDateTime>, ApiError> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(Some(t));
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let day = format_description!("[year]-[month]-[day]");
    time::PrimitiveDateTime::parse(s, &seconds)
        .or_else(|_| time::PrimitiveDateTime::parse(s, &minutes))
        .or_else(|_| time::Date::parse(s, &day).map(|d| d.midnight()))
        .map(|t| Some(t.assume_utc()))
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!(
                    "`{name}` is not a time: write it as 2026-01-31T09:30 (UTC), \
                     2026-01-31, or RFC 3339 (got `{s}`)."
                ),
            )
        })
}

/// The query string of the page of events numbered below `seq`, with the same filters.
fn next_query(q: &EventsQuery, seq: u64) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("action", &q.action),
        ("va", &q.va),
        ("device", &q.device),
        ("since", &q.since),
        ("until", &q.until),
    ] {
        if !value.is_empty() {
            out.append_pair(name, value);
        }
    }
    out.append_pair("before", &seq.to_string());
    out.finish()
}
