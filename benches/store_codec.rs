//! The store codec on the hot path: every usage report encodes one `ProductInstance`, and
//! start-up decodes every stored one.

use criterion::{Criterion, criterion_group, criterion_main};
use satellite::domain::{AccountId, ProductInstance, VaId};
use satellite::store::{decode, encode};
use std::hint::black_box;

#[path = "support/fixtures.rs"]
mod fixtures;

fn codec(c: &mut Criterion) {
    let record = fixtures::instance(
        AccountId::fresh(&satellite::app::RandomIds),
        VaId::fresh(&satellite::app::RandomIds),
        7,
    );
    let bytes = encode(&record);
    let key = record.id.as_bytes().to_vec();
    let mut group = c.benchmark_group("store_codec");
    group.throughput(criterion::Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode_product_instance", |b| {
        b.iter(|| encode(black_box(&record)))
    });
    group.bench_function("decode_product_instance", |b| {
        b.iter(|| {
            decode::<ProductInstance>("product_instances", &key, black_box(&bytes))
                .expect("decodes")
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
