//! [`Stamp`] and [`Seq`]: an instant and a number as a device record keeps them in memory, in
//! bytes of no alignment, so that the record has no padding between its fields.

use time::OffsetDateTime;

/// An instant to the nanosecond, in UTC, in 12 bytes with no alignment: seconds since 1970
/// (sign bit flipped, big-endian) then nanoseconds (big-endian), so that byte order is time
/// order. An `OffsetDateTime` takes 16 bytes with an alignment of 4 and an `Option` of it 16;
/// a device record keeps five, and these 17 bytes with its other cuts keep it in the
/// allocator's 320-byte class rather than its 384-byte one: 61 MiB at a million devices
/// (`domain::tests::load::a_device_record_fits_its_size_class`). Serialized as the
/// `OffsetDateTime` it holds; the offset of an instant given with another one is not kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stamp([u8; 12]);

impl Stamp {
    pub fn get(self) -> OffsetDateTime {
        // A stamp is only made from an `OffsetDateTime`, whose range this is.
        OffsetDateTime::from_unix_timestamp_nanos(self.unix_nanos())
            .expect("a stamp holds an instant it was made from")
    }

    /// Nanoseconds since 1970.
    pub fn unix_nanos(self) -> i128 {
        let (secs, nanos) = self.0.split_at(8);
        let secs = (u64::from_be_bytes(secs.try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
        let nanos = u32::from_be_bytes(nanos.try_into().expect("4 bytes"));
        i128::from(secs) * 1_000_000_000 + i128::from(nanos)
    }
}

impl From<OffsetDateTime> for Stamp {
    /// The instant of `t`, or the nearest one UTC can express: an `OffsetDateTime` may name,
    /// with an offset, an instant past the end of year 9999 in UTC (or before its start), which
    /// no `OffsetDateTime` in UTC holds, so that [`Stamp::get`] could not give it back.
    fn from(t: OffsetDateTime) -> Self {
        let utc = t
            .checked_to_offset(time::UtcOffset::UTC)
            .unwrap_or(if t.year() > 0 {
                OffsetDateTime::new_utc(time::Date::MAX, time::Time::MAX)
            } else {
                OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT)
            });
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&((utc.unix_timestamp() as u64) ^ (1 << 63)).to_be_bytes());
        bytes[8..].copy_from_slice(&utc.nanosecond().to_be_bytes());
        Stamp(bytes)
    }
}

impl From<Stamp> for OffsetDateTime {
    fn from(s: Stamp) -> Self {
        s.get()
    }
}

impl std::ops::Add<time::Duration> for Stamp {
    type Output = OffsetDateTime;

    fn add(self, d: time::Duration) -> OffsetDateTime {
        self.get() + d
    }
}

impl PartialEq<OffsetDateTime> for Stamp {
    fn eq(&self, t: &OffsetDateTime) -> bool {
        self.get() == *t
    }
}

impl PartialEq<Stamp> for OffsetDateTime {
    fn eq(&self, s: &Stamp) -> bool {
        *self == s.get()
    }
}

impl PartialOrd<OffsetDateTime> for Stamp {
    fn partial_cmp(&self, t: &OffsetDateTime) -> Option<std::cmp::Ordering> {
        self.get().partial_cmp(t)
    }
}

impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl serde::Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OffsetDateTime::deserialize(d).map(Stamp::from)
    }
}

/// A `u64` in 8 bytes of no alignment: an `Option<u64>` takes 16 bytes, an `Option<Seq>` 9.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seq([u8; 8]);

impl Seq {
    pub fn get(self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

impl From<u64> for Seq {
    fn from(n: u64) -> Self {
        Seq(n.to_be_bytes())
    }
}

impl serde::Serialize for Seq {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

impl<'de> serde::Deserialize<'de> for Seq {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(Seq::from)
    }
}

impl std::fmt::Debug for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::Stamp;
    use time::OffsetDateTime;
    use time::macros::datetime;

    #[test]
    fn a_stamp_keeps_its_instant_and_orders_as_time_does() {
        let times = [
            OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT),
            datetime!(1677-09-21 0:12:43.145224191 UTC),
            datetime!(1969-12-31 23:59:59.999999999 UTC),
            datetime!(1970-01-01 0:00 UTC),
            datetime!(1970-01-01 0:00:00.000000001 UTC),
            datetime!(2026-03-04 05:06:07.891 UTC),
            datetime!(2026-03-04 07:06:07.892 +02:00),
            datetime!(2262-04-11 23:47:16.854775808 UTC),
            OffsetDateTime::new_utc(time::Date::MAX, time::Time::MAX),
        ];
        for t in times {
            assert_eq!(Stamp::from(t).get(), t, "{t}");
            assert_eq!(Stamp::from(t).get().offset(), time::UtcOffset::UTC);
        }
        for pair in times.windows(2) {
            assert!(Stamp::from(pair[0]) < Stamp::from(pair[1]), "{pair:?}");
        }
        // Instants past the ends of UTC's range, named with an offset: the nearest end.
        let end = OffsetDateTime::new_utc(time::Date::MAX, time::Time::MAX);
        let start = OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT);
        assert_eq!(Stamp::from(datetime!(+9999-12-31 23:59:59 -1)).get(), end);
        assert_eq!(Stamp::from(datetime!(-9999-01-01 0:00 +1)).get(), start);
        assert_eq!(std::mem::size_of::<Stamp>(), 12);
        assert_eq!(std::mem::align_of::<Option<Stamp>>(), 1);
    }

    #[test]
    fn a_seq_keeps_its_number_and_order() {
        let numbers = [0, 1, 255, 256, u64::from(u32::MAX), u64::MAX - 1, u64::MAX];
        for n in numbers {
            assert_eq!(super::Seq::from(n).get(), n);
        }
        for pair in numbers.windows(2) {
            assert!(super::Seq::from(pair[0]) < super::Seq::from(pair[1]));
        }
        assert_eq!(std::mem::size_of::<Option<super::Seq>>(), 9);
    }
}
