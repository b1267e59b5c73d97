//! License reservation (SPEC §8b): `POST /v1/reservations` reserves the units of a device's
//! request code and answers with a signed authorization code; `POST /v1/reservations/return`
//! releases them with the device's return code; an operator lists and cancels reservations.
//!
//! The codes are decoded and the authorization signed here, at the edge
//! (`protocol::reservation`, with the satellite's key `ctx.sync.key`); the domain sees plain
//! input and stores hashes.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{AdminCtx, Body, Caller, va_ref};
use crate::app::RandomIds;
use crate::domain::{
    IssueContext, IssuedAuthorization, Reservation, ReservationId, ReservationRequest, Udi,
};
use crate::protocol::admin::{
    CreateReservation, ReleasedReservation, ReservationView, ReservedView, ReturnReservation,
};
use crate::protocol::reservation::{
    self as codes, Authorization, CodeError, Entitlement, RequestCode, ReturnCode,
};
use crate::server::error::ApiError;

/// The routes of this resource.
pub(super) fn routes() -> axum::Router<AdminCtx> {
    use axum::routing::post;
    axum::Router::new()
        .route("/v1/reservations", post(create).get(list))
        .route("/v1/reservations/return", post(return_code))
        .route("/v1/reservations/{reservation}/cancel", post(cancel))
}

pub async fn create(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(body): Body<CreateReservation>,
) -> Result<(StatusCode, Json<ReservedView>), ApiError> {
    let va = ctx.app.read(|c| va_ref(c, &p, &body.va))?;
    let request = RequestCode::decode(&body.request).map_err(refused)?;
    let mut entitlements = BTreeMap::new();
    for e in &request.entitlements {
        entitlements.insert(e.tag.clone(), e.count);
    }
    let input = ReservationRequest {
        udi: Udi {
            pid: request.udi.pid.clone().into(),
            serial: request.udi.serial.clone().into(),
        },
        entitlements,
        nonce: request.nonce.clone(),
    };
    let key = ctx.sync.key.clone();
    let (reservation, code) = ctx
        .app
        .change(&p.actor, |c, now| {
            c.reserve(
                &p,
                va,
                &input,
                body.allow_export_controlled,
                now,
                &RandomIds,
                |r, at| issue(&key, r, at),
            )
        })
        .await?;
    let view = ctx.app.read(|c| ReservationView::new(c, &reservation));
    Ok((
        StatusCode::CREATED,
        Json(ReservedView {
            reservation: view,
            authorization_code: code,
            key_id: ctx.sync.key.id().to_string(),
        }),
    ))
}

/// Signs the authorization code of an accepted reservation.
fn issue(
    key: &crate::protocol::sync::SatelliteKey,
    r: &Reservation,
    at: IssueContext<'_>,
) -> IssuedAuthorization {
    let body = Authorization {
        reservation_id: r.id.to_string(),
        udi: crate::protocol::device::Udi {
            pid: r.udi.pid.to_string(),
            serial: r.udi.serial.to_string(),
        },
        account: at.account_domain.to_string(),
        va: at.va_path.to_string(),
        entitlements: r
            .entitlements
            .iter()
            .map(|(tag, count)| Entitlement {
                tag: tag.clone(),
                count: *count,
            })
            .collect(),
        issued_at: r.created_at,
        request_nonce: r.request_nonce.clone(),
        key_id: String::new(),
        public_key: String::new(),
    };
    let code = codes::sign_authorization(key, body);
    IssuedAuthorization {
        code_sha256: codes::sha256(code.as_bytes()),
        return_proof_sha256: codes::return_check(&code),
        code,
    }
}

pub async fn return_code(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Body(body): Body<ReturnReservation>,
) -> Result<Json<ReleasedReservation>, ApiError> {
    let code = ReturnCode::decode(&body.code).map_err(refused)?;
    let id: ReservationId = code.reservation_id.parse().map_err(|e: String| {
        refused(CodeError::Invalid {
            what: "return code",
            reason: e,
        })
    })?;
    let udi = Udi {
        pid: code.udi.pid.clone().into(),
        serial: code.udi.serial.clone().into(),
    };
    let proof = code.check();
    let reservation = ctx
        .app
        .change(&p.actor, |c, _| c.return_reservation(&p, id, &udi, &proof))
        .await
        .map_err(|e| gone(e.into()))?;
    let view = ctx.app.read(|c| ReservationView::new(c, &reservation));
    Ok(Json(ReleasedReservation {
        outcome: "returned".into(),
        reservation: view,
    }))
}

pub async fn cancel(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<ReleasedReservation>, ApiError> {
    let id: ReservationId = id
        .parse()
        .map_err(|_| ApiError::not_found("active reservation", &id))?;
    let reservation = ctx
        .app
        .change(&p.actor, |c, _| c.cancel_reservation(&p, id))
        .await
        .map_err(|e| gone(e.into()))?;
    let view = ctx.app.read(|c| ReservationView::new(c, &reservation));
    Ok(Json(ReleasedReservation {
        outcome: "cancelled".into(),
        reservation: view,
    }))
}

#[derive(Debug, Deserialize)]
pub struct ListReservations {
    va: Option<String>,
}

/// Active reservations the caller may read, in a VA's subtree or everywhere, oldest first.
pub async fn list(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    Query(q): Query<ListReservations>,
) -> Result<Json<Vec<ReservationView>>, ApiError> {
    ctx.app.read(|c| {
        let root = q.va.as_deref().map(|r| va_ref(c, &p, r)).transpose()?;
        let mut found: Vec<&Reservation> = c
            .reservations()
            .filter(|r| c.va_access(&p, r.va).is_some())
            .filter(|r| root.is_none_or(|root| c.in_subtree(r.va, root)))
            .collect();
        found.sort_by_key(|r| (r.created_at, r.id));
        Ok(Json(
            found
                .into_iter()
                .map(|r| ReservationView::new(c, r))
                .collect(),
        ))
    })
}

/// A code that cannot be used: one code, the reason in the message.
fn refused(err: CodeError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "reservation_code_refused",
        format!("{err}; nothing was changed"),
    )
}

/// A reservation that is not (or no longer) there: say what that usually means.
fn gone(err: ApiError) -> ApiError {
    if err.status == StatusCode::NOT_FOUND {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "{}: it was never made on this satellite (or is outside your scope), or it was \
                 already returned or cancelled; nothing was changed",
                err.message
            ),
        )
    } else {
        err
    }
}
