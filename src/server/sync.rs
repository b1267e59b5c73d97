//! The upstream's side of the network sync, on the device listener (SPEC §8): the public CA,
//! satellite registration, and `POST /v1/sync` (a signed request in, the signed response out).
//! A child authenticates twice: its client certificate (issued at registration) on the
//! connection, and its pinned Ed25519 key on the message.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::device_ctx::DeviceCtx;
use super::error::ApiError;
use super::listen::Peer;
use crate::app::secrets;
use crate::protocol::sync::{MAX_FILE_BYTES, SyncError};
use crate::sync::SyncFailure;
use crate::sync::transport::{RegisterRequest, RegisterResponse};

/// How long a satellite client certificate is valid. Satellites do not renew it yet: after
/// this, the child is bound again with a new registration token.
const SATELLITE_CERT_DAYS: i64 = 3650;

pub async fn ca(State(ctx): State<DeviceCtx>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        ctx.pki.ca_pem().to_owned(),
    )
        .into_response()
}

/// `POST /v1/sync/register`: limited per client address like device registration, so the
/// secret of a child's registration token cannot be guessed.
pub async fn register(State(ctx): State<DeviceCtx>, req: Request) -> Response {
    let ip = super::device_ctx::peer_ip(&req);
    let attempt = register_child(&ctx, req);
    super::ratelimit::limited(&ctx.limiter, ip, || ctx.app.clock_now(), attempt).await
}

async fn register_child(ctx: &DeviceCtx, req: Request) -> Result<Json<RegisterResponse>, ApiError> {
    let bytes = super::error::read_body(req, ctx.max_body_bytes).await?;
    let body: RegisterRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::malformed(format!("the registration request is not valid: {e}")))?;
    crate::protocol::sync::parse_public_key(&body.public_key)
        .map_err(|e| ApiError::malformed(format!("public_key: {e}")))?;
    let hash = secrets::hash(&body.token);
    let now = ctx.app.now();
    let child = ctx
        .app
        .read(|c| {
            c.child_by_token(&hash, &body.public_key, now)
                .map(|ch| ch.name.clone())
        })
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_token", e.to_string()))?;
    let issued = ctx
        .pki
        .sign_csr(
            &body.csr,
            &format!("satellite:{child}"),
            time::Duration::days(SATELLITE_CERT_DAYS),
            now,
        )
        .map_err(|e| ApiError::malformed(format!("csr: {e}")))?;
    let (child, view) = ctx
        .app
        .change(&format!("satellite:{child}"), |c, now| {
            let (change, child) =
                c.register_child_satellite(&hash, &body.public_key, &issued.serial, now)?;
            let account = c
                .account(child.account)
                .map(|a| (a.name.clone(), a.domain.clone()))
                .unwrap_or_default();
            let va = c.domain_path(child.root);
            Ok::<_, crate::domain::DomainError>((change, (child, (account, va))))
        })
        .await?;
    let sync = &ctx.sync;
    Ok(Json(RegisterResponse {
        child: child.name,
        upstream: sync.settings.name.clone(),
        upstream_key: sync.key.public_key_hex(),
        certificate: issued.pem,
        account_name: view.0.0,
        account_domain: view.0.1,
        va: view.1,
    }))
}

pub async fn exchange(State(ctx): State<DeviceCtx>, req: Request) -> Result<Response, ApiError> {
    let serial = match req.extensions().get::<Peer>() {
        Some(Peer::Tls {
            client_serial: Some(s),
            ..
        }) => s.clone(),
        _ => {
            return Err(ApiError::unauthorized(
                "sync needs the client certificate issued at registration (`satellite sync \
                 register` on the child)",
            ));
        }
    };
    let child = ctx.app.read(|c| {
        c.child_satellites()
            .find(|ch| ch.cert_serial.as_deref() == Some(&*serial))
            .map(|ch| ch.name.clone())
    });
    let Some(child) = child else {
        return Err(ApiError::unauthorized(
            "this client certificate does not belong to a registered child satellite",
        ));
    };
    let bytes = super::error::read_body(req, MAX_FILE_BYTES).await?;
    let sync = &ctx.sync;
    let response = sync
        .answer(&format!("satellite:{child}"), &bytes)
        .await
        .map_err(failure)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], response).into_response())
}

/// A sync failure as an API error: a refused message gets `sync_refused` and its reason.
pub fn failure(e: SyncFailure) -> ApiError {
    match e {
        SyncFailure::Refused(err) => {
            let status = match err {
                SyncError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            ApiError::new(status, "sync_refused", format!("sync file refused: {err}"))
        }
        SyncFailure::App(e) => e.into(),
        SyncFailure::Transport(m) => ApiError::new(StatusCode::BAD_GATEWAY, "upstream_failed", m),
        SyncFailure::Internal(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
    }
}
