//! The typed trees: which domain record lives in which tree, under which key, in which format
//! version. Changing a record type's fields means a new `FORMAT` and an `upgrade` from the
//! previous one; the golden-bytes tests (`tables/tests.rs`) fail first. The tables, batches
//! and loading follow the one list of record kinds, `crate::for_each_record_kind!`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{
    Account, AccountId, ApiToken, ApiTokenId, Change, ChildSatellite, CiscoAck, CiscoDevice,
    CiscoDeviceId, CiscoExport, Event, ImportKey, ImportedFile, InstanceId, License, LicenseId,
    ProductInstance, Record as DomainRecord, RegistrationToken, RelayedRum, RemoteInstance,
    RemoteUsage, Removal, Reservation, ReservationId, RevokedCertificate, RumRecord, SyncedItem,
    TokenId, UpstreamBinding, User, UserId, UserPassword, VaId, VirtualAccount,
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
// Console passwords (argon2id PHC strings), one per user, by user id.
table!(UserPassword, "user_passwords", 1, |r| r
    .user
    .as_bytes()
    .to_vec());
// The Cisco reporting loop: usage exports by their first device file number (big-endian, so
// the tree iterates in number order), ACK files by the SHA-256 (hex) of their bytes.
table!(CiscoExport, "cisco_exports", 1, |r| r
    .first_file_id
    .to_be_bytes()
    .to_vec());
table!(CiscoAck, "cisco_acks", 1, |r| r.id.as_bytes().to_vec());
// Cisco devices polled for RUM reports (SPEC §11), by device id.
table!(CiscoDevice, "cisco_devices", 1, |r| r
    .id
    .as_bytes()
    .to_vec());
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
    ReservationId,
    CiscoDeviceId
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
        /// Every tree the satellite uses, passed to `Store::open` so one commit group can span
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

        /// Decodes every record of every domain table but `skip`, table by table in the order
        /// of [`TABLES`], and hands each to `push`. A record that cannot be decoded is logged and
        /// skipped; the returned list says why for each.
        pub fn scan_records(
            store: &Store,
            skip: Option<&str>,
            push: &mut impl FnMut(DomainRecord),
        ) -> Vec<String> {
            let mut unreadable = Vec::new();
            $(if skip != Some(<$ty as Record>::TABLE) {
                scan_into::<$ty>(store, DomainRecord::$variant, push, &mut unreadable);
            })*
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
mod tests;
