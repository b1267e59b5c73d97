//! The upstream's side of sync: dedicating a subtree to a child satellite, the child's one-time
//! registration, removals ordered here, and the pools a response carries.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::messages::{ChildChange, Received};
use crate::domain::access::{Access, Principal};
use crate::domain::catalog::{Catalog, Change, Record, Removal};
use crate::domain::catalog::{ChildSatellite, RelayedRum, RemoteInstance, RemoteUsage};
use crate::domain::error::DomainError;
use crate::domain::events::NewEvent;
use crate::domain::ids::VaId;
use crate::domain::model::License;
use crate::domain::units::{MAX_UNITS, check_units};

fn validate_child_name(name: &str) -> Result<(), DomainError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(DomainError::Invalid(format!(
            "satellite name `{name}` must be 1-64 letters, digits, `-`, `_` or `.`"
        )));
    }
    Ok(())
}

impl Catalog {
    /// Dedicates the subtree of `va` to a new child satellite, with a registration token (its
    /// hash) the child uses once. System administrators only.
    pub fn add_child_satellite(
        &self,
        p: &Principal,
        name: &str,
        va: VaId,
        token_hash: [u8; 32],
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(Change, ChildSatellite), DomainError> {
        self.check_system(p)?;
        validate_child_name(name)?;
        let v = self
            .va(va)
            .ok_or_else(|| DomainError::not_found("virtual account", va))?;
        if self.sync.child_sats.contains_key(name) {
            return Err(DomainError::Conflict(format!(
                "a child satellite named `{name}` already exists"
            )));
        }
        if let Some(c) = self
            .sync
            .child_sats
            .values()
            .find(|c| self.in_subtree(va, c.root) || self.in_subtree(c.root, va))
        {
            return Err(DomainError::Conflict(format!(
                "virtual account `{}` overlaps `{}`, already dedicated to child satellite `{}`; \
                 a VA belongs to at most one child",
                self.va_path(va),
                self.va_path(c.root),
                c.name
            )));
        }
        if self.instance_count_in_subtree(va) > 0 {
            return Err(DomainError::Refused(format!(
                "virtual account `{}` has devices registered here; move or remove them before \
                 dedicating it to a child satellite",
                self.va_path(va)
            )));
        }
        let child = ChildSatellite {
            name: name.to_string(),
            account: v.account,
            root: va,
            token_hash,
            token_expires_at: expires_at,
            created_at: now,
            created_by: p.actor.clone(),
            key: None,
            cert_serial: None,
            registered_at: None,
            last_request_seq: 0,
            response_seq: 0,
            last_response: None,
            last_seen: None,
            pending_removals: Vec::new(),
        };
        let event = NewEvent::new("sync.child.create", name)
            .account(v.account)
            .va(va)
            .detail("va", self.va_path(va))
            .detail_time("token_expires_at", expires_at);
        Ok((
            Change::new(event).put(Record::ChildSatellite(child.clone())),
            child,
        ))
    }

    fn instance_count_in_subtree(&self, va: VaId) -> usize {
        self.subtree(va)
            .into_iter()
            .map(|v| self.instance_count_in(v))
            .sum()
    }

    /// The child satellite a registration token belongs to, if the token is usable by the
    /// satellite holding `key_hex`: unused, or used by that same key (a child whose binding
    /// failed on its side after the upstream answered may register again).
    pub fn child_by_token(
        &self,
        token_hash: &[u8; 32],
        key_hex: &str,
        now: OffsetDateTime,
    ) -> Result<&ChildSatellite, DomainError> {
        let child = self
            .sync
            .child_sats
            .values()
            .find(|c| &c.token_hash == token_hash)
            .ok_or_else(|| {
                DomainError::Refused(
                    "the satellite registration token is not known to the upstream; check it, \
                     or create one there with `satellite sync child add`"
                        .into(),
                )
            })?;
        if child.key.as_deref().is_some_and(|k| k != key_hex) {
            return Err(DomainError::Refused(format!(
                "the satellite registration token of `{}` was already used; create a new child \
                 on the upstream to bind another satellite",
                child.name
            )));
        }
        if now >= child.token_expires_at {
            return Err(DomainError::Refused(format!(
                "the satellite registration token of `{}` expired at {}; create a new one",
                child.name, child.token_expires_at
            )));
        }
        Ok(child)
    }

    /// Pins a child's key and certificate: the token is spent.
    pub fn register_child_satellite(
        &self,
        token_hash: &[u8; 32],
        key_hex: &str,
        cert_serial: &str,
        now: OffsetDateTime,
    ) -> Result<(Change, ChildSatellite), DomainError> {
        let mut child = self.child_by_token(token_hash, key_hex, now)?.clone();
        child.key = Some(key_hex.to_string());
        child.cert_serial = Some(cert_serial.to_string());
        child.registered_at = Some(now);
        let event = NewEvent::new("sync.child.register", &child.name)
            .account(child.account)
            .va(child.root)
            .detail("key", key_hex)
            .detail("certificate_serial", cert_serial);
        Ok((
            Change::new(event).put(Record::ChildSatellite(child.clone())),
            child,
        ))
    }

    /// The VA a child's message names, which must lie in the child's subtree.
    fn child_va(&self, child: &ChildSatellite, path: &str) -> Result<VaId, DomainError> {
        self.va_by_path(child.account, path)
            .filter(|va| self.in_subtree(*va, child.root))
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "the request names virtual account `{path}`, which is not dedicated to \
                     satellite `{}`",
                    child.name
                ))
            })
    }

    /// Applies a verified request from a child and records the response produced for it.
    /// Atomic: the records, the child's sequence numbers and the stored response change
    /// together, so a retried request is answered with the same response.
    pub fn apply_child_request(
        &self,
        name: &str,
        seq: u64,
        changes: &[ChildChange],
        response_seq: u64,
        response: String,
        now: OffsetDateTime,
    ) -> Result<(Change, Received), DomainError> {
        let mut child = self
            .sync
            .child_sats
            .get(name)
            .cloned()
            .ok_or_else(|| DomainError::not_found("child satellite", name))?;
        let mut change = Change::silent();
        let mut received = Received::default();
        for c in changes {
            change = self.receive(&child, c, change, &mut received, now)?;
        }
        // Devices the child reports gone need no further removal order.
        let removed: BTreeSet<&str> = changes
            .iter()
            .filter_map(|c| match c {
                ChildChange::Removal { instance_id, .. } => Some(instance_id.as_str()),
                _ => None,
            })
            .collect();
        child
            .pending_removals
            .retain(|(id, _)| !removed.contains(id.as_str()));
        child.last_request_seq = seq;
        child.response_seq = response_seq;
        child.last_response = Some(response);
        child.last_seen = Some(now);
        change.event = Some(
            NewEvent::new("sync.request.apply", name)
                .account(child.account)
                .va(child.root)
                .detail("seq", seq)
                .detail("response_seq", response_seq)
                .detail("registrations", received.registrations)
                .detail("removals", received.removals)
                .detail("usage", received.usage)
                .detail("rum_reports", received.rum_reports),
        );
        Ok((change.put(Record::ChildSatellite(child)), received))
    }

    /// Adds one change a child reported to `change`, counting it in `received`.
    fn receive(
        &self,
        child: &ChildSatellite,
        c: &ChildChange,
        change: Change,
        received: &mut Received,
        now: OffsetDateTime,
    ) -> Result<Change, DomainError> {
        let name = child.name.as_str();
        Ok(match c {
            ChildChange::Registration {
                instance_id,
                va,
                udi,
                hostname,
                product,
                version,
                registered_at,
            } => {
                received.registrations += 1;
                change.put(Record::RemoteInstance(RemoteInstance {
                    child: name.to_string(),
                    id: instance_id.clone(),
                    va: self.child_va(child, va)?,
                    udi: udi.clone(),
                    hostname: hostname.clone(),
                    product: product.clone(),
                    version: version.clone(),
                    registered_at: *registered_at,
                    received_at: now,
                }))
            }
            ChildChange::Removal { instance_id, .. } => {
                received.removals += 1;
                change.remove(Removal::RemoteInstance(RemoteInstance::key(
                    name,
                    instance_id,
                )))
            }
            ChildChange::Usage { .. } => {
                received.usage += 1;
                self.receive_usage(child, c, change)?
            }
            ChildChange::Rum {
                report_id,
                udi,
                raw,
            } => {
                received.rum_reports += 1;
                change.put(Record::RelayedRum(RelayedRum {
                    child: name.to_string(),
                    report_id: *report_id,
                    udi: udi.clone(),
                    raw: raw.clone(),
                    received_at: now,
                }))
            }
        })
    }

    /// A child's usage snapshot of one VA and tag, checked against the bounds; all zeros
    /// removes the snapshot.
    fn receive_usage(
        &self,
        child: &ChildSatellite,
        usage: &ChildChange,
        change: Change,
    ) -> Result<Change, DomainError> {
        let ChildChange::Usage {
            va,
            tag,
            devices,
            units_requested,
            units_granted,
            measured_at,
        } = usage
        else {
            return Ok(change);
        };
        let name = child.name.as_str();
        let va = self.child_va(child, va)?;
        check_child_usage(*devices, *units_requested, *units_granted)?;
        let old = self
            .sync
            .remote_usage
            .get(&RemoteUsage::key(name, va, tag))
            .map_or(0, |u| u.units_granted);
        self.check_remote_total(va, tag, old, *units_granted)?;
        if *devices == 0 && *units_requested == 0 {
            return Ok(change.remove(Removal::RemoteUsage(RemoteUsage::key(name, va, tag))));
        }
        Ok(change.put(Record::RemoteUsage(RemoteUsage {
            child: name.to_string(),
            va,
            tag: tag.clone(),
            devices: *devices,
            units_requested: *units_requested,
            units_granted: *units_granted,
            measured_at: *measured_at,
        })))
    }

    /// Orders the removal of a child's device; sent with every response until the child
    /// reports the device gone.
    pub fn order_remote_removal(
        &self,
        p: &Principal,
        instance_id: &str,
        reason: &str,
    ) -> Result<(Change, RemoteInstance), DomainError> {
        let remote = self
            .sync
            .remote_instances
            .values()
            .find(|r| r.id == instance_id)
            .filter(|r| self.va_access(p, r.va).is_some())
            .cloned()
            .ok_or_else(|| DomainError::not_found("product instance of a child", instance_id))?;
        self.check_va(p, remote.va, Access::Write)?;
        let mut child = self
            .sync
            .child_sats
            .get(&remote.child)
            .cloned()
            .ok_or_else(|| DomainError::not_found("child satellite", &remote.child))?;
        if !child
            .pending_removals
            .iter()
            .any(|(id, _)| id == instance_id)
        {
            child
                .pending_removals
                .push((instance_id.to_string(), reason.to_string()));
        }
        let event = NewEvent::new("sync.device.remove_order", instance_id)
            .account(child.account)
            .va(remote.va)
            .device(instance_id)
            .detail("child", &child.name)
            .detail("reason", reason);
        Ok((
            Change::new(event).put(Record::ChildSatellite(child)),
            remote,
        ))
    }

    /// The pools a response to `child` carries: every VA of its subtree with its licenses.
    pub fn child_pools(&self, child: &ChildSatellite) -> Vec<(String, Vec<&License>)> {
        self.subtree(child.root)
            .into_iter()
            .map(|va| {
                let mut licenses: Vec<&License> = self.licenses_in(va).collect();
                licenses.sort_by_key(|l| l.id);
                (self.domain_path(va), licenses)
            })
            .collect()
    }
}

/// A child's usage numbers, checked again here (the wire decoder checks them too): each at
/// most [`MAX_UNITS`], and no more units granted than requested.
fn check_child_usage(devices: u64, requested: u64, granted: u64) -> Result<(), DomainError> {
    if devices > MAX_UNITS {
        return Err(DomainError::Invalid(format!(
            "the number of devices is {devices}, more than the maximum of {MAX_UNITS}; nothing \
             was changed"
        )));
    }
    check_units("the units requested", requested)?;
    check_units("the units granted", granted)?;
    if granted > requested {
        return Err(DomainError::Invalid(format!(
            "the units granted ({granted}) exceed the units requested ({requested}); nothing \
             was changed"
        )));
    }
    Ok(())
}
