//! Logs an operator can use (SPEC §9, "Observability"): one access line per request on both
//! listeners, refused authentication with its source, no colour codes in a log file, and a
//! start-up that summarises its alerts instead of logging each.

use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;

use crate::devices::{register, runtime, usage};
use crate::util::Daemon;

const JSON_LOGS: &str = "[log]\nformat = \"json\"\n";

/// Sends one HTTPS request to the admin listener; returns the status and the body's length.
fn admin_request(
    d: &Daemon,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, usize) {
    let ca = reqwest::Certificate::from_pem(d.ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", d.admin_addr)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}{path}", d.admin_addr.port());
    let mut req = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let res = req.send().await.expect("an answer");
        let status = res.status().as_u16();
        (status, res.bytes().await.unwrap().len())
    })
}

/// The access lines logged so far (JSON logs).
fn access_lines(d: &Daemon) -> Vec<Value> {
    d.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "satellite::access")
        .map(|l| l["fields"].clone())
        .collect()
}

/// The one access line of `listener`, `method`, `route` and `status`.
fn one_line(d: &Daemon, listener: &str, method: &str, route: &str, status: u16) -> Value {
    let found: Vec<Value> = access_lines(d)
        .into_iter()
        .filter(|l| {
            l["listener"] == listener
                && l["method"] == method
                && l["route"] == route
                && l["status"] == status
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one access line for {method} {route} {status}: {found:#?}\nlog:\n{}",
        d.log()
    );
    let line = found.into_iter().next().unwrap();
    assert_eq!(line["message"], "request", "{line}");
    assert!(line["latency_ms"].as_f64().unwrap() >= 0.0, "{line}");
    line
}

fn assert_tcp_source(line: &Value) {
    let source = line["source"].as_str().expect("a source");
    let addr: std::net::SocketAddr = source.parse().expect("the source is an address");
    assert!(addr.ip().is_loopback(), "{line}");
}

/// An account with licenses, a system administrator `root` (returns its API token and a
/// registration token) and a user `leaving` to delete.
fn setup(d: &Daemon) -> (String, String) {
    let acme = d.account("acme");
    acme.license("T", 5);
    d.cli_ok(&["user", "create", "root"]);
    d.cli_ok(&["user", "grant", "root", "--role", "system-admin"]);
    d.cli_ok(&["user", "create", "leaving"]);
    let secret = |args: &[&str]| d.cli_json(args)["secret"].as_str().unwrap().to_string();
    (
        secret(&["api-token", "create", "--user", "root"]),
        acme.token().secret,
    )
}

#[test]
fn every_request_writes_one_access_line() {
    let d = Daemon::start_with("", JSON_LOGS);
    let (token, secret) = setup(&d);
    let rt = runtime();
    let dirs = tempfile::tempdir().unwrap();
    let mut agent = register(&rt, &d, dirs.path(), &secret, "FOC0001");

    // 1. A VA created over HTTPS.
    let body = serde_json::json!({"parent": "acme/Default", "name": "emea"});
    let (status, sent) = admin_request(&d, &token, reqwest::Method::POST, "/v1/vas", Some(&body));
    assert_eq!(status, 201);
    let line = one_line(&d, "admin", "POST", "/v1/vas", 201);
    assert_eq!(line["actor"], "user:root", "{line}");
    assert_eq!(line["request_bytes"], body.to_string().len(), "{line}");
    assert_eq!(line["response_bytes"], sent, "{line}");
    assert_tcp_source(&line);

    // 2. The device list.
    let (status, sent) = admin_request(&d, &token, reqwest::Method::GET, "/v1/devices", None);
    assert_eq!(status, 200);
    let line = one_line(&d, "admin", "GET", "/v1/devices", 200);
    assert_eq!(
        (&line["actor"], &line["response_bytes"]),
        (&Value::from("user:root"), &Value::from(sent)),
        "{line}"
    );

    // 3. A device's usage report, on the device listener.
    rt.block_on(agent.report(usage("T", 1), OffsetDateTime::now_utc()))
        .expect("report");
    let line = one_line(&d, "devices", "POST", "/v1/usage", 200);
    assert_eq!(
        line["actor"],
        format!("device:{}", agent.instance_id()),
        "{line}"
    );
    assert!(line["request_bytes"].as_u64().unwrap() > 0, "{line}");
    assert!(line["response_bytes"].as_u64().unwrap() > 0, "{line}");
    assert_tcp_source(&line);

    // 4. A delete over HTTPS.
    let (status, _) = admin_request(
        &d,
        &token,
        reqwest::Method::DELETE,
        "/v1/users/leaving",
        None,
    );
    assert_eq!(status, 204);
    let line = one_line(&d, "admin", "DELETE", "/v1/users/{user}", 204);
    assert_eq!(line["actor"], "user:root", "{line}");

    // 5. A bad API token: refused, with its source, and no caller.
    let (status, _) = admin_request(
        &d,
        "not-a-token",
        reqwest::Method::GET,
        "/v1/accounts",
        None,
    );
    assert_eq!(status, 401);
    let line = one_line(&d, "admin", "GET", "/v1/accounts", 401);
    assert_eq!(line["refused"], "authentication", "{line}");
    assert!(line.get("actor").is_none(), "{line}");
    assert_tcp_source(&line);

    // 6. An unknown path: its route is `unmatched`, never the path a client sent.
    let (status, _) = admin_request(&d, &token, reqwest::Method::GET, "/v1/no/such/thing", None);
    assert_eq!(status, 404);
    let line = one_line(&d, "admin", "GET", "unmatched", 404);
    assert!(!line.to_string().contains("/no/such"), "{line}");

    // The CLI's own requests, over the admin socket, are logged too.
    let line = one_line(&d, "admin", "POST", "/v1/accounts", 201);
    assert_eq!(line["source"], "unix", "{line}");
    assert!(
        line["actor"].as_str().unwrap().starts_with("local:uid="),
        "{line}"
    );
}

#[test]
fn a_log_written_to_a_file_has_no_colour_codes() {
    let d = Daemon::start();
    d.account("acme");
    let log = d.log();
    assert!(log.contains("store opened"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a log file:\n{log}"
    );
}

/// A satellite holding many alerts logs one summary line and a few examples at start, not one
/// line per alert.
#[test]
fn start_up_summarises_many_alerts() {
    let mut d = Daemon::start_with("", &format!("{JSON_LOGS}\n[alerts]\ninterval = \"1h\"\n"));
    let today = OffsetDateTime::now_utc().date();
    let (start, end) = (
        (today - time::Duration::days(30)).to_string(),
        (today + time::Duration::days(3)).to_string(),
    );
    let acme = d.account("acme");
    for i in 0..30 {
        acme.license_between(&format!("T{i}"), 1, &start, &end);
    }
    d.restart();
    wait_for_alerts_round(&d, 30);
    let log = d.log();
    let since_restart = log.rsplit("opening the store").next().unwrap();
    let warnings: Vec<Value> = since_restart
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "WARN" && l["target"] == "satellite::workers::alerts")
        .map(|l| l["fields"].clone())
        .collect();
    let summaries: Vec<&Value> = warnings.iter().filter(|w| w.get("new").is_some()).collect();
    assert_eq!(summaries.len(), 1, "one summary line: {warnings:#?}");
    let summary = summaries[0];
    assert_eq!(summary["new"], 30, "{summary}");
    assert_eq!(
        summary["counts"], "license_expiring: 30 critical",
        "{summary}"
    );
    assert!(
        summary["message"]
            .as_str()
            .unwrap()
            .contains("satellite alerts"),
        "{summary}"
    );
    let examples = warnings.iter().filter(|w| w.get("kind").is_some()).count();
    assert_eq!(examples, 10, "ten examples: {warnings:#?}");
}

/// Waits until the alerts worker's round (one runs at start) has found `holding` alerts.
pub fn wait_for_alerts_round(d: &Daemon, holding: usize) {
    let expected = format!("{holding} alert(s) held");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = d.cli_json(&["status"]);
        if status["workers"].to_string().contains(&expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the alerts worker did not report {expected}: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
