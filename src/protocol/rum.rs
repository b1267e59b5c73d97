//! Cisco RUM reports (SPEC §3b): the usage reports that devices under Smart Licensing Using Policy
//! push to a CSLU-style URL. This module turns a request body into checked [`RumReport`]s and
//! does nothing else: no IO, no clock, no trust in Cisco's signatures (they are kept in `raw`
//! for relay upstream, never verified).
//!
//! Two body forms are accepted, told apart by the first non-whitespace byte:
//!
//! * `<` — XML holding one or more `<RUMReport>` elements, each containing exactly one CDATA
//!   section (whitespace around it is allowed) whose text is the envelope below; a section split
//!   in two (`]]]]><![CDATA[>`, how a writer carries a `]]>` in the text) is joined. Anything
//!   outside those elements (an XML declaration, a `<smartLicense>` wrapper, other elements) is
//!   ignored. This is a strict extractor for that one shape, not an XML parser: a report sent as
//!   entity-escaped text instead of CDATA is refused, and comments are not understood.
//! * `{` or `[` — the bare JSON envelope, or a JSON array of envelopes. No public description of
//!   another JSON wrapper (such as `{"rum_reports": [...]}`) was found, so none is accepted.
//!
//! The envelope is `{"payload": "<JSON text>", "signature": {...}}`: the payload is a JSON
//! document serialized *into a string*, because the signature covers those exact bytes. The
//! report id is `asset_identification.report_id` (IOS XE 17.9, payload `"version": "2.0"`) or,
//! in the older shape without `version` (IOS XE 17.6, NX-OS 10.2), `meta.report_id`.
//!
//! Reports pulled from a device's `/smartlic-service` API arrive as a JSON array (the `usage`
//! of its answer, see `protocol::cisco::pull`); [`parse_pulled`] takes that array through the
//! same checks and de-duplication as a pushed body, with a larger cap ([`MAX_PULLED_REPORTS`]).
//!
//! A body is accepted or refused as a whole: one bad report refuses the body, so a device never
//! gets a partial acknowledgement it cannot interpret. A `report_id` repeated inside one body
//! keeps its first occurrence; later ones are checked like any other report and then dropped, so
//! the caller sees each id once.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

/// At most this many reports in one pushed body; devices batch far fewer.
pub const MAX_REPORTS: usize = 1000;
/// At most this many reports in one pulled `usage` array: a device answers `all-reports` with
/// every report it still holds, one per entitlement tag and reporting period.
pub const MAX_PULLED_REPORTS: usize = 10_000;
/// At most this many bytes in any string field kept from a report.
pub const MAX_FIELD_BYTES: usize = 1024;
/// Counts above this are refused: the satellite's bound on any quantity (10^12 units).
pub const MAX_COUNT: u64 = crate::domain::MAX_UNITS;

/// One checked RUM report: who measured what, and the signed original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RumReport {
    /// `asset_identification.report_id` (or `meta.report_id` in the older shape): Cisco's id
    /// for this report, the de-duplication key.
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
    #[error("the body holds more than {max} RUM reports")]
    TooManyReports { max: usize },
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
    #[error("{at}: `{field}` must be a non-negative integer, not {found}")]
    InvalidReportId {
        at: ReportAt,
        field: &'static str,
        found: String,
    },
    #[error(
        "{at}: `asset_identification.report_id` ({first}) and `meta.report_id` ({second}) differ; a report has one id"
    )]
    ConflictingReportIds {
        at: ReportAt,
        first: u64,
        second: u64,
    },
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
    let envelopes = match text.chars().next() {
        None => return Err(RumError::Empty),
        Some('<') => xml::envelopes(text, MAX_REPORTS)?
            .into_iter()
            .enumerate()
            .map(|(index, raw)| Envelope::unparsed(index, raw))
            .collect(),
        Some('{') => vec![Envelope::unparsed(0, Cow::Borrowed(text))],
        Some('[') => json_array_envelopes(text, MAX_REPORTS)?
            .into_iter()
            .enumerate()
            .map(|(index, (raw, value))| Envelope::parsed(index, raw, value))
            .collect(),
        Some(found) => return Err(RumError::UnknownFormat { found }),
    };
    checked(envelopes)
}

/// What a pulled `usage` array held: the RUM reports, and the elements of another kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The checked reports, in array order, each `report_id` once (the first is kept).
    pub reports: Vec<RumReport>,
    /// Elements whose `header.type` is present and not `"rum"` (DevNet says `all-reports`
    /// carries "the device-led conversion (DLC) payload where available"; its shape is not
    /// public). They are kept byte for byte, not checked, so that they do not block the reports.
    pub other: Vec<OtherElement>,
}

/// An element of a pulled `usage` array that is not a RUM report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherElement {
    /// Its position in the array, from 0.
    pub index: usize,
    /// Its `header.type`, shortened for display when long.
    pub kind: String,
    /// Its JSON text exactly as received.
    pub raw: String,
}

/// Parses the `usage` array of a device's pulled answer (its exact JSON text, `[...]`) through
/// the same checks and de-duplication as a pushed body. An empty array holds nothing; more than
/// [`MAX_PULLED_REPORTS`] elements are refused.
pub fn parse_pulled(array: &str) -> Result<Pulled, RumError> {
    let text = array.trim_matches(is_ws);
    match text.chars().next() {
        None => return Err(RumError::Empty),
        Some('[') => {}
        Some(found) => return Err(RumError::UnknownFormat { found }),
    }
    if text[1..].trim_matches(is_ws) == "]" {
        return Ok(Pulled {
            reports: Vec::new(),
            other: Vec::new(),
        });
    }
    let mut envelopes = Vec::new();
    let mut other = Vec::new();
    for (index, (raw, value)) in json_array_envelopes(text, MAX_PULLED_REPORTS)?
        .into_iter()
        .enumerate()
    {
        match field(&value, "header.type").and_then(Value::as_str) {
            Some(kind) if kind != "rum" => other.push(OtherElement {
                index,
                kind: excerpt(&Value::String(kind.to_owned())),
                raw: raw.to_owned(),
            }),
            _ => envelopes.push(Envelope::parsed(index, raw, value)),
        }
    }
    Ok(Pulled {
        reports: checked(envelopes)?,
        other,
    })
}

/// One envelope cut from a body: its position, its exact text, and its JSON once parsed.
struct Envelope<'a> {
    index: usize,
    raw: Cow<'a, str>,
    value: Option<Value>,
}

impl<'a> Envelope<'a> {
    fn unparsed(index: usize, raw: Cow<'a, str>) -> Self {
        Envelope {
            index,
            raw,
            value: None,
        }
    }

    fn parsed(index: usize, raw: &'a str, value: Value) -> Self {
        Envelope {
            index,
            raw: Cow::Borrowed(raw),
            value: Some(value),
        }
    }
}

/// The checks and the de-duplication every RUM path shares, pushed or pulled: each envelope is
/// checked in order (the first bad one refuses the whole), then a repeated `report_id` keeps
/// its first report.
fn checked(envelopes: Vec<Envelope<'_>>) -> Result<Vec<RumReport>, RumError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(envelopes.len());
    for e in envelopes {
        let at = at(e.index);
        let value = match e.value {
            Some(value) => value,
            None => envelope_value(at, &e.raw)?,
        };
        let report = report(at, &e.raw, value)?;
        if seen.insert(report.report_id) {
            out.push(report);
        }
    }
    Ok(out)
}

pub(super) fn at(index: usize) -> ReportAt {
    ReportAt {
        index,
        report_id: None,
    }
}

/// Whitespace as both XML and JSON define it.
pub(super) fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

pub(super) fn skip_ws(s: &str, from: usize) -> usize {
    from + (s.len() - from - s[from..].trim_start_matches(is_ws).len())
}

/// Splits a JSON array into its elements, keeping each one's exact text for `raw`.
fn json_array_envelopes(s: &str, max: usize) -> Result<Vec<(&str, Value)>, RumError> {
    let mut out = Vec::new();
    let mut pos = skip_ws(s, 1);
    if s[pos..].starts_with(']') {
        return match s[pos + 1..].trim_matches(is_ws) {
            "" => Err(RumError::NoReport),
            _ => Err(json_error(at(0), "trailing characters after the array")),
        };
    }
    loop {
        if out.len() == max {
            return Err(RumError::TooManyReports { max });
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

    let report_id = report_id(&payload, at)?;
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

/// The report id, from `asset_identification.report_id` or, in the older shape (IOS XE 17.6,
/// NX-OS), `meta.report_id`; a report carrying both must carry one id.
fn report_id(payload: &Value, at: ReportAt) -> Result<u64, RumError> {
    const CURRENT: &str = "asset_identification.report_id";
    const OLDER: &str = "meta.report_id";
    let id = |name| match field(payload, name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| RumError::InvalidReportId {
                at,
                field: name,
                found: excerpt(v),
            }),
    };
    match (id(CURRENT)?, id(OLDER)?) {
        (Some(first), Some(second)) if first != second => {
            Err(RumError::ConflictingReportIds { at, first, second })
        }
        (Some(id), _) | (None, Some(id)) => Ok(id),
        (None, None) => Err(RumError::MissingField { at, field: CURRENT }),
    }
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

mod xml;

#[cfg(test)]
mod tests;
