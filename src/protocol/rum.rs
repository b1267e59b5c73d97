//! Cisco RUM reports (SPEC §3b): the usage reports that devices under Smart Licensing Using Policy
//! push to a CSLU-style URL. This module turns a request body into checked [`RumReport`]s and
//! does nothing else: no IO, no clock, no trust in Cisco's signatures (they are kept in `raw`
//! for relay upstream, never verified).
//!
//! Two body forms are accepted, told apart by the first non-whitespace byte:
//!
//! * `<` — XML holding one or more `<RUMReport>` elements, each containing exactly one CDATA
//!   section (whitespace around it is allowed) whose text is the envelope below. Anything
//!   outside those elements (an XML declaration, a `<smartLicense>` wrapper, other elements) is
//!   ignored. This is a strict extractor for that one shape, not an XML parser: a report sent as
//!   entity-escaped text instead of CDATA is refused, and comments are not understood.
//! * `{` or `[` — the bare JSON envelope, or a JSON array of envelopes. No public description of
//!   another JSON wrapper (such as `{"rum_reports": [...]}`) was found, so none is accepted.
//!
//! The envelope is `{"payload": "<JSON text>", "signature": {...}}`: the payload is a JSON
//! document serialized *into a string*, because the signature covers those exact bytes.
//!
//! A body is accepted or refused as a whole: one bad report refuses the body, so a device never
//! gets a partial acknowledgement it cannot interpret. A `report_id` repeated inside one body
//! keeps its first occurrence; later ones are checked like any other report and then dropped, so
//! the caller sees each id once.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

/// At most this many reports in one body; devices batch far fewer.
pub const MAX_REPORTS: usize = 1000;
/// At most this many bytes in any string field kept from a report.
pub const MAX_FIELD_BYTES: usize = 1024;
/// Counts above this are refused: the satellite's bound on any quantity (10^12 units).
pub const MAX_COUNT: u64 = crate::domain::MAX_UNITS;

/// One checked RUM report: who measured what, and the signed original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RumReport {
    /// `asset_identification.report_id`: Cisco's id for this report, the de-duplication key.
    pub report_id: u64,
    /// `asset_identification.instance.sudi.udi_pid`.
    pub udi_pid: String,
    /// `asset_identification.instance.sudi.udi_serial_number`.
    pub udi_serial: String,
    /// `meta.entitlement_tag`: the license being measured.
    pub entitlement_tag: String,
    /// `asset_identification.asset.name`: the product's software identification tag.
    pub asset_name: String,
    /// `meta.software_version`, when the device sends it.
    pub software_version: Option<String>,
    /// `value.value` of the latest `COUNT` measurement (greatest `end_time`, the last one on ties).
    pub count: u64,
    /// That measurement's `end_time`, unix seconds.
    pub measured_at: i64,
    /// The envelope's JSON text exactly as received (without surrounding whitespace).
    pub raw: String,
}

/// Which report of a body an error is about: its position (from 0) and, once read, its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportAt {
    pub index: usize,
    pub report_id: Option<u64>,
}

impl fmt::Display for ReportAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "report #{}", self.index)?;
        match self.report_id {
            Some(id) => write!(f, " (report_id {id})"),
            None => Ok(()),
        }
    }
}

/// Why a RUM body was refused. Each cause is its own variant so the handler and tests can tell
/// them apart; the message names the report and the field where possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RumError {
    #[error("the body is empty")]
    Empty,
    #[error("the body is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error(
        "the body is neither XML nor JSON: it starts with {found:?}, expected `<`, `{{` or `[`"
    )]
    UnknownFormat { found: char },
    #[error("the body holds no RUM report (no `<RUMReport>` element, or an empty JSON array)")]
    NoReport,
    #[error("the body holds more than {MAX_REPORTS} RUM reports")]
    TooManyReports,
    #[error("{at}: the `<RUMReport>` element is not closed by `</RUMReport>`")]
    UnterminatedElement { at: ReportAt },
    #[error("{at}: the CDATA section is not closed by `]]>`")]
    UnterminatedCdata { at: ReportAt },
    #[error(
        "{at}: a `<RUMReport>` element must hold one CDATA section and nothing else (byte {offset})"
    )]
    NotCdata { at: ReportAt, offset: usize },
    #[error("{at}: invalid JSON: {reason}")]
    InvalidJson { at: ReportAt, reason: String },
    #[error("{at}: a RUM report must be a JSON object `{{\"payload\", \"signature\"}}`")]
    NotAnObject { at: ReportAt },
    #[error("{at}: `payload` must be a string holding JSON")]
    PayloadNotString { at: ReportAt },
    #[error("{at}: `payload` is not a JSON object: {reason}")]
    PayloadNotJson { at: ReportAt, reason: String },
    #[error("{at}: `{field}` is missing")]
    MissingField { at: ReportAt, field: &'static str },
    #[error("{at}: `{field}` must be {expected}")]
    WrongType {
        at: ReportAt,
        field: &'static str,
        expected: &'static str,
    },
    #[error("{at}: `asset_identification.report_id` must be a non-negative integer, not {found}")]
    InvalidReportId { at: ReportAt, found: String },
    #[error("{at}: `{field}` must not be empty or hold control characters")]
    InvalidText { at: ReportAt, field: &'static str },
    #[error("{at}: `{field}` is {len} bytes, more than {MAX_FIELD_BYTES}")]
    FieldTooLong {
        at: ReportAt,
        field: &'static str,
        len: usize,
    },
    #[error("{at}: no measurement has `value.type` \"COUNT\"")]
    NoCountMeasurement { at: ReportAt },
    #[error("{at}: measurement #{measurement}: {reason}")]
    InvalidMeasurement {
        at: ReportAt,
        measurement: usize,
        reason: &'static str,
    },
    #[error(
        "{at}: measurement #{measurement}: `value.value` must be a decimal non-negative integer, not {found}"
    )]
    InvalidCount {
        at: ReportAt,
        measurement: usize,
        found: String,
    },
    #[error(
        "{at}: measurement #{measurement}: count {found} is more than the maximum of {MAX_COUNT} units"
    )]
    CountTooLarge {
        at: ReportAt,
        measurement: usize,
        found: String,
    },
}

/// Parses a RUM upload body (XML or bare JSON, see the module docs) into its reports, in body
/// order, with repeated `report_id`s removed (the first occurrence is kept).
pub fn parse(body: &[u8]) -> Result<Vec<RumReport>, RumError> {
    if body.is_empty() {
        return Err(RumError::Empty);
    }
    let text = std::str::from_utf8(body).map_err(|e| RumError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .trim_matches(is_ws);
    let reports = match text.chars().next() {
        None => return Err(RumError::Empty),
        Some('<') => xml_envelopes(text)?
            .into_iter()
            .enumerate()
            .map(|(index, raw)| report(at(index), raw, envelope_value(at(index), raw)?))
            .collect::<Result<Vec<_>, _>>()?,
        Some('{') => vec![report(at(0), text, envelope_value(at(0), text)?)?],
        Some('[') => json_array_envelopes(text)?
            .into_iter()
            .enumerate()
            .map(|(index, (raw, value))| report(at(index), raw, value))
            .collect::<Result<Vec<_>, _>>()?,
        Some(found) => return Err(RumError::UnknownFormat { found }),
    };
    let mut seen = HashSet::new();
    Ok(reports
        .into_iter()
        .filter(|r| seen.insert(r.report_id))
        .collect())
}

fn at(index: usize) -> ReportAt {
    ReportAt {
        index,
        report_id: None,
    }
}

/// Whitespace as both XML and JSON define it.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

const OPEN: &str = "<RUMReport";
const CLOSE: &str = "</RUMReport>";
const CDATA_OPEN: &str = "<![CDATA[";
const CDATA_CLOSE: &str = "]]>";

/// The CDATA text (trimmed) of every `<RUMReport>` element, in order.
fn xml_envelopes(s: &str) -> Result<Vec<&str>, RumError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = find_open(s, pos) {
        if out.len() == MAX_REPORTS {
            return Err(RumError::TooManyReports);
        }
        let at = at(out.len());
        let name_end = start + OPEN.len();
        let Some(gt) = s[name_end..].find('>').map(|i| name_end + i) else {
            return Err(RumError::UnterminatedElement { at });
        };
        // A self-closing `<RUMReport/>` has no content at all.
        if s[..gt].ends_with('/') {
            return Err(RumError::NotCdata { at, offset: gt - 1 });
        }
        let content = skip_ws(s, gt + 1);
        if !s[content..].starts_with(CDATA_OPEN) {
            return Err(misplaced(s, content, at));
        }
        let data = content + CDATA_OPEN.len();
        let Some(data_end) = s[data..].find(CDATA_CLOSE).map(|i| data + i) else {
            return Err(RumError::UnterminatedCdata { at });
        };
        let close = skip_ws(s, data_end + CDATA_CLOSE.len());
        if !s[close..].starts_with(CLOSE) {
            return Err(misplaced(s, close, at));
        }
        out.push(s[data..data_end].trim_matches(is_ws));
        pos = close + CLOSE.len();
    }
    if out.is_empty() {
        return Err(RumError::NoReport);
    }
    Ok(out)
}

/// Finds the next `<RUMReport` start tag, skipping longer names such as `<RUMReportAck>`.
fn find_open(s: &str, mut from: usize) -> Option<usize> {
    while let Some(i) = s[from..].find(OPEN) {
        let start = from + i;
        match s.as_bytes().get(start + OPEN.len()) {
            None | Some(b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n') => return Some(start),
            Some(_) => from = start + OPEN.len(),
        }
    }
    None
}

fn skip_ws(s: &str, from: usize) -> usize {
    from + (s.len() - from - s[from..].trim_start_matches(is_ws).len())
}

/// Something other than the expected CDATA or end tag inside an element: if the element is
/// never closed that is the real problem, otherwise the content is.
fn misplaced(s: &str, offset: usize, at: ReportAt) -> RumError {
    if s[offset..].contains(CLOSE) {
        RumError::NotCdata { at, offset }
    } else {
        RumError::UnterminatedElement { at }
    }
}

/// Splits a JSON array into its elements, keeping each one's exact text for `raw`.
fn json_array_envelopes(s: &str) -> Result<Vec<(&str, Value)>, RumError> {
    let mut out = Vec::new();
    let mut pos = skip_ws(s, 1);
    if s[pos..].starts_with(']') {
        return match s[pos + 1..].trim_matches(is_ws) {
            "" => Err(RumError::NoReport),
            _ => Err(json_error(at(0), "trailing characters after the array")),
        };
    }
    loop {
        if out.len() == MAX_REPORTS {
            return Err(RumError::TooManyReports);
        }
        let at = at(out.len());
        let mut values = serde_json::Deserializer::from_str(&s[pos..]).into_iter::<Value>();
        let value = match values.next() {
            Some(Ok(value)) => value,
            Some(Err(e)) => return Err(json_error(at, e)),
            None => return Err(json_error(at, "the array is not closed")),
        };
        let end = pos + values.byte_offset();
        out.push((&s[pos..end], value));
        pos = skip_ws(s, end);
        match s.as_bytes().get(pos) {
            Some(b',') => pos = skip_ws(s, pos + 1),
            Some(b']') if s[pos + 1..].trim_matches(is_ws).is_empty() => return Ok(out),
            Some(b']') => return Err(json_error(at, "trailing characters after the array")),
            _ => return Err(json_error(at, "expected `,` or `]` after an array element")),
        }
    }
}

fn json_error(at: ReportAt, reason: impl fmt::Display) -> RumError {
    RumError::InvalidJson {
        at,
        reason: reason.to_string(),
    }
}

fn envelope_value(at: ReportAt, raw: &str) -> Result<Value, RumError> {
    serde_json::from_str(raw).map_err(|e| json_error(at, e))
}

/// Checks one envelope and pulls out what the satellite needs.
fn report(mut at: ReportAt, raw: &str, envelope: Value) -> Result<RumReport, RumError> {
    let Value::Object(envelope) = envelope else {
        return Err(RumError::NotAnObject { at });
    };
    let payload = match envelope.get("payload") {
        None => {
            return Err(RumError::MissingField {
                at,
                field: "payload",
            });
        }
        Some(Value::String(payload)) => payload,
        Some(_) => return Err(RumError::PayloadNotString { at }),
    };
    match envelope.get("signature") {
        None => {
            return Err(RumError::MissingField {
                at,
                field: "signature",
            });
        }
        Some(Value::Object(_)) => {}
        Some(_) => {
            return Err(RumError::WrongType {
                at,
                field: "signature",
                expected: "an object",
            });
        }
    }
    let payload: Value = serde_json::from_str(payload).map_err(|e| RumError::PayloadNotJson {
        at,
        reason: e.to_string(),
    })?;
    if !payload.is_object() {
        return Err(RumError::PayloadNotJson {
            at,
            reason: "it is not an object".into(),
        });
    }

    const REPORT_ID: &str = "asset_identification.report_id";
    let report_id = match field(&payload, REPORT_ID) {
        None => {
            return Err(RumError::MissingField {
                at,
                field: REPORT_ID,
            });
        }
        Some(v) => v.as_u64().ok_or_else(|| RumError::InvalidReportId {
            at,
            found: excerpt(v),
        })?,
    };
    at.report_id = Some(report_id);

    let text = |name| required_text(&payload, at, name);
    let udi_pid = text("asset_identification.instance.sudi.udi_pid")?;
    let udi_serial = text("asset_identification.instance.sudi.udi_serial_number")?;
    let entitlement_tag = text("meta.entitlement_tag")?;
    let asset_name = text("asset_identification.asset.name")?;
    let software_version = match field(&payload, "meta.software_version") {
        None => None,
        Some(v) => Some(checked_text(v, at, "meta.software_version")?),
    };
    let (count, measured_at) = latest_count(&payload, at)?;
    Ok(RumReport {
        report_id,
        udi_pid,
        udi_serial,
        entitlement_tag,
        asset_name,
        software_version,
        count,
        measured_at,
        raw: raw.to_owned(),
    })
}

/// Follows a dotted path through nested objects.
fn field<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn required_text(payload: &Value, at: ReportAt, name: &'static str) -> Result<String, RumError> {
    match field(payload, name) {
        None => Err(RumError::MissingField { at, field: name }),
        Some(v) => checked_text(v, at, name),
    }
}

fn checked_text(value: &Value, at: ReportAt, field: &'static str) -> Result<String, RumError> {
    let Value::String(s) = value else {
        return Err(RumError::WrongType {
            at,
            field,
            expected: "a string",
        });
    };
    if s.len() > MAX_FIELD_BYTES {
        return Err(RumError::FieldTooLong {
            at,
            field,
            len: s.len(),
        });
    }
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err(RumError::InvalidText { at, field });
    }
    Ok(s.clone())
}

/// The count and end time of the `COUNT` measurement with the greatest `end_time`; on ties the
/// later one in the list wins, as devices append measurements in time order. Every `COUNT`
/// measurement is checked, not only the chosen one, so garbage is never half-accepted.
fn latest_count(payload: &Value, at: ReportAt) -> Result<(u64, i64), RumError> {
    let measurements = match payload.get("measurements") {
        None => {
            return Err(RumError::MissingField {
                at,
                field: "measurements",
            });
        }
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(RumError::WrongType {
                at,
                field: "measurements",
                expected: "an array",
            });
        }
    };
    let mut latest: Option<(u64, i64)> = None;
    for (measurement, m) in measurements.iter().enumerate() {
        let invalid = |reason| RumError::InvalidMeasurement {
            at,
            measurement,
            reason,
        };
        if !m.is_object() {
            return Err(invalid("a measurement must be an object"));
        }
        if field(m, "value.type").and_then(Value::as_str) != Some("COUNT") {
            continue;
        }
        let end_time = match m.get("end_time") {
            None => return Err(invalid("`end_time` is missing")),
            Some(t) => t
                .as_i64()
                .filter(|t| *t >= 0)
                .ok_or_else(|| invalid("`end_time` must be a non-negative integer"))?,
        };
        let count = match field(m, "value.value") {
            None => return Err(invalid("`value.value` is missing")),
            Some(v) => count_value(v, at, measurement)?,
        };
        if latest.is_none_or(|(_, t)| end_time >= t) {
            latest = Some((count, end_time));
        }
    }
    latest.ok_or(RumError::NoCountMeasurement { at })
}

/// Cisco sends counts as decimal strings ("3"); a plain JSON number is accepted too.
fn count_value(value: &Value, at: ReportAt, measurement: usize) -> Result<u64, RumError> {
    let too_large = || RumError::CountTooLarge {
        at,
        measurement,
        found: excerpt(value),
    };
    let invalid = || RumError::InvalidCount {
        at,
        measurement,
        found: excerpt(value),
    };
    let count = match value {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            // All digits, so the only way to fail is overflow.
            s.parse::<u64>().map_err(|_| too_large())?
        }
        Value::Number(n) => match n.as_u64() {
            Some(n) => n,
            // Integers beyond u64 arrive as floats; anything else is negative or fractional.
            None if n.as_f64().is_some_and(|f| f > MAX_COUNT as f64) => return Err(too_large()),
            None => return Err(invalid()),
        },
        _ => return Err(invalid()),
    };
    if count > MAX_COUNT {
        return Err(too_large());
    }
    Ok(count)
}

/// A short rendering of an offending value for an error message; device input is not echoed
/// back at length.
fn excerpt(value: &Value) -> String {
    const MAX: usize = 64;
    let text = value.to_string();
    if text.len() <= MAX {
        return text;
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &text[..cut])
}

#[cfg(test)]
mod tests;
