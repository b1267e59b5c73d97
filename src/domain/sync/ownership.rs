//! Who owns what: the upstream owns the pools and structure of a dedicated subtree, the child
//! its devices and usage. Each side refuses edits of what the other owns, and both name VAs by
//! the same paths.

use crate::domain::catalog::Catalog;
use crate::domain::catalog::{
    ChildSatellite, RelayedRum, RemoteInstance, RemoteUsage, UpstreamBinding,
};
use crate::domain::error::DomainError;
use crate::domain::ids::{AccountId, VaId};

impl Catalog {
    /// The binding to an upstream, if this satellite has one.
    pub fn upstream_binding(&self) -> Option<&UpstreamBinding> {
        self.sync.binding.as_ref()
    }

    /// Refuses a license or structure edit of a VA whose pool the upstream owns.
    pub fn check_not_upstream_owned(&self, va: VaId) -> Result<(), DomainError> {
        match &self.sync.binding {
            Some(b) if self.in_subtree(va, b.root) => Err(DomainError::Refused(format!(
                "virtual account `{}` is managed by upstream satellite `{}` ({}): its licenses \
                 and sub-accounts are changed there and arrive here with the next sync \
                 (`satellite sync now`); nothing was changed",
                self.va_path(va),
                b.upstream,
                b.url
            ))),
            _ => Ok(()),
        }
    }

    /// The child satellite a VA is dedicated to, if any.
    pub fn dedicated_to(&self, va: VaId) -> Option<&ChildSatellite> {
        self.sync
            .child_sats
            .values()
            .find(|c| self.in_subtree(va, c.root))
    }

    /// Refuses registering devices in a VA dedicated to a child: they register with the child.
    pub fn check_not_dedicated(&self, va: VaId) -> Result<(), DomainError> {
        match self.dedicated_to(va) {
            Some(c) => Err(DomainError::Refused(format!(
                "virtual account `{}` is dedicated to child satellite `{}`: its devices register \
                 there (create the token on `{}`); nothing was changed",
                self.va_path(va),
                c.name,
                c.name
            ))),
            None => Ok(()),
        }
    }

    pub fn child_satellites(&self) -> impl Iterator<Item = &ChildSatellite> {
        self.sync.child_sats.values()
    }

    pub fn child_satellite(&self, name: &str) -> Option<&ChildSatellite> {
        self.sync.child_sats.get(name)
    }

    pub fn remote_instances(&self) -> impl Iterator<Item = &RemoteInstance> {
        self.sync.remote_instances.values()
    }

    pub fn remote_usage(&self) -> impl Iterator<Item = &RemoteUsage> {
        self.sync.remote_usage.values()
    }

    /// Units of `tag` in `va` granted to the devices of child satellites.
    pub fn remote_granted(&self, va: VaId, tag: &str) -> u64 {
        self.sync
            .remote_usage_by_pool
            .get(&(va, tag.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The Cisco RUM reports children relayed, kept untouched.
    pub fn relayed_rum(&self) -> impl Iterator<Item = &RelayedRum> {
        self.sync.relayed_rum.values()
    }

    /// A VA path with the account's domain first (`example.com/Default/emea`): how sync
    /// messages name VAs, since both sides know the account by its domain.
    pub fn domain_path(&self, va: VaId) -> String {
        let path = self.va_path(va);
        let Some(v) = self.va(va) else {
            return path;
        };
        let Some(a) = self.account(v.account) else {
            return path;
        };
        match path.split_once('/') {
            Some((_, rest)) => format!("{}/{rest}", a.domain),
            None => path,
        }
    }

    /// A VA by path inside `account`: `DOMAIN/Default/...` or `NAME/Default/...` or
    /// `Default/...`.
    pub fn va_by_path(&self, account: AccountId, path: &str) -> Option<VaId> {
        let a = self.account(account)?;
        let mut parts: Vec<&str> = path.split('/').collect();
        if parts
            .first()
            .is_some_and(|s| *s == a.name || *s == a.domain)
        {
            parts.remove(0);
        }
        let mut current = None::<VaId>;
        for name in parts {
            current = match current {
                None => (name == crate::domain::DEFAULT_VA_NAME).then_some(a.default_va),
                Some(id) => self.children(id).find(|v| v.name == name).map(|v| v.id),
            };
            current?;
        }
        current
    }
}
