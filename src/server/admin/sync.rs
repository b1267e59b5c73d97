//! Admin endpoints of sync (SPEC §8), system administrators only: children of an upstream,
//! binding to an upstream, `sync now|status|export|import|answer`, and the devices children
//! reported.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AdminCtx, Body, Caller, va_ref};
use crate::app::{RandomIds, secrets};
use crate::domain::{DomainError, Principal};
use crate::protocol::admin::{
    BindingView, ChildCreated, ChildView, CreateChild, RegisterUpstream, RelayedRumView,
    RemoteDeviceView, RemoteDevices, RemoteUsageView, SyncOutcomeView, SyncStatusView,
};
use crate::protocol::sync::MAX_FILE_BYTES;
use crate::server::error::ApiError;
use crate::server::sync::failure;
use crate::sync::{ImportOutcome, transport};

/// The routes of this resource.
pub(super) fn routes() -> axum::Router<AdminCtx> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/sync/children", post(create_child).get(list_children))
        .route("/v1/sync/register", post(register))
        .route("/v1/sync/now", post(sync_now))
        .route("/v1/sync/status", get(status))
        .route("/v1/sync/export", post(export))
        .route("/v1/sync/import", post(import))
        .route("/v1/sync/answer", post(answer))
        .route("/v1/sync/devices", get(remote_devices))
        .route("/v1/sync/devices/{device}/remove", post(order_removal))
}

/// Default life of a satellite registration token.
const CHILD_TOKEN_DAYS: u32 = 7;

fn system(p: &Principal, ctx: &AdminCtx) -> Result<(), ApiError> {
    ctx.app.read(|c| c.check_system(p)).map_err(ApiError::from)
}

pub async fn create_child(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(body): Body<CreateChild>,
) -> Result<(StatusCode, Json<ChildCreated>), ApiError> {
    let days = body.expires_in_days.unwrap_or(CHILD_TOKEN_DAYS);
    if !(1..=365).contains(&days) {
        return Err(ApiError::from(DomainError::Invalid(format!(
            "expires_in_days must be 1 to 365 (got {days})"
        ))));
    }
    let va = ctx.app.read(|c| va_ref(c, &p, &body.va))?;
    let secret = secrets::generate("ssr_");
    let fingerprint = transport::ca_fingerprint(&ctx.ca_der);
    let child = ctx
        .app
        .change(&p.actor, |c, now| {
            c.add_child_satellite(
                &p,
                &body.name,
                va,
                secret.hash,
                now + time::Duration::days(i64::from(days)),
                now,
            )
        })
        .await?;
    let view = ctx.app.read(|c| ChildView::new(c, &child));
    Ok((
        StatusCode::CREATED,
        Json(ChildCreated {
            child: view,
            registration_token: format!("{}.{fingerprint}", secret.text),
            token_expires_at: child.token_expires_at,
        }),
    ))
}

pub async fn list_children(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
) -> Result<Json<Vec<ChildView>>, ApiError> {
    system(&p, &ctx)?;
    Ok(Json(ctx.app.read(|c| {
        c.child_satellites()
            .map(|ch| ChildView::new(c, ch))
            .collect()
    })))
}

pub async fn register(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(body): Body<RegisterUpstream>,
) -> Result<(StatusCode, Json<BindingView>), ApiError> {
    system(&p, &ctx)?;
    if let Some(b) = ctx.app.read(|c| c.upstream_binding().cloned()) {
        return Err(ApiError::from(DomainError::Conflict(format!(
            "this satellite is already bound to upstream `{}` ({}) as `{}`",
            b.upstream, b.url, b.me
        ))));
    }
    let input = transport::register(&ctx.sync, &body.url, &body.token)
        .await
        .map_err(failure)?;
    let binding = ctx
        .app
        .change(&p.actor, |c, now| {
            c.bind_upstream(&p, &input, now, &RandomIds)
        })
        .await?;
    ctx.sync.wake.notify_one();
    let view = ctx.app.read(|c| BindingView::new(c, &binding));
    Ok((StatusCode::CREATED, Json(view)))
}

fn outcome_view(o: ImportOutcome) -> SyncOutcomeView {
    match o {
        ImportOutcome::Applied { seq, applied } => SyncOutcomeView {
            result: "applied".into(),
            response_seq: seq,
            acknowledged: applied.acknowledged,
            licenses_changed: applied.licenses_put,
            licenses_removed: applied.licenses_removed,
            vas_created: applied.vas_created,
            devices_removed: applied.devices_removed,
        },
        ImportOutcome::AlreadyApplied { seq } => SyncOutcomeView {
            result: "already_applied".into(),
            response_seq: seq,
            acknowledged: 0,
            licenses_changed: 0,
            licenses_removed: 0,
            vas_created: 0,
            devices_removed: 0,
        },
    }
}

pub async fn sync_now(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
) -> Result<Json<SyncOutcomeView>, ApiError> {
    system(&p, &ctx)?;
    let outcome = ctx.sync.sync_now(&p.actor).await.map_err(failure)?;
    Ok(Json(outcome_view(outcome)))
}

pub async fn status(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
) -> Result<Json<SyncStatusView>, ApiError> {
    system(&p, &ctx)?;
    let s = ctx.sync.status();
    let now = ctx.app.now();
    let problem = ctx.sync.problem(now);
    let pending = ctx.sync.pending().await;
    let view = ctx.app.read(|c| {
        let binding = c.upstream_binding().map(|b| BindingView::new(c, b));
        let children: Vec<ChildView> = c
            .child_satellites()
            .map(|ch| ChildView::new(c, ch))
            .collect();
        let role = match (binding.is_some(), children.is_empty()) {
            (false, true) => "disconnected",
            (true, true) => "child",
            (false, false) => "upstream",
            (true, false) => "child+upstream",
        };
        SyncStatusView {
            role: role.into(),
            name: ctx.sync.settings.name.clone(),
            key_id: ctx.sync.key.id().to_string(),
            public_key: ctx.sync.key.public_key_hex(),
            last_success: s
                .last_success
                .or(c.upstream_binding().and_then(|b| b.last_success)),
            binding,
            last_attempt: s.last_attempt,
            last_error: s.last_error.as_ref().map(|(_, e)| e.clone()),
            last_error_at: s.last_error.as_ref().map(|(t, _)| *t),
            next_attempt: s.next_attempt,
            pending_changes: pending,
            acknowledged_items: c.synced_count(),
            problem,
            children,
        }
    });
    Ok(Json(view))
}

fn json_file(bytes: Vec<u8>, seq: u64) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::HeaderName::from_static("x-sync-seq"),
                seq.to_string(),
            ),
        ],
        bytes,
    )
        .into_response()
}

pub async fn export(State(ctx): State<AdminCtx>, Caller(p): Caller) -> Result<Response, ApiError> {
    system(&p, &ctx)?;
    let (seq, bytes) = ctx.sync.export(&p.actor).await.map_err(failure)?;
    Ok(json_file(bytes, seq))
}

pub async fn import(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    req: Request,
) -> Result<Json<SyncOutcomeView>, ApiError> {
    system(&p, &ctx)?;
    let bytes = crate::server::error::read_body(req, MAX_FILE_BYTES).await?;
    let outcome = ctx.sync.import(&p.actor, &bytes).await.map_err(failure)?;
    Ok(Json(outcome_view(outcome)))
}

pub async fn answer(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    req: Request,
) -> Result<Response, ApiError> {
    system(&p, &ctx)?;
    let bytes = crate::server::error::read_body(req, MAX_FILE_BYTES).await?;
    let response = ctx.sync.answer(&p.actor, &bytes).await.map_err(failure)?;
    let seq = serde_json::from_slice::<serde_json::Value>(&response)
        .ok()
        .and_then(|v| v["body"]["seq"].as_u64())
        .unwrap_or_default();
    Ok(json_file(response, seq))
}

pub async fn remote_devices(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
) -> Result<Json<RemoteDevices>, ApiError> {
    Ok(Json(ctx.app.read(|c| {
        let ordered = |child: &str, id: &str| {
            c.child_satellite(child)
                .is_some_and(|ch| ch.pending_removals.iter().any(|(r, _)| r == id))
        };
        let mut devices: Vec<RemoteDeviceView> = c
            .remote_instances()
            .filter(|r| c.va_access(&p, r.va).is_some())
            .map(|r| RemoteDeviceView {
                id: r.id.clone(),
                child: r.child.clone(),
                va_path: c.va_path(r.va),
                pid: r.udi.pid.to_string(),
                serial: r.udi.serial.to_string(),
                hostname: r.hostname.clone(),
                product: r.product.clone(),
                registered_at: r.registered_at,
                removal_ordered: ordered(&r.child, &r.id),
            })
            .collect();
        devices.sort_by(|a, b| (&a.va_path, a.registered_at).cmp(&(&b.va_path, b.registered_at)));
        let mut usage: Vec<RemoteUsageView> = c
            .remote_usage()
            .filter(|u| c.va_access(&p, u.va).is_some())
            .map(|u| RemoteUsageView {
                child: u.child.clone(),
                va_path: c.va_path(u.va),
                entitlement_tag: u.tag.clone(),
                devices: u.devices,
                units_requested: u.units_requested,
                units_granted: u.units_granted,
                measured_at: u.measured_at,
            })
            .collect();
        usage.sort_by(|a, b| {
            (&a.va_path, &a.entitlement_tag).cmp(&(&b.va_path, &b.entitlement_tag))
        });
        // Relayed reports name no VA: a system administrator sees them (as with sync itself).
        let mut rum_reports: Vec<RelayedRumView> = if p.is_system_admin() {
            c.relayed_rum()
                .map(|r| RelayedRumView {
                    child: r.child.clone(),
                    report_id: r.report_id,
                    pid: r.udi.pid.to_string(),
                    serial: r.udi.serial.to_string(),
                    bytes: r.raw.len(),
                    received_at: r.received_at,
                })
                .collect()
        } else {
            Vec::new()
        };
        rum_reports.sort_by(|a, b| (&a.serial, a.report_id).cmp(&(&b.serial, b.report_id)));
        RemoteDevices {
            devices,
            usage,
            rum_reports,
        }
    })))
}

pub async fn order_removal(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<RemoteDeviceView>, ApiError> {
    let reason = format!("ordered by {}", p.actor);
    let remote = ctx
        .app
        .change(&p.actor, |c, _| c.order_remote_removal(&p, &id, &reason))
        .await?;
    Ok(Json(ctx.app.read(|c| RemoteDeviceView {
        id: remote.id.clone(),
        child: remote.child.clone(),
        va_path: c.va_path(remote.va),
        pid: remote.udi.pid.to_string(),
        serial: remote.udi.serial.to_string(),
        hostname: remote.hostname.clone(),
        product: remote.product.clone(),
        registered_at: remote.registered_at,
        removal_ordered: true,
    })))
}
