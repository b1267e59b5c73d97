//! Observability endpoints on the admin listener: Prometheus metrics (authenticated), readiness
//! and health (not).

use crate::util::Daemon;

#[test]
fn metrics_count_requests_and_describe_the_catalog() {
    let d = Daemon::start();
    d.cli_ok(&["account", "create", "acme", "--domain", "acme.com"]);
    d.cli_ok(&[
        "license",
        "add",
        "--va",
        "acme/Default",
        "--tag",
        "T",
        "--quantity",
        "5",
    ]);
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

    let scrape = d.admin_api(Some(&token)).get("/metrics");
    assert_eq!(scrape.status, 200, "{}", scrape.text);
    let text = scrape.text;
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
        text.trim_end().ends_with("# EOF"),
        "one exposition, one EOF: {text}"
    );
    assert_eq!(text.matches("# EOF").count(), 1);

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
    d.cli_ok(&["account", "create", "acme", "--domain", "acme.com"]);
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
    d.cli_ok(&["account", "create", "acme", "--domain", "acme.com"]);
    d.cli_ok(&["va", "create", "emea", "--parent", "acme/Default"]);
    d.cli_ok(&["account", "create", "other", "--domain", "other.org"]);
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
