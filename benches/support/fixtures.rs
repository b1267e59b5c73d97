//! Records shared by the micro-benchmarks: a device shaped like the ones the satellite stores
//! after a few reports, and a catalog of many such devices in one VA and tag.
//! Included with `#[path]` by each bench target (they are separate crates).

#![allow(dead_code)] // reason: each bench target uses a different part of the fixtures

use std::collections::BTreeSet;

use satellite::domain::{
    Account, AccountId, AccountStatus, AuthorizationState, Catalog, DeviceTimers,
    EntitlementStatus, InstanceId, InstanceSource, InstanceStatus, License, LicenseId, LicenseKind,
    LicenseSource, ProductInstance, Record, Udi, VaId, VirtualAccount,
};
use time::OffsetDateTime;
use time::macros::datetime;

pub const TAG: &str = "regid.2017-03.com.example.advantage";
pub const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// A device of `va` registered `order`-th, using one unit of [`TAG`], with a stored answer:
/// the size of a typical `product_instances` record.
pub fn instance(account: AccountId, va: VaId, order: u64) -> ProductInstance {
    let timers = DeviceTimers::default();
    let mut i = ProductInstance {
        id: InstanceId::fresh(&satellite::app::RandomIds),
        account,
        va,
        udi: Udi {
            pid: "C9300-24T".into(),
            serial: format!("FOC{order:08}").into(),
        },
        hostname: format!("switch-{order}.branch.example.com").into(),
        product: "Catalyst 9300".into(),
        version: "17.9.4".into(),
        source: InstanceSource::Native,
        registered_at: (NOW - time::Duration::days(30)).into(),
        order,
        token: None,
        export_allowed: false,
        cert_serial: Some(format!("{:032x}", u128::from(order) * 0x9e37_79b9_7f4a_7c15).into()),
        cert_not_after: Some((NOW + time::Duration::days(335)).into()),
        last_contact: NOW.into(),
        last_report_at: Some(NOW.into()),
        last_seq: Some(42.into()),
        last_measured_at: Some(NOW.into()),
        usage: [(TAG.to_owned(), 1)].into_iter().collect(),
        last_answer: None,
        clock_skew: false,
    };
    i.set_answer(&AuthorizationState {
        status: InstanceStatus::Authorized,
        entitlements: vec![(TAG.into(), 1, EntitlementStatus::Authorized)],
        expires_at: NOW + timers.authorization_valid,
        next_report_by: NOW + timers.report_interval,
    });
    i
}

/// A catalog with one account, one VA holding `licenses` units of [`TAG`], and `devices`
/// devices in that VA using one unit each. Returns it with the devices in registration order.
pub fn catalog(devices: u64, licenses: u64) -> (Catalog, Vec<ProductInstance>) {
    let account = AccountId::fresh(&satellite::app::RandomIds);
    let va = VaId::fresh(&satellite::app::RandomIds);
    let mut records = vec![
        Record::Account(Account {
            id: account,
            name: "bench".to_owned(),
            domain: "bench.example.com".to_owned(),
            status: AccountStatus::Active,
            created_at: NOW,
            default_va: va,
        }),
        Record::Va(VirtualAccount {
            id: va,
            account,
            name: "Default".to_owned(),
            description: String::new(),
            parent: None,
            created_at: NOW,
        }),
        Record::License(License {
            id: LicenseId::fresh(&satellite::app::RandomIds),
            account,
            va,
            entitlement_tag: TAG.to_owned(),
            display_name: "Advantage".to_owned(),
            quantity: licenses,
            kind: LicenseKind::Perpetual,
            export_controlled: false,
            source: LicenseSource::Manual,
            order_ref: None,
            labels: BTreeSet::new(),
            created_at: NOW,
        }),
    ];
    let instances: Vec<_> = (0..devices).map(|i| instance(account, va, i)).collect();
    records.extend(instances.iter().cloned().map(Record::Instance));
    (Catalog::from_records(records), instances)
}
