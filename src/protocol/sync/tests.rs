//! Every refusal is produced from a real signed file that was modified the way a mistake or an
//! attacker would, through one `check` helper that opens it like a receiver does.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::envelope::signing_input;
use super::key::parse_public_key;
use super::*;
use crate::protocol::device::Udi;

const T0: OffsetDateTime = datetime!(2025-03-01 12:00:00 UTC);
const MAX_AGE: Duration = Duration::days(30);

fn child_key() -> SatelliteKey {
    SatelliteKey::from_seed(&[1; 32])
}

fn upstream_key() -> SatelliteKey {
    SatelliteKey::from_seed(&[2; 32])
}

fn issuer_key() -> SatelliteKey {
    SatelliteKey::from_seed(&[3; 32])
}

fn id(s: &str) -> SatelliteId {
    SatelliteId::new(s)
}

fn trusted() -> TrustedKeys {
    TrustedKeys::new()
        .with(id("child-1"), child_key().public_key())
        .with(id("upstream"), upstream_key().public_key())
        .with(id("license-desk"), issuer_key().public_key())
}

/// Opens `bytes` as `me`, with `last` the last sequence number applied from any sender.
fn check<T: Signed>(
    bytes: &[u8],
    me: &str,
    last: Option<u64>,
    now: OffsetDateTime,
) -> Result<T, SyncError> {
    let me = id(me);
    let accounts = ["example.com".to_string()];
    let trusted = trusted();
    let ctx = VerifyCtx {
        me: &me,
        accounts: &accounts,
        trusted: &trusted,
        last_seq: move |_: &SatelliteId| last,
        now,
        max_age: MAX_AGE,
        max_skew: Duration::minutes(5),
    };
    open(bytes, &ctx)
}

fn udi(serial: &str) -> Udi {
    Udi {
        pid: "C9300-24T".into(),
        serial: serial.into(),
    }
}

fn request(seq: u64) -> SyncRequest {
    SyncRequest {
        from: id("child-1"),
        to: id("upstream"),
        seq,
        ack_upstream_seq: seq - 1,
        created_at: T0,
        changes: vec![
            Change::Registration {
                instance_id: "0195a1b2-0000-7000-8000-000000000001".into(),
                va: "EXAMPLE/Default/site-a".into(),
                udi: udi("FOC1234X0AB"),
                hostname: "sw-core-1".into(),
                product: "Catalyst 9300".into(),
                version: "17.9.4".into(),
                registered_at: datetime!(2025-02-27 08:30:00 UTC),
            },
            Change::Usage {
                va: "EXAMPLE/Default/site-a".into(),
                entitlement_tag: "regid.2017-03.com.cisco.advantage_k9".into(),
                devices: 2,
                units_requested: 3,
                units_granted: 3,
                measured_at: datetime!(2025-03-01 11:00:00 UTC),
            },
            Change::Removal {
                instance_id: "0195a1b2-0000-7000-8000-000000000002".into(),
                reason: "deregistered by the device".into(),
            },
            Change::RumReport {
                report_id: 1_740_800_000,
                udi: udi("FOC1234X0AB"),
                raw: r#"{"rum_report":{"report_id":1740800000}}"#.into(),
            },
        ],
    }
}

fn line(id: &str, quantity: u64) -> LicenseLine {
    LicenseLine {
        id: id.into(),
        entitlement_tag: "regid.2017-03.com.cisco.advantage_k9".into(),
        display_name: "C9300 DNA Advantage, 24 ports".into(),
        quantity,
        kind: LicenseKind::Term,
        start: Some(datetime!(2025-01-01 00:00:00 UTC)),
        end: Some(datetime!(2028-01-01 00:00:00 UTC)),
        export_controlled: false,
        order_ref: Some("SO-1001".into()),
        labels: BTreeSet::from(["campus".to_string()]),
    }
}

fn response(seq: u64) -> SyncResponse {
    SyncResponse {
        from: id("upstream"),
        to: id("child-1"),
        seq,
        acks: vec![seq],
        created_at: T0,
        pools: vec![PoolSnapshot {
            va: "EXAMPLE/Default/site-a".into(),
            full: true,
            licenses: vec![line("lic-1", 10)],
            removed: vec![],
        }],
        removals: vec![Removal {
            instance_id: "0195a1b2-0000-7000-8000-000000000003".into(),
            reason: "removed upstream by an administrator".into(),
        }],
        revocations: vec![Revocation {
            certificate_serial: "4f1a09".into(),
            reason: "device removed".into(),
        }],
        cisco_acks: vec![],
    }
}

/// A response carrying a Cisco ACK is written in format 2; one without is still format 1, so
/// an older satellite reads it; an older satellite (reading format 1 only) refuses the former
/// before parsing its body, naming both versions.
#[test]
fn a_response_with_cisco_acks_is_format_2_and_refused_cleanly_by_a_format_1_reader() {
    let key = upstream_key();
    let plain = sign(&key, response(3)).expect("sign");
    assert_eq!(plain.format, 1, "nothing new: format 1");
    let mut with_ack = response(3);
    with_ack.cisco_acks = vec![super::CiscoAckLine {
        udi: udi("FOC1"),
        report_ids: vec![1, 2],
        file: "PHNtYXJ0TGljZW5zZS8+".into(),
        has_policy: false,
    }];
    let signed = sign(&key, with_ack.clone()).expect("sign");
    assert_eq!(signed.format, 2);
    let e = super::envelope::check_format(u64::from(signed.format), 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the file has format 2, newer than this satellite understands (format 1); upgrade \
         this satellite, or have the sender use the same version"
    );
    let bytes = signed.to_json().unwrap();
    let opened: SyncResponse = check(&bytes, "child-1", Some(2), T0).expect("format 2 opens");
    assert_eq!(opened.cisco_acks, with_ack.cisco_acks);
    // A format-1 file may not carry what needs format 2 (the signature binds the format, so
    // only a signer could write one).
    let mut forged = signed;
    forged.format = 1;
    let bytes = forged.to_json().unwrap();
    let refused = check::<SyncResponse>(&bytes, "child-1", Some(2), T0).unwrap_err();
    assert!(refused.to_string().contains("needs format 2"), "{refused}");
    // Unsorted or empty report lists are refused.
    with_ack.cisco_acks[0].report_ids = vec![2, 1];
    assert!(sign(&key, with_ack).is_err());
}

fn license_file() -> LicenseFile {
    LicenseFile {
        issuer: id("license-desk"),
        account_domain: "example.com".into(),
        file_id: "lf-2025-0042".into(),
        created_at: T0,
        grants: vec![LicenseGrant {
            va: "EXAMPLE/Default".into(),
            licenses: vec![LicenseLine {
                kind: LicenseKind::Perpetual,
                start: None,
                end: None,
                ..line("lic-9", 5)
            }],
        }],
    }
}

fn file<T: Signed>(key: &SatelliteKey, body: T) -> Vec<u8> {
    sign(key, body).expect("sign").to_json().expect("encode")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[test]
fn a_request_round_trips() {
    let bytes = file(&child_key(), request(1));
    let got: SyncRequest = check(&bytes, "upstream", None, T0).expect("open");
    assert_eq!(got, request(1));
}

#[test]
fn a_response_round_trips() {
    let bytes = file(&upstream_key(), response(4));
    let got: SyncResponse = check(&bytes, "child-1", Some(3), T0).expect("open");
    assert_eq!(got, response(4));
}

#[test]
fn a_license_file_round_trips_and_needs_a_held_account() {
    let bytes = file(&issuer_key(), license_file());
    let got: LicenseFile = check(&bytes, "anyone", None, T0).expect("open");
    assert_eq!(got, license_file());

    let other = LicenseFile {
        account_domain: "other.example".into(),
        ..license_file()
    };
    let err = check::<LicenseFile>(&file(&issuer_key(), other), "anyone", None, T0);
    assert_eq!(
        err,
        Err(SyncError::WrongAccount {
            found: "other.example".into()
        })
    );
}

#[test]
fn whitespace_and_key_order_do_not_matter_only_meaning_does() {
    let bytes = file(&child_key(), request(1));
    // serde_json::Value sorts object keys and this prints it compactly: every byte moves.
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let reordered = serde_json::to_vec(&value).expect("json");
    assert_ne!(reordered, bytes);
    let got: SyncRequest = check(&reordered, "upstream", None, T0).expect("open");
    assert_eq!(got, request(1));
}

#[test]
fn a_time_in_another_spelling_is_refused() {
    // The same instant, written as the `time` parser would also accept it.
    let bytes = text(&file(&child_key(), request(1)));
    for other in [
        "2025-03-01t12:00:00Z",
        "2025-03-01 12:00:00Z",
        "2025-03-01T12:00:00.0Z",
    ] {
        let respelled = bytes.replace(
            "\"created_at\": \"2025-03-01T12:00:00Z\"",
            &format!("\"created_at\": \"{other}\""),
        );
        assert_ne!(respelled, bytes);
        let err = check::<SyncRequest>(respelled.as_bytes(), "upstream", None, T0);
        assert!(
            matches!(&err, Err(SyncError::Malformed(m)) if m.contains("2025-03-01T12:00:00Z")),
            "{other}: {err:?}"
        );
    }
}

#[test]
fn a_changed_value_in_the_body_breaks_the_signature() {
    let bytes = text(&file(&child_key(), request(1)));
    let tampered = bytes.replace("\"units_granted\": 3", "\"units_granted\": 2");
    assert_ne!(tampered, bytes);
    let err = check::<SyncRequest>(tampered.as_bytes(), "upstream", None, T0);
    assert_eq!(err, Err(SyncError::BadSignature));
}

#[test]
fn the_recipient_is_signed() {
    let bytes = text(&file(&child_key(), request(1)));
    let redirected = bytes.replace("\"to\": \"upstream\"", "\"to\": \"upstream-b\"");
    assert_ne!(redirected, bytes);
    let err = check::<SyncRequest>(redirected.as_bytes(), "upstream-b", None, T0);
    assert_eq!(err, Err(SyncError::BadSignature));
}

#[test]
fn no_single_flipped_bit_is_accepted() {
    let bytes = file(&child_key(), request(1));
    for i in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 1;
        let result = check::<SyncRequest>(&flipped, "upstream", None, T0);
        assert!(result.is_err(), "flipping byte {i} was accepted");
    }
}

#[test]
fn a_truncated_file_is_refused_as_truncated() {
    let bytes = file(&upstream_key(), response(1));
    for cut in [0, 1, 20, bytes.len() / 3, bytes.len() / 2, bytes.len() - 2] {
        let err = check::<SyncResponse>(&bytes[..cut], "child-1", None, T0);
        assert!(
            matches!(err, Err(SyncError::Truncated { .. })),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn an_unknown_field_is_refused_even_when_otherwise_valid() {
    let bytes = text(&file(&child_key(), request(1)));
    let in_body = bytes.replace("\"seq\": 1,", "\"seq\": 1, \"priority\": 9,");
    let err = check::<SyncRequest>(in_body.as_bytes(), "upstream", None, T0);
    assert!(
        matches!(&err, Err(SyncError::Malformed(m)) if m.contains("priority") && m.contains("line")),
        "{err:?}"
    );

    let in_change = bytes.replace("\"devices\": 2,", "\"devices\": 2, \"extra\": true,");
    let err = check::<SyncRequest>(in_change.as_bytes(), "upstream", None, T0);
    assert!(
        matches!(&err, Err(SyncError::Malformed(m)) if m.contains("extra")),
        "{err:?}"
    );

    let in_envelope = bytes.replacen("\"format\": 1,", "\"format\": 1, \"note\": \"hi\",", 1);
    let err = check::<SyncRequest>(in_envelope.as_bytes(), "upstream", None, T0);
    assert!(
        matches!(&err, Err(SyncError::Malformed(m)) if m.contains("note")),
        "{err:?}"
    );
}

#[test]
fn an_unpinned_signer_is_refused_before_anything_else() {
    // Signed by a stranger, also addressed elsewhere and replayed: only the signer is reported.
    let stranger = SatelliteKey::from_seed(&[9; 32]);
    let body = SyncRequest {
        to: id("elsewhere"),
        ..request(1)
    };
    let err = check::<SyncRequest>(&file(&stranger, body), "upstream", Some(5), T0);
    assert_eq!(
        err,
        Err(SyncError::UnknownSender {
            signer: stranger.id().clone()
        })
    );
}

#[test]
fn a_pinned_key_cannot_sign_for_another_sender() {
    let body = SyncRequest {
        from: id("child-2"),
        ..request(1)
    };
    let err = check::<SyncRequest>(&file(&child_key(), body), "upstream", None, T0);
    assert_eq!(
        err,
        Err(SyncError::SenderMismatch {
            claimed: id("child-2"),
            pinned: id("child-1")
        })
    );
}

#[test]
fn a_file_for_another_satellite_is_refused() {
    let bytes = file(&child_key(), request(1));
    let err = check::<SyncRequest>(&bytes, "upstream-b", None, T0);
    assert_eq!(
        err,
        Err(SyncError::WrongRecipient {
            to: id("upstream"),
            me: id("upstream-b")
        })
    );
}

#[test]
fn an_applied_message_is_a_replay() {
    let bytes = file(&child_key(), request(3));
    for last in [3, 7] {
        let err = check::<SyncRequest>(&bytes, "upstream", Some(last), T0);
        assert_eq!(err, Err(SyncError::Replayed { seq: 3, last }));
    }
}

#[test]
fn a_skipped_message_is_out_of_order() {
    let bytes = file(&upstream_key(), response(5));
    let err = check::<SyncResponse>(&bytes, "child-1", Some(3), T0);
    assert_eq!(
        err,
        Err(SyncError::OutOfOrder {
            seq: 5,
            expected: 4
        })
    );
    let first = check::<SyncResponse>(&bytes, "child-1", None, T0);
    assert_eq!(
        first,
        Err(SyncError::OutOfOrder {
            seq: 5,
            expected: 1
        })
    );
}

#[test]
fn an_old_file_is_stale_and_a_future_one_is_refused() {
    let bytes = file(&child_key(), request(1));
    let late = T0 + MAX_AGE + Duration::seconds(1);
    let err = check::<SyncRequest>(&bytes, "upstream", None, late);
    assert_eq!(
        err,
        Err(SyncError::Stale {
            created_at: T0,
            max_age: MAX_AGE
        })
    );
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("2025-03-01T12:00:00Z")
    );
    assert!(check::<SyncRequest>(&bytes, "upstream", None, T0 + MAX_AGE).is_ok());

    let early = T0 - Duration::minutes(6);
    let err = check::<SyncRequest>(&bytes, "upstream", None, early);
    assert_eq!(
        err,
        Err(SyncError::CreatedInTheFuture {
            created_at: T0,
            now: early
        })
    );
}

#[test]
fn a_newer_format_is_refused_before_its_contents_are_judged() {
    let bytes = text(&file(&child_key(), request(1)));
    let newer = bytes
        .replacen(
            "\"format\": 1,",
            "\"format\": 3, \"compression\": \"none\",",
            1,
        )
        .replace(
            "\"kind\": \"sync_request\"",
            "\"kind\": \"sync_request_v2\"",
        );
    let err = check::<SyncRequest>(newer.as_bytes(), "upstream", None, T0);
    assert_eq!(
        err,
        Err(SyncError::FormatFromTheFuture {
            found: 3,
            supported: FORMAT
        })
    );
}

#[test]
fn a_file_of_another_kind_is_refused() {
    let bytes = file(&upstream_key(), response(1));
    let err = check::<SyncRequest>(&bytes, "upstream", None, T0);
    assert_eq!(
        err,
        Err(SyncError::WrongKind {
            expected: Kind::SyncRequest,
            found: "sync_response".into()
        })
    );
    assert_eq!(peek_kind(&bytes), Ok(Kind::SyncResponse));
}

#[test]
fn an_oversized_file_is_refused_unread() {
    let bytes = vec![b' '; MAX_FILE_BYTES + 1];
    let err = check::<SyncRequest>(&bytes, "upstream", None, T0);
    assert_eq!(
        err,
        Err(SyncError::TooLarge {
            size: MAX_FILE_BYTES + 1,
            max: MAX_FILE_BYTES
        })
    );
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    for junk in [
        &b"[1,2,3]"[..],
        b"{\"format\":1}",
        b"{\"format\":0,\"kind\":\"sync_request\"}",
        b"{\"format\":\"1\"}",
        b"\xff\xfe",
        b"null",
    ] {
        let err = check::<SyncRequest>(junk, "upstream", None, T0);
        assert!(
            matches!(err, Err(SyncError::Malformed(_))),
            "{junk:?}: {err:?}"
        );
    }
}

#[test]
fn invalid_bodies_are_neither_signed_nor_accepted() {
    let mut bad = license_file();
    bad.grants[0].licenses[0].kind = LicenseKind::Term;
    let err = sign(&issuer_key(), bad.clone()).unwrap_err();
    assert!(
        matches!(&err, SignError::Invalid { reason, .. } if reason.contains("term")),
        "{err}"
    );

    // Signed properly, so the refusal can only come from the receiver's own checks.
    let envelope = Envelope {
        format: FORMAT,
        kind: Kind::LicenseFile,
        signer: issuer_key().id().clone(),
        signature: {
            let input = signing_input(Kind::LicenseFile, FORMAT, &bad).expect("encode");
            key::hex(&issuer_key().sign(&input).to_bytes())
        },
        body: bad,
    };
    let bytes = envelope.to_json().expect("encode");
    let err = check::<LicenseFile>(&bytes, "anyone", None, T0);
    assert!(
        matches!(&err, Err(SyncError::Malformed(m)) if m.contains("term")),
        "{err:?}"
    );
}

/// Signs `body` without the sender's own checks, as a faulty or hostile sender could, so the
/// refusal can only come from the receiver's.
fn signed_anyway<T: Signed + serde::Serialize>(key: &SatelliteKey, body: T) -> Vec<u8> {
    let envelope = Envelope {
        format: FORMAT,
        kind: T::KIND,
        signer: key.id().clone(),
        signature: {
            let input = signing_input(T::KIND, FORMAT, &body).expect("encode");
            key::hex(&key.sign(&input).to_bytes())
        },
        body,
    };
    envelope.to_json().expect("encode")
}

#[test]
fn quantities_past_the_maximum_are_neither_signed_nor_accepted() {
    const MAX: u64 = crate::domain::MAX_UNITS;
    let malformed = |e: Result<(), SyncError>, field: &str, n: u64| {
        assert!(
            matches!(&e, Err(SyncError::Malformed(m))
                if m.contains(field) && m.contains(&n.to_string())
                    && m.contains("maximum of 1000000000000")),
            "{field} = {n}: {e:?}"
        );
    };
    for n in [MAX + 1, i64::MAX as u64, u64::MAX] {
        // A license file line.
        let mut f = license_file();
        f.grants[0].licenses[0].quantity = n;
        assert!(matches!(
            sign(&issuer_key(), f.clone()),
            Err(SignError::Invalid { .. })
        ));
        let bytes = signed_anyway(&issuer_key(), f);
        malformed(
            check::<LicenseFile>(&bytes, "anyone", None, T0).map(drop),
            "grants[0].licenses[0].quantity",
            n,
        );
        // A pool line of a response.
        let mut r = response(1);
        r.pools[0].licenses[0].quantity = n;
        let bytes = signed_anyway(&upstream_key(), r);
        malformed(
            check::<SyncResponse>(&bytes, "child-1", None, T0).map(drop),
            "pools[0].licenses[0].quantity",
            n,
        );
        // Usage numbers of a request.
        for field in ["devices", "units_requested"] {
            let mut q = request(1);
            for c in &mut q.changes {
                if let Change::Usage {
                    devices,
                    units_requested,
                    units_granted,
                    ..
                } = c
                {
                    *units_granted = 0;
                    match field {
                        "devices" => *devices = n,
                        _ => *units_requested = n,
                    }
                }
            }
            let bytes = signed_anyway(&child_key(), q);
            malformed(
                check::<SyncRequest>(&bytes, "upstream", None, T0).map(drop),
                field,
                n,
            );
        }
    }
    // The maximum itself is accepted.
    let mut f = license_file();
    f.grants[0].licenses[0].quantity = MAX;
    check::<LicenseFile>(&file(&issuer_key(), f), "anyone", None, T0).expect("accepted");
}

#[test]
fn the_signature_is_pinned() {
    // A fixed key signing a fixed body must give these bytes forever: if this fails, files
    // written by older versions no longer verify. Add a new FORMAT instead of editing this.
    let key = SatelliteKey::from_seed(&[7; 32]);
    let body = SyncRequest {
        changes: vec![],
        ..request(1)
    };
    let input = signing_input(Kind::SyncRequest, body.format(), &body).expect("encode");
    assert_eq!(
        text(&input),
        "satellite-sync v1 sync_request\n{\"from\":\"child-1\",\"to\":\"upstream\",\"seq\":1,\
         \"ack_upstream_seq\":0,\"created_at\":\"2025-03-01T12:00:00Z\",\"changes\":[]}"
    );
    let envelope = sign(&key, body).expect("sign");
    assert_eq!(envelope.signer.as_str(), GOLDEN_KEY_ID);
    assert_eq!(envelope.signature, GOLDEN_SIGNATURE);
}

const GOLDEN_KEY_ID: &str = "fe812c12f3ab4ce6ac5db69ac352f906cb1b11ef43fb33e252ef7ff552263889";
const GOLDEN_SIGNATURE: &str = "87c0c3b3ea812e9e5495c60db0d310c50b4f44f0fddb91af4ec5aecb87b7c341\
                                23673bf170c0066c5af301986819091a46f1d73097560c319cf57a94acdab808";

#[test]
fn the_example_in_the_docs_is_a_real_file() {
    let docs = include_str!("../../../docs/sync.md");
    let start = docs.find("<!-- example:begin -->").expect("example marker");
    let end = docs.find("<!-- example:end -->").expect("example marker");
    let block = &docs[start..end];
    let json = &block[block.find('{').expect("json")..block.rfind('}').expect("json") + 1];
    assert_eq!(format!("{json}\n"), text(&docs_example()));
}

/// The example printed in docs/sync.md: a small request signed with the seed-7 key.
fn docs_example() -> Vec<u8> {
    let body = SyncRequest {
        seq: 12,
        ack_upstream_seq: 11,
        changes: request(1).changes[..2].to_vec(),
        ..request(1)
    };
    file(&SatelliteKey::from_seed(&[7; 32]), body)
}

#[test]
fn the_key_file_is_owner_only_and_a_readable_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sync.key");
    let key = SatelliteKey::load_or_generate(&path).expect("generate");
    let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = SatelliteKey::load_or_generate(&path).expect("reload");
    assert_eq!(again.id(), key.id());
    assert!(
        fs::read_to_string(&path)
            .expect("read")
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );

    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = SatelliteKey::load(&path).unwrap_err();
    assert!(
        matches!(err, KeyError::Permissions { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"));

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::write(&path, "not a key").expect("write");
    assert!(matches!(
        SatelliteKey::load(&path),
        Err(KeyError::BadKeyFile { .. })
    ));
}

#[test]
fn public_keys_parse_from_hex_and_ids_are_stable() {
    let key = child_key();
    let parsed = parse_public_key(&key.public_key_hex()).expect("parse");
    assert_eq!(PublicKeyId::of(&parsed), *key.id());
    assert_eq!(key.id().as_str().len(), 64);
    assert_ne!(key.id(), upstream_key().id());
    assert!(parse_public_key("abc").is_err());
    assert_eq!(
        SatelliteKey::from_seed(&[7; 32]).public_key_pem(),
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=\n-----END PUBLIC KEY-----\n"
    );
    assert!(
        parse_public_key(&"00".repeat(32)).is_err(),
        "the identity point is weak"
    );
    assert!(!format!("{key:?}").contains(&super::key::hex(&[1; 32])));
}
