//! The HTTPS admin API over real TLS: authentication, body limits, and role-based access where
//! an object outside the caller's scope is indistinguishable from one that does not exist
//! (SPEC §7).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::json;

use crate::util::Daemon;

/// A VA path as one URL path segment.
fn seg(path: &str) -> String {
    path.replace('/', "%2F")
}

/// Sends a plaintext HTTP request to a TLS port; returns whatever came back.
pub fn plaintext_request(addr: SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let _ =
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

fn secret_for(d: &Daemon, user: &str) -> String {
    let t = d.cli_json(&["api-token", "create", "--user", user]);
    t["secret"]
        .as_str()
        .expect("the secret is in --json output")
        .to_string()
}

#[test]
fn admin_api_authenticates_limits_and_scopes_every_call() {
    let d = Daemon::start_with("max_body_bytes = 4096", "");
    let acme = d.account("acme");
    d.account("globex");
    let emea = acme.child("emea");
    acme.child("amer");
    emea.child("de");
    emea.license("regid.ADV", 5);
    for (user, role) in [
        ("root", None),
        ("viewer", Some("va-user")),
        ("vadmin", Some("va-admin")),
    ] {
        d.cli_ok(&["user", "create", user]);
        match role {
            Some(role) => d.cli_ok(&[
                "user",
                "grant",
                user,
                "--role",
                role,
                "--va",
                "acme/Default/emea",
            ]),
            None => d.cli_ok(&["user", "grant", user, "--role", "system-admin"]),
        };
    }
    let root = secret_for(&d, "root");
    let viewer = secret_for(&d, "viewer");
    let vadmin = secret_for(&d, "vadmin");
    let revoked = d.cli_json(&["api-token", "create", "--user", "root"]);
    d.cli_ok(&["api-token", "revoke", revoked["id"].as_str().unwrap()]);
    let revoked = revoked["secret"].as_str().unwrap().to_string();

    let events_before = d.event_count();

    // Authentication.
    d.admin_api(None)
        .get("/v1/accounts")
        .assert_error(401, "unauthorized");
    d.admin_api(Some("sat_not-a-real-token"))
        .get("/v1/accounts")
        .assert_error(401, "unauthorized");
    d.admin_api(Some(&revoked))
        .get("/v1/accounts")
        .assert_error(401, "unauthorized");
    d.admin_api(Some(&revoked))
        .post("/v1/accounts", &json!({ "name": "x", "domain": "x.com" }))
        .assert_error(401, "unauthorized");

    let res = d.admin_api(None).send_with_header(
        "/v1/accounts",
        "authorization",
        &format!("Basic {root}"),
    );
    res.assert_error(401, "unauthorized");

    // Body decoding and limits.
    let admin = d.admin_api(Some(&root));
    admin
        .post_raw("/v1/accounts", "{\"name\": \"x\", ")
        .assert_error(400, "malformed_request");
    admin
        .post_raw("/v1/accounts", "{\"name\": 5}")
        .assert_error(400, "malformed_request");
    let big = json!({ "name": "x".repeat(5000), "domain": "big.com" });
    admin
        .post("/v1/accounts", &big)
        .assert_error(413, "payload_too_large");
    assert_eq!(
        d.event_count(),
        events_before,
        "refused calls write no event"
    );

    // A system-admin token can change things over HTTPS, as itself.
    let res = admin.post(
        "/v1/accounts",
        &json!({ "name": "initech", "domain": "initech.com" }),
    );
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(d.events()[0]["actor"], "user:root");
    let events_before = d.event_count();

    // A va-user reads its VA subtree and nothing else.
    let v = d.admin_api(Some(&viewer));
    let res = v.get(&format!("/v1/vas/{}", seg("acme/Default/emea")));
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["name"], "emea");
    assert_eq!(
        v.get(&format!("/v1/vas/{}", seg("acme/Default/emea/de")))
            .status,
        200
    );
    let vas = v.get("/v1/vas");
    assert_eq!(vas.status, 200, "{}", vas.text);
    let names: Vec<&str> = vas
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["emea", "de"], "{}", vas.text);
    let accounts = v.get("/v1/accounts");
    assert_eq!(accounts.status, 200);
    let names: Vec<&str> = accounts
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme"], "a va-user sees only its own account");
    let licenses = v.get("/v1/licenses");
    assert_eq!(licenses.status, 200);
    assert_eq!(
        licenses.body["pools"].as_array().map(Vec::len),
        Some(1),
        "{}",
        licenses.text
    );
    // ... cannot change it ...
    v.post("/v1/tokens", &json!({ "va": "acme/Default/emea" }))
        .assert_error(403, "forbidden");
    v.post(
        "/v1/vas",
        &json!({ "parent": "acme/Default/emea", "name": "x" }),
    )
    .assert_error(403, "forbidden");
    v.post("/v1/accounts", &json!({ "name": "y", "domain": "y.com" }))
        .assert_error(403, "forbidden");
    // ... and cannot learn that anything outside its scope exists.
    for hidden in [
        "acme/Default/amer",
        "acme/Default",
        "globex/Default",
        "acme/Default/nope",
    ] {
        v.get(&format!("/v1/vas/{}", seg(hidden)))
            .assert_error(404, "not_found");
    }
    v.get("/v1/accounts/globex").assert_error(404, "not_found");
    v.get("/v1/licenses?account=globex")
        .assert_error(404, "not_found");
    v.post("/v1/tokens", &json!({ "va": "acme/Default/amer" }))
        .assert_error(404, "not_found");
    v.post("/v1/tokens", &json!({ "va": "globex/Default" }))
        .assert_error(404, "not_found");
    let amer = v.get(&format!("/v1/vas/{}", seg("acme/Default/amer")));
    let nope = v.get(&format!("/v1/vas/{}", seg("acme/Default/nope")));
    assert_eq!(
        amer.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("amer", "nope"),
        nope.body["error"]["message"].as_str().unwrap(),
        "a hidden VA and a missing one are refused alike"
    );
    // Its audit log holds only the events of its subtree (grants on it included).
    let events = v.get("/v1/events");
    assert_eq!(events.status, 200, "{}", events.text);
    let seen: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert!(!seen.is_empty(), "a va-user sees its subtree's events");
    for e in events.body.as_array().unwrap() {
        let action = e["action"].as_str().unwrap();
        assert!(
            !matches!(
                action,
                "account.create" | "user.create" | "api_token.create"
            ),
            "a va-user sees an event outside its subtree: {e}"
        );
        assert!(!e["subject"].as_str().unwrap().contains("amer"), "{e}");
    }
    v.get("/v1/events?account=globex")
        .assert_error(404, "not_found");
    assert_eq!(
        d.event_count(),
        events_before,
        "refused calls write no event"
    );

    // A va-admin manages tokens in its subtree but cannot add purchases.
    let a = d.admin_api(Some(&vadmin));
    let res = a.post(
        "/v1/tokens",
        &json!({ "va": "acme/Default/emea/de", "description": "lab" }),
    );
    assert_eq!(res.status, 201, "{}", res.text);
    assert!(res.body["secret"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(d.event_count(), events_before + 1);
    assert_eq!(d.events()[0]["actor"], "user:vadmin");
    let events_before = d.event_count();
    a.post(
        "/v1/licenses",
        &json!({ "va": "acme/Default/emea", "entitlement_tag": "regid.ADV", "quantity": 5 }),
    )
    .assert_error(403, "forbidden");
    a.post("/v1/tokens", &json!({ "va": "acme/Default/amer" }))
        .assert_error(404, "not_found");
    a.post("/v1/accounts", &json!({ "name": "z", "domain": "z.com" }))
        .assert_error(403, "forbidden");
    assert_eq!(
        d.event_count(),
        events_before,
        "refused calls write no event"
    );

    // There is no plaintext: an HTTP request to a TLS port gets no HTTP answer.
    for addr in [d.admin_addr, d.device_addr] {
        let answer = plaintext_request(addr);
        assert!(
            !answer.starts_with(b"HTTP/"),
            "plaintext HTTP was answered on {addr}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
}
