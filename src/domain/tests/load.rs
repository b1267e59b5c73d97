//! Loading the catalog from stored records in bulk (`CatalogLoad`) gives the same device
//! indexes as applying the same records one by one, whatever their order.

use std::collections::BTreeMap;

use super::*;
use crate::domain::model::{InstanceSource, TagCounts};

/// Devices spread over `vas`, with 0–3 tags each (some shared, with repeated registration
/// orders across VAs), some with a certificate, one with a skewed clock.
fn devices(account: AccountId, vas: &[VaId], n: u64) -> Vec<ProductInstance> {
    (0..n)
        .map(|k| {
            let mut i = ProductInstance::first_seen(
                InstanceId::fresh(&IDS),
                account,
                vas[(k * 7 % vas.len() as u64) as usize],
                Udi {
                    pid: format!("PID{}", k % 3).into(),
                    serial: format!("SER{:05}", (k * 7919) % 100_000).into(),
                },
                InstanceSource::Native,
                1000 - k,
                NOW + Duration::seconds((k * 37 % 101) as i64),
            );
            i.hostname = format!("Host-{}", k % 13).into();
            i.usage = (0..k % 4)
                .map(|t| (format!("tag_{}", (k + t) % 5), 1 + t))
                .collect::<TagCounts>();
            i.cert_serial = (k % 2 == 0).then(|| format!("C{k}").into());
            i.clock_skew = k == 5;
            i
        })
        .collect()
}

/// Everything the devices area indexes, in a form that compares without regard to how the
/// tables were built.
fn indexes(c: &Catalog) -> String {
    let f = &c.fleet;
    let pools: BTreeMap<_, BTreeMap<String, (Vec<_>, u64)>> = f
        .pools
        .iter()
        .map(|(va, tags)| {
            let tags = tags
                .iter()
                .map(|(t, p)| (t.to_string(), (p.users.iter().collect(), p.total)))
                .collect();
            (*va, tags)
        })
        .collect();
    let by_va: BTreeMap<_, _> = f.instances_by_va.iter().collect();
    let tags_in_use: BTreeMap<_, _> = f.tags_in_use.iter().collect();
    let serials: BTreeMap<_, _> = f.instances_by_serial.iter().collect();
    let udis: BTreeMap<_, _> = f
        .instances
        .values()
        .map(|i| (i.id, c.instance_by_udi(i.account, &i.udi).map(|d| d.id)))
        .collect();
    format!(
        "{pools:?}\n{by_va:?}\n{tags_in_use:?}\n{serials:?}\n{udis:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{}",
        f.by_serial_text, f.by_hostname, f.by_contact, f.skewed, f.next_order
    )
}

#[test]
fn a_bulk_load_builds_the_indexes_that_single_puts_build() {
    let (mut c, account) = with_account("acme", "acme.com");
    let root = account.default_va;
    let vas = [root, mk_va(&mut c, root, "a"), mk_va(&mut c, root, "b")];
    let records: Vec<Record> = devices(account.id, &vas, 200)
        .into_iter()
        .map(Record::Instance)
        .collect();
    let mut one_by_one = c.clone();
    for r in &records {
        one_by_one.apply(&Change::silent().put(r.clone()));
    }
    // The store hands records table by table; devices may come before their VAs.
    let mut load = CatalogLoad::new();
    for r in records.iter().rev() {
        load.add(r.clone());
    }
    for va in c.vas_of(account.id) {
        load.add(Record::Va(va.clone()));
    }
    for a in c.accounts() {
        load.add(Record::Account(a.clone()));
    }
    let loaded = load.finish();
    assert_eq!(indexes(&loaded), indexes(&one_by_one));
    assert_eq!(loaded.instance_count(), 200);
    // The loaded catalog keeps its indexes true through later changes.
    let moved = records
        .iter()
        .find_map(|r| match r {
            Record::Instance(i) if !i.usage.is_empty() => Some(i.clone()),
            _ => None,
        })
        .expect("a device with usage");
    let mut both = [loaded, one_by_one];
    for c in &mut both {
        let mut i = moved.clone();
        i.va = vas[2];
        i.usage = [("tag_9", 4)].into_iter().collect();
        c.apply(&Change::silent().put(Record::Instance(i)));
    }
    assert_eq!(indexes(&both[0]), indexes(&both[1]));
}

#[test]
fn a_device_loaded_twice_keeps_the_later_copy_and_no_stale_index_entry() {
    let (c, account) = with_account("acme", "acme.com");
    let va = account.default_va;
    let first = devices(account.id, &[va], 4);
    let mut second = first[1].clone();
    second.hostname = "renamed".into();
    second.last_contact = (NOW + Duration::days(1)).into();
    second.usage = [("tag_7", 2)].into_iter().collect();
    let mut load = CatalogLoad::new();
    for i in first.iter().chain([&second]) {
        load.add(Record::Instance(i.clone()));
    }
    let loaded = load.finish();
    let mut expected = c;
    for i in first.iter().chain([&second]) {
        expected.apply(&Change::silent().put(Record::Instance(i.clone())));
    }
    assert_eq!(indexes(&loaded), indexes(&expected));
    assert_eq!(loaded.fleet.by_hostname.len(), 4);
    let renamed: Vec<_> = loaded
        .instances_by_prefix(TextIndex::Hostname, "renamed", None)
        .collect();
    assert_eq!(renamed.len(), 1);
}

/// A loaded device is one boxed record, and the allocator rounds each allocation up to a size
/// class: 320 bytes is one, the next is 384. Rust asks mimalloc for aligned memory
/// (`mi_malloc_aligned`, alignment 8), and when the class has no free block at hand mimalloc
/// over-allocates by the alignment less one, so a record of exactly 320 bytes lands in the
/// 384-byte class about as often as not; at 312 bytes or less even the over-allocation fits.
/// Past that bound each device costs 64 bytes more, 61 MiB at a million (docs/benchmarks.md,
/// "Where a device's 448 bytes came from", and "A device in 320 bytes").
#[test]
fn a_device_record_fits_its_size_class() {
    let size = std::mem::size_of::<crate::domain::model::ProductInstance>();
    assert!(
        size + 7 <= 320,
        "ProductInstance is {size} bytes: with mimalloc's over-allocation for alignment it takes \
         a 384-byte block"
    );
}
