//! Compliance per VA and tag, and the alerts derived from it (rendered per reader).

use serde::{Deserialize, Serialize};

use crate::domain::{self, Catalog};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpareView {
    pub va: String,
    pub va_path: String,
    pub spare: u64,
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
    pub spare_in: Vec<SpareView>,
}

impl ComplianceView {
    pub fn new(c: &Catalog, l: domain::ComplianceLine) -> Self {
        ComplianceView {
            va: l.va.to_string(),
            va_path: c.va_path(l.va),
            shortage: l.shortage(),
            entitlement_tag: l.entitlement_tag,
            purchased: l.purchased,
            requested: l.requested,
            granted: l.granted,
            devices_short: l.devices_short,
            spare_in: l
                .spare_in
                .into_iter()
                .map(|(va, spare)| SpareView {
                    va: va.to_string(),
                    va_path: c.va_path(va),
                    spare,
                })
                .collect(),
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
    /// For a shortage: VAs with spare units of the tag, among those the caller may read.
    #[serde(default)]
    pub spare_in: Vec<SpareView>,
}

impl AlertView {
    /// The alert as `p` may see it (SPEC §7).
    pub fn new(c: &Catalog, a: &domain::Alert, p: &domain::Principal) -> Self {
        AlertView {
            key: a.key.clone(),
            kind: a.kind.into(),
            severity: a.severity.as_str().into(),
            account: a.account.map(|x| x.to_string()),
            va: a.va.map(|x| x.to_string()),
            message: c.alert_message(a, p),
            spare_in: a
                .spare_in
                .iter()
                .filter(|(va, _)| c.va_access(p, *va).is_some())
                .map(|&(va, spare)| SpareView {
                    va: va.to_string(),
                    va_path: c.va_path(va),
                    spare,
                })
                .collect(),
        }
    }
}
