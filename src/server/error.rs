//! The one mapping from errors to HTTP responses. Every failure, admin or device, answers
//! `{ "error": { "code", "message" } }` with a stable code that scripts and devices branch on.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::app::AppError;
use crate::domain::{DeviceError, DomainError};
use crate::protocol::admin::{ErrorBody, ErrorDetail};
use crate::store::StoreError;

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", message)
    }

    /// A failure of the satellite itself, not of the request.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// A console form refused by its CSRF or origin check: nothing was changed.
    pub fn csrf_refused(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "csrf_refused", message)
    }

    /// Too many failed console logins for a user or from an address.
    pub fn login_limited(wait_seconds: u64) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            crate::protocol::device::codes::RATE_LIMITED,
            format!("too many failed logins; try again in {wait_seconds} s"),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(what: &'static str, id: &str) -> Self {
        DomainError::not_found(what, id).into()
    }

    /// 413: the request body is larger than the endpoint accepts.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            crate::protocol::device::codes::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// 408: the request (or its body) did not arrive in time.
    pub fn request_timeout(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            crate::protocol::device::codes::REQUEST_TIMEOUT,
            message,
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let (status, code) = match &e {
            DomainError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            DomainError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            DomainError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            DomainError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
            DomainError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(cause = %e, "store error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("the change could not be made durable: {e}"),
        )
    }
}

impl From<DeviceError> for ApiError {
    fn from(e: DeviceError) -> Self {
        use crate::protocol::device::codes;
        let (status, code) = match &e {
            DeviceError::InvalidToken => (StatusCode::UNAUTHORIZED, codes::INVALID_TOKEN),
            DeviceError::TokenExpired => (StatusCode::FORBIDDEN, codes::TOKEN_EXPIRED),
            DeviceError::TokenRevoked => (StatusCode::FORBIDDEN, codes::TOKEN_REVOKED),
            DeviceError::TokenExhausted => (StatusCode::FORBIDDEN, codes::TOKEN_EXHAUSTED),
            DeviceError::AlreadyRegistered(_) | DeviceError::RegisteredElsewhere => {
                (StatusCode::CONFLICT, codes::ALREADY_REGISTERED)
            }
            DeviceError::AccountPending(_) => (StatusCode::FORBIDDEN, codes::ACCOUNT_PENDING),
            DeviceError::UnknownInstance => (StatusCode::NOT_FOUND, codes::UNKNOWN_INSTANCE),
            DeviceError::CertificateRevoked(_) => {
                (StatusCode::UNAUTHORIZED, codes::CERTIFICATE_REVOKED)
            }
            DeviceError::StaleSeq { .. } => (StatusCode::CONFLICT, codes::STALE_SEQ),
            DeviceError::BadCsr(_) => (StatusCode::BAD_REQUEST, codes::BAD_CSR),
            DeviceError::RegisteredNatively(_) => {
                (StatusCode::CONFLICT, codes::REGISTERED_NATIVELY)
            }
            DeviceError::Domain(d) => return d.clone().into(),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Domain(d) => d.into(),
            AppError::Device(d) => d.into(),
            AppError::Store(s) => s.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// Reads at most `limit` bytes of a request body: 413 `payload_too_large` past the limit,
/// 408 `request_timeout` if it does not arrive within the listener's body timeout
/// (`server::limits`), 400 `malformed_request` if it cannot be read.
pub async fn read_body(
    req: axum::extract::Request,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let causes = || {
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |cause| {
                    cause.source()
                })
            };
            if let Some(timed_out) = causes().find_map(|cause| cause.downcast_ref::<BodyTimedOut>())
            {
                ApiError::request_timeout(timed_out.to_string())
            } else if causes().any(|cause| cause.is::<http_body_util::LengthLimitError>()) {
                ApiError::payload_too_large(limit)
            } else {
                ApiError::malformed(format!("the request body could not be read: {e}"))
            }
        })
}

/// The error a request body gives when it has not arrived within the body timeout (set by
/// `server::limits`); [`read_body`] answers it with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub struct BodyTimedOut(pub std::time::Duration);
