//! Compliance per VA: the figures `satellite compliance --va VA [--all]` prints, from the same
//! call (`compliance_views` over `vas_in_scope`), so a VA outside the user's scope is not found.

use std::time::Instant;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::devices::timed;
use super::guard::SignedIn;
use super::{refused, render};
use crate::protocol::admin::ComplianceView;
use crate::server::admin::AdminCtx;
use crate::server::admin::devices::{compliance_views, vas_in_scope};
use crate::server::error::ApiError;

pub fn routes() -> Router<AdminCtx> {
    Router::new().route("/ui/compliance", get(compliance))
}

#[derive(Debug, Default, Deserialize)]
pub struct ComplianceQuery {
    #[serde(default)]
    va: String,
    /// A checkbox: `on` to show every VA and tag, not only shortages.
    #[serde(default)]
    all: String,
}

#[derive(askama::Template)]
#[template(path = "console/compliance.html")]
struct CompliancePage {
    user: String,
    csrf: String,
    va: String,
    all: bool,
    vas: Vec<(String, String)>,
    lines: Vec<ComplianceView>,
}

pub async fn compliance(
    State(ctx): State<AdminCtx>,
    me: SignedIn,
    Query(q): Query<ComplianceQuery>,
) -> Response {
    let started = Instant::now();
    let p = &me.principal;
    let now = ctx.app.now();
    let all = q.all == "on";
    let found = ctx.app.read(|c| {
        let va = (!q.va.is_empty()).then_some(q.va.as_str());
        let vas = vas_in_scope(c, p, None, va)?;
        let lines = compliance_views(c, p, &vas, now, !all);
        let choices = vas_in_scope(c, p, None, None)?
            .into_iter()
            .map(|v| (v.to_string(), c.va_path(v)))
            .collect();
        Ok::<_, ApiError>((lines, choices))
    });
    let (lines, vas) = match found {
        Ok(found) => found,
        Err(e) => return timed(started, refused(&e)),
    };
    let page = CompliancePage {
        user: me.name.clone(),
        csrf: me.session.csrf.clone(),
        va: q.va,
        all,
        vas,
        lines,
    };
    timed(started, render(StatusCode::OK, &page))
}
