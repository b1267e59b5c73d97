//! License reservation for devices that can reach nothing (SPEC §8b).
//!
//! A disconnected device hands the operator a request code (its UDI and the entitlements it
//! wants); the operator reserves those units from one VA and gives the device a signed
//! authorization code; later the device's return code releases them. The codes themselves are
//! wire formats (`protocol::reservation`): they are decoded and verified at the edge, and this
//! layer sees plain input. Signing the authorization is the edge's too: [`Catalog::reserve`]
//! hands the accepted reservation to an `issue` callback (as device registration hands the
//! instance id to the certificate signer) and keeps only hashes of what it returns.
//!
//! Reserved units count as in use, before any device of the VA: compliance gives devices
//! `available - reserved` in registration order. The catalog keeps the reserved total per VA
//! and tag, so this costs nothing on the hot path.
//!
//! Refusals, each changing nothing: not enough spare units (spare = valid units − units the
//! VA's devices ask for − units already reserved), an export-controlled tag without an explicit
//! permission, a UDI that already holds a reservation in the account, a UDI registered as a
//! product instance of the account (it reports usage instead).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::access::{Access, Principal};
pub use super::catalog::Reservation;
use super::catalog::{Catalog, Change, Record, Removal};
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{IdSource, ReservationId, VaId};
use super::licenses::validate_tag;
use super::model::{Account, AccountStatus, Udi};
use super::units::check_units;

/// At most this many entitlements in one reservation.
pub const MAX_RESERVED_TAGS: usize = 64;

/// A device's verified request, as the domain needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationRequest {
    pub udi: Udi,
    pub entitlements: BTreeMap<String, u64>,
    pub nonce: String,
}

/// What the edge returns after signing an accepted reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedAuthorization {
    /// The authorization code for the device.
    pub code: String,
    pub code_sha256: [u8; 32],
    pub return_proof_sha256: [u8; 32],
}

/// What the signer needs besides the reservation itself.
#[derive(Clone, Copy, Debug)]
pub struct IssueContext<'a> {
    pub account_domain: &'a str,
    pub va_path: &'a str,
}

impl Catalog {
    /// Reserves the request's units in `va` for the device. Needs write access to the VA.
    /// `allow_export_controlled` must be set to reserve an export-controlled tag. `issue` signs
    /// the authorization code; the change stores only its hashes.
    // The request's parts, then `now` and `ids`, the inputs every operation takes.
    #[allow(clippy::too_many_arguments)]
    pub fn reserve(
        &self,
        p: &Principal,
        va: VaId,
        request: &ReservationRequest,
        allow_export_controlled: bool,
        now: OffsetDateTime,
        ids: &dyn IdSource,
        issue: impl FnOnce(&Reservation, IssueContext<'_>) -> IssuedAuthorization,
    ) -> Result<(Change, (Reservation, String)), DomainError> {
        let v = self.check_va(p, va, Access::Write)?;
        let account = self
            .account(v.account)
            .ok_or_else(|| DomainError::not_found("virtual account", va))?;
        if account.status == AccountStatus::Pending {
            return Err(DomainError::Refused(format!(
                "account `{}` is pending approval; approve it first (`satellite account approve`)",
                account.name
            )));
        }
        validate_request(request)?;
        let path = self.va_path(va);
        let udi = &request.udi;
        self.check_udi_unaccounted(p, account, udi)?;
        self.check_reservable(p, va, request, allow_export_controlled, now)?;
        let mut reservation = Reservation {
            id: ReservationId::fresh(ids),
            account: account.id,
            va,
            udi: udi.clone(),
            entitlements: request.entitlements.clone(),
            created_at: now,
            created_by: p.actor.clone(),
            request_nonce: request.nonce.clone(),
            code_sha256: [0; 32],
            return_proof_sha256: [0; 32],
        };
        let issued = issue(
            &reservation,
            IssueContext {
                account_domain: &account.domain,
                va_path: &path,
            },
        );
        reservation.code_sha256 = issued.code_sha256;
        reservation.return_proof_sha256 = issued.return_proof_sha256;
        let event = NewEvent::new("reservation.create", udi)
            .account(account.id)
            .va(va)
            .detail("reservation", reservation.id)
            .detail("entitlements", reservation.summary())
            .detail("nonce", &reservation.request_nonce);
        let change = Change::new(event).put(Record::Reservation(reservation.clone()));
        Ok((change, (reservation, issued.code)))
    }

    /// Refuses a device the account already counts: one holding a reservation, or one
    /// registered as a product instance (it reports its usage instead).
    fn check_udi_unaccounted(
        &self,
        p: &Principal,
        account: &Account,
        udi: &Udi,
    ) -> Result<(), DomainError> {
        // A reservation or registration of the UDI in a VA the caller cannot read still refuses
        // (the device would count twice) but names nothing of that VA (SPEC §7).
        let hidden = |other: VaId| self.va_access(p, other).is_none();
        if let Some(held) = self.reservation_by_udi(account.id, udi) {
            if hidden(held.va) {
                return Err(DomainError::Conflict(format!(
                    "device {udi} already holds a license reservation in another virtual \
                     account of the account; an administrator of the account can return or \
                     cancel it; nothing was reserved"
                )));
            }
            return Err(DomainError::Conflict(format!(
                "device {udi} already holds reservation {} ({}, made {} in `{}`); return it \
                 first (`satellite agent reserve-return` on the device, then `satellite reserve \
                 --return CODE`), or cancel it if the device is lost (`satellite reserve cancel \
                 {}`); nothing was reserved",
                held.id,
                held.summary(),
                held.created_at.date(),
                self.va_path(held.va),
                held.id
            )));
        }
        if let Some(i) = self.instance_by_udi(account.id, udi) {
            if hidden(i.va) {
                return Err(DomainError::Refused(format!(
                    "device {udi} is registered in another virtual account of the account: it \
                     reports its usage, which already counts its licenses; nothing was reserved"
                )));
            }
            return Err(DomainError::Refused(format!(
                "device {udi} is registered in account `{}` as product instance {} (in `{}`): \
                 it reports its usage, which already counts its licenses; reserve only for \
                 devices that can reach nothing (remove the registration first with `satellite \
                 device remove {}` if the device is now disconnected for good); nothing was \
                 reserved",
                account.name,
                i.id,
                self.va_path(i.va),
                i.id
            )));
        }
        Ok(())
    }

    /// Refuses a request for a tag the caller may not reserve or whose spare units are short.
    fn check_reservable(
        &self,
        p: &Principal,
        va: VaId,
        request: &ReservationRequest,
        allow_export_controlled: bool,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        let path = self.va_path(va);
        for (tag, &count) in &request.entitlements {
            if self.is_export_controlled(va, tag) && !allow_export_controlled {
                return Err(DomainError::Refused(format!(
                    "`{tag}` is export-controlled in `{path}`; reserving it needs an explicit \
                     permission: add --allow-export-controlled if this device may use \
                     export-controlled functionality; nothing was reserved"
                )));
            }
            self.check_requested_total(va, tag, 0, count)?;
            let spare = self.spare(va, tag, now);
            if spare < count {
                return Err(DomainError::Refused(
                    self.short_message(p, va, tag, count, now),
                ));
            }
        }
        Ok(())
    }

    /// Releases a reservation with the device's return code. `proof_sha256` is the SHA-256 of
    /// the code's proof; it must match the one stored when the authorization was issued.
    pub fn return_reservation(
        &self,
        p: &Principal,
        id: ReservationId,
        udi: &Udi,
        proof_sha256: &[u8; 32],
    ) -> Result<(Change, Reservation), DomainError> {
        let r = self.writable_reservation(p, id)?;
        if r.udi != *udi {
            return Err(DomainError::Refused(format!(
                "the return code names device {udi}, but reservation {id} is held by device {}; \
                 nothing was released",
                r.udi
            )));
        }
        if r.return_proof_sha256 != *proof_sha256 {
            return Err(DomainError::Refused(format!(
                "the return code's proof does not match the authorization code of reservation \
                 {id}: it was not produced from that code (altered, or made for another \
                 authorization); nothing was released"
            )));
        }
        let event = NewEvent::new("reservation.return", &r.udi)
            .account(r.account)
            .va(r.va)
            .detail("reservation", id)
            .detail("entitlements", r.summary());
        Ok((
            Change::new(event).remove(Removal::Reservation(id)),
            r.clone(),
        ))
    }

    /// Releases a reservation without the device (a lost or destroyed device). The device, if
    /// it still exists, keeps a valid-looking authorization code.
    pub fn cancel_reservation(
        &self,
        p: &Principal,
        id: ReservationId,
    ) -> Result<(Change, Reservation), DomainError> {
        let r = self.writable_reservation(p, id)?;
        let event = NewEvent::new("reservation.cancel", &r.udi)
            .account(r.account)
            .va(r.va)
            .detail("reservation", id)
            .detail("entitlements", r.summary());
        Ok((
            Change::new(event).remove(Removal::Reservation(id)),
            r.clone(),
        ))
    }

    /// The reservation, if `p` may change its VA; `NotFound` if it does not exist or `p`
    /// cannot see it.
    fn writable_reservation(
        &self,
        p: &Principal,
        id: ReservationId,
    ) -> Result<&Reservation, DomainError> {
        let r = self
            .reservation(id)
            .ok_or_else(|| DomainError::not_found("active reservation", id))?;
        match self.check_va(p, r.va, Access::Write) {
            Err(DomainError::NotFound { .. }) => {
                Err(DomainError::not_found("active reservation", id))
            }
            Err(e) => Err(e),
            Ok(_) => Ok(r),
        }
    }

    /// "Only N spare", naming where spare units of the tag are, among the VAs `p` may read.
    fn short_message(
        &self,
        p: &Principal,
        va: VaId,
        tag: &str,
        count: u64,
        now: OffsetDateTime,
    ) -> String {
        let path = self.va_path(va);
        let purchased = self.available(va, tag, now);
        let reserved = self.reserved(va, tag);
        let spare = self.spare(va, tag, now);
        let devices = purchased.saturating_sub(reserved).saturating_sub(spare);
        let elsewhere: Vec<String> = self
            .spare_elsewhere(va, tag, now)
            .into_iter()
            .filter(|(v, _)| self.va_access(p, *v).is_some())
            .map(|(v, n)| format!("{} ({n})", self.va_path(v)))
            .collect();
        let sees_account = self.account_access(p, self.tree.vas[&va].account).is_some();
        let fix = if elsewhere.is_empty() && sees_account {
            "no other virtual account of the account has spare units of it; add licenses \
             (`satellite license add`) or release some"
                .to_string()
        } else if elsewhere.is_empty() {
            "no other virtual account you can see has spare units of it; ask an administrator \
             of the account for licenses, or release some"
                .to_string()
        } else {
            format!(
                "spare units are in {}: transfer some (`satellite license transfer`) or reserve \
                 from there",
                elsewhere.join(", ")
            )
        };
        format!(
            "cannot reserve {count} unit(s) of `{tag}` in `{path}`: only {spare} are spare \
             ({purchased} valid, {devices} asked for by devices, {reserved} already reserved); \
             {fix}; nothing was reserved"
        )
    }
}

fn validate_request(r: &ReservationRequest) -> Result<(), DomainError> {
    let field = |name: &str, v: &str| {
        if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) {
            Err(DomainError::Invalid(format!(
                "the request's {name} must be 1 to 128 characters without control characters"
            )))
        } else {
            Ok(())
        }
    };
    field("UDI product id", &r.udi.pid)?;
    field("UDI serial number", &r.udi.serial)?;
    field("nonce", &r.nonce)?;
    if r.entitlements.is_empty() || r.entitlements.len() > MAX_RESERVED_TAGS {
        return Err(DomainError::Invalid(format!(
            "a reservation names 1 to {MAX_RESERVED_TAGS} entitlements (got {})",
            r.entitlements.len()
        )));
    }
    for (tag, &count) in &r.entitlements {
        validate_tag(tag)?;
        if count == 0 {
            return Err(DomainError::Invalid(format!(
                "the count of `{tag}` must be at least 1 (got {count})"
            )));
        }
        check_units(&format!("the count of `{tag}`"), count)?;
    }
    Ok(())
}
