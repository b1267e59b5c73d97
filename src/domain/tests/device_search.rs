//! The prefix indexes the console's device search reads: by UDI serial number and by host
//! name, paged by key. Every index entry matches a device record, a changed host name moves
//! the device in its index, and paging through a prefix visits each match exactly once.

use super::*;

fn register_named(c: &mut Catalog, serial: &str, hostname: &str) -> InstanceId {
    let r = Registration {
        token_hash: hash(1),
        udi: Udi {
            pid: "P".into(),
            serial: serial.into(),
        },
        hostname: hostname.into(),
        product: "p".into(),
        version: "v".into(),
        force: false,
    };
    let (change, i) = c
        .register_device(&r, NOW, &IDS, |_| {
            Ok(IssuedIdentity {
                serial: format!("C-{serial}"),
                not_after: NOW + Duration::days(365),
            })
        })
        .expect("registered");
    c.apply(&change);
    i.id
}

/// Every id whose text starts with `prefix` (ASCII case ignored), read in pages of `size`.
fn paged(c: &Catalog, index: TextIndex, prefix: &str, size: usize) -> Vec<InstanceId> {
    let text = |i: &ProductInstance| match index {
        TextIndex::Serial => i.udi.serial.to_ascii_lowercase(),
        TextIndex::Hostname => i.hostname.to_ascii_lowercase(),
    };
    let (mut out, mut after) = (Vec::new(), None);
    loop {
        let page: Vec<_> = c
            .instances_by_prefix(index, prefix, after)
            .take(size)
            .collect();
        let Some((last, _)) = page.last() else {
            return out;
        };
        after = Some(*last);
        out.extend(
            page.iter()
                .filter(|(_, i)| text(i).starts_with(&prefix.to_ascii_lowercase()))
                .map(|(_, i)| i.id),
        );
    }
}

fn sorted(mut ids: Vec<InstanceId>) -> Vec<InstanceId> {
    ids.sort();
    ids
}

#[test]
fn prefix_searches_page_through_each_match_once() {
    let (mut c, account) = with_account("acme", "acme.com");
    c.commit(c.create_token(
        &admin(),
        account.default_va,
        token_spec(),
        hash(1),
        NOW,
        &IDS,
    ));
    let mut foc = Vec::new();
    for n in 0..30 {
        foc.push(register_named(
            &mut c,
            &format!("FOC{n:04}"),
            &format!("sw-{n}"),
        ));
    }
    // Longer than the key: these share its 8 bytes and differ after them.
    let long_a = register_named(&mut c, "LONGSERIAL-A", "Core-Router-1");
    let long_b = register_named(&mut c, "LONGSERIAL-B", "core-router-2");
    register_named(&mut c, "XYZ", "edge");

    for size in [1, 7, 100] {
        assert_eq!(
            sorted(paged(&c, TextIndex::Serial, "foc", size)),
            sorted(foc.clone())
        );
    }
    assert_eq!(paged(&c, TextIndex::Serial, "FOC001", 3).len(), 10);
    assert_eq!(paged(&c, TextIndex::Serial, "LONGSERIAL-B", 1), [long_b]);
    assert_eq!(
        sorted(paged(&c, TextIndex::Hostname, "CORE-ROUTER", 1)),
        sorted(vec![long_a, long_b])
    );
    assert!(paged(&c, TextIndex::Hostname, "nothing", 5).is_empty());
    assert_eq!(paged(&c, TextIndex::Serial, "", 4).len(), 33);

    // A cursor past every key of the prefix has nothing after it.
    let last = c
        .instances_by_prefix(TextIndex::Serial, "XYZ", None)
        .last()
        .map(|(k, _)| k);
    assert_eq!(
        c.instances_by_prefix(TextIndex::Serial, "XYZ", last)
            .count(),
        0
    );
}

#[test]
fn a_renamed_or_removed_device_leaves_its_old_index_keys() {
    let (mut c, account) = with_account("acme", "acme.com");
    c.commit(c.create_token(
        &admin(),
        account.default_va,
        token_spec(),
        hash(1),
        NOW,
        &IDS,
    ));
    let id = register_named(&mut c, "FOC1", "old-name");
    let mut renamed = c.instance(id).unwrap().clone();
    renamed.hostname = "new-name".into();
    c.apply_owned(Change::silent().put(Record::Instance(renamed)));
    assert!(paged(&c, TextIndex::Hostname, "old", 10).is_empty());
    assert_eq!(paged(&c, TextIndex::Hostname, "new", 10), [id]);
    assert_eq!(c.fleet.by_hostname.len(), 1);

    c.apply_owned(Change::silent().remove(Removal::Instance(id)));
    assert!(c.fleet.by_hostname.is_empty());
    assert!(c.fleet.by_serial_text.is_empty());
}
