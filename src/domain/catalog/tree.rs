//! The VA tree area of the catalog: accounts, Virtual Accounts and the children of each VA.
//! Only this file changes them, so a VA is always among its parent's children.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Removable, Stored};
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AccountId, VaId};
use crate::domain::model::{Account, VirtualAccount};

/// Accounts and the VA tree. Read by the other domain files; changed only here.
#[derive(Clone, Debug, Default)]
pub(in crate::domain) struct VaTree {
    pub accounts: BTreeMap<AccountId, Account>,
    pub vas: HashMap<VaId, VirtualAccount>,
    pub children: HashMap<VaId, BTreeSet<VaId>>,
}

impl VaTree {
    fn put_va(&mut self, va: VirtualAccount) {
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

    fn take_va(&mut self, id: VaId) {
        if let Some(va) = self.vas.remove(&id)
            && let Some(parent) = va.parent
            && let Some(set) = self.children.get_mut(&parent)
        {
            set.remove(&id);
        }
        self.children.remove(&id);
    }
}

impl Stored for Account {
    fn put(self, c: &mut Catalog) {
        c.tree.accounts.insert(self.id, self);
    }
}

impl Stored for VirtualAccount {
    fn put(self, c: &mut Catalog) {
        c.tree.put_va(self);
    }
}

impl Removable for VirtualAccount {
    type Key = VaId;
    /// A VA leaves the tree and the license indexes that name it.
    fn take(id: VaId, c: &mut Catalog) {
        c.tree.take_va(id);
        c.stock.forget_va(id);
    }
}
