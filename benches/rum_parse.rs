//! The Cisco RUM parser on the captured example upload (`tests/data/cisco-rum`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const FIXTURE: &[u8] = include_bytes!("../tests/data/cisco-rum/example-rum-1671840750.xml");

fn rum(c: &mut Criterion) {
    let reports = satellite::protocol::rum::parse(FIXTURE).expect("the fixture parses");
    assert!(!reports.is_empty());
    let mut group = c.benchmark_group("rum");
    group.throughput(Throughput::Bytes(FIXTURE.len() as u64));
    group.bench_function("parse_example_upload", |b| {
        b.iter(|| satellite::protocol::rum::parse(black_box(FIXTURE)).expect("parses"))
    });
    group.finish();
}

criterion_group!(benches, rum);
criterion_main!(benches);
