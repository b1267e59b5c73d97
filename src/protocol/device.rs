//! Device protocol v1 (SPEC §3, "Wire format v1"): the JSON devices and the satellite exchange.
//! Field names, status values and error codes are the contract integrators code against: add
//! fields, never rename them. Shared by the server and the device agent.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::MAX_UNITS;

/// The interval a device should report at, and the request body limits, are server policy;
/// these are wire-level bounds every decoder enforces.
pub const MAX_USAGE_LINES: usize = 1024;
pub const MAX_TAG_BYTES: usize = 512;

/// Stable error codes (SPEC §3). Every device-facing failure carries one.
pub mod codes {
    pub const INVALID_TOKEN: &str = "invalid_token";
    pub const TOKEN_EXPIRED: &str = "token_expired";
    pub const TOKEN_REVOKED: &str = "token_revoked";
    pub const TOKEN_EXHAUSTED: &str = "token_exhausted";
    pub const ALREADY_REGISTERED: &str = "already_registered";
    pub const MALFORMED_REQUEST: &str = "malformed_request";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    pub const CERTIFICATE_REQUIRED: &str = "certificate_required";
    pub const CERTIFICATE_REVOKED: &str = "certificate_revoked";
    pub const UNKNOWN_INSTANCE: &str = "unknown_instance";
    pub const STALE_SEQ: &str = "stale_seq";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const BAD_CSR: &str = "bad_csr";
    pub const ACCOUNT_PENDING: &str = "account_pending";
    /// A RUM report named a device registered with protocol v1 (SPEC §3b).
    pub const REGISTERED_NATIVELY: &str = "registered_natively";
    pub const NOT_FOUND: &str = "not_found";
    pub const UNAVAILABLE: &str = "store_unavailable";
}

/// A device's unique identifier: product id and serial number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Udi {
    pub pid: String,
    pub serial: String,
}

/// `POST /v1/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub token: String,
    pub udi: Udi,
    pub hostname: String,
    pub product: String,
    pub version: String,
    pub csr: String,
    #[serde(default)]
    pub force: bool,
}

/// `201` answer to a registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub instance_id: String,
    pub certificate: String,
    pub ca_chain: String,
    #[serde(with = "time::serde::rfc3339")]
    pub renew_after: OffsetDateTime,
    pub report_interval_secs: u64,
    pub authorization: Authorization,
}

/// One line of a usage report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageLine {
    pub entitlement_tag: String,
    pub count: u64,
}

/// `POST /v1/usage`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageRequest {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub measured_at: OffsetDateTime,
    pub usage: Vec<UsageLine>,
}

/// `POST /v1/renew`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewRequest {
    pub csr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewResponse {
    pub certificate: String,
    pub ca_chain: String,
    #[serde(with = "time::serde::rfc3339")]
    pub renew_after: OffsetDateTime,
}

/// `POST /v1/deregister` answer: the licenses returned to the pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeregisterResponse {
    pub instance_id: String,
    pub released: Vec<UsageLine>,
}

/// The authorization state of one entitlement of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementState {
    pub entitlement_tag: String,
    pub count: u64,
    /// `authorized` | `out_of_compliance` | `not_authorized` | `unknown`.
    pub status: String,
}

/// `<Authorization>` of SPEC §3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    pub instance_id: String,
    /// `registered` | `authorized` | `out_of_compliance` | `authorization_expired`.
    pub status: String,
    pub entitlements: Vec<EntitlementState>,
    /// The last report (or the registration) plus the authorization validity.
    #[serde(with = "time::serde::rfc3339")]
    pub authorization_expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub next_report_by: OffsetDateTime,
}

/// Why a device request body was refused; the message goes back to the device verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Malformed> {
    serde_json::from_slice(body).map_err(|e| Malformed(format!("invalid {what} body: {e}")))
}

fn text(field: &str, value: &str, max: usize) -> Result<(), Malformed> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(Malformed(format!(
            "`{field}` must be 1 to {max} bytes without control characters"
        )));
    }
    Ok(())
}

/// Decodes and checks a registration body.
pub fn decode_register(body: &[u8]) -> Result<RegisterRequest, Malformed> {
    let r: RegisterRequest = json(body, "register")?;
    text("token", &r.token, 256)?;
    text("udi.pid", &r.udi.pid, 128)?;
    text("udi.serial", &r.udi.serial, 128)?;
    text("hostname", &r.hostname, 255)?;
    text("product", &r.product, 255)?;
    text("version", &r.version, 128)?;
    if r.csr.len() > 16 * 1024 || !r.csr.contains("-----BEGIN CERTIFICATE REQUEST-----") {
        return Err(Malformed(
            "`csr` must be a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)"
                .into(),
        ));
    }
    Ok(r)
}

/// Decodes and checks a usage report body: bounded, tags valid and not repeated.
pub fn decode_usage(body: &[u8]) -> Result<UsageRequest, Malformed> {
    let mut r: UsageRequest = json(body, "usage")?;
    // Kept in UTC (a device record keeps its instants so): an offset is applied here, and an
    // instant that UTC cannot express (past the end of year 9999) is refused.
    r.measured_at = r
        .measured_at
        .checked_to_offset(time::UtcOffset::UTC)
        .ok_or_else(|| {
            Malformed(format!(
                "`measured_at` {} is out of range: send a time between the years -9999 and 9999 \
                 in UTC",
                r.measured_at
            ))
        })?;
    if r.usage.len() > MAX_USAGE_LINES {
        return Err(Malformed(format!(
            "a usage report lists at most {MAX_USAGE_LINES} entitlement tags"
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for line in &r.usage {
        if line.entitlement_tag.is_empty()
            || line.entitlement_tag.len() > MAX_TAG_BYTES
            || line
                .entitlement_tag
                .chars()
                .any(|c| c.is_control() || c == ' ')
        {
            return Err(Malformed(format!(
                "entitlement tag `{}` must be 1 to {MAX_TAG_BYTES} bytes without spaces",
                shorten(&line.entitlement_tag)
            )));
        }
        if !seen.insert(line.entitlement_tag.as_str()) {
            return Err(Malformed(format!(
                "entitlement tag `{}` appears twice in one report",
                shorten(&line.entitlement_tag)
            )));
        }
        if line.count > MAX_UNITS {
            return Err(Malformed(format!(
                "count {} for `{}` is more than the maximum of {MAX_UNITS} units",
                line.count,
                shorten(&line.entitlement_tag)
            )));
        }
    }
    Ok(r)
}

/// At most 64 characters of a client-supplied value, for error messages.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Decodes and checks a renewal body.
pub fn decode_renew(body: &[u8]) -> Result<RenewRequest, Malformed> {
    let r: RenewRequest = json(body, "renew")?;
    if r.csr.len() > 16 * 1024 || !r.csr.contains("-----BEGIN CERTIFICATE REQUEST-----") {
        return Err(Malformed(
            "`csr` must be a PEM certificate signing request".into(),
        ));
    }
    Ok(r)
}

impl Authorization {
    /// The wire form of a device's authorization state.
    pub fn from_state(
        instance_id: crate::domain::InstanceId,
        s: &crate::domain::AuthorizationState,
    ) -> Self {
        Authorization {
            instance_id: instance_id.to_string(),
            status: s.status.as_str().to_string(),
            entitlements: s
                .entitlements
                .iter()
                .map(|(tag, count, status)| EntitlementState {
                    entitlement_tag: tag.to_string(),
                    count: *count,
                    status: status.as_str().to_string(),
                })
                .collect(),
            authorization_expires_at: s.expires_at,
            next_report_by: s.next_report_by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_usage;
    use time::macros::datetime;

    fn body(measured_at: &str) -> Vec<u8> {
        format!(r#"{{"seq": 1, "measured_at": "{measured_at}", "usage": []}}"#).into_bytes()
    }

    /// A device's time is kept in UTC: an offset is applied when the report is read, and a
    /// time UTC cannot express is refused with the reason, not stored.
    #[test]
    fn a_usage_report_time_is_read_in_utc() {
        let r = decode_usage(&body("2026-03-04T07:06:07.5+02:00")).unwrap();
        assert_eq!(r.measured_at, datetime!(2026-03-04 05:06:07.5 UTC));
        assert_eq!(r.measured_at.offset(), time::UtcOffset::UTC);
        let e = decode_usage(&body("9999-12-31T23:59:59-01:00")).unwrap_err();
        assert!(e.to_string().contains("`measured_at`"), "{e}");
        assert!(e.to_string().contains("out of range"), "{e}");
    }
}
