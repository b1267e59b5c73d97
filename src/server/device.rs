//! The device listener's router: protocol v1 (SPEC §3), the upstream's sync endpoints, and the
//! CSLU-style endpoint for Cisco RUM reports (SPEC §3b, in `rum.rs`). Handlers are thin:
//! authenticate, decode, call the domain through `App`, encode. A 2xx is sent only after the
//! change is on disk.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use time::OffsetDateTime;

use super::device_ctx::{DeviceActor, peer_ip};
pub use super::device_ctx::{DeviceCtx, DeviceShared};
use super::error::ApiError;
use super::listen::Peer;
use super::ratelimit;
use crate::app::{RandomIds, secrets};
use crate::domain::{
    Change, DeviceError, InstanceId, IssuedIdentity, Registration, Udi, UsageOutcome,
};
use crate::pki::Pki;
use crate::protocol::device::{self as wire, Authorization, codes};

pub fn router(ctx: DeviceCtx) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v1/register", post(register))
        .route("/v1/usage", post(usage))
        .route("/v1/authorization", get(authorization))
        .route("/v1/renew", post(renew))
        .route("/v1/deregister", post(deregister))
        .route("/v1/sync/ca", get(super::sync::ca))
        .route("/v1/sync/register", post(super::sync::register))
        .route("/v1/sync", post(super::sync::exchange))
        .route("/cslu/v1/pi", post(super::rum::rum_default))
        .route("/cslu/v1/pi/{target}", post(super::rum::rum_for_account))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                codes::NOT_FOUND,
                "no such device endpoint",
            )
        })
        .with_state(ctx)
}

/// The routes of this router that take bodies larger than `[device] max_body_bytes`, with the
/// limit their handlers read with; `server::limits` refuses a larger announced body up front.
pub fn larger_body_limit(path: &str) -> Option<usize> {
    if path == "/cslu/v1/pi" || path.starts_with("/cslu/v1/pi/") {
        Some(super::rum::MAX_RUM_BYTES)
    } else if path == "/v1/sync" {
        Some(crate::protocol::sync::MAX_FILE_BYTES)
    } else {
        None
    }
}

/// Reads a size-limited body; the device decoders do the rest.
async fn body(req: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    super::error::read_body(req, limit).await
}

fn malformed(e: wire::Malformed) -> ApiError {
    ApiError::malformed(e.0)
}

async fn register(State(ctx): State<DeviceCtx>, req: Request) -> Response {
    let ip = peer_ip(&req);
    let attempt = async {
        let answer = register_inner(&ctx, req).await?;
        Ok((StatusCode::CREATED, Json(answer)))
    };
    ratelimit::limited(&ctx.limiter, ip, || ctx.app.clock_now(), attempt).await
}

async fn register_inner(ctx: &DeviceCtx, req: Request) -> Result<wire::RegisterResponse, ApiError> {
    let r = wire::decode_register(&body(req, ctx.max_body_bytes).await?).map_err(malformed)?;
    let registration = Registration {
        token_hash: secrets::hash(&r.token),
        udi: Udi {
            pid: r.udi.pid.clone().into(),
            serial: r.udi.serial.clone().into(),
        },
        hostname: r.hostname,
        product: r.product,
        version: r.version,
        force: r.force,
    };
    let timers = ctx.app.timers();
    let mut certificate = None;
    let actor = format!("device:{}:{}", r.udi.pid, r.udi.serial);
    let (instance, answer, now) = ctx
        .app
        .change(&actor, |c, now| {
            let (change, instance) = c.register_device(&registration, now, &RandomIds, |id| {
                issue(
                    &ctx.pki,
                    &r.csr,
                    id,
                    timers.certificate_validity,
                    now,
                    &mut certificate,
                )
            })?;
            let answer = c.authorization(&instance, now, &timers);
            Ok::<_, DeviceError>((change, (instance, answer, now)))
        })
        .await?;
    Ok(wire::RegisterResponse {
        instance_id: instance.id.to_string(),
        certificate: certificate.unwrap_or_default(),
        ca_chain: ctx.pki.ca_pem().to_string(),
        renew_after: now + timers.renew_after,
        report_interval_secs: timers.report_interval.whole_seconds().max(0) as u64,
        authorization: Authorization::from_state(instance.id, &answer),
    })
}

/// Signs the device's CSR for instance `id` (registration and renewal alike): the identity the
/// domain records, and the certificate's PEM for the answer in `pem`.
fn issue(
    pki: &Pki,
    csr: &str,
    id: InstanceId,
    validity: time::Duration,
    now: OffsetDateTime,
    pem: &mut Option<String>,
) -> Result<IssuedIdentity, DeviceError> {
    let issued = pki
        .sign_csr(csr, &id.to_string(), validity, now)
        .map_err(|e| DeviceError::BadCsr(e.to_string()))?;
    *pem = Some(issued.pem);
    Ok(IssuedIdentity {
        serial: issued.serial,
        not_after: issued.not_after,
    })
}

/// The device behind the identity certificate of this connection.
pub struct DeviceIdentity(pub InstanceId);

impl FromRequestParts<DeviceCtx> for DeviceIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &DeviceCtx) -> Result<Self, ApiError> {
        let serial = match parts.extensions.get::<Peer>() {
            Some(Peer::Tls {
                client_serial: Some(serial),
                ..
            }) => serial,
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    codes::CERTIFICATE_REQUIRED,
                    "this call needs the identity certificate issued at registration (mutual TLS)",
                ));
            }
        };
        let id = ctx
            .app
            .read(|c| c.authenticate_device(serial).map(|i| i.id))?;
        crate::server::metrics::record_device(DeviceActor(id));
        Ok(DeviceIdentity(id))
    }
}

fn actor(id: InstanceId) -> DeviceActor {
    DeviceActor(id)
}

/// Either a new answer, or a repeat of one that may still be on its way to disk.
enum Reply {
    New(crate::domain::AuthorizationState),
    Repeat(crate::domain::AuthorizationState),
}

async fn usage(
    State(ctx): State<DeviceCtx>,
    DeviceIdentity(id): DeviceIdentity,
    req: Request,
) -> Result<Response, ApiError> {
    let u = wire::decode_usage(&body(req, ctx.max_body_bytes).await?).map_err(malformed)?;
    let lines: Vec<(String, u64)> = u
        .usage
        .into_iter()
        .map(|l| (l.entitlement_tag, l.count))
        .collect();
    let timers = ctx.app.timers();
    let reply = ctx
        .app
        .change(actor(id), |c, now| {
            Ok::<_, DeviceError>(
                match c.report_usage(id, u.seq, u.measured_at, &lines, now, &timers)? {
                    UsageOutcome::Applied(change, answer) => (change, Reply::New(answer)),
                    UsageOutcome::Repeat(answer) => (Change::silent(), Reply::Repeat(answer)),
                },
            )
        })
        .await?;
    let answer = match reply {
        Reply::New(a) => a,
        Reply::Repeat(a) => {
            // The first copy of this report may still be waiting for its flush: answer the
            // repeat only once everything before it is durable too.
            ctx.app.wait_durable().await?;
            a
        }
    };
    Ok(json_answer(&Authorization::from_state(id, &answer)))
}

/// The answer to a usage report as JSON, like axum's `Json`, but serialized into a buffer
/// sized for an authorization at once: `Json` starts at 128 bytes and grew it three or four
/// times per report.
fn json_answer(answer: &Authorization) -> Response {
    let mut body = Vec::with_capacity(512);
    match serde_json::to_writer(&mut body, answer) {
        Ok(()) => (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        // Not reached (the answer has no map keys that are not strings); `Json` reports it.
        Err(_) => Json(answer).into_response(),
    }
}

async fn authorization(
    State(ctx): State<DeviceCtx>,
    DeviceIdentity(id): DeviceIdentity,
) -> Result<Json<Authorization>, ApiError> {
    let timers = ctx.app.timers();
    let answer = ctx
        .app
        .change(actor(id), |c, now| c.contact(id, now, &timers))
        .await?;
    Ok(Json(Authorization::from_state(id, &answer)))
}

async fn renew(
    State(ctx): State<DeviceCtx>,
    DeviceIdentity(id): DeviceIdentity,
    req: Request,
) -> Result<Json<wire::RenewResponse>, ApiError> {
    let r = wire::decode_renew(&body(req, ctx.max_body_bytes).await?).map_err(malformed)?;
    let timers = ctx.app.timers();
    let mut certificate = None;
    let now = ctx
        .app
        .change(actor(id), |c, now| {
            let (change, _) = c.renew_device(id, now, |id| {
                issue(
                    &ctx.pki,
                    &r.csr,
                    id,
                    timers.certificate_validity,
                    now,
                    &mut certificate,
                )
            })?;
            Ok::<_, DeviceError>((change, now))
        })
        .await?;
    Ok(Json(wire::RenewResponse {
        certificate: certificate.unwrap_or_default(),
        ca_chain: ctx.pki.ca_pem().to_string(),
        renew_after: now + timers.renew_after,
    }))
}

async fn deregister(
    State(ctx): State<DeviceCtx>,
    DeviceIdentity(id): DeviceIdentity,
) -> Result<Json<wire::DeregisterResponse>, ApiError> {
    let released = ctx
        .app
        .change(actor(id), |c, now| {
            c.deregister_device(id, "device.deregister", "requested by the device", now)
        })
        .await?;
    Ok(Json(wire::DeregisterResponse {
        instance_id: id.to_string(),
        released: released
            .into_iter()
            .map(|(entitlement_tag, count)| wire::UsageLine {
                entitlement_tag,
                count,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// The pre-sized answer is the same response as axum's `Json` would give: same content
    /// type, same bytes.
    #[tokio::test]
    async fn a_usage_answer_is_the_json_axum_would_send() {
        let answer: Authorization = serde_json::from_value(serde_json::json!({
            "instance_id": "6d7f3c1e-4b1a-4a57-9a57-2f0e3c1d9b10",
            "status": "authorized",
            "entitlements": [
                {"entitlement_tag": "regid.2024-01.com.example.adv", "count": 2, "status": "authorized"},
                {"entitlement_tag": "regid.2024-01.com.example.ess", "count": 900, "status": "out_of_compliance"},
            ],
            "authorization_expires_at": "2026-03-01T12:00:00Z",
            "next_report_by": "2026-01-01T12:00:00.5Z",
        }))
        .unwrap();
        let ours = json_answer(&answer);
        let axums = Json(&answer).into_response();
        assert_eq!(ours.status(), axums.status());
        assert_eq!(ours.headers(), axums.headers());
        let ours = ours.into_body().collect().await.unwrap().to_bytes();
        let axums = axums.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(ours, axums);
    }
}
