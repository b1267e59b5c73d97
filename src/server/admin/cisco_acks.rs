//! The Cisco reporting loop (SPEC §11): `POST /v1/cisco/export` writes the usage file for
//! Cisco's portal and records it, `POST /v1/cisco/acks/import` reads the ACK archive the portal
//! returns, `GET /v1/cisco/ack` gives a device's latest ACK file, `GET /v1/cisco/reports` what
//! waits per device.
//!
//! The archives are wire formats (`protocol::cisco`), written and read here at the edge (off
//! the async threads); the domain decides which reports and ACKs, and records them.

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::{AdminCtx, Body, Caller, Reply, account_ref, va_ref};
use crate::domain::{AckInput, Catalog, DomainError, ExportPlan, ExportScope, Principal};
use crate::protocol::admin::{
    AckFileView, AckImportView, AckView, CiscoExportRequest, CiscoExportView, DeviceReportsView,
};
use crate::protocol::cisco::{ack, export};
use crate::server::error::ApiError;

/// The routes of this resource.
pub(super) fn routes() -> axum::Router<AdminCtx> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/cisco/export", post(export_usage))
        .route("/v1/cisco/acks/import", post(import_acks))
        .route("/v1/cisco/ack", get(device_ack))
        .route("/v1/cisco/reports", get(reports))
}

/// Largest ACK archive accepted: what the reader accepts decompressed (a compressed archive
/// is never larger than that and still within the reader's limits).
pub const MAX_ACK_ARCHIVE_BYTES: usize = ack::Limits::DEFAULT.archive_bytes as usize;

fn scope(c: &Catalog, p: &Principal, req: &CiscoExportRequest) -> Result<ExportScope, ApiError> {
    if let Some(va) = &req.va {
        return Ok(ExportScope::Va(va_ref(c, p, va)?));
    }
    if let Some(account) = &req.account {
        return Ok(ExportScope::Account(account_ref(c, p, account)?));
    }
    let visible: Vec<_> = c
        .accounts()
        .filter(|a| c.account_visible(p, a.id))
        .collect();
    match visible[..] {
        [one] => Ok(ExportScope::Account(one.id)),
        [] => Err(
            DomainError::Refused("no account is visible to you: nothing to export".into()).into(),
        ),
        _ => Err(DomainError::Invalid(
            "this satellite holds several accounts and a usage file names one: choose it with \
             --account ACCOUNT (or --va VA)"
                .into(),
        )
        .into()),
    }
}

pub async fn export_usage(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<CiscoExportRequest>,
) -> Reply<CiscoExportView> {
    let plan = ctx
        .app
        .read(|c| scope(c, &p, &req).and_then(|s| Ok(c.plan_cisco_export(&p, s)?)))?;
    if plan.files.is_empty() {
        return Ok(Json(ctx.app.read(|c| CiscoExportView::new(c, &plan, None))));
    }
    let devices = report_texts(&ctx, &plan)?;
    let (account, account_id, va, va_id) = ctx.app.read(|c| {
        let name = c
            .account(plan.account)
            .map(|a| a.name.clone())
            .unwrap_or_default();
        let va = c.va(plan.va).map(|v| v.name.clone()).unwrap_or_default();
        (name, plan.account.to_string(), va, plan.va.to_string())
    });
    let created_by = ctx.sync.key.id().as_str().to_owned();
    let time = ctx.app.now();
    let first_file_id = plan.first_file_id;
    let (bytes, exported) = tokio::task::spawn_blocking(move || {
        let usage = export::Usage {
            account: &account,
            account_id: &account_id,
            va: &va,
            va_id: &va_id,
            created_by: &created_by,
            time,
            first_file_id,
            devices: &devices,
        };
        let mut out = Vec::new();
        export::write(&usage, &mut out, |_| {}).map(|e| (out, e))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the export task failed: {e}")))?
    .map_err(|e| ApiError::internal(format!("the usage file could not be written: {e}")))?;
    ctx.app
        .change(&p.actor, |c, now| {
            c.record_cisco_export(&p, &plan, &exported.file_name, now)
        })
        .await?;
    let mut view = ctx
        .app
        .read(|c| CiscoExportView::new(c, &plan, Some(exported.file_name.clone())));
    view.archive = Some(BASE64.encode(bytes));
    Ok(Json(view))
}

/// The raw texts of the plan's reports: relayed ones from the plan, own ones from the store.
fn report_texts(ctx: &AdminCtx, plan: &ExportPlan) -> Result<Vec<export::DeviceUsage>, ApiError> {
    let mut devices = Vec::with_capacity(plan.files.len());
    for f in &plan.files {
        let mut reports = Vec::with_capacity(f.reports.len());
        for (id, raw) in &f.reports {
            let text = match raw {
                Some(t) => t.clone(),
                None => ctx
                    .app
                    .rum_report_text(&f.udi.serial, *id)?
                    .ok_or_else(|| {
                        ApiError::internal(format!("report {id} of {} is not in the store", f.udi))
                    })?,
            };
            reports.push(text);
        }
        devices.push(export::DeviceUsage {
            udi: crate::protocol::device::Udi {
                pid: f.udi.pid.to_string(),
                serial: f.udi.serial.to_string(),
            },
            reports,
        });
    }
    Ok(devices)
}

#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    /// The archive's file name, for the audit log.
    pub name: Option<String>,
}

pub async fn import_acks(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<ImportQuery>,
    req: Request,
) -> Result<(StatusCode, Json<AckImportView>), ApiError> {
    ctx.app.read(|c| c.check_may_import_acks(&p))?;
    let bytes = crate::server::error::read_body(req, MAX_ACK_ARCHIVE_BYTES).await?;
    let archive: String = q
        .name
        .unwrap_or_else(|| "ACK archive".into())
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect();
    let read = tokio::task::spawn_blocking(move || ack::read(&bytes[..]))
        .await
        .map_err(|e| ApiError::internal(format!("the ACK reader failed: {e}")))?;
    let acks = match read {
        Ok(a) => a.acks,
        Err(e) => {
            let reason = e.to_string();
            ctx.app
                .change(&p.actor, |c, _| {
                    Ok::<_, DomainError>((c.cisco_ack_refusal(&archive, &reason), ()))
                })
                .await?;
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ack_archive_refused",
                format!("{archive}: {reason}; nothing was imported"),
            ));
        }
    };
    let inputs: Vec<AckInput> = acks
        .into_iter()
        .map(|a| AckInput {
            id: crate::hex::encode(&crate::protocol::reservation::sha256(&a.bytes)),
            file_id: a.file_id,
            member: a.member.clone(),
            has_policy: !a.policies.is_empty(),
            bytes: a.bytes,
        })
        .collect();
    let outcome = ctx
        .app
        .change(&p.actor, |c, now| {
            Ok::<_, DomainError>(match c.import_cisco_acks(&p, &archive, &inputs, now) {
                Ok((change, out)) => (change, Ok(out)),
                Err(e) => (c.cisco_ack_refusal(&archive, &e.to_string()), Err(e)),
            })
        })
        .await??;
    let view = ctx.app.read(|c| AckImportView {
        archive: archive.clone(),
        reports_acknowledged: outcome.imported.iter().map(|a| a.report_ids.len()).sum(),
        imported: outcome
            .imported
            .iter()
            .map(|a| AckView::new(c, a))
            .collect(),
        already_imported: outcome.already,
    });
    let status = if view.imported.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view)))
}

#[derive(Debug, Deserialize)]
pub struct AckQuery {
    /// `PID:SERIAL`, or the serial alone.
    pub device: String,
    pub va: Option<String>,
}

pub async fn device_ack(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<AckQuery>,
) -> Reply<AckFileView> {
    ctx.app.read(|c| {
        let va = q.va.as_deref().map(|v| va_ref(c, &p, v)).transpose()?;
        let a = c.latest_cisco_ack(&p, &q.device, va)?;
        Ok(Json(AckFileView {
            ack: AckView::new(c, a),
            file: BASE64.encode(&a.bytes),
        }))
    })
}

#[derive(Debug, Deserialize)]
pub struct ReportsQuery {
    pub va: Option<String>,
}

pub async fn reports(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<ReportsQuery>,
) -> Reply<Vec<DeviceReportsView>> {
    ctx.app.read(|c| {
        let va = q.va.as_deref().map(|v| va_ref(c, &p, v)).transpose()?;
        let lines = c.cisco_report_status(&p, va);
        Ok(Json(
            lines.iter().map(|d| DeviceReportsView::new(c, d)).collect(),
        ))
    })
}
