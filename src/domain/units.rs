//! The bound on quantities: how many units of one entitlement the satellite accepts anywhere.
//!
//! Every quantity that enters the satellite (a license entry, a transfer, a device's `count`
//! in a usage report or a RUM report, a reservation, a license file, a sync message) is at most
//! [`MAX_UNITS`], and so is every total the satellite keeps per VA and tag: the units of all
//! license entries of the tag (expired or not), the units its devices and reservations ask for
//! together, and the units children granted. An operation that would exceed a bound is refused
//! and changes nothing; wire decoders refuse larger numbers before the domain sees them.
//!
//! Why a bound and not wider integers: with every total at most 10^12, any sum compliance or
//! `license list` computes (a handful of such totals) stays far below `u64::MAX` and `i64::MAX`,
//! so no number shown can have wrapped or saturated, whatever the number of records. 10^12
//! units of one license in one VA is beyond any real deployment.

use super::catalog::Catalog;
use super::error::DomainError;
use super::ids::VaId;

/// The largest quantity of one entitlement: per license entry, per device count, per
/// reservation, and per VA and tag in total (10^12).
pub const MAX_UNITS: u64 = 1_000_000_000_000;

/// Refuses a single quantity above [`MAX_UNITS`]; `what` names it in the message.
pub(super) fn check_units(what: &str, n: u64) -> Result<(), DomainError> {
    if n > MAX_UNITS {
        return Err(DomainError::Invalid(format!(
            "{what} is {n} units, more than the maximum of {MAX_UNITS}; nothing was changed"
        )));
    }
    Ok(())
}

/// The sum of quantities, in `u128` so it is exact. Under the bounds it is at most a few
/// times [`MAX_UNITS`]; only a store written before the bounds existed can hold entries whose
/// sum does not fit, and that sum is clamped to `u64::MAX` rather than wrapped.
pub(super) fn sum_units(units: impl IntoIterator<Item = u64>) -> u64 {
    let total: u128 = units.into_iter().map(u128::from).sum();
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// `purchased - in_use`, negative when a VA is short; exact under the bounds (both are at most
/// a few times [`MAX_UNITS`]), clamped like [`sum_units`] for a store written before them.
pub(super) fn balance(purchased: u64, in_use: u64) -> i64 {
    let b = i128::from(purchased) - i128::from(in_use);
    i64::try_from(b).unwrap_or(if b < 0 { i64::MIN } else { i64::MAX })
}

/// Refuses a total above [`MAX_UNITS`]. `total` is computed in `u128` by the caller, so it is
/// exact whatever it adds up.
fn check_total(total: u128, what: impl FnOnce() -> String) -> Result<(), DomainError> {
    if total > u128::from(MAX_UNITS) {
        return Err(DomainError::Invalid(format!(
            "{} would be {total} units, more than the maximum of {MAX_UNITS} per virtual \
             account and entitlement tag; nothing was changed",
            what()
        )));
    }
    Ok(())
}

impl Catalog {
    /// Refuses adding `adding` units of license entries of `tag` to `va` if all its entries
    /// (expired or not, since validity changes with time) would then hold more than
    /// [`MAX_UNITS`].
    pub(super) fn check_license_total(
        &self,
        va: VaId,
        tag: &str,
        adding: u64,
    ) -> Result<(), DomainError> {
        let held: u128 = self
            .licenses_of(va, tag)
            .map(|l| u128::from(l.quantity))
            .sum();
        check_total(held + u128::from(adding), || {
            format!("the licenses of `{tag}` in `{}`", self.va_path(va))
        })
    }

    /// Refuses a device's new count of `tag` in `va` (replacing `old`, what the device asked
    /// for there before) if the devices and reservations of the VA would then ask for more
    /// than [`MAX_UNITS`] of the tag together.
    pub(super) fn check_requested_total(
        &self,
        va: VaId,
        tag: &str,
        old: u64,
        new: u64,
    ) -> Result<(), DomainError> {
        check_units(&format!("the count of `{tag}`"), new)?;
        let devices = self.pool_of(va, tag).map_or(0, |p| p.total);
        let total = u128::from(devices) - u128::from(old.min(devices))
            + u128::from(new)
            + u128::from(self.reserved(va, tag));
        check_total(total, || {
            format!(
                "the units of `{tag}` asked for by the devices and reservations of `{}`",
                self.va_path(va)
            )
        })
    }

    /// Refuses a child's report of `granted` units of `tag` in `va` (replacing `old`, what it
    /// reported before) if the children's grants there would then exceed [`MAX_UNITS`].
    pub(super) fn check_remote_total(
        &self,
        va: VaId,
        tag: &str,
        old: u64,
        granted: u64,
    ) -> Result<(), DomainError> {
        let all = self.remote_granted(va, tag);
        let total = u128::from(all) - u128::from(old.min(all)) + u128::from(granted);
        check_total(total, || {
            format!(
                "the units of `{tag}` granted by child satellites in `{}`",
                self.va_path(va)
            )
        })
    }
}
