//! The in-memory catalog of everything an operator manages, and the [`Change`] type through
//! which it evolves.
//!
//! The catalog is loaded from the store at start and updated only by [`Catalog::apply`], after
//! the change is durable. Indexes (children of a VA, licenses of a VA, tokens by hash) are
//! derived here and never persisted, so they cannot disagree with the records.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use time::OffsetDateTime;

use super::compliance::Pool;
use super::events::NewEvent;
use super::ids::{
    AccountId, ApiTokenId, InstanceId, LicenseId, ReservationId, TokenId, UserId, VaId,
};
use super::imports::{ImportKey, ImportedFile};
use super::model::{
    Account, ApiToken, License, ProductInstance, RegistrationToken, RevokedCertificate, Tag, Udi,
    User, VirtualAccount,
};
pub use super::records::{Record, Removal};
use super::reservations::Reservation;
use super::sync::{ChildSatellite, RelayedRum, RemoteInstance, RemoteUsage, UpstreamBinding};

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

/// The key of a contact time in [`Catalog::by_contact`].
pub(super) fn contact_key(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos()
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

/// The devices whose (account, UDI) hash to one value: almost always one.
#[derive(Clone, Debug)]
pub(super) enum UdiSlot {
    One(InstanceId),
    Many(Vec<InstanceId>),
}

/// Everything the operators manage, indexed for the queries the operations need.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub(super) accounts: BTreeMap<AccountId, Account>,
    pub(super) vas: HashMap<VaId, VirtualAccount>,
    pub(super) children: HashMap<VaId, BTreeSet<VaId>>,
    pub(super) licenses: HashMap<LicenseId, License>,
    pub(super) licenses_by_va: HashMap<VaId, BTreeSet<LicenseId>>,
    /// Licenses of each VA by entitlement tag: compliance asks "units of this tag here" on
    /// every report and alert, which must not walk the VA's whole pool.
    pub(super) licenses_by_tag: HashMap<VaId, HashMap<String, BTreeSet<LicenseId>>>,
    /// The VAs holding any license of a tag, for "where are spare licenses".
    pub(super) vas_by_tag: HashMap<String, BTreeSet<VaId>>,
    pub(super) tokens: HashMap<TokenId, RegistrationToken>,
    pub(super) tokens_by_hash: HashMap<[u8; 32], TokenId>,
    pub(super) users: BTreeMap<UserId, User>,
    pub(super) api_tokens: HashMap<ApiTokenId, ApiToken>,
    pub(super) api_tokens_by_hash: HashMap<[u8; 32], ApiTokenId>,
    /// Boxed: a hash table keeps its values inline and grows by doubling, so at a million
    /// devices inline records would occupy two million ~470-byte slots.
    pub(super) instances: IdMap<InstanceId, Box<ProductInstance>>,
    /// Devices by (account, UDI), keyed by a hash of both so the index holds no copies of
    /// the UDI strings; a collision keeps several ids, told apart by their records.
    pub(super) instances_by_udi: IdMap<u64, UdiSlot>,
    pub(super) udi_hasher: std::hash::RandomState,
    pub(super) instances_by_serial: HashMap<String, InstanceId>,
    pub(super) instances_by_va: IdMap<VaId, BTreeSet<InstanceId>>,
    /// Devices by last contact, oldest first, for the expiry sweep.
    /// Keyed by the contact time in nanoseconds since 1970 (cheaper to compare than an
    /// `OffsetDateTime`, which normalizes its offset on every comparison).
    pub(super) by_contact: BTreeSet<(i128, InstanceId)>,
    /// Per VA and tag, the devices using the tag in registration order. Looked up by `&str`
    /// on every report, so keyed by VA, then by the interned tag.
    pub(super) pools: IdMap<VaId, HashMap<Tag, Pool>>,
    pub(super) tags_in_use: IdMap<VaId, BTreeSet<Tag>>,
    /// Every entitlement tag a device uses, shared by all of them.
    pub(super) tag_names: std::collections::HashSet<Tag>,
    pub(super) revoked: HashMap<String, RevokedCertificate>,
    /// RUM reports by (device serial, report id), with the device they were filed under.
    pub(super) rum_seen: HashMap<(String, u64), InstanceId>,
    /// License files already imported, by account, issuer and file id.
    pub(super) imported_files: HashMap<ImportKey, ImportedFile>,
    /// Active license reservations (SPEC §8b), by id and by (account, UDI).
    pub(super) reservations: HashMap<ReservationId, Reservation>,
    pub(super) reservations_by_udi: HashMap<(AccountId, Udi), ReservationId>,
    /// Units reserved per VA and tag: compliance subtracts them before any device, so it must
    /// not walk the reservations.
    pub(super) reserved: HashMap<VaId, BTreeMap<String, u64>>,
    /// Devices whose latest report had a skewed clock.
    pub(super) skewed: BTreeSet<InstanceId>,
    /// The registration order the next device gets.
    pub(super) next_order: u64,
    /// Child side of sync: the binding to the upstream and what it acknowledged.
    pub(super) binding: Option<UpstreamBinding>,
    pub(super) synced: HashMap<String, [u8; 32]>,
    /// Upstream side of sync: children, their devices, usage and relayed RUM reports.
    pub(super) child_sats: BTreeMap<String, ChildSatellite>,
    pub(super) remote_instances: BTreeMap<String, RemoteInstance>,
    pub(super) remote_usage: BTreeMap<String, RemoteUsage>,
    /// Units granted by children per (VA, tag), for pools and compliance.
    pub(super) remote_usage_by_pool: HashMap<(VaId, String), u64>,
    pub(super) relayed_rum: HashMap<String, RelayedRum>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a catalog from stored records, in any order.
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> Self {
        let mut catalog = Catalog::new();
        for record in records {
            catalog.put(record);
        }
        catalog
    }

    /// Adds one stored record while loading; records may come in any order.
    pub fn load_record(&mut self, record: Record) {
        match record {
            // Each stored device comes once: index it directly, without looking for an older
            // copy to replace (a million lookups that all miss).
            Record::Instance(mut i) if !self.instances.contains_key(&i.id) => {
                self.intern_tags(&mut i);
                self.index_instance(i);
            }
            other => self.put(other),
        }
    }

    /// Makes a device share the catalog's copy of each of its entitlement tags.
    fn intern_tags(&mut self, i: &mut ProductInstance) {
        i.usage.intern(&mut self.tag_names);
        if let Some(answer) = &mut i.last_answer {
            for (tag, _, _) in &mut answer.entitlements {
                *tag = super::model::intern(&mut self.tag_names, tag);
            }
        }
    }

    /// Applies a durable change. Infallible: the change was validated against this catalog.
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

    fn put(&mut self, record: Record) {
        match record {
            Record::Account(a) => {
                self.accounts.insert(a.id, a);
            }
            Record::Va(va) => {
                if let Some(old) = self.vas.get(&va.id).and_then(|old| old.parent)
                    && let Some(set) = self.children.get_mut(&old)
                {
                    set.remove(&va.id);
                }
                if let Some(parent) = va.parent {
                    self.children.entry(parent).or_default().insert(va.id);
                }
                self.vas.insert(va.id, va);
            }
            Record::License(l) => {
                if let Some(old) = self.licenses.get(&l.id) {
                    let (old_va, old_tag) = (old.va, old.entitlement_tag.clone());
                    if let Some(set) = self.licenses_by_va.get_mut(&old_va) {
                        set.remove(&l.id);
                    }
                    self.unindex_tag(old_va, &old_tag, l.id);
                }
                self.licenses_by_va.entry(l.va).or_default().insert(l.id);
                self.licenses_by_tag
                    .entry(l.va)
                    .or_default()
                    .entry(l.entitlement_tag.clone())
                    .or_default()
                    .insert(l.id);
                self.vas_by_tag
                    .entry(l.entitlement_tag.clone())
                    .or_default()
                    .insert(l.va);
                self.licenses.insert(l.id, l);
            }
            Record::Token(t) => {
                self.tokens_by_hash.insert(t.secret_hash, t.id);
                self.tokens.insert(t.id, t);
            }
            Record::User(u) => {
                self.users.insert(u.id, u);
            }
            Record::ApiToken(t) => {
                self.api_tokens_by_hash.insert(t.secret_hash, t.id);
                self.api_tokens.insert(t.id, t);
            }
            Record::Instance(mut i) => {
                self.intern_tags(&mut i);
                if let Some(old) = self.instances.get_mut(&i.id)
                    && old.account == i.account
                    && old.va == i.va
                    && old.order == i.order
                    && old.udi == i.udi
                    && old.cert_serial == i.cert_serial
                    && old.usage == i.usage
                {
                    // A routine report or contact (the hot path) keeps every index key but the
                    // contact time and the clock-skew flag: update those two in place rather
                    // than un-indexing and re-indexing the device.
                    if old.last_contact != i.last_contact {
                        self.by_contact
                            .remove(&(contact_key(old.last_contact), i.id));
                        self.by_contact.insert((contact_key(i.last_contact), i.id));
                    }
                    if i.clock_skew {
                        self.skewed.insert(i.id);
                    } else {
                        self.skewed.remove(&i.id);
                    }
                    **old = i;
                } else {
                    self.take(Removal::Instance(i.id));
                    self.index_instance(i);
                }
            }
            Record::Revoked(r) => {
                self.revoked.insert(r.serial.clone(), r);
            }
            Record::Rum(r) => {
                self.rum_seen
                    .insert((r.udi.serial, r.report_id), r.instance);
            }
            Record::ImportedFile(f) => {
                self.imported_files.insert(f.import_key(), f);
            }
            Record::UpstreamBinding(b) => {
                self.binding = Some(b);
            }
            Record::SyncedItem(i) => {
                self.synced.insert(i.key, i.digest);
            }
            Record::ChildSatellite(c) => {
                self.child_sats.insert(c.name.clone(), c);
            }
            Record::RemoteInstance(r) => {
                self.remote_instances
                    .insert(RemoteInstance::key(&r.child, &r.id), r);
            }
            Record::RemoteUsage(u) => {
                let key = RemoteUsage::key(&u.child, u.va, &u.tag);
                self.take(Removal::RemoteUsage(key.clone()));
                // Bounded by `check_remote_total`; saturating only for records stored before
                // the bound existed.
                let total = self
                    .remote_usage_by_pool
                    .entry((u.va, u.tag.clone()))
                    .or_default();
                *total = total.saturating_add(u.units_granted);
                self.remote_usage.insert(key, u);
            }
            Record::RelayedRum(r) => {
                self.relayed_rum
                    .insert(RelayedRum::key(&r.child, &r.udi.serial, r.report_id), r);
            }
            Record::Reservation(r) => {
                self.take(Removal::Reservation(r.id));
                self.reservations_by_udi
                    .insert((r.account, r.udi.clone()), r.id);
                let tags = self.reserved.entry(r.va).or_default();
                for (tag, n) in &r.entitlements {
                    let total = tags.entry(tag.clone()).or_default();
                    *total = total.saturating_add(*n);
                }
                self.reservations.insert(r.id, r);
            }
        }
    }

    fn unindex_tag(&mut self, va: VaId, tag: &str, id: LicenseId) {
        let Some(tags) = self.licenses_by_tag.get_mut(&va) else {
            return;
        };
        if let Some(set) = tags.get_mut(tag) {
            set.remove(&id);
            if set.is_empty() {
                tags.remove(tag);
                if let Some(vas) = self.vas_by_tag.get_mut(tag) {
                    vas.remove(&va);
                }
            }
        }
    }

    fn index_instance(&mut self, i: ProductInstance) {
        self.next_order = self.next_order.max(i.order + 1);
        let key = self.udi_key(i.account, &i.udi);
        match self.instances_by_udi.entry(key) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(UdiSlot::One(i.id));
            }
            std::collections::hash_map::Entry::Occupied(mut e) => match e.get_mut() {
                UdiSlot::One(other) if *other == i.id => {}
                UdiSlot::One(other) => {
                    let other = *other;
                    e.insert(UdiSlot::Many(vec![other, i.id]));
                }
                UdiSlot::Many(ids) => {
                    if !ids.contains(&i.id) {
                        ids.push(i.id);
                    }
                }
            },
        }
        if let Some(serial) = &i.cert_serial {
            self.instances_by_serial.insert(serial.clone(), i.id);
        }
        self.instances_by_va.entry(i.va).or_default().insert(i.id);
        self.by_contact.insert((contact_key(i.last_contact), i.id));
        if i.clock_skew {
            self.skewed.insert(i.id);
        }
        for (tag, count) in &i.usage {
            let pool = self
                .pools
                .entry(i.va)
                .or_default()
                .entry(tag.clone())
                .or_default();
            let fresh = pool.users.is_empty();
            pool.users.insert(i.order, (i.id, *count));
            pool.total += count;
            // A new pool is the first device of the tag in this VA: only then is the tag new.
            if fresh {
                self.tags_in_use
                    .entry(i.va)
                    .or_default()
                    .insert(tag.clone());
            }
        }
        self.instances.insert(i.id, Box::new(i));
    }

    fn unindex_instance(&mut self, id: InstanceId) -> Option<ProductInstance> {
        let i = *self.instances.remove(&id)?;
        let key = self.udi_key(i.account, &i.udi);
        if let std::collections::hash_map::Entry::Occupied(mut e) = self.instances_by_udi.entry(key)
        {
            match e.get_mut() {
                UdiSlot::One(other) if *other == id => {
                    e.remove();
                }
                UdiSlot::One(_) => {}
                UdiSlot::Many(ids) => {
                    ids.retain(|x| *x != id);
                    if let [only] = ids[..] {
                        e.insert(UdiSlot::One(only));
                    }
                }
            }
        }
        if let Some(serial) = &i.cert_serial {
            self.instances_by_serial.remove(serial);
        }
        if let Some(set) = self.instances_by_va.get_mut(&i.va) {
            set.remove(&id);
        }
        self.by_contact.remove(&(contact_key(i.last_contact), id));
        self.skewed.remove(&id);
        for (tag, count) in &i.usage {
            let Some(pools) = self.pools.get_mut(&i.va) else {
                continue;
            };
            if let Some(pool) = pools.get_mut(&**tag) {
                pool.users.remove(&i.order);
                pool.total -= count;
                if pool.users.is_empty() {
                    pools.remove(&**tag);
                    if pools.is_empty() {
                        self.pools.remove(&i.va);
                    }
                    if let Some(tags) = self.tags_in_use.get_mut(&i.va) {
                        tags.remove(&**tag);
                    }
                }
            }
        }
        Some(i)
    }

    fn take(&mut self, removal: Removal) {
        match removal {
            Removal::Va(id) => {
                if let Some(va) = self.vas.remove(&id)
                    && let Some(parent) = va.parent
                    && let Some(set) = self.children.get_mut(&parent)
                {
                    set.remove(&id);
                }
                self.children.remove(&id);
                self.licenses_by_va.remove(&id);
                if let Some(tags) = self.licenses_by_tag.remove(&id) {
                    for tag in tags.keys() {
                        if let Some(vas) = self.vas_by_tag.get_mut(tag) {
                            vas.remove(&id);
                        }
                    }
                }
            }
            Removal::License(id) => {
                if let Some(l) = self.licenses.remove(&id) {
                    if let Some(set) = self.licenses_by_va.get_mut(&l.va) {
                        set.remove(&id);
                    }
                    self.unindex_tag(l.va, &l.entitlement_tag, id);
                }
            }
            Removal::Token(id) => {
                if let Some(t) = self.tokens.remove(&id) {
                    self.tokens_by_hash.remove(&t.secret_hash);
                }
            }
            Removal::User(id) => {
                self.users.remove(&id);
            }
            Removal::ApiToken(id) => {
                if let Some(t) = self.api_tokens.remove(&id) {
                    self.api_tokens_by_hash.remove(&t.secret_hash);
                }
            }
            Removal::Instance(id) => {
                self.unindex_instance(id);
            }
            Removal::Revoked(serial) => {
                self.revoked.remove(&serial);
            }
            Removal::ImportedFile(id) => {
                self.imported_files.remove(&id);
            }
            Removal::SyncedItem(key) => {
                self.synced.remove(&key);
            }
            Removal::ChildSatellite(name) => {
                self.child_sats.remove(&name);
            }
            Removal::RemoteInstance(key) => {
                self.remote_instances.remove(&key);
            }
            Removal::RemoteUsage(key) => {
                if let Some(u) = self.remote_usage.remove(&key) {
                    let pool = (u.va, u.tag);
                    if let Some(total) = self.remote_usage_by_pool.get_mut(&pool) {
                        *total = total.saturating_sub(u.units_granted);
                        if *total == 0 {
                            self.remote_usage_by_pool.remove(&pool);
                        }
                    }
                }
            }
            Removal::Reservation(id) => {
                let Some(r) = self.reservations.remove(&id) else {
                    return;
                };
                self.reservations_by_udi.remove(&(r.account, r.udi.clone()));
                if let Some(tags) = self.reserved.get_mut(&r.va) {
                    for (tag, n) in &r.entitlements {
                        if let Some(total) = tags.get_mut(tag) {
                            *total = total.saturating_sub(*n);
                            if *total == 0 {
                                tags.remove(tag);
                            }
                        }
                    }
                    if tags.is_empty() {
                        self.reserved.remove(&r.va);
                    }
                }
            }
        }
    }

    // Read access. Callers that act for a principal filter through `access` first.

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    pub fn account_by_name_or_domain(&self, key: &str) -> Option<&Account> {
        self.accounts
            .values()
            .find(|a| a.name == key || a.domain == key || a.id.to_string() == key)
    }

    pub fn va(&self, id: VaId) -> Option<&VirtualAccount> {
        self.vas.get(&id)
    }

    pub fn vas_of(&self, account: AccountId) -> impl Iterator<Item = &VirtualAccount> {
        self.vas.values().filter(move |v| v.account == account)
    }

    /// The direct children of a VA, in id order.
    pub fn children(&self, va: VaId) -> impl Iterator<Item = &VirtualAccount> {
        self.children
            .get(&va)
            .into_iter()
            .flatten()
            .filter_map(|id| self.vas.get(id))
    }

    /// The nesting level of a VA: the Default VA is level 1.
    pub fn level(&self, va: VaId) -> usize {
        self.ancestors(va).count() + 1
    }

    /// The VA's parent, its parent's parent, and so on up to the Default VA.
    pub fn ancestors(&self, va: VaId) -> impl Iterator<Item = VaId> + '_ {
        let mut next = self.vas.get(&va).and_then(|v| v.parent);
        std::iter::from_fn(move || {
            let current = next?;
            next = self.vas.get(&current).and_then(|v| v.parent);
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
            out.extend(self.children.get(&out[i]).into_iter().flatten().copied());
            i += 1;
        }
        out
    }

    /// Levels below and including `root`: 1 for a VA without children.
    pub fn subtree_height(&self, root: VaId) -> usize {
        1 + self
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
            .filter_map(|a| self.vas.get(&a).map(|v| v.name.as_str()))
            .collect();
        names.reverse();
        let Some(v) = self.vas.get(&va) else {
            return va.to_string();
        };
        names.push(&v.name);
        let account = self
            .accounts
            .get(&v.account)
            .map_or("?", |a| a.name.as_str());
        format!("{account}/{}", names.join("/"))
    }

    pub fn license(&self, id: LicenseId) -> Option<&License> {
        self.licenses.get(&id)
    }

    pub fn licenses_in(&self, va: VaId) -> impl Iterator<Item = &License> {
        self.licenses_by_va
            .get(&va)
            .into_iter()
            .flatten()
            .filter_map(|id| self.licenses.get(id))
    }

    /// The license entries of one tag in one VA.
    pub fn licenses_of(&self, va: VaId, tag: &str) -> impl Iterator<Item = &License> {
        self.licenses_by_tag
            .get(&va)
            .and_then(|tags| tags.get(tag))
            .into_iter()
            .flatten()
            .filter_map(|id| self.licenses.get(id))
    }

    /// The VAs holding any license entry of `tag`.
    pub fn vas_with_tag(&self, tag: &str) -> impl Iterator<Item = VaId> + '_ {
        self.vas_by_tag.get(tag).into_iter().flatten().copied()
    }

    pub fn token(&self, id: TokenId) -> Option<&RegistrationToken> {
        self.tokens.get(&id)
    }

    pub fn token_by_hash(&self, hash: &[u8; 32]) -> Option<&RegistrationToken> {
        self.tokens_by_hash
            .get(hash)
            .and_then(|id| self.tokens.get(id))
    }

    pub fn tokens_in(&self, va: VaId) -> impl Iterator<Item = &RegistrationToken> {
        self.tokens.values().filter(move |t| t.va == va)
    }

    pub fn user(&self, id: UserId) -> Option<&User> {
        self.users.get(&id)
    }

    pub fn user_by_name(&self, name: &str) -> Option<&User> {
        self.users
            .values()
            .find(|u| u.name == name || u.id.to_string() == name)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn api_token(&self, id: ApiTokenId) -> Option<&ApiToken> {
        self.api_tokens.get(&id)
    }

    pub fn api_token_by_hash(&self, hash: &[u8; 32]) -> Option<&ApiToken> {
        self.api_tokens_by_hash
            .get(hash)
            .and_then(|id| self.api_tokens.get(id))
    }

    pub fn api_tokens_of(&self, user: UserId) -> impl Iterator<Item = &ApiToken> {
        self.api_tokens.values().filter(move |t| t.user == user)
    }
}

impl Catalog {
    pub fn instance(&self, id: InstanceId) -> Option<&ProductInstance> {
        self.instances.get(&id).map(|b| &**b)
    }

    pub fn instance_by_udi(&self, account: AccountId, udi: &Udi) -> Option<&ProductInstance> {
        let slot = self.instances_by_udi.get(&self.udi_key(account, udi))?;
        let ids = match slot {
            UdiSlot::One(id) => std::slice::from_ref(id),
            UdiSlot::Many(ids) => ids.as_slice(),
        };
        ids.iter()
            .filter_map(|id| self.instances.get(id))
            .map(|b| &**b)
            .find(|i| i.account == account && &i.udi == udi)
    }

    fn udi_key(&self, account: AccountId, udi: &Udi) -> u64 {
        use std::hash::BuildHasher;
        self.udi_hasher.hash_one((account, udi))
    }

    /// The device whose current identity certificate has this serial.
    pub fn instance_by_serial(&self, serial: &str) -> Option<&ProductInstance> {
        self.instances_by_serial
            .get(serial)
            .and_then(|id| self.instances.get(id).map(|b| &**b))
    }

    pub fn revoked_certificate(&self, serial: &str) -> Option<&RevokedCertificate> {
        self.revoked.get(serial)
    }

    pub fn revoked_certificates(&self) -> impl Iterator<Item = &RevokedCertificate> {
        self.revoked.values()
    }

    pub fn instances_in(&self, va: VaId) -> impl Iterator<Item = &ProductInstance> {
        self.instances_by_va
            .get(&va)
            .into_iter()
            .flatten()
            .filter_map(|id| self.instances.get(id).map(|b| &**b))
    }

    /// The pool of one tag in one VA, if a device uses the tag there.
    pub(super) fn pool_of(&self, va: VaId, tag: &str) -> Option<&Pool> {
        self.pools.get(&va)?.get(tag)
    }

    pub fn instances(&self) -> impl Iterator<Item = &ProductInstance> {
        self.instances.values().map(|b| &**b)
    }

    /// Every (VA, tag) some device uses.
    pub fn pool_keys(&self) -> Vec<(VaId, String)> {
        self.pools
            .iter()
            .flat_map(|(va, tags)| tags.keys().map(|t| (*va, t.to_string())))
            .collect()
    }

    pub fn instance_count(&self) -> usize {
        self.instances.len()
    }

    pub fn instance_count_in(&self, va: VaId) -> usize {
        self.instances_by_va.get(&va).map_or(0, BTreeSet::len)
    }

    /// Devices whose last contact is before `before`, oldest first.
    pub fn silent_since(&self, before: OffsetDateTime) -> impl Iterator<Item = &ProductInstance> {
        self.by_contact
            .iter()
            .take_while(move |(t, _)| *t < contact_key(before))
            .filter_map(|(_, id)| self.instances.get(id).map(|b| &**b))
    }

    /// The latest contact of any device, for the clock's high-water mark.
    pub fn latest_contact(&self) -> Option<OffsetDateTime> {
        self.by_contact
            .last()
            .and_then(|(t, _)| OffsetDateTime::from_unix_timestamp_nanos(*t).ok())
    }

    pub fn rum_seen(&self, serial: &str, report_id: u64) -> bool {
        self.rum_seen.contains_key(&(serial.to_string(), report_id))
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
        self.imported_files
            .get(&key(issuer))
            .or_else(|| self.imported_files.get(&key("")))
    }

    /// An active reservation.
    pub fn reservation(&self, id: ReservationId) -> Option<&Reservation> {
        self.reservations.get(&id)
    }

    /// The active reservation of a device in an account.
    pub fn reservation_by_udi(&self, account: AccountId, udi: &Udi) -> Option<&Reservation> {
        self.reservations_by_udi
            .get(&(account, udi.clone()))
            .and_then(|id| self.reservations.get(id))
    }

    /// Every active reservation, in no particular order (listings, not the hot path).
    pub fn reservations(&self) -> impl Iterator<Item = &Reservation> {
        self.reservations.values()
    }

    /// Units of `tag` reserved in `va`.
    pub fn reserved(&self, va: VaId, tag: &str) -> u64 {
        self.reserved
            .get(&va)
            .and_then(|tags| tags.get(tag))
            .copied()
            .unwrap_or(0)
    }

    /// Whether any active reservation draws on `va`.
    pub fn has_reservations_in(&self, va: VaId) -> bool {
        self.reserved.contains_key(&va)
    }
}
