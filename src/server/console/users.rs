//! Users and their roles, for system administrators only (anyone else finds no such page, as
//! the API answers them): the list of users and their grants, creating a user, granting and
//! revoking a role, and deleting a user after a confirmation, which ends their console
//! sessions. Each change is the admin API's domain call through `App::change`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::forms::{self, VaOption};
use super::guard::{CsrfForm, Fields, SignedIn};
use super::{redirect, refused, render};
use crate::app::RandomIds;
use crate::domain::{Catalog, Principal, Role, RoleGrant, Scope, UserId};
use crate::server::admin::AdminCtx;
use crate::server::error::ApiError;

pub fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/ui/users", get(users).post(create_user))
        .route("/ui/users/{user}/grant", post(grant))
        .route("/ui/users/{user}/revoke", post(revoke))
        .route(
            "/ui/users/{user}/delete",
            get(confirm_delete).post(delete_user),
        )
}

/// Anyone but a system administrator: this page does not exist for them.
fn not_here() -> ApiError {
    ApiError::not_found("page", "/ui/users")
}

/// One grant as the page shows it, with the scope as the revoke form sends it back.
struct Grant {
    role: &'static str,
    scope: String,
    scope_value: String,
}

struct UserRow {
    id: String,
    name: String,
    grants: Vec<Grant>,
}

#[derive(askama::Template)]
#[template(path = "console/users.html")]
struct Users {
    user: String,
    csrf: String,
    users: Vec<UserRow>,
    roles: Vec<&'static str>,
    /// Every scope a role may have: the satellite, each account, each VA.
    scopes: Vec<VaOption>,
    error: String,
}

async fn users(State(ctx): State<AdminCtx>, me: SignedIn) -> Response {
    users_page(&ctx, &me, None)
}

fn users_page(ctx: &AdminCtx, me: &SignedIn, error: Option<&ApiError>) -> Response {
    let p = &me.principal;
    if !p.is_system_admin() {
        return refused(&not_here());
    }
    let page = ctx.app.read(|c| {
        let mut users: Vec<_> = c.users().collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Users {
            user: me.name.clone(),
            csrf: me.session.csrf.clone(),
            users: users
                .into_iter()
                .map(|u| UserRow {
                    id: u.id.to_string(),
                    name: u.name.clone(),
                    grants: u
                        .grants
                        .iter()
                        .map(|g| Grant {
                            role: g.role.as_str(),
                            scope: scope_label(c, g.scope),
                            scope_value: scope_value(g.scope),
                        })
                        .collect(),
                })
                .collect(),
            roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
            scopes: scopes(c, p),
            error: error.map(|e| e.message.clone()).unwrap_or_default(),
        }
    });
    render(error.map_or(StatusCode::OK, |e| e.status), &page)
}

fn scope_value(s: Scope) -> String {
    match s {
        Scope::System => "system".into(),
        Scope::Account(a) => format!("account:{a}"),
        Scope::Va(v) => format!("va:{v}"),
    }
}

fn scope_label(c: &Catalog, s: Scope) -> String {
    match s {
        Scope::System => "the satellite".into(),
        Scope::Account(a) => c
            .account(a)
            .map_or_else(|| a.to_string(), |a| format!("account {}", a.name)),
        Scope::Va(v) => format!("virtual account {}", c.va_path(v)),
    }
}

/// The scope field's options: the satellite, then each account followed by its VAs.
fn scopes(c: &Catalog, p: &Principal) -> Vec<VaOption> {
    let mut out = vec![VaOption {
        id: scope_value(Scope::System),
        path: scope_label(c, Scope::System),
    }];
    for root in forms::account_roots(c, p) {
        let Some(account) = c.va(root).map(|v| v.account) else {
            continue;
        };
        for s in std::iter::once(Scope::Account(account)).chain(
            forms::visible_tree(c, p, &[root])
                .into_iter()
                .map(|v| Scope::Va(v.id)),
        ) {
            out.push(VaOption {
                id: scope_value(s),
                path: scope_label(c, s),
            });
        }
    }
    out
}

/// The role and scope a grant or revoke form names.
fn grant_of(c: &Catalog, fields: &Fields) -> Result<RoleGrant, ApiError> {
    let invalid = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", m);
    let role = forms::text(fields, "role");
    let role = Role::parse(role).ok_or_else(|| invalid(format!("unknown role `{role}`")))?;
    let raw = forms::text(fields, "scope");
    let scope = match raw.split_once(':') {
        None if raw == "system" => Some(Scope::System),
        Some(("account", id)) => id
            .parse()
            .ok()
            .filter(|a| c.account(*a).is_some())
            .map(Scope::Account),
        Some(("va", id)) => id
            .parse()
            .ok()
            .filter(|v| c.va(*v).is_some())
            .map(Scope::Va),
        _ => None,
    };
    let scope = scope.ok_or_else(|| invalid(format!("unknown scope `{raw}`")))?;
    Ok(RoleGrant { role, scope })
}

fn user_id(c: &Catalog, r: &str) -> Result<UserId, ApiError> {
    r.parse::<UserId>()
        .ok()
        .filter(|id| c.user(*id).is_some())
        .ok_or_else(|| ApiError::not_found("user", r))
}

async fn create_user(State(ctx): State<AdminCtx>, form: CsrfForm) -> Response {
    let CsrfForm { me, fields } = form;
    let p = &me.principal;
    let name = forms::text(&fields, "name");
    let made = ctx
        .app
        .change(&p.actor, |c, now| c.create_user(p, name, now, &RandomIds))
        .await;
    match made {
        Ok(_) => redirect("/ui/users"),
        Err(e) => users_page(&ctx, &me, Some(&ApiError::from(e))),
    }
}

async fn grant(State(ctx): State<AdminCtx>, Path(user): Path<String>, form: CsrfForm) -> Response {
    change_role(ctx, user, form, Catalog::grant_role).await
}

async fn revoke(State(ctx): State<AdminCtx>, Path(user): Path<String>, form: CsrfForm) -> Response {
    change_role(ctx, user, form, Catalog::revoke_role).await
}

type RoleChange =
    fn(
        &Catalog,
        &Principal,
        UserId,
        RoleGrant,
    ) -> Result<(crate::domain::Change, crate::domain::User), crate::domain::DomainError>;

/// Grants or revokes (`op`) the role the form names, as the admin API's role change does.
async fn change_role(ctx: AdminCtx, user: String, form: CsrfForm, op: RoleChange) -> Response {
    let CsrfForm { me, fields } = form;
    let p = &me.principal;
    if !p.is_system_admin() {
        return refused(&not_here());
    }
    let changed = async {
        let (id, g) = ctx
            .app
            .read(|c| Ok::<_, ApiError>((user_id(c, &user)?, grant_of(c, &fields)?)))?;
        ctx.app.change(&p.actor, |c, _| op(c, p, id, g)).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match changed {
        Ok(()) => redirect("/ui/users"),
        Err(e) => users_page(&ctx, &me, Some(&e)),
    }
}

#[derive(askama::Template)]
#[template(path = "console/user_delete.html")]
struct ConfirmDelete {
    user: String,
    csrf: String,
    id: String,
    name: String,
    error: String,
}

async fn confirm_delete(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Path(user): Path<String>,
) -> Response {
    confirm_page(&ctx, &me, &user, None)
}

fn confirm_page(ctx: &AdminCtx, me: &SignedIn, r: &str, error: Option<&ApiError>) -> Response {
    if !me.principal.is_system_admin() {
        return refused(&not_here());
    }
    let found = ctx.app.read(|c| {
        user_id(c, r).map(|id| (id, c.user(id).map(|u| u.name.clone()).unwrap_or_default()))
    });
    match found {
        Ok((id, name)) => render(
            error.map_or(StatusCode::OK, |e| e.status),
            &ConfirmDelete {
                user: me.name.clone(),
                csrf: me.session.csrf.clone(),
                id: id.to_string(),
                name,
                error: error.map(|e| e.message.clone()).unwrap_or_default(),
            },
        ),
        Err(e) => refused(&e),
    }
}

/// Deletes the user once the box naming them is ticked, then ends their console sessions
/// (their next request would end them anyway: the session's user is gone).
async fn delete_user(
    State(ctx): State<AdminCtx>,
    Path(user): Path<String>,
    form: CsrfForm,
) -> Response {
    let CsrfForm { me, fields } = form;
    let p = &me.principal;
    if !p.is_system_admin() {
        return refused(&not_here());
    }
    let deleted = async {
        let id = ctx.app.read(|c| user_id(c, &user))?;
        if forms::text(&fields, "confirm") != id.to_string() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "tick the box naming the user to confirm that they are to be deleted",
            ));
        }
        ctx.app
            .change(&p.actor, |c, _| c.delete_user(p, id).map(|ch| (ch, ())))
            .await?;
        ctx.console.sessions.end_all_of(id);
        Ok(())
    }
    .await;
    match deleted {
        Ok(()) => redirect("/ui/users"),
        Err(e) if e.status == StatusCode::NOT_FOUND => refused(&e),
        Err(e) => confirm_page(&ctx, &me, &user, Some(&e)),
    }
}
