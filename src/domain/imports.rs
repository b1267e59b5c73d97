//! License files for disconnected satellites (SPEC §8, "Disconnected"): licenses issued
//! elsewhere, signed by a key the configuration trusts, imported with `license import FILE`.
//!
//! The signature, the signer and the file's account were checked at the edge (the protocol's
//! `open`); this layer sees only the verified content as plain domain input. It checks what the
//! catalog knows: the account exists and the caller may buy licenses for it, every VA the file
//! names exists in that account, and the file was not imported before. A file is one-shot: its
//! `file_id` is remembered as an [`ImportedFile`] record, so importing it again is refused even
//! after its licenses were moved or removed. All licenses of a file are added in one change.
//!
//! A file id is unique per issuer and account ([`ImportKey`]): issuers number their files as they
//! like, so two accounts (tenants) may each import a file `order-1`, and one tenant's refusal
//! never tells it that another used an id.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::access::{Access, Principal};
use super::catalog::{Catalog, Change, Record};
pub use super::catalog::{ImportKey, ImportedFile};
use super::error::DomainError;
use super::events::NewEvent;
use super::ids::{AccountId, IdSource, VaId};
use super::licenses::LicenseSpec;
use super::model::{License, LicenseSource};

/// A verified license file, as the domain needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseImport {
    /// Unique per file of one issuer for one account; a file can be imported once.
    pub file_id: String,
    /// The issuer's name, as the configuration trusts its key.
    pub issuer: String,
    /// Who signed it, for the audit log (issuer name and key id).
    pub signer: String,
    /// The account the licenses belong to, by domain.
    pub account_domain: String,
    pub grants: Vec<ImportGrant>,
}

/// Licenses for one VA of the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportGrant {
    /// `Default/child/...`, optionally preceded by the account's name or domain.
    pub va: String,
    pub licenses: Vec<LicenseSpec>,
}

impl Catalog {
    /// Adds every license of a verified license file, atomically, with source `Import`. Needs
    /// write access to the file's account (account-admin or system-admin).
    pub fn import_licenses(
        &self,
        p: &Principal,
        file: &LicenseImport,
        now: OffsetDateTime,
        ids: &dyn IdSource,
    ) -> Result<(Change, Vec<License>), DomainError> {
        let account = self
            .account_by_name_or_domain(&file.account_domain)
            .filter(|a| a.domain == file.account_domain)
            .filter(|a| self.account_visible(p, a.id))
            .ok_or_else(|| DomainError::not_found("account", &file.account_domain))?;
        let account = self.check_account(p, account.id, Access::Write)?;
        if let Some(done) = self.imported_file(account.id, &file.issuer, &file.file_id) {
            return Err(DomainError::Conflict(format!(
                "license file `{}` of issuer `{}` was already imported into account `{}` on {}; \
                 nothing was changed",
                file.file_id,
                file.issuer,
                account.name,
                done.imported_at.date()
            )));
        }
        if file.grants.iter().all(|g| g.licenses.is_empty()) {
            return Err(DomainError::Invalid(
                "the license file grants no licenses".into(),
            ));
        }
        let mut licenses = Vec::new();
        // Units the file adds per VA and tag so far: each line is checked against the bound
        // together with the lines before it, not only against what the VA already holds.
        let mut adding: HashMap<(VaId, &str), u64> = HashMap::new();
        for (i, grant) in file.grants.iter().enumerate() {
            let va = self.import_va(account.id, &grant.va).ok_or_else(|| {
                DomainError::Refused(format!(
                    "the license file grants licenses to virtual account `{}`, which account \
                     `{}` does not have; create it first (`satellite va create`) or get a file \
                     for an existing virtual account; nothing was imported",
                    grant.va, account.name
                ))
            })?;
            for (j, spec) in grant.licenses.iter().enumerate() {
                let mut spec = spec.clone();
                spec.source = LicenseSource::Import;
                let at = |e| match e {
                    DomainError::Invalid(m) => {
                        DomainError::Invalid(format!("grants[{i}].licenses[{j}]: {m}"))
                    }
                    other => other,
                };
                let (_, license) = self.add_license(p, va, spec, now, ids).map_err(at)?;
                let units = adding
                    .entry((va, &grant.licenses[j].entitlement_tag))
                    .or_default();
                *units += license.quantity;
                self.check_license_total(va, &license.entitlement_tag, *units)
                    .map_err(at)?;
                licenses.push(license);
            }
        }
        let record = ImportedFile {
            file_id: file.file_id.clone(),
            account: account.id,
            issuer: file.issuer.clone(),
            imported_at: now,
            licenses: licenses.iter().map(|l| l.id).collect(),
        };
        let event = NewEvent::new("license.import", &file.file_id)
            .account(account.id)
            .detail("file", &file.file_id)
            .detail("signer", &file.signer)
            .detail("count", licenses.len());
        let mut change = Change::new(event).put(Record::ImportedFile(record));
        for l in &licenses {
            change = change.put(Record::License(l.clone()));
        }
        Ok((change, licenses))
    }

    /// The VA a license file names, inside `account`: `Default/...`, optionally preceded by the
    /// account's name or domain, or a VA id of that account.
    fn import_va(&self, account: AccountId, path: &str) -> Option<VaId> {
        if let Ok(id) = path.parse::<VaId>() {
            return self.va(id).filter(|v| v.account == account).map(|v| v.id);
        }
        self.va_by_path(account, path)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::domain::{LicenseKind, Role, RoleGrant, Scope};

    const NOW: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

    static IDS: crate::domain::SequentialIds = crate::domain::SequentialIds::new();

    fn admin() -> Principal {
        Principal::system("test-admin")
    }

    fn apply<T>(r: Result<(Change, T), DomainError>, c: &mut Catalog) -> T {
        let (change, value) = r.expect("accepted");
        c.apply(&change);
        value
    }

    fn setup() -> (Catalog, VaId) {
        let mut c = Catalog::new();
        let a = apply(
            c.create_account(&admin(), "acme", "acme.example", NOW, &IDS),
            &mut c,
        );
        let va = apply(
            c.create_va(&admin(), a.default_va, "lab", "", NOW, &IDS),
            &mut c,
        );
        (c, va.id)
    }

    fn line(tag: &str, qty: i64) -> LicenseSpec {
        LicenseSpec {
            entitlement_tag: tag.into(),
            display_name: String::new(),
            quantity: qty,
            kind: LicenseKind::Perpetual,
            export_controlled: false,
            source: LicenseSource::Manual,
            order_ref: Some("SO-9".into()),
            labels: Default::default(),
        }
    }

    fn file(id: &str, va: &str) -> LicenseImport {
        LicenseImport {
            file_id: id.into(),
            issuer: "portal".into(),
            signer: "portal (abcd)".into(),
            account_domain: "acme.example".into(),
            grants: vec![ImportGrant {
                va: va.into(),
                licenses: vec![line("tag-a", 5), line("tag-b", 2)],
            }],
        }
    }

    #[test]
    fn import_adds_every_license_with_source_import_and_one_event() {
        let (mut c, lab) = setup();
        let (change, added) = c
            .import_licenses(&admin(), &file("f-1", "Default/lab"), NOW, &IDS)
            .expect("imported");
        assert_eq!(added.len(), 2);
        assert!(
            added
                .iter()
                .all(|l| l.source == LicenseSource::Import && l.va == lab)
        );
        let event = change.event.as_ref().expect("one event");
        assert_eq!(event.action, "license.import");
        assert!(event.details.contains(&("count".into(), "2".into())));
        assert!(event.details.contains(&("file".into(), "f-1".into())));
        c.apply(&change);
        assert_eq!(c.licenses_in(lab).count(), 2);
        let account = c.va(lab).expect("va").account;
        let done = c
            .imported_file(account, "portal", "f-1")
            .expect("remembered");
        assert_eq!(done.licenses.len(), 2);
        // The account name may prefix the path.
        apply(
            c.import_licenses(&admin(), &file("f-2", "acme/Default/lab"), NOW, &IDS),
            &mut c,
        );
        assert_eq!(c.licenses_in(lab).count(), 4);
    }

    #[test]
    fn a_second_import_of_the_same_file_is_refused() {
        let (mut c, lab) = setup();
        apply(
            c.import_licenses(&admin(), &file("f-1", "Default/lab"), NOW, &IDS),
            &mut c,
        );
        let e = c
            .import_licenses(&admin(), &file("f-1", "Default/lab"), NOW, &IDS)
            .expect_err("refused");
        assert!(
            matches!(&e, DomainError::Conflict(m) if m.contains(
                "`f-1` of issuer `portal` was already imported into account `acme` on 2026-01-01"
            )),
            "{e:?}"
        );
        assert_eq!(c.licenses_in(lab).count(), 2);
    }

    #[test]
    fn file_ids_are_unique_per_issuer_and_account_only() {
        let (mut c, lab) = setup();
        let other = apply(
            c.create_account(&admin(), "globex", "globex.example", NOW, &IDS),
            &mut c,
        );
        apply(
            c.import_licenses(&admin(), &file("order-1", "Default/lab"), NOW, &IDS),
            &mut c,
        );
        // Another account's file of the same id, and another issuer's for the same account.
        let mut theirs = file("order-1", "Default");
        theirs.account_domain = "globex.example".into();
        apply(c.import_licenses(&admin(), &theirs, NOW, &IDS), &mut c);
        let mut vendor = file("order-1", "Default/lab");
        vendor.issuer = "vendor".into();
        apply(c.import_licenses(&admin(), &vendor, NOW, &IDS), &mut c);
        assert_eq!(c.licenses_in(lab).count(), 4);
        assert_eq!(c.licenses_in(other.default_va).count(), 2);
        for f in [file("order-1", "Default/lab"), theirs, vendor] {
            let e = c
                .import_licenses(&admin(), &f, NOW, &IDS)
                .expect_err("refused");
            assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
        }
    }

    #[test]
    fn a_file_recorded_without_its_issuer_holds_its_id_for_every_issuer_of_the_account() {
        let (mut c, lab) = setup();
        let account = c.va(lab).expect("va").account;
        // As a store of schema 1 loads it: no issuer.
        let legacy = ImportedFile {
            file_id: "order-1".into(),
            account,
            issuer: String::new(),
            imported_at: NOW,
            licenses: Vec::new(),
        };
        c.apply(&Change::new(NewEvent::new("test", "")).put(Record::ImportedFile(legacy)));
        let e = c
            .import_licenses(&admin(), &file("order-1", "Default/lab"), NOW, &IDS)
            .expect_err("refused");
        assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
        apply(
            c.import_licenses(&admin(), &file("order-2", "Default/lab"), NOW, &IDS),
            &mut c,
        );
    }

    #[test]
    fn an_unknown_va_is_refused_by_name_and_nothing_is_added() {
        let (c, lab) = setup();
        let mut f = file("f-1", "Default/lab");
        f.grants.push(ImportGrant {
            va: "Default/nowhere".into(),
            licenses: vec![line("tag-c", 1)],
        });
        let e = c
            .import_licenses(&admin(), &f, NOW, &IDS)
            .expect_err("refused");
        assert!(
            matches!(&e, DomainError::Refused(m) if m.contains("`Default/nowhere`")),
            "{e:?}"
        );
        assert_eq!(c.licenses_in(lab).count(), 0);
        let account = c.va(lab).expect("va").account;
        assert!(c.imported_file(account, "portal", "f-1").is_none());
    }

    #[test]
    fn an_unknown_account_and_a_bad_line_are_refused() {
        let (c, _) = setup();
        let mut f = file("f-1", "Default/lab");
        f.account_domain = "other.example".into();
        let e = c
            .import_licenses(&admin(), &f, NOW, &IDS)
            .expect_err("refused");
        assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
        let mut f = file("f-1", "Default/lab");
        f.grants[0].licenses[1].quantity = 0;
        let e = c
            .import_licenses(&admin(), &f, NOW, &IDS)
            .expect_err("refused");
        assert!(
            matches!(&e, DomainError::Invalid(m) if m.starts_with("grants[0].licenses[1]")),
            "{e:?}"
        );
    }

    #[test]
    fn only_account_writers_may_import() {
        let (mut c, lab) = setup();
        let user = apply(c.create_user(&admin(), "viewer", NOW, &IDS), &mut c);
        for role in [Role::VaUser, Role::VaAdmin] {
            let p = Principal {
                actor: "viewer".into(),
                user: Some(user.id),
                grants: vec![RoleGrant {
                    role,
                    scope: Scope::Va(lab),
                }],
            };
            let e = c
                .import_licenses(&p, &file("f-1", "Default/lab"), NOW, &IDS)
                .expect_err("refused");
            assert!(matches!(e, DomainError::Forbidden(_)), "{role:?}: {e:?}");
        }
        let account = c.va(lab).expect("va").account;
        let p = Principal {
            actor: "owner".into(),
            user: Some(user.id),
            grants: vec![RoleGrant {
                role: Role::AccountAdmin,
                scope: Scope::Account(account),
            }],
        };
        assert!(
            c.import_licenses(&p, &file("f-1", "Default/lab"), NOW, &IDS)
                .is_ok()
        );
    }
}
