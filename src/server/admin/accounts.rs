//! Accounts: create, list, show (with the RUM ingest URL for those who may change the
//! account), approve a pending one.

use crate::app::RandomIds;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};

use super::{AdminCtx, Body, Caller, Created, Reply, account_ref, created};
use crate::domain::Access;
use crate::protocol::admin::*;

pub(super) fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/v1/accounts", post(create_account).get(list_accounts))
        .route("/v1/accounts/{account}", get(show_account))
        .route("/v1/accounts/{account}/approve", post(approve_account))
}

async fn create_account(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<CreateAccount>,
) -> Created<AccountView> {
    let account = ctx
        .app
        .change(&p.actor, |c, now| {
            c.create_account(&p, &req.name, &req.domain, now, &RandomIds)
        })
        .await?;
    created(AccountView::from(&account))
}

async fn list_accounts(State(ctx): State<AdminCtx>, Caller(p): Caller) -> Reply<Vec<AccountView>> {
    Ok(Json(ctx.app.read(|c| {
        let mut out: Vec<AccountView> = c
            .accounts()
            .filter(|a| c.account_visible(&p, a.id))
            .map(AccountView::from)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    })))
}

async fn show_account(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(account): Path<String>,
) -> Reply<AccountView> {
    ctx.app.read(|c| {
        let id = account_ref(c, &p, &account)?;
        let a = c.account(id).expect("resolved");
        let mut view = AccountView::from(a);
        if c.account_access(&p, id) == Some(Access::Write) {
            let path = ctx.rum.key.path(a);
            view.rum_ingest = Some(RumIngestView {
                url: ctx.device_url.as_ref().map(|base| format!("{base}{path}")),
                path,
            });
        }
        Ok(Json(view))
    })
}

async fn approve_account(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(account): Path<String>,
) -> Reply<AccountView> {
    let id = ctx.app.read(|c| account_ref(c, &p, &account))?;
    let a = ctx
        .app
        .change(&p.actor, |c, _| c.approve_account(&p, id))
        .await?;
    Ok(Json(AccountView::from(&a)))
}
