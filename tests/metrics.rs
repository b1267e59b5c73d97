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
