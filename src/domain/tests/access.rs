//! Role-based access (SPEC §7): what each role may read and change, and that objects outside a
//! caller's scope answer `NotFound`, never `Forbidden`.

use super::*;

/// Account A (`Default/{emea/{paris,berlin},apac}`) and account B, with one principal per role.
struct World {
    c: Catalog,
    a: Account,
    b: Account,
    emea: VaId,
    paris: VaId,
    berlin: VaId,
    apac: VaId,
    sys: Principal,
    a_admin: Principal,
    a_user: Principal,
    emea_admin: Principal,
    paris_user: Principal,
}

fn world() -> World {
    let (mut c, a) = with_account("Acme", "example.com");
    let b = add_account(&mut c, "Other", "other.org");
    let emea = mk_va(&mut c, a.default_va, "emea");
    let paris = mk_va(&mut c, emea, "paris");
    let berlin = mk_va(&mut c, emea, "berlin");
    let apac = mk_va(&mut c, a.default_va, "apac");
    let sys = user_with(
        &mut c,
        "root",
        &[grant(Role::SystemAdmin, Scope::System)],
        hash(1),
    );
    let a_admin = user_with(
        &mut c,
        "aadmin",
        &[grant(Role::AccountAdmin, Scope::Account(a.id))],
        hash(2),
    );
    let a_user = user_with(
        &mut c,
        "auser",
        &[grant(Role::AccountUser, Scope::Account(a.id))],
        hash(3),
    );
    let emea_admin = user_with(
        &mut c,
        "emea",
        &[grant(Role::VaAdmin, Scope::Va(emea))],
        hash(4),
    );
    let paris_user = user_with(
        &mut c,
        "paris",
        &[grant(Role::VaUser, Scope::Va(paris))],
        hash(5),
    );
    World {
        c,
        a,
        b,
        emea,
        paris,
        berlin,
        apac,
        sys,
        a_admin,
        a_user,
        emea_admin,
        paris_user,
    }
}

#[track_caller]
fn forbidden<T: std::fmt::Debug>(r: Result<T, DomainError>) {
    let e = refused(r);
    assert!(
        matches!(e, DomainError::Forbidden(_)),
        "expected Forbidden, got {e:?}"
    );
}

#[track_caller]
fn not_found<T: std::fmt::Debug>(r: Result<T, DomainError>) {
    let e = refused(r);
    assert!(
        matches!(e, DomainError::NotFound { .. }),
        "expected NotFound, got {e:?}"
    );
}

#[test]
fn authenticate_builds_the_principal_from_the_users_grants() {
    let w = world();
    assert_eq!(w.paris_user.actor, "user:paris");
    assert_eq!(
        w.paris_user.grants,
        vec![grant(Role::VaUser, Scope::Va(w.paris))]
    );
    assert_eq!(w.paris_user.user, w.c.user_by_name("paris").map(|u| u.id));
    assert!(w.sys.is_system_admin());
    assert!(!w.a_admin.is_system_admin());
    assert!(w.c.authenticate(&hash(99), NOW).is_none());
}

#[test]
fn va_user_reads_its_subtree_but_writes_nothing() {
    let mut w = world();
    let lab = mk_va(&mut w.c, w.paris, "lab");
    let p = &w.paris_user;
    for v in [w.paris, lab] {
        assert_eq!(w.c.va_access(p, v), Some(Access::Read));
        assert_eq!(w.c.check_va(p, v, Access::Read).map(|v| v.id), Ok(v));
        forbidden(w.c.check_va(p, v, Access::Write));
    }
    forbidden(w.c.create_va(p, w.paris, "x", "", NOW, &IDS));
    forbidden(w.c.create_token(p, w.paris, token_spec(), hash(50), NOW, &IDS));
    forbidden(w.c.delete_va(p, lab, 0, NOW));
    let t =
        w.c.commit(w.c.create_token(&admin(), w.paris, token_spec(), hash(51), NOW, &IDS));
    forbidden(w.c.revoke_token(p, t.id, NOW));
}

#[test]
fn va_user_cannot_learn_that_siblings_exist() {
    let mut w = world();
    let p = &w.paris_user;
    for v in [w.berlin, w.emea, w.apac, w.a.default_va, w.b.default_va] {
        assert_eq!(w.c.va_access(p, v), None);
        not_found(w.c.check_va(p, v, Access::Read));
        not_found(w.c.create_va(p, v, "x", "", NOW, &IDS));
    }
    let t =
        w.c.commit(w.c.create_token(&admin(), w.berlin, token_spec(), hash(50), NOW, &IDS));
    let e = refused(w.c.revoke_token(&w.paris_user, t.id, NOW));
    assert!(
        matches!(e, DomainError::NotFound { what: "token", .. }),
        "{e:?}"
    );
    let l = add_lic(&mut w.c, w.berlin, perpetual("t", 1));
    let e = refused(w.c.remove_license(&w.paris_user, l.id, None, NOW));
    assert!(
        matches!(
            e,
            DomainError::NotFound {
                what: "license",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn va_admin_manages_tokens_vas_and_transfers_in_its_subtree() {
    let mut w = world();
    let p = w.emea_admin.clone();
    let t =
        w.c.commit(w.c.create_token(&p, w.paris, token_spec(), hash(50), NOW, &IDS));
    assert_eq!(t.created_by, "user:emea");
    let lab =
        w.c.commit(w.c.create_va(&p, w.emea, "lab", "", NOW, &IDS))
            .id;
    w.c.commit(w.c.move_va(&p, lab, w.paris));
    assert_eq!(w.c.va_path(lab), "Acme/Default/emea/paris/lab");
    w.c.commit_change(w.c.delete_va(&p, lab, 0, NOW));
    w.c.commit(w.c.revoke_token(&p, t.id, NOW));
    add_lic(&mut w.c, w.paris, perpetual("t", 5));
    w.c.commit_change(w.c.transfer_licenses(&p, w.paris, w.berlin, "t", 2, None, NOW, &IDS));
    assert_eq!(qty_in(&w.c, w.berlin, "t"), 2);

    // It may not move or delete the root of its own grant, nor transfer out of its subtree.
    refused(w.c.delete_va(&p, w.emea, 0, NOW));
    refused(w.c.move_va(&p, w.emea, w.apac));
    not_found(w.c.transfer_licenses(&p, w.paris, w.apac, "t", 1, None, NOW, &IDS));
}

#[test]
fn va_admin_cannot_add_or_remove_licenses() {
    let mut w = world();
    let p = &w.emea_admin;
    forbidden(w.c.add_license(p, w.paris, perpetual("t", 1), NOW, &IDS));
    let l = add_lic(&mut w.c, w.paris, perpetual("t", 1));
    forbidden(w.c.remove_license(&w.emea_admin, l.id, None, NOW));
    assert_eq!(w.c.license(l.id).map(|l| l.quantity), Some(1));
}

#[test]
fn va_admin_cannot_see_other_accounts_or_vas_outside_its_subtree() {
    let w = world();
    let p = &w.emea_admin;
    not_found(w.c.check_account(p, w.b.id, Access::Read));
    not_found(w.c.check_va(p, w.b.default_va, Access::Read));
    not_found(w.c.add_license(p, w.b.default_va, perpetual("t", 1), NOW, &IDS));
    not_found(w.c.check_va(p, w.apac, Access::Read));
    not_found(w.c.create_token(p, w.apac, token_spec(), hash(50), NOW, &IDS));
    // Its own account exists for it, but account-wide access is not granted.
    forbidden(w.c.check_account(p, w.a.id, Access::Read));
    assert!(w.c.account_visible(p, w.a.id));
    assert!(!w.c.account_visible(p, w.b.id));
}

#[test]
fn account_user_reads_the_whole_account_and_writes_nothing() {
    let mut w = world();
    let l = add_lic(&mut w.c, w.paris, perpetual("t", 3));
    let p = &w.a_user;
    for v in w.c.subtree(w.a.default_va) {
        assert_eq!(w.c.va_access(p, v), Some(Access::Read));
    }
    assert_eq!(
        w.c.check_account(p, w.a.id, Access::Read).map(|a| a.id),
        Ok(w.a.id)
    );
    forbidden(w.c.check_account(p, w.a.id, Access::Write));
    forbidden(w.c.create_va(p, w.a.default_va, "x", "", NOW, &IDS));
    forbidden(w.c.create_token(p, w.paris, token_spec(), hash(50), NOW, &IDS));
    forbidden(w.c.add_license(p, w.paris, perpetual("t", 1), NOW, &IDS));
    forbidden(w.c.remove_license(p, l.id, None, NOW));
    forbidden(w.c.transfer_licenses(p, w.paris, w.berlin, "t", 1, None, NOW, &IDS));
    forbidden(w.c.move_va(p, w.paris, w.apac));
    forbidden(w.c.delete_va(p, w.apac, 0, NOW));
    not_found(w.c.check_va(p, w.b.default_va, Access::Read));
    not_found(w.c.check_account(p, w.b.id, Access::Read));
}

#[test]
fn account_admin_writes_its_account_only() {
    let mut w = world();
    let p = w.a_admin.clone();
    add_lic_as(&mut w.c, &p, w.paris);
    w.c.commit(w.c.create_va(&p, w.a.default_va, "new", "", NOW, &IDS));
    w.c.commit(w.c.create_token(&p, w.apac, token_spec(), hash(50), NOW, &IDS));
    not_found(w.c.add_license(&p, w.b.default_va, perpetual("t", 1), NOW, &IDS));
    not_found(w.c.create_va(&p, w.b.default_va, "x", "", NOW, &IDS));
    forbidden(w.c.create_account(&p, "Mine", "mine.org", NOW, &IDS));
    forbidden(w.c.create_user(&p, "bob", NOW, &IDS));
}

fn add_lic_as(c: &mut Catalog, p: &Principal, va: VaId) -> License {
    c.commit(c.add_license(p, va, perpetual("t", 1), NOW, &IDS))
}

#[test]
fn system_admin_does_everything() {
    let mut w = world();
    let p = w.sys.clone();
    let acct =
        w.c.commit(w.c.create_account(&p, "Third", "third.net", NOW, &IDS));
    for v in [w.paris, w.b.default_va, acct.default_va] {
        assert_eq!(w.c.va_access(&p, v), Some(Access::Write));
        add_lic_as(&mut w.c, &p, v);
    }
    let u = w.c.commit(w.c.create_user(&p, "bob", NOW, &IDS));
    w.c.commit(w.c.grant_role(&p, u.id, grant(Role::VaUser, Scope::Va(w.b.default_va))));
    w.c.commit_change(w.c.delete_va(&p, w.apac, 0, NOW));
    w.c.commit_change(w.c.delete_user(&p, u.id));
    assert!(w.c.user(u.id).is_none());
}

#[test]
fn grants_must_fit_their_scope() {
    let mut w = world();
    let u = w.c.commit(w.c.create_user(&admin(), "bob", NOW, &IDS));
    let mismatched = [
        grant(Role::VaAdmin, Scope::Account(w.a.id)),
        grant(Role::VaUser, Scope::System),
        grant(Role::AccountAdmin, Scope::Va(w.paris)),
        grant(Role::AccountUser, Scope::System),
        grant(Role::SystemAdmin, Scope::Account(w.a.id)),
    ];
    for g in mismatched {
        let e = refused(w.c.grant_role(&admin(), u.id, g));
        assert!(matches!(e, DomainError::Invalid(_)), "{g:?}: {e:?}");
    }
    assert!(w.c.user(u.id).unwrap().grants.is_empty());
    let e = refused(w.c.grant_role(
        &admin(),
        u.id,
        grant(Role::VaAdmin, Scope::Va(VaId::fresh(&IDS))),
    ));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
    let g = grant(Role::VaAdmin, Scope::Va(w.paris));
    forbidden(w.c.grant_role(&w.a_admin, u.id, g));
    w.c.commit(w.c.grant_role(&admin(), u.id, g));
    let e = refused(w.c.grant_role(&admin(), u.id, g));
    assert!(matches!(e, DomainError::Refused(_)), "{e:?}");
    let updated = w.c.commit(w.c.revoke_role(&admin(), u.id, g));
    assert!(updated.grants.is_empty());
}

#[test]
fn revoked_and_expired_api_tokens_do_not_authenticate() {
    let mut w = world();
    let u = w.c.user_by_name("auser").unwrap().id;
    let t =
        w.c.commit(w.c.create_api_token(&admin(), u, "short", Some(1), hash(60), NOW, &IDS));
    assert!(
        w.c.authenticate(&hash(60), NOW + days(1) - Duration::seconds(1))
            .is_some()
    );
    assert!(w.c.authenticate(&hash(60), NOW + days(1)).is_none());

    // A user may revoke their own token; then it no longer authenticates.
    let p = w.a_user.clone();
    w.c.commit_change(w.c.revoke_api_token(&p, t.id, NOW));
    assert!(w.c.authenticate(&hash(60), NOW).is_none());
    assert!(
        w.c.authenticate(&hash(3), NOW).is_some(),
        "the user's other token still works"
    );
    let e = refused(w.c.revoke_api_token(&p, t.id, NOW));
    assert!(matches!(e, DomainError::Refused(_)), "{e:?}");

    // Another user's token is invisible to a non-admin.
    let other =
        w.c.api_tokens_of(w.c.user_by_name("paris").unwrap().id)
            .next()
            .unwrap()
            .id;
    not_found(w.c.revoke_api_token(&p, other, NOW));

    // Deleting the user takes their tokens with them.
    w.c.commit_change(w.c.delete_user(&admin(), u));
    assert!(w.c.authenticate(&hash(3), NOW).is_none());
}

#[test]
fn events_of_other_accounts_and_sibling_vas_are_hidden() {
    let mut w = world();
    // Events are read after their change is applied, so the VAs they name exist.
    let mut lab_under = |parent: VaId| {
        let (change, _) =
            w.c.create_va(&admin(), parent, "lab", "", NOW, &IDS)
                .unwrap();
        w.c.apply(&change);
        ev(&change).clone().into_event(0, NOW, "test")
    };
    let in_paris = lab_under(w.paris);
    let in_berlin = lab_under(w.berlin);
    let in_b = lab_under(w.b.default_va);
    let (ch, _) =
        w.c.create_account(&admin(), "Fourth", "fourth.net", NOW, &IDS)
            .unwrap();
    let account_a = NewEvent::new("account.approve", "Acme")
        .account(w.a.id)
        .into_event(0, NOW, "test");
    let new_account = ev(&ch).clone().into_event(0, NOW, "test");
    let (ch, _) = w.c.create_user(&admin(), "zed", NOW, &IDS).unwrap();
    let system = ev(&ch).clone().into_event(0, NOW, "test");

    let all = [
        &in_paris,
        &in_berlin,
        &in_b,
        &account_a,
        &new_account,
        &system,
    ];
    let seen =
        |p: &Principal| -> Vec<bool> { all.iter().map(|e| w.c.may_read_event(p, e)).collect() };
    assert_eq!(seen(&w.sys), vec![true; 6]);
    assert_eq!(
        seen(&w.a_admin),
        vec![true, true, false, true, false, false]
    );
    assert_eq!(seen(&w.a_user), vec![true, true, false, true, false, false]);
    assert_eq!(
        seen(&w.emea_admin),
        vec![true, true, false, false, false, false]
    );
    assert_eq!(
        seen(&w.paris_user),
        vec![true, false, false, false, false, false]
    );
}

#[test]
fn console_passwords_are_set_by_their_user_or_a_system_admin_and_go_with_the_user() {
    let mut w = world();
    let bob = w.c.commit(w.c.create_user(&admin(), "bob", NOW, &IDS));
    let eve = w.c.commit(w.c.create_user(&admin(), "eve", NOW, &IDS));
    let as_user = |c: &Catalog, id| c.console_principal(id).expect("a user");
    let phc = || "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string();
    // Another user's password is "not found", not "forbidden"; a bare hash is refused.
    let refused = w.c.set_password(&as_user(&w.c, eve.id), bob.id, phc(), NOW);
    assert!(
        matches!(refused, Err(DomainError::NotFound { .. })),
        "{refused:?}"
    );
    let bare = w.c.set_password(&admin(), bob.id, "sha256:abc".into(), NOW);
    assert!(matches!(bare, Err(DomainError::Invalid(_))), "{bare:?}");
    let own = w.c.set_password(&as_user(&w.c, bob.id), bob.id, phc(), NOW);
    let ch = own.expect("bob sets his own");
    assert_eq!(ch.event.as_ref().map(|e| e.action), Some("user.passwd"));
    w.c.commit_change(Ok(ch));
    assert_eq!(w.c.password_of(bob.id).map(|p| p.phc.clone()), Some(phc()));
    let ch = w.c.delete_user(&admin(), bob.id).unwrap();
    assert!(ch.remove.contains(&Removal::Password(bob.id)));
    w.c.commit_change(Ok(ch));
    assert!(w.c.password_of(bob.id).is_none());
}
