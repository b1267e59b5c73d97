//! API tokens: create (the secret is shown once), list, revoke.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::post;
use serde::Deserialize;

use super::users::user_ref;
use super::{AdminCtx, Body, Caller, Created, Reply, created};
use crate::app::{RandomIds, secrets};
use crate::domain::{ApiTokenId, UserId};
use crate::protocol::admin::*;
use crate::server::error::ApiError;

pub(super) fn routes() -> Router<AdminCtx> {
    Router::new()
        .route(
            "/v1/api-tokens",
            post(create_api_token).get(list_api_tokens),
        )
        .route("/v1/api-tokens/{token}/revoke", post(revoke_api_token))
}

async fn create_api_token(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<CreateApiToken>,
) -> Created<CreatedSecret<ApiTokenView>> {
    let user = ctx.app.read(|c| user_ref(c, &p, &req.user))?;
    let secret = secrets::generate("sat_");
    let token = ctx
        .app
        .change(&p.actor, |c, now| {
            c.create_api_token(
                &p,
                user,
                &req.description,
                req.expires_in_days,
                secret.hash,
                now,
                &RandomIds,
            )
        })
        .await?;
    let now = ctx.app.now();
    created(CreatedSecret {
        secret: secret.text,
        object: ctx.app.read(|c| ApiTokenView::new(c, &token, now)),
    })
}

#[derive(Debug, Deserialize)]
pub struct ListApiTokens {
    user: Option<String>,
}

async fn list_api_tokens(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<ListApiTokens>,
) -> Reply<Vec<ApiTokenView>> {
    let now = ctx.app.now();
    ctx.app.read(|c| {
        let users: Vec<UserId> = match &q.user {
            Some(u) => vec![user_ref(c, &p, u)?],
            None if p.is_system_admin() => c.users().map(|u| u.id).collect(),
            None => p.user.into_iter().collect(),
        };
        let mut out = Vec::new();
        for u in users {
            let mut tokens: Vec<_> = c.api_tokens_of(u).collect();
            tokens.sort_by_key(|t| (t.created_at, t.id));
            out.extend(tokens.into_iter().map(|t| ApiTokenView::new(c, t, now)));
        }
        Ok(Json(out))
    })
}

async fn revoke_api_token(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(token): Path<String>,
) -> Reply<ApiTokenView> {
    let id: ApiTokenId = token
        .parse()
        .map_err(|_| ApiError::not_found("API token", &token))?;
    ctx.app
        .change(&p.actor, |c, now| {
            c.revoke_api_token(&p, id, now).map(|ch| (ch, ()))
        })
        .await?;
    let now = ctx.app.now();
    ctx.app.read(|c| {
        let t = c
            .api_token(id)
            .ok_or_else(|| ApiError::not_found("API token", &token))?;
        Ok(Json(ApiTokenView::new(c, t, now)))
    })
}
