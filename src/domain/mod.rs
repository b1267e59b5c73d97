//! The license domain: accounts, Virtual Accounts, license pools, registration tokens, users,
//! roles and the audit log.
//!
//! This layer is pure. It never reads the clock (`now` is a parameter), never draws random
//! identifiers (new entities take theirs from the [`IdSource`] the caller passes), never
//! touches the disk or the network, and never blocks. Every operation validates a request
//! against the in-memory [`Catalog`] and answers with a [`Change`]: the records to write, the
//! records to remove and the audit [`NewEvent`] describing it.
//!
//! The caller (`App::change`) holds the write lock while it queues the change's batch (the
//! records and the event, one store transaction) in the store's commit queue and then applies
//! the change to the catalog; it answers only after the batch's group is flushed and synced to
//! disk. A batch the store refuses (a poisoned store refuses at once) is never applied, so the
//! catalog never shows a change the store refused, and both see the writes in the same order.
//! The catalog may show a queued change before it is on disk; a failed flush leaves it visible
//! until a restart, while the store refuses every later write (ARCHITECTURE.md).
//!
//! Entities derive serde because the store persists them as versioned records (see
//! `store::tables`); the wire formats of the admin API and the device protocol are separate
//! types in `protocol`, converted at the edge.

mod access;
mod accounts;
mod alerts;
mod catalog;
mod cisco_acks;
mod cisco_devices;
mod compliance;
mod devices;
mod error;
mod events;
mod holdings;
mod ids;
mod imports;
mod licenses;
mod model;
mod records;
mod reservations;
mod rum;
mod sync;
mod tokens;
mod units;
mod users;

pub use access::{Access, Principal};
pub use accounts::{DEFAULT_VA_NAME, MAX_VA_DEPTH, validate_domain};
pub use alerts::{Alert, AlertInputs, Severity};
pub use catalog::{
    Catalog, CatalogLoad, Change, CiscoAck, CiscoDevice, CiscoExport, Delivery, DeviceTrust,
    ExportedFile, Record, Removal, ReportHolder,
};
pub use catalog::{PreparedInstance, Preparer, TEXT_KEY_BYTES, TextIndex, TextKey, text_key};
pub use cisco_acks::{
    AckImport, AckInput, DeviceReports, ExportPlan, ExportScope, PlannedFile, ReceivedAck,
};
pub use cisco_devices::{
    CiscoDeviceSpec, MAX_DEVICE_CA_BYTES, MAX_DEVICE_NAME, MAX_DEVICE_USER, check_address,
    trust_kind,
};
pub use compliance::{ComplianceLine, DeviceTimers, SpareIn};
pub use devices::{DeviceError, IssuedIdentity, Registration, UsageOutcome};
pub use error::DomainError;
pub use events::{EventFilter, NewEvent};
pub use holdings::Holdings;
pub use ids::{
    AccountId, ApiTokenId, CiscoDeviceId, IdSource, InstanceId, LicenseId, ReservationId,
    SequentialIds, TokenId, UserId, VaId,
};
pub use imports::{ImportGrant, ImportKey, ImportedFile, LicenseImport};
pub use licenses::{LicenseSpec, PoolLine};
pub use model::*;
pub use reservations::{
    IssueContext, IssuedAuthorization, MAX_RESERVED_TAGS, Reservation, ReservationRequest,
};
pub use rum::{RumInput, RumRefusal};
pub use sync::{
    Applied, BindInput, ChildChange, ChildSatellite, OutItem, OutboxKey, Outstanding, Received,
    RegistrationScan, RelayedRum, RemoteInstance, RemoteUsage, SyncedItem, UpstreamBinding,
    UpstreamLicense, UpstreamResponse,
};
pub use tokens::{TokenSpec, TokenState};
pub use units::MAX_UNITS;
pub use users::ConsoleStep;

#[cfg(test)]
mod tests;
