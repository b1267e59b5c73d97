//! The satellite as a whole: `status` and the Prometheus metrics.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::{AdminCtx, Caller, Reply};
use crate::protocol::admin::*;
use crate::server::error::ApiError;

pub(super) fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
}

async fn status(State(ctx): State<AdminCtx>, Caller(p): Caller) -> Reply<Status> {
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
async fn metrics(
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
        ctx.metrics.render(
            &ctx.app,
            Some(&ctx.sync),
            Some(&ctx.cisco),
            &ctx.alert_inputs,
            format,
            detail,
        ),
    )
        .into_response()
}
