//! Metrics a Prometheus user can trust: `promtool` (Prometheus's own checker) accepts both
//! expositions of a live satellite, the rules in `contrib/prometheus/alerts.yml` and every
//! metric the rules and the Grafana dashboard (`contrib/grafana/satellite.json`) query exist in
//! a live scrape. promtool is a test dependency (`.ci/run` installs it); without it these tests
//! fail, saying how to install it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::access_log::wait_for_alerts_round;
use crate::metrics::{OPENMETRICS_ACCEPT, metrics_reader, scrape};

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/prometheus/alerts.yml");
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/grafana/satellite.json"
);

/// Runs promtool with `args`, `stdin` on its standard input.
fn promtool(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): the metrics tests need Prometheus's checker. Install \
                 it with `apt-get install prometheus` (Debian and Ubuntu ship promtool in that \
                 package), or put `promtool` from a Prometheus release on PATH"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// What promtool printed, both streams.
fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string()
}

/// Sample names of an exposition.
fn sample_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l[..l.find(['{', ' ']).unwrap()].to_string())
        .collect()
}

/// Metric names a file's queries use: every `satellite_…` and `process_…` word in it.
fn queried_names(path: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut names = BTreeSet::new();
    for prefix in ["satellite_", "process_"] {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

/// OpenMetrics: promtool's OpenMetrics parser (the one behind `tsdb create-blocks-from
/// openmetrics`, which wants a timestamp on every sample) reads it whole, `# EOF` included.
fn check_openmetrics(openmetrics: &str) {
    let dir = tempfile::tempdir().unwrap();
    let stamped: String = openmetrics
        .lines()
        .map(|l| match l.starts_with('#') {
            true => format!("{l}\n"),
            false => format!("{l} 1700000000\n"),
        })
        .collect();
    let file = dir.path().join("scrape.om");
    std::fs::write(&file, stamped).unwrap();
    let blocks = dir.path().join("blocks");
    let parsed = promtool(
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            path(&file),
            path(&blocks),
        ],
        "",
    );
    assert!(
        parsed.status.success(),
        "{}\n{openmetrics}",
        text_of(&parsed)
    );
    // promtool's linter reads only the text format: in OpenMetrics a counter family `x` is
    // announced without `_total`, so the linter finds `x_total` undocumented. That is its only
    // remark, for exactly the counter families.
    let counters: BTreeSet<String> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .map(|family| format!("{family}_total no help text"))
        .collect();
    let remarks: BTreeSet<String> = text_of(&promtool(&["check", "metrics"], openmetrics))
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(remarks, counters, "{openmetrics}");
}

#[test]
fn promtool_accepts_both_expositions_the_rules_and_every_queried_metric() {
    // A satellite bound to an upstream (so it has sync figures), with an account whose
    // licenses expire within days (so it has alerts and expiring units).
    let (_hq, mut regional) = crate::sync::hq_and_regional();
    let local = regional.account_with_domain("local", "local.example");
    let today = time::OffsetDateTime::now_utc().date();
    let (start, end) = (
        (today - time::Duration::days(30)).to_string(),
        (today + time::Duration::days(3)).to_string(),
    );
    local.license_between("T", 4, &start, &end);
    let token = metrics_reader(&regional);
    regional.restart();
    wait_for_alerts_round(&regional, 1);
    let (_, text) = scrape(&regional, &token, None);
    let (_, openmetrics) = scrape(&regional, &token, Some(OPENMETRICS_ACCEPT));

    // The text format: not a single remark.
    let lint = promtool(&["check", "metrics"], &text);
    assert!(
        lint.status.success() && text_of(&lint).is_empty(),
        "promtool check metrics: {}\n{text}",
        text_of(&lint)
    );

    check_openmetrics(&openmetrics);

    // The rules are valid, and every metric they and the dashboard query is in the scrape.
    let rules = promtool(&["check", "rules", RULES], "");
    assert!(rules.status.success(), "{}", text_of(&rules));
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).expect("JSON");
    assert!(dashboard["panels"].as_array().unwrap().len() >= 10);
    let scraped = sample_names(&text);
    for file in [RULES, DASHBOARD] {
        let queried = queried_names(file);
        assert!(queried.len() >= 8, "{file} queries {queried:?}");
        let missing: Vec<&String> = queried.difference(&scraped).collect();
        assert!(
            missing.is_empty(),
            "{file} queries metrics a live satellite does not expose: {missing:?}\n{text}"
        );
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
