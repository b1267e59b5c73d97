//! Virtual Accounts: create, list in tree order, show, move, delete.

use crate::app::RandomIds;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{AdminCtx, Body, Caller, Created, Reply, account_ref, created, va_ref};
use crate::domain::{Catalog, VaId};
use crate::protocol::admin::*;
use crate::server::error::ApiError;

pub(super) fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/v1/vas", post(create_va).get(list_vas))
        .route("/v1/vas/{va}", get(show_va).delete(delete_va))
        .route("/v1/vas/{va}/move", post(move_va))
}

async fn create_va(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<CreateVa>,
) -> Created<VaView> {
    let parent = ctx.app.read(|c| va_ref(c, &p, &req.parent))?;
    let va = ctx
        .app
        .change(&p.actor, |c, now| {
            c.create_va(&p, parent, &req.name, &req.description, now, &RandomIds)
        })
        .await?;
    created(ctx.app.read(|c| VaView::new(c, &va)))
}

#[derive(Debug, Deserialize)]
pub struct ListVas {
    account: Option<String>,
}

/// Visible VAs in tree order (parents before children, siblings by name).
async fn list_vas(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<ListVas>,
) -> Reply<Vec<VaView>> {
    ctx.app.read(|c| {
        let accounts = match &q.account {
            Some(r) => vec![account_ref(c, &p, r)?],
            None => c
                .accounts()
                .filter(|a| c.account_visible(&p, a.id))
                .map(|a| a.id)
                .collect(),
        };
        let mut out = Vec::new();
        for account in accounts {
            let root = c.account(account).expect("resolved").default_va;
            tree_order(c, root, &mut |id| {
                if c.va_access(&p, id).is_some() {
                    out.push(VaView::new(c, c.va(id).expect("in tree")));
                }
            });
        }
        Ok(Json(out))
    })
}

pub(super) fn tree_order(c: &Catalog, va: VaId, visit: &mut dyn FnMut(VaId)) {
    visit(va);
    let mut children: Vec<_> = c.children(va).collect();
    children.sort_by(|a, b| a.name.cmp(&b.name));
    for child in children {
        tree_order(c, child.id, visit);
    }
}

async fn show_va(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(va): Path<String>,
) -> Reply<VaView> {
    ctx.app.read(|c| {
        let id = va_ref(c, &p, &va)?;
        Ok(Json(VaView::new(c, c.va(id).expect("resolved"))))
    })
}

async fn move_va(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(va): Path<String>,
    Body(req): Body<MoveVa>,
) -> Reply<VaView> {
    let (id, parent) = ctx
        .app
        .read(|c| Ok::<_, ApiError>((va_ref(c, &p, &va)?, va_ref(c, &p, &req.parent)?)))?;
    let moved = ctx
        .app
        .change(&p.actor, |c, _| c.move_va(&p, id, parent))
        .await?;
    Ok(Json(ctx.app.read(|c| VaView::new(c, &moved))))
}

async fn delete_va(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(va): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ctx.app.read(|c| va_ref(c, &p, &va))?;
    ctx.app
        .change(&p.actor, |c, now| {
            c.delete_va(&p, id, 0, now).map(|ch| (ch, ()))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
