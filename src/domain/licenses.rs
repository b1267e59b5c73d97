//! License pools (SPEC §2, §4): adding purchased licenses, removing them, transferring units
//! between VAs of one account, and the per-VA, per-tag summary.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::access::{Access, Principal};
use super::catalog::{Catalog, Change, Record, Removal};
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{AccountId, IdSource, LicenseId, VaId};
use super::model::{License, LicenseKind, LicenseSource};
use super::units::{balance, check_units, sum_units};

/// What an operator asks for when adding a license pool entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseSpec {
    pub entitlement_tag: String,
    pub display_name: String,
    pub quantity: i64,
    pub kind: LicenseKind,
    pub export_controlled: bool,
    pub source: LicenseSource,
    pub order_ref: Option<String>,
    pub labels: BTreeSet<String>,
}

/// One line of the pool summary: a VA and a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolLine {
    pub va: VaId,
    pub entitlement_tag: String,
    pub display_name: String,
    /// Units valid now.
    pub purchased: u64,
    pub in_use: u64,
    /// `purchased - in_use`; negative when the VA is short.
    pub balance: i64,
    pub export_controlled: bool,
    /// The earliest end date among the term entries valid now.
    pub next_expiry: Option<OffsetDateTime>,
}

pub(super) fn validate_tag(tag: &str) -> Result<(), DomainError> {
    if tag.is_empty() || tag.len() > 512 || tag.chars().any(|c| c.is_control() || c == ' ') {
        return Err(DomainError::Invalid(format!(
            "entitlement tag `{tag}` must be 1 to 512 characters without spaces or control \
             characters"
        )));
    }
    Ok(())
}

impl Catalog {
    /// Adds purchased licenses to a VA. Needs write access to the whole account: purchases are
    /// an account-level act; VA administrators move licenses with transfers.
    pub fn add_license(
        &self,
        p: &Principal,
        va: VaId,
        spec: LicenseSpec,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(Change, License), DomainError> {
        let v = self.check_va(p, va, Access::Read)?;
        self.check_account(p, v.account, Access::Write)?;
        self.check_not_upstream_owned(va)?;
        validate_tag(&spec.entitlement_tag)?;
        if spec.quantity <= 0 {
            return Err(DomainError::Invalid(format!(
                "quantity must be greater than 0 (got {})",
                spec.quantity
            )));
        }
        let quantity = spec.quantity as u64;
        check_units("the quantity", quantity)?;
        self.check_license_total(va, &spec.entitlement_tag, quantity)?;
        if let LicenseKind::Term { start, end } = spec.kind
            && end <= start
        {
            return Err(DomainError::Invalid(format!(
                "a term license must end after it starts (start {start}, end {end})"
            )));
        }
        if spec.labels.iter().any(|l| l.is_empty() || l.len() > 64) {
            return Err(DomainError::Invalid(
                "labels must be 1 to 64 characters".into(),
            ));
        }
        let license = License {
            id: LicenseId::fresh(ids),
            account: v.account,
            va,
            display_name: if spec.display_name.is_empty() {
                spec.entitlement_tag.clone()
            } else {
                spec.display_name
            },
            entitlement_tag: spec.entitlement_tag,
            quantity,
            kind: spec.kind,
            export_controlled: spec.export_controlled,
            source: spec.source,
            order_ref: spec.order_ref,
            labels: spec.labels,
            created_at: now,
        };
        let event = NewEvent::new("license.add", &license.entitlement_tag)
            .account(v.account)
            .va(va)
            .detail("license", license.id)
            .detail("quantity", license.quantity)
            .detail("source", license.source.as_str());
        Ok((
            Change::new(event).put(Record::License(license.clone())),
            license,
        ))
    }

    /// Removes a pool entry, or `quantity` units of it.
    pub fn remove_license(
        &self,
        p: &Principal,
        id: LicenseId,
        quantity: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<Change, DomainError> {
        let l = self
            .stock
            .licenses
            .get(&id)
            .ok_or_else(|| DomainError::not_found("license", id))?;
        self.check_va(p, l.va, Access::Read)
            .map_err(|_| DomainError::not_found("license", id))?;
        self.check_account(p, l.account, Access::Write)?;
        self.check_not_upstream_owned(l.va)?;
        let take = quantity.unwrap_or(l.quantity as i64);
        if take <= 0 || take as u64 > l.quantity {
            return Err(DomainError::Invalid(format!(
                "cannot remove {take} unit(s) from license `{id}`, which holds {}",
                l.quantity
            )));
        }
        if l.is_valid_at(now) {
            self.check_reserved_kept(l.va, &l.entitlement_tag, take as u64, now)?;
        }
        let event = NewEvent::new("license.remove", &l.entitlement_tag)
            .account(l.account)
            .va(l.va)
            .detail("license", id)
            .detail("quantity", take);
        let change = Change::new(event);
        Ok(if take as u64 == l.quantity {
            change.remove(Removal::License(id))
        } else {
            let mut rest = l.clone();
            rest.quantity -= take as u64;
            change.put(Record::License(rest))
        })
    }

    /// Refuses taking `units` valid units of `tag` out of `va` if fewer than its reserved
    /// units would be left: reserved licenses are in use by devices that cannot be reached.
    fn check_reserved_kept(
        &self,
        va: VaId,
        tag: &str,
        units: u64,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        let reserved = self.reserved(va, tag);
        let left = self.available(va, tag, now).saturating_sub(units);
        if reserved > 0 && left < reserved {
            return Err(DomainError::Refused(format!(
                "{reserved} unit(s) of `{tag}` in `{}` are reserved for disconnected devices; \
                 taking {units} would leave {left}; return or cancel reservations first \
                 (`satellite reserve list`); nothing was changed",
                self.va_path(va)
            )));
        }
        Ok(())
    }

    /// Transfers `quantity` units of `tag` from one VA to another of the same account, keeping
    /// every entry's dates. Entries are taken oldest first (or only `only`, if given); an entry
    /// that is taken whole moves, one that is taken in part is split.
    #[allow(clippy::too_many_arguments)] // reason: each argument is one field of the operator's request
    pub fn transfer_licenses(
        &self,
        p: &Principal,
        from: VaId,
        to: VaId,
        tag: &str,
        quantity: i64,
        only: Option<LicenseId>,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<Change, DomainError> {
        let src = self.check_va(p, from, Access::Write)?;
        let dst = self.check_va(p, to, Access::Write)?;
        self.check_not_upstream_owned(from)?;
        self.check_not_upstream_owned(to)?;
        check_transfer(src.account, dst.account, from, to, quantity)?;
        let mut candidates: Vec<&License> = self
            .licenses_in(from)
            .filter(|l| l.entitlement_tag == tag && !l.is_expired_at(now))
            .filter(|l| only.is_none_or(|id| l.id == id))
            .collect();
        candidates.sort_by_key(|l| (l.created_at, l.id));
        let available = sum_units(candidates.iter().map(|l| l.quantity));
        let valid_taken = sum_units(
            candidates
                .iter()
                .filter(|l| l.is_valid_at(now))
                .map(|l| l.quantity),
        )
        .min(quantity as u64);
        self.check_reserved_kept(from, tag, valid_taken, now)?;
        if available < quantity as u64 {
            return Err(DomainError::Refused(format!(
                "cannot transfer {quantity} unit(s) of `{tag}` from `{}`: only {available} \
                 unexpired unit(s) are there",
                self.va_path(from)
            )));
        }
        self.check_license_total(to, tag, quantity as u64)?;
        let change = Change::new(
            NewEvent::new("license.transfer", tag)
                .account(src.account)
                .va(from)
                .detail("from", self.va_path(from))
                .detail("to", self.va_path(to))
                .detail("quantity", quantity),
        );
        let change = moved_entries(candidates, to, quantity as u64, ids)
            .into_iter()
            .fold(change, |change, l| change.put(Record::License(l)));
        Ok(change)
    }

    /// Units of `tag` in use in `va`: granted here (to devices and reservations) and granted
    /// by child satellites to theirs. What `license list` shows as in use.
    pub fn in_use(&self, va: VaId, tag: &str, now: OffsetDateTime) -> u64 {
        sum_units([self.granted(va, tag, now).0, self.remote_granted(va, tag)])
    }

    /// Purchased / in use / balance per tag for one VA. `in_use` tells how many units of a tag
    /// the VA's devices hold (the device registry knows; 0 without devices).
    pub fn pool(
        &self,
        va: VaId,
        now: OffsetDateTime,
        in_use: impl Fn(VaId, &str) -> u64,
    ) -> Vec<PoolLine> {
        let mut lines: BTreeMap<&str, PoolLine> = BTreeMap::new();
        for l in self.licenses_in(va) {
            let line = lines
                .entry(l.entitlement_tag.as_str())
                .or_insert_with(|| PoolLine {
                    va,
                    entitlement_tag: l.entitlement_tag.clone(),
                    display_name: l.display_name.clone(),
                    purchased: 0,
                    in_use: 0,
                    balance: 0,
                    export_controlled: l.export_controlled,
                    next_expiry: None,
                });
            line.export_controlled |= l.export_controlled;
            if l.is_valid_at(now) {
                line.purchased = sum_units([line.purchased, l.quantity]);
                if let LicenseKind::Term { end, .. } = l.kind {
                    line.next_expiry = Some(line.next_expiry.map_or(end, |e| e.min(end)));
                }
            }
        }
        lines
            .into_values()
            .map(|mut line| {
                line.in_use = in_use(va, &line.entitlement_tag);
                line.balance = balance(line.purchased, line.in_use);
                line
            })
            .collect()
    }
}

/// Refuses a transfer between accounts, to the same VA, or of a quantity out of bounds.
fn check_transfer(
    src: AccountId,
    dst: AccountId,
    from: VaId,
    to: VaId,
    quantity: i64,
) -> Result<(), DomainError> {
    if src != dst {
        return Err(DomainError::Refused(
            "licenses cannot be transferred between Smart Accounts; both virtual accounts \
             must belong to the same account"
                .into(),
        ));
    }
    if from == to {
        return Err(DomainError::Invalid(
            "source and destination virtual accounts are the same".into(),
        ));
    }
    if quantity <= 0 {
        return Err(DomainError::Invalid(format!(
            "quantity must be greater than 0 (got {quantity})"
        )));
    }
    check_units("the quantity", quantity as u64)?;
    Ok(())
}

/// The entries that move to `to`, taking `quantity` units from `candidates` in order: an entry
/// taken whole moves, the last one taken in part is split into one that stays (same id) and
/// one that moves (a fresh id).
fn moved_entries(
    candidates: Vec<&License>,
    to: VaId,
    quantity: u64,
    ids: &dyn IdSource,
) -> Vec<License> {
    let mut left = quantity;
    let mut out = Vec::new();
    for l in candidates {
        if left == 0 {
            break;
        }
        if l.quantity <= left {
            left -= l.quantity;
            out.push(License {
                va: to,
                ..l.clone()
            });
        } else {
            let stay = License {
                quantity: l.quantity - left,
                ..l.clone()
            };
            let split = License {
                id: LicenseId::fresh(ids),
                va: to,
                quantity: left,
                ..l.clone()
            };
            left = 0;
            out.extend([stay, split]);
        }
    }
    out
}
