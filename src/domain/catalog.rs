//! The in-memory catalog of everything an operator manages, and the [`Change`] type through
//! which it evolves.
//!
//! The catalog is loaded from the store at start and changed only by [`Catalog::apply`]: the
//! write path (`App::change`) queues a change's batch in the store's commit queue and applies
//! the change here under the same hold of the write lock, before the flush, so the catalog
//! never shows a change the store refused and both see writes in the same order.
//!
//! Its state is owned by areas, each in its own file with its records' indexes and the
//! invariants that keep them true: `tree` (accounts and VAs), `stock` (licenses and imported
//! files), `fleet` (devices, their pools, revoked certificates, RUM reports seen),
//! `credentials` (tokens and users), `sync`, `reserves` (reservations) and
//! `cisco_devices` (devices polled for RUM reports). [`Catalog::apply`]
//! hands each record to its area through [`Stored`] and [`Removable`], a dispatch generated
//! from the one list of record kinds (`for_each_record_kind!`). Indexes are derived and never
//! persisted, so they cannot disagree with the records.

mod boxed;
mod cisco_acks;
mod cisco_devices;
mod credentials;
mod fleet;
mod reserves;
mod stock;
mod sync;
mod tree;

use std::collections::{BTreeSet, HashMap};

use super::events::NewEvent;
use super::ids::{
    AccountId, ApiTokenId, CiscoDeviceId, InstanceId, LicenseId, ReservationId, TokenId, UserId,
    VaId,
};
use super::model::{
    Account, ApiToken, License, ProductInstance, RegistrationToken, RevokedCertificate, RumRecord,
    Udi, User, UserPassword, VirtualAccount,
};
pub use super::records::{Record, Removal};
pub(super) use cisco_acks::ByDevice;
pub use cisco_acks::{CiscoAck, CiscoAcks, CiscoExport, Delivery, ExportedFile, ReportHolder};
use cisco_devices::CiscoDevices;
pub use cisco_devices::{CiscoDevice, DeviceTrust};
use credentials::Credentials;
#[cfg(test)]
pub(super) use fleet::contact_key;
pub(super) use fleet::{Fleet, Pool, Staged};
pub use fleet::{PreparedInstance, Preparer, TEXT_KEY_BYTES, TextIndex, TextKey, text_key};
pub use reserves::Reservation;
use reserves::Reserves;
use stock::LicenseStock;
pub use stock::{ImportKey, ImportedFile};
pub use sync::{
    ChildSatellite, Outstanding, RelayedRum, RemoteInstance, RemoteUsage, SyncIndex, SyncedItem,
    UpstreamBinding,
};
use tree::VaTree;

/// What an accepted operation does: records to write, records to remove, and the event that
/// tells the audit log about it. Applied atomically or not at all. Every operator action and
/// every device lifecycle change has an event; a routine usage report does not (its content
/// is kept on the device record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub put: Vec<Record>,
    pub remove: Vec<Removal>,
    pub event: Option<NewEvent>,
}

impl Change {
    pub fn new(event: NewEvent) -> Self {
        Change {
            put: Vec::new(),
            remove: Vec::new(),
            event: Some(event),
        }
    }

    /// A change without an audit event (routine device contact).
    pub fn silent() -> Self {
        Change {
            put: Vec::new(),
            remove: Vec::new(),
            event: None,
        }
    }

    pub fn put(mut self, record: Record) -> Self {
        self.put.push(record);
        self
    }

    pub fn remove(mut self, removal: Removal) -> Self {
        self.remove.push(removal);
        self
    }
}

/// A hash map for keys the satellite generates itself (random UUIDs, hashes it computed):
/// their bits are already uniform, so a multiply-and-rotate fold is enough. Keys that come
/// from outside (tags, serials, names) keep the standard SipHash and its protection against
/// chosen keys.
pub(super) type IdMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct IdHasher(u64);

impl IdHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// A record kind: the area of the catalog that indexes it puts it there.
trait Stored {
    fn put(self, c: &mut Catalog);
}

/// A record kind that changes can remove, by [`Removable::Key`].
trait Removable {
    type Key;
    fn take(key: Self::Key, c: &mut Catalog);
}

/// Generates [`Catalog::put`] and [`Catalog::take`] from the list of record kinds: each
/// record goes to the area that indexes its kind.
macro_rules! dispatch_to_areas {
    ($($variant:ident($ty:ty) $(removed by $key:ty)?;)*) => {
        impl Catalog {
            fn put(&mut self, record: Record) {
                match record {
                    $(Record::$variant(r) => <$ty as Stored>::put(r, self),)*
                }
            }

            fn take(&mut self, removal: Removal) {
                match removal {
                    $($(Removal::$variant(k) => {
                        let k: $key = k;
                        <$ty as Removable>::take(k, self)
                    })?)*
                }
            }
        }
    };
}

crate::for_each_record_kind!(dispatch_to_areas);

/// Everything the operators manage, indexed for the queries the operations need. Each area
/// owns its indexes: the operations read them, and only [`Catalog::apply`] (through the
/// areas' [`Stored`] and [`Removable`]) changes them.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub(super) tree: VaTree,
    pub(super) stock: LicenseStock,
    pub(super) fleet: Fleet,
    pub(super) credentials: Credentials,
    pub(super) sync: SyncIndex,
    pub(super) reserves: Reserves,
    pub(super) cisco: CiscoAcks,
    pub(super) cisco_devices: CiscoDevices,
}

/// A catalog being loaded from the store: records come in any order through
/// [`CatalogLoad::add`], and [`CatalogLoad::finish`] builds the device indexes that are built
/// best in bulk (see `catalog/fleet/load.rs`). Until then the catalog is not handed out.
#[derive(Debug, Default)]
pub struct CatalogLoad {
    catalog: Catalog,
    staged: Staged,
}

impl CatalogLoad {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one stored record.
    pub fn add(&mut self, record: Record) {
        match record {
            Record::Instance(i) => {
                let prepared = self.catalog.fleet.preparer().prepare(i);
                self.add_prepared(prepared)
            }
            other => self.catalog.put(other),
        }
    }

    /// What prepares devices for [`CatalogLoad::add_prepared`] on other threads.
    pub fn preparer(&self) -> Preparer {
        self.catalog.fleet.preparer()
    }

    /// Makes room for `devices` more devices, when the source says how many it holds.
    pub fn reserve_devices(&mut self, devices: usize) {
        self.catalog.fleet.reserve(devices, &mut self.staged);
    }

    /// Adds a stored device prepared by this load's [`CatalogLoad::preparer`].
    pub fn add_prepared(&mut self, device: PreparedInstance) {
        self.catalog.fleet.stage(device, &mut self.staged)
    }

    /// The loaded catalog, every index built.
    pub fn finish(mut self) -> Catalog {
        self.catalog.fleet.build_staged(&mut self.staged);
        self.catalog
    }
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a catalog from stored records, in any order.
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> Self {
        let mut load = CatalogLoad::new();
        for record in records {
            load.add(record);
        }
        load.finish()
    }

    /// Applies an accepted change whose batch the store has queued. Infallible: the change was
    /// validated against this catalog under the same hold of the write lock.
    pub fn apply(&mut self, change: &Change) {
        self.apply_owned(change.clone());
    }

    /// Like [`Catalog::apply`], taking the change: the write path has no further use for it,
    /// so its records move into the catalog instead of being cloned.
    pub fn apply_owned(&mut self, change: Change) {
        for removal in change.remove {
            self.take(removal);
        }
        for record in change.put {
            self.put(record);
        }
    }

    // Read access. Callers that act for a principal filter through `access` first.

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.tree.accounts.get(&id)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.tree.accounts.values()
    }

    pub fn account_by_name_or_domain(&self, key: &str) -> Option<&Account> {
        self.tree
            .accounts
            .values()
            .find(|a| a.name == key || a.domain == key || a.id.to_string() == key)
    }

    pub fn va(&self, id: VaId) -> Option<&VirtualAccount> {
        self.tree.vas.get(&id)
    }

    pub fn vas_of(&self, account: AccountId) -> impl Iterator<Item = &VirtualAccount> {
        self.tree.vas.values().filter(move |v| v.account == account)
    }

    /// The direct children of a VA, in id order.
    pub fn children(&self, va: VaId) -> impl Iterator<Item = &VirtualAccount> {
        self.tree
            .children
            .get(&va)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tree.vas.get(id))
    }

    /// The nesting level of a VA: the Default VA is level 1.
    pub fn level(&self, va: VaId) -> usize {
        self.ancestors(va).count() + 1
    }

    /// The VA's parent, its parent's parent, and so on up to the Default VA.
    pub fn ancestors(&self, va: VaId) -> impl Iterator<Item = VaId> + '_ {
        let mut next = self.tree.vas.get(&va).and_then(|v| v.parent);
        std::iter::from_fn(move || {
            let current = next?;
            next = self.tree.vas.get(&current).and_then(|v| v.parent);
            Some(current)
        })
    }

    /// Whether `va` is `root` or lies below it.
    pub fn in_subtree(&self, va: VaId, root: VaId) -> bool {
        va == root || self.ancestors(va).any(|a| a == root)
    }

    /// The VA and every VA below it, parents before children.
    pub fn subtree(&self, root: VaId) -> Vec<VaId> {
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            out.extend(
                self.tree
                    .children
                    .get(&out[i])
                    .into_iter()
                    .flatten()
                    .copied(),
            );
            i += 1;
        }
        out
    }

    /// Levels below and including `root`: 1 for a VA without children.
    pub fn subtree_height(&self, root: VaId) -> usize {
        1 + self
            .tree
            .children
            .get(&root)
            .into_iter()
            .flatten()
            .map(|c| self.subtree_height(*c))
            .max()
            .unwrap_or(0)
    }

    /// A VA's path: its account's name, then the VAs from the Default VA down, e.g.
    /// `acme/Default/emea/paris`. The same text names the VA in every command.
    pub fn va_path(&self, va: VaId) -> String {
        let mut names: Vec<&str> = self
            .ancestors(va)
            .filter_map(|a| self.tree.vas.get(&a).map(|v| v.name.as_str()))
            .collect();
        names.reverse();
        let Some(v) = self.tree.vas.get(&va) else {
            return va.to_string();
        };
        names.push(&v.name);
        let account = self
            .tree
            .accounts
            .get(&v.account)
            .map_or("?", |a| a.name.as_str());
        format!("{account}/{}", names.join("/"))
    }

    pub fn license(&self, id: LicenseId) -> Option<&License> {
        self.stock.licenses.get(&id)
    }

    pub fn licenses_in(&self, va: VaId) -> impl Iterator<Item = &License> {
        self.stock
            .licenses_by_va
            .get(&va)
            .into_iter()
            .flatten()
            .filter_map(|id| self.stock.licenses.get(id))
    }

    /// The license entries of one tag in one VA.
    pub fn licenses_of(&self, va: VaId, tag: &str) -> impl Iterator<Item = &License> {
        self.stock
            .licenses_by_tag
            .get(&va)
            .and_then(|tags| tags.get(tag))
            .into_iter()
            .flatten()
            .filter_map(|id| self.stock.licenses.get(id))
    }

    /// The VAs holding any license entry of `tag`.
    pub fn vas_with_tag(&self, tag: &str) -> impl Iterator<Item = VaId> + '_ {
        self.stock
            .vas_by_tag
            .get(tag)
            .into_iter()
            .flatten()
            .copied()
    }

    pub fn token(&self, id: TokenId) -> Option<&RegistrationToken> {
        self.credentials.tokens.get(&id)
    }

    pub fn token_by_hash(&self, hash: &[u8; 32]) -> Option<&RegistrationToken> {
        self.credentials
            .tokens_by_hash
            .get(hash)
            .and_then(|id| self.credentials.tokens.get(id))
    }

    pub fn tokens_in(&self, va: VaId) -> impl Iterator<Item = &RegistrationToken> {
        self.credentials.tokens.values().filter(move |t| t.va == va)
    }

    pub fn user(&self, id: UserId) -> Option<&User> {
        self.credentials.users.get(&id)
    }

    pub fn user_by_name(&self, name: &str) -> Option<&User> {
        self.credentials
            .users
            .values()
            .find(|u| u.name == name || u.id.to_string() == name)
    }

    /// The user's console password, if one was set.
    pub fn password_of(&self, user: UserId) -> Option<&UserPassword> {
        self.credentials.passwords.get(&user)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.credentials.users.values()
    }

    pub fn api_token(&self, id: ApiTokenId) -> Option<&ApiToken> {
        self.credentials.api_tokens.get(&id)
    }

    pub fn api_token_by_hash(&self, hash: &[u8; 32]) -> Option<&ApiToken> {
        self.credentials
            .api_tokens_by_hash
            .get(hash)
            .and_then(|id| self.credentials.api_tokens.get(id))
    }

    pub fn api_tokens_of(&self, user: UserId) -> impl Iterator<Item = &ApiToken> {
        self.credentials
            .api_tokens
            .values()
            .filter(move |t| t.user == user)
    }
}

impl Catalog {
    pub fn instance(&self, id: InstanceId) -> Option<&ProductInstance> {
        self.fleet.instances.get(&id)
    }

    pub fn instance_by_udi(&self, account: AccountId, udi: &Udi) -> Option<&ProductInstance> {
        self.fleet.by_udi(account, udi)
    }

    /// The device whose current identity certificate has this serial.
    pub fn instance_by_serial(&self, serial: &str) -> Option<&ProductInstance> {
        self.fleet
            .instances_by_serial
            .get(serial)
            .and_then(|id| self.fleet.instances.get(id))
    }

    pub fn revoked_certificate(&self, serial: &str) -> Option<&RevokedCertificate> {
        self.fleet.revoked.get(serial)
    }

    pub fn revoked_certificates(&self) -> impl Iterator<Item = &RevokedCertificate> {
        self.fleet.revoked.values()
    }

    pub fn instances_in(&self, va: VaId) -> impl Iterator<Item = &ProductInstance> {
        self.fleet
            .instances_by_va
            .get(&va)
            .into_iter()
            .flatten()
            .filter_map(|id| self.fleet.instances.get(id))
    }

    /// The pool of one tag in one VA, if a device uses the tag there.
    pub(super) fn pool_of(&self, va: VaId, tag: &str) -> Option<&Pool> {
        self.fleet.pools.get(&va)?.get(tag)
    }

    pub fn instances(&self) -> impl ExactSizeIterator<Item = &ProductInstance> {
        self.fleet.instances.values()
    }

    /// Every (VA, tag) some device uses.
    pub fn pool_keys(&self) -> Vec<(VaId, String)> {
        self.fleet
            .pools
            .iter()
            .flat_map(|(va, tags)| tags.keys().map(|t| (*va, t.to_string())))
            .collect()
    }

    pub fn instance_count(&self) -> usize {
        self.fleet.instances.len()
    }

    pub fn instance_count_in(&self, va: VaId) -> usize {
        self.fleet.instances_by_va.get(&va).map_or(0, BTreeSet::len)
    }

    pub fn rum_seen(&self, serial: &str, report_id: u64) -> bool {
        self.fleet
            .rum_seen
            .contains_key(&(serial.to_string(), report_id))
    }

    /// The import of `issuer`'s file `file_id` into `account`, if it was imported; a record
    /// without an issuer (from store schema 1) matches any issuer.
    pub fn imported_file(
        &self,
        account: AccountId,
        issuer: &str,
        file_id: &str,
    ) -> Option<&ImportedFile> {
        let key = |issuer: &str| ImportKey {
            account,
            issuer: issuer.to_owned(),
            file_id: file_id.to_owned(),
        };
        self.stock
            .imported_files
            .get(&key(issuer))
            .or_else(|| self.stock.imported_files.get(&key("")))
    }

    /// An active reservation.
    pub fn reservation(&self, id: ReservationId) -> Option<&Reservation> {
        self.reserves.reservations.get(&id)
    }

    /// The active reservation of a device in an account.
    pub fn reservation_by_udi(&self, account: AccountId, udi: &Udi) -> Option<&Reservation> {
        self.reserves
            .reservations_by_udi
            .get(&(account, udi.clone()))
            .and_then(|id| self.reserves.reservations.get(id))
    }

    /// Every active reservation, in no particular order (listings, not the hot path).
    pub fn reservations(&self) -> impl Iterator<Item = &Reservation> {
        self.reserves.reservations.values()
    }

    /// Units of `tag` reserved in `va`.
    pub fn reserved(&self, va: VaId, tag: &str) -> u64 {
        self.reserves
            .reserved
            .get(&va)
            .and_then(|tags| tags.get(tag))
            .copied()
            .unwrap_or(0)
    }

    /// Whether any active reservation draws on `va`.
    pub fn has_reservations_in(&self, va: VaId) -> bool {
        self.reserves.reserved.contains_key(&va)
    }
}
