//! Every kind of stored record, listed once.
//!
//! [`for_each_record_kind!`] hands the list to a macro of the caller's: the domain builds
//! [`Record`] and [`Removal`] from it, the store its table list and its batches, the app its
//! loading, the catalog its dispatch of each record to the area that indexes it. A new record
//! kind is one line here, its table (`store/tables.rs`, with a golden-bytes test) and its
//! area's `Stored` (and `Removable`) impl in `catalog/`; the compiler finds the rest.

use super::catalog::{
    ChildSatellite, CiscoAck, CiscoDevice, CiscoExport, ImportKey, ImportedFile, RelayedRum,
    RemoteInstance, RemoteUsage, Reservation, SyncedItem, UpstreamBinding,
};
use super::ids::{
    ApiTokenId, CiscoDeviceId, InstanceId, LicenseId, ReservationId, TokenId, UserId, VaId,
};
use super::model::{
    Account, ApiToken, License, ProductInstance, RegistrationToken, RevokedCertificate, RumRecord,
    User, UserPassword, VirtualAccount,
};

/// Calls `$callback! { Variant(RecordType) [removed by KeyType]; ... }` with every stored
/// record kind: the [`Record`] variant, the record's type, and the key a [`Removal`] names it
/// by when records of the kind can be removed. The order is the order of the store's tables.
#[macro_export]
macro_rules! for_each_record_kind {
    ($callback:ident) => {
        $callback! {
            Account(Account);
            Va(VirtualAccount) removed by VaId;
            License(License) removed by LicenseId;
            Token(RegistrationToken) removed by TokenId;
            User(User) removed by UserId;
            ApiToken(ApiToken) removed by ApiTokenId;
            Instance(ProductInstance) removed by InstanceId;
            Revoked(RevokedCertificate) removed by String;
            Rum(RumRecord);
            ImportedFile(ImportedFile) removed by ImportKey;
            UpstreamBinding(UpstreamBinding);
            SyncedItem(SyncedItem) removed by String;
            ChildSatellite(ChildSatellite) removed by String;
            RemoteInstance(RemoteInstance) removed by String;
            RemoteUsage(RemoteUsage) removed by String;
            RelayedRum(RelayedRum);
            Reservation(Reservation) removed by ReservationId;
            Password(UserPassword) removed by UserId;
            CiscoExport(CiscoExport);
            CiscoAck(CiscoAck);
            CiscoDevice(CiscoDevice) removed by CiscoDeviceId;
        }
    };
}

macro_rules! record_enums {
    ($($variant:ident($ty:ty) $(removed by $key:ty)?;)*) => {
        /// One record written by a change.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Record {
            $($variant($ty),)*
        }

        /// One record removed by a change, named by its key: the record's id; a revoked
        /// certificate's serial; a sync record's `key()` (`SyncedItem::key`,
        /// `ChildSatellite::name`, `RemoteInstance::key`, `RemoteUsage::key`).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Removal {
            $($($variant($key),)?)*
        }
    };
}

for_each_record_kind!(record_enums);
