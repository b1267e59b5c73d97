//! The audit log: every accepted change carries the right event, and filters select by time,
//! account, VA, device and action.

use super::*;

#[test]
fn every_operation_carries_its_event() {
    let mut c = Catalog::new();
    let (ch, a) = c
        .create_account(&admin(), "Acme", "example.com", NOW, &IDS)
        .unwrap();
    assert_eq!(ev(&ch).action, "account.create");
    assert_eq!((ev(&ch).account, ev(&ch).va), (Some(a.id), None));
    assert!(
        ev(&ch)
            .details
            .contains(&("status".into(), "active".into()))
    );
    c.apply(&ch);

    let (ch, sub) = c
        .create_account(&admin(), "Sub", "abc.example.com", NOW, &IDS)
        .unwrap();
    assert!(
        ev(&ch)
            .details
            .contains(&("status".into(), "pending".into()))
    );
    c.apply(&ch);
    let (ch, _) = c.approve_account(&admin(), sub.id).unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account),
        ("account.approve", Some(sub.id))
    );
    c.apply(&ch);

    let (ch, x) = c
        .create_va(&admin(), a.default_va, "x", "", NOW, &IDS)
        .unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account, ev(&ch).va),
        ("va.create", Some(a.id), Some(x.id))
    );
    assert_eq!(ev(&ch).subject, "Acme/Default/x");
    c.apply(&ch);
    let (ch, y) = c
        .create_va(&admin(), a.default_va, "y", "", NOW, &IDS)
        .unwrap();
    c.apply(&ch);

    let (ch, _) = c.move_va(&admin(), y.id, x.id).unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account, ev(&ch).va),
        ("va.move", Some(a.id), Some(y.id))
    );
    assert!(
        ev(&ch)
            .details
            .contains(&("from".into(), "Acme/Default".into()))
    );
    assert!(
        ev(&ch)
            .details
            .contains(&("to".into(), "Acme/Default/x".into()))
    );
    c.apply(&ch);

    let (ch, l) = c
        .add_license(&admin(), x.id, perpetual("t", 5), NOW, &IDS)
        .unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account, ev(&ch).va),
        ("license.add", Some(a.id), Some(x.id))
    );
    assert!(ev(&ch).details.contains(&("quantity".into(), "5".into())));
    c.apply(&ch);

    let ch = c
        .transfer_licenses(&admin(), x.id, y.id, "t", 2, None, NOW, &IDS)
        .unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account, ev(&ch).va),
        ("license.transfer", Some(a.id), Some(x.id))
    );
    assert!(
        ev(&ch)
            .details
            .contains(&("to".into(), "Acme/Default/x/y".into()))
    );
    c.apply(&ch);

    let ch = c.remove_license(&admin(), l.id, Some(1), NOW).unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account, ev(&ch).va),
        ("license.remove", Some(a.id), Some(x.id))
    );
    c.apply(&ch);

    let (ch, t) = c
        .create_token(&admin(), y.id, token_spec(), hash(1), NOW, &IDS)
        .unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account, ev(&ch).va),
        ("token.create", Some(a.id), Some(y.id))
    );
    assert_eq!(ev(&ch).subject, t.id.to_string());
    c.apply(&ch);
    let (ch, _) = c.revoke_token(&admin(), t.id, NOW).unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account, ev(&ch).va),
        ("token.revoke", Some(a.id), Some(y.id))
    );
    c.apply(&ch);

    let z = mk_va(&mut c, a.default_va, "z");
    let ch = c.delete_va(&admin(), z, 0, NOW).unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account, ev(&ch).va),
        ("va.delete", Some(a.id), Some(z))
    );
    c.apply(&ch);

    let (ch, u) = c.create_user(&admin(), "bob", NOW, &IDS).unwrap();
    assert_eq!((ev(&ch).action, ev(&ch).account), ("user.create", None));
    c.apply(&ch);
    let g = grant(Role::VaUser, Scope::Va(x.id));
    let (ch, _) = c.grant_role(&admin(), u.id, g).unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account, ev(&ch).va),
        ("user.grant", Some(a.id), Some(x.id))
    );
    c.apply(&ch);
    let (ch, _) = c.revoke_role(&admin(), u.id, g).unwrap();
    assert_eq!(
        (ev(&ch).action, ev(&ch).account, ev(&ch).va),
        ("user.revoke", Some(a.id), Some(x.id))
    );
    c.apply(&ch);
    let (ch, at) = c
        .create_api_token(&admin(), u.id, "", None, hash(2), NOW, &IDS)
        .unwrap();
    assert_eq!(ev(&ch).action, "api_token.create");
    c.apply(&ch);
    let ch = c.revoke_api_token(&admin(), at.id, NOW).unwrap();
    assert_eq!(ev(&ch).action, "api_token.revoke");
    c.apply(&ch);
    let ch = c.delete_user(&admin(), u.id).unwrap();
    assert_eq!(ev(&ch).action, "user.delete");
    assert_eq!(
        ch.remove,
        vec![Removal::User(u.id), Removal::ApiToken(at.id)]
    );
}

#[test]
fn into_event_stamps_seq_time_and_actor() {
    let a = AccountId::fresh(&IDS);
    let e = NewEvent::new("license.add", "tag")
        .account(a)
        .device("PID:SN1")
        .detail("quantity", 3)
        .into_event(42, NOW, "user:bob");
    assert_eq!((e.seq, e.at, e.actor.as_str()), (42, NOW, "user:bob"));
    assert_eq!(
        (e.action.as_str(), e.subject.as_str()),
        ("license.add", "tag")
    );
    assert_eq!(
        (e.account, e.va, e.device.as_deref()),
        (Some(a), None, Some("PID:SN1"))
    );
    assert_eq!(e.details, vec![("quantity".to_string(), "3".to_string())]);
}

#[test]
fn event_filter_matches_by_time_account_va_device_and_action() {
    let (a, b) = (AccountId::fresh(&IDS), AccountId::fresh(&IDS));
    let (va, vb) = (VaId::fresh(&IDS), VaId::fresh(&IDS));
    let ev = |action: &'static str, at: OffsetDateTime, acct: AccountId, v: VaId| {
        NewEvent::new(action, "s")
            .account(acct)
            .va(v)
            .device("dev-1")
            .into_event(1, at, "t")
    };
    let e = ev("license.transfer", NOW, a, va);
    let any = EventFilter::default();
    assert!(any.matches(&e));

    let f = |f: EventFilter| f.matches(&e);
    // Time: `since` is inclusive, `until` exclusive.
    assert!(f(EventFilter {
        since: Some(NOW),
        ..any.clone()
    }));
    assert!(!f(EventFilter {
        since: Some(NOW + Duration::seconds(1)),
        ..any.clone()
    }));
    assert!(f(EventFilter {
        until: Some(NOW + Duration::seconds(1)),
        ..any.clone()
    }));
    assert!(!f(EventFilter {
        until: Some(NOW),
        ..any.clone()
    }));
    assert!(f(EventFilter {
        since: Some(NOW - days(1)),
        until: Some(NOW + days(1)),
        ..any.clone()
    }));
    // Account and VA.
    assert!(f(EventFilter {
        account: Some(a),
        ..any.clone()
    }));
    assert!(!f(EventFilter {
        account: Some(b),
        ..any.clone()
    }));
    assert!(f(EventFilter {
        va: Some(va),
        ..any.clone()
    }));
    assert!(!f(EventFilter {
        va: Some(vb),
        ..any.clone()
    }));
    assert!(!f(EventFilter {
        account: Some(a),
        va: Some(vb),
        ..any.clone()
    }));
    // Device.
    assert!(f(EventFilter {
        device: Some("dev-1".into()),
        ..any.clone()
    }));
    assert!(!f(EventFilter {
        device: Some("dev-2".into()),
        ..any.clone()
    }));
    // Action: exact, or a dotted prefix; never a bare string prefix.
    for yes in ["license.transfer", "license"] {
        assert!(
            f(EventFilter {
                action: Some(yes.into()),
                ..any.clone()
            }),
            "{yes}"
        );
    }
    for no in [
        "lic",
        "license.",
        "license.add",
        "licenses",
        "transfer",
        "license.transfer.x",
    ] {
        assert!(
            !f(EventFilter {
                action: Some(no.into()),
                ..any.clone()
            }),
            "{no}"
        );
    }

    // An event without account or VA never matches a filter that asks for one.
    let system = NewEvent::new("user.create", "bob").into_event(2, NOW, "t");
    assert!(any.matches(&system));
    assert!(
        !EventFilter {
            account: Some(a),
            ..any.clone()
        }
        .matches(&system)
    );
    assert!(
        !EventFilter {
            va: Some(va),
            ..any.clone()
        }
        .matches(&system)
    );
    assert!(
        !EventFilter {
            device: Some("dev-1".into()),
            ..any
        }
        .matches(&system)
    );
}
