//! Pull mode: the wire types of an IOS XE device's Smart Licensing Using Policy REST API
//! (`/smartlic-service`, HTTPS with Basic authentication; Cisco DevNet "IOS XE Smart Licensing
//! Using Policy API"). Only what the satellite sends and reads is here; what is verified and what
//! is inferred is in docs/cisco.md.
//!
//! Decoders are strict about what they use (types, sizes, counts) and tolerate keys they do not
//! use: the public models of these answers are known only in part, so refusing an unknown key
//! would refuse a real device for a field nobody reads.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::protocol::rum::{self, MAX_PULLED_REPORTS, Pulled, RumError};

/// `POST`: closes the device's open reports, so later reads include usage to date.
pub const CLOSE_REPORTS: &str = "/smartlic-service/close-reports";
/// `GET`: the table of contents, `{"usage_list": [...]}`.
pub const LIST: &str = "/smartlic-service/list";
/// `GET`: every signed report the device holds, `{"usage": [...]}`.
pub const ALL_REPORTS: &str = "/smartlic-service/all-reports";
/// `POST`: installs a RUM ACK or a policy on the device.
pub const IMPORT: &str = "/smartlic-service/import";
/// The body sent with `close-reports`. The device ignores it (DevNet's sample sends a form
/// field named `test`); an empty JSON object matches the content type every call declares.
pub const CLOSE_REPORTS_BODY: &str = "{}";
/// The content type of every request ("All IOS-XE SLP REST APIs use Content-type:
/// Application/json", DevNet).
pub const CONTENT_TYPE: &str = "application/json";

/// At most this many bytes in a `list` answer (10,000 entries of a few hundred bytes).
pub const MAX_LIST_BYTES: usize = 8 << 20;
/// At most this many bytes in a `usage` answer (10,000 reports of a few kilobytes).
pub const MAX_USAGE_BYTES: usize = 64 << 20;
/// At most this many bytes in an ACK or policy file carried by `import`.
pub const MAX_IMPORT_BYTES: usize = 1 << 20;

/// `GET /smartlic-service/days/<n>`: the reports of the last `n` days.
pub fn days(n: u32) -> String {
    format!("/smartlic-service/days/{n}")
}

/// Why a device's answer (or an import body) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    #[error("the answer is {len} bytes, more than the {max} a device's {what} may take")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("the answer is not JSON ({reason}); is the address a Smart Licensing device?")]
    InvalidJson { reason: String },
    #[error("`{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("`usage_list` has more than {MAX_PULLED_REPORTS} entries")]
    TooManyEntries,
    #[error("`usage`: {0}")]
    Rum(#[from] RumError),
    #[error("the import body is not what the `{encoding}` encoding sends: {reason}")]
    BadImport {
        encoding: &'static str,
        reason: String,
    },
    #[error(
        "the JSON field name for base64 imports must be 1 to 64 letters, digits, `_` or `-`, not {0:?}"
    )]
    BadFieldName(String),
}

/// One entry of a `list` answer. Its fields are not public beyond "report ID and timestamps",
/// so the entry is kept verbatim and only `report_id` is read when present as an integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub report_id: Option<u64>,
    pub raw: String,
}

/// Decodes `GET /smartlic-service/list`: `{"usage_list": [...]}`; an absent or null
/// `usage_list` is an empty list.
pub fn decode_list(body: &[u8]) -> Result<Vec<ListEntry>, PullError> {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow, default)]
        usage_list: Option<&'a RawValue>,
    }
    let body: Body<'_> = json(body, "list", MAX_LIST_BYTES)?;
    let Some(list) = body.usage_list.filter(|v| v.get() != "null") else {
        return Ok(Vec::new());
    };
    let mut items = serde_json::Deserializer::from_str(list.get());
    let items = de::Deserializer::deserialize_seq(&mut items, Bounded(MAX_PULLED_REPORTS))
        .map_err(|e| match e.to_string().as_str() {
            m if m.starts_with(TOO_MANY) => PullError::TooManyEntries,
            _ if !list.get().starts_with('[') => PullError::WrongType {
                field: "usage_list",
                expected: "an array",
            },
            _ => invalid_json(e),
        })?;
    Ok(items
        .into_iter()
        .map(|item| ListEntry {
            report_id: serde_json::from_str::<serde_json::Value>(item.get())
                .ok()
                .and_then(|v| v.get("report_id").and_then(serde_json::Value::as_u64)),
            raw: item.get().to_owned(),
        })
        .collect())
}

/// Decodes `GET /smartlic-service/all-reports` or `/days/<n>`: `{"usage": [<report>...]}`,
/// each report through the same parser and de-duplication as a pushed body
/// ([`rum::parse_pulled`]). An absent or null `usage` means the device has nothing (DevNet's
/// sample reads it so); a single report object is taken as a list of one (the swagger model
/// shows `usage` as an object, the sample as a list).
pub fn decode_usage(body: &[u8]) -> Result<Pulled, PullError> {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow, default)]
        usage: Option<&'a RawValue>,
    }
    let body: Body<'_> = json(body, "usage", MAX_USAGE_BYTES)?;
    let usage = body.usage.map(RawValue::get).unwrap_or("null");
    match usage.as_bytes()[0] {
        b'n' => Ok(Pulled {
            reports: Vec::new(),
            other: Vec::new(),
        }),
        b'[' => Ok(rum::parse_pulled(usage)?),
        b'{' => Ok(rum::parse_pulled(&format!("[{usage}]"))?),
        _ => Err(PullError::WrongType {
            field: "usage",
            expected: "an array of RUM reports",
        }),
    }
}

/// How an ACK or policy file is carried in `POST /smartlic-service/import`. The public sources
/// disagree: DevNet's workflow says "convert the RUM ACK file to a base64 encoded format"
/// (without naming the JSON that carries it), DevNet's sample code posts the file's XML as is.
/// So the encoding is the operator's choice, not a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportEncoding {
    /// The file's bytes as they are (the sample code's way; it declares `application/json`).
    RawXml,
    /// `{"<field>": "<standard base64 of the file>"}`.
    Base64Json { field: String },
}

impl ImportEncoding {
    /// The base64 encoding under a checked JSON field name.
    pub fn base64_json(field: &str) -> Result<Self, PullError> {
        let ok = (1..=64).contains(&field.len())
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(PullError::BadFieldName(field.to_owned()));
        }
        Ok(ImportEncoding::Base64Json {
            field: field.to_owned(),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            ImportEncoding::RawXml => "raw XML",
            ImportEncoding::Base64Json { .. } => "base64 in JSON",
        }
    }
}

/// The body of `POST /smartlic-service/import` carrying `file` (an ACK or policy file, byte
/// for byte as the portal wrote it).
pub fn encode_import(file: &[u8], encoding: &ImportEncoding) -> Vec<u8> {
    match encoding {
        ImportEncoding::RawXml => file.to_vec(),
        ImportEncoding::Base64Json { field } => {
            let mut body = serde_json::Map::new();
            body.insert(field.clone(), BASE64.encode(file).into());
            serde_json::Value::Object(body).to_string().into_bytes()
        }
    }
}

/// Reads back the file an import body carries (what a device, or a test double of one, does).
pub fn decode_import(body: &[u8], encoding: &ImportEncoding) -> Result<Vec<u8>, PullError> {
    let bad = |reason: &str| PullError::BadImport {
        encoding: encoding.name(),
        reason: reason.to_owned(),
    };
    let limit = match encoding {
        ImportEncoding::RawXml => MAX_IMPORT_BYTES,
        ImportEncoding::Base64Json { .. } => MAX_IMPORT_BYTES / 3 * 4 + 256,
    };
    if body.len() > limit {
        return Err(bad(&format!("it is more than {limit} bytes")));
    }
    match encoding {
        ImportEncoding::RawXml => match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<') => Ok(body.to_vec()),
            _ => Err(bad("it does not start with `<`")),
        },
        ImportEncoding::Base64Json { field } => {
            let value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
            match (value.len(), value.get(field)) {
                (1, Some(serde_json::Value::String(text))) => {
                    BASE64.decode(text).map_err(|e| bad(&e.to_string()))
                }
                _ => Err(bad(&format!("expected one string field `{field}`"))),
            }
        }
    }
}

fn json<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    what: &'static str,
    max: usize,
) -> Result<T, PullError> {
    if body.len() > max {
        return Err(PullError::TooLarge {
            what,
            len: body.len(),
            max,
        });
    }
    let text = std::str::from_utf8(body).map_err(invalid_json)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.trim_start().starts_with('{') {
        return Err(PullError::WrongType {
            field: "the answer",
            expected: "a JSON object",
        });
    }
    serde_json::from_str(text).map_err(invalid_json)
}

fn invalid_json(e: impl fmt::Display) -> PullError {
    PullError::InvalidJson {
        reason: e.to_string(),
    }
}

const TOO_MANY: &str = "too many elements";

/// Reads a JSON array of at most `.0` elements without allocating for more.
struct Bounded(usize);

impl<'de> Visitor<'de> for Bounded {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of at most {} elements", self.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<&RawValue>()? {
            if out.len() == self.0 {
                return Err(de::Error::custom(TOO_MANY));
            }
            out.push(item);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
