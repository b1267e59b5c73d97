//! The overview page: devices by state, shortages and where spare licenses are, alerts, sync
//! status and store health, each as the signed-in user may see it. The figures come from the
//! same calls as `status`, `compliance` and `alerts` of the admin API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::guard::SignedIn;
use super::render;
use crate::protocol::admin::{AlertView, ComplianceView};
use crate::server::admin::AdminCtx;
use crate::server::admin::devices::{alert_views, compliance_views, vas_in_scope};

#[derive(askama::Template)]
#[template(path = "console/overview.html")]
struct Overview {
    user: String,
    csrf: String,
    devices: usize,
    states: Vec<(&'static str, usize)>,
    accounts: usize,
    virtual_accounts: usize,
    licenses: usize,
    shortages: Vec<ComplianceView>,
    alerts: Vec<AlertView>,
    /// For system administrators only, as in `status`.
    system: Option<SystemHealth>,
}

/// Satellite-wide health: sync and the store.
struct SystemHealth {
    sync_role: &'static str,
    sync_last_success: String,
    sync_problem: String,
    store_bytes: String,
    store_failure: String,
    unreadable: usize,
}

pub async fn overview(State(ctx): State<AdminCtx>, me: SignedIn) -> Response {
    let p = &me.principal;
    let (now, timers) = (ctx.app.now(), ctx.app.timers());
    let (held, shortages) = ctx.app.read(|c| {
        let vas = vas_in_scope(c, p, None, None).unwrap_or_default();
        (
            c.holdings(p, now, &timers),
            compliance_views(c, p, &vas, now, true),
        )
    });
    let system = p.is_system_admin().then(|| system_health(&ctx, now));
    let page = Overview {
        user: me.name.clone(),
        csrf: me.session.csrf.clone(),
        devices: held.devices,
        states: held
            .devices_by_state
            .iter()
            .map(|(s, n)| (state_label(s.as_str()), *n))
            .collect(),
        accounts: held.accounts,
        virtual_accounts: held.virtual_accounts,
        licenses: held.licenses,
        shortages,
        alerts: alert_views(&ctx, p),
        system,
    };
    render(StatusCode::OK, &page)
}

fn system_health(ctx: &AdminCtx, now: time::OffsetDateTime) -> SystemHealth {
    let bound = ctx.app.read(|c| c.upstream_binding().is_some());
    let status = ctx.sync.status();
    let store = ctx.app.store_health();
    SystemHealth {
        sync_role: if bound {
            "child of an upstream"
        } else {
            "not bound to an upstream"
        },
        sync_last_success: status
            .last_success
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| "never".into()),
        sync_problem: ctx.sync.problem(now).unwrap_or_default(),
        store_bytes: match store.bytes {
            Ok(b) if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
            Ok(b) => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
            Err(e) => format!("unknown ({e})"),
        },
        store_failure: store.failure.unwrap_or_default(),
        unreadable: ctx.app.unreadable().len(),
    }
}

/// A device state as people read it.
pub(super) fn state_label(s: &str) -> &'static str {
    match s {
        "registered" => "Registered",
        "authorized" => "Authorized",
        "out_of_compliance" => "Out of compliance",
        "authorization_expired" => "Authorization expired",
        _ => "Other",
    }
}
