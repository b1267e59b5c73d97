//! Registration tokens: the list per VA, creating one (the secret shown once, with a copy
//! button), and revoking one after a confirmation. The form that creates a token answers with
//! a redirect to a page that takes the secret from memory ([`forms::ShownOnce`]), so the secret
//! is never in a URL, a reload neither creates another token nor shows the secret again, and
//! only the SHA-256 of the secret is stored, as for the CLI.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::forms::{self, VaOption};
use super::guard::{CsrfForm, SignedIn};
use super::{redirect, refused, render};
use crate::app::{RandomIds, secrets};
use crate::domain::{TokenId, TokenSpec};
use crate::protocol::admin::TokenView;
use crate::server::admin::{AdminCtx, va_ref};
use crate::server::error::ApiError;

pub fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/ui/tokens", get(tokens).post(create_token))
        .route("/ui/tokens/{token}/created", get(created))
        .route(
            "/ui/tokens/{token}/revoke",
            get(confirm_revoke).post(revoke),
        )
        .route("/ui/static/copy.js", get(copy_script))
}

#[derive(askama::Template)]
#[template(path = "console/tokens.html")]
struct Tokens {
    user: String,
    csrf: String,
    va: String,
    tokens: Vec<TokenView>,
    vas: Vec<VaOption>,
    error: String,
    /// The create form as it was sent, when it was refused.
    sent: forms::Sent,
}

async fn tokens(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Query(q): Query<forms::Narrow>,
) -> Response {
    let va = q.va();
    tokens_page(&ctx, &me, va, None, forms::Sent::default())
}

fn tokens_page(
    ctx: &AdminCtx,
    me: &SignedIn,
    va: Option<&str>,
    error: Option<&ApiError>,
    sent: forms::Sent,
) -> Response {
    let p = &me.principal;
    let now = ctx.app.now();
    let page = ctx.app.read(|c| {
        let scope = forms::page_scope(c, p, va)?;
        let mut tokens = Vec::new();
        for &id in &scope {
            let mut in_va: Vec<_> = c.tokens_in(id).collect();
            in_va.sort_by_key(|t| (t.created_at, t.id));
            tokens.extend(in_va.into_iter().map(|t| TokenView::new(c, t, now)));
        }
        Ok::<_, ApiError>(Tokens {
            user: me.name.clone(),
            csrf: me.session.csrf.clone(),
            // The VA narrowed to, by id whichever way the link named it.
            va: match va {
                Some(_) => scope[0].to_string(),
                None => String::new(),
            },
            tokens,
            vas: forms::va_options(c, p),
            error: error.map(|e| e.message.clone()).unwrap_or_default(),
            sent,
        })
    });
    match page {
        Ok(page) => render(error.map_or(StatusCode::OK, |e| e.status), &page),
        Err(e) => refused(&e),
    }
}

/// Where a new token's secret waits for its one showing: this session's, this token's.
fn shown_once_key(me: &SignedIn, token: &str) -> String {
    format!("{}:{token}", me.session.csrf)
}

async fn create_token(State(ctx): State<AdminCtx>, form: CsrfForm) -> Response {
    let CsrfForm { me, fields } = form;
    let p = &me.principal;
    let va = forms::text(&fields, "va");
    let made = async {
        let spec = TokenSpec {
            description: forms::text(&fields, "description").to_string(),
            expires_in_days: forms::number(&fields, "expires_in_days", "the expiry in days")?,
            max_uses: forms::number(&fields, "max_uses", "the maximum number of uses")?,
            allow_export_controlled: fields.get("allow_export_controlled").is_some(),
        };
        let id = ctx.app.read(|c| va_ref(c, p, va))?;
        let secret = secrets::generate("srt_");
        let token = ctx
            .app
            .change(&p.actor, |c, now| {
                c.create_token(p, id, spec, secret.hash, now, &RandomIds)
            })
            .await?;
        Ok::<_, ApiError>((token.id.to_string(), secret.text))
    }
    .await;
    match made {
        Ok((id, secret)) => {
            let key = shown_once_key(&me, &id);
            ctx.console.shown_once.put(key, secret, ctx.app.now());
            redirect(&format!("/ui/tokens/{id}/created"))
        }
        // The form again, on the VA it named, with the refusal.
        Err(e) => {
            let va = Some(va).filter(|v| !v.is_empty());
            tokens_page(&ctx, &me, va, Some(&e), forms::Sent::of(&fields))
        }
    }
}

#[derive(askama::Template)]
#[template(path = "console/token_created.html")]
struct Created {
    user: String,
    csrf: String,
    token: TokenView,
    /// Empty once shown.
    secret: String,
}

/// The new token, with its secret the first time only.
async fn created(State(ctx): State<AdminCtx>, me: SignedIn, Path(token): Path<String>) -> Response {
    let token = match visible_token(&ctx, &me, &token) {
        Ok(t) => t,
        Err(e) => return refused(&e),
    };
    let secret = ctx
        .console
        .shown_once
        .take(&shown_once_key(&me, &token.id), ctx.app.now())
        .unwrap_or_default();
    let page = Created {
        user: me.name.clone(),
        csrf: me.session.csrf.clone(),
        token,
        secret,
    };
    render(StatusCode::OK, &page)
}

/// A token whose VA the user may read, else not found.
fn visible_token(ctx: &AdminCtx, me: &SignedIn, r: &str) -> Result<TokenView, ApiError> {
    let now = ctx.app.now();
    ctx.app.read(|c| {
        r.parse::<TokenId>()
            .ok()
            .and_then(|id| c.token(id))
            .filter(|t| c.va_access(&me.principal, t.va).is_some())
            .map(|t| TokenView::new(c, t, now))
            .ok_or_else(|| ApiError::not_found("token", r))
    })
}

#[derive(askama::Template)]
#[template(path = "console/token_revoke.html")]
struct ConfirmRevoke {
    user: String,
    csrf: String,
    token: TokenView,
    error: String,
}

async fn confirm_revoke(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Path(token): Path<String>,
) -> Response {
    match visible_token(&ctx, &me, &token) {
        Ok(token) => render(
            StatusCode::OK,
            &ConfirmRevoke {
                user: me.name.clone(),
                csrf: me.session.csrf.clone(),
                token,
                error: String::new(),
            },
        ),
        Err(e) => refused(&e),
    }
}

async fn revoke(
    State(ctx): State<AdminCtx>,
    Path(token): Path<String>,
    form: CsrfForm,
) -> Response {
    let CsrfForm { me, .. } = form;
    let p = &me.principal;
    let done = async {
        let id: TokenId = token
            .parse()
            .map_err(|_| ApiError::not_found("token", &token))?;
        let t = ctx
            .app
            .change(&p.actor, |c, now| c.revoke_token(p, id, now))
            .await?;
        Ok::<_, ApiError>(t.va)
    }
    .await;
    match done {
        Ok(va) => redirect(&format!("/ui/tokens?va={va}")),
        Err(e) => match visible_token(&ctx, &me, &token) {
            Ok(view) => render(
                e.status,
                &ConfirmRevoke {
                    user: me.name.clone(),
                    csrf: me.session.csrf.clone(),
                    token: view,
                    error: e.message.clone(),
                },
            ),
            Err(_) => refused(&e),
        },
    }
}

/// The copy button's few lines of script, embedded like the stylesheet. Without script the
/// button stays hidden and the secret stays a selectable field.
async fn copy_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../templates/console/copy.js"),
    )
        .into_response()
}
