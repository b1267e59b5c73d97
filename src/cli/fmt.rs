//! How the CLI writes times and device identities, in one place so that every command writes
//! them the same way: times in RFC 3339 with whole seconds (`2027-01-01T00:00:00Z`), dates as
//! RFC 3339 full dates (`2027-01-01`), a UDI as `PID:SERIAL`.

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
