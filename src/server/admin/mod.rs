//! The admin API router: authentication, request decoding, and the references operators use
//! to name objects. Handlers live in the files beside this one and stay thin: decode, call the
//! domain through [`App`], encode.
//!
//! Authentication: a request through the admin Unix socket acts as system administrator (the
//! socket's file mode is the access control); a request over HTTPS must carry
//! `Authorization: Bearer <API token>`. Authorisation is then the domain's, on every call.

mod accounts;
mod api_tokens;
pub mod backup;
mod cisco_acks;
mod cisco_devices;
pub(crate) mod devices;
mod events;
mod imports;
mod licenses;
mod reservations;
mod status;
pub(crate) mod sync;
mod tokens;
mod users;
mod vas;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::listen::Peer;
use crate::app::{App, secrets};
use crate::domain::{AccountId, Catalog, Principal, VaId};

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminCtx {
    pub app: App,
    pub max_body_bytes: usize,
    /// Human-readable descriptions of the listeners, for `status`.
    pub listeners: Vec<String>,
    pub data_dir: String,
    pub workers: crate::workers::Registry,
    pub alert_inputs: crate::domain::AlertInputs,
    pub metrics: crate::server::metrics::Metrics,
    /// Issuers whose license files `POST /v1/licenses/import` accepts (`[sync]` config).
    pub trusted_license_keys: crate::protocol::sync::TrustedKeys,
    /// The sync engine (both roles); its `key` is this satellite's Ed25519 signing key
    /// (`DATA/sync/key.pem`, mode 0600), which also signs reservation codes.
    pub sync: std::sync::Arc<crate::sync::SyncEngine>,
    /// The device CA (DER), whose fingerprint satellite registration tokens carry.
    pub ca_der: Vec<u8>,
    /// The RUM endpoint's trust rules, whose secret makes each account's ingest URL.
    pub rum: std::sync::Arc<crate::server::rum::RumGate>,
    /// `https://HOST:PORT` of the device listener, if known, for whole ingest URLs.
    pub device_url: Option<String>,
    /// The web console's sessions, password hasher and login limits.
    pub console: std::sync::Arc<crate::server::console::Console>,
    /// The Cisco poller (pull mode): sealing passwords, polling now, each device's status.
    pub cisco: std::sync::Arc<crate::cisco::Poller>,
}

/// The admin API: each resource's routes come from its file.
pub fn router(ctx: AdminCtx) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(status::routes())
        .merge(accounts::routes())
        .merge(vas::routes())
        .merge(licenses::routes())
        .merge(imports::routes())
        .merge(tokens::routes())
        .merge(users::routes())
        .merge(api_tokens::routes())
        .merge(events::routes())
        .merge(backup::routes())
        .merge(devices::routes())
        .merge(reservations::routes())
        .merge(sync::routes())
        .merge(cisco_acks::routes())
        .merge(cisco_devices::routes())
        .merge(crate::server::console::routes())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")
        })
        .with_state(ctx)
}

type Reply<T> = Result<axum::Json<T>, ApiError>;
type Created<T> = Result<(StatusCode, axum::Json<T>), ApiError>;

fn created<T>(t: T) -> Created<T> {
    Ok((StatusCode::CREATED, axum::Json(t)))
}

/// The routes of this router that take bodies larger than `[admin] max_body_bytes` (license and
/// sync files), with the limit their handlers read with; `server::limits` refuses a larger
/// announced body up front.
pub fn larger_body_limit(path: &str) -> Option<usize> {
    match path {
        "/v1/licenses/import" => Some(imports::MAX_LICENSE_FILE_BYTES),
        "/v1/sync/import" | "/v1/sync/answer" => Some(crate::protocol::sync::MAX_FILE_BYTES),
        "/v1/cisco/acks/import" => Some(cisco_acks::MAX_ACK_ARCHIVE_BYTES),
        _ => None,
    }
}

/// The caller, authenticated from the connection and the request headers.
pub struct Caller(pub Principal);

impl FromRequestParts<AdminCtx> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AdminCtx) -> Result<Self, ApiError> {
        let caller = Self::authenticate(parts, ctx)?;
        crate::server::metrics::record_actor(&caller.0.actor);
        Ok(caller)
    }
}

impl Caller {
    fn authenticate(parts: &Parts, ctx: &AdminCtx) -> Result<Self, ApiError> {
        match parts.extensions.get::<Peer>() {
            Some(Peer::Local { uid }) => Ok(Caller(Principal::system(match uid {
                Some(uid) => format!("local:uid={uid}"),
                None => "local".to_string(),
            }))),
            Some(Peer::Tls { .. }) => {
                let header = parts
                    .headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|h| h.to_str().ok())
                    .ok_or_else(|| {
                        ApiError::unauthorized(
                            "missing `Authorization: Bearer <API token>`; create one with \
                             `satellite api-token create --user NAME` on the satellite host",
                        )
                    })?;
                let token = header.strip_prefix("Bearer ").ok_or_else(|| {
                    ApiError::unauthorized("the Authorization header must be `Bearer <API token>`")
                })?;
                let hash = secrets::hash(token.trim());
                let now = ctx.app.now();
                ctx.app
                    .read(|c| c.authenticate(&hash, now))
                    .map(Caller)
                    .ok_or_else(|| {
                        ApiError::unauthorized(
                            "the API token is unknown, revoked or expired; create a new one with \
                             `satellite api-token create`",
                        )
                    })
            }
            None => Err(ApiError::unauthorized("connection without a known peer")),
        }
    }
}

/// A JSON request body, size-limited, whose errors use the API's error shape.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AdminCtx> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, ctx: &AdminCtx) -> Result<Self, ApiError> {
        decode_body(req, ctx.max_body_bytes).await.map(Body)
    }
}

/// Reads at most `limit` bytes of body and decodes them as JSON.
pub async fn decode_body<T: DeserializeOwned>(req: Request, limit: usize) -> Result<T, ApiError> {
    let bytes = super::error::read_body(req, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::malformed(format!("the request body is not valid: {e}")))
}

/// Finds an account by id, name or domain, among those `p` may see.
pub fn account_ref(c: &Catalog, p: &Principal, r: &str) -> Result<AccountId, ApiError> {
    c.account_by_name_or_domain(r)
        .filter(|a| c.account_visible(p, a.id))
        .map(|a| a.id)
        .ok_or_else(|| ApiError::not_found("account", r))
}

/// Finds a VA by id or by `ACCOUNT/Default/child/...`, among those `p` may read.
pub fn va_ref(c: &Catalog, p: &Principal, r: &str) -> Result<VaId, ApiError> {
    let found = match r.parse::<VaId>() {
        Ok(id) => c.va(id).map(|v| v.id),
        Err(_) => {
            let mut parts = r.split('/');
            let account = parts
                .next()
                .and_then(|a| c.account_by_name_or_domain(a))
                .filter(|a| c.account_visible(p, a.id));
            account.and_then(|a| {
                let mut current = None::<VaId>;
                for name in parts {
                    current = match current {
                        None => (name == crate::domain::DEFAULT_VA_NAME).then_some(a.default_va),
                        Some(id) => c.children(id).find(|v| v.name == name).map(|v| v.id),
                    };
                    current?;
                }
                current
            })
        }
    };
    found
        .filter(|id| c.va_access(p, *id).is_some())
        .ok_or_else(|| ApiError::not_found("virtual account", r))
}
