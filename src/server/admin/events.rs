//! The audit log, scoped to what the caller may read.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;

use super::{AdminCtx, Caller, Reply, account_ref, va_ref};
use crate::domain::{Access, EventFilter};
use crate::protocol::admin::*;
use crate::server::error::ApiError;

pub(super) fn routes() -> Router<AdminCtx> {
    Router::new().route("/v1/events", get(list_events))
}

async fn list_events(
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
