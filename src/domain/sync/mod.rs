//! Upstream reconciliation (SPEC §8) as the catalog sees it: who owns what, and what a sync
//! message changes. The signed messages themselves are `protocol::sync`; the engine in
//! `crate::sync` converts between the two and does the IO.
//!
//! **Ownership** (`ownership.rs`). An upstream dedicates a VA subtree to a child satellite
//! ([`ChildSatellite`]). The upstream owns the license pools and the VA structure of that
//! subtree; the child owns the product instances registered in it and their usage. So on the
//! child, the mirrored subtree ([`UpstreamBinding::root`]) refuses every license or structure
//! edit with a message naming the upstream; on the upstream, the dedicated subtree takes no
//! registration tokens (devices register with the child) and shows the child's devices and
//! usage as read-only [`RemoteInstance`] and [`RemoteUsage`] records. No field is written by
//! both sides, so sync cannot conflict.
//!
//! **The outbox is a difference, not a queue** (`outbox.rs`). The child remembers, per item,
//! what the upstream has acknowledged ([`SyncedItem`]: an [`OutboxKey`] and a digest of the
//! content). What to send is the difference between the current state of the dedicated subtree
//! and that record: registrations (new or changed devices), removals (acknowledged devices
//! that are gone), usage snapshots (per VA and tag, when the numbers changed) and relayed Cisco
//! RUM reports. An acknowledgement records exactly the items of the request it names, so every
//! item crosses once, whatever was retried, and the state survives restarts because it is the
//! catalog's. Tiers compose: a regional satellite relays the devices and usage its own
//! children reported as part of its own difference.
//!
//! The rest: the stored records and their indexes are the catalog's sync area (`catalog/sync.rs`), `messages.rs` the messages as the domain sees
//! them, `upstream.rs` the upstream's side (children and their registration), `bind.rs` the
//! child's binding and its numbered requests, `apply.rs` applying a child's request or an
//! upstream's response.

mod apply;
mod bind;
mod key;
mod messages;
mod outbox;
mod ownership;
mod upstream;

pub use crate::domain::catalog::{
    ChildSatellite, Outstanding, RelayedRum, RemoteInstance, RemoteUsage, SyncedItem,
    UpstreamBinding,
};
pub use key::OutboxKey;
pub use messages::{
    Applied, BindInput, ChildChange, OutItem, Received, UpstreamLicense, UpstreamResponse,
};
pub use outbox::RegistrationScan;
