//! A usage report body serialized once and patched per request.
//!
//! Serializing a [`UsageRequest`] with serde for every report costs the generator more than
//! the bare baseline server spends answering it, and a generator slower than the server
//! measures itself. So each reporting connection serializes its report once, splits the JSON
//! around the `seq` digits, and for every request copies the prefix, the new digits and the
//! suffix into one buffer of exactly the body's size: a single small allocation, which the
//! sent body owns without another copy. The bytes are exactly what serde would have written for the
//! same report with that `seq`; the unit tests hold that, at the limits of `seq`'s type too.
//!
//! `measured_at` is part of the serialized text: [`UsageBody::refresh`] serializes again with
//! a new time, which the reporting loop does once a second, so that reports carry a clock as
//! current as a device's without paying for it on every request.

use hyper::body::Bytes;
use time::OffsetDateTime;

use crate::protocol::device::{UsageLine, UsageRequest};

/// The decimal digits of a `u64` at most: `u64::MAX` is 18446744073709551615.
const MAX_DIGITS: usize = 20;

/// The JSON of one device's usage report, ready to be patched with a sequence number.
#[derive(Debug)]
pub struct UsageBody {
    usage: Vec<UsageLine>,
    /// Everything up to and including `"seq":`.
    prefix: Vec<u8>,
    /// Everything after the digits of `seq`.
    suffix: Vec<u8>,
}

impl UsageBody {
    /// The template of a report of one `count` of `tag`, measured at `measured_at`.
    pub fn new(tag: &str, count: u64, measured_at: OffsetDateTime) -> UsageBody {
        let mut body = UsageBody {
            usage: vec![UsageLine {
                entitlement_tag: tag.to_owned(),
                count,
            }],
            prefix: Vec::new(),
            suffix: Vec::new(),
        };
        body.refresh(measured_at);
        body
    }

    /// Serializes the template again with a new `measured_at`.
    pub fn refresh(&mut self, measured_at: OffsetDateTime) {
        let report = UsageRequest {
            seq: 0,
            measured_at,
            usage: self.usage.clone(),
        };
        let json = serde_json::to_vec(&report).expect("a usage report always serializes");
        // `seq` is the struct's first field, so serde writes it first; zero is one digit.
        const HEAD: &[u8] = b"{\"seq\":0";
        assert!(
            json.starts_with(HEAD),
            "a usage report's JSON starts with its seq, not {:?}",
            String::from_utf8_lossy(&json)
        );
        self.prefix = json[..HEAD.len() - 1].to_vec();
        self.suffix = json[HEAD.len()..].to_vec();
    }

    /// The body of the report numbered `seq`.
    pub fn with_seq(&self, seq: u64) -> Bytes {
        let mut digits = [0u8; MAX_DIGITS];
        let digits = decimal(seq, &mut digits);
        // Exactly the body's size: `Bytes` then takes the vector over without copying it.
        let mut out = Vec::with_capacity(self.prefix.len() + digits.len() + self.suffix.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(digits);
        out.extend_from_slice(&self.suffix);
        Bytes::from(out)
    }
}

/// Writes `n` in decimal into the end of `out` and returns the digits written.
fn decimal(mut n: u64, out: &mut [u8; MAX_DIGITS]) -> &[u8] {
    let mut at = MAX_DIGITS;
    loop {
        at -= 1;
        out[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &out[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::device::decode_usage;

    fn measured() -> OffsetDateTime {
        time::macros::datetime!(2026-12-03 12:34:56.789 UTC)
    }

    /// A patched body is byte for byte what serde writes for the same report, and the
    /// satellite's own decoder reads back the new seq and everything else unchanged.
    #[test]
    fn patched_bodies_are_serdes_bytes_with_the_new_seq() {
        let body = UsageBody::new("bench.tag", 1, measured());
        let seqs = [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX / 10,
            u64::MAX - 1,
            u64::MAX,
        ];
        for seq in seqs {
            let patched = body.with_seq(seq);
            let expect = UsageRequest {
                seq,
                measured_at: measured(),
                usage: vec![UsageLine {
                    entitlement_tag: "bench.tag".to_owned(),
                    count: 1,
                }],
            };
            assert_eq!(
                patched.as_ref(),
                serde_json::to_vec(&expect).unwrap().as_slice(),
                "seq {seq}"
            );
            let decoded = decode_usage(&patched).expect("the satellite decodes it");
            assert_eq!(decoded.seq, seq);
            assert_eq!(decoded.measured_at, measured());
            assert_eq!(decoded.usage, expect.usage);
        }
    }

    #[test]
    fn refresh_changes_the_time_and_keeps_patching() {
        let mut body = UsageBody::new("t", 3, measured());
        let later = measured() + time::Duration::seconds(1);
        body.refresh(later);
        let decoded = decode_usage(&body.with_seq(u64::MAX)).unwrap();
        assert_eq!((decoded.seq, decoded.measured_at), (u64::MAX, later));
        assert_eq!(decoded.usage[0].count, 3);
    }

    #[test]
    fn decimal_digits_at_the_limits() {
        let mut out = [0u8; MAX_DIGITS];
        assert_eq!(decimal(0, &mut out), b"0");
        assert_eq!(decimal(u64::MAX, &mut out), b"18446744073709551615");
    }
}
