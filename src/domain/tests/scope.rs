//! Every output is scoped (SPEC §7): alert messages, `status` counts and the metrics role name
//! nothing outside what the caller may read.

use super::*;

/// Account acme with `Default/{emea,amer}`: emea is short of one unit of `T` (two devices, each
/// registered with a token of its own, ask for one each; one license), amer has 4 spare. Answers the catalog, emea and amer.
fn shortage() -> (Catalog, Account, VaId, VaId) {
    let (mut c, a) = with_account("acme", "acme.com");
    let emea = mk_va(&mut c, a.default_va, "emea");
    let amer = mk_va(&mut c, a.default_va, "amer");
    add_lic(&mut c, emea, perpetual("T", 1));
    add_lic(&mut c, amer, perpetual("T", 4));
    let timers = DeviceTimers::default();
    for n in 0..2 {
        let id = register(&mut c, emea, n);
        match c.report_usage(id, 1, NOW, &[("T".to_owned(), 1)], NOW, &timers) {
            Ok(UsageOutcome::Applied(change, _)) => c.apply_owned(change),
            other => panic!("report not applied: {other:?}"),
        }
    }
    (c, a, emea, amer)
}

fn shortage_alert(c: &Catalog) -> Alert {
    c.alerts(NOW, &DeviceTimers::default(), &AlertInputs::default())
        .into_iter()
        .find(|a| a.kind == "insufficient_licenses")
        .expect("a shortage alert")
}

#[test]
fn a_shortage_alert_names_spare_units_only_where_the_reader_may_look() {
    let (mut c, a, emea, _amer) = shortage();
    let emea_admin = user_with(
        &mut c,
        "e",
        &[grant(Role::VaAdmin, Scope::Va(emea))],
        hash(1),
    );
    let a_user = user_with(
        &mut c,
        "u",
        &[grant(Role::AccountUser, Scope::Account(a.id))],
        hash(2),
    );
    let alert = shortage_alert(&c);
    assert!(!alert.message.contains("amer"), "{}", alert.message);

    let full = c.alert_message(&alert, &admin());
    assert!(full.contains("acme/Default/amer has 4 spare"), "{full}");
    assert_eq!(c.alert_message(&alert, &a_user), full);

    let scoped = c.alert_message(&alert, &emea_admin);
    assert!(
        scoped.starts_with("acme/Default/emea is short of 1 unit(s)"),
        "{scoped}"
    );
    assert!(
        !scoped.contains("amer"),
        "names a VA the reader cannot see: {scoped}"
    );
    assert!(
        !scoped.contains("purchase more"),
        "must not claim there are no spare units elsewhere: {scoped}"
    );
    assert!(
        scoped.contains("no VA you can see has spare units"),
        "{scoped}"
    );
}

#[test]
fn holdings_count_only_what_the_caller_may_read() {
    let (mut c, a, emea, _amer) = shortage();
    let other = add_account(&mut c, "other", "other.org");
    add_lic(&mut c, other.default_va, perpetual("X", 1));
    let timers = DeviceTimers::default();
    let all = c.holdings(&admin(), NOW, &timers);
    assert_eq!(
        (
            all.accounts,
            all.virtual_accounts,
            all.licenses,
            all.tokens,
            all.devices
        ),
        (2, 4, 3, 2, 2)
    );

    let emea_user = user_with(
        &mut c,
        "e",
        &[grant(Role::VaUser, Scope::Va(emea))],
        hash(1),
    );
    let h = c.holdings(&emea_user, NOW, &timers);
    assert_eq!(
        (
            h.accounts,
            h.virtual_accounts,
            h.licenses,
            h.tokens,
            h.devices
        ),
        (1, 1, 1, 2, 2)
    );
    assert_eq!(h.devices_by_state.values().sum::<usize>(), 2);

    let a_user = user_with(
        &mut c,
        "u",
        &[grant(Role::AccountUser, Scope::Account(a.id))],
        hash(2),
    );
    let h = c.holdings(&a_user, NOW, &timers);
    assert_eq!((h.accounts, h.virtual_accounts, h.licenses), (1, 3, 2));

    let nobody = user_with(&mut c, "n", &[], hash(3));
    let h = c.holdings(&nobody, NOW, &timers);
    assert_eq!(
        h.accounts + h.virtual_accounts + h.licenses + h.tokens + h.devices,
        0
    );
    assert_eq!(h.devices_by_state.values().sum::<usize>(), 0);
}

#[test]
fn the_metrics_reader_role_reads_metrics_and_nothing_else() {
    let (mut c, a, emea, _) = shortage();
    let reader = user_with(
        &mut c,
        "prom",
        &[grant(Role::MetricsReader, Scope::System)],
        hash(1),
    );
    assert!(reader.may_read_metrics());
    assert!(!reader.is_system_admin());
    assert!(admin().may_read_metrics());
    let va_admin = user_with(
        &mut c,
        "e",
        &[grant(Role::VaAdmin, Scope::Va(emea))],
        hash(2),
    );
    assert!(!va_admin.may_read_metrics());
    assert!(c.va_access(&reader, emea).is_none());
    assert!(!c.account_visible(&reader, a.id));
    assert!(c.check_system(&reader).is_err());
    // The role takes no scope.
    let u = c.users().find(|u| u.name == "e").unwrap().id;
    refused(c.grant_role(
        &admin(),
        u,
        grant(Role::MetricsReader, Scope::Account(a.id)),
    ));
}
