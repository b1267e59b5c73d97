//! How the CLI writes times and device identities, in one place so that every command writes
//! them the same way: times in RFC 3339 with whole seconds (`2027-01-01T00:00:00Z`), dates as
//! RFC 3339 full dates (`2027-01-01`), a UDI as `PID:SERIAL`; and how it reads a time given on
//! the command line (`parse_time`).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A time for people and scripts: RFC 3339, whole seconds, in the offset it carries (UTC for
/// every time the satellite sends).
pub fn stamp(t: &OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(*t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// An optional time, `-` when absent.
pub fn stamp_or_dash(t: Option<&OffsetDateTime>) -> String {
    t.map_or_else(|| "-".to_owned(), stamp)
}

/// The date of a time (table columns where the time of day does not matter).
pub fn day(t: &OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    t.date()
        .format(&format)
        .unwrap_or_else(|_| t.date().to_string())
}

/// A device's unique identifier, as every command writes it and `device show` accepts it.
pub fn udi(pid: &str, serial: &str) -> String {
    format!("{pid}:{serial}")
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| format!("`{s}` is not a date (expected YYYY-MM-DD or RFC 3339)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_with_whole_seconds() {
        let t = time::macros::datetime!(2027-01-01 0:00:00.123456 UTC);
        assert_eq!(stamp(&t), "2027-01-01T00:00:00Z");
        assert_eq!(day(&t), "2027-01-01");
        assert_eq!(stamp_or_dash(None), "-");
        assert_eq!(udi("C9300-24T", "FOC1"), "C9300-24T:FOC1");
    }
}
