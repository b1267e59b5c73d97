//! Admin handlers for product instances, compliance and alerts.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{AdminCtx, Body, Caller, account_ref, va_ref};
use crate::domain::{Catalog, InstanceId, InstanceStatus, Principal, VaId};
use crate::protocol::admin::*;
use crate::protocol::device::UsageLine;
use crate::server::error::ApiError;

/// The routes of this resource.
pub(super) fn routes() -> axum::Router<AdminCtx> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/devices", get(list_devices))
        .route(
            "/v1/devices/{device}",
            get(show_device).delete(remove_device),
        )
        .route("/v1/devices/{device}/move", post(move_device))
        .route("/v1/compliance", get(compliance))
        .route("/v1/alerts", get(alerts))
}

type Reply<T> = Result<Json<T>, ApiError>;

/// The VAs a listing covers: one VA subtree, one account, or everything visible.
pub(crate) fn vas_in_scope(
    c: &Catalog,
    p: &Principal,
    account: Option<&str>,
    va: Option<&str>,
) -> Result<Vec<VaId>, ApiError> {
    let roots: Vec<VaId> = match (va, account) {
        (Some(v), _) => vec![va_ref(c, p, v)?],
        (None, Some(a)) => {
            let id = account_ref(c, p, a)?;
            vec![c.account(id).expect("resolved").default_va]
        }
        (None, None) => c
            .accounts()
            .filter(|a| c.account_visible(p, a.id))
            .map(|a| a.default_va)
            .collect(),
    };
    Ok(roots
        .into_iter()
        .flat_map(|r| c.subtree(r))
        .filter(|v| c.va_access(p, *v).is_some())
        .collect())
}

#[derive(Debug, Deserialize)]
pub struct ListDevices {
    account: Option<String>,
    va: Option<String>,
    status: Option<String>,
    udi: Option<String>,
    hostname: Option<String>,
    limit: Option<usize>,
}

pub async fn list_devices(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<ListDevices>,
) -> Reply<Vec<DeviceView>> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(InstanceStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_request",
                format!(
                    "unknown status `{s}`; use registered, authorized, out_of_compliance or \
                     authorization_expired"
                ),
            )
        })?),
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    let now = ctx.app.now();
    let timers = ctx.app.timers();
    ctx.app.read(|c| {
        let vas = vas_in_scope(c, &p, q.account.as_deref(), q.va.as_deref())?;
        let mut out = Vec::new();
        for va in vas {
            let mut devices: Vec<_> = c
                .instances_in(va)
                .filter(|i| {
                    q.udi.as_ref().is_none_or(|u| {
                        i.udi.serial.contains(u.as_str()) || i.udi.pid.contains(u.as_str())
                    })
                })
                .filter(|i| {
                    q.hostname
                        .as_ref()
                        .is_none_or(|h| i.hostname.contains(h.as_str()))
                })
                .filter(|i| status.is_none_or(|s| c.authorization(i, now, &timers).status == s))
                .collect();
            devices.sort_by_key(|i| i.order);
            for i in devices {
                if out.len() >= limit {
                    return Ok(Json(out));
                }
                out.push(DeviceView::new(c, i, now, &timers));
            }
        }
        Ok(Json(out))
    })
}

pub(crate) fn device_ref(c: &Catalog, p: &Principal, r: &str) -> Result<InstanceId, ApiError> {
    let found = match r.parse::<InstanceId>() {
        Ok(id) => c.instance(id).map(|i| i.id),
        // `PID:SERIAL` among the accounts the caller can see.
        Err(_) => r.split_once(':').and_then(|(pid, serial)| {
            let udi = crate::domain::Udi {
                pid: pid.to_string().into(),
                serial: serial.to_string().into(),
            };
            c.accounts()
                .filter_map(|a| c.instance_by_udi(a.id, &udi))
                .find(|i| c.va_access(p, i.va).is_some())
                .map(|i| i.id)
        }),
    };
    found
        .filter(|id| {
            c.instance(*id)
                .is_some_and(|i| c.va_access(p, i.va).is_some())
        })
        .ok_or_else(|| ApiError::not_found("product instance", r))
}

pub async fn show_device(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(device): Path<String>,
) -> Reply<DeviceView> {
    let now = ctx.app.now();
    let timers = ctx.app.timers();
    ctx.app.read(|c| {
        let id = device_ref(c, &p, &device)?;
        Ok(Json(DeviceView::new(
            c,
            c.instance(id).expect("resolved"),
            now,
            &timers,
        )))
    })
}

pub async fn move_device(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(device): Path<String>,
    Body(req): Body<MoveDevice>,
) -> Reply<DeviceView> {
    let (id, to) = ctx
        .app
        .read(|c| Ok::<_, ApiError>((device_ref(c, &p, &device)?, va_ref(c, &p, &req.va)?)))?;
    let moved = ctx
        .app
        .change(&p.actor, |c, _| c.move_device(&p, id, to))
        .await?;
    let now = ctx.app.now();
    let timers = ctx.app.timers();
    Ok(Json(
        ctx.app.read(|c| DeviceView::new(c, &moved, now, &timers)),
    ))
}

pub async fn remove_device(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(device): Path<String>,
) -> Reply<RemovedDevice> {
    let id = ctx.app.read(|c| device_ref(c, &p, &device))?;
    let released = ctx
        .app
        .change(&p.actor, |c, now| c.remove_device(&p, id, now))
        .await?;
    Ok(Json(RemovedDevice {
        id: id.to_string(),
        released: released
            .into_iter()
            .map(|(entitlement_tag, count)| UsageLine {
                entitlement_tag,
                count,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct ComplianceQuery {
    account: Option<String>,
    va: Option<String>,
    /// Include lines without a shortage.
    #[serde(default)]
    all: bool,
}

pub async fn compliance(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<ComplianceQuery>,
) -> Reply<Vec<ComplianceView>> {
    let now = ctx.app.now();
    ctx.app.read(|c| {
        let vas = vas_in_scope(c, &p, q.account.as_deref(), q.va.as_deref())?;
        Ok(Json(compliance_views(c, &p, &vas, now, !q.all)))
    })
}

/// The compliance lines of `vas` as `p` may read them; the console's overview shows the same.
pub(crate) fn compliance_views(
    c: &Catalog,
    p: &Principal,
    vas: &[VaId],
    now: OffsetDateTime,
    short_only: bool,
) -> Vec<ComplianceView> {
    c.compliance(vas, now, short_only)
        .into_iter()
        .map(|l| ComplianceView::new(c, l, p))
        .collect()
}

pub async fn alerts(State(ctx): State<AdminCtx>, Caller(p): Caller) -> Reply<Vec<AlertView>> {
    Ok(Json(alert_views(&ctx, &p)))
}

/// The alerts that hold now, as `p` may read them; the console's overview shows the same.
pub(crate) fn alert_views(ctx: &AdminCtx, p: &Principal) -> Vec<AlertView> {
    let now = ctx.app.now();
    let timers = ctx.app.timers();
    let mut inputs = ctx.alert_inputs.clone();
    inputs.sync_problem = ctx.sync.problem(now);
    inputs.cisco_unreachable = ctx.cisco.unreachable_devices();
    ctx.app.read(|c| {
        let visible = |a: &crate::domain::Alert| match (a.va, a.account) {
            (Some(va), _) => c.va_access(p, va).is_some(),
            (None, Some(acc)) => c.account_visible(p, acc),
            (None, None) => p.is_system_admin(),
        };
        c.alerts(now, &timers, &inputs)
            .into_iter()
            .filter(visible)
            .map(|a| AlertView::new(c, &a, p))
            .collect()
    })
}
