//! Licenses per VA and tag: the pool lines `license list` shows (purchased, in use, balance,
//! next expiry) and their entries; adding, removing and transferring. The shortages in the
//! user's scope come first, each with the transfer that fixes it from a VA with spare units
//! (the domain's own "spare licenses elsewhere", as the overview and alerts show it), one
//! click from a prefilled confirmation. Each change is the admin API's domain call.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use time::OffsetDateTime;

use super::forms::{self, VaOption};
use super::guard::{CsrfForm, SignedIn};
use super::{redirect, refused, render};
use crate::app::RandomIds;
use crate::domain::{LicenseId, LicenseKind, LicenseSource, LicenseSpec};
use crate::protocol::admin::{ComplianceView, LicenseView};
use crate::server::admin::devices::{compliance_views, vas_in_scope};
use crate::server::admin::{AdminCtx, va_ref};
use crate::server::error::ApiError;

pub fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/ui/licenses", get(licenses).post(add_license))
        .route("/ui/licenses/transfer", get(transfer_form).post(transfer))
        .route("/ui/licenses/{license}/remove", post(remove_license))
}

/// A pool line as the page shows it.
struct Line {
    va: String,
    va_path: String,
    tag: String,
    display_name: String,
    purchased: u64,
    in_use: u64,
    balance: i64,
    next_expiry: String,
}

/// A shortage and the transfer offered to fix it, if a VA in scope has spare units.
struct Shortage {
    line: ComplianceView,
    offer: Option<Offer>,
}

struct Offer {
    from: String,
    from_path: String,
    quantity: u64,
}

#[derive(askama::Template)]
#[template(path = "console/licenses.html")]
struct Licenses {
    user: String,
    csrf: String,
    /// The VA the page is narrowed to, if any.
    va: String,
    shortages: Vec<Shortage>,
    lines: Vec<Line>,
    entries: Vec<LicenseView>,
    vas: Vec<VaOption>,
    error: String,
    /// The add form as it was sent, when it was refused.
    sent: forms::Sent,
}

async fn licenses(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Query(q): Query<forms::Narrow>,
) -> Response {
    let va = q.va();
    licenses_page(&ctx, &me, va, None, forms::Sent::default())
}

fn licenses_page(
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
        let mut lines = Vec::new();
        let mut entries = Vec::new();
        for &id in &scope {
            for l in c.pool(id, now, |va, tag| c.in_use(va, tag, now)) {
                lines.push(Line {
                    va: id.to_string(),
                    va_path: c.va_path(id),
                    tag: l.entitlement_tag,
                    display_name: l.display_name,
                    purchased: l.purchased,
                    in_use: l.in_use,
                    balance: l.balance,
                    next_expiry: l.next_expiry.map(day).unwrap_or_default(),
                });
            }
            let mut views: Vec<_> = c.licenses_in(id).map(|l| LicenseView::new(c, l)).collect();
            views.sort_by(|a, b| (&a.entitlement_tag, &a.id).cmp(&(&b.entitlement_tag, &b.id)));
            entries.extend(views);
        }
        // Shortages of the whole scope (a subtree when narrowed), as `compliance` shows them.
        let short_vas = vas_in_scope(c, p, None, va)?;
        let shortages = compliance_views(c, p, &short_vas, now, true)
            .into_iter()
            .map(|line| Shortage {
                offer: offer(&line),
                line,
            })
            .collect();
        Ok::<_, ApiError>(Licenses {
            user: me.name.clone(),
            csrf: me.session.csrf.clone(),
            // The VA narrowed to, by id whichever way the link named it.
            va: match va {
                Some(_) => scope[0].to_string(),
                None => String::new(),
            },
            shortages,
            lines,
            entries,
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

/// The transfer that fixes a shortage: the units the VA lacks to cover every request (a device
/// is granted all it asks or nothing, so `shortage` may count more than are missing), from the
/// VA with enough spare units (the first the domain lists), else from the one with the most,
/// as many as it can spare.
fn offer(line: &ComplianceView) -> Option<Offer> {
    let missing = match line.requested.checked_sub(line.purchased) {
        Some(m) if m > 0 => m,
        // Covered on paper but short (units reserved, or export-controlled): what is short.
        _ => line.shortage,
    };
    let enough = line.spare_in.iter().find(|s| s.spare >= missing);
    let best = enough.or_else(|| line.spare_in.iter().max_by_key(|s| s.spare))?;
    Some(Offer {
        from: best.va.clone(),
        from_path: best.va_path.clone(),
        quantity: best.spare.min(missing),
    })
}

/// A date as the pages write it.
fn day(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A date field (`YYYY-MM-DD`, as a date input sends it) as the start of that day, UTC.
fn date_field(
    fields: &super::guard::Fields,
    name: &str,
) -> Result<Option<OffsetDateTime>, ApiError> {
    let raw = forms::text(fields, name);
    if raw.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &format)
        .map(|d| Some(d.midnight().assume_utc()))
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the {name} date must be written YYYY-MM-DD, not `{raw}`"),
            )
        })
}

async fn add_license(State(ctx): State<AdminCtx>, form: CsrfForm) -> Response {
    let CsrfForm { me, fields } = form;
    let p = &me.principal;
    let va = forms::text(&fields, "va");
    let added = async {
        let kind = match (date_field(&fields, "start")?, date_field(&fields, "end")?) {
            (None, None) => LicenseKind::Perpetual,
            (Some(start), Some(end)) => LicenseKind::Term { start, end },
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "a term license needs both a start and an end date; a perpetual one neither",
                ));
            }
        };
        let spec = LicenseSpec {
            entitlement_tag: forms::text(&fields, "tag").to_string(),
            display_name: forms::text(&fields, "display_name").to_string(),
            quantity: forms::required(&fields, "quantity", "the quantity")?,
            kind,
            export_controlled: fields.get("export_controlled").is_some(),
            source: LicenseSource::Manual,
            order_ref: Some(forms::text(&fields, "order_ref"))
                .filter(|o| !o.is_empty())
                .map(str::to_string),
            labels: Default::default(),
        };
        let id = ctx.app.read(|c| va_ref(c, p, va))?;
        ctx.app
            .change(&p.actor, |c, now| {
                c.add_license(p, id, spec, now, &RandomIds)
            })
            .await?;
        Ok(id)
    }
    .await;
    match added {
        Ok(id) => redirect(&format!("/ui/licenses?va={id}")),
        // The form again, on the VA it named, with the refusal.
        Err(e) => {
            let va = Some(va).filter(|v| !v.is_empty());
            licenses_page(&ctx, &me, va, Some(&e), forms::Sent::of(&fields))
        }
    }
}

async fn remove_license(
    State(ctx): State<AdminCtx>,
    Path(license): Path<String>,
    form: CsrfForm,
) -> Response {
    let CsrfForm { me, fields } = form;
    let p = &me.principal;
    let removed = async {
        let id: LicenseId = license
            .parse()
            .map_err(|_| ApiError::not_found("license", &license))?;
        let quantity = forms::number(&fields, "quantity", "the quantity to remove")?;
        ctx.app
            .change(&p.actor, |c, now| {
                c.remove_license(p, id, quantity, now).map(|ch| (ch, ()))
            })
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    let back = forms::text(&fields, "back");
    match removed {
        Ok(()) if back.is_empty() => redirect("/ui/licenses"),
        Ok(()) => redirect(&format!("/ui/licenses?va={}", urlencode(back))),
        Err(e) => licenses_page(&ctx, &me, None, Some(&e), forms::Sent::default()),
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(askama::Template)]
#[template(path = "console/transfer.html")]
struct Transfer {
    user: String,
    csrf: String,
    from: String,
    to: String,
    tag: String,
    quantity: String,
    vas: Vec<VaOption>,
    error: String,
}

/// The transfer form's fields, prefilled from the query (the shortage view's offer).
#[derive(Deserialize, Default)]
struct TransferFields {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    quantity: String,
}

async fn transfer_form(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Query(q): Query<TransferFields>,
) -> Response {
    transfer_page(&ctx, &me, q, None)
}

fn transfer_page(
    ctx: &AdminCtx,
    me: &SignedIn,
    f: TransferFields,
    error: Option<&ApiError>,
) -> Response {
    let vas = ctx.app.read(|c| forms::va_options(c, &me.principal));
    let page = Transfer {
        user: me.name.clone(),
        csrf: me.session.csrf.clone(),
        from: f.from,
        to: f.to,
        tag: f.tag,
        quantity: f.quantity,
        vas,
        error: error.map(|e| e.message.clone()).unwrap_or_default(),
    };
    render(error.map_or(StatusCode::OK, |e| e.status), &page)
}

async fn transfer(State(ctx): State<AdminCtx>, form: CsrfForm) -> Response {
    let CsrfForm { me, fields } = form;
    let p = &me.principal;
    let tag = forms::text(&fields, "tag");
    let (from, to) = (forms::text(&fields, "from"), forms::text(&fields, "to"));
    let moved = async {
        let quantity = forms::required(&fields, "quantity", "the quantity")?;
        let (from, to) = ctx
            .app
            .read(|c| Ok::<_, ApiError>((va_ref(c, p, from)?, va_ref(c, p, to)?)))?;
        ctx.app
            .change(&p.actor, |c, now| {
                c.transfer_licenses(p, from, to, tag, quantity, None, now, &RandomIds)
                    .map(|ch| (ch, ()))
            })
            .await?;
        Ok::<_, ApiError>(to)
    }
    .await;
    match moved {
        Ok(_) => redirect("/ui/licenses"),
        Err(e) => {
            let again = TransferFields {
                from: from.to_string(),
                to: to.to_string(),
                tag: tag.to_string(),
                quantity: forms::text(&fields, "quantity").to_string(),
            };
            transfer_page(&ctx, &me, again, Some(&e))
        }
    }
}
