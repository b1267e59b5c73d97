//! The on-disk record format, and the only code in satellite that names bincode.
//!
//! Every value the store writes is one format byte followed by a bincode body. The format byte is
//! the record type's [`Record::FORMAT`]: a reader that finds an older byte upgrades the record
//! through [`Record::upgrade`], and a reader that finds a newer one refuses it with a message that
//! says to run a newer satellite, instead of misreading bytes it does not understand.
//!
//! Keeping bincode behind this one file means the encoding can be replaced (or a second one
//! added under a new format byte) without touching the domain, and it means the bincode options
//! below are written down in exactly one place. Those options are part of the on-disk format:
//! changing any of them silently changes the meaning of every record already on disk, so they
//! must never change. A different encoding needs a new format byte and an `upgrade` path.

use bincode::Options;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest record body this process will decode. Records are small (a device, a license
/// pool, a usage report); the limit exists so that a corrupt length prefix produces an error
/// instead of an attempt to allocate gigabytes.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// A typed value stored in one table (one sled tree) of the store.
///
/// Record types must be plain serde-derived structs and enums: bincode cannot encode
/// `#[serde(flatten)]`, untagged or internally tagged enums, or anything else that relies on
/// `deserialize_any`. The golden-bytes test every record type should have catches that early.
pub trait Record: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name of the table (sled tree) that holds records of this type. It must be one of the
    /// names passed to `Store::open`, and it must never be renamed once records exist.
    const TABLE: &'static str;

    /// The current format version of this record type, written as the first byte of every
    /// record. Bump it whenever the serialized shape changes, and teach [`Record::upgrade`] to
    /// read the previous shape.
    const FORMAT: u8;

    /// The key under which this record is stored in its table. Keys sort bytewise, so numbers
    /// in keys should be big-endian for range scans to follow numeric order.
    fn key(&self) -> Vec<u8>;

    /// Reads a record written with an older `format` byte. `payload` is the bincode body
    /// without the format byte; decode it with [`decode_payload`] into the old shape and convert.
    ///
    /// The default knows no older formats, which is right for a type still at its first format.
    fn upgrade(format: u8, payload: &[u8]) -> Result<Self, CodecError> {
        let _ = payload;
        Err(CodecError::UnknownFormat {
            table: Self::TABLE.to_owned(),
            key: String::new(),
            found: format,
            supported: Self::FORMAT,
        })
    }
}

/// Why a stored record could not be read. Every message names the table and the key (in hex) so
/// that an operator can find the record with the store tooling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The stored value has no bytes at all, so not even a format byte.
    #[error(
        "record {key} in table {table} is empty (it has no format byte); the store is damaged: \
         delete the record or restore a backup"
    )]
    Empty { table: String, key: String },

    /// The record was written by a newer satellite whose record format this one cannot read.
    #[error(
        "record {key} in table {table} has format version {found} but this satellite reads \
         only up to version {supported}; upgrade satellite to the release that wrote this store"
    )]
    FromTheFuture {
        table: String,
        key: String,
        found: u8,
        supported: u8,
    },

    /// The format byte is older than the current format but the record type has no upgrade
    /// path from it; the byte is most likely corrupt.
    #[error(
        "record {key} in table {table} has format version {found}, which this satellite (current \
         format {supported}) cannot upgrade; the record is damaged: delete it or restore a backup"
    )]
    UnknownFormat {
        table: String,
        key: String,
        found: u8,
        supported: u8,
    },

    /// The body does not decode as the record type for its format: it is truncated, has
    /// trailing bytes, or is garbage.
    #[error(
        "record {key} in table {table} (format version {format}) cannot be decoded: {reason}; \
         the record is damaged: delete it or restore a backup"
    )]
    Malformed {
        table: String,
        key: String,
        format: u8,
        reason: String,
    },
}

impl CodecError {
    /// Fills in where the failing record lives. `upgrade` implementations and
    /// [`decode_payload`] do not know the table or key, so [`decode`] adds them on the way out.
    fn locate(self, at_table: &str, at_key: &[u8], at_format: u8) -> Self {
        let table = at_table.to_owned();
        let key = hex(at_key);
        match self {
            Self::Empty { .. } => Self::Empty { table, key },
            Self::FromTheFuture {
                found, supported, ..
            } => Self::FromTheFuture {
                table,
                key,
                found,
                supported,
            },
            Self::UnknownFormat {
                found, supported, ..
            } => Self::UnknownFormat {
                table,
                key,
                found,
                supported,
            },
            Self::Malformed { reason, .. } => Self::Malformed {
                table,
                key,
                format: at_format,
                reason,
            },
        }
    }
}

/// The bincode options of the on-disk format: fixed-width little-endian integers, and trailing
/// bytes rejected. These are part of the format and must never change (see the module docs).
fn options() -> impl Options + Copy {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

/// Encodes a record as its format byte followed by its bincode body.
pub fn encode<R: Record>(record: &R) -> Vec<u8> {
    // Sized exactly first: grown from one byte, a device record's buffer was reallocated five
    // or six times per usage report.
    let size = options().serialized_size(record).unwrap_or(0);
    let mut out = Vec::with_capacity(1 + usize::try_from(size).unwrap_or(0));
    out.push(R::FORMAT);
    options()
        .serialize_into(&mut out, record)
        .expect("bincode cannot fail to write a serde-derived record into a Vec; a record type that uses flatten or untagged serde attributes is a bug its golden test catches");
    out
}

/// Decodes a record of type `R` read from `table` under `key`, upgrading older formats.
pub fn decode<R: Record>(table: &str, key: &[u8], bytes: &[u8]) -> Result<R, CodecError> {
    let Some((&format, payload)) = bytes.split_first() else {
        return Err(CodecError::Empty {
            table: String::new(),
            key: String::new(),
        }
        .locate(table, key, 0));
    };
    let result = if format == R::FORMAT {
        decode_payload(payload)
    } else if format < R::FORMAT {
        R::upgrade(format, payload)
    } else {
        Err(CodecError::FromTheFuture {
            table: String::new(),
            key: String::new(),
            found: format,
            supported: R::FORMAT,
        })
    };
    result.map_err(|err| err.locate(table, key, format))
}

/// Decodes a bincode body (no format byte) with the on-disk options. `upgrade` implementations
/// use it to read the older shape of a record before converting it.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, CodecError> {
    options()
        .with_limit(MAX_RECORD_BYTES)
        .deserialize(payload)
        .map_err(|err| CodecError::Malformed {
            table: String::new(),
            key: String::new(),
            format: 0,
            reason: err.to_string(),
        })
}

/// Formats a key for messages as `0x` followed by lowercase hex digits.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("0x");
    for byte in bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Tier {
        Basic,
        Premium { seats: u32 },
    }

    /// The current (format 2) shape of the test record: one field of each kind records use.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Golden {
        id: u64,
        name: String,
        note: Option<String>,
        tags: Vec<u16>,
        active: bool,
        tier: Tier,
    }

    /// The format 1 shape, which had no `tier`.
    #[derive(Serialize, Deserialize)]
    struct GoldenV1 {
        id: u64,
        name: String,
        note: Option<String>,
        tags: Vec<u16>,
        active: bool,
    }

    impl Record for Golden {
        const TABLE: &'static str = "golden";
        const FORMAT: u8 = 2;
        fn key(&self) -> Vec<u8> {
            self.id.to_be_bytes().to_vec()
        }
        fn upgrade(format: u8, payload: &[u8]) -> Result<Self, CodecError> {
            match format {
                1 => {
                    let old: GoldenV1 = decode_payload(payload)?;
                    Ok(Golden {
                        id: old.id,
                        name: old.name,
                        note: old.note,
                        tags: old.tags,
                        active: old.active,
                        tier: Tier::Basic,
                    })
                }
                _ => Err(CodecError::UnknownFormat {
                    table: String::new(),
                    key: String::new(),
                    found: format,
                    supported: Self::FORMAT,
                }),
            }
        }
    }

    fn sample() -> Golden {
        Golden {
            id: 7,
            name: "ab".to_owned(),
            note: Some("x".to_owned()),
            tags: vec![1, 258],
            active: true,
            tier: Tier::Premium { seats: 5 },
        }
    }

    /// Pins the on-disk bytes. If this test fails, the format changed: that needs a new FORMAT
    /// byte and an upgrade path, never an edit of this literal.
    #[test]
    fn golden_bytes_are_pinned() {
        let bytes = encode(&sample());
        // One line per field: format byte; id (u64); name (u64 length, "ab"); note (Some,
        // u64 length, "x"); tags (u64 length, 1u16, 258u16); active (true); tier (u32 variant
        // index 1, seats u32 5).
        let expected = [
            "02",
            "0700000000000000",
            "0200000000000000_6162",
            "01_0100000000000000_78",
            "0200000000000000_0100_0201",
            "01",
            "01000000_05000000",
        ]
        .concat()
        .replace('_', "");
        assert_eq!(hex(&bytes), format!("0x{expected}"));
        assert_eq!(decode::<Golden>("golden", &[7], &bytes), Ok(sample()));
    }

    #[test]
    fn older_format_is_upgraded() {
        let old = GoldenV1 {
            id: 9,
            name: "old".to_owned(),
            note: None,
            tags: vec![],
            active: false,
        };
        let mut bytes = vec![1u8];
        bytes.extend(options().serialize(&old).expect("serializes"));
        let got: Golden = decode("golden", &[9], &bytes).expect("upgrades");
        assert_eq!(got.tier, Tier::Basic);
        assert_eq!(got.name, "old");
    }

    #[test]
    fn unknown_older_format_names_table_and_key() {
        let err = decode::<Golden>("golden", &[0xab], &[0, 1, 2]).expect_err("format 0 is unknown");
        assert!(matches!(
            err,
            CodecError::UnknownFormat {
                found: 0,
                supported: 2,
                ..
            }
        ));
        let message = err.to_string();
        assert!(
            message.contains("golden") && message.contains("0xab"),
            "{message}"
        );
    }

    #[test]
    fn newer_format_is_refused_naming_both_versions() {
        let mut bytes = encode(&sample());
        bytes[0] = 3;
        let err = decode::<Golden>("golden", &[0, 7], &bytes).expect_err("from the future");
        assert_eq!(
            err,
            CodecError::FromTheFuture {
                table: "golden".to_owned(),
                key: "0x0007".to_owned(),
                found: 3,
                supported: 2
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("version 3") && message.contains("up to version 2"),
            "{message}"
        );
        assert!(message.contains("upgrade satellite"), "{message}");
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let good = encode(&sample());
        let mut cases: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
        let mut trailing = good.clone();
        trailing.push(0);
        cases.push(trailing);
        // A length prefix claiming far more than the limit must fail without allocating it.
        cases.push([&[2u8][..], &[0; 8], &[0xff; 8]].concat());
        cases.push(vec![2, 0xff, 0xff, 0xff]);
        for bytes in cases {
            let err = decode::<Golden>("golden", b"k1", &bytes).expect_err("damaged bytes fail");
            let message = err.to_string();
            assert!(message.contains("table golden"), "{message}");
            assert!(message.contains("0x6b31"), "{message}");
        }
        let err = decode::<Golden>("golden", b"k1", &[]).expect_err("empty fails");
        assert!(matches!(err, CodecError::Empty { .. }));
    }

    #[test]
    fn hex_formats_keys() {
        assert_eq!(hex(&[]), "0x");
        assert_eq!(hex(&[0, 15, 255]), "0x000fff");
    }

    /// A device's usage is stored exactly as the `BTreeMap<String, u64>` it once was, so
    /// stores written before `TagCounts` read back unchanged.
    #[test]
    fn tag_counts_encode_as_the_map_they_replaced() {
        let map: std::collections::BTreeMap<String, u64> =
            [("b".to_string(), 2), ("a".to_string(), 1)].into();
        let counts: crate::domain::TagCounts = [("b".to_string(), 2), ("a".to_string(), 1)]
            .into_iter()
            .collect();
        let map_bytes = options().serialize(&map).unwrap();
        assert_eq!(options().serialize(&counts).unwrap(), map_bytes);
        let back: crate::domain::TagCounts = decode_payload(&map_bytes).expect("decodes");
        assert_eq!(back, counts);
        assert_eq!(
            back.iter().map(|(t, _)| &**t).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
