//! Licenses: add, list (pool lines and entries), transfer between VAs, remove. License
//! files are imported in `imports.rs`.

use crate::app::RandomIds;
use std::collections::BTreeSet;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use serde::Deserialize;

use super::vas::tree_order;
use super::{AdminCtx, Body, Caller, Created, Reply, account_ref, created, va_ref};
use crate::domain::{Catalog, LicenseId, LicenseKind, LicenseSource, LicenseSpec, Principal, VaId};
use crate::protocol::admin::*;
use crate::server::error::ApiError;

pub(super) fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/v1/licenses", post(add_license).get(list_licenses))
        .route("/v1/licenses/transfer", post(transfer_licenses))
        .route("/v1/licenses/{license}", delete(remove_license))
}

async fn add_license(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<AddLicense>,
) -> Created<LicenseView> {
    let va = ctx.app.read(|c| va_ref(c, &p, &req.va))?;
    let kind = match (req.start, req.end) {
        (None, None) => LicenseKind::Perpetual,
        (Some(start), Some(end)) => LicenseKind::Term { start, end },
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "a term license needs both `start` and `end`; a perpetual license neither",
            ));
        }
    };
    let spec = LicenseSpec {
        entitlement_tag: req.entitlement_tag,
        display_name: req.display_name,
        quantity: req.quantity,
        kind,
        export_controlled: req.export_controlled,
        source: LicenseSource::Manual,
        order_ref: req.order_ref,
        labels: req.labels.into_iter().collect(),
    };
    let license = ctx
        .app
        .change(&p.actor, |c, now| {
            c.add_license(&p, va, spec, now, &RandomIds)
        })
        .await?;
    created(ctx.app.read(|c| LicenseView::new(c, &license)))
}

#[derive(Debug, Deserialize)]
pub struct ListLicenses {
    account: Option<String>,
    va: Option<String>,
    label: Option<String>,
    tag: Option<String>,
}

/// Pool lines and entries of the VAs in scope. A label or tag filter selects entries, and the
/// pool lines of the tags those entries carry.
async fn list_licenses(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<ListLicenses>,
) -> Reply<LicenseList> {
    let now = ctx.app.now();
    ctx.app.read(|c| {
        let vas = scope_vas(c, &p, q.account.as_deref(), q.va.as_deref())?;
        let mut pools = Vec::new();
        let mut entries = Vec::new();
        for va in vas {
            let selected: Vec<_> = c
                .licenses_in(va)
                .filter(|l| q.label.as_ref().is_none_or(|lb| l.labels.contains(lb)))
                .filter(|l| q.tag.as_ref().is_none_or(|t| &l.entitlement_tag == t))
                .collect();
            let tags: BTreeSet<&str> = selected
                .iter()
                .map(|l| l.entitlement_tag.as_str())
                .collect();
            for line in c.pool(va, now, |va, tag| c.in_use(va, tag, now)) {
                if tags.contains(line.entitlement_tag.as_str()) {
                    pools.push(PoolLineView {
                        va: va.to_string(),
                        va_path: c.va_path(va),
                        entitlement_tag: line.entitlement_tag,
                        display_name: line.display_name,
                        purchased: line.purchased,
                        in_use: line.in_use,
                        balance: line.balance,
                        export_controlled: line.export_controlled,
                        next_expiry: line.next_expiry,
                    });
                }
            }
            let mut views: Vec<_> = selected.iter().map(|l| LicenseView::new(c, l)).collect();
            views.sort_by(|a, b| (&a.entitlement_tag, &a.id).cmp(&(&b.entitlement_tag, &b.id)));
            entries.extend(views);
        }
        Ok(Json(LicenseList { pools, entries }))
    })
}

/// The VAs a listing covers, in tree order: one VA, one account, or everything visible.
pub(super) fn scope_vas(
    c: &Catalog,
    p: &Principal,
    account: Option<&str>,
    va: Option<&str>,
) -> Result<Vec<VaId>, ApiError> {
    if let Some(r) = va {
        return Ok(vec![va_ref(c, p, r)?]);
    }
    let accounts = match account {
        Some(r) => vec![account_ref(c, p, r)?],
        None => c
            .accounts()
            .filter(|a| c.account_visible(p, a.id))
            .map(|a| a.id)
            .collect(),
    };
    let mut out = Vec::new();
    for a in accounts {
        let root = c.account(a).expect("resolved").default_va;
        tree_order(c, root, &mut |id| {
            if c.va_access(p, id).is_some() {
                out.push(id);
            }
        });
    }
    Ok(out)
}

async fn transfer_licenses(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<TransferLicenses>,
) -> Reply<LicenseList> {
    let (from, to) = ctx
        .app
        .read(|c| Ok::<_, ApiError>((va_ref(c, &p, &req.from)?, va_ref(c, &p, &req.to)?)))?;
    let only = req
        .license
        .as_deref()
        .map(|l| l.parse::<LicenseId>().map_err(ApiError::malformed))
        .transpose()?;
    let moved = ctx
        .app
        .change(&p.actor, |c, now| {
            c.transfer_licenses(
                &p,
                from,
                to,
                &req.entitlement_tag,
                req.quantity,
                only,
                now,
                &RandomIds,
            )
            .map(|ch| {
                let ids: Vec<LicenseId> = ch
                    .put
                    .iter()
                    .filter_map(|r| match r {
                        crate::domain::Record::License(l) if l.va == to => Some(l.id),
                        _ => None,
                    })
                    .collect();
                (ch, ids)
            })
        })
        .await?;
    let now = ctx.app.now();
    Ok(Json(ctx.app.read(|c| {
        LicenseList {
            pools: [from, to]
                .into_iter()
                .flat_map(|va| {
                    c.pool(va, now, |va, tag| c.in_use(va, tag, now))
                        .into_iter()
                        .filter(|l| l.entitlement_tag == req.entitlement_tag)
                        .map(move |l| PoolLineView {
                            va: va.to_string(),
                            va_path: c.va_path(va),
                            entitlement_tag: l.entitlement_tag,
                            display_name: l.display_name,
                            purchased: l.purchased,
                            in_use: l.in_use,
                            balance: l.balance,
                            export_controlled: l.export_controlled,
                            next_expiry: l.next_expiry,
                        })
                })
                .collect(),
            entries: moved
                .iter()
                .filter_map(|id| c.license(*id))
                .map(|l| LicenseView::new(c, l))
                .collect(),
        }
    })))
}

#[derive(Debug, Deserialize)]
pub struct RemoveLicense {
    quantity: Option<i64>,
}

async fn remove_license(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(license): Path<String>,
    Query(q): Query<RemoveLicense>,
) -> Result<StatusCode, ApiError> {
    let id: LicenseId = license
        .parse()
        .map_err(|_| ApiError::not_found("license", &license))?;
    ctx.app
        .change(&p.actor, |c, now| {
            c.remove_license(&p, id, q.quantity, now).map(|ch| (ch, ()))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
