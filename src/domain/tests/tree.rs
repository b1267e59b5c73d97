//! The Virtual Account tree: sibling names, the depth limit, moves and deletes.

use super::*;

#[test]
fn sibling_names_are_unique_but_cousins_may_share_a_name() {
    let (mut c, a) = with_account("Acme", "example.com");
    let emea = mk_va(&mut c, a.default_va, "emea");
    let apac = mk_va(&mut c, a.default_va, "apac");
    let e = refused(c.create_va(&admin(), a.default_va, "emea", "", NOW, &IDS));
    assert!(
        matches!(e, DomainError::Conflict(ref m) if m.contains("emea")),
        "{e:?}"
    );
    let lab1 = mk_va(&mut c, emea, "lab");
    let lab2 = mk_va(&mut c, apac, "lab");
    assert_ne!(lab1, lab2);
    assert_eq!(c.va_path(lab1), "Acme/Default/emea/lab");
    assert_eq!(c.va_path(lab2), "Acme/Default/apac/lab");
    assert_eq!(c.children(a.default_va).count(), 2);
    // The same name in another account is fine too.
    let b = add_account(&mut c, "Other", "other.org");
    mk_va(&mut c, b.default_va, "emea");
}

#[test]
fn levels_2_to_10_can_be_created_and_level_11_is_refused() {
    let (mut c, a) = with_account("Acme", "example.com");
    let vas = chain(&mut c, a.default_va, "l", 9);
    for (i, v) in vas.iter().enumerate() {
        assert_eq!(c.level(*v), i + 2);
    }
    let deepest = *vas.last().unwrap();
    assert_eq!(c.level(deepest), MAX_VA_DEPTH);
    let e = refused(c.create_va(&admin(), deepest, "eleven", "", NOW, &IDS));
    match e {
        DomainError::Refused(m) => {
            assert!(m.contains("level 11"), "{m}");
            assert!(m.contains("at most 10"), "{m}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(c.children(deepest).count(), 0);
    // A level-10 sibling is still fine.
    let parent9 = vas[vas.len() - 2];
    let v = mk_va(&mut c, parent9, "other10");
    assert_eq!(c.level(v), 10);
}

#[test]
fn move_refuses_a_cycle() {
    let (mut c, a) = with_account("Acme", "example.com");
    let vas = chain(&mut c, a.default_va, "m", 3);
    let before = snapshot(&c, &a);
    let e = refused(c.move_va(&admin(), vas[0], vas[0]));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("own subtree")),
        "{e:?}"
    );
    let e = refused(c.move_va(&admin(), vas[0], vas[2]));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("own subtree")),
        "{e:?}"
    );
    let e = refused(c.move_va(&admin(), vas[0], vas[1]));
    assert!(matches!(e, DomainError::Refused(_)), "{e:?}");
    assert_eq!(snapshot(&c, &a), before);
}

#[test]
fn move_refuses_when_the_whole_subtree_would_exceed_depth_10() {
    let (mut c, a) = with_account("Acme", "example.com");
    // A target at level 6 and a VA with a subtree 5 levels high: its deepest VA would land at
    // level 11 although the moved VA itself would sit only at level 7.
    let target = *chain(&mut c, a.default_va, "t", 5).last().unwrap();
    assert_eq!(c.level(target), 6);
    let moved = chain(&mut c, a.default_va, "s", 5);
    assert_eq!(c.subtree_height(moved[0]), 5);
    let before = snapshot(&c, &a);
    let e = refused(c.move_va(&admin(), moved[0], target));
    match e {
        DomainError::Refused(m) => assert!(m.contains("level 11") && m.contains("10"), "{m}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(snapshot(&c, &a), before);

    // One level less fits exactly: the deepest VA lands at level 10.
    let target5 = c.va(target).unwrap().parent.unwrap();
    let m = c.commit(c.move_va(&admin(), moved[0], target5));
    assert_eq!(m.parent, Some(target5));
    assert_eq!(c.level(moved[0]), 6);
    assert_eq!(c.level(moved[4]), 10);
    assert!(c.in_subtree(moved[4], target5));
    assert_eq!(c.va_path(moved[1]), "Acme/Default/t0/t1/t2/t3/s0/s1");
    assert!(c.children(a.default_va).all(|v| v.id != moved[0]));
}

#[test]
fn move_refuses_another_account_and_the_default_va() {
    let (mut c, a) = with_account("Acme", "example.com");
    let b = add_account(&mut c, "Other", "other.org");
    let va = mk_va(&mut c, a.default_va, "emea");
    let bva = mk_va(&mut c, b.default_va, "x");
    let e = refused(c.move_va(&admin(), va, bva));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("another account")),
        "{e:?}"
    );
    let e = refused(c.move_va(&admin(), va, b.default_va));
    assert!(matches!(e, DomainError::Refused(_)), "{e:?}");
    let e = refused(c.move_va(&admin(), a.default_va, va));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("Default")),
        "{e:?}"
    );
    assert_eq!(c.va(va).unwrap().parent, Some(a.default_va));
}

#[test]
fn move_refuses_a_name_taken_under_the_new_parent() {
    let (mut c, a) = with_account("Acme", "example.com");
    let emea = mk_va(&mut c, a.default_va, "emea");
    let lab = mk_va(&mut c, emea, "lab");
    mk_va(&mut c, a.default_va, "lab");
    let e = refused(c.move_va(&admin(), lab, a.default_va));
    assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
    // Moving under its own parent is not a conflict with itself.
    c.commit(c.move_va(&admin(), lab, emea));
    assert_eq!(c.va(lab).unwrap().parent, Some(emea));
}

#[test]
fn delete_refuses_a_va_with_children() {
    let (mut c, a) = with_account("Acme", "example.com");
    let emea = mk_va(&mut c, a.default_va, "emea");
    mk_va(&mut c, emea, "paris");
    let e = refused(c.delete_va(&admin(), emea, 0, NOW));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("1 child")),
        "{e:?}"
    );
}

#[test]
fn delete_refuses_a_va_with_licenses() {
    let (mut c, a) = with_account("Acme", "example.com");
    let emea = mk_va(&mut c, a.default_va, "emea");
    add_lic(&mut c, emea, spec("tag", 1, expired_term()));
    let e = refused(c.delete_va(&admin(), emea, 0, NOW));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("license")),
        "{e:?}"
    );
}

#[test]
fn delete_refuses_a_va_with_devices() {
    let (mut c, a) = with_account("Acme", "example.com");
    let emea = mk_va(&mut c, a.default_va, "emea");
    let e = refused(c.delete_va(&admin(), emea, 3, NOW));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("3 product")),
        "{e:?}"
    );
}

#[test]
fn delete_refuses_a_va_with_an_active_token() {
    let (mut c, a) = with_account("Acme", "example.com");
    let emea = mk_va(&mut c, a.default_va, "emea");
    c.commit(c.create_token(&admin(), emea, token_spec(), hash(1), NOW, &IDS));
    let e = refused(c.delete_va(&admin(), emea, 0, NOW));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("active registration token")),
        "{e:?}"
    );
}

#[test]
fn delete_refuses_the_default_va() {
    let (c, a) = with_account("Acme", "example.com");
    let e = refused(c.delete_va(&admin(), a.default_va, 0, NOW));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("Default")),
        "{e:?}"
    );
}

#[test]
fn delete_of_an_empty_va_removes_it_and_its_unusable_tokens() {
    let (mut c, a) = with_account("Acme", "example.com");
    let emea = mk_va(&mut c, a.default_va, "emea");
    let keep = mk_va(&mut c, a.default_va, "apac");
    let revoked = c.commit(c.create_token(&admin(), emea, token_spec(), hash(1), NOW, &IDS));
    c.commit(c.revoke_token(&admin(), revoked.id, NOW));
    let short = TokenSpec {
        expires_in_days: Some(1),
        ..token_spec()
    };
    let expired = c.commit(c.create_token(&admin(), emea, short, hash(2), NOW, &IDS));
    let later = NOW + days(2);
    let other = c.commit(c.create_token(&admin(), keep, token_spec(), hash(3), NOW, &IDS));

    // While the second token is still active, the VA is not empty.
    refused(c.delete_va(&admin(), emea, 0, NOW));

    let change = c.commit_change(c.delete_va(&admin(), emea, 0, later));
    assert!(change.remove.contains(&Removal::Va(emea)));
    assert!(change.remove.contains(&Removal::Token(revoked.id)));
    assert!(change.remove.contains(&Removal::Token(expired.id)));
    assert_eq!(change.remove.len(), 3);
    assert!(c.va(emea).is_none());
    assert!(c.token(revoked.id).is_none());
    assert!(c.token(expired.id).is_none());
    assert!(c.token_by_hash(&hash(1)).is_none());
    assert!(c.token_by_hash(&hash(2)).is_none());
    assert_eq!(c.token(other.id).map(|t| t.id), Some(other.id));
    let kids: Vec<VaId> = c.children(a.default_va).map(|v| v.id).collect();
    assert_eq!(kids, vec![keep]);
    assert_eq!(c.subtree(a.default_va).len(), 2);
    // The name is free again.
    mk_va(&mut c, a.default_va, "emea");
}

#[test]
fn va_names_are_validated() {
    let (c, a) = with_account("Acme", "example.com");
    for name in ["", " ", "a/b", "tab\there"] {
        let e = refused(c.create_va(&admin(), a.default_va, name, "", NOW, &IDS));
        assert!(matches!(e, DomainError::Invalid(_)), "{name:?}: {e:?}");
    }
    let e = refused(c.create_va(&admin(), VaId::fresh(&IDS), "x", "", NOW, &IDS));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
}

#[test]
fn deleting_a_va_takes_the_roles_scoped_to_it() {
    let mut c = Catalog::new();
    let a = c.commit(c.create_account(&admin(), "Acme", "acme.com", NOW, &IDS));
    let lab = c
        .commit(c.create_va(&admin(), a.default_va, "lab", "", NOW, &IDS))
        .id;
    let u = c.commit(c.create_user(&admin(), "ops", NOW, &IDS));
    let grant = RoleGrant {
        role: Role::VaUser,
        scope: Scope::Va(lab),
    };
    c.commit(c.grant_role(&admin(), u.id, grant));
    let keep = RoleGrant {
        role: Role::AccountUser,
        scope: Scope::Account(a.id),
    };
    c.commit(c.grant_role(&admin(), u.id, keep));
    c.commit_change(c.delete_va(&admin(), lab, 0, NOW));
    assert_eq!(
        c.user(u.id)
            .unwrap()
            .grants
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![keep]
    );
}
