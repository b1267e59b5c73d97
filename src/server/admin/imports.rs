//! `POST /v1/licenses/import`: a license file signed by a trusted issuer (SPEC §8,
//! disconnected mode). The body is the file exactly as written; it is verified here with the
//! configured trusted keys, converted to domain input, and imported in one change.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;

use super::{AdminCtx, Caller};
use crate::app::RandomIds;
use crate::domain::{ImportGrant, LicenseImport, LicenseKind, LicenseSource, LicenseSpec};
use crate::protocol::admin::{LicenseImportView, LicenseView};
use crate::protocol::sync::{
    self, DEFAULT_MAX_AGE, DEFAULT_MAX_SKEW, Envelope, LicenseFile, LicenseLine, SatelliteId,
    SyncError, VerifyCtx,
};
use crate::server::error::ApiError;

/// The routes of this resource.
pub(super) fn routes() -> axum::Router<AdminCtx> {
    use axum::routing::post;
    axum::Router::new().route("/v1/licenses/import", post(import_licenses))
}

/// Largest license file accepted over the admin API.
pub const MAX_LICENSE_FILE_BYTES: usize = 16 * 1024 * 1024;

pub async fn import_licenses(
    State(ctx): State<AdminCtx>,
    Caller(p): Caller,
    req: Request,
) -> Result<(StatusCode, Json<LicenseImportView>), ApiError> {
    let bytes = crate::server::error::read_body(req, MAX_LICENSE_FILE_BYTES).await?;
    // Only accounts the caller can see: a file for an invisible account reads as foreign.
    let accounts: Vec<String> = ctx.app.read(|c| {
        c.accounts()
            .filter(|a| c.account_visible(&p, a.id))
            .map(|a| a.domain.clone())
            .collect()
    });
    let me = SatelliteId::new("local");
    let verify = VerifyCtx {
        me: &me,
        accounts: &accounts,
        trusted: &ctx.trusted_license_keys,
        last_seq: (|_| None) as fn(&SatelliteId) -> Option<u64>,
        now: ctx.app.now(),
        max_age: DEFAULT_MAX_AGE,
        max_skew: DEFAULT_MAX_SKEW,
    };
    let file: LicenseFile = sync::open(&bytes, &verify).map_err(refused)?;
    let signer = serde_json::from_slice::<Envelope<LicenseFile>>(&bytes)
        .map(|e| e.signer.0)
        .unwrap_or_default();
    let input = to_domain(&file, &signer)?;
    let licenses = ctx
        .app
        .change(&p.actor, |c, now| {
            c.import_licenses(&p, &input, now, &RandomIds)
        })
        .await?;
    let view = ctx.app.read(|c| LicenseImportView {
        file_id: file.file_id.clone(),
        account: file.account_domain.clone(),
        issuer: file.issuer.to_string(),
        signer: signer.clone(),
        licenses: licenses.iter().map(|l| LicenseView::new(c, l)).collect(),
    });
    Ok((StatusCode::CREATED, Json(view)))
}

/// Every refusal of the file itself: one code, the reason in the message.
fn refused(err: SyncError) -> ApiError {
    let status = match err {
        SyncError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(
        status,
        "license_file_refused",
        format!("license file refused: {err}"),
    )
}

/// The wire file as domain input (the domain knows no protocol types).
fn to_domain(file: &LicenseFile, signer: &str) -> Result<LicenseImport, ApiError> {
    let grants = file
        .grants
        .iter()
        .map(|g| {
            Ok(ImportGrant {
                va: g.va.clone(),
                licenses: g.licenses.iter().map(spec).collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(LicenseImport {
        file_id: file.file_id.clone(),
        issuer: file.issuer.to_string(),
        signer: format!("{} ({signer})", file.issuer),
        account_domain: file.account_domain.clone(),
        grants,
    })
}

fn spec(l: &LicenseLine) -> Result<LicenseSpec, ApiError> {
    let kind = match (l.kind, l.start, l.end) {
        (sync::LicenseKind::Term, Some(start), Some(end)) => LicenseKind::Term { start, end },
        _ => LicenseKind::Perpetual,
    };
    let quantity = i64::try_from(l.quantity).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_file_refused",
            format!(
                "license file refused: license `{}` has a quantity too large ({})",
                l.id, l.quantity
            ),
        )
    })?;
    Ok(LicenseSpec {
        entitlement_tag: l.entitlement_tag.clone(),
        display_name: l.display_name.clone(),
        quantity,
        kind,
        export_controlled: l.export_controlled,
        source: LicenseSource::Import,
        order_ref: l.order_ref.clone(),
        labels: l.labels.clone(),
    })
}
