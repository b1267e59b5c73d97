//! The allocation step of every usage report and authorization query: one VA and tag with
//! 1,000 devices, under-subscribed (the O(1) answer) and over-subscribed (a walk of the
//! devices registered before the caller).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use satellite::domain::{DeviceTimers, EntitlementStatus};
use std::hint::black_box;

#[path = "support/fixtures.rs"]
mod fixtures;

use fixtures::{NOW, TAG};

const DEVICES: u64 = 1_000;

fn allocation(c: &mut Criterion) {
    let timers = DeviceTimers::default();
    let mut group = c.benchmark_group("allocation");
    for (name, licenses, expect_last) in [
        (
            "under_subscribed",
            2 * DEVICES,
            EntitlementStatus::Authorized,
        ),
        (
            "over_subscribed",
            DEVICES / 2,
            EntitlementStatus::OutOfCompliance,
        ),
    ] {
        let (catalog, devices) = fixtures::catalog(DEVICES, licenses);
        // The first device is answered without a walk in both cases; the last one walks the
        // whole pool when it is over-subscribed (up to the first device that does not fit).
        for (which, device) in [
            ("first", &devices[0]),
            ("last", &devices[devices.len() - 1]),
        ] {
            let status = catalog.entitlement_status(device, TAG, 1, NOW);
            if which == "last" {
                assert_eq!(
                    status, expect_last,
                    "{name}: the fixture is not what it claims"
                );
            }
            group.bench_with_input(
                BenchmarkId::new(format!("entitlement_status/{name}"), which),
                device,
                |b, device| b.iter(|| catalog.entitlement_status(black_box(device), TAG, 1, NOW)),
            );
        }
        let last = &devices[devices.len() - 1];
        group.bench_with_input(
            BenchmarkId::new(format!("authorization/{name}"), "last"),
            last,
            |b, device| b.iter(|| catalog.authorization(black_box(device), NOW, &timers)),
        );
    }
    group.finish();
}

criterion_group!(benches, allocation);
criterion_main!(benches);
