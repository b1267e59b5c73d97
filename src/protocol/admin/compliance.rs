//! Compliance per VA and tag, and the alerts derived from it (rendered per reader).

use serde::{Deserialize, Serialize};

use crate::domain::{self, Catalog};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpareView {
    pub va: String,
    pub va_path: String,
    pub spare: u64,
}

/// How many VAs with spare units a shortage lists, most spare first. An account of a thousand
/// VAs short of a tag in a hundred of them would otherwise list some nine hundred VAs in each of
/// its shortages: at 1,000 VAs × 100 tags, 10,000 alerts came to 1.36 GB of JSON and 20 s
/// (docs/benchmarks.md, "Spare units, listed"). The most spare come first, so the VA that can
/// cover a shortage alone, if any, is always listed.
pub const SPARE_LISTED: usize = 10;

/// The VAs of `spare` the caller may read (`visible`), the [`SPARE_LISTED`] with the most spare
/// units as views, and how many more there are.
fn spare_views(
    c: &Catalog,
    spare: &domain::SpareIn,
    visible: impl Fn(domain::VaId) -> bool,
) -> (Vec<SpareView>, usize) {
    let mut shown = spare.iter().filter(|(va, _)| visible(*va));
    let listed = shown
        .by_ref()
        .take(SPARE_LISTED)
        .map(|&(va, spare)| SpareView {
            va: va.to_string(),
            va_path: c.va_path(va),
            spare,
        })
        .collect();
    (listed, shown.count())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComplianceView {
    pub va: String,
    pub va_path: String,
    pub entitlement_tag: String,
    pub purchased: u64,
    pub requested: u64,
    pub granted: u64,
    pub shortage: u64,
    pub devices_short: usize,
    /// Other VAs with spare units of the tag, among those the caller may read: at most
    /// [`SPARE_LISTED`], most spare first.
    pub spare_in: Vec<SpareView>,
    /// How many more VAs the caller may read have spare units of the tag.
    #[serde(default)]
    pub spare_in_more: usize,
}

impl ComplianceView {
    /// The line as `p` may see it: spare units are listed only in VAs `p` may read (SPEC §7).
    pub fn new(c: &Catalog, l: domain::ComplianceLine, p: &domain::Principal) -> Self {
        let (spare_in, spare_in_more) =
            spare_views(c, &l.spare_in, |va| c.va_access(p, va).is_some());
        ComplianceView {
            va: l.va.to_string(),
            va_path: c.va_path(l.va),
            shortage: l.shortage(),
            entitlement_tag: l.entitlement_tag,
            purchased: l.purchased,
            requested: l.requested,
            granted: l.granted,
            devices_short: l.devices_short,
            spare_in,
            spare_in_more,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertView {
    pub key: String,
    pub kind: String,
    pub severity: String,
    pub account: Option<String>,
    pub va: Option<String>,
    /// Rendered for the caller: it names only VAs the caller may read.
    pub message: String,
    /// For a shortage: VAs with spare units of the tag, among those the caller may read: at
    /// most [`SPARE_LISTED`], most spare first.
    #[serde(default)]
    pub spare_in: Vec<SpareView>,
    /// How many more VAs the caller may read have spare units of the tag.
    #[serde(default)]
    pub spare_in_more: usize,
}

impl AlertView {
    /// The alert as `p` may see it (SPEC §7).
    pub fn new(c: &Catalog, a: &domain::Alert, p: &domain::Principal) -> Self {
        let (spare_in, spare_in_more) =
            spare_views(c, &a.spare_in, |va| c.va_access(p, va).is_some());
        AlertView {
            key: a.key.clone(),
            kind: a.kind.into(),
            severity: a.severity.as_str().into(),
            account: a.account.map(|x| x.to_string()),
            va: a.va.map(|x| x.to_string()),
            message: c.alert_message(a, p),
            spare_in,
            spare_in_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SpareIn, VaId};

    fn va(n: u128) -> VaId {
        VaId(uuid::Uuid::from_u128(n))
    }

    /// 25 VAs with spare units (26 down to 2, most first as the domain orders them): the view
    /// lists the ten with the most and counts the rest; a caller who may read only some of them
    /// sees only those, listed and counted, in the same order.
    #[test]
    fn a_shortage_lists_the_vas_with_the_most_spare_and_counts_the_rest() {
        let c = Catalog::default();
        let spare = SpareIn::from(
            (0..25u128)
                .map(|n| (va(n), 26 - n as u64))
                .collect::<Vec<_>>(),
        );
        let (listed, more) = spare_views(&c, &spare, |_| true);
        let units: Vec<u64> = listed.iter().map(|s| s.spare).collect();
        assert_eq!(
            units,
            (17..=26).rev().collect::<Vec<u64>>(),
            "most spare first"
        );
        assert_eq!(listed[0].va, va(0).to_string());
        assert_eq!(more, 15);

        let readable = [va(0), va(3), va(20), va(24)];
        let (listed, more) = spare_views(&c, &spare, |v| readable.contains(&v));
        let units: Vec<u64> = listed.iter().map(|s| s.spare).collect();
        assert_eq!(units, [26, 23, 6, 2], "only the VAs the caller may read");
        assert_eq!(more, 0);

        let readable: Vec<VaId> = (0..25u128).filter(|n| n % 2 == 1).map(va).collect();
        let (listed, more) = spare_views(&c, &spare, |v| readable.contains(&v));
        assert_eq!(listed.len(), SPARE_LISTED);
        assert_eq!(listed[0].spare, 25);
        assert_eq!(more, 2, "12 readable, 10 listed");
    }
}
