//! The operator CLI as a whole (issue #13): every command documents its options and shows
//! examples, errors are JSON under `--json`, exit codes mean the same everywhere (2 usage, 1
//! refusal), times are RFC 3339, a UDI is `PID:SERIAL`, destructive commands ask or take
//! `--yes`, a mistyped VA gets suggestions limited to what the caller may see, and `status`
//! counts alerts as `alerts` does.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use clap::CommandFactory;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::util::{BIN, Daemon, assert_names, parse_table};

const ADV: &str = "regid.2019-03.com.example.ADV";

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Every command of the tree with its path (`satellite device remove`), clap's own `help`
/// subcommands left out.
fn commands() -> Vec<(String, clap::Command)> {
    let mut root = satellite::cli::Cli::command();
    root.build();
    let mut all = Vec::new();
    let mut stack = vec![("satellite".to_string(), root)];
    while let Some((path, cmd)) = stack.pop() {
        for sub in cmd.get_subcommands() {
            if sub.get_name() != "help" {
                stack.push((format!("{path} {}", sub.get_name()), sub.clone()));
            }
        }
        all.push((path, cmd));
    }
    all
}

#[test]
fn every_option_has_help_and_every_command_has_examples() {
    satellite::cli::Cli::command().debug_assert();
    let mut missing = Vec::new();
    for (path, cmd) in commands() {
        let examples = cmd
            .get_after_help()
            .or(cmd.get_after_long_help())
            .map(|h| h.to_string());
        if !examples.is_some_and(|h| {
            h.starts_with("Examples:\n  satellite") || h.starts_with("Examples:\n  SATELLITE_")
        }) {
            missing.push(format!("{path}: no Examples section"));
        }
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path}: {} has no help text", arg.get_id()));
            }
            // Options every command takes are listed apart from the command's own.
            if arg.is_global_set() {
                assert_eq!(
                    arg.get_help_heading(),
                    Some("Global options"),
                    "{path}: {}",
                    arg.get_id()
                );
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
    // The rendered help shows the two groups apart, and the examples.
    let mut root = satellite::cli::Cli::command();
    root.build();
    let help = root
        .find_subcommand_mut("device")
        .and_then(|c| c.find_subcommand_mut("remove"))
        .expect("device remove")
        .render_help()
        .to_string();
    let (own, global) = help
        .split_once("Global options:")
        .expect("a global section");
    assert!(own.contains("--yes") && !own.contains("--socket"), "{help}");
    assert!(
        global.contains("--socket") && global.contains("--json"),
        "{help}"
    );
    assert!(
        global.contains("Examples:\n  satellite device remove"),
        "{help}"
    );
}

/// (exit code, stdout, stderr) of a CLI run against `d`.
fn run(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let out = d.cli(args);
    (
        out.status.code().expect("an exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `{"error":{"code","message"}}` a `--json` command printed on stderr.
fn json_error(stderr: &str) -> (String, String) {
    let v: Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not one JSON error ({e}): {stderr}"));
    let code = v["error"]["code"].as_str().expect("a code").to_string();
    let message = v["error"]["message"]
        .as_str()
        .expect("a message")
        .to_string();
    (code, message)
}

#[test]
fn errors_are_json_under_json_with_unchanged_exit_codes() {
    let d = Daemon::start();
    let acme = d.account("acme");
    // A refusal by the daemon: exit 1, its code and message, nothing on stdout.
    let (code, stdout, stderr) = run(&d, &["va", "show", "acme/Default/nope", "--json"]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    let (c, m) = json_error(&stderr);
    assert_eq!(c, "not_found");
    assert!(m.contains("acme/Default/nope"), "{m}");
    // A usage error found by clap: exit 2, code `usage`.
    let (code, stdout, stderr) = run(&d, &["device", "list", "--status", "authorised", "--json"]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    let (c, m) = json_error(&stderr);
    assert_eq!(c, "usage");
    assert_names(&m, &["authorised", "authorized", "out_of_compliance"]);
    // A usage error found by the CLI (no terminal to confirm on): exit 2 as well.
    acme.child("emea");
    let (code, _, stderr) = run(&d, &["va", "delete", "acme/Default/emea", "--json"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(json_error(&stderr).0, "confirmation_required");
    // Without --json the same errors are text.
    let (code, _, stderr) = run(&d, &["va", "show", "acme/Default/nope"]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: "), "{stderr}");
}

#[test]
fn usage_errors_exit_2_and_name_the_valid_values() {
    let d = Daemon::start();
    d.account("acme");
    d.cli_ok(&["user", "create", "olivia"]);
    let before = d.snapshot();
    let usage = |args: &[&str], needles: &[&str]| {
        let (code, stderr) = d.cli_err(args);
        assert_eq!(code, 2, "`{}`: {stderr}", args.join(" "));
        assert_names(&stderr, needles);
    };
    usage(
        &["device", "list", "--status", "authorised"],
        &["authorized"],
    );
    usage(
        &["user", "grant", "olivia", "--role", "superuser"],
        &["superuser", "system-admin", "va-user"],
    );
    usage(
        &["events", "--action", "licence"],
        &[
            "licence",
            "license.transfer",
            "device.remove",
            "sync.request.apply",
        ],
    );
    usage(&["reserve"], &["--request", "--return"]);
    usage(&["backup"], &["--out"]);
    usage(
        &[
            "license",
            "sign",
            "--key",
            "k",
            "--account",
            "a.com",
            "--grant",
            "x",
            "--out",
            "f",
        ],
        &["VA_PATH:TAG:QTY"],
    );
    assert_eq!(d.snapshot(), before, "usage errors change nothing");
    // A family of actions, and an action, are accepted.
    d.cli_json(&["events", "--action", "account"]);
    d.cli_json(&["events", "--action", "user.create"]);
}

/// Registers a device with the agent CLI in `dir` and reports `count` of [`ADV`].
fn device(d: &Daemon, dir: &Path, serial: &str, count: u64) -> String {
    let token = d.va("acme/Default").token();
    let url = format!("https://localhost:{}", d.device_addr.port());
    let ca = d.data_dir.join("tls").join("ca.pem");
    let base = ["agent", "--dir", s(dir)];
    let out = d.cli_ok(
        &[
            &base[..],
            &[
                "register",
                "--url",
                &url,
                "--ca",
                s(&ca),
                "--pid",
                "C9300-24T",
            ],
            &["--serial", serial, "--hostname", serial],
            &["--token", &token.secret],
        ]
        .concat(),
    );
    assert!(
        out.starts_with(&format!("registered C9300-24T:{serial} as instance ")),
        "{out}"
    );
    d.cli_ok(&[&base[..], &["report", "--usage", &format!("{ADV}={count}")]].concat());
    let list = d.cli_json(&["device", "list", "--udi", serial]);
    list[0]["id"].as_str().expect("an id").to_string()
}

/// Asserts `text` is an RFC 3339 time with whole seconds.
fn assert_rfc3339(text: &str) {
    let t = OffsetDateTime::parse(text, &Rfc3339)
        .unwrap_or_else(|e| panic!("`{text}` is not RFC 3339: {e}"));
    assert_eq!(t.nanosecond(), 0, "{text}");
}

/// The value of the `key` line of a key/value listing.
fn value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key).filter(|rest| rest.starts_with("  ")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{text}"))
}

#[test]
fn times_are_rfc3339_and_udis_are_pid_colon_serial_everywhere() {
    let d = Daemon::start();
    d.account("acme").license(ADV, 5);
    let work = tempfile::tempdir().expect("tempdir");
    let id = device(&d, &work.path().join("a"), "FOC1", 2);

    let shown = d.cli_ok(&["device", "show", &id]);
    assert_eq!(value(&shown, "udi"), "C9300-24T:FOC1");
    for key in [
        "registered",
        "last contact",
        "next report by",
        "authorized until",
    ] {
        assert_rfc3339(value(&shown, key));
    }
    assert_rfc3339(value(&shown, "certificate until"));
    let list = d.cli_ok(&["device", "list"]);
    let headers = [
        "DEVICE",
        "UDI",
        "HOSTNAME",
        "VIRTUAL ACCOUNT",
        "STATUS",
        "LAST CONTACT",
        "SOURCE",
    ];
    let table = parse_table(&list, &headers, &[]);
    assert_eq!(table.row_where(0, &id)[1], "C9300-24T:FOC1");

    let status = d.cli_ok(&["status"]);
    let first = status.lines().next().expect("a first line");
    assert_rfc3339(first.rsplit(' ').next().expect("up since"));
    let worker = status
        .lines()
        .find(|l| l.starts_with("worker") && l.contains("expiry-sweep"))
        .expect("the expiry worker");
    let last = worker
        .rsplit("last ")
        .next()
        .expect("last run")
        .trim_end_matches(')');
    assert_rfc3339(last);
    let va = d.cli_ok(&["va", "show", "acme/Default"]);
    assert_rfc3339(value(&va, "created"));

    // Times in event details too: a report whose clock is far off.
    let dir = work.path().join("a");
    d.cli_ok(&[
        "agent",
        "--dir",
        s(&dir),
        "report",
        "--usage",
        &format!("{ADV}=2"),
        "--measured-at",
        "2020-01-01T00:00:00Z",
    ]);
    let events = d.cli_json(&["events", "--action", "device.clock_skew"]);
    let details = events[0]["details"].as_array().expect("details");
    let detail = |k: &str| {
        details
            .iter()
            .find(|kv| kv[0] == k)
            .and_then(|kv| kv[1].as_str())
            .unwrap_or_else(|| panic!("no {k} in {details:?}"))
    };
    assert_eq!(detail("measured_at"), "2020-01-01T00:00:00Z");
    assert_rfc3339(detail("satellite_time"));
}

#[test]
fn status_counts_the_alerts_that_alerts_lists() {
    let d = Daemon::start();
    let soon = (OffsetDateTime::now_utc() + time::Duration::days(10))
        .date()
        .to_string();
    d.account("acme")
        .license_between(ADV, 1, "2020-01-01", &soon);
    let alerts = d.cli_json(&["alerts"]).as_array().expect("alerts").len();
    assert!(alerts >= 1, "a license expiring in 10 days is an alert");
    assert_eq!(
        d.cli_json(&["status"])["alerts"].as_u64(),
        Some(alerts as u64)
    );
    let status = d.cli_ok(&["status"]);
    assert!(
        value(&status, "alerts").starts_with(&format!("{alerts} ")),
        "{status}"
    );
}

#[test]
fn key_ids_and_public_keys_are_named_alike_by_keygen_sign_and_sync_status() {
    let d = Daemon::start();
    let work = tempfile::tempdir().expect("tempdir");
    let key = work.path().join("portal.pem");
    let made = d.cli_json(&["sync", "keygen", "--out", s(&key)]);
    let signed = d.cli_json(&[
        "license",
        "sign",
        "--key",
        s(&key),
        "--account",
        "acme.com",
        "--grant",
        "Default:regid.x:1",
        "--out",
        s(&work.path().join("f.json")),
    ]);
    assert_eq!(signed["key_id"], made["key_id"]);
    let text = d.cli_ok(&["sync", "keygen", "--out", s(&work.path().join("k2.pem"))]);
    assert!(
        text.contains("public key  ") && text.contains("key id      "),
        "{text}"
    );

    let status = d.cli_json(&["sync", "status"]);
    let (key_id, public) = (status["key_id"].as_str(), status["public_key"].as_str());
    assert_eq!(key_id.map(str::len), Some(64));
    assert_eq!(public.map(str::len), Some(64));
    let text = d.cli_ok(&["sync", "status"]);
    assert_eq!(Some(value(&text, "key id")), key_id);
    assert_eq!(Some(value(&text, "public key")), public);
}

/// Runs the CLI on a pseudo-terminal (`script`), typing `answer` at the prompt.
fn on_terminal(d: &Daemon, args: &[&str], answer: &str) -> Output {
    let line = format!("{BIN} --config {} {}", s(&d.config_path), args.join(" "));
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run `script` (util-linux) for a terminal");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(answer.as_bytes())
        .expect("type the answer");
    child.wait_with_output().expect("wait for `script`")
}

#[test]
fn destructive_commands_need_yes_without_a_terminal_and_dry_runs_change_nothing() {
    let d = Daemon::start();
    d.account("acme").child("emea");
    let added = d.cli_json(&[
        "license",
        "add",
        "--va",
        "acme/Default",
        "--tag",
        ADV,
        "--quantity",
        "4",
    ]);
    let license = added["id"].as_str().expect("id").to_string();
    let work = tempfile::tempdir().expect("tempdir");
    let id = device(&d, &work.path().join("a"), "FOC9", 1);
    let before = d.snapshot();

    // No terminal, no --yes: a usage error naming --yes; --dry-run: what would go.
    for args in [
        vec!["device", "remove", "C9300-24T:FOC9"],
        vec!["license", "remove", &license],
        vec!["va", "delete", "acme/Default/emea"],
    ] {
        let (code, stderr) = d.cli_err(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_names(&stderr, &["--yes", "--dry-run", "no terminal"]);
        let dry = d.cli_ok(&[&args[..], &["--dry-run"]].concat());
        assert!(dry.starts_with("would "), "{dry}");
        assert_names(&dry, &["nothing was changed"]);
    }
    let dry = d.cli_ok(&["device", "remove", &id, "--dry-run"]);
    assert_names(
        &dry,
        &["C9300-24T:FOC9", &format!("would release 1 x {ADV}")],
    );
    let dry = d.cli_json(&[
        "license",
        "remove",
        &license,
        "--quantity",
        "1",
        "--dry-run",
    ]);
    assert_eq!(dry["would_remove"]["quantity"], 4);
    assert_eq!(d.snapshot(), before, "refusals and dry runs change nothing");

    // --yes does it without asking.
    d.cli_ok(&["device", "remove", "C9300-24T:FOC9", "--yes"]);
    d.cli_ok(&["license", "remove", &license, "--yes"]);
    assert!(
        d.cli_json(&["device", "list"])
            .as_array()
            .expect("list")
            .is_empty()
    );
    assert!(
        d.cli_json(&["license", "list"])["entries"]
            .as_array()
            .expect("entries")
            .is_empty()
    );
}

#[test]
fn on_a_terminal_destructive_commands_ask_first() {
    let d = Daemon::start();
    d.account("acme").child("emea");
    let before = d.snapshot();
    // On a terminal: "n" keeps it (exit 1), "y" removes it.
    let kept = on_terminal(&d, &["va", "delete", "acme/Default/emea"], "n\n");
    assert_eq!(kept.status.code(), Some(1), "{kept:?}");
    assert_names(
        &String::from_utf8_lossy(&kept.stdout),
        &[
            "remove virtual account acme/Default/emea (id",
            "[y/N]",
            "not confirmed",
        ],
    );
    assert_eq!(d.snapshot(), before);
    let gone = on_terminal(&d, &["va", "delete", "acme/Default/emea"], "y\n");
    assert_eq!(gone.status.code(), Some(0), "{gone:?}");
    assert_eq!(
        d.cli_json(&["va", "list"]).as_array().map(Vec::len),
        Some(1)
    );
}

/// Runs the CLI over HTTPS with an API token.
fn remote(d: &Daemon, token: &str, args: &[&str]) -> Output {
    let ca = d.data_dir.join("tls").join("ca.pem");
    let url = format!("https://localhost:{}", d.admin_addr.port());
    Command::new(BIN)
        .args(["--url", &url, "--token", token, "--ca", s(&ca)])
        .args(args)
        .env_remove("SATELLITE_CONFIG")
        .env_remove("SATELLITE_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run the CLI")
}

#[test]
fn a_mistyped_va_gets_suggestions_among_the_vas_the_caller_may_see() {
    let d = Daemon::start();
    for name in ["acme", "globex"] {
        d.account(name).child("emea");
    }
    // The system administrator, on the socket: the closest path and the path form.
    let (code, stderr) = d.cli_err(&["va", "show", "acme/Default/emae"]);
    assert_eq!(code, 1);
    assert_names(
        &stderr,
        &[
            "not found",
            "did you mean acme/Default/emea",
            "ACCOUNT/Default/...",
        ],
    );
    let (_, stderr) = d.cli_err(&[
        "license",
        "add",
        "--va",
        "emea",
        "--tag",
        "t",
        "--quantity",
        "1",
    ]);
    assert_names(&stderr, &["acme/Default/emea", "globex/Default/emea"]);

    // A VA user of acme/Default/emea, over HTTPS: only what they may see is suggested.
    d.cli_ok(&["user", "create", "paul"]);
    d.cli_ok(&[
        "user",
        "grant",
        "paul",
        "--role",
        "va-user",
        "--va",
        "acme/Default/emea",
    ]);
    let token = d.cli_json(&["api-token", "create", "--user", "paul"])["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    for typo in ["globex/Default/emae", "emae", "acme/Default/emae"] {
        let out = remote(&d, &token, &["va", "show", typo]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("globex/Default/emea"), "{stderr}");
        assert_names(&stderr, &["not found", "ACCOUNT/Default/..."]);
    }
    let out = remote(&d, &token, &["va", "show", "acme/Default/emae"]);
    assert_names(
        &String::from_utf8_lossy(&out.stderr),
        &["did you mean acme/Default/emea?"],
    );
}
