//! Licenses in a VA's pools: adding, transferring, listing per VA and tag, and importing a
//! license file.

use serde::{Deserialize, Serialize};

use super::Time;
use crate::domain::{self, Catalog};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddLicense {
    pub va: String,
    pub entitlement_tag: String,
    #[serde(default)]
    pub display_name: String,
    pub quantity: i64,
    /// Term licenses give both; perpetual licenses neither.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start: Option<Time>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub end: Option<Time>,
    #[serde(default)]
    pub export_controlled: bool,
    #[serde(default)]
    pub order_ref: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferLicenses {
    pub from: String,
    pub to: String,
    pub entitlement_tag: String,
    pub quantity: i64,
    #[serde(default)]
    pub license: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LicenseView {
    pub id: String,
    pub va: String,
    pub va_path: String,
    pub entitlement_tag: String,
    pub display_name: String,
    pub quantity: u64,
    pub kind: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub start: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub end: Option<Time>,
    pub export_controlled: bool,
    pub source: String,
    pub order_ref: Option<String>,
    pub labels: Vec<String>,
}

impl LicenseView {
    pub fn new(c: &Catalog, l: &domain::License) -> Self {
        let (kind, start, end) = match l.kind {
            domain::LicenseKind::Perpetual => ("perpetual", None, None),
            domain::LicenseKind::Term { start, end } => ("term", Some(start), Some(end)),
        };
        LicenseView {
            id: l.id.to_string(),
            va: l.va.to_string(),
            va_path: c.va_path(l.va),
            entitlement_tag: l.entitlement_tag.clone(),
            display_name: l.display_name.clone(),
            quantity: l.quantity,
            kind: kind.into(),
            start,
            end,
            export_controlled: l.export_controlled,
            source: l.source.as_str().into(),
            order_ref: l.order_ref.clone(),
            labels: l.labels.iter().cloned().collect(),
        }
    }
}

/// One line of `license list`: a VA and a tag.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolLineView {
    pub va: String,
    pub va_path: String,
    pub entitlement_tag: String,
    pub display_name: String,
    pub purchased: u64,
    pub in_use: u64,
    pub balance: i64,
    pub export_controlled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_expiry: Option<Time>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LicenseList {
    pub pools: Vec<PoolLineView>,
    pub entries: Vec<LicenseView>,
}

/// The answer to `POST /v1/licenses/import`: what a license file added.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LicenseImportView {
    pub file_id: String,
    pub account: String,
    pub issuer: String,
    /// The key id of the key that signed the file.
    pub signer: String,
    pub licenses: Vec<LicenseView>,
}
