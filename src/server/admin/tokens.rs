//! Registration tokens: create (the secret is shown once), list, revoke.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::post;
use serde::Deserialize;

use super::licenses::scope_vas;
use super::{AdminCtx, Body, Caller, Created, Reply, created, va_ref};
use crate::app::{RandomIds, secrets};
use crate::domain::{TokenId, TokenSpec};
use crate::protocol::admin::*;
use crate::server::error::ApiError;

pub(super) fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/v1/tokens", post(create_token).get(list_tokens))
        .route("/v1/tokens/{token}/revoke", post(revoke_token))
}

async fn create_token(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<CreateToken>,
) -> Created<CreatedSecret<TokenView>> {
    let va = ctx.app.read(|c| va_ref(c, &p, &req.va))?;
    let secret = secrets::generate("srt_");
    let spec = TokenSpec {
        description: req.description,
        expires_in_days: req.expires_in_days,
        max_uses: req.max_uses,
        allow_export_controlled: req.allow_export_controlled,
    };
    let token = ctx
        .app
        .change(&p.actor, |c, now| {
            c.create_token(&p, va, spec, secret.hash, now, &RandomIds)
        })
        .await?;
    let now = ctx.app.now();
    created(CreatedSecret {
        secret: secret.text,
        object: ctx.app.read(|c| TokenView::new(c, &token, now)),
    })
}

#[derive(Debug, Deserialize)]
pub struct ListTokens {
    account: Option<String>,
    va: Option<String>,
}

async fn list_tokens(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<ListTokens>,
) -> Reply<Vec<TokenView>> {
    let now = ctx.app.now();
    ctx.app.read(|c| {
        let vas = scope_vas(c, &p, q.account.as_deref(), q.va.as_deref())?;
        let mut out = Vec::new();
        for va in vas {
            let mut tokens: Vec<_> = c.tokens_in(va).collect();
            tokens.sort_by_key(|t| (t.created_at, t.id));
            out.extend(tokens.into_iter().map(|t| TokenView::new(c, t, now)));
        }
        Ok(Json(out))
    })
}

async fn revoke_token(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(token): Path<String>,
) -> Reply<TokenView> {
    let id: TokenId = token
        .parse()
        .map_err(|_| ApiError::not_found("token", &token))?;
    let t = ctx
        .app
        .change(&p.actor, |c, now| c.revoke_token(&p, id, now))
        .await?;
    let now = ctx.app.now();
    Ok(Json(ctx.app.read(|c| TokenView::new(c, &t, now))))
}
