//! Identifiers come in like the time: every operation that creates an entity takes its id from
//! the source its caller passes, so the same operations with the same source give the same
//! changes, byte for byte.

use super::*;

/// Runs one operator's day on a fresh catalog, drawing every id from `ids`, and returns every
/// change in order: an account and a VA, licenses and a transfer that splits an entry, a token
/// and a device registered with it, a user with an API token, and a license reservation.
fn a_day(ids: &SequentialIds) -> Vec<Change> {
    let mut c = Catalog::new();
    let mut changes = Vec::new();
    let mut keep = |c: &mut Catalog, change: Change| {
        c.apply(&change);
        changes.push(change);
    };
    let p = admin();
    let (change, a) = c.create_account(&p, "acme", "acme.com", NOW, ids).unwrap();
    keep(&mut c, change);
    let (change, lab) = c.create_va(&p, a.default_va, "lab", "", NOW, ids).unwrap();
    keep(&mut c, change);
    let (change, _) = c
        .add_license(&p, a.default_va, perpetual("T", 5), NOW, ids)
        .unwrap();
    keep(&mut c, change);
    let change = c
        .transfer_licenses(&p, a.default_va, lab.id, "T", 3, None, NOW, ids)
        .unwrap();
    keep(&mut c, change);
    let (change, _) = c
        .create_token(&p, lab.id, token_spec(), hash(1), NOW, ids)
        .unwrap();
    keep(&mut c, change);
    let r = Registration {
        token_hash: hash(1),
        udi: Udi {
            pid: "P".into(),
            serial: "S1".into(),
        },
        hostname: "h".into(),
        product: "p".into(),
        version: "v".into(),
        force: false,
    };
    let issued = |_| {
        Ok(IssuedIdentity {
            serial: "C1".into(),
            not_after: NOW + Duration::days(365),
        })
    };
    let (change, _) = c.register_device(&r, NOW, ids, issued).unwrap();
    keep(&mut c, change);
    let (change, u) = c.create_user(&p, "viewer", NOW, ids).unwrap();
    keep(&mut c, change);
    let (change, _) = c
        .create_api_token(&p, u.id, "cli", None, hash(2), NOW, ids)
        .unwrap();
    keep(&mut c, change);
    let request = ReservationRequest {
        udi: Udi {
            pid: "P".into(),
            serial: "OFFLINE".into(),
        },
        entitlements: [("T".to_string(), 1)].into(),
        nonce: "n".into(),
    };
    let (change, _) = c
        .reserve(&p, a.default_va, &request, false, NOW, ids, |r, _| {
            IssuedAuthorization {
                code: format!("code-{}", r.id),
                code_sha256: hash(3),
                return_proof_sha256: hash(4),
            }
        })
        .unwrap();
    keep(&mut c, change);
    changes
}

#[test]
fn the_same_id_source_gives_the_same_changes() {
    let first = a_day(&SequentialIds::new());
    let second = a_day(&SequentialIds::new());
    assert_eq!(first, second);
    // Every id came from the source, none from elsewhere: ten entities were created (the
    // account, its Default VA, a VA, a license, the split entry, a token, a device, a user,
    // an API token, a reservation), so the source's next id is the eleventh.
    let ids = SequentialIds::new();
    a_day(&ids);
    assert_eq!(ids.next_uuid(), uuid::Uuid::from_u128(11));
}
