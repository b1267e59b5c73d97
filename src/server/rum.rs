//! The CSLU-style endpoint for Cisco RUM reports (SPEC §3b), and the trust rules of that
//! channel at the edge.
//!
//! A RUM report carries no client identity, so the endpoint is the satellite's weakest door.
//! Before a body is read: the source address must be in `[rum] allow` (when it lists
//! networks), and the URL must be the account's unguessable ingest URL
//! `/cslu/v1/pi/<account>-<key>` (see `rum/key.rs`), or a guessable form while
//! `[rum] guessable_urls` is on. Every refusal at this stage answers the same 404 with the
//! same body, whether the source, the account or the key was wrong, so the answer tells a
//! scanner nothing; the log says which it was. Then the domain decides the envelope as a
//! whole (`Catalog::check_rum`): reports naming a device registered with protocol v1 refuse
//! the whole request with 409, audited. Every event is attributed to `rum:<source address>`,
//! never to a name the report chose.

pub(super) mod key;

use std::net::IpAddr;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracing::info;

pub use key::{FILE as KEY_FILE, IngestKey, IngestKeyError, RumGate};

use super::device_ctx::DeviceCtx;
use super::error::ApiError;
use super::listen::Peer;
use crate::app::{RumOutcome, rum_input};
use crate::config::RumSettings;
use crate::domain::{AccountId, RumInput};
use crate::protocol::device::codes;

/// The largest RUM upload accepted: a controller may batch many reports.
pub const MAX_RUM_BYTES: usize = 8 * 1024 * 1024;

/// The one answer to a source, URL, account or key that is not accepted.
fn no_such_url() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        "no RUM ingest URL here; each account's URL is shown by `satellite account show ACCOUNT`",
    )
}

/// Logs why a report was turned away (the answer does not say) and gives the answer.
fn turned_away(source: Option<IpAddr>, why: &str) -> ApiError {
    let source = source.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    info!(%source, why, "RUM report refused");
    no_such_url()
}

/// The TCP peer's address, with an IPv4 client of an IPv6 listener shown as IPv4.
fn source(req: &Request) -> Option<IpAddr> {
    match req.extensions().get::<Peer>() {
        Some(Peer::Tls { addr, .. }) => Some(addr.ip().to_canonical()),
        _ => None,
    }
}

/// Refuses a source outside `[rum] allow`; a request without a TCP peer (never on the
/// device listener) is only accepted while every source is.
fn check_source(settings: &RumSettings, source: Option<IpAddr>) -> Result<(), ApiError> {
    match source {
        Some(ip) if settings.allows(ip) => Ok(()),
        None if settings.allow.is_empty() => Ok(()),
        _ => Err(turned_away(source, "the source is not in `[rum] allow`")),
    }
}

/// `POST /cslu/v1/pi`: guessable; the satellite's only account, if it has one.
pub async fn rum_default(State(ctx): State<DeviceCtx>, req: Request) -> Result<Response, ApiError> {
    let source = source(&req);
    let settings = ctx.rum.settings();
    check_source(&settings, source)?;
    if !settings.guessable_urls {
        return Err(turned_away(
            source,
            "guessable URLs are off (`[rum] guessable_urls`)",
        ));
    }
    let accounts: Vec<_> = ctx.app.read(|c| c.accounts().map(|a| a.id).collect());
    let [account] = accounts[..] else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::MALFORMED_REQUEST,
            "this satellite holds several accounts: send RUM reports to the account's URL, \
             which `satellite account show ACCOUNT` prints",
        ));
    };
    rum(ctx, account, source, req).await
}

/// `POST /cslu/v1/pi/<account>-<key>`, or while guessable URLs are on `<account>-<N>` and
/// `<account>` (Cisco devices append a number to the tenant name).
pub async fn rum_for_account(
    State(ctx): State<DeviceCtx>,
    Path(target): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let source = source(&req);
    let settings = ctx.rum.settings();
    check_source(&settings, source)?;
    let account = |name: &str| {
        ctx.app
            .read(|c| c.account_by_name_or_domain(name).map(|a| a.id))
    };
    // The account's own key first: a key that happens to be all digits is still a key.
    if let Some((name, suffix)) = target.rsplit_once('-') {
        let found = account(name);
        let matched = ctx.rum.key.matches(found, suffix);
        if let Some(found) = found.filter(|_| matched) {
            return rum(ctx, found, source, req).await;
        }
    }
    if !settings.guessable_urls {
        return Err(turned_away(source, "unknown account or wrong key"));
    }
    let name = match target.rsplit_once('-') {
        Some((name, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => target.as_str(),
    };
    match account(name) {
        Some(found) => rum(ctx, found, source, req).await,
        None => Err(turned_away(source, "unknown account")),
    }
}

async fn rum(
    ctx: DeviceCtx,
    account: AccountId,
    source: Option<IpAddr>,
    req: Request,
) -> Result<Response, ApiError> {
    let bytes = super::error::read_body(req, MAX_RUM_BYTES).await?;
    let reports: Vec<RumInput> = crate::protocol::rum::parse(&bytes)
        .map_err(|e| ApiError::malformed(format!("RUM report refused: {e}")))?
        .into_iter()
        .map(rum_input)
        .collect();
    let actor = format!(
        "rum:{}",
        source.map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
    );
    super::metrics::record_actor(&actor);
    match ctx.app.ingest_rum(&actor, account, &reports).await? {
        RumOutcome::Refused(error) => {
            info!(source = %actor, cause = %error, "RUM report refused");
            Err(error.into())
        }
        RumOutcome::Done {
            accepted,
            duplicates,
        } => Ok(
            Json(serde_json::json!({ "accepted": accepted, "duplicates": duplicates }))
                .into_response(),
        ),
    }
}
