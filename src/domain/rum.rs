//! Devices learned from Cisco RUM reports (SPEC §3b) and the trust rules of that channel.
//!
//! A RUM report carries no client identity: anyone who can reach the endpoint can name any
//! UDI in it. So a report may create and update devices that only RUM reports describe, and
//! nothing else: a device registered with protocol v1 (token and identity certificate) is
//! never changed by one, and a device in a Virtual Account dedicated to a child satellite
//! reports to that child. An envelope of reports is checked as a whole ([`Catalog::check_rum`])
//! before any of its reports is applied, so a sender cannot partially succeed.

use time::OffsetDateTime;

use super::catalog::{Catalog, Change, Record};
use super::devices::DeviceError;
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{AccountId, IdSource, InstanceId};
use super::model::{AccountStatus, InstanceSource, ProductInstance, RumRecord, Udi};

/// A Cisco RUM report reduced to what compliance needs.
#[derive(Debug, Clone)]
pub struct RumInput {
    pub report_id: u64,
    pub udi: Udi,
    pub entitlement_tag: String,
    pub count: u64,
    pub software_version: Option<String>,
    pub raw: String,
}

/// An envelope refused because it names devices registered with protocol v1: the audit
/// event to record (the refusal is written, nothing else) and the error to answer.
#[derive(Debug, Clone)]
pub struct RumRefusal {
    pub audit: Change,
    pub error: DeviceError,
}

impl Catalog {
    /// Decides a whole envelope of RUM reports for `account` before any is applied. `Err` for
    /// a refusal that changes nothing (unknown or pending account, a VA dedicated to a child);
    /// `Ok(Some(_))` when reports name devices registered with protocol v1, a refusal that is
    /// audited; `Ok(None)` when every report may be applied with [`Catalog::ingest_rum`].
    pub fn check_rum(
        &self,
        account: AccountId,
        reports: &[RumInput],
    ) -> Result<Option<RumRefusal>, DeviceError> {
        let acc = self.rum_account(account)?;
        let mut native: Vec<&ProductInstance> = Vec::new();
        for r in reports {
            match self.instance_by_udi(account, &r.udi) {
                Some(i) if i.source == InstanceSource::Native => {
                    if !native.iter().any(|n| n.id == i.id) {
                        native.push(i);
                    }
                }
                Some(i) => self.check_not_dedicated(i.va)?,
                None => self.check_not_dedicated(acc.default_va)?,
            }
        }
        let Some(first) = native.first() else {
            return Ok(None);
        };
        let udis: Vec<Udi> = native.iter().map(|i| i.udi.clone()).collect();
        let names: Vec<String> = udis.iter().map(ToString::to_string).collect();
        let ids: Vec<String> = reports.iter().map(|r| r.report_id.to_string()).collect();
        let mut event = NewEvent::new("device.rum_refused", names.join(", "))
            .account(account)
            .va(first.va)
            .detail("reason", "registered with protocol v1")
            .detail("report_ids", ids.join(","));
        // The device's own history shows the attempt when the envelope named one device.
        if let [only] = native[..] {
            event = event.device(only.id);
        }
        Ok(Some(RumRefusal {
            audit: Change::new(event),
            error: DeviceError::RegisteredNatively(udis),
        }))
    }

    /// Records a Cisco RUM report: creates the device (in the account's Default VA) if it is
    /// new, sets its usage of the report's tag, keeps the raw report. `None` for a duplicate.
    /// Refuses, like [`Catalog::check_rum`], a device registered with protocol v1 or in a VA
    /// dedicated to a child, so the rules hold for every caller.
    pub fn ingest_rum(
        &self,
        account: AccountId,
        r: &RumInput,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<Option<Change>, DeviceError> {
        let acc = self.rum_account(account)?;
        let existing = self.instance_by_udi(account, &r.udi);
        if let Some(i) = existing
            && i.source == InstanceSource::Native
        {
            return Err(DeviceError::RegisteredNatively(vec![i.udi.clone()]));
        }
        self.check_not_dedicated(existing.map_or(acc.default_va, |i| i.va))?;
        if self.rum_seen(&r.udi.serial, r.report_id) {
            return Ok(None);
        }
        let mut instance = existing
            .cloned()
            .unwrap_or_else(|| self.new_rum_instance(account, acc.default_va, &r.udi, now, ids));
        if let Some(v) = &r.software_version {
            instance.version = v.as_str().into();
        }
        if r.count > 0 {
            let old = instance
                .usage
                .get(r.entitlement_tag.as_str())
                .copied()
                .unwrap_or(0);
            self.check_requested_total(instance.va, &r.entitlement_tag, old, r.count)?;
            instance.usage.insert(r.entitlement_tag.clone(), r.count);
        } else {
            instance.usage.remove(&r.entitlement_tag);
        }
        instance.last_contact = now.into();
        instance.last_report_at = Some(now.into());
        instance.last_answer = None;
        let event = if existing.is_none() {
            NewEvent::new("device.register", &r.udi).detail("source", "cisco-rum")
        } else {
            NewEvent::new("device.rum_report", &r.udi)
        }
        .account(account)
        .va(instance.va)
        .device(instance.id)
        .detail("report_id", r.report_id);
        let record = RumRecord {
            report_id: r.report_id,
            account,
            instance: instance.id,
            udi: r.udi.clone(),
            entitlement_tag: r.entitlement_tag.clone(),
            count: r.count,
            received_at: now,
            raw: r.raw.clone(),
        };
        Ok(Some(
            Change::new(event)
                .put(Record::Instance(instance))
                .put(Record::Rum(record)),
        ))
    }

    /// The account a report is for, if reports may be received for it.
    fn rum_account(&self, account: AccountId) -> Result<&super::model::Account, DeviceError> {
        let acc = self
            .account(account)
            .ok_or_else(|| DomainError::not_found("account", account))?;
        if acc.status == AccountStatus::Pending {
            return Err(DeviceError::AccountPending(acc.name.clone()));
        }
        Ok(acc)
    }

    fn new_rum_instance(
        &self,
        account: AccountId,
        va: super::ids::VaId,
        udi: &Udi,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> ProductInstance {
        ProductInstance {
            product: udi.pid.clone(),
            ..ProductInstance::first_seen(
                InstanceId::fresh(ids),
                account,
                va,
                udi.clone(),
                InstanceSource::Rum,
                self.fleet.next_order,
                now,
            )
        }
    }
}
