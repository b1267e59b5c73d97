//! Cisco reporting (SPEC §11, docs/cisco.md): per device, the RUM reports held and waiting for
//! Cisco's ACK, what `satellite cisco reports` prints, and the download of a device's latest
//! ACK, the file `satellite cisco ack --device` writes. Both come from the same domain calls as
//! the admin API (`cisco_report_status`, `latest_cisco_ack`) with the user's principal, so a VA
//! outside the user's scope, or a device without an ACK, is not found here as there. The
//! download is a GET that changes nothing and writes no audit event, as `GET /v1/cisco/ack`.

use std::collections::BTreeSet;
use std::time::Instant;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::devices::{timed, when};
use super::guard::SignedIn;
use super::{refused, render};
use crate::protocol::admin::DeviceReportsView;
use crate::server::admin::devices::{alert_views, vas_in_scope};
use crate::server::admin::{AdminCtx, va_ref};
use crate::server::error::ApiError;

pub fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/ui/cisco", get(page))
        .route("/ui/cisco/ack", get(ack))
}

#[derive(Debug, Default, Deserialize)]
pub struct CiscoQuery {
    #[serde(default)]
    va: String,
}

/// One device's line, with what the template shows already formatted.
struct Row {
    view: DeviceReportsView,
    oldest_waiting: String,
    last_ack: String,
    /// The `cisco_ack_overdue` alert holds for the device.
    overdue: bool,
    /// The ACK download, when the device has an ACK.
    ack_link: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "console/cisco.html")]
struct CiscoPage {
    user: String,
    csrf: String,
    va: String,
    vas: Vec<(String, String)>,
    rows: Vec<Row>,
}

pub async fn page(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Query(q): Query<CiscoQuery>,
) -> Response {
    let started = Instant::now();
    let p = &me.principal;
    // The overdue marker is the alert itself, as `satellite alerts` shows it to this user.
    let overdue: BTreeSet<String> = alert_views(&ctx, p)
        .into_iter()
        .filter(|a| a.kind == "cisco_ack_overdue")
        .map(|a| a.key)
        .collect();
    let found = ctx.app.read(|c| {
        let va = (!q.va.is_empty())
            .then(|| va_ref(c, p, &q.va))
            .transpose()?;
        let lines: Vec<DeviceReportsView> = c
            .cisco_report_status(p, va)
            .iter()
            .map(|d| DeviceReportsView::new(c, d))
            .collect();
        let choices = vas_in_scope(c, p, None, None)?
            .into_iter()
            .map(|v| (v.to_string(), c.va_path(v)))
            .collect();
        Ok::<_, ApiError>((lines, choices))
    });
    let (lines, vas) = match found {
        Ok(found) => found,
        Err(e) => return timed(started, refused(&e)),
    };
    let rows = lines
        .into_iter()
        .map(|view| row(view, &q.va, &overdue))
        .collect();
    let page = CiscoPage {
        user: me.name.clone(),
        csrf: me.session.csrf.clone(),
        va: q.va,
        vas,
        rows,
    };
    timed(started, render(StatusCode::OK, &page))
}

fn row(view: DeviceReportsView, va: &str, overdue: &BTreeSet<String>) -> Row {
    let serial = view.udi.rsplit_once(':').map_or(&*view.udi, |(_, s)| s);
    let overdue = overdue.contains(&format!("cisco_ack_overdue:{serial}"));
    let ack_link = view.last_ack.is_some().then(|| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("device", &view.udi);
        if !va.is_empty() {
            q.append_pair("va", va);
        }
        format!("/ui/cisco/ack?{}", q.finish())
    });
    Row {
        oldest_waiting: view.oldest_waiting.map_or_else(|| "—".into(), when),
        last_ack: view.last_ack.map_or_else(|| "—".into(), when),
        overdue,
        ack_link,
        view,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct AckQuery {
    /// `PID:SERIAL`, or the serial alone.
    #[serde(default)]
    device: String,
    #[serde(default)]
    va: String,
}

/// The device's latest ACK byte for byte, as an attachment named after the device.
pub async fn ack(State(ctx): State<AdminCtx>, me: SignedIn, Query(q): Query<AckQuery>) -> Response {
    let p = &me.principal;
    let found = ctx.app.read(|c| {
        let va = (!q.va.is_empty())
            .then(|| va_ref(c, p, &q.va))
            .transpose()?;
        let a = c.latest_cisco_ack(p, &q.device, va)?;
        Ok::<_, ApiError>((a.udi.to_string(), a.bytes.clone()))
    });
    let (udi, bytes) = match found {
        Ok(found) => found,
        Err(e) => return refused(&e),
    };
    let disposition = format!("attachment; filename=\"ACK_{}.xml\"", file_safe(&udi));
    let mut res = (StatusCode::OK, bytes).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// `udi` with every character but ASCII letters, digits, `-` and `.` made `_`: a file name
/// that needs no quoting and cannot leave the download folder.
fn file_safe(udi: &str) -> String {
    udi.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{file_safe, row};
    use crate::protocol::admin::DeviceReportsView;

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(
            file_safe("C9800-CL-K9:9NTUEA8FIIH"),
            "C9800-CL-K9_9NTUEA8FIIH"
        );
        assert_eq!(file_safe("a/../b\"\r\nc"), "a_.._b___c");
    }

    fn view(udi: &str, last_ack: bool) -> DeviceReportsView {
        let t = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        DeviceReportsView {
            udi: udi.into(),
            account: "acme".into(),
            va_path: "acme/Default".into(),
            held_by: "local".into(),
            reports_held: 2,
            waiting_for_ack: 1,
            oldest_waiting: Some(t),
            last_ack: last_ack.then_some(t),
            last_ack_id: None,
            last_ack_delivered: None,
            ack_deadline: "unknown".into(),
        }
    }

    /// The overdue marker follows the domain's alert key, `cisco_ack_overdue:SERIAL`.
    #[test]
    fn a_row_is_overdue_when_its_alert_holds_and_links_its_ack_when_it_has_one() {
        let alerts = BTreeSet::from(["cisco_ack_overdue:FOC1".to_string()]);
        let late = row(view("C9300-24T:FOC1", false), "", &alerts);
        assert!(late.overdue);
        assert_eq!(late.ack_link, None);
        assert_eq!(late.oldest_waiting, "2026-01-02 03:04:05 UTC");
        assert_eq!(late.last_ack, "—");
        let fine = row(view("C9300-24T:FOC2", true), "acme/Default", &alerts);
        assert!(!fine.overdue);
        assert_eq!(
            fine.ack_link.as_deref(),
            Some("/ui/cisco/ack?device=C9300-24T%3AFOC2&va=acme%2FDefault")
        );
    }
}
