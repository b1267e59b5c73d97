//! Registration tokens: creation rules, states and revocation.

use super::*;

fn token_with(c: &mut Catalog, va: VaId, s: TokenSpec, h: u8) -> RegistrationToken {
    c.commit(c.create_token(&admin(), va, s, hash(h), NOW, &IDS))
}

#[test]
fn expiry_must_be_between_1_and_365_days() {
    let (mut c, a) = with_account("Acme", "example.com");
    for d in [0, 366, u32::MAX] {
        let s = TokenSpec {
            expires_in_days: Some(d),
            ..token_spec()
        };
        let e = refused(c.create_token(&admin(), a.default_va, s, hash(1), NOW, &IDS));
        assert!(
            matches!(e, DomainError::Invalid(ref m) if m.contains("1 to 365")),
            "{d}: {e:?}"
        );
    }
    for (d, h) in [(1, 2), (365, 3)] {
        let s = TokenSpec {
            expires_in_days: Some(d),
            ..token_spec()
        };
        let t = token_with(&mut c, a.default_va, s, h);
        assert_eq!(t.expires_at, NOW + days(i64::from(d)));
    }
}

#[test]
fn default_expiry_is_30_days() {
    let (mut c, a) = with_account("Acme", "example.com");
    let t = token_with(&mut c, a.default_va, token_spec(), 1);
    assert_eq!(t.expires_at, NOW + days(30));
    assert_eq!(t.created_at, NOW);
    assert_eq!(t.uses, 0);
    assert_eq!(t.va, a.default_va);
    assert_eq!(t.account, a.id);
    assert_eq!(t.created_by, "test-admin");
    assert_eq!(c.token_by_hash(&hash(1)).map(|t| t.id), Some(t.id));
}

#[test]
fn max_uses_0_is_refused() {
    let (c, a) = with_account("Acme", "example.com");
    let s = TokenSpec {
        max_uses: Some(0),
        ..token_spec()
    };
    let e = refused(c.create_token(&admin(), a.default_va, s, hash(1), NOW, &IDS));
    assert!(
        matches!(e, DomainError::Invalid(ref m) if m.contains("max uses")),
        "{e:?}"
    );
}

#[test]
fn a_reused_secret_hash_is_a_conflict() {
    let (mut c, a) = with_account("Acme", "example.com");
    token_with(&mut c, a.default_va, token_spec(), 1);
    let e = refused(c.create_token(&admin(), a.default_va, token_spec(), hash(1), NOW, &IDS));
    assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
}

#[test]
fn token_states() {
    let (mut c, a) = with_account("Acme", "example.com");
    let t = token_with(&mut c, a.default_va, token_spec(), 1);
    let end = NOW + days(30);
    assert_eq!(t.state(NOW), TokenState::Active);
    assert_eq!(t.state(end - Duration::seconds(1)), TokenState::Active);
    assert_eq!(t.state(end), TokenState::Expired);
    assert_eq!(t.state(end + days(1)), TokenState::Expired);

    let mut revoked = t.clone();
    revoked.revoked_at = Some(NOW);
    assert_eq!(revoked.state(NOW), TokenState::Revoked);
    assert_eq!(
        revoked.state(end + days(1)),
        TokenState::Revoked,
        "revoked wins over expired"
    );

    let mut limited = t.clone();
    limited.max_uses = Some(2);
    limited.uses = 1;
    assert_eq!(limited.state(NOW), TokenState::Active);
    limited.uses = 2;
    assert_eq!(limited.state(NOW), TokenState::Exhausted);
    limited.uses = 3;
    assert_eq!(limited.state(NOW), TokenState::Exhausted);

    assert!(TokenState::Active.is_usable());
    for s in [
        TokenState::Expired,
        TokenState::Revoked,
        TokenState::Exhausted,
    ] {
        assert!(!s.is_usable(), "{s:?}");
    }
}

#[test]
fn usable_token_refuses_every_state_but_active() {
    let (mut c, a) = with_account("Acme", "example.com");
    let t = token_with(&mut c, a.default_va, token_spec(), 1);
    assert_eq!(c.usable_token(&hash(1), NOW).map(|t| t.id), Ok(t.id));

    let e = refused(c.usable_token(&hash(1), NOW + days(30)));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.ends_with("expired")),
        "{e:?}"
    );

    let mut used = t.clone();
    used.max_uses = Some(1);
    used.uses = 1;
    let ch = Change::new(NewEvent::new("test.use", t.id)).put(Record::Token(used));
    c.apply(&ch);
    let e = refused(c.usable_token(&hash(1), NOW));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.ends_with("exhausted")),
        "{e:?}"
    );

    c.commit(c.revoke_token(&admin(), t.id, NOW));
    let e = refused(c.usable_token(&hash(1), NOW));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.ends_with("revoked")),
        "{e:?}"
    );

    let e = refused(c.usable_token(&hash(9), NOW));
    assert!(
        matches!(e, DomainError::NotFound { what: "token", .. }),
        "{e:?}"
    );
}

#[test]
fn revoke_marks_the_token_and_twice_is_refused() {
    let (mut c, a) = with_account("Acme", "example.com");
    let t = token_with(&mut c, a.default_va, token_spec(), 1);
    let later = NOW + days(3);
    let r = c.commit(c.revoke_token(&admin(), t.id, later));
    assert_eq!(r.revoked_at, Some(later));
    assert_eq!(c.token(t.id).unwrap().revoked_at, Some(later));
    assert_eq!(c.token(t.id).unwrap().state(later), TokenState::Revoked);
    let e = refused(c.revoke_token(&admin(), t.id, later));
    assert!(
        matches!(e, DomainError::Refused(ref m) if m.contains("already revoked")),
        "{e:?}"
    );
    let e = refused(c.revoke_token(&admin(), TokenId::fresh(&IDS), later));
    assert!(matches!(e, DomainError::NotFound { .. }), "{e:?}");
}
