//! Accounts and their VA trees: the list of accounts a user sees with each tree as a nested
//! list, a VA's own page, and creating, moving and deleting VAs (deletion after a confirmation
//! naming the VA). Each change is the admin API's domain call through `App::change`, so the
//! access rules and the audit event are the same; a VA the user may not read is not found.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::forms::{self, VaOption};
use super::guard::{CsrfForm, SignedIn};
use super::{redirect, refused, render};
use crate::app::RandomIds;
use crate::domain::{Catalog, Principal, VaId};
use crate::server::admin::{AdminCtx, va_ref};
use crate::server::error::ApiError;

pub fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/ui/accounts", get(accounts))
        .route("/ui/vas", axum::routing::post(create_va))
        .route("/ui/vas/{va}", get(va_page))
        .route("/ui/vas/{va}/move", axum::routing::post(move_va))
        .route("/ui/vas/{va}/delete", get(confirm_delete).post(delete_va))
}

/// One account and its tree.
struct AccountTree {
    name: String,
    domain: String,
    status: &'static str,
    tree: Vec<TreeItem>,
}

/// One VA of a tree as a nested list renders it: after its line, either a list of its
/// children opens, or its item closes and `closes` enclosing lists close with it.
struct TreeItem {
    id: String,
    name: String,
    licenses: usize,
    devices: usize,
    opens: bool,
    closes: usize,
}

#[derive(askama::Template)]
#[template(path = "console/accounts.html")]
struct Accounts {
    user: String,
    csrf: String,
    accounts: Vec<AccountTree>,
    parents: Vec<VaOption>,
    error: String,
    name: String,
    parent: String,
}

async fn accounts(State(ctx): State<AdminCtx>, me: SignedIn) -> Response {
    accounts_page(&ctx, &me, None, "", "")
}

fn accounts_page(
    ctx: &AdminCtx,
    me: &SignedIn,
    error: Option<&ApiError>,
    name: &str,
    parent: &str,
) -> Response {
    let p = &me.principal;
    let (accounts, parents) = ctx.app.read(|c| {
        let mut list: Vec<_> = c
            .accounts()
            .filter(|a| c.account_visible(p, a.id))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let trees = list
            .into_iter()
            .map(|a| AccountTree {
                name: a.name.clone(),
                domain: a.domain.clone(),
                status: a.status.as_str(),
                tree: tree_items(c, p, a.default_va),
            })
            .collect();
        (trees, forms::va_options(c, p))
    });
    let page = Accounts {
        user: me.name.clone(),
        csrf: me.session.csrf.clone(),
        accounts,
        parents,
        error: error.map(|e| e.message.clone()).unwrap_or_default(),
        name: name.to_string(),
        parent: parent.to_string(),
    };
    render(error.map_or(StatusCode::OK, |e| e.status), &page)
}

/// The VAs of one account `p` may read, as the items of a nested list.
fn tree_items(c: &Catalog, p: &Principal, root: VaId) -> Vec<TreeItem> {
    let visible = forms::visible_tree(c, p, &[root]);
    let depth_after = |i: usize| visible.get(i + 1).map_or(0, |v| v.depth);
    visible
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let next = depth_after(i);
            TreeItem {
                id: v.id.to_string(),
                name: c.va(v.id).map(|va| va.name.clone()).unwrap_or_default(),
                licenses: c.licenses_in(v.id).count(),
                devices: c.instance_count_in(v.id),
                opens: next > v.depth,
                closes: v.depth.saturating_sub(next),
            }
        })
        .collect()
}

async fn create_va(State(ctx): State<AdminCtx>, form: CsrfForm) -> Response {
    let CsrfForm { me, fields } = form;
    let p = &me.principal;
    let (parent, name) = (forms::text(&fields, "parent"), forms::text(&fields, "name"));
    let description = forms::text(&fields, "description");
    let created = async {
        let parent = ctx.app.read(|c| va_ref(c, p, parent))?;
        let va = ctx
            .app
            .change(&p.actor, |c, now| {
                c.create_va(p, parent, name, description, now, &RandomIds)
            })
            .await?;
        Ok::<_, ApiError>(va.id)
    }
    .await;
    match created {
        Ok(id) => redirect(&format!("/ui/vas/{id}")),
        Err(e) => accounts_page(&ctx, &me, Some(&e), name, parent),
    }
}

#[derive(askama::Template)]
#[template(path = "console/va.html")]
struct VaPage {
    user: String,
    csrf: String,
    id: String,
    path: String,
    account: String,
    description: String,
    children: Vec<VaOption>,
    licenses: usize,
    devices: usize,
    tokens: usize,
    /// Where it may move: the other VAs of its account the user may read.
    parents: Vec<VaOption>,
    error: String,
}

async fn va_page(State(ctx): State<AdminCtx>, me: SignedIn, Path(va): Path<String>) -> Response {
    show_va(&ctx, &me, &va, None)
}

/// The VA's page, or the not-found page when `p` may not read it.
fn show_va(ctx: &AdminCtx, me: &SignedIn, r: &str, error: Option<&ApiError>) -> Response {
    let p = &me.principal;
    let found = ctx.app.read(|c| {
        let id = va_ref(c, p, r)?;
        let va = c.va(id).expect("resolved");
        let mut children: Vec<_> = c
            .children(id)
            .filter(|v| c.va_access(p, v.id).is_some())
            .collect();
        children.sort_by(|a, b| a.name.cmp(&b.name));
        let parents = forms::va_options(c, p)
            .into_iter()
            .filter(|o| {
                o.id != id.to_string()
                    && o.id.parse().ok().and_then(|v| c.va(v)).map(|v| v.account)
                        == Some(va.account)
            })
            .collect();
        Ok::<_, ApiError>(VaPage {
            user: me.name.clone(),
            csrf: me.session.csrf.clone(),
            id: id.to_string(),
            path: c.va_path(id),
            account: c
                .account(va.account)
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            description: va.description.clone(),
            children: children
                .into_iter()
                .map(|v| VaOption {
                    id: v.id.to_string(),
                    path: v.name.clone(),
                })
                .collect(),
            licenses: c.licenses_in(id).count(),
            devices: c.instance_count_in(id),
            tokens: c.tokens_in(id).count(),
            parents,
            error: error.map(|e| e.message.clone()).unwrap_or_default(),
        })
    });
    match found {
        Ok(page) => render(error.map_or(StatusCode::OK, |e| e.status), &page),
        Err(e) => refused(&e),
    }
}

async fn move_va(State(ctx): State<AdminCtx>, Path(va): Path<String>, form: CsrfForm) -> Response {
    let CsrfForm { me, fields } = form;
    let p = &me.principal;
    let parent = forms::text(&fields, "parent");
    let moved = async {
        let (id, parent) = ctx
            .app
            .read(|c| Ok::<_, ApiError>((va_ref(c, p, &va)?, va_ref(c, p, parent)?)))?;
        ctx.app
            .change(&p.actor, |c, _| c.move_va(p, id, parent))
            .await?;
        Ok::<_, ApiError>(id)
    }
    .await;
    match moved {
        Ok(id) => redirect(&format!("/ui/vas/{id}")),
        Err(e) => show_va(&ctx, &me, &va, Some(&e)),
    }
}

#[derive(askama::Template)]
#[template(path = "console/va_delete.html")]
struct ConfirmDelete {
    user: String,
    csrf: String,
    id: String,
    path: String,
    error: String,
}

async fn confirm_delete(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Path(va): Path<String>,
) -> Response {
    confirm_page(&ctx, &me, &va, None)
}

fn confirm_page(ctx: &AdminCtx, me: &SignedIn, r: &str, error: Option<&ApiError>) -> Response {
    let p = &me.principal;
    match ctx
        .app
        .read(|c| va_ref(c, p, r).map(|id| (id, c.va_path(id))))
    {
        Ok((id, path)) => render(
            error.map_or(StatusCode::OK, |e| e.status),
            &ConfirmDelete {
                user: me.name.clone(),
                csrf: me.session.csrf.clone(),
                id: id.to_string(),
                path,
                error: error.map(|e| e.message.clone()).unwrap_or_default(),
            },
        ),
        Err(e) => refused(&e),
    }
}

/// Deletes the VA once the form's box naming it is ticked; the domain refuses a VA that still
/// holds anything, with its message shown on the confirmation page.
async fn delete_va(
    State(ctx): State<AdminCtx>,
    Path(va): Path<String>,
    form: CsrfForm,
) -> Response {
    let CsrfForm { me, fields } = form;
    let p = &me.principal;
    let deleted = async {
        let id = ctx.app.read(|c| va_ref(c, p, &va))?;
        if forms::text(&fields, "confirm") != id.to_string() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "tick the box naming the virtual account to confirm that it is to be deleted",
            ));
        }
        ctx.app
            .change(&p.actor, |c, now| {
                c.delete_va(p, id, 0, now).map(|ch| (ch, ()))
            })
            .await?;
        Ok(())
    }
    .await;
    match deleted {
        Ok(()) => redirect("/ui/accounts"),
        Err(e) if e.status == StatusCode::NOT_FOUND => refused(&e),
        Err(e) => confirm_page(&ctx, &me, &va, Some(&e)),
    }
}
