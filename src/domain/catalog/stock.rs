//! The licenses area of the catalog: license entries, indexed by VA, by VA and tag and by tag,
//! and the license files already imported. Only this file changes them, so every index names
//! exactly the entries that exist.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Removable, Stored};
use crate::domain::catalog::Catalog;
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

/// License entries and imported files. Read by the other domain files; changed only here.
#[derive(Clone, Debug, Default)]
pub(in crate::domain) struct LicenseStock {
    pub licenses: HashMap<LicenseId, License>,
    pub licenses_by_va: HashMap<VaId, BTreeSet<LicenseId>>,
    /// Licenses of each VA by entitlement tag: compliance asks "units of this tag here" on
    /// every report and alert, which must not walk the VA's whole pool.
    pub licenses_by_tag: HashMap<VaId, HashMap<String, BTreeSet<LicenseId>>>,
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
        self.licenses.insert(l.id, l);
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
