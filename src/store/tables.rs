//! The typed trees: which domain record lives in which tree, under which key, in which format
//! version. Changing a record type's fields means a new `FORMAT` and an `upgrade` from the
//! previous one; the golden-bytes tests below fail first.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{
    Account, AccountId, ApiToken, ApiTokenId, Change, ChildSatellite, Event, ImportKey,
    ImportedFile, InstanceId, License, LicenseId, ProductInstance, Record as DomainRecord,
    RegistrationToken, RelayedRum, RemoteInstance, RemoteUsage, Removal, Reservation,
    ReservationId, RevokedCertificate, RumRecord, SyncedItem, TokenId, UpstreamBinding, User,
    UserId, VaId, VirtualAccount,
};

use super::{Batch, CodecError, Record, Store, decode_payload};

macro_rules! table {
    ($ty:ty, $name:literal, $format:literal, |$r:ident| $key:expr) => {
        impl Record for $ty {
            const TABLE: &'static str = $name;
            const FORMAT: u8 = $format;
            fn key(&self) -> Vec<u8> {
                let $r = self;
                $key
            }
        }
    };
}

table!(Account, "accounts", 1, |r| r.id.as_bytes().to_vec());
table!(VirtualAccount, "virtual_accounts", 1, |r| r
    .id
    .as_bytes()
    .to_vec());
table!(License, "licenses", 1, |r| r.id.as_bytes().to_vec());
table!(RegistrationToken, "registration_tokens", 1, |r| r
    .id
    .as_bytes()
    .to_vec());
table!(User, "users", 1, |r| r.id.as_bytes().to_vec());
table!(ApiToken, "api_tokens", 1, |r| r.id.as_bytes().to_vec());
table!(ProductInstance, "product_instances", 1, |r| r
    .id
    .as_bytes()
    .to_vec());
table!(RevokedCertificate, "revoked_certificates", 1, |r| r
    .serial
    .as_bytes()
    .to_vec());
table!(RumRecord, "rum_reports", 1, |r| rum_key(
    &r.udi.serial,
    r.report_id
));

/// The key of a Cisco RUM report: device serial, a zero byte, then the report id big-endian.
pub fn rum_key(serial: &str, report_id: u64) -> Vec<u8> {
    let mut key = serial.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&report_id.to_be_bytes());
    key
}
// Imported license files, by account, issuer and file id (see `imported_file_key`). Format 1
// had no issuer and was keyed by the file id alone; schema 2 re-keyed its records.
impl Record for ImportedFile {
    const TABLE: &'static str = "imported_license_files";
    const FORMAT: u8 = 2;
    fn key(&self) -> Vec<u8> {
        imported_file_key(&self.import_key())
    }
    fn upgrade(format: u8, payload: &[u8]) -> Result<Self, CodecError> {
        match format {
            1 => Ok(decode_payload::<ImportedFileV1>(payload)?.into()),
            _ => Err(CodecError::UnknownFormat {
                table: String::new(),
                key: String::new(),
                found: format,
                supported: Self::FORMAT,
            }),
        }
    }
}

/// Format 1 of [`ImportedFile`]: one record per file id across all accounts and issuers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImportedFileV1 {
    pub file_id: String,
    pub account: AccountId,
    pub imported_at: OffsetDateTime,
    pub licenses: Vec<LicenseId>,
}

impl From<ImportedFileV1> for ImportedFile {
    /// The issuer was not recorded: the empty issuer holds the id for every issuer of the
    /// account, as format 1 did (and more narrowly: only in its own account).
    fn from(old: ImportedFileV1) -> Self {
        ImportedFile {
            file_id: old.file_id,
            account: old.account,
            issuer: String::new(),
            imported_at: old.imported_at,
            licenses: old.licenses,
        }
    }
}

/// The key of an imported file: the account's 16 bytes, the issuer's length (u16, big-endian)
/// and name, then the file id, so that no two (issuer, file id) pairs share a key. Issuer
/// names are satellite ids of a few dozen bytes, so the length always fits.
pub fn imported_file_key(k: &ImportKey) -> Vec<u8> {
    let issuer = k.issuer.as_bytes();
    let len = u16::try_from(issuer.len()).unwrap_or(u16::MAX);
    let mut key = Vec::with_capacity(18 + issuer.len() + k.file_id.len());
    key.extend_from_slice(k.account.as_bytes());
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(&issuer[..usize::from(len)]);
    key.extend_from_slice(k.file_id.as_bytes());
    key
}
// Sync, child side: the one binding to an upstream, and the items it acknowledged.
table!(UpstreamBinding, "sync_upstream", 1, |_r| b"upstream"
    .to_vec());
table!(SyncedItem, "sync_acknowledged", 1, |r| r
    .key
    .as_bytes()
    .to_vec());
// Sync, upstream side: children by name, their devices, usage and relayed RUM reports.
table!(ChildSatellite, "sync_children", 1, |r| r
    .name
    .as_bytes()
    .to_vec());
table!(RemoteInstance, "sync_remote_instances", 1, |r| {
    RemoteInstance::key(&r.child, &r.id).into_bytes()
});
table!(RemoteUsage, "sync_remote_usage", 1, |r| {
    RemoteUsage::key(&r.child, r.va, &r.tag).into_bytes()
});
table!(RelayedRum, "sync_relayed_rum", 1, |r| {
    RelayedRum::key(&r.child, &r.udi.serial, r.report_id).into_bytes()
});
// License reservations of disconnected devices (SPEC §8b), by reservation id.
table!(Reservation, "reservations", 1, |r| r.id.as_bytes().to_vec());
// Events are keyed by their sequence number, big-endian, so the tree iterates in log order.
table!(Event, "events", 1, |r| r.seq.to_be_bytes().to_vec());

/// The bytes a [`Removal`] names its record by: the record's key in its table.
pub trait RemovalKey {
    fn removal_key(&self) -> Cow<'_, [u8]>;
}

macro_rules! id_removal_keys {
    ($($id:ty),*) => {
        $(impl RemovalKey for $id {
            fn removal_key(&self) -> Cow<'_, [u8]> {
                Cow::Borrowed(self.as_bytes())
            }
        })*
    };
}

id_removal_keys!(
    VaId,
    LicenseId,
    TokenId,
    UserId,
    ApiTokenId,
    InstanceId,
    ReservationId
);

/// Revoked certificates are removed by serial, sync records by their `key()`.
impl RemovalKey for String {
    fn removal_key(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl RemovalKey for ImportKey {
    fn removal_key(&self) -> Cow<'_, [u8]> {
        Cow::Owned(imported_file_key(self))
    }
}

/// Builds, from the one list of record kinds (`for_each_record_kind!`), the table list and the
/// three functions that go from a domain record kind to its table: putting, removing and
/// scanning. A new record kind needs its line in that list and its `table!` line above.
macro_rules! record_tables {
    ($($variant:ident($ty:ty) $(removed by $key:ty)?;)*) => {
        /// Every tree the satellite uses, passed to `Store::open` so one transaction can span
        /// them: one per record kind, then the event log.
        pub const TABLES: &[&str] = &[$(<$ty as Record>::TABLE,)* Event::TABLE];

        fn put(batch: &mut Batch, record: &DomainRecord) {
            match record {
                $(DomainRecord::$variant(r) => batch.put(r),)*
            }
        }

        fn remove(batch: &mut Batch, removal: &Removal) {
            match removal {
                $($(Removal::$variant(k) => {
                    batch.delete::<$ty>(&<$key as RemovalKey>::removal_key(k))
                })?)*
            }
        }

        /// Decodes every record of every domain table, table by table in the order of
        /// [`TABLES`], and hands each to `push`. A record that cannot be decoded is logged and
        /// skipped; the returned list says why for each.
        pub fn scan_records(store: &Store, push: &mut impl FnMut(DomainRecord)) -> Vec<String> {
            let mut unreadable = Vec::new();
            $(scan_into::<$ty>(store, DomainRecord::$variant, push, &mut unreadable);)*
            unreadable
        }
    };
}

crate::for_each_record_kind!(record_tables);

fn scan_into<R: Record>(
    store: &Store,
    wrap: fn(R) -> DomainRecord,
    push: &mut impl FnMut(DomainRecord),
    unreadable: &mut Vec<String>,
) {
    for item in store.scan::<R>() {
        match item {
            Ok(r) => push(wrap(r)),
            Err(e) => {
                tracing::error!(table = R::TABLE, cause = %e, "skipping an unreadable record");
                unreadable.push(e.to_string());
            }
        }
    }
}

/// The batch that makes a domain change and its event durable together.
pub fn batch_for(change: &Change, event: Option<&Event>) -> Batch {
    let mut batch = Batch::new();
    for removal in &change.remove {
        remove(&mut batch, removal);
    }
    for record in &change.put {
        put(&mut batch, record);
    }
    if let Some(event) = event {
        batch.put(event);
    }
    batch
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{
        AccountId, AccountStatus, LicenseId, LicenseKind, LicenseSource, Role, RoleGrant, Scope,
        UserId, VaId,
    };
    use crate::store::codec::encode;

    use crate::hex::encode as hex;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    /// Pins the on-disk bytes of an account. If this fails, the stored format changed: add a
    /// new FORMAT with an upgrade path instead of editing the expected bytes.
    #[test]
    fn golden_account() {
        let a = Account {
            id: AccountId(id(1)),
            name: "acme".into(),
            domain: "acme.com".into(),
            status: AccountStatus::Active,
            created_at: datetime!(2026-01-02 03:04:05 UTC),
            default_va: VaId(id(2)),
        };
        assert_eq!(
            hex(&encode(&a)),
            "01\
             1000000000000000\
             01010101010101010101010101010101\
             0400000000000000\
             61636d65\
             0800000000000000\
             61636d652e636f6d\
             01000000\
             ea070000\
             0200\
             03040500000000\
             000000\
             1000000000000000\
             02020202020202020202020202020202"
        );
    }

    #[test]
    fn golden_license_and_event() {
        let l = License {
            id: LicenseId(id(3)),
            account: AccountId(id(1)),
            va: VaId(id(2)),
            entitlement_tag: "t".into(),
            display_name: "T".into(),
            quantity: 5,
            kind: LicenseKind::Term {
                start: datetime!(2026-01-01 0:00 UTC),
                end: datetime!(2027-01-01 0:00 UTC),
            },
            export_controlled: true,
            source: LicenseSource::Manual,
            order_ref: None,
            labels: BTreeSet::from(["x".to_string()]),
            created_at: datetime!(2026-01-01 0:00 UTC),
        };
        let bytes = encode(&l);
        assert_eq!(bytes[0], 1, "format version prefix");
        assert_eq!(
            hex(&bytes),
            "01100000000000000003030303030303030303030303030303100000000000000001010101010101\
             01010101010101010110000000000000000202020202020202020202020202020201000000000000\
             0074010000000000000054050000000000000001000000ea070000010000000000000000000000eb\
             0700000100000000000000000000000100000000000100000000000000010000000000000078ea07\
             0000010000000000000000000000"
                .replace(char::is_whitespace, "")
        );
        let e = Event {
            seq: 7,
            at: datetime!(2026-01-01 0:00 UTC),
            actor: "a".into(),
            action: "b".into(),
            subject: "c".into(),
            account: None,
            va: None,
            device: None,
            details: vec![("k".into(), "v".into())],
        };
        assert_eq!(e.key(), 7u64.to_be_bytes().to_vec());
        assert_eq!(
            hex(&encode(&e)),
            "010700000000000000ea070000010000000000000000000000010000000000000061010000000000\
             000062010000000000000063000000010000000000000001000000000000006b0100000000000000\
             76"
            .replace(char::is_whitespace, "")
        );
    }

    #[test]
    fn golden_user_grants() {
        let u = User {
            id: UserId(id(4)),
            name: "ops".into(),
            grants: BTreeSet::from([RoleGrant {
                role: Role::VaUser,
                scope: Scope::Va(VaId(id(5))),
            }]),
            created_at: datetime!(2026-01-01 0:00 UTC),
        };
        assert_eq!(
            hex(&encode(&u)),
            "0110000000000000000404040404040404040404040404040403000000000000006f707301000000\
             000000000400000002000000100000000000000005050505050505050505050505050505ea070000\
             010000000000000000000000"
                .replace(char::is_whitespace, "")
        );
    }

    /// Pins the sync records' bytes: a child's record on its upstream and one acknowledged
    /// item on a child (the binding and the remote records use the same field encodings).
    #[test]
    fn golden_sync_records() {
        let child = ChildSatellite {
            name: "site".into(),
            account: AccountId(id(1)),
            root: VaId(id(2)),
            token_hash: [3; 32],
            token_expires_at: datetime!(2026-01-02 03:04:05 UTC),
            created_at: datetime!(2026-01-02 03:04:05 UTC),
            created_by: "local".into(),
            key: Some("ab".into()),
            cert_serial: None,
            registered_at: None,
            last_request_seq: 7,
            response_seq: 8,
            last_response: None,
            last_seen: None,
            pending_removals: vec![("d".into(), "r".into())],
        };
        assert_eq!(hex(&encode(&child)), GOLDEN_CHILD);
        let item = SyncedItem {
            key: "dev:x".into(),
            digest: [9; 32],
        };
        assert_eq!(hex(&encode(&item)), GOLDEN_ITEM);
    }

    const GOLDEN_CHILD: &str = "010400000000000000736974651000000000000000010101010101010101010101010101011000000000000000020202020202020202020202020202020303030303030303030303030303030303030303030303030303030303030303ea070000020003040500000000000000ea07000002000304050000000000000005000000000000006c6f63616c010200000000000000616200000700000000000000080000000000000000000100000000000000010000000000000064010000000000000072";
    const GOLDEN_ITEM: &str = "0105000000000000006465763a780909090909090909090909090909090909090909090909090909090909090909";
    #[test]
    fn golden_reservation() {
        use std::collections::BTreeMap;

        use crate::domain::{ReservationId, Udi};
        let r = Reservation {
            id: ReservationId(id(6)),
            account: AccountId(id(1)),
            va: VaId(id(2)),
            udi: Udi {
                pid: "P".into(),
                serial: "S".into(),
            },
            entitlements: BTreeMap::from([("t".to_string(), 2u64)]),
            created_at: datetime!(2026-01-01 0:00 UTC),
            created_by: "a".into(),
            request_nonce: "n".into(),
            code_sha256: [0xaa; 32],
            return_proof_sha256: [0xbb; 32],
        };
        assert_eq!(r.key(), vec![6u8; 16]);
        assert_eq!(
            hex(&encode(&r)),
            "01100000000000000006060606060606060606060606060606100000000000000001010101010101\
             01010101010101010110000000000000000202020202020202020202020202020201000000000000\
             005001000000000000005301000000000000000100000000000000740200000000000000ea070000\
             01000000000000000000000001000000000000006101000000000000006eaaaaaaaaaaaaaaaaaaaa\
             aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\
             bbbbbbbbbbbbbbbbbbbbbbbbbbbb"
                .replace(char::is_whitespace, "")
        );
    }

    /// Format 1 of an imported file (no issuer; keyed by the file id), as schema 1 stored it.
    /// Pinned like the others: these are the bytes a schema-1 store holds.
    const GOLDEN_IMPORTED_V1: &str = "0106000000000000006f7264657231100000000000000001010101010101010101010101010101ea0700000100000000000000000000000100000000000000100000000000000003030303030303030303030303030303";

    impl Record for ImportedFileV1 {
        const TABLE: &'static str = ImportedFile::TABLE;
        const FORMAT: u8 = 1;
        fn key(&self) -> Vec<u8> {
            self.file_id.as_bytes().to_vec()
        }
    }

    fn imported_v1() -> ImportedFileV1 {
        ImportedFileV1 {
            file_id: "order1".into(),
            account: AccountId(id(1)),
            imported_at: datetime!(2026-01-01 0:00 UTC),
            licenses: vec![LicenseId(id(3))],
        }
    }

    #[test]
    fn golden_imported_file_format_2_and_the_upgrade_from_format_1() {
        assert_eq!(hex(&encode(&imported_v1())), GOLDEN_IMPORTED_V1);
        let f = ImportedFile {
            file_id: "order1".into(),
            account: AccountId(id(1)),
            issuer: "portal".into(),
            imported_at: datetime!(2026-01-01 0:00 UTC),
            licenses: vec![LicenseId(id(3))],
        };
        assert_eq!(
            hex(&encode(&f)),
            "0206000000000000006f72646572311000000000000000010101010101010101010101010101010600\
             000000000000706f7274616cea070000010000000000000000000000010000000000000010000000\
             0000000003030303030303030303030303030303"
                .replace(char::is_whitespace, "")
        );
        assert_eq!(
            hex(&f.key()),
            "01010101010101010101010101010101\
             0006\
             706f7274616c\
             6f7264657231"
        );
        let v1 = crate::store::decode::<ImportedFile>(
            ImportedFile::TABLE,
            b"order1",
            &encode(&imported_v1()),
        )
        .expect("format 1 upgrades");
        assert_eq!(
            v1,
            ImportedFile {
                issuer: String::new(),
                ..f
            }
        );
    }

    /// A schema-1 store's imported files are re-keyed by account, issuer and file id when a
    /// schema-2 satellite opens it, and keep everything they held.
    #[test]
    fn schema_2_re_keys_the_imported_files_of_a_schema_1_store() {
        use crate::store::{MIGRATIONS, SCHEMA_VERSION, Store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let mut second = imported_v1();
        second.file_id = "order2".into();
        second.account = AccountId(id(9));
        {
            let old = Store::open_with(&path, TABLES, 1, &[]).unwrap();
            for f in [imported_v1(), second.clone()] {
                old.put_raw(ImportedFile::TABLE, &f.key(), &encode(&f))
                    .unwrap();
            }
            old.commit_blocking(Batch::new()).unwrap();
        }
        assert_eq!(SCHEMA_VERSION, 2);
        let store = Store::open_with(&path, TABLES, 2, MIGRATIONS).unwrap();
        let mut found: Vec<ImportedFile> =
            store.scan::<ImportedFile>().map(Result::unwrap).collect();
        found.sort_by(|a, b| a.file_id.cmp(&b.file_id));
        let expected: Vec<ImportedFile> = [imported_v1(), second]
            .into_iter()
            .map(Into::into)
            .collect();
        assert_eq!(found, expected);
        for f in &expected {
            let raw = store.get_raw(ImportedFile::TABLE, &Record::key(f)).unwrap();
            assert_eq!(
                raw.expect("under the new key")[0],
                2,
                "rewritten in format 2"
            );
        }
        assert!(
            store
                .get_raw(ImportedFile::TABLE, b"order1")
                .unwrap()
                .is_none()
        );
        assert_eq!(store.count::<ImportedFile>().unwrap(), 2);
    }
}
