//! Accounts: creation, uniqueness, domain rules, prefixed domains and approval.

use super::*;

#[test]
fn create_account_gives_a_default_va_at_level_1() {
    let (c, a) = with_account("Acme", "example.com");
    assert_eq!(a.status, AccountStatus::Active);
    assert_eq!(a.created_at, NOW);
    assert_eq!(c.account(a.id), Some(&a));
    let d = c.va(a.default_va).expect("the Default VA exists");
    assert_eq!(d.name, "Default");
    assert_eq!(d.parent, None);
    assert_eq!(d.account, a.id);
    assert_eq!(c.level(a.default_va), 1);
    assert_eq!(c.va_path(a.default_va), "Acme/Default");
    assert_eq!(c.vas_of(a.id).count(), 1);
}

#[test]
fn duplicate_account_name_is_a_conflict() {
    let (c, _) = with_account("Acme", "example.com");
    let e = refused(c.create_account(&admin(), "Acme", "acme.org", NOW, &IDS));
    assert!(
        matches!(e, DomainError::Conflict(ref m) if m.contains("Acme")),
        "{e:?}"
    );
}

#[test]
fn duplicate_domain_is_a_conflict() {
    let (c, _) = with_account("Acme", "example.com");
    let e = refused(c.create_account(&admin(), "Other", "example.com", NOW, &IDS));
    assert!(
        matches!(e, DomainError::Conflict(ref m) if m.contains("example.com")),
        "{e:?}"
    );
}

#[test]
fn invalid_domains_are_refused() {
    let long_label = format!("{}.com", "a".repeat(64));
    let bad = [
        "Example.com",
        "EXAMPLE.COM",
        "localhost",
        "",
        "-example.com",
        "example-.com",
        "example..com",
        ".example.com",
        "example.com.",
        "exa mple.com",
        " example.com",
        "example_co.com",
        long_label.as_str(),
    ];
    let (c, _) = with_account("Acme", "example.com");
    for d in bad {
        assert!(
            matches!(validate_domain(d), Err(DomainError::Invalid(_))),
            "`{d}` should be invalid"
        );
        let e = refused(c.create_account(&admin(), &format!("acct {d}"), d, NOW, &IDS));
        assert!(matches!(e, DomainError::Invalid(_)), "`{d}`: {e:?}");
    }
}

#[test]
fn valid_domains_are_accepted() {
    let label63 = format!("{}.com", "a".repeat(63));
    for d in [
        "example.com",
        "emea.example.com",
        "a-b.c0.io",
        "x.y",
        label63.as_str(),
    ] {
        assert_eq!(validate_domain(d), Ok(()), "`{d}` should be valid");
    }
}

#[test]
fn prefixed_domain_is_a_separate_pending_account_until_approved() {
    let (mut c, parent) = with_account("Acme", "example.com");
    let child = c.commit(c.create_account(&admin(), "Acme ABC", "abc.example.com", NOW, &IDS));
    assert_ne!(child.id, parent.id);
    assert_ne!(child.default_va, parent.default_va);
    assert_eq!(child.status, AccountStatus::Pending);
    assert_eq!(c.account(child.id).unwrap().status, AccountStatus::Pending);
    // A domain that merely ends in the same letters is not a prefixed form.
    let other = c.commit(c.create_account(&admin(), "Notexample", "notexample.com", NOW, &IDS));
    assert_eq!(other.status, AccountStatus::Active);

    let approved = c.commit(c.approve_account(&admin(), child.id));
    assert_eq!(approved.status, AccountStatus::Active);
    assert_eq!(c.account(child.id).unwrap().status, AccountStatus::Active);
    // Approving twice is refused.
    let e = refused(c.approve_account(&admin(), child.id));
    assert!(matches!(e, DomainError::Refused(_)), "{e:?}");
    // Approving an unknown account is NotFound.
    let e = refused(c.approve_account(&admin(), AccountId::fresh(&IDS)));
    assert!(
        matches!(
            e,
            DomainError::NotFound {
                what: "account",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn non_system_admin_cannot_create_or_approve_accounts() {
    let (mut c, a) = with_account("Acme", "example.com");
    let pending = add_account(&mut c, "Sub", "sub.example.com");
    let aa = user_with(
        &mut c,
        "alice",
        &[grant(Role::AccountAdmin, Scope::Account(a.id))],
        hash(1),
    );
    let e = refused(c.create_account(&aa, "Mine", "mine.org", NOW, &IDS));
    assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    let e = refused(c.approve_account(&aa, pending.id));
    assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    assert_eq!(c.accounts().count(), 2);
}

#[test]
fn account_names_must_be_printable() {
    let c = Catalog::new();
    for name in ["", "   ", "a\nb", "a/b", &"x".repeat(129)] {
        let e = refused(c.create_account(&admin(), name, "example.com", NOW, &IDS));
        assert!(matches!(e, DomainError::Invalid(_)), "{name:?}: {e:?}");
    }
}
