//! Spare units elsewhere: for a shortage, the other VAs of the account that hold spare units of
//! the tag (SPEC §4, "where spare licenses are").
//!
//! A compliance report over many VAs (the alerts worker asks for every VA with devices) can
//! have thousands of short lines of the same account and tag. Asking each of them for every VA's
//! spare units costs short lines × VAs; at 1,000 VAs × 100 tags with every tenth VA short that
//! is ten million evaluations, seconds under the catalog's read lock. So one report computes,
//! per tag, every VA's spare units once and the account's list once ([`SpareMemo`]); a short
//! line then holds that shared list without its own VA ([`SpareIn`]). Ten thousand alerts
//! share a hundred lists instead of each cloning a thousand entries.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use super::super::catalog::Catalog;
use super::super::ids::{AccountId, VaId};

/// The other VAs of an account with spare units of a tag, and how many, most first (then by
/// VA id). Reads like the list itself (`iter`, `into_iter`, `==`, `Debug`); the entries are
/// shared between the lines and alerts of one report, and the line's own VA is skipped on
/// reading rather than removed, so no line copies the account's list.
#[derive(Clone, Default)]
pub struct SpareIn {
    /// Every VA of the account with spare units of the tag, in the order above.
    all: Arc<[(VaId, u64)]>,
    /// The VA whose line this is: never listed as its own source of spare units.
    except: Option<VaId>,
}

impl SpareIn {
    /// The entries, most spare units first.
    pub fn iter(&self) -> impl Iterator<Item = &(VaId, u64)> + '_ {
        let except = self.except;
        self.all.iter().filter(move |(va, _)| Some(*va) != except)
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }
}

impl From<Vec<(VaId, u64)>> for SpareIn {
    fn from(list: Vec<(VaId, u64)>) -> Self {
        SpareIn {
            all: list.into(),
            except: None,
        }
    }
}

impl PartialEq for SpareIn {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for SpareIn {}

impl fmt::Debug for SpareIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a SpareIn {
    type Item = &'a (VaId, u64);
    type IntoIter = Box<dyn Iterator<Item = &'a (VaId, u64)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl IntoIterator for SpareIn {
    type Item = (VaId, u64);
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter { list: self, at: 0 }
    }
}

/// The entries of a [`SpareIn`] by value.
pub struct IntoIter {
    list: SpareIn,
    at: usize,
}

impl Iterator for IntoIter {
    type Item = (VaId, u64);

    fn next(&mut self) -> Option<(VaId, u64)> {
        while let Some(&entry) = self.list.all.get(self.at) {
            self.at += 1;
            if Some(entry.0) != self.list.except {
                return Some(entry);
            }
        }
        None
    }
}

/// Per account, its VAs with spare units of one tag, in [`SpareIn`]'s order.
type ByAccount = HashMap<AccountId, Arc<[(VaId, u64)]>>;

/// What one compliance report has learnt of spare units: per tag, each account's VAs with
/// spare units, computed the first time a short line of that tag asks.
#[derive(Default)]
pub(in crate::domain) struct SpareMemo {
    by_tag: HashMap<String, ByAccount>,
}

impl SpareMemo {
    /// The VAs of `va`'s account other than `va` with spare units of `tag`, most first.
    pub(in crate::domain) fn elsewhere(
        &mut self,
        c: &Catalog,
        va: VaId,
        tag: &str,
        now: OffsetDateTime,
    ) -> SpareIn {
        let Some(account) = c.va(va).map(|v| v.account) else {
            return SpareIn::default();
        };
        if !self.by_tag.contains_key(tag) {
            self.by_tag
                .insert(tag.to_owned(), c.spare_by_account(tag, now));
        }
        SpareIn {
            all: self.by_tag[tag].get(&account).cloned().unwrap_or_default(),
            except: Some(va),
        }
    }
}

impl Catalog {
    /// Per account, its VAs with spare units of `tag`, most first, then by VA id: each VA's
    /// spare units computed once.
    fn spare_by_account(&self, tag: &str, now: OffsetDateTime) -> ByAccount {
        let mut lists: HashMap<AccountId, Vec<(VaId, u64)>> = HashMap::new();
        for v in self.vas_with_tag(tag) {
            let Some(account) = self.va(v).map(|x| x.account) else {
                continue;
            };
            let spare = self.spare(v, tag, now);
            if spare > 0 {
                lists.entry(account).or_default().push((v, spare));
            }
        }
        lists
            .into_iter()
            .map(|(account, mut list)| {
                list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                (account, list.into())
            })
            .collect()
    }
}
