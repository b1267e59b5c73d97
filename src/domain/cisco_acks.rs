//! The Cisco reporting loop's operations (SPEC §11): planning and recording a usage export for
//! Cisco's portal, importing the ACK archive the portal returns, recording the delivery of an
//! ACK, and what the operator sees per device.
//!
//! The archive formats are wire formats (`protocol::cisco`): the edge writes and reads them and
//! this layer sees plain input. An export is decided in two steps because the raw report texts
//! live in the store, not in the catalog: [`Catalog::plan_cisco_export`] says which reports go
//! into which numbered device file, the edge reads the texts and writes the archive, and
//! [`Catalog::record_cisco_export`] records it, refusing a plan another export overtook (file
//! numbers must stay unique). Reports already exported but not acknowledged go into the next
//! export again: an upload may have been lost, and an ACK for either file acknowledges them.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::access::{Access, Principal};
use super::alerts::{Alert, Severity};
use super::catalog::{
    ByDevice, Catalog, Change, CiscoAck, CiscoExport, Delivery, ExportedFile, Record, ReportHolder,
};
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{AccountId, VaId};
use super::model::{Scope, Udi};

/// What an export covers: a whole account, or one VA and the VAs below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportScope {
    Account(AccountId),
    Va(VaId),
}

/// Which reports go into which device file of the next export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportPlan {
    pub scope: ExportScope,
    pub account: AccountId,
    /// The VA the manifest names.
    pub va: VaId,
    pub first_file_id: u64,
    pub files: Vec<PlannedFile>,
}

/// One device file: the device, who holds its reports, and the reports (with the raw text of
/// relayed ones, which the catalog keeps; own reports' texts are read from the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedFile {
    pub udi: Udi,
    pub holder: ReportHolder,
    pub reports: Vec<(u64, Option<String>)>,
}

impl ExportPlan {
    pub fn report_count(&self) -> usize {
        self.files.iter().map(|f| f.reports.len()).sum()
    }
}

/// One ACK of an archive, as the edge read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckInput {
    /// SHA-256 (hex) of `bytes`.
    pub id: String,
    pub file_id: u64,
    /// Where it was in the archive, for messages.
    pub member: String,
    pub bytes: Vec<u8>,
    pub has_policy: bool,
}

/// What an import did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AckImport {
    /// ACKs stored now.
    pub imported: Vec<CiscoAck>,
    /// ACKs that were imported before, byte for byte (nothing done for them).
    pub already: usize,
}

/// Per device, what waits for Cisco.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceReports {
    pub udi: Udi,
    pub account: AccountId,
    pub va: VaId,
    pub holder: ReportHolder,
    pub held: usize,
    pub waiting: usize,
    pub oldest_waiting: Option<OffsetDateTime>,
    pub last_ack: Option<CiscoAck>,
}

impl Catalog {
    /// The account and VA a holder's reports belong to now.
    fn holder_place(&self, h: &ReportHolder) -> Option<(AccountId, VaId)> {
        match h {
            ReportHolder::Local(i) => self.instance(*i).map(|i| (i.account, i.va)),
            ReportHolder::Child(name) => {
                self.sync.child_sats.get(name).map(|c| (c.account, c.root))
            }
        }
    }

    fn check_scope(
        &self,
        p: &Principal,
        scope: ExportScope,
    ) -> Result<(AccountId, VaId), DomainError> {
        match scope {
            ExportScope::Va(va) => self
                .check_va(p, va, Access::Write)
                .map(|v| (v.account, v.id)),
            ExportScope::Account(a) => self
                .check_account(p, a, Access::Write)
                .map(|a| (a.id, a.default_va)),
        }
    }

    fn in_scope(&self, scope: ExportScope, account: AccountId, va: VaId) -> bool {
        match scope {
            ExportScope::Va(root) => self.in_subtree(va, root),
            ExportScope::Account(a) => a == account,
        }
    }

    /// The reports of `scope` not yet acknowledged, one device file per device, devices by
    /// UDI and reports by id. Needs write access (an export is recorded). An empty plan means
    /// there is nothing to export.
    pub fn plan_cisco_export(
        &self,
        p: &Principal,
        scope: ExportScope,
    ) -> Result<ExportPlan, DomainError> {
        let (account, va) = self.check_scope(p, scope)?;
        let mut files: ByDevice<Vec<u64>> = BTreeMap::new();
        for ((serial, id), h) in &self.cisco.held {
            if self.cisco.acked.contains_key(&(serial.clone(), *id)) {
                continue;
            }
            let Some((acc, v)) = self.holder_place(&h.holder) else {
                continue;
            };
            if self.in_scope(scope, acc, v) {
                let key = (h.udi.pid.clone(), h.udi.serial.clone(), h.holder.clone());
                files.entry(key).or_default().push(*id);
            }
        }
        let files = files
            .into_iter()
            .map(|((pid, serial, holder), mut ids)| {
                ids.sort_unstable();
                let reports = ids
                    .into_iter()
                    .map(|id| (id, self.relayed_text(&holder, &serial, id)))
                    .collect();
                PlannedFile {
                    udi: Udi { pid, serial },
                    holder,
                    reports,
                }
            })
            .collect();
        Ok(ExportPlan {
            scope,
            account,
            va,
            first_file_id: self.cisco.next_file_id.max(1),
            files,
        })
    }

    fn relayed_text(&self, h: &ReportHolder, serial: &str, id: u64) -> Option<String> {
        let ReportHolder::Child(child) = h else {
            return None;
        };
        let key = super::catalog::RelayedRum::key(child, serial, id);
        self.sync.relayed_rum.get(&key).map(|r| r.raw.clone())
    }

    /// Records an export the edge wrote from `plan`, under the name it gave the file.
    pub fn record_cisco_export(
        &self,
        p: &Principal,
        plan: &ExportPlan,
        file_name: &str,
        now: OffsetDateTime,
    ) -> Result<(Change, CiscoExport), DomainError> {
        let (account, va) = self.check_scope(p, plan.scope)?;
        if plan.first_file_id != self.cisco.next_file_id.max(1) {
            return Err(DomainError::Conflict(
                "another export was recorded while this one was written; run the export again"
                    .into(),
            ));
        }
        let devices: Vec<ExportedFile> = plan
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| ExportedFile {
                file_id: plan.first_file_id + i as u64,
                udi: f.udi.clone(),
                holder: f.holder.clone(),
                report_ids: f.reports.iter().map(|(id, _)| *id).collect(),
            })
            .collect();
        let last = plan.first_file_id + devices.len().saturating_sub(1) as u64;
        let export = CiscoExport {
            first_file_id: plan.first_file_id,
            file_name: file_name.to_owned(),
            account,
            va,
            created_at: now,
            created_by: p.actor.clone(),
            devices,
        };
        let event = NewEvent::new("cisco.export", file_name)
            .account(account)
            .va(va)
            .detail("devices", plan.files.len())
            .detail("reports", plan.report_count())
            .detail("device_files", format!("{}-{last}", plan.first_file_id));
        Ok((
            Change::new(event).put(Record::CiscoExport(export.clone())),
            export,
        ))
    }

    /// Refuses a caller who may change no VA (a va-user, a metrics reader): an ACK import
    /// changes reports, and even a refused one writes an event, so it is refused before the
    /// archive is read.
    pub fn check_may_import_acks(&self, p: &Principal) -> Result<(), DomainError> {
        let writes = p.grants.iter().any(|g| match g.scope {
            Scope::Va(va) => self.va_access(p, va) == Some(Access::Write),
            Scope::Account(a) => self.account_access(p, a) == Some(Access::Write),
            Scope::System => p.is_system_admin(),
        });
        if writes {
            return Ok(());
        }
        Err(DomainError::Forbidden(format!(
            "{} may not import Cisco ACKs: it acknowledges reports, which needs write access to \
             a virtual account (va-admin, account-admin or system-admin)",
            p.actor
        )))
    }

    /// Imports the ACKs of one archive (`archive` names it in the audit log), as a whole: each
    /// must answer a device file this satellite exported, in an account `p` may write; an ACK
    /// imported before byte for byte is skipped; another ACK for a device file already
    /// acknowledged refuses the archive. Nothing is stored on a refusal.
    pub fn import_cisco_acks(
        &self,
        p: &Principal,
        archive: &str,
        acks: &[AckInput],
        now: OffsetDateTime,
    ) -> Result<(Change, AckImport), DomainError> {
        let mut out = AckImport::default();
        let mut accounts = Vec::new();
        for a in acks {
            // The export's VA and the VA its device is in now (where the ACK is kept): a
            // device moved out of the caller's scope since the export is no longer theirs.
            let entry = self.cisco.exported_file(a.file_id).filter(|(e, file)| {
                let now_in = self.holder_place(&file.holder).map_or(e.va, |(_, va)| va);
                self.va_access(p, e.va) == Some(Access::Write)
                    && self.va_access(p, now_in) == Some(Access::Write)
            });
            let Some((export, file)) = entry else {
                return Err(DomainError::Refused(format!(
                    "{:?} answers device file {}, which this satellite did not export; import \
                     the ACK archive the portal returned for an export of this satellite",
                    a.member, a.file_id
                )));
            };
            if self.cisco.acks.contains_key(&a.id) {
                out.already += 1;
                continue;
            }
            if let Some(other) = self
                .cisco
                .acked_files
                .get(&a.file_id)
                .and_then(|id| self.cisco.acks.get(id))
            {
                return Err(DomainError::Refused(format!(
                    "device file {} ({}) was already acknowledged by another ACK, imported {}; \
                     nothing was imported: give only the newer archive, or none",
                    a.file_id,
                    file.udi,
                    other.received_at.date()
                )));
            }
            let va = self
                .holder_place(&file.holder)
                .map_or(export.va, |(_, va)| va);
            accounts.push((export.account, va));
            out.imported.push(CiscoAck {
                id: a.id.clone(),
                account: export.account,
                va,
                udi: file.udi.clone(),
                holder: file.holder.clone(),
                report_ids: file.report_ids.clone(),
                file_id: Some(a.file_id),
                bytes: a.bytes.clone(),
                has_policy: a.has_policy,
                received_at: now,
                delivery: None,
            });
        }
        let reports: usize = out.imported.iter().map(|a| a.report_ids.len()).sum();
        let mut event = NewEvent::new("cisco.ack_import", archive)
            .detail("acks", out.imported.len())
            .detail("already_imported", out.already)
            .detail("reports", reports);
        if let Some((account, va)) = accounts.first() {
            event = event.account(*account);
            if accounts.iter().all(|(_, v)| v == va) {
                event = event.va(*va);
            }
        }
        let mut change = Change::new(event);
        for a in &out.imported {
            change = change.put(Record::CiscoAck(a.clone()));
        }
        Ok((change, out))
    }

    /// The audit event of a refused ACK import: the attempt is recorded, nothing else.
    pub fn cisco_ack_refusal(&self, archive: &str, reason: &str) -> Change {
        Change::new(NewEvent::new("cisco.ack_import_refused", archive).detail("reason", reason))
    }

    /// Records the outcome of delivering an ACK to its device (pull mode's `import`).
    pub fn record_cisco_delivery(
        &self,
        p: &Principal,
        ack: &str,
        ok: bool,
        detail: &str,
        now: OffsetDateTime,
    ) -> Result<(Change, CiscoAck), DomainError> {
        let a = self
            .cisco
            .acks
            .get(ack)
            .filter(|a| self.va_access(p, a.va).is_some())
            .ok_or_else(|| DomainError::not_found("ACK", ack))?;
        self.check_va(p, a.va, Access::Write)?;
        let mut a = a.clone();
        a.delivery = Some(Delivery {
            at: now,
            ok,
            detail: detail.to_owned(),
        });
        let event = if ok {
            NewEvent::new("cisco.ack_delivered", &a.udi)
        } else {
            NewEvent::new("cisco.ack_delivery_failed", &a.udi)
        };
        let mut event = event
            .account(a.account)
            .va(a.va)
            .detail("ack", &a.id)
            .detail("detail", detail);
        if let ReportHolder::Local(i) = &a.holder {
            event = event.device(i);
        }
        Ok((Change::new(event).put(Record::CiscoAck(a.clone())), a))
    }

    /// The latest ACK of the device named `udi` (`PID:SERIAL`, or the serial alone) that `p`
    /// may read, within `va`'s subtree when given.
    pub fn latest_cisco_ack(
        &self,
        p: &Principal,
        udi: &str,
        va: Option<VaId>,
    ) -> Result<&CiscoAck, DomainError> {
        let (pid, serial) = match udi.rsplit_once(':') {
            Some((pid, serial)) => (Some(pid), serial),
            None => (None, udi),
        };
        self.cisco
            .acks
            .values()
            .filter(|a| &*a.udi.serial == serial && pid.is_none_or(|pid| &*a.udi.pid == pid))
            .filter(|a| self.va_access(p, a.va).is_some())
            .filter(|a| va.is_none_or(|root| self.in_subtree(a.va, root)))
            .max_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)))
            .ok_or_else(|| DomainError::NotFound {
                what: "ACK for device",
                id: udi.to_owned(),
            })
    }

    /// Per device whose reports `p` may read (within `va`'s subtree when given): reports held,
    /// waiting for an ACK, the oldest waiting, the last ACK. Ordered by UDI.
    pub fn cisco_report_status(&self, p: &Principal, va: Option<VaId>) -> Vec<DeviceReports> {
        let mut out: ByDevice<DeviceReports> = BTreeMap::new();
        for ((serial, id), h) in &self.cisco.held {
            let Some((account, v)) = self.holder_place(&h.holder) else {
                continue;
            };
            if self.va_access(p, v).is_none() || va.is_some_and(|root| !self.in_subtree(v, root)) {
                continue;
            }
            let key = (h.udi.pid.clone(), h.udi.serial.clone(), h.holder.clone());
            let d = out.entry(key).or_insert_with(|| DeviceReports {
                udi: h.udi.clone(),
                account,
                va: v,
                holder: h.holder.clone(),
                held: 0,
                waiting: 0,
                oldest_waiting: None,
                last_ack: None,
            });
            d.held += 1;
            if !self.cisco.acked.contains_key(&(serial.clone(), *id)) {
                d.waiting += 1;
                d.oldest_waiting = Some(
                    d.oldest_waiting
                        .map_or(h.received_at, |t| t.min(h.received_at)),
                );
            }
        }
        for a in self.cisco.acks.values() {
            let key = (a.udi.pid.clone(), a.udi.serial.clone(), a.holder.clone());
            if let Some(d) = out.get_mut(&key)
                && d.last_ack
                    .as_ref()
                    .is_none_or(|l| (l.received_at, &l.id) < (a.received_at, &a.id))
            {
                d.last_ack = Some(a.clone());
            }
        }
        out.into_values().collect()
    }
}

/// An ACK that came down from the upstream satellite, as the edge read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAck {
    /// SHA-256 (hex) of `bytes`.
    pub id: String,
    pub udi: Udi,
    pub report_ids: Vec<u64>,
    pub bytes: Vec<u8>,
    pub has_policy: bool,
}

impl Catalog {
    /// The ACKs to send down to child satellite `child` in its next response: those for
    /// reports it relayed, not sent yet, oldest first.
    pub fn cisco_acks_for_child(&self, child: &str) -> Vec<&CiscoAck> {
        let mut out: Vec<&CiscoAck> = self
            .cisco
            .acks
            .values()
            .filter(|a| matches!(&a.holder, ReportHolder::Child(c) if c == child))
            .filter(|a| a.delivery.is_none())
            .collect();
        out.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
        out
    }

    /// `change` and, in it, the ACKs `sent` marked as sent down to `child` in response `seq`:
    /// a response is sent again byte for byte until the child applies it, so once in a
    /// response an ACK reaches the child.
    pub fn mark_cisco_acks_sent(
        &self,
        mut change: Change,
        sent: &[String],
        child: &str,
        seq: u64,
        now: OffsetDateTime,
    ) -> Change {
        for id in sent {
            if let Some(a) = self.cisco.acks.get(id) {
                let mut a = a.clone();
                a.delivery = Some(Delivery {
                    at: now,
                    ok: true,
                    detail: format!("sent to child satellite {child} in sync response {seq}"),
                });
                change = change.put(Record::CiscoAck(a));
            }
        }
        if let Some(e) = change.event.as_mut()
            && !sent.is_empty()
        {
            e.details
                .push(("cisco_acks".into(), sent.len().to_string()));
        }
        change
    }

    /// `change` and, in it, the ACKs the upstream sent, stored as this satellite's own for the
    /// holder of their reports here (an own device, or the child to pass them to). An ACK held
    /// already is skipped, and so is one for reports this satellite does not hold or holds
    /// outside the subtree bound to the upstream.
    pub fn receive_cisco_acks(
        &self,
        mut change: Change,
        acks: &[ReceivedAck],
        now: OffsetDateTime,
    ) -> Change {
        let mut stored = 0;
        for a in acks {
            if self.cisco.acks.contains_key(&a.id) {
                continue;
            }
            let holder = a
                .report_ids
                .iter()
                .find_map(|id| self.cisco.held.get(&(a.udi.serial.to_string(), *id)))
                .map(|h| h.holder.clone());
            let Some((holder, (account, va))) =
                holder.and_then(|h| self.holder_place(&h).map(|place| (h, place)))
            else {
                continue;
            };
            // Only reports of the subtree the upstream manages went up to it; an ACK for
            // another device's reports is not the upstream's to give (nor to mark acknowledged).
            let managed = self.sync.binding.as_ref();
            if !managed.is_some_and(|b| self.in_subtree(va, b.root)) {
                continue;
            }
            stored += 1;
            change = change.put(Record::CiscoAck(CiscoAck {
                id: a.id.clone(),
                account,
                va,
                udi: a.udi.clone(),
                holder,
                report_ids: a.report_ids.clone(),
                file_id: None,
                bytes: a.bytes.clone(),
                has_policy: a.has_policy,
                received_at: now,
                delivery: None,
            }));
        }
        if let Some(e) = change.event.as_mut()
            && stored > 0
        {
            e.details.push(("cisco_acks".into(), stored.to_string()));
        }
        change
    }
}

impl Catalog {
    /// `cisco_ack_overdue` per device whose oldest report waiting for Cisco's ACK is older
    /// than `days` days (0: no alert).
    pub(super) fn cisco_ack_alerts(&self, now: OffsetDateTime, days: u32, out: &mut Vec<Alert>) {
        if days == 0 {
            return;
        }
        let limit = now - time::Duration::days(i64::from(days));
        let mut oldest: ByDevice<(OffsetDateTime, usize)> = BTreeMap::new();
        for ((serial, id), h) in &self.cisco.held {
            if self.cisco.acked.contains_key(&(serial.clone(), *id)) {
                continue;
            }
            let key = (h.udi.pid.clone(), h.udi.serial.clone(), h.holder.clone());
            let entry = oldest.entry(key).or_insert((h.received_at, 0));
            entry.0 = entry.0.min(h.received_at);
            entry.1 += 1;
        }
        for ((pid, serial, holder), (since, waiting)) in oldest {
            let Some((account, va)) = self.holder_place(&holder) else {
                continue;
            };
            if since >= limit {
                continue;
            }
            out.push(Alert {
                key: format!("cisco_ack_overdue:{serial}"),
                kind: "cisco_ack_overdue",
                severity: Severity::Warning,
                account: Some(account),
                va: Some(va),
                spare_in: Default::default(),
                message: format!(
                    "device {pid}:{serial} in {} has {waiting} RUM reports waiting for Cisco's \
                     ACK since {} (more than {days} days): export them with `satellite cisco \
                     export`, upload the file to Cisco's portal and import the ACK archive it \
                     returns",
                    self.va_path(va),
                    since.date()
                ),
            });
        }
    }
}
