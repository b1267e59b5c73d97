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
/// Counts above this are refused: no device reports four billion units of one entitlement.
pub const MAX_COUNT: u64 = u32::MAX as u64;

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
    #[error("{at}: measurement #{measurement}: count {found} is above {MAX_COUNT}")]
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
mod tests {
    use super::*;
    use serde_json::json;

    /// A real report from a Cisco C9800-CL (see tests/data/cisco-rum/).
    const FIXTURE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cisco-rum/example-rum-1671840750.xml"
    ));

    fn payload(report_id: u64) -> Value {
        json!({
            "version": "2.0",
            "asset_identification": {
                "report_id": report_id,
                "asset": { "name": "regid.2018-05.com.cisco.WLC_9500C,1.0_test" },
                "instance": { "sudi": { "udi_pid": "C9800-CL-K9", "udi_serial_number": "SERIAL1" } }
            },
            "meta": {
                "entitlement_tag": "regid.2018-06.com.cisco.DNA_NWStack,1.0_test",
                "software_version": "17.09.02"
            },
            "measurements": [
                { "start_time": 100, "end_time": 200, "value": { "type": "COUNT", "value": "2" } },
                { "start_time": 200, "end_time": 300, "value": { "type": "COUNT", "value": "5" } }
            ]
        })
    }

    fn envelope(payload: &Value) -> String {
        json!({
            "payload": payload.to_string(),
            "signature": { "signing_type": "builtin", "key": "k", "value": "c2lnbmF0dXJl" }
        })
        .to_string()
    }

    /// The envelope of report 1 after `edit` changed its payload.
    fn with(edit: impl FnOnce(&mut Value)) -> String {
        let mut p = payload(1);
        edit(&mut p);
        envelope(&p)
    }

    /// Sets (or, with `None`, removes) the payload field at a JSON pointer.
    fn set(p: &mut Value, pointer: &str, value: Option<Value>) {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = p.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        match value {
            Some(v) => parent.insert(key.to_owned(), v),
            None => parent.remove(key),
        };
    }

    fn measurements(list: Value) -> String {
        with(|p| set(p, "/measurements", Some(list)))
    }

    fn xml(envelopes: &[String]) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<smartLicense>\n");
        for e in envelopes {
            out.push_str(&format!("<RUMReport>\n<![CDATA[{e}]]>\n</RUMReport>\n"));
        }
        out + "</smartLicense>\n"
    }

    fn ok(body: &str) -> Vec<RumReport> {
        parse(body.as_bytes()).unwrap_or_else(|e| panic!("body refused: {e}"))
    }

    macro_rules! assert_refused {
        ($body:expr, $pattern:pat $(if $guard:expr)?) => {{
            let body = $body;
            match parse(AsRef::<[u8]>::as_ref(&body)) {
                Err(e) => assert!(matches!(e, $pattern $(if $guard)?), "wrong error: {e:?} ({e})"),
                Ok(r) => panic!("accepted: {r:?}"),
            }
        }};
    }

    #[test]
    fn the_real_fixture_parses_to_its_one_report() {
        let reports = ok(FIXTURE);
        let cdata = FIXTURE
            .split_once("<![CDATA[")
            .and_then(|(_, rest)| rest.split_once("]]>"))
            .map(|(json, _)| json)
            .unwrap();
        assert_eq!(
            reports,
            vec![RumReport {
                report_id: 1671840750,
                udi_pid: "C9800-CL-K9".into(),
                udi_serial: "9NTUEA8FIIH".into(),
                entitlement_tag:
                    "regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896"
                        .into(),
                asset_name:
                    "regid.2018-05.com.cisco.WLC_9500C,1.0_85665885-b865-4e32-8184-5510412fcb54"
                        .into(),
                software_version: Some("17.09.02".into()),
                // Three measurements (counts 2, 3, 3); the last ends at 1673790212.
                count: 3,
                measured_at: 1673790212,
                raw: cdata.to_owned(),
            }]
        );
        assert!(reports[0].raw.starts_with("{\n  \"payload\"") && reports[0].raw.ends_with('}'));
    }

    #[test]
    fn the_count_comes_from_the_latest_count_measurement() {
        let body = measurements(json!([
            { "end_time": 300, "value": { "type": "COUNT", "value": "7" } },
            { "end_time": 100, "value": { "type": "COUNT", "value": "1" } },
            { "end_time": 900, "value": { "type": "MEMORY", "value": "42" } },
            { "end_time": 250, "value": { "type": "COUNT", "value": "4" } }
        ]));
        let r = &ok(&body)[0];
        assert_eq!((r.count, r.measured_at), (7, 300));
    }

    #[test]
    fn on_equal_end_times_the_last_measurement_wins() {
        let body = measurements(json!([
            { "end_time": 300, "value": { "type": "COUNT", "value": "7" } },
            { "end_time": 300, "value": { "type": "COUNT", "value": "8" } },
            { "end_time": 200, "value": { "type": "COUNT", "value": "9" } }
        ]));
        assert_eq!(ok(&body)[0].count, 8);
    }

    #[test]
    fn two_reports_in_one_xml_body_keep_their_order() {
        let (a, b) = (envelope(&payload(2)), envelope(&payload(1)));
        let body = xml(&[a.clone(), b.clone()]).replace(
            "<smartLicense>\n",
            "<smartLicense>\n<RUMReportAck>ignored</RUMReportAck>\n",
        );
        let reports = ok(&body);
        assert_eq!(
            reports.iter().map(|r| r.report_id).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(
            (reports[0].raw.as_str(), reports[1].raw.as_str()),
            (a.as_str(), b.as_str())
        );
        assert_eq!((reports[1].count, reports[1].measured_at), (5, 300));
    }

    #[test]
    fn a_bare_json_envelope_is_one_report() {
        let body = format!(" \n{}\n", envelope(&payload(9)));
        let reports = ok(&body);
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].report_id, 9);
        assert_eq!(reports[0].raw, body.trim());
    }

    #[test]
    fn a_json_array_keeps_each_element_text_exactly() {
        let (a, b) = (envelope(&payload(1)), envelope(&payload(2)));
        let body = format!("[\n  {a} ,\n\t{b}]  ");
        let reports = ok(&body);
        assert_eq!(
            reports.iter().map(|r| r.raw.as_str()).collect::<Vec<_>>(),
            [&a, &b]
        );
    }

    #[test]
    fn a_count_may_be_a_json_number_and_up_to_u32_max() {
        let body =
            measurements(json!([{ "end_time": 1, "value": { "type": "COUNT", "value": 4 } }]));
        assert_eq!(ok(&body)[0].count, 4);
        let body = measurements(
            json!([{ "end_time": 1, "value": { "type": "COUNT", "value": "4294967295" } }]),
        );
        assert_eq!(ok(&body)[0].count, u64::from(u32::MAX));
    }

    #[test]
    fn a_repeated_report_id_keeps_the_first_report() {
        let first = envelope(&payload(1));
        let again = with(|p| set(p, "/meta/entitlement_tag", Some(json!("other"))));
        let reports = ok(&xml(&[first.clone(), envelope(&payload(2)), again]));
        assert_eq!(
            reports.iter().map(|r| r.report_id).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(reports[0].raw, first);
    }

    #[test]
    fn a_byte_order_mark_and_cdata_whitespace_are_tolerated() {
        let e = envelope(&payload(1));
        let body = format!("\u{feff}<RUMReport a=\"b\"><![CDATA[ \n{e}\r\n]]></RUMReport>");
        assert_eq!(ok(&body)[0].raw, e);
    }

    #[test]
    fn software_version_is_optional_but_checked() {
        let body = with(|p| set(p, "/meta/software_version", None));
        assert_eq!(ok(&body)[0].software_version, None);
        let body = with(|p| set(p, "/meta/software_version", Some(json!(17))));
        assert_refused!(
            body,
            RumError::WrongType {
                field: "meta.software_version",
                ..
            }
        );
    }

    #[test]
    fn an_empty_body_is_refused() {
        assert_refused!(b"", RumError::Empty);
        assert_refused!(b" \r\n\t", RumError::Empty);
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused() {
        assert_refused!(
            b"<RUMReport>\xff</RUMReport>",
            RumError::NotUtf8 { offset: 11 }
        );
    }

    #[test]
    fn a_body_neither_xml_nor_json_is_refused() {
        assert_refused!(b"payload=1", RumError::UnknownFormat { found: 'p' });
    }

    #[test]
    fn xml_without_a_rum_report_is_refused() {
        assert_refused!(
            b"<?xml version=\"1.0\"?><smartLicense/>",
            RumError::NoReport
        );
        assert_refused!(b"<RUMReportAck></RUMReportAck>", RumError::NoReport);
        assert_refused!(b" [ ] ", RumError::NoReport);
    }

    #[test]
    fn an_unterminated_element_is_refused() {
        let e = envelope(&payload(1));
        assert_refused!(
            format!("<RUMReport><![CDATA[{e}]]>"),
            RumError::UnterminatedElement { .. }
        );
        assert_refused!(b"<RUMReport", RumError::UnterminatedElement { .. });
        let second = format!("{}<RUMReport>{e}", xml(std::slice::from_ref(&e)));
        assert_refused!(
            second,
            RumError::UnterminatedElement {
                at: ReportAt { index: 1, .. }
            }
        );
    }

    #[test]
    fn an_unterminated_cdata_section_is_refused() {
        let e = envelope(&payload(1));
        let body = format!("<RUMReport><![CDATA[{e}</RUMReport>");
        assert_refused!(body, RumError::UnterminatedCdata { .. });
    }

    #[test]
    fn an_element_without_cdata_is_refused() {
        assert_refused!(
            b"<RUMReport>{}</RUMReport>",
            RumError::NotCdata { offset: 11, .. }
        );
        assert_refused!(b"<RUMReport/>", RumError::NotCdata { .. });
        let e = envelope(&payload(1));
        let body = format!("<RUMReport><![CDATA[{e}]]>extra</RUMReport>");
        assert_refused!(body, RumError::NotCdata { .. });
    }

    #[test]
    fn an_envelope_that_is_not_json_is_refused() {
        assert_refused!(
            b"<RUMReport><![CDATA[{nope]]></RUMReport>",
            RumError::InvalidJson { .. }
        );
        assert_refused!(b"{\"payload\": ", RumError::InvalidJson { .. });
        let e = envelope(&payload(1));
        assert_refused!(format!("[{e} {e}]"), RumError::InvalidJson { .. });
        assert_refused!(format!("[{e},]"), RumError::InvalidJson { .. });
        assert_refused!(format!("[{e}"), RumError::InvalidJson { .. });
        assert_refused!(format!("[{e}] x"), RumError::InvalidJson { .. });
        assert_refused!(format!("{e} x"), RumError::InvalidJson { .. });
    }

    #[test]
    fn an_envelope_that_is_not_an_object_is_refused() {
        assert_refused!(b"[1]", RumError::NotAnObject { .. });
        assert_refused!(
            b"<RUMReport><![CDATA[\"x\"]]></RUMReport>",
            RumError::NotAnObject { .. }
        );
    }

    #[test]
    fn an_envelope_without_payload_or_signature_is_refused() {
        assert_refused!(
            b"{\"signature\": {}}",
            RumError::MissingField {
                field: "payload",
                ..
            }
        );
        let body = json!({ "payload": payload(1).to_string() }).to_string();
        assert_refused!(
            body,
            RumError::MissingField {
                field: "signature",
                ..
            }
        );
        let body = json!({ "payload": payload(1).to_string(), "signature": "x" }).to_string();
        assert_refused!(
            body,
            RumError::WrongType {
                field: "signature",
                ..
            }
        );
    }

    #[test]
    fn a_payload_that_is_not_a_string_is_refused() {
        let body = json!({ "payload": payload(1), "signature": {} }).to_string();
        assert_refused!(body, RumError::PayloadNotString { .. });
    }

    #[test]
    fn a_payload_that_is_not_json_is_refused() {
        let body = json!({ "payload": "{not json", "signature": {} }).to_string();
        assert_refused!(body, RumError::PayloadNotJson { .. });
        let body = json!({ "payload": "[1]", "signature": {} }).to_string();
        assert_refused!(body, RumError::PayloadNotJson { .. });
    }

    #[test]
    fn a_missing_report_id_is_refused() {
        let body = with(|p| set(p, "/asset_identification/report_id", None));
        assert_refused!(
            body,
            RumError::MissingField {
                field: "asset_identification.report_id",
                ..
            }
        );
    }

    #[test]
    fn a_missing_udi_pid_is_refused() {
        let body = with(|p| set(p, "/asset_identification/instance/sudi/udi_pid", None));
        let field = "asset_identification.instance.sudi.udi_pid";
        assert_refused!(body, RumError::MissingField { field: f, .. } if f == field);
    }

    #[test]
    fn a_missing_udi_serial_number_is_refused() {
        let body = with(|p| {
            set(
                p,
                "/asset_identification/instance/sudi/udi_serial_number",
                None,
            )
        });
        let field = "asset_identification.instance.sudi.udi_serial_number";
        assert_refused!(body, RumError::MissingField { field: f, .. } if f == field);
        // A missing parent object is the same missing field.
        let body = with(|p| set(p, "/asset_identification/instance", None));
        assert_refused!(body, RumError::MissingField { field: f, .. } if f.ends_with("udi_pid"));
    }

    #[test]
    fn a_missing_entitlement_tag_is_refused() {
        let body = with(|p| set(p, "/meta/entitlement_tag", None));
        assert_refused!(
            body,
            RumError::MissingField {
                field: "meta.entitlement_tag",
                ..
            }
        );
    }

    #[test]
    fn a_missing_asset_name_is_refused() {
        let body = with(|p| set(p, "/asset_identification/asset", None));
        assert_refused!(
            body,
            RumError::MissingField {
                field: "asset_identification.asset.name",
                ..
            }
        );
    }

    #[test]
    fn missing_measurements_are_refused() {
        let body = with(|p| set(p, "/measurements", None));
        assert_refused!(
            body,
            RumError::MissingField {
                field: "measurements",
                ..
            }
        );
        let body = measurements(json!({}));
        assert_refused!(
            body,
            RumError::WrongType {
                field: "measurements",
                ..
            }
        );
    }

    #[test]
    fn a_report_id_that_is_not_a_non_negative_integer_is_refused() {
        for id in [json!(-1), json!("1671840750"), json!(1.5), json!(null)] {
            let body = with(|p| set(p, "/asset_identification/report_id", Some(id)));
            assert_refused!(body, RumError::InvalidReportId { .. });
        }
    }

    #[test]
    fn a_report_without_a_count_measurement_is_refused() {
        assert_refused!(measurements(json!([])), RumError::NoCountMeasurement { .. });
        let other = json!([{ "end_time": 1, "value": { "type": "count", "value": "1" } }]);
        assert_refused!(measurements(other), RumError::NoCountMeasurement { .. });
    }

    #[test]
    fn a_malformed_count_measurement_is_refused() {
        let no_end = json!([{ "value": { "type": "COUNT", "value": "1" } }]);
        assert_refused!(
            measurements(no_end),
            RumError::InvalidMeasurement { measurement: 0, .. }
        );
        let bad_end = json!([{ "end_time": -5, "value": { "type": "COUNT", "value": "1" } }]);
        assert_refused!(measurements(bad_end), RumError::InvalidMeasurement { .. });
        let no_value = json!([{ "end_time": 1, "value": { "type": "COUNT" } }]);
        assert_refused!(measurements(no_value), RumError::InvalidMeasurement { .. });
        let not_object = json!([{ "end_time": 1, "value": { "type": "COUNT", "value": "1" } }, 3]);
        assert_refused!(
            measurements(not_object),
            RumError::InvalidMeasurement { measurement: 1, .. }
        );
    }

    #[test]
    fn a_count_that_is_not_a_decimal_non_negative_integer_is_refused() {
        let values = [
            json!(""),
            json!(" 3"),
            json!("3 "),
            json!("+3"),
            json!("-3"),
            json!("3.0"),
            json!("0x3"),
            json!("٣"),
            json!(-3),
            json!(3.5),
            json!(null),
            json!(true),
        ];
        for value in values {
            // An older measurement is checked too, not only the latest.
            let list = json!([
                { "end_time": 1, "value": { "type": "COUNT", "value": value } },
                { "end_time": 2, "value": { "type": "COUNT", "value": "1" } }
            ]);
            assert_refused!(
                measurements(list),
                RumError::InvalidCount { measurement: 0, .. }
            );
        }
    }

    #[test]
    fn a_count_above_u32_max_is_refused() {
        let values = [
            json!("4294967296"),
            json!(4294967296u64),
            json!("99999999999999999999999999"),
            json!(1e30),
        ];
        for value in values {
            let list = json!([{ "end_time": 1, "value": { "type": "COUNT", "value": value } }]);
            assert_refused!(measurements(list), RumError::CountTooLarge { .. });
        }
        // An integer literal beyond u64 (parsed as a float) is too large, not malformed.
        let huge =
            measurements(json!([{ "end_time": 1, "value": { "type": "COUNT", "value": 0 } }]))
                .replace(
                    "\\\"value\\\":0",
                    "\\\"value\\\":123456789012345678901234567890",
                );
        assert_refused!(huge, RumError::CountTooLarge { .. });
    }

    #[test]
    fn more_than_a_thousand_reports_are_refused() {
        let one = envelope(&payload(1));
        let many: Vec<String> = (0..=MAX_REPORTS as u64)
            .map(|id| envelope(&payload(id)))
            .collect();
        assert_refused!(xml(&many), RumError::TooManyReports);
        assert_refused!(format!("[{}]", many.join(",")), RumError::TooManyReports);
        let thousand = vec![one; MAX_REPORTS];
        // A thousand copies of one report are accepted (and de-duplicated to one).
        assert_eq!(ok(&format!("[{}]", thousand.join(","))).len(), 1);
    }

    #[test]
    fn a_string_field_over_1024_bytes_is_refused() {
        let long = "A".repeat(MAX_FIELD_BYTES + 1);
        let body = with(|p| {
            set(
                p,
                "/asset_identification/instance/sudi/udi_serial_number",
                Some(json!(long)),
            )
        });
        assert_refused!(body, RumError::FieldTooLong { len: 1025, .. });
        let body = with(|p| set(p, "/meta/entitlement_tag", Some(json!("é".repeat(513)))));
        assert_refused!(
            body,
            RumError::FieldTooLong {
                field: "meta.entitlement_tag",
                len: 1026,
                ..
            }
        );
        let limit = "B".repeat(MAX_FIELD_BYTES);
        let body = with(|p| set(p, "/meta/entitlement_tag", Some(json!(limit))));
        assert_eq!(ok(&body)[0].entitlement_tag.len(), MAX_FIELD_BYTES);
    }

    #[test]
    fn an_empty_or_non_string_text_field_is_refused() {
        let body = with(|p| {
            set(
                p,
                "/asset_identification/instance/sudi/udi_pid",
                Some(json!("")),
            )
        });
        assert_refused!(body, RumError::InvalidText { .. });
        let body = with(|p| set(p, "/meta/entitlement_tag", Some(json!("a\nb"))));
        assert_refused!(body, RumError::InvalidText { .. });
        let body = with(|p| set(p, "/meta/entitlement_tag", Some(json!(["a"]))));
        assert_refused!(
            body,
            RumError::WrongType {
                field: "meta.entitlement_tag",
                ..
            }
        );
    }

    #[test]
    fn error_messages_name_the_report_and_the_field() {
        let bad = with(|p| {
            set(p, "/asset_identification/report_id", Some(json!(77)));
            set(p, "/meta/entitlement_tag", None);
        });
        let err = parse(xml(&[envelope(&payload(1)), bad]).as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "report #1 (report_id 77): `meta.entitlement_tag` is missing"
        );
        let err = parse(b"[1]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "report #0: a RUM report must be a JSON object `{\"payload\", \"signature\"}`"
        );
    }
}
