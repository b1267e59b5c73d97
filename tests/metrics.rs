//! Observability endpoints on the admin listener: Prometheus metrics (authenticated), readiness
//! and health (not).

use crate::util::Daemon;

/// What Prometheus sends (its default scrape protocols).
pub const OPENMETRICS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// GETs /metrics with `token` and the given Accept header; returns the content type and body.
pub fn scrape(d: &Daemon, token: &str, accept: Option<&str>) -> (String, String) {
    scrape_path(d, token, "/metrics", accept)
}

fn scrape_path(d: &Daemon, token: &str, path: &str, accept: Option<&str>) -> (String, String) {
    let (status, content_type, body) = request(d, token, reqwest::Method::GET, path, accept);
    assert_eq!(status, 200, "GET {path}: {body}");
    (content_type, body)
}

/// Sends one request to the admin listener; returns the status, content type and body.
fn request(
    d: &Daemon,
    token: &str,
    method: reqwest::Method,
    path: &str,
    accept: Option<&str>,
) -> (u16, String, String) {
    let ca = reqwest::Certificate::from_pem(d.ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", d.admin_addr)
        .build()
        .unwrap();
    let mut req = client
        .request(
            method,
            format!("https://localhost:{}{path}", d.admin_addr.port()),
        )
        .bearer_auth(token);
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let res = req.send().await.expect("an answer");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, content_type, res.text().await.unwrap())
    })
}

/// A user holding the metrics-reader role, and an API token of theirs.
pub fn metrics_reader(d: &Daemon) -> String {
    d.cli_ok(&["user", "create", "prom"]);
    d.cli_ok(&["user", "grant", "prom", "--role", "metrics-reader"]);
    d.cli_json(&["api-token", "create", "--user", "prom"])["secret"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The series of a text exposition: (name, labels) of every sample.
fn series(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let end = l.find(['{', ' ']).unwrap();
            let labels = l[end..].rsplit_once(' ').unwrap().0;
            (l[..end].to_string(), labels.to_string())
        })
        .collect()
}

#[test]
fn metrics_count_requests_and_describe_the_catalog() {
    let d = Daemon::start();
    d.account("acme").license("T", 5);
    d.cli_ok(&["user", "create", "prom"]);
    let token = d.cli_json(&["api-token", "create", "--user", "prom"])["secret"]
        .as_str()
        .unwrap()
        .to_string();

    let anonymous = d.admin_api(None).get("/metrics");
    assert_eq!(
        anonymous.status, 401,
        "metrics need an API token: {}",
        anonymous.text
    );
    // A user without the metrics-reader role may not read satellite-wide figures.
    d.admin_api(Some(&token))
        .get("/metrics")
        .assert_error(403, "forbidden");
    d.cli_ok(&["user", "grant", "prom", "--role", "metrics-reader"]);

    let (content_type, text) = scrape(&d, &token, None);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(
        text.contains(
            "satellite_requests_total{listener=\"admin\",endpoint=\"/v1/accounts\",method=\"POST\",status=\"201\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("satellite_request_duration_seconds_count{listener=\"admin\",endpoint=\"/v1/licenses\"} 1"), "{text}");
    for state in [
        "registered",
        "authorized",
        "out_of_compliance",
        "authorization_expired",
    ] {
        assert!(
            text.contains(&format!("satellite_devices{{state=\"{state}\"}} 0")),
            "{text}"
        );
    }
    assert!(text.contains("satellite_store_bytes "), "{text}");
    assert!(text.contains("satellite_store_flushes_total "), "{text}");
    assert!(
        text.contains("satellite_store_checkpoints_total "),
        "{text}"
    );
    // The changes the test made went through the journal: they are still in it, or a checkpoint
    // (due a second after the last one) has taken them into sled's files.
    let figure = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name}in {text}"))
            .parse()
            .expect("a number")
    };
    let journal = figure("satellite_store_journal_bytes ");
    let checkpoints = figure("satellite_store_checkpoints_total ");
    assert!(journal > 0 || checkpoints > 0, "{text}");
    // Without an Accept header asking for OpenMetrics: the Prometheus text format.
    assert!(!text.contains("# EOF"), "{text}");
    assert!(
        text.contains("# HELP satellite_requests_total ")
            && text.contains("# TYPE satellite_requests_total counter"),
        "{text}"
    );
    let (content_type, om) = scrape(&d, &token, Some(OPENMETRICS_ACCEPT));
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    assert!(
        om.trim_end().ends_with("# EOF"),
        "one exposition, one EOF: {om}"
    );
    assert_eq!(om.matches("# EOF").count(), 1);
    assert!(om.contains("# TYPE satellite_requests counter"), "{om}");

    let ready = d.admin_api(None).get("/readyz");
    assert_eq!((ready.status, ready.text.trim()), (200, "ready"));
    let health = d.admin_api(None).get("/healthz");
    assert_eq!(health.status, 200);
}

#[test]
fn status_summarises_devices_and_the_store() {
    let d = Daemon::start();
    let s = d.cli_json(&["status"]);
    let states: Vec<&str> = s["devices_by_state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "registered",
            "authorized",
            "out_of_compliance",
            "authorization_expired"
        ]
    );
    assert!(s["store_failure"].is_null());
    d.account("acme");
    let s = d.cli_json(&["status"]);
    assert!(s["store_flushes"].as_u64().unwrap() >= 1, "{s}");
    let human = d.cli_ok(&["status"]);
    assert!(
        human.contains("devices           0 registered, 0 authorized"),
        "{human}"
    );
}

/// SPEC §7: a caller who is not a system administrator sees in `status` only the counts of its
/// grants, and nothing about the satellite itself (data directory, store, listeners, users).
#[test]
fn status_is_scoped_to_the_callers_grants() {
    let d = Daemon::start();
    d.account("acme").child("emea");
    d.account_with_domain("other", "other.org");
    d.cli_ok(&["user", "create", "nobody"]);
    d.cli_ok(&["user", "create", "emea-user"]);
    d.cli_ok(&[
        "user",
        "grant",
        "emea-user",
        "--role",
        "va-user",
        "--va",
        "acme/Default/emea",
    ]);
    let token = |user: &str| {
        d.cli_json(&["api-token", "create", "--user", user])["secret"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (nobody, emea) = (token("nobody"), token("emea-user"));

    let full = d.cli_json(&["status"]);
    assert_eq!(full["scope"], "satellite");
    assert_eq!(
        (full["accounts"].as_u64(), full["virtual_accounts"].as_u64()),
        (Some(2), Some(3))
    );
    assert!(full["data_dir"].is_string(), "{full}");

    let none = d.admin_api(Some(&nobody)).get("/v1/status");
    assert_eq!(none.status, 200, "{}", none.text);
    let none: serde_json::Value = serde_json::from_str(&none.text).unwrap();
    assert_eq!(none["scope"], "granted");
    for key in [
        "accounts",
        "virtual_accounts",
        "licenses",
        "tokens",
        "devices",
    ] {
        assert_eq!(none[key], 0, "{key}: {none}");
    }
    for key in [
        "data_dir",
        "store_bytes",
        "users",
        "listeners",
        "workers",
        "store_failure",
    ] {
        assert!(none.get(key).is_none(), "{key} leaks: {none}");
    }

    let scoped: serde_json::Value =
        serde_json::from_str(&d.admin_api(Some(&emea)).get("/v1/status").text).unwrap();
    assert_eq!(
        (
            scoped["accounts"].as_u64(),
            scoped["virtual_accounts"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(scoped.get("data_dir").is_none(), "{scoped}");
    d.admin_api(Some(&emea))
        .get("/metrics")
        .assert_error(403, "forbidden");
}

/// `acme/Default` with 5 units of T, `acme/Default/spare` with 7 units of S; returns a
/// registration token of `acme/Default`.
fn two_pools(d: &Daemon) -> String {
    let acme = d.account("acme");
    let spare = acme.child("spare");
    acme.license("T", 5);
    spare.license("S", 7);
    acme.token().secret
}

/// Series follow what operators create, never what devices send: a pool with spare licenses
/// and no device has its series; tags a device reports without licenses, and methods a client
/// invents, add none.
#[test]
fn series_follow_license_entries_not_device_reports() {
    let d = Daemon::start();
    let secret = two_pools(&d);
    let token = metrics_reader(&d);
    let rt = crate::devices::runtime();
    let dirs = tempfile::tempdir().unwrap();
    let mut agent = crate::devices::register(&rt, &d, dirs.path(), &secret, "FOC0001");
    let before = series(&scrape(&d, &token, None).1);

    // The device asks for 2 units of T and 1 unit each of 20 tags nobody holds licenses for.
    let mut lines = crate::devices::usage("T", 2);
    for i in 0..20 {
        lines.extend(crate::devices::usage(&format!("invented.{i}"), 1));
    }
    rt.block_on(agent.report(lines, time::OffsetDateTime::now_utc()))
        .expect("report");
    for i in 0..20 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        assert_eq!(request(&d, &token, method, "/v1/vas", None).0, 405);
    }

    let text = scrape(&d, &token, None).1;
    assert!(
        !text.contains("invented."),
        "a device-reported tag became a label: {text}"
    );
    assert!(
        !text.contains("BREW"),
        "a client-invented method became a label: {text}"
    );
    let labels =
        |va: &str, tag: &str| format!("{{account=\"acme\",va=\"{va}\",entitlement_tag=\"{tag}\"}}");
    for expected in [
        format!(
            "satellite_licenses_purchased{} 7",
            labels("acme/Default/spare", "S")
        ),
        format!(
            "satellite_licenses_in_use{} 0",
            labels("acme/Default/spare", "S")
        ),
        format!(
            "satellite_licenses_purchased{} 5",
            labels("acme/Default", "T")
        ),
        format!("satellite_licenses_in_use{} 2", labels("acme/Default", "T")),
        "satellite_unlicensed_units{account=\"acme\"} 20".to_string(),
        "satellite_license_shortage_units{account=\"acme\"} 20".to_string(),
        "method=\"other\",status=\"405\"} 20".to_string(),
    ] {
        assert!(text.contains(&expected), "no `{expected}` in {text}");
    }
    // Only request series are new (for the routes first used since: the report, the first
    // scrape, the refused methods), none per tag.
    let added: Vec<(String, String)> = series(&text)
        .into_iter()
        .filter(|s| !before.contains(s) && !s.0.starts_with("satellite_request"))
        .collect();
    assert!(added.is_empty(), "new series: {added:?}");

    // Per account instead of per VA, for satellites with very many VAs.
    let (_, by_account) = scrape_path(&d, &token, "/metrics?licenses=account", None);
    assert!(
        by_account
            .contains("satellite_licenses_purchased{account=\"acme\",entitlement_tag=\"S\"} 7"),
        "{by_account}"
    );
    assert!(!by_account.contains("va=\""), "{by_account}");
    d.admin_api(Some(&token))
        .get("/metrics?licenses=everything")
        .assert_error(400, "malformed_request");
}
