//! One device: its identity, state, usage per tag with the authorization of each, its
//! certificate, last report and events; moving it to another VA and removing it, each after a
//! confirmation page. The reads and changes are the admin API's (`device_ref`, `DeviceView`,
//! `Catalog::move_device`, `Catalog::remove_device` through `App::change`), so the access rules
//! and the audit are the same: a device outside the user's scope is not found.

use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::devices::{timed, when};
use super::guard::{CsrfForm, SignedIn};
use super::{redirect, refused, render};
use crate::domain::{Access, EventFilter, InstanceId, Principal};
use crate::protocol::admin::DeviceView;
use crate::server::admin::devices::{device_ref, vas_in_scope};
use crate::server::admin::{AdminCtx, va_ref};
use crate::server::error::ApiError;

/// Events shown on a device's page, newest first.
const EVENTS: usize = 20;

pub fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/ui/devices/{device}", get(detail))
        .route("/ui/devices/{device}/move", get(confirm_move).post(do_move))
        .route(
            "/ui/devices/{device}/remove",
            get(confirm_remove).post(do_remove),
        )
}

/// An event as the device page lists it.
pub struct EventLine {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
}

#[derive(askama::Template)]
#[template(path = "console/device.html")]
struct DevicePage {
    user: String,
    csrf: String,
    d: DeviceView,
    registered_at: String,
    last_contact: String,
    last_report: String,
    cert_serial: String,
    cert_expires: String,
    authorization_expires: String,
    next_report_by: String,
    /// VAs of the device's account the user may move it to: (id, path).
    targets: Vec<(String, String)>,
    events: Vec<EventLine>,
}

/// The confirmation of a move or a removal.
#[derive(askama::Template)]
#[template(path = "console/device_confirm.html")]
struct Confirm {
    user: String,
    csrf: String,
    id: String,
    udi: String,
    va_path: String,
    /// Set for a move: the target VA's id and path.
    to: Option<(String, String)>,
}

pub async fn detail(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Path(device): Path<String>,
) -> Response {
    let started = Instant::now();
    let p = &me.principal;
    let (now, timers) = (ctx.app.now(), ctx.app.timers());
    let found = ctx.app.read(|c| {
        let id = device_ref(c, p, &device)?;
        let i = c.instance(id).expect("resolved");
        let targets = vas_in_scope(c, p, Some(&i.account.to_string()), None)?
            .into_iter()
            .filter(|v| *v != i.va && c.check_va(p, *v, Access::Write).is_ok())
            .map(|v| (v.to_string(), c.va_path(v)))
            .collect();
        let cert = (i.cert_serial.clone().unwrap_or_default(), i.cert_not_after);
        Ok::<_, ApiError>((id, DeviceView::new(c, i, now, &timers), cert, targets))
    });
    let (id, d, (cert_serial, cert_not_after), targets) = match found {
        Ok(found) => found,
        Err(e) => return timed(started, refused(&e)),
    };
    let events = match device_events(&ctx, p, id) {
        Ok(events) => events,
        Err(e) => return timed(started, refused(&e)),
    };
    let page = DevicePage {
        user: me.name.clone(),
        csrf: me.session.csrf.clone(),
        registered_at: when(d.registered_at),
        last_contact: when(d.last_contact),
        last_report: d.last_report_at.map_or("never".into(), when),
        cert_serial: if cert_serial.is_empty() {
            "none (a Cisco device known from its RUM reports)".into()
        } else {
            cert_serial.into()
        },
        cert_expires: cert_not_after.map_or("—".into(), |t| when(t.get())),
        authorization_expires: when(d.authorization_expires_at),
        next_report_by: when(d.next_report_by),
        targets,
        events,
        d,
    };
    timed(started, render(StatusCode::OK, &page))
}

/// The newest events of the device, as the user may read them (the admin API's event query
/// by device).
fn device_events(
    ctx: &AdminCtx,
    p: &Principal,
    id: InstanceId,
) -> Result<Vec<EventLine>, ApiError> {
    let filter = EventFilter {
        device: Some(id.to_string()),
        ..EventFilter::default()
    };
    Ok(ctx
        .app
        .events(p, &filter, None, EVENTS)?
        .into_iter()
        .map(|e| EventLine {
            at: when(e.at),
            actor: e.actor,
            action: e.action,
            subject: e.subject,
        })
        .collect())
}

#[derive(Debug, Deserialize)]
pub struct MoveQuery {
    #[serde(default)]
    va: String,
}

pub async fn confirm_move(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Path(device): Path<String>,
    Query(q): Query<MoveQuery>,
) -> Response {
    confirm(&ctx, &me, &device, Some(&q.va))
}

/// The confirmation page of a move (to `to`) or of a removal: what the device is, where it is.
fn confirm(ctx: &AdminCtx, me: &SignedIn, device: &str, to: Option<&str>) -> Response {
    let p = &me.principal;
    let found = ctx.app.read(|c| {
        let id = device_ref(c, p, device)?;
        let to = to.map(|r| va_ref(c, p, r)).transpose()?;
        let i = c.instance(id).expect("resolved");
        Ok::<_, ApiError>(Confirm {
            user: me.name.clone(),
            csrf: me.session.csrf.clone(),
            id: id.to_string(),
            udi: format!("{}:{}", i.udi.pid, i.udi.serial),
            va_path: c.va_path(i.va),
            to: to.map(|to| (to.to_string(), c.va_path(to))),
        })
    });
    match found {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => refused(&e),
    }
}

pub async fn do_move(
    State(ctx): State<AdminCtx>,
    Path(device): Path<String>,
    form: CsrfForm,
) -> Response {
    let p = &form.me.principal;
    let to = form.fields.get("va").unwrap_or("").to_string();
    let resolved = ctx
        .app
        .read(|c| Ok::<_, ApiError>((device_ref(c, p, &device)?, va_ref(c, p, &to)?)));
    let (id, to) = match resolved {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    match ctx
        .app
        .change(&p.actor, |c, _| c.move_device(p, id, to))
        .await
    {
        Ok(_) => redirect(&format!("/ui/devices/{id}")),
        Err(e) => refused(&ApiError::from(e)),
    }
}

pub async fn confirm_remove(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Path(device): Path<String>,
) -> Response {
    confirm(&ctx, &me, &device, None)
}

pub async fn do_remove(
    State(ctx): State<AdminCtx>,
    Path(device): Path<String>,
    form: CsrfForm,
) -> Response {
    let p = &form.me.principal;
    let id = match ctx.app.read(|c| device_ref(c, p, &device)) {
        Ok(id) => id,
        Err(e) => return refused(&e),
    };
    match ctx
        .app
        .change(&p.actor, |c, now| c.remove_device(p, id, now))
        .await
    {
        Ok(_) => redirect("/ui/devices"),
        Err(e) => refused(&ApiError::from(e)),
    }
}
