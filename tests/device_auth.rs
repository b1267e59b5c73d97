//! Who may register and who may speak (SPEC §3): registration tokens and their refusals, the
//! per-address limit on failed registrations, export-controlled entitlements, identity
//! certificates, and request bodies that are refused without changing anything.

use reqwest::Method;
use serde_json::json;
use time::Duration;

use satellite::agent::{AgentIdentity, DeviceClient, new_key_and_csr};
use satellite::pki::Pki;
use satellite::protocol::admin::{AddLicense, CreateToken};

use crate::inproc::{Sat, raw, raw_refused, refused, tag_status};

const ADV: &str = "regid.2019-03.com.example.ADV";
const CRYPTO: &str = "regid.2019-03.com.example.STRONG_CRYPTO";

fn token_spec(va: &str) -> CreateToken {
    CreateToken {
        va: va.into(),
        description: String::new(),
        expires_in_days: None,
        max_uses: None,
        allow_export_controlled: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_token_is_refused_with_its_own_code() {
    let s = Sat::start().await;
    s.account("acme").await;
    let (expiring, _) = s
        .token_with(CreateToken {
            expires_in_days: Some(1),
            ..token_spec("acme/Default")
        })
        .await;
    let (revoked, revoked_id) = s.token("acme/Default").await;
    let (once, once_id) = s
        .token_with(CreateToken {
            max_uses: Some(1),
            ..token_spec("acme/Default")
        })
        .await;
    let _: serde_json::Value = s
        .post(&format!("/v1/tokens/{revoked_id}/revoke"), &json!({}))
        .await;

    refused(
        s.register("srt_not-a-token", "P", "S0").await.map(|d| d.id),
        401,
        "invalid_token",
    );
    refused(
        s.register(&revoked, "P", "S0").await.map(|d| d.id),
        403,
        "token_revoked",
    );
    s.register(&once, "P", "S1").await.expect("first use");
    refused(
        s.register(&once, "P", "S2").await.map(|d| d.id),
        403,
        "token_exhausted",
    );
    let used = s.tokens().await;
    let used = used.iter().find(|t| t.id == once_id).expect("token");
    assert_eq!((used.uses, used.max_uses), (1, Some(1)));

    s.register(&expiring, "P", "S3")
        .await
        .expect("valid before expiry");
    s.advance(Duration::days(1) + Duration::seconds(1));
    refused(
        s.register(&expiring, "P", "S4").await.map(|d| d.id),
        403,
        "token_expired",
    );
    assert_eq!(
        s.devices("").await.len(),
        2,
        "refused registrations store nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_registrations_are_rate_limited_per_address() {
    let s = Sat::start().await;
    s.account("acme").await;
    let (token, _) = s.token("acme/Default").await;
    for i in 0..10 {
        refused(
            s.register(&format!("srt_guess-{i}"), "P", "S")
                .await
                .map(|d| d.id),
            401,
            "invalid_token",
        );
    }
    let req = s.request(&token, "P", "S", false);
    let res = s
        .anonymous()
        .post(format!("{}/v1/register", s.url))
        .json(&req)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 429);
    let wait: u64 = res
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(s.devices("").await.is_empty());

    // Once the window has passed, a valid token works again.
    s.advance(Duration::seconds(61));
    s.register(&token, "P", "S")
        .await
        .expect("registers after the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_controlled_tags_need_a_token_that_allows_them() {
    let s = Sat::start().await;
    s.account("acme").await;
    s.add_license(AddLicense {
        va: "acme/Default".into(),
        entitlement_tag: CRYPTO.into(),
        display_name: String::new(),
        quantity: 1,
        start: None,
        end: None,
        export_controlled: true,
        order_ref: None,
        labels: Vec::new(),
    })
    .await;
    s.license("acme/Default", ADV, 5).await;
    let (plain, _) = s.token("acme/Default").await;
    let (export, _) = s
        .token_with(CreateToken {
            allow_export_controlled: true,
            ..token_spec("acme/Default")
        })
        .await;
    // The device without permission registers first: it must not hold the only unit.
    let mut denied = s.register(&plain, "P", "PLAIN").await.expect("plain");
    let mut allowed = s.register(&export, "P", "EXPORT").await.expect("export");

    let a = denied
        .report(&[(CRYPTO, 1), (ADV, 1)])
        .await
        .expect("report");
    assert_eq!(tag_status(&a, CRYPTO), "not_authorized");
    assert_eq!(tag_status(&a, ADV), "authorized");
    assert_eq!(a.status, "out_of_compliance", "the worst of its tags");
    let a = allowed.report(&[(CRYPTO, 1)]).await.expect("report");
    assert_eq!(tag_status(&a, CRYPTO), "authorized");
    assert_eq!(a.status, "authorized");
    assert_eq!(s.in_use("acme/Default", CRYPTO).await, 1);
    let shown = s.device(&denied.id).await;
    assert_eq!(shown.status, "out_of_compliance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_certificates_of_the_device_ca_identify_a_device_and_only_itself() {
    let s = Sat::start().await;
    s.account("acme").await;
    s.license("acme/Default", ADV, 5).await;
    let (token, _) = s.token("acme/Default").await;
    let mut one = s.register(&token, "P", "ONE").await.expect("one");
    let mut two = s.register(&token, "P", "TWO").await.expect("two");
    one.report(&[(ADV, 1)]).await.expect("one reports");
    two.report(&[(ADV, 2)]).await.expect("two reports");
    let a1 = one.authorization().await.expect("one");
    let a2 = two.authorization().await.expect("two");
    assert_eq!(a1.instance_id, one.id);
    assert_eq!(a2.instance_id, two.id);
    assert_ne!(a1.instance_id, a2.instance_id);
    assert_eq!(a1.entitlements[0].count, 1);
    assert_eq!(a2.entitlements[0].count, 2);

    // No certificate at all.
    let anon = s.anonymous();
    let body =
        serde_json::to_vec(&json!({"seq": 1, "measured_at": "2025-01-01T00:00:00Z", "usage": []}))
            .unwrap();
    let r = raw(&anon, Method::POST, &s.url, "/v1/usage", body).await;
    raw_refused(&r, 401, "certificate_required");
    let r = raw(&anon, Method::GET, &s.url, "/v1/authorization", Vec::new()).await;
    raw_refused(&r, 401, "certificate_required");
    let r = raw(&anon, Method::POST, &s.url, "/v1/deregister", Vec::new()).await;
    raw_refused(&r, 401, "certificate_required");

    // A certificate for the right name from another CA.
    let dir = tempfile::tempdir().unwrap();
    let foreign = Pki::load_or_create(dir.path(), &["localhost".to_owned()], s.now()).unwrap();
    let (key_pem, csr) = new_key_and_csr("P ONE").unwrap();
    let cert = foreign
        .sign_csr(&csr, &one.id, Duration::days(30), s.now())
        .unwrap();
    let impostor = DeviceClient::new(
        &s.url,
        &AgentIdentity {
            key_pem,
            cert_pem: cert.pem,
            ca_pem: s.ca_pem.clone(),
            instance_id: one.id.clone(),
        },
    )
    .unwrap();
    match impostor.authorization().await {
        Err(satellite::agent::AgentError::Transport(_)) => {}
        Err(satellite::agent::AgentError::Refused { status: 401, .. }) => {}
        other => panic!("a foreign certificate must be refused, got {other:?}"),
    }
    assert_eq!(s.device(&one.id).await.entitlements[0].count, 1);
}

/// Malformed, truncated, mistyped and oversized bodies: 400 or 413 with a stable code, and
/// nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_and_change_nothing() {
    let s = Sat::start_with("max_body_bytes = 2048", "").await;
    s.account("acme").await;
    s.license("acme/Default", ADV, 5).await;
    let (token, _) = s.token("acme/Default").await;
    let mut d = s.register(&token, "P", "S1").await.expect("register");
    d.report(&[(ADV, 2)]).await.expect("report");
    let devices = serde_json::to_value(s.devices("").await).unwrap();
    let events = s.all_events().await.len();

    let now = s
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let good = |seq: serde_json::Value| json!({"seq": seq, "measured_at": now, "usage": [{"entitlement_tag": ADV, "count": 4}]});
    let ok_text = serde_json::to_string(&good(json!(2))).unwrap();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", b"{\"seq\": 2, \"usage\": [".to_vec()),
        ("not json", b"seq=2&usage=ADV".to_vec()),
        (
            "truncated",
            ok_text.as_bytes()[..ok_text.len() - 5].to_vec(),
        ),
        ("seq of the wrong type", good(json!("x")).to_string().into_bytes()),
        ("negative seq", good(json!(-1)).to_string().into_bytes()),
        (
            "count of the wrong type",
            json!({"seq": 2, "measured_at": now, "usage": [{"entitlement_tag": ADV, "count": "4"}]})
                .to_string()
                .into_bytes(),
        ),
        (
            "measured_at not a time",
            json!({"seq": 2, "measured_at": "yesterday", "usage": []})
                .to_string()
                .into_bytes(),
        ),
        (
            "missing usage",
            json!({"seq": 2, "measured_at": now}).to_string().into_bytes(),
        ),
        (
            "tag repeated",
            json!({"seq": 2, "measured_at": now, "usage": [
                {"entitlement_tag": ADV, "count": 1}, {"entitlement_tag": ADV, "count": 1}]})
            .to_string()
            .into_bytes(),
        ),
        (
            "empty tag",
            json!({"seq": 2, "measured_at": now, "usage": [{"entitlement_tag": "", "count": 1}]})
                .to_string()
                .into_bytes(),
        ),
        ("empty body", Vec::new()),
    ];
    for (what, body) in bodies {
        let r = d.raw(Method::POST, "/v1/usage", body).await;
        assert_eq!(r.0, 400, "{what}: {}", r.1);
        raw_refused(&r, 400, "malformed_request");
    }
    // Larger than [device] max_body_bytes.
    let big = json!({"seq": 2, "measured_at": now, "usage": [
        {"entitlement_tag": "x".repeat(3000), "count": 1}]});
    let r = d
        .raw(Method::POST, "/v1/usage", big.to_string().into_bytes())
        .await;
    raw_refused(&r, 413, "payload_too_large");
    let r = d.raw(Method::POST, "/v1/renew", vec![b' '; 4096]).await;
    raw_refused(&r, 413, "payload_too_large");
    let r = d
        .raw(Method::POST, "/v1/renew", b"{\"csr\": 7}".to_vec())
        .await;
    raw_refused(&r, 400, "malformed_request");
    let r = d
        .raw(
            Method::POST,
            "/v1/renew",
            b"{\"csr\": \"not a csr\"}".to_vec(),
        )
        .await;
    assert_eq!(r.0, 400, "{}", r.1);

    // A CSR that looks like one but is not: refused, and the old certificate still works.
    let bad_csr =
        "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAAAA\n-----END CERTIFICATE REQUEST-----\n";
    let r = d
        .raw(
            Method::POST,
            "/v1/renew",
            json!({ "csr": bad_csr }).to_string().into_bytes(),
        )
        .await;
    raw_refused(&r, 400, "bad_csr");
    d.authorization()
        .await
        .expect("the certificate was not replaced");

    // Registration bodies (a handful, below the failure limit).
    let anon = s.anonymous();
    let uses = s.tokens().await[0].uses;
    let mut req = serde_json::to_value(s.request(&token, "P", "NEW", false)).unwrap();
    req["csr"] = json!(bad_csr);
    let r = raw(
        &anon,
        Method::POST,
        &s.url,
        "/v1/register",
        req.to_string().into_bytes(),
    )
    .await;
    raw_refused(&r, 400, "bad_csr");
    assert_eq!(
        s.tokens().await[0].uses,
        uses,
        "a refused registration uses no token"
    );
    let mut req = serde_json::to_value(s.request(&token, "P", "NEW", false)).unwrap();
    req["udi"]["serial"] = json!(12);
    let r = raw(
        &anon,
        Method::POST,
        &s.url,
        "/v1/register",
        req.to_string().into_bytes(),
    )
    .await;
    raw_refused(&r, 400, "malformed_request");
    let r = raw(
        &anon,
        Method::POST,
        &s.url,
        "/v1/register",
        b"{\"token\":".to_vec(),
    )
    .await;
    raw_refused(&r, 400, "malformed_request");
    let mut req = serde_json::to_value(s.request(&token, "P", "NEW", false)).unwrap();
    req["hostname"] = json!("h".repeat(4000));
    let r = raw(
        &anon,
        Method::POST,
        &s.url,
        "/v1/register",
        req.to_string().into_bytes(),
    )
    .await;
    raw_refused(&r, 413, "payload_too_large");

    assert_eq!(
        serde_json::to_value(s.devices("").await).unwrap(),
        devices,
        "no device added, usage and last report unchanged"
    );
    assert_eq!(s.all_events().await.len(), events);
    assert_eq!(s.in_use("acme/Default", ADV).await, 2);
    // The device still works, and its next seq is accepted.
    let a = d.report(&[(ADV, 3)]).await.expect("report");
    assert_eq!(a.entitlements[0].count, 3);
}
