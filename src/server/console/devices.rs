//! The device list: search by UDI (serial number prefix, `PID:SERIAL`, or exact) or host name
//! (prefix or exact), filter by VA and state, in pages that stay fast at a million devices.
//!
//! Paging is by key, never by offset: a page link carries the key of the last device the page
//! looked at, and the next page starts there with one B-tree descent. Without a search the
//! list walks the VAs in scope in id order and each VA's devices in id order
//! (`Catalog::instances_in_after`); a search walks the prefix index of its text
//! (`Catalog::instances_by_prefix`). A state filter cannot be an index (a state ages with the
//! clock), so a page examines at most [`SCAN_LIMIT`] devices: when that many matched too few,
//! the page says so and its "next" link goes on from where it stopped. That bounds a page's
//! cost whatever the filters.

use std::collections::HashSet;
use std::time::Instant;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use time::OffsetDateTime;

use super::guard::SignedIn;
use super::overview::state_label;
use super::{refused, render};
use crate::domain::{
    Catalog, DeviceTimers, InstanceId, InstanceStatus, ProductInstance, TextIndex, TextKey, Udi,
    VaId,
};
use crate::server::admin::AdminCtx;
use crate::server::admin::devices::vas_in_scope;
use crate::server::error::ApiError;

/// Devices shown per page.
pub const PAGE: usize = 50;
/// The most devices one page examines (a few milliseconds at a million devices).
pub const SCAN_LIMIT: usize = 20_000;

pub fn routes() -> Router<AdminCtx> {
    Router::new().route("/ui/devices", get(list))
}

/// The list's form, as sent by its GET form and page links.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    /// `udi` or `hostname`.
    #[serde(default)]
    by: String,
    /// A checkbox: `on` for an exact match.
    #[serde(default)]
    exact: String,
    #[serde(default)]
    va: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: String,
}

/// Where the next page starts: after this VA and device, or after this index key.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cursor {
    Va(VaId, InstanceId),
    Key(TextKey, InstanceId),
}

impl Cursor {
    fn text(self) -> String {
        match self {
            Cursor::Va(va, id) => format!("v.{va}.{id}"),
            Cursor::Key(key, id) => format!("k.{}.{id}", crate::hex::encode(&key)),
        }
    }

    fn parse(s: &str) -> Option<Cursor> {
        let mut parts = s.split('.');
        let (kind, first, id) = (parts.next()?, parts.next()?, parts.next()?);
        let id: InstanceId = id.parse().ok()?;
        match kind {
            "v" => Some(Cursor::Va(first.parse().ok()?, id)),
            "k" => Some(Cursor::Key(crate::hex::decode_array(first)?, id)),
            _ => None,
        }
    }
}

/// One line of the list.
pub struct Row {
    pub id: String,
    pub udi: String,
    pub hostname: String,
    pub va_path: String,
    pub status: &'static str,
    pub last_contact: String,
}

#[derive(askama::Template)]
#[template(path = "console/devices.html")]
struct DevicesPage {
    user: String,
    csrf: String,
    q: String,
    by_host: bool,
    exact: bool,
    va: String,
    status: String,
    vas: Vec<(String, String)>,
    statuses: Vec<(&'static str, &'static str)>,
    rows: Vec<Row>,
    /// Devices in the chosen VAs, when no search or state filter narrows them.
    in_scope: Option<usize>,
    /// The next page's query string.
    next: Option<String>,
    /// Set when the page stopped at [`SCAN_LIMIT`] before it was full.
    examined: Option<usize>,
}

/// What a page found.
struct Scan {
    rows: Vec<Row>,
    next: Option<Cursor>,
    examined: Option<usize>,
}

pub async fn list(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Query(q): Query<ListQuery>,
) -> Response {
    let started = Instant::now();
    let p = &me.principal;
    let (now, timers) = (ctx.app.now(), ctx.app.timers());
    let found = ctx.app.read(|c| {
        let status = parse_status(&q.status)?;
        let after = match q.after.as_str() {
            "" => None,
            s => Some(Cursor::parse(s).ok_or_else(bad_link)?),
        };
        let va = (!q.va.is_empty()).then_some(q.va.as_str());
        let vas = vas_in_scope(c, p, None, va)?;
        let scan = scan(c, &q, &vas, status, after, now, &timers)?;
        let in_scope = (q.q.trim().is_empty() && status.is_none())
            .then(|| vas.iter().map(|v| c.instance_count_in(*v)).sum());
        let choices = vas_in_scope(c, p, None, None)?
            .into_iter()
            .map(|v| (v.to_string(), c.va_path(v)))
            .collect();
        Ok::<_, ApiError>((scan, in_scope, choices))
    });
    let (scan, in_scope, vas) = match found {
        Ok(found) => found,
        Err(e) => return timed(started, refused(&e)),
    };
    let page = DevicesPage {
        user: me.name.clone(),
        csrf: me.session.csrf.clone(),
        next: scan.next.map(|cursor| next_query(&q, cursor)),
        q: q.q,
        by_host: q.by == "hostname",
        exact: q.exact == "on",
        va: q.va,
        status: q.status,
        vas,
        statuses: STATUSES
            .iter()
            .map(|s| (s.as_str(), state_label(s.as_str())))
            .collect(),
        rows: scan.rows,
        in_scope,
        examined: scan.examined,
    };
    timed(started, render(StatusCode::OK, &page))
}

const STATUSES: [InstanceStatus; 4] = [
    InstanceStatus::Registered,
    InstanceStatus::Authorized,
    InstanceStatus::OutOfCompliance,
    InstanceStatus::AuthorizationExpired,
];

fn parse_status(s: &str) -> Result<Option<InstanceStatus>, ApiError> {
    if s.is_empty() {
        return Ok(None);
    }
    InstanceStatus::parse(s).map(Some).ok_or_else(|| {
        invalid(format!(
            "Unknown state `{s}`: choose registered, authorized, out_of_compliance or \
             authorization_expired."
        ))
    })
}

fn invalid(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn bad_link() -> ApiError {
    invalid("This page link is not valid for this search. Start again from the first page.".into())
}

/// The page of `q`: a walk of the chosen VAs, an exact UDI lookup, or a prefix index walk.
fn scan(
    c: &Catalog,
    q: &ListQuery,
    vas: &[VaId],
    status: Option<InstanceStatus>,
    after: Option<Cursor>,
    now: OffsetDateTime,
    timers: &DeviceTimers,
) -> Result<Scan, ApiError> {
    let text = q.q.trim();
    let exact = q.exact == "on";
    let state_ok =
        |i: &ProductInstance| status.is_none_or(|s| Catalog::reported_state(i, now, timers) == s);
    if text.is_empty() {
        let after = match after {
            None => None,
            Some(Cursor::Va(va, id)) => Some((va, id)),
            Some(Cursor::Key(..)) => return Err(bad_link()),
        };
        let mut sorted = vas.to_vec();
        sorted.sort();
        let walk = sorted
            .into_iter()
            .filter(move |v| after.is_none_or(|(from, _)| *v >= from))
            .flat_map(move |va| {
                let from = after.filter(|(v, _)| *v == va).map(|(_, id)| id);
                c.instances_in_after(va, from)
                    .map(move |i| (Cursor::Va(va, i.id), i))
            });
        return Ok(collect(c, walk, state_ok, now, timers));
    }
    let allowed: HashSet<VaId> = vas.iter().copied().collect();
    let keep = |i: &ProductInstance| allowed.contains(&i.va) && state_ok(i);
    let after = match after {
        None => None,
        Some(Cursor::Key(key, id)) => Some((key, id)),
        Some(Cursor::Va(..)) => return Err(bad_link()),
    };
    if q.by == "hostname" {
        let wanted = text.to_ascii_lowercase();
        let walk = c
            .instances_by_prefix(TextIndex::Hostname, text, after)
            .map(|((k, id), i)| (Cursor::Key(k, id), i));
        let matches = |i: &ProductInstance| {
            let host = i.hostname.to_ascii_lowercase();
            (if exact {
                host == wanted
            } else {
                host.starts_with(&wanted)
            }) && keep(i)
        };
        return Ok(collect(c, walk, matches, now, timers));
    }
    Ok(search_udi(c, text, exact, after, keep, now, timers))
}

/// A UDI search: a whole `PID:SERIAL` through the hash index, else the serial prefix index
/// (with the PID, when given, compared whole).
fn search_udi(
    c: &Catalog,
    text: &str,
    exact: bool,
    after: Option<(TextKey, InstanceId)>,
    keep: impl Fn(&ProductInstance) -> bool,
    now: OffsetDateTime,
    timers: &DeviceTimers,
) -> Scan {
    let (pid, serial) = match text.split_once(':') {
        Some((pid, serial)) => (Some(pid), serial),
        None => (None, text),
    };
    if let (true, Some(pid)) = (exact, pid) {
        // A whole UDI: the hash index answers, one lookup per account.
        let udi = Udi {
            pid: pid.to_string().into(),
            serial: serial.to_string().into(),
        };
        let found = c
            .accounts()
            .filter_map(|a| c.instance_by_udi(a.id, &udi))
            .filter(|i| keep(i))
            .map(|i| row(c, i, now, timers))
            .collect();
        return Scan {
            rows: found,
            next: None,
            examined: None,
        };
    }
    let wanted = serial.to_ascii_lowercase();
    let walk = c
        .instances_by_prefix(TextIndex::Serial, serial, after)
        .map(|((k, id), i)| (Cursor::Key(k, id), i));
    let matches = |i: &ProductInstance| {
        let s = i.udi.serial.to_ascii_lowercase();
        (if exact {
            s == wanted
        } else {
            s.starts_with(&wanted)
        }) && pid.is_none_or(|p| i.udi.pid.eq_ignore_ascii_case(p))
            && keep(i)
    };
    collect(c, walk, matches, now, timers)
}

/// Takes up to [`PAGE`] devices that `keep` accepts from `walk`, examining at most
/// [`SCAN_LIMIT`].
fn collect<'a>(
    c: &Catalog,
    walk: impl Iterator<Item = (Cursor, &'a ProductInstance)>,
    keep: impl Fn(&ProductInstance) -> bool,
    now: OffsetDateTime,
    timers: &DeviceTimers,
) -> Scan {
    let mut rows = Vec::new();
    let mut last = None;
    for (n, (cursor, i)) in walk.enumerate() {
        if n == SCAN_LIMIT {
            return Scan {
                rows,
                next: last,
                examined: Some(SCAN_LIMIT),
            };
        }
        last = Some(cursor);
        if !keep(i) {
            continue;
        }
        rows.push(row(c, i, now, timers));
        if rows.len() == PAGE {
            return Scan {
                rows,
                next: last,
                examined: None,
            };
        }
    }
    Scan {
        rows,
        next: None,
        examined: None,
    }
}

pub fn row(c: &Catalog, i: &ProductInstance, now: OffsetDateTime, timers: &DeviceTimers) -> Row {
    Row {
        id: i.id.to_string(),
        udi: format!("{}:{}", i.udi.pid, i.udi.serial),
        hostname: i.hostname.to_string(),
        va_path: c.va_path(i.va),
        status: state_label(Catalog::reported_state(i, now, timers).as_str()),
        last_contact: when(i.last_contact.into()),
    }
}

/// The query string of the page after `cursor`, with the same search and filters.
fn next_query(q: &ListQuery, cursor: Cursor) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("q", q.q.as_str()),
        ("by", q.by.as_str()),
        ("exact", q.exact.as_str()),
        ("va", q.va.as_str()),
        ("status", q.status.as_str()),
    ] {
        if !value.is_empty() {
            out.append_pair(name, value);
        }
    }
    out.append_pair("after", &cursor.text());
    out.finish()
}

/// A time as the console shows it: UTC to the second.
pub fn when(t: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| t.to_string())
}

/// Adds the handler's time to an answer as `Server-Timing: app;dur=MILLISECONDS`, the figure
/// the console's page timings (docs/console.md) are read from.
pub fn timed(started: Instant, mut res: Response) -> Response {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        res.headers_mut().insert("server-timing", v);
    }
    res
}
