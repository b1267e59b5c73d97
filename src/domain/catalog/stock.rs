//! The licenses area of the catalog: license entries, indexed by VA, by VA and tag and by tag,
//! and the license files already imported. Only this file changes them, so every index names
//! exactly the entries that exist.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Removable, Stored};
use crate::domain::catalog::Catalog;
use crate::domain::catalog::boxed::Boxed;
use crate::domain::ids::{AccountId, LicenseId, VaId};
use crate::domain::model::License;

/// A license file already imported: remembered so it cannot be imported twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedFile {
    pub file_id: String,
    pub account: AccountId,
    /// The issuer the file was signed by. Empty for a file imported before issuers were
    /// recorded (store schema 1): such a record holds its id against every issuer of its
    /// account, which is what it did then.
    pub issuer: String,
    pub imported_at: OffsetDateTime,
    /// The licenses the import added (they may have been moved or removed since).
    pub licenses: Vec<LicenseId>,
}

/// What identifies an imported file: the issuer's id for it, within one account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImportKey {
    pub account: AccountId,
    pub issuer: String,
    pub file_id: String,
}

impl ImportedFile {
    pub fn import_key(&self) -> ImportKey {
        ImportKey {
            account: self.account,
            issuer: self.issuer.clone(),
            file_id: self.file_id.clone(),
        }
    }
}

/// The license entries of one VA and tag, in id order: a sorted vector, since a VA holds
/// few entries of one tag. A `BTreeSet` allocated a node of eleven slots (192 bytes) for each
/// (VA, tag); with 1,000 VAs of 100 tags that was 19 MiB for 100,000 entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(in crate::domain) struct LicenseIds(Vec<LicenseId>);

impl LicenseIds {
    /// Adds `id` once. Small sets grow by one slot (most hold one entry), larger ones double.
    pub fn insert(&mut self, id: LicenseId) {
        if let Err(at) = self.0.binary_search(&id) {
            if self.0.len() < 8 {
                self.0.reserve_exact(1);
            }
            self.0.insert(at, id);
        }
    }

    pub fn remove(&mut self, id: &LicenseId) {
        if let Ok(at) = self.0.binary_search(id) {
            self.0.remove(at);
            if self.0.capacity() > 2 * self.0.len() {
                self.0.shrink_to_fit();
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a LicenseIds {
    type Item = &'a LicenseId;
    type IntoIter = std::slice::Iter<'a, LicenseId>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// License entries and imported files. Read by the other domain files; changed only here.
#[derive(Clone, Debug, Default)]
pub(in crate::domain) struct LicenseStock {
    /// Boxed, by the id inside each (`catalog/boxed.rs`): license ids come from outside (files,
    /// the upstream), so hashed with SipHash and a random key.
    pub licenses: Boxed<License, std::hash::RandomState>,
    pub licenses_by_va: HashMap<VaId, BTreeSet<LicenseId>>,
    /// Licenses of each VA by entitlement tag: compliance asks "units of this tag here" on
    /// every report and alert, which must not walk the VA's whole pool.
    pub licenses_by_tag: HashMap<VaId, HashMap<String, LicenseIds>>,
    /// The VAs holding any license of a tag, for "where are spare licenses".
    pub vas_by_tag: HashMap<String, BTreeSet<VaId>>,
    /// License files already imported, by account, issuer and file id.
    pub imported_files: HashMap<ImportKey, ImportedFile>,
}

impl LicenseStock {
    fn put(&mut self, l: License) {
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
        self.licenses.insert(Box::new(l));
    }

    fn take(&mut self, id: LicenseId) {
        if let Some(l) = self.licenses.remove(&id) {
            if let Some(set) = self.licenses_by_va.get_mut(&l.va) {
                set.remove(&id);
            }
            self.unindex_tag(l.va, &l.entitlement_tag, id);
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

    /// Forgets the indexes of a VA that was removed.
    pub(super) fn forget_va(&mut self, id: VaId) {
        self.licenses_by_va.remove(&id);
        if let Some(tags) = self.licenses_by_tag.remove(&id) {
            for tag in tags.keys() {
                if let Some(vas) = self.vas_by_tag.get_mut(tag) {
                    vas.remove(&id);
                }
            }
        }
    }
}

impl Stored for License {
    fn put(self, c: &mut Catalog) {
        c.stock.put(self);
    }
}

impl Removable for License {
    type Key = LicenseId;
    fn take(id: LicenseId, c: &mut Catalog) {
        c.stock.take(id);
    }
}

impl Stored for ImportedFile {
    fn put(self, c: &mut Catalog) {
        c.stock.imported_files.insert(self.import_key(), self);
    }
}

impl Removable for ImportedFile {
    type Key = ImportKey;
    fn take(key: ImportKey, c: &mut Catalog) {
        c.stock.imported_files.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::LicenseIds;
    use crate::domain::ids::LicenseId;

    fn id(n: u128) -> LicenseId {
        LicenseId(uuid::Uuid::from_u128(n))
    }

    /// Random inserts and removals against a `BTreeSet`: the same entries, in the same order,
    /// and a one-entry set holds one slot.
    #[test]
    fn license_ids_answer_like_a_set() {
        use std::collections::BTreeSet;
        let mut ids = LicenseIds::default();
        ids.insert(id(5));
        assert_eq!(ids.0.capacity(), 1);
        let mut model = BTreeSet::from([id(5)]);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = id(u128::from(x % 40));
            if x.is_multiple_of(3) {
                ids.remove(&n);
                model.remove(&n);
            } else {
                ids.insert(n);
                model.insert(n);
            }
            assert!(ids.into_iter().eq(model.iter()));
            assert_eq!(ids.is_empty(), model.is_empty());
        }
    }
}
