use time::macros::datetime;

use super::*;

fn key(n: u8) -> SatelliteKey {
    SatelliteKey::from_seed(&[n; 32])
}

fn udi() -> Udi {
    Udi {
        pid: "C9300-24T".into(),
        serial: "FOC1234X0AB".into(),
    }
}

fn body() -> Authorization {
    Authorization {
        reservation_id: "0190-r".into(),
        udi: udi(),
        account: "acme.com".into(),
        va: "acme/Default/lab".into(),
        entitlements: vec![
            Entitlement {
                tag: "regid.b".into(),
                count: 1,
            },
            Entitlement {
                tag: "regid.a".into(),
                count: 3,
            },
        ],
        issued_at: datetime!(2026-01-01 12:00 UTC),
        request_nonce: "n-1".into(),
        key_id: String::new(),
        public_key: String::new(),
    }
}

/// Replaces the body part of an authorization code, keeping its signature.
fn with_body(code: &str, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let rest = code.strip_prefix(AUTHORIZATION_PREFIX).expect("prefix");
    let (b, sig) = rest.split_once('.').expect("two parts");
    let mut v: serde_json::Value =
        serde_json::from_slice(&b64_decode("t", b).expect("base64")).expect("JSON");
    f(&mut v);
    let bytes = serde_json::to_vec(&v).expect("encode");
    format!("{AUTHORIZATION_PREFIX}{}.{sig}", b64_encode(&bytes))
}

#[test]
fn base64url_round_trips_every_length() {
    for n in 0..40u8 {
        let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
        let text = b64_encode(&bytes);
        assert!(!text.contains(['=', '+', '/']), "{text}");
        assert_eq!(b64_decode("t", &text).expect("decodes"), bytes);
    }
    assert!(b64_decode("t", "abcde").is_err());
    assert!(b64_decode("t", "ab=c").is_err());
}

#[test]
fn an_authorization_round_trips_and_names_its_signer() {
    let k = key(1);
    let code = sign_authorization(&k, body());
    assert!(code.starts_with("SAC1-"));
    assert!(!code.contains(char::is_whitespace));
    let opened = open_authorization(&code, None).expect("verifies");
    assert_eq!(opened.key_id, k.id().to_string());
    assert_eq!(opened.public_key, k.public_key_hex());
    assert_eq!(opened.udi, udi());
    // Entitlements are signed in tag order, whatever order they were given in.
    assert_eq!(opened.entitlements[0].tag, "regid.a");
    assert_eq!(opened.issued_at, datetime!(2026-01-01 12:00 UTC));
    // With the right pinned key, and pasted with line breaks.
    let wrapped = format!("{}\n  {}\n", &code[..40], &code[40..]);
    assert_eq!(
        open_authorization(&wrapped, Some(k.id().as_str())).expect("pinned"),
        opened
    );
    // Deterministic: the same body signs to the same code.
    assert_eq!(sign_authorization(&k, body()), code);
}

#[test]
fn a_tampered_body_or_signature_is_a_bad_signature() {
    let code = sign_authorization(&key(1), body());
    let more = with_body(&code, |v| v["entitlements"][0]["count"] = 300.into());
    assert_eq!(
        open_authorization(&more, None),
        Err(CodeError::BadSignature)
    );
    // A renamed field is an altered body too, not merely an invalid one.
    let renamed = with_body(&code, |v| {
        let o = v.as_object_mut().expect("object");
        let id = o.remove("reservation_id").expect("id");
        o.insert("res@rvation_id".into(), id);
    });
    assert_eq!(
        open_authorization(&renamed, None),
        Err(CodeError::BadSignature)
    );
    let other_device = with_body(&code, |v| v["udi"]["serial"] = "X".into());
    assert_eq!(
        open_authorization(&other_device, None),
        Err(CodeError::BadSignature)
    );
    // Another key's public key and id put in the body: the signature no longer verifies.
    let other = key(2);
    let swapped = with_body(&code, |v| {
        v["public_key"] = other.public_key_hex().into();
        v["key_id"] = other.id().to_string().into();
    });
    assert_eq!(
        open_authorization(&swapped, None),
        Err(CodeError::BadSignature)
    );
    // A key id that does not belong to the public key.
    let lying = with_body(&code, |v| v["key_id"] = other.id().to_string().into());
    assert_eq!(
        open_authorization(&lying, None),
        Err(CodeError::BadSignature)
    );
    // One signature digit changed.
    let last = code.chars().last().expect("non-empty");
    let flipped = format!(
        "{}{}",
        &code[..code.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    assert_eq!(
        open_authorization(&flipped, None),
        Err(CodeError::BadSignature)
    );
}

#[test]
fn a_truncated_code_is_damaged_not_believed() {
    let code = sign_authorization(&key(1), body());
    let dot = code.find('.').expect("dot");
    for cut in [code.len() - 2, dot + 1, dot, dot - 7, 10, 5] {
        let e = open_authorization(&code[..cut], None).expect_err("refused");
        assert!(
            matches!(e, CodeError::Damaged { .. } | CodeError::Empty { .. }),
            "cut at {cut}: {e:?}"
        );
    }
    let request = RequestCode {
        udi: udi(),
        entitlements: vec![Entitlement {
            tag: "t".into(),
            count: 1,
        }],
        nonce: "abc".into(),
        created_at: datetime!(2026-01-01 0:00 UTC),
    }
    .encode();
    let e = RequestCode::decode(&request[..request.len() - 6]).expect_err("refused");
    assert!(matches!(e, CodeError::Damaged { .. }), "{e:?}");
}

#[test]
fn a_wrong_prefix_names_what_the_code_is() {
    let code = sign_authorization(&key(1), body());
    let e = RequestCode::decode(&code).expect_err("refused");
    assert_eq!(
        e.to_string(),
        "not a reservation request code: it should start with `SRQ1-`; this is a authorization \
         code"
            .replace("         ", "")
    );
    let e = open_authorization("hello world", None).expect_err("refused");
    assert!(e.to_string().contains("not `hello`"), "{e}");
    let e = ReturnCode::decode("SAC2-abc").expect_err("refused");
    assert!(matches!(e, CodeError::WrongPrefix { .. }), "{e:?}");
    assert!(matches!(
        RequestCode::decode("  \n"),
        Err(CodeError::Empty { .. })
    ));
}

#[test]
fn a_pinned_key_must_match() {
    let code = sign_authorization(&key(1), body());
    let pinned = key(2).id().to_string();
    let e = open_authorization(&code, Some(&pinned)).expect_err("refused");
    assert_eq!(
        e,
        CodeError::UntrustedKey {
            expected: pinned,
            found: key(1).id().to_string()
        }
    );
    // Key ids compare case-insensitively, as operators may paste them upper-case.
    let upper = key(1).id().to_string().to_uppercase();
    assert!(open_authorization(&code, Some(&upper)).is_ok());
}

#[test]
fn request_and_return_codes_round_trip_and_check_their_fields() {
    let r = RequestCode {
        udi: udi(),
        entitlements: vec![Entitlement {
            tag: "regid.a".into(),
            count: 2,
        }],
        nonce: "f00d".into(),
        created_at: datetime!(2026-01-01 0:00 UTC),
    };
    let code = r.encode();
    assert!(code.starts_with("SRQ1-") && !code.contains(char::is_whitespace));
    assert_eq!(RequestCode::decode(&code).expect("decodes"), r);
    let mut zero = r.clone();
    zero.entitlements[0].count = 0;
    assert!(matches!(
        RequestCode::decode(&zero.encode()),
        Err(CodeError::Invalid { .. })
    ));
    // A count past the satellite's bound on quantities is refused at decode, naming it.
    for huge in [1_000_000_000_001, i64::MAX as u64, u64::MAX] {
        let mut big = r.clone();
        big.entitlements[0].count = huge;
        let e = RequestCode::decode(&big.encode()).expect_err("refused");
        assert!(
            matches!(&e, CodeError::Invalid { reason, .. }
                if reason.contains(&huge.to_string()) && reason.contains("maximum of 1000000000000")),
            "{e:?}"
        );
    }
    let mut most = r.clone();
    most.entitlements[0].count = 1_000_000_000_000;
    assert!(RequestCode::decode(&most.encode()).is_ok());
    let mut twice = r.clone();
    twice.entitlements.push(twice.entitlements[0].clone());
    assert!(matches!(
        RequestCode::decode(&twice.encode()),
        Err(CodeError::Invalid { .. })
    ));

    let auth = sign_authorization(&key(1), body());
    let proof = return_proof(&auth);
    assert_eq!(proof.len(), 64);
    assert_ne!(
        proof,
        hex(&sha256(auth.as_bytes())),
        "the proof is domain-separated"
    );
    let ret = ReturnCode {
        reservation_id: "0190-r".into(),
        udi: udi(),
        returned_at: datetime!(2026-02-01 0:00 UTC),
        proof: proof.clone(),
    };
    let decoded = ReturnCode::decode(&ret.encode()).expect("decodes");
    assert_eq!(decoded, ret);
    assert_eq!(decoded.proof_bytes().map(|b| hex(&b)), Some(proof));
    assert_eq!(decoded.check(), return_check(&auth));
    assert_ne!(
        return_check(&auth),
        return_check(&sign_authorization(&key(2), body()))
    );
    let mut bad = ret;
    bad.proof = "zz".into();
    assert!(matches!(
        ReturnCode::decode(&bad.encode()),
        Err(CodeError::Invalid { .. })
    ));
}
