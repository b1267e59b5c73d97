//! Cisco devices polled for RUM reports (pull mode): add (the password is sealed before it
//! reaches the domain), list and show with each device's polling status, remove, and poll now.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{AdminCtx, Body, Caller, Created, Reply, created, va_ref};
use crate::app::RandomIds;
use crate::cisco::{DeviceStatus, PollOutcome, Poller};
use crate::domain::{
    Access, Catalog, CiscoDevice, CiscoDeviceSpec, DeviceTrust, DomainError, trust_kind,
};
use crate::protocol::admin::*;
use crate::server::error::ApiError;
use time::OffsetDateTime as Time;

pub(super) fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/v1/cisco/devices", post(add_device).get(list_devices))
        .route(
            "/v1/cisco/devices/{device}",
            get(show_device).delete(remove_device),
        )
        .route("/v1/cisco/poll", post(poll))
}

async fn add_device(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<AddCiscoDevice>,
) -> Created<CiscoDeviceView> {
    let trust = trust(req.ca_pem.as_deref(), req.fingerprint.as_deref())?;
    if req.password.is_empty() || req.password.len() > 1024 {
        return Err(ApiError::malformed(
            "the device password must be 1 to 1024 bytes (the local user's password on the device)",
        ));
    }
    let va = ctx.app.read(|c| va_ref(c, &p, &req.va))?;
    ctx.cisco
        .ready_to_seal()
        .map_err(|e| ApiError::internal(format!("cannot seal the password: {e}")))?;
    let spec = CiscoDeviceSpec {
        va,
        name: req.name,
        address: req.address,
        username: req.username,
        trust,
    };
    let password = req.password;
    let poller = ctx.cisco.clone();
    let device = ctx
        .app
        .change(&p.actor, |c, now| {
            c.add_cisco_device(&p, spec, &|id| poller.seal(id, &password), now, &RandomIds)
        })
        .await?;
    ctx.cisco.wake.notify_one();
    let now = ctx.app.now();
    created(ctx.app.read(|c| view(c, &ctx.cisco, &device, now)))
}

/// The trust the operator chose: exactly one of a CA and a fingerprint.
fn trust(ca_pem: Option<&str>, fingerprint: Option<&str>) -> Result<DeviceTrust, ApiError> {
    match (ca_pem, fingerprint) {
        (Some(pem), None) => {
            crate::pki::first_certificate_der(pem).map_err(|e| {
                ApiError::from(DomainError::Invalid(format!(
                    "the CA file is {e}; give the PEM certificate of the CA that signed the \
                     device's HTTPS certificate"
                )))
            })?;
            Ok(DeviceTrust::Ca(pem.to_owned()))
        }
        (None, Some(fp)) => {
            let hex: String = fp.trim().chars().filter(|c| *c != ':').collect();
            crate::hex::decode_array::<32>(&hex)
                .map(DeviceTrust::Fingerprint)
                .ok_or_else(|| {
                    DomainError::Invalid(format!(
                        "fingerprint {fp:?} is not a SHA-256 (64 hex digits, `:` allowed); on \
                         the device, `show crypto pki certificates` shows the certificate; or \
                         `openssl s_client -connect HOST:443 | openssl x509 -noout \
                         -fingerprint -sha256`"
                    ))
                    .into()
                })
        }
        (Some(_), Some(_)) => Err(ApiError::malformed(
            "give either a CA (--ca) or a fingerprint (--fingerprint), not both",
        )),
        (None, None) => Err(ApiError::malformed(
            "trust is explicit: give the CA that signed the device's certificate (--ca FILE) or \
             the SHA-256 fingerprint of the device's certificate (--fingerprint HEX); the \
             satellite never accepts any certificate",
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListDevices {
    va: Option<String>,
}

async fn list_devices(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<ListDevices>,
) -> Reply<Vec<CiscoDeviceView>> {
    let now = ctx.app.now();
    ctx.app.read(|c| {
        let va = q.va.as_deref().map(|r| va_ref(c, &p, r)).transpose()?;
        Ok(Json(
            c.visible_cisco_devices(&p)
                .into_iter()
                .filter(|d| va.is_none_or(|va| d.va == va))
                .map(|d| view(c, &ctx.cisco, d, now))
                .collect(),
        ))
    })
}

async fn show_device(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(device): Path<String>,
) -> Reply<CiscoDeviceView> {
    let now = ctx.app.now();
    ctx.app.read(|c| {
        let d = c.find_cisco_device(&p, &device)?;
        Ok(Json(view(c, &ctx.cisco, d, now)))
    })
}

async fn remove_device(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(device): Path<String>,
) -> Reply<CiscoDeviceView> {
    let id = ctx
        .app
        .read(|c| c.find_cisco_device(&p, &device).map(|d| d.id))?;
    let removed = ctx
        .app
        .change(&p.actor, |c, _| c.remove_cisco_device(&p, id))
        .await?;
    let now = ctx.app.now();
    let out = ctx.app.read(|c| view(c, &ctx.cisco, &removed, now));
    ctx.cisco.forget(id);
    Ok(Json(out))
}

/// Polls one device, or every device the caller may change, now, and answers the outcomes.
async fn poll(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(req): Body<PollCisco>,
) -> Reply<Vec<CiscoPollView>> {
    let ids = ctx.app.read(|c| -> Result<Vec<_>, ApiError> {
        match &req.device {
            Some(r) => {
                let d = c.find_cisco_device(&p, r)?;
                c.check_va(&p, d.va, Access::Write)?;
                Ok(vec![d.id])
            }
            None => Ok(c
                .visible_cisco_devices(&p)
                .into_iter()
                .filter(|d| c.va_access(&p, d.va).is_some_and(|a| a >= Access::Write))
                .map(|d| d.id)
                .collect()),
        }
    })?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(o) = ctx.cisco.poll(id).await {
            out.push(poll_view(o));
        }
    }
    ctx.cisco.wake.notify_one();
    Ok(Json(out))
}

fn poll_view(o: PollOutcome) -> CiscoPollView {
    CiscoPollView {
        device: o.name,
        outcome: o.outcome.to_string(),
        accepted: o.accepted,
        duplicates: o.duplicates,
        held: o.held,
        acks_delivered: o.acks_delivered,
        acks_failed: o.acks_failed,
        error: o.error,
    }
}

/// The view of a device; `now` is read before the catalog's lock is taken.
fn view(c: &Catalog, poller: &Poller, d: &CiscoDevice, now: Time) -> CiscoDeviceView {
    let s: DeviceStatus = poller.status_of(d.id, now);
    CiscoDeviceView {
        id: d.id.to_string(),
        name: d.name.clone(),
        account: c
            .account(d.account)
            .map_or_else(String::new, |a| a.name.clone()),
        va_path: c.va_path(d.va),
        address: d.address.clone(),
        username: d.username.clone(),
        trust: trust_kind(&d.trust).to_string(),
        fingerprint: match &d.trust {
            DeviceTrust::Fingerprint(fp) => Some(crate::hex::encode(fp)),
            DeviceTrust::Ca(_) => None,
        },
        created_at: d.created_at,
        created_by: d.created_by.clone(),
        status: s.last_outcome.unwrap_or("never polled").to_string(),
        last_poll: s.last_poll,
        last_success: s.last_success,
        last_error: s.last_error,
        failures: s.failures,
        reports_held: s.reports_held,
        next_poll: s.next_poll,
    }
}
