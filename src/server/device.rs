//! The device listener's router. Devices reach the satellite only over TLS; this module grows
//! the device protocol (SPEC §3) on top of the health check.

use axum::Router;
use axum::routing::get;

pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" }))
}
