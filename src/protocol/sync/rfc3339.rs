//! RFC 3339 times in their one canonical spelling only (`2025-03-01T12:00:00Z`, the form this
//! module writes). The `time` parser also accepts other separators and spellings that mean the
//! same instant; refusing them keeps what a reader sees in a file exactly what was signed.

use serde::{Deserialize, Deserializer, Serializer, de::Error};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    time::serde::rfc3339::serialize(t, s)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
    let text = std::borrow::Cow::<str>::deserialize(d)?;
    parse(&text).map_err(D::Error::custom)
}

fn parse(text: &str) -> Result<OffsetDateTime, String> {
    let t = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|err| format!("`{text}` is not an RFC 3339 time ({err})"))?;
    match t.format(&Rfc3339) {
        Ok(canonical) if canonical == text => Ok(t),
        Ok(canonical) => Err(format!("time `{text}` must be written `{canonical}`")),
        Err(err) => Err(format!("`{text}` cannot be represented ({err})")),
    }
}

pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<OffsetDateTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::option::serialize(t, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        Option::<std::borrow::Cow<'de, str>>::deserialize(d)?
            .map(|text| parse(&text).map_err(D::Error::custom))
            .transpose()
    }
}
