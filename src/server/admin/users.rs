//! Users and their role grants.

use crate::app::RandomIds;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};

use super::{AdminCtx, Body, Caller, Created, Reply, account_ref, created, va_ref};
use crate::domain::{
    Catalog, Change, DomainError, Principal, Role, RoleGrant, Scope, User, UserId,
};
use crate::protocol::admin::*;
use crate::server::error::ApiError;

pub(super) fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/v1/users", post(create_user).get(list_users))
        .route("/v1/users/{user}", delete(delete_user))
        .route("/v1/users/{user}/grants", post(grant_role))
        .route("/v1/users/{user}/password", post(set_password))
        .route("/v1/users/{user}/revoke", post(revoke_role))
}

pub(super) fn user_ref(c: &Catalog, p: &Principal, r: &str) -> Result<UserId, ApiError> {
    c.user_by_name(r)
        .filter(|u| p.is_system_admin() || p.user == Some(u.id))
        .map(|u| u.id)
        .ok_or_else(|| ApiError::not_found("user", r))
}

async fn create_user(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<CreateUser>,
) -> Created<UserView> {
    let user = ctx
        .app
        .change(&p.actor, |c, now| {
            c.create_user(&p, &req.name, now, &RandomIds)
        })
        .await?;
    created(ctx.app.read(|c| UserView::new(c, &user)))
}

async fn list_users(State(ctx): State<AdminCtx>, Caller(p): Caller) -> Reply<Vec<UserView>> {
    ctx.app.read(|c| {
        c.check_system(&p)?;
        let mut out: Vec<_> = c.users().map(|u| UserView::new(c, u)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Json(out))
    })
}

async fn delete_user(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ctx.app.read(|c| user_ref(c, &p, &user))?;
    ctx.app
        .change(&p.actor, |c, _| c.delete_user(&p, id).map(|ch| (ch, ())))
        .await?;
    ctx.console.sessions.end_all_of(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a console password: hashed off the async threads, then stored and audited; the user's
/// console sessions end, so a password changed because it leaked locks the holder out.
async fn set_password(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(user): Path<String>,
    Body(req): Body<SetPassword>,
) -> Result<StatusCode, ApiError> {
    let id = ctx.app.read(|c| user_ref(c, &p, &user))?;
    let phc = ctx.console.passwords.hash(req.password).await?;
    ctx.app
        .change(&p.actor, |c, now| {
            c.set_password(&p, id, phc, now).map(|ch| (ch, ()))
        })
        .await?;
    ctx.console.sessions.end_all_of(id);
    Ok(StatusCode::NO_CONTENT)
}

fn grant_of(c: &Catalog, p: &Principal, req: &GrantRole) -> Result<RoleGrant, ApiError> {
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "unknown role `{}`; roles are system-admin, account-admin, account-user, \
                 va-admin, va-user, metrics-reader",
                req.role
            ),
        )
    })?;
    let scope = match (&req.account, &req.va) {
        (None, None) => Scope::System,
        (Some(a), None) => Scope::Account(account_ref(c, p, a)?),
        (None, Some(v)) => Scope::Va(va_ref(c, p, v)?),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "give either an account or a VA as the scope of a role, not both",
            ));
        }
    };
    Ok(RoleGrant { role, scope })
}

async fn grant_role(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(user): Path<String>,
    Body(req): Body<GrantRole>,
) -> Reply<UserView> {
    change_role(&ctx, &p, &user, &req, Catalog::grant_role).await
}

async fn revoke_role(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(user): Path<String>,
    Body(req): Body<GrantRole>,
) -> Reply<UserView> {
    change_role(&ctx, &p, &user, &req, Catalog::revoke_role).await
}

/// `Catalog::grant_role` or `Catalog::revoke_role`.
type RoleChange =
    fn(&Catalog, &Principal, UserId, RoleGrant) -> Result<(Change, User), DomainError>;

/// Grants or revokes (`op`) the role `req` names to `user`, and answers with the user.
async fn change_role(
    ctx: &AdminCtx,
    p: &Principal,
    user: &str,
    req: &GrantRole,
    op: RoleChange,
) -> Reply<UserView> {
    let (id, grant) = ctx
        .app
        .read(|c| Ok::<_, ApiError>((user_ref(c, p, user)?, grant_of(c, p, req)?)))?;
    let u = ctx.app.change(&p.actor, |c, _| op(c, p, id, grant)).await?;
    Ok(Json(ctx.app.read(|c| UserView::new(c, &u))))
}
