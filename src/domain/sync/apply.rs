//! The child applies the upstream's response: acknowledgements, the pools of the dedicated
//! subtree (whole, so what is not listed is gone), and the removals and revocations the
//! upstream ordered. All of it is one change, applied atomically or not at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use time::OffsetDateTime;

use super::messages::{Applied, UpstreamLicense, UpstreamResponse};
use crate::domain::catalog::{Catalog, Change, Record, Removal};
use crate::domain::catalog::{SyncedItem, UpstreamBinding};
use crate::domain::error::DomainError;
use crate::domain::events::NewEvent;
use crate::domain::ids::{IdSource, InstanceId, LicenseId, VaId};
use crate::domain::model::{License, LicenseSource, RevokedCertificate, VirtualAccount};
use crate::domain::units::{MAX_UNITS, check_units};

impl Catalog {
    /// Applies a verified response from the upstream, atomically.
    pub fn apply_upstream_response(
        &self,
        resp: &UpstreamResponse,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(Change, Applied), DomainError> {
        let mut b = self.bound()?.clone();
        let mut change = Change::silent();
        let mut applied = Applied::default();
        acknowledge(&mut b, resp, &mut change, &mut applied);
        self.mirror_pools(&b, resp, &mut change, &mut applied, now, ids)?;
        self.remove_ordered(&b, resp, &mut change, &mut applied, now);
        self.revoke_ordered(&b, resp, &mut change, &mut applied, now);
        b.last_response_seq = resp.seq;
        b.last_success = Some(now);
        change.event = Some(
            NewEvent::new("sync.response.apply", &b.upstream)
                .account(b.account)
                .va(b.root)
                .detail("seq", resp.seq)
                .detail("acknowledged", applied.acknowledged)
                .detail("licenses_changed", applied.licenses_put)
                .detail("licenses_removed", applied.licenses_removed)
                .detail("devices_removed", applied.devices_removed),
        );
        Ok((change.put(Record::UpstreamBinding(b)), applied))
    }

    /// Pools: the response carries every VA of the subtree with its whole pool, so a license
    /// of the subtree it does not list is gone.
    fn mirror_pools(
        &self,
        b: &UpstreamBinding,
        resp: &UpstreamResponse,
        change: &mut Change,
        applied: &mut Applied,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(), DomainError> {
        let mut created: HashMap<String, VaId> = HashMap::new();
        let mut listed: BTreeSet<LicenseId> = BTreeSet::new();
        for (path, licenses) in &resp.pools {
            let va = self.mirror_va(b, path, &mut created, change, now, ids)?;
            check_upstream_pool(&b.upstream, path, licenses)?;
            for l in licenses {
                listed.insert(l.id);
                let record = self.mirrored_license(b, va, l, now);
                if self.license(l.id) != Some(&record) {
                    change.put.push(Record::License(record));
                    applied.licenses_put += 1;
                }
            }
        }
        applied.vas_created = created.len();
        for va in self.subtree(b.root) {
            for l in self.licenses_in(va) {
                if !listed.contains(&l.id) {
                    change.remove.push(Removal::License(l.id));
                    applied.licenses_removed += 1;
                }
            }
        }
        Ok(())
    }

    /// The local record of an upstream license line in `va`; it keeps its first creation time.
    fn mirrored_license(
        &self,
        b: &UpstreamBinding,
        va: VaId,
        l: &UpstreamLicense,
        now: OffsetDateTime,
    ) -> License {
        License {
            id: l.id,
            account: b.account,
            va,
            entitlement_tag: l.entitlement_tag.clone(),
            display_name: l.display_name.clone(),
            quantity: l.quantity,
            kind: l.kind,
            export_controlled: l.export_controlled,
            source: LicenseSource::Upstream,
            order_ref: l.order_ref.clone(),
            labels: l.labels.clone(),
            created_at: self.license(l.id).map_or(now, |old| old.created_at),
        }
    }

    /// Removals ordered upstream: the device leaves as if an operator removed it here.
    fn remove_ordered(
        &self,
        b: &UpstreamBinding,
        resp: &UpstreamResponse,
        change: &mut Change,
        applied: &mut Applied,
        now: OffsetDateTime,
    ) {
        for (id, reason) in &resp.removals {
            let Ok(id) = id.parse::<InstanceId>() else {
                continue;
            };
            let Some(i) = self.instance(id) else {
                continue;
            };
            if !self.in_subtree(i.va, b.root) {
                continue;
            }
            if let Ok((c, _)) = self.deregister_device(
                id,
                "device.remove",
                &format!("removal ordered by upstream {}: {reason}", b.upstream),
                now,
            ) {
                change.put.extend(c.put);
                change.remove.extend(c.remove);
                applied.devices_removed += 1;
            }
        }
    }

    /// Certificates the upstream revoked, of devices registered here.
    fn revoke_ordered(
        &self,
        b: &UpstreamBinding,
        resp: &UpstreamResponse,
        change: &mut Change,
        applied: &mut Applied,
        now: OffsetDateTime,
    ) {
        for (serial, reason) in &resp.revocations {
            if self.revoked_certificate(serial).is_none()
                && let Some(i) = self.instance_by_serial(serial)
            {
                change.put.push(Record::Revoked(RevokedCertificate {
                    serial: serial.clone(),
                    instance: i.id,
                    revoked_at: now,
                    not_after: now + time::Duration::days(366),
                    reason: format!("revoked by upstream {}: {reason}", b.upstream),
                }));
                applied.revocations += 1;
            }
        }
    }

    /// The local VA for an upstream pool path inside the dedicated subtree, created (with its
    /// missing parents) if the upstream added it since.
    fn mirror_va(
        &self,
        b: &UpstreamBinding,
        path: &str,
        created: &mut HashMap<String, VaId>,
        change: &mut Change,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<VaId, DomainError> {
        let outside = || {
            DomainError::Invalid(format!(
                "the response carries licenses for `{path}`, outside the subtree `{}` dedicated \
                 to this satellite",
                b.root_path
            ))
        };
        let rest = path
            .strip_prefix(b.root_path.as_str())
            .ok_or_else(outside)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err(outside());
        }
        let mut current = b.root;
        let mut prefix = b.root_path.clone();
        for name in rest.split('/').filter(|s| !s.is_empty()) {
            prefix = format!("{prefix}/{name}");
            if let Some(id) = created.get(&prefix) {
                current = *id;
                continue;
            }
            current = match self.children(current).find(|v| v.name == name) {
                Some(v) => v.id,
                None => {
                    let va = VirtualAccount {
                        id: VaId::fresh(ids),
                        account: b.account,
                        name: name.to_string(),
                        description: format!("managed by upstream {}", b.upstream),
                        parent: Some(current),
                        created_at: now,
                    };
                    let id = va.id;
                    created.insert(prefix.clone(), id);
                    change.put.push(Record::Va(va));
                    id
                }
            };
        }
        Ok(current)
    }
}

/// Acknowledgements: records exactly the items of the request acknowledged (a digest for what
/// the upstream now holds, nothing for what it removed).
fn acknowledge(
    b: &mut UpstreamBinding,
    resp: &UpstreamResponse,
    change: &mut Change,
    applied: &mut Applied,
) {
    let Some(out) = b.outstanding.take_if(|out| resp.acks.contains(&out.seq)) else {
        return;
    };
    for (key, digest) in out.items.iter().cloned() {
        match digest {
            Some(digest) => change
                .put
                .push(Record::SyncedItem(SyncedItem { key, digest })),
            None => change.remove.push(Removal::SyncedItem(key)),
        }
    }
    applied.acknowledged = out.items.len();
}

/// Refuses an upstream pool whose entries of one tag hold more than [`MAX_UNITS`] together
/// (the decoder already refused any single entry above it). A response carries each pool
/// whole, so these sums are exactly what the VA would hold.
fn check_upstream_pool(
    upstream: &str,
    path: &str,
    licenses: &[UpstreamLicense],
) -> Result<(), DomainError> {
    let mut totals: BTreeMap<&str, u128> = BTreeMap::new();
    for l in licenses {
        check_units(
            &format!("license `{}` from upstream {upstream}", l.id),
            l.quantity,
        )?;
        *totals.entry(&l.entitlement_tag).or_default() += u128::from(l.quantity);
    }
    match totals.into_iter().find(|(_, t)| *t > u128::from(MAX_UNITS)) {
        Some((tag, total)) => Err(DomainError::Invalid(format!(
            "upstream {upstream} sent {total} units of `{tag}` for `{path}`, more than the \
             maximum of {MAX_UNITS} per virtual account and entitlement tag; nothing was applied"
        ))),
        None => Ok(()),
    }
}
