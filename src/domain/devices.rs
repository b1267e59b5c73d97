//! The product instance lifecycle (SPEC §3, §4): registration with a token, usage reports,
//! certificate renewal, deregistration by the device, by an operator or by the expiry sweep.
//! Devices learned from Cisco RUM reports are in `rum.rs`.

use time::OffsetDateTime;

use super::access::{Access, Principal};
use super::catalog::{Catalog, Change, Record, Removal};
use super::compliance::DeviceTimers;
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{IdSource, InstanceId, VaId};
use super::model::{
    Account, AccountStatus, AuthorizationState, EntitlementStatus, InstanceSource, ProductInstance,
    RegistrationToken, RevokedCertificate, Udi,
};
use super::tokens::TokenState;

/// Why a device request was refused. Each cause maps to one stable wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("the registration token is not valid")]
    InvalidToken,
    #[error("the registration token has expired; ask the operator for a new one")]
    TokenExpired,
    #[error("the registration token has been revoked; ask the operator for a new one")]
    TokenRevoked,
    #[error("the registration token has reached its maximum number of uses")]
    TokenExhausted,
    #[error(
        "a device with this UDI is already registered as {0}; send `force: true` to re-register it"
    )]
    AlreadyRegistered(InstanceId),
    /// The UDI belongs to a device of another VA. `force` never reaches across VAs (moving a
    /// device is an operator act), and the message names nothing the token's holder cannot see.
    #[error(
        "a device with this UDI is already registered in another virtual account; `force` only \
         replaces a device in the token's own virtual account; an operator can move it with \
         `satellite device move`"
    )]
    RegisteredElsewhere,
    #[error("account `{0}` is pending approval; devices can register once it is active")]
    AccountPending(String),
    #[error("this device is not registered (it was deregistered or never existed); register again")]
    UnknownInstance,
    #[error(
        "this identity certificate has been revoked ({0}); use the newest certificate or register again"
    )]
    CertificateRevoked(String),
    #[error("report sequence {got} is older than the last accepted ({last}); send a higher seq")]
    StaleSeq { last: u64, got: u64 },
    #[error("the certificate signing request was refused: {0}")]
    BadCsr(String),
    /// A RUM report named devices registered with protocol v1 (SPEC §3b): another identity
    /// channel, which a report carrying no client identity must not change.
    #[error(
        "{} registered with protocol v1; a RUM report cannot change {}, so the whole request \
         was refused and nothing was changed (deregister the device first if it now reports \
         through RUM)",
        udi_list(.0), if .0.len() == 1 { "it" } else { "them" }
    )]
    RegisteredNatively(Vec<Udi>),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// `device A:1 is` / `devices A:1, B:2 are`, for messages.
fn udi_list(udis: &[Udi]) -> String {
    let names: Vec<String> = udis.iter().map(ToString::to_string).collect();
    match names.len() {
        1 => format!("device {} is", names[0]),
        _ => format!("devices {} are", names.join(", ")),
    }
}

/// A registration as the device asked for it; the token is already hashed.
#[derive(Debug, Clone)]
pub struct Registration {
    pub token_hash: [u8; 32],
    pub udi: Udi,
    pub hostname: String,
    pub product: String,
    pub version: String,
    pub force: bool,
}

/// The identity certificate issued for a device.
#[derive(Debug, Clone)]
pub struct IssuedIdentity {
    pub serial: String,
    pub not_after: OffsetDateTime,
}

/// What a usage report did.
#[derive(Debug, Clone)]
pub enum UsageOutcome {
    /// The `seq` was already accepted: the stored answer, nothing changed.
    Repeat(AuthorizationState),
    /// A new report: the change to make durable and the answer to give once it is.
    Applied(Change, AuthorizationState),
}

impl Catalog {
    /// Registers (or, with `force`, re-registers) a device with a token. `issue` signs the
    /// device's CSR for the instance id it is given.
    pub fn register_device(
        &self,
        r: &Registration,
        now: OffsetDateTime,
        ids: &dyn IdSource,
        issue: impl FnOnce(InstanceId) -> Result<IssuedIdentity, DeviceError>,
    ) -> Result<(Change, ProductInstance), DeviceError> {
        let (token, account) = self.registration_token(r, now)?;
        let existing = self.instance_by_udi(account.id, &r.udi);
        if let Some(e) = existing {
            if e.va != token.va {
                return Err(DeviceError::RegisteredElsewhere);
            }
            if !r.force {
                return Err(DeviceError::AlreadyRegistered(e.id));
            }
        }
        let id = existing.map_or_else(|| InstanceId::fresh(ids), |e| e.id);
        let issued = issue(id)?;
        let instance = ProductInstance {
            hostname: r.hostname.as_str().into(),
            product: r.product.as_str().into(),
            version: r.version.as_str().into(),
            token: Some(token.id),
            export_allowed: token.allow_export_controlled,
            cert_serial: Some(issued.serial.into()),
            cert_not_after: Some(issued.not_after.into()),
            ..ProductInstance::first_seen(
                id,
                account.id,
                token.va,
                r.udi.clone(),
                InstanceSource::Native,
                existing.map_or(self.fleet.next_order, |e| e.order),
                now,
            )
        };
        let mut used = token.clone();
        used.uses += 1;
        let action = if existing.is_some() {
            "device.reregister"
        } else {
            "device.register"
        };
        let event = NewEvent::new(action, &instance.udi)
            .account(account.id)
            .va(token.va)
            .device(id)
            .detail("hostname", &instance.hostname)
            .detail("token", token.id);
        let mut change = Change::new(event)
            .put(Record::Instance(instance.clone()))
            .put(Record::Token(used));
        if let Some(old) = existing.and_then(|e| revocation(e, now, "re-registered")) {
            change = change.put(Record::Revoked(old));
        }
        Ok((change, instance))
    }

    /// The token a registration names, with its account, if both may register the device now:
    /// the token is active, the account approved, and the device holds no reservation.
    fn registration_token(
        &self,
        r: &Registration,
        now: OffsetDateTime,
    ) -> Result<(&RegistrationToken, &Account), DeviceError> {
        let token = self
            .token_by_hash(&r.token_hash)
            .ok_or(DeviceError::InvalidToken)?;
        match token.state(now) {
            TokenState::Active => {}
            TokenState::Expired => return Err(DeviceError::TokenExpired),
            TokenState::Revoked => return Err(DeviceError::TokenRevoked),
            TokenState::Exhausted => return Err(DeviceError::TokenExhausted),
        }
        let account = self
            .account(token.account)
            .ok_or(DeviceError::InvalidToken)?;
        if account.status == AccountStatus::Pending {
            return Err(DeviceError::AccountPending(account.name.clone()));
        }
        // A device that holds a license reservation is counted through it; registering too
        // would count it twice. It returns the reservation first (SPEC §8b).
        if let Some(held) = self.reservation_by_udi(account.id, &r.udi) {
            return Err(DomainError::Refused(format!(
                "device {} holds license reservation {}; return it first (`satellite agent \
                 reserve-return` on the device, then `satellite reserve --return CODE`), or \
                 have an operator cancel it (`satellite reserve cancel {}`)",
                r.udi, held.id, held.id
            ))
            .into());
        }
        Ok((token, account))
    }

    /// The device presenting the certificate with `serial`.
    pub fn authenticate_device(&self, serial: &str) -> Result<&ProductInstance, DeviceError> {
        if let Some(i) = self.instance_by_serial(serial) {
            return Ok(i);
        }
        match self.revoked_certificate(serial) {
            Some(r) => Err(DeviceError::CertificateRevoked(r.reason.clone())),
            None => Err(DeviceError::UnknownInstance),
        }
    }

    /// Accepts a usage report. A repeated `seq` returns the stored answer; an older one is
    /// refused. `measured_at` differing from `now` by `clock_skew` or more flags the device.
    pub fn report_usage(
        &self,
        id: InstanceId,
        seq: u64,
        measured_at: OffsetDateTime,
        usage: &[(String, u64)],
        now: OffsetDateTime,
        timers: &DeviceTimers,
    ) -> Result<UsageOutcome, DeviceError> {
        let current = self.instance(id).ok_or(DeviceError::UnknownInstance)?;
        if let Some(last) = current.last_seq.map(super::model::Seq::get) {
            if seq == last {
                let answer = current
                    .answer()
                    .unwrap_or_else(|| self.authorization(current, now, timers));
                return Ok(UsageOutcome::Repeat(answer));
            }
            if seq < last {
                return Err(DeviceError::StaleSeq { last, got: seq });
            }
        }
        for (tag, count) in usage.iter().filter(|(_, c)| *c > 0) {
            let old = current.usage.get(tag.as_str()).copied().unwrap_or(0);
            self.check_requested_total(current.va, tag, old, *count)?;
        }
        let mut updated = reported(current, usage, seq, measured_at, now, timers);
        let answer = self.authorization(&updated, now, timers);
        updated.set_answer(&answer);
        let change = if updated.clock_skew && !current.clock_skew {
            Change::new(
                NewEvent::new("device.clock_skew", &updated.udi)
                    .account(updated.account)
                    .va(updated.va)
                    .device(id)
                    .detail_time("measured_at", measured_at)
                    .detail_time("satellite_time", now),
            )
        } else {
            Change::silent()
        };
        Ok(UsageOutcome::Applied(
            change.put(Record::Instance(updated)),
            answer,
        ))
    }

    /// The current answer for a device, recording the contact.
    pub fn contact(
        &self,
        id: InstanceId,
        now: OffsetDateTime,
        timers: &DeviceTimers,
    ) -> Result<(Change, AuthorizationState), DeviceError> {
        let current = self.instance(id).ok_or(DeviceError::UnknownInstance)?;
        let answer = self.authorization(current, now, timers);
        let mut updated = current.clone();
        updated.last_contact = now.into();
        Ok((Change::silent().put(Record::Instance(updated)), answer))
    }

    /// Replaces a device's identity certificate, revoking the old one.
    pub fn renew_device(
        &self,
        id: InstanceId,
        now: OffsetDateTime,
        issue: impl FnOnce(InstanceId) -> Result<IssuedIdentity, DeviceError>,
    ) -> Result<(Change, ProductInstance), DeviceError> {
        let current = self.instance(id).ok_or(DeviceError::UnknownInstance)?;
        let issued = issue(id)?;
        let mut updated = current.clone();
        updated.cert_serial = Some(issued.serial.as_str().into());
        updated.cert_not_after = Some(issued.not_after.into());
        updated.last_contact = now.into();
        let event = NewEvent::new("device.renew", &current.udi)
            .account(current.account)
            .va(current.va)
            .device(id)
            .detail("serial", &issued.serial);
        let mut change = Change::new(event).put(Record::Instance(updated.clone()));
        if let Some(old) = revocation(current, now, "renewed") {
            change = change.put(Record::Revoked(old));
        }
        Ok((change, updated))
    }

    /// Removes a device, releasing its licenses; `why` goes into the event.
    pub fn deregister_device(
        &self,
        id: InstanceId,
        action: &'static str,
        why: &str,
        now: OffsetDateTime,
    ) -> Result<(Change, Vec<(String, u64)>), DeviceError> {
        let current = self.instance(id).ok_or(DeviceError::UnknownInstance)?;
        let released: Vec<(String, u64)> = current
            .usage
            .iter()
            .filter(|(tag, count)| {
                self.entitlement_status(current, tag, **count, now) == EntitlementStatus::Authorized
            })
            .map(|(t, c)| (t.to_string(), *c))
            .collect();
        let mut event = NewEvent::new(action, &current.udi)
            .account(current.account)
            .va(current.va)
            .device(id)
            .detail("reason", why);
        for (tag, count) in &released {
            event = event.detail("released", format!("{tag}={count}"));
        }
        let mut change = Change::new(event).remove(Removal::Instance(id));
        if let Some(r) = revocation(current, now, "deregistered") {
            change = change.put(Record::Revoked(r));
        }
        Ok((change, released))
    }

    /// An operator removes a device.
    pub fn remove_device(
        &self,
        p: &Principal,
        id: InstanceId,
        now: OffsetDateTime,
    ) -> Result<(Change, Vec<(String, u64)>), DeviceError> {
        let current = self
            .instance(id)
            .ok_or_else(|| DomainError::not_found("product instance", id))?;
        self.check_va(p, current.va, Access::Read)
            .map_err(|_| DomainError::not_found("product instance", id))?;
        self.check_va(p, current.va, Access::Write)?;
        self.deregister_device(id, "device.remove", &format!("removed by {}", p.actor), now)
    }

    /// An operator moves a device to another VA of its account; its licenses follow the VA.
    pub fn move_device(
        &self,
        p: &Principal,
        id: InstanceId,
        to: VaId,
    ) -> Result<(Change, ProductInstance), DeviceError> {
        let current = self
            .instance(id)
            .ok_or_else(|| DomainError::not_found("product instance", id))?;
        self.check_va(p, current.va, Access::Read)
            .map_err(|_| DomainError::not_found("product instance", id))?;
        self.check_va(p, current.va, Access::Write)?;
        let target = self.check_va(p, to, Access::Write)?;
        self.check_not_dedicated(to)?;
        if target.account != current.account {
            return Err(DomainError::Refused(
                "a device cannot move to another account; register it there instead".into(),
            )
            .into());
        }
        if to == current.va {
            return Err(DomainError::Invalid("the device is already in that VA".into()).into());
        }
        for (tag, count) in &current.usage {
            self.check_requested_total(to, tag, 0, *count)?;
        }
        let mut moved = current.clone();
        moved.va = to;
        moved.last_answer = None;
        let event = NewEvent::new("device.move", &current.udi)
            .account(current.account)
            .va(to)
            .device(id)
            .detail("from", self.va_path(current.va))
            .detail("to", self.va_path(to));
        Ok((
            Change::new(event).put(Record::Instance(moved.clone())),
            moved,
        ))
    }

    /// Devices silent for longer than authorization validity plus the deregistration delay.
    pub fn devices_to_deregister(
        &self,
        now: OffsetDateTime,
        timers: &DeviceTimers,
    ) -> Vec<InstanceId> {
        let before = now - timers.authorization_valid - timers.deregister_after;
        self.silent_since(before).map(|i| i.id).collect()
    }
}

/// The device after a report: its usage and report fields replaced, the rest copied. Built
/// field by field rather than cloned whole, because a clone would copy the old usage and last
/// answer only to drop them (two maps and a vector per report); the pattern names every field,
/// so a new field of `ProductInstance` cannot be forgotten here.
fn reported(
    current: &ProductInstance,
    usage: &[(String, u64)],
    seq: u64,
    measured_at: OffsetDateTime,
    now: OffsetDateTime,
    timers: &DeviceTimers,
) -> ProductInstance {
    let ProductInstance {
        id,
        account,
        va,
        udi,
        hostname,
        product,
        version,
        source,
        registered_at,
        order,
        token,
        export_allowed,
        cert_serial,
        cert_not_after,
        last_contact: _,
        last_report_at: _,
        last_seq: _,
        last_measured_at: _,
        usage: _,
        last_answer: _,
        clock_skew: _,
    } = current;
    ProductInstance {
        id: *id,
        account: *account,
        va: *va,
        udi: udi.clone(),
        hostname: hostname.clone(),
        product: product.clone(),
        version: version.clone(),
        source: *source,
        registered_at: *registered_at,
        order: *order,
        token: *token,
        export_allowed: *export_allowed,
        cert_serial: cert_serial.clone(),
        cert_not_after: *cert_not_after,
        last_contact: now.into(),
        last_report_at: Some(now.into()),
        last_seq: Some(seq.into()),
        last_measured_at: Some(measured_at.into()),
        usage: usage
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|(t, c)| (t.clone(), *c))
            .collect(),
        last_answer: None,
        clock_skew: (measured_at - now).abs() >= timers.clock_skew,
    }
}

fn revocation(
    i: &ProductInstance,
    now: OffsetDateTime,
    reason: &str,
) -> Option<RevokedCertificate> {
    Some(RevokedCertificate {
        serial: i.cert_serial.as_deref()?.to_owned(),
        instance: i.id,
        revoked_at: now,
        not_after: i.cert_not_after.map_or(now, super::model::Stamp::get),
        reason: reason.to_string(),
    })
}

impl Catalog {
    /// Deregisters a device if it is still silent past the deadline (it may have reported
    /// since the sweep looked). `true` in the output when it was removed.
    pub fn auto_deregister(
        &self,
        id: InstanceId,
        now: OffsetDateTime,
        timers: &DeviceTimers,
    ) -> Result<(Change, bool), DeviceError> {
        let deadline = now - timers.authorization_valid - timers.deregister_after;
        match self.instance(id) {
            Some(i) if i.last_contact < deadline => {
                let days = (now - i.last_contact.get()).whole_days();
                let why = format!(
                    "no contact for {days} days (authorization expired, then the deregistration delay passed)"
                );
                let (change, _) =
                    self.deregister_device(id, "device.auto_deregister", &why, now)?;
                Ok((change, true))
            }
            _ => Ok((Change::silent(), false)),
        }
    }

    /// Removes revocations of certificates that have expired: they are refused by TLS anyway.
    pub fn prune_revocations(&self, now: OffsetDateTime) -> (Change, usize) {
        let mut change = Change::silent();
        for r in self.revoked_certificates().filter(|r| r.not_after <= now) {
            change = change.remove(Removal::Revoked(r.serial.clone()));
        }
        let n = change.remove.len();
        (change, n)
    }
}
