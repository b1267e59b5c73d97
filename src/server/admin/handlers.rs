//! Admin API handlers: decode, call the domain through `App`, encode.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{AdminCtx, Body, Caller, account_ref, va_ref};
use crate::app::secrets;
use crate::domain::{
    Access, ApiTokenId, Catalog, EventFilter, LicenseId, LicenseKind, LicenseSource, LicenseSpec,
    Principal, Role, RoleGrant, Scope, TokenId, TokenSpec, UserId, VaId,
};
use crate::protocol::admin::*;
use crate::server::error::ApiError;

type Reply<T> = Result<Json<T>, ApiError>;
type Created<T> = Result<(StatusCode, Json<T>), ApiError>;

fn created<T>(t: T) -> Created<T> {
    Ok((StatusCode::CREATED, Json(t)))
}

pub async fn status(State(ctx): State<AdminCtx>, Caller(p): Caller) -> Reply<Status> {
    let (now, timers) = (ctx.app.now(), ctx.app.timers());
    let (held, users) = ctx
        .app
        .read(|c| (c.holdings(&p, now, &timers), c.users().count()));
    let satellite = if p.is_system_admin() {
        let store = ctx.app.store_health();
        Some(SatelliteStatus {
            data_dir: ctx.data_dir.clone(),
            store_bytes: store.bytes?,
            schema_version: store.schema_version,
            users,
            store_flushes: store.flushes,
            store_flush_mean_ms: store.flush_micros as f64 / 1000.0 / store.flushes.max(1) as f64,
            store_failure: store.failure,
            unreadable_records: ctx.app.unreadable().to_vec(),
            listeners: ctx.listeners.clone(),
            workers: ctx.workers.statuses(),
        })
    } else {
        None
    };
    Ok(Json(Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: ctx.app.started_at(),
        now,
        scope: if satellite.is_some() {
            "satellite"
        } else {
            "granted"
        }
        .to_string(),
        accounts: held.accounts,
        virtual_accounts: held.virtual_accounts,
        licenses: held.licenses,
        tokens: held.tokens,
        devices: held.devices,
        devices_by_state: held
            .devices_by_state
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), n))
            .collect(),
        satellite,
    }))
}

/// Prometheus metrics: satellite-wide figures, for system administrators and holders of the
/// metrics-reader role (a monitoring system's token). Anyone else is refused (SPEC §7).
/// The exposition is negotiated: OpenMetrics when the `Accept` header asks for it (Prometheus
/// does), the Prometheus text format 0.0.4 otherwise. `?licenses=account` sums license series
/// per account instead of per VA (for satellites with very many VAs).
pub async fn metrics(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> axum::response::Response {
    use crate::server::metrics::{Format, LicenseDetail};
    use axum::response::IntoResponse;
    if !p.may_read_metrics() {
        return ApiError::from(crate::domain::DomainError::Forbidden(format!(
            "{} may not read /metrics: metrics are satellite-wide figures; scrape with the \
                 token of a user holding the metrics-reader role (`satellite user grant USER \
                 --role metrics-reader`)",
            p.actor
        )))
        .into_response();
    }
    let detail = match query.as_deref().unwrap_or_default() {
        "" | "licenses=va" => LicenseDetail::Va,
        "licenses=account" => LicenseDetail::Account,
        other => {
            return ApiError::malformed(format!(
                "unknown query `{other}`: /metrics takes `licenses=va` (the default) or \
                 `licenses=account`"
            ))
            .into_response();
        }
    };
    let format = Format::negotiate(
        headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    (
        [
            (axum::http::header::CONTENT_TYPE, format.content_type()),
            (axum::http::header::VARY, "Accept"),
        ],
        ctx.metrics
            .render(&ctx.app, Some(&ctx.sync), &ctx.alert_inputs, format, detail),
    )
        .into_response()
}

// Accounts.

pub async fn create_account(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<CreateAccount>,
) -> Created<AccountView> {
    let account = ctx
        .app
        .change(&p.actor, |c, now| {
            c.create_account(&p, &req.name, &req.domain, now)
        })
        .await?;
    created(AccountView::from(&account))
}

pub async fn list_accounts(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
) -> Reply<Vec<AccountView>> {
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

pub async fn show_account(
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

pub async fn approve_account(
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

// Virtual Accounts.

pub async fn create_va(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<CreateVa>,
) -> Created<VaView> {
    let parent = ctx.app.read(|c| va_ref(c, &p, &req.parent))?;
    let va = ctx
        .app
        .change(&p.actor, |c, now| {
            c.create_va(&p, parent, &req.name, &req.description, now)
        })
        .await?;
    created(ctx.app.read(|c| VaView::new(c, &va)))
}

#[derive(Debug, Deserialize)]
pub struct ListVas {
    account: Option<String>,
}

/// Visible VAs in tree order (parents before children, siblings by name).
pub async fn list_vas(
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

fn tree_order(c: &Catalog, va: VaId, visit: &mut dyn FnMut(VaId)) {
    visit(va);
    let mut children: Vec<_> = c.children(va).collect();
    children.sort_by(|a, b| a.name.cmp(&b.name));
    for child in children {
        tree_order(c, child.id, visit);
    }
}

pub async fn show_va(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(va): Path<String>,
) -> Reply<VaView> {
    ctx.app.read(|c| {
        let id = va_ref(c, &p, &va)?;
        Ok(Json(VaView::new(c, c.va(id).expect("resolved"))))
    })
}

pub async fn move_va(
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

pub async fn delete_va(
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

// Licenses.

pub async fn add_license(
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
        .change(&p.actor, |c, now| c.add_license(&p, va, spec, now))
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
pub async fn list_licenses(
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
fn scope_vas(
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

pub async fn transfer_licenses(
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
            c.transfer_licenses(&p, from, to, &req.entitlement_tag, req.quantity, only, now)
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

pub async fn remove_license(
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

// Registration tokens.

pub async fn create_token(
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
            c.create_token(&p, va, spec, secret.hash, now)
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

pub async fn list_tokens(
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

pub async fn revoke_token(
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

// Users and API tokens.

fn user_ref(c: &Catalog, p: &Principal, r: &str) -> Result<UserId, ApiError> {
    c.user_by_name(r)
        .filter(|u| p.is_system_admin() || p.user == Some(u.id))
        .map(|u| u.id)
        .ok_or_else(|| ApiError::not_found("user", r))
}

pub async fn create_user(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<CreateUser>,
) -> Created<UserView> {
    let user = ctx
        .app
        .change(&p.actor, |c, now| c.create_user(&p, &req.name, now))
        .await?;
    created(ctx.app.read(|c| UserView::new(c, &user)))
}

pub async fn list_users(State(ctx): State<AdminCtx>, Caller(p): Caller) -> Reply<Vec<UserView>> {
    ctx.app.read(|c| {
        c.check_system(&p)?;
        let mut out: Vec<_> = c.users().map(|u| UserView::new(c, u)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Json(out))
    })
}

pub async fn delete_user(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ctx.app.read(|c| user_ref(c, &p, &user))?;
    ctx.app
        .change(&p.actor, |c, _| c.delete_user(&p, id).map(|ch| (ch, ())))
        .await?;
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

pub async fn grant_role(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(user): Path<String>,
    Body(req): Body<GrantRole>,
) -> Reply<UserView> {
    let (id, grant) = ctx
        .app
        .read(|c| Ok::<_, ApiError>((user_ref(c, &p, &user)?, grant_of(c, &p, &req)?)))?;
    let u = ctx
        .app
        .change(&p.actor, |c, _| c.grant_role(&p, id, grant))
        .await?;
    Ok(Json(ctx.app.read(|c| UserView::new(c, &u))))
}

pub async fn revoke_role(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(user): Path<String>,
    Body(req): Body<GrantRole>,
) -> Reply<UserView> {
    let (id, grant) = ctx
        .app
        .read(|c| Ok::<_, ApiError>((user_ref(c, &p, &user)?, grant_of(c, &p, &req)?)))?;
    let u = ctx
        .app
        .change(&p.actor, |c, _| c.revoke_role(&p, id, grant))
        .await?;
    Ok(Json(ctx.app.read(|c| UserView::new(c, &u))))
}

pub async fn create_api_token(
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

pub async fn list_api_tokens(
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

pub async fn revoke_api_token(
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

// Events.

pub async fn list_events(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<EventQuery>,
) -> Reply<Vec<EventView>> {
    let filter = ctx.app.read(|c| {
        Ok::<_, ApiError>(EventFilter {
            since: q.since,
            until: q.until,
            account: q
                .account
                .as_deref()
                .map(|a| account_ref(c, &p, a))
                .transpose()?,
            va: q.va.as_deref().map(|v| va_ref(c, &p, v)).transpose()?,
            device: q.device.clone(),
            action: q.action.clone(),
        })
    })?;
    if let Some(va) = filter.va {
        ctx.app
            .read(|c| c.check_va(&p, va, Access::Read).map(|_| ()))?;
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let events = ctx.app.events(&p, &filter, q.before, limit)?;
    Ok(Json(events.into_iter().map(EventView::from).collect()))
}
