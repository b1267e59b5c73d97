//! Sync: what `satellite sync status` shows (role, binding to an upstream, the last attempts,
//! pending changes, children), from the admin API's own handler, so it is for system
//! administrators only, as there.

use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::devices::{timed, when};
use super::guard::SignedIn;
use super::{refused, render};
use crate::protocol::admin::SyncStatusView;
use crate::server::admin::{AdminCtx, Caller};

pub fn routes() -> Router<AdminCtx> {
    Router::new().route("/ui/sync", get(sync))
}

#[derive(askama::Template)]
#[template(path = "console/sync.html")]
struct SyncPage {
    user: String,
    csrf: String,
    s: SyncStatusView,
    last_attempt: String,
    last_success: String,
    last_error_at: String,
    next_attempt: String,
    bound_at: String,
    /// Each child's last contact, in the order of `s.children`.
    child_seen: Vec<String>,
}

pub async fn sync(State(ctx): State<AdminCtx>, me: SignedIn) -> Response {
    let started = Instant::now();
    let caller = Caller(me.principal.clone());
    let s = match crate::server::admin::sync::status(State(ctx), caller).await {
        Ok(axum::Json(s)) => s,
        Err(e) => return timed(started, refused(&e)),
    };
    let or_never = |t: Option<time::OffsetDateTime>| t.map_or("never".to_string(), when);
    let page = SyncPage {
        user: me.name.clone(),
        csrf: me.session.csrf.clone(),
        last_attempt: or_never(s.last_attempt),
        last_success: or_never(s.last_success),
        last_error_at: or_never(s.last_error_at),
        next_attempt: s.next_attempt.map_or("none scheduled".to_string(), when),
        bound_at: s
            .binding
            .as_ref()
            .map(|b| when(b.bound_at))
            .unwrap_or_default(),
        child_seen: s.children.iter().map(|c| or_never(c.last_seen)).collect(),
        s,
    };
    timed(started, render(StatusCode::OK, &page))
}
