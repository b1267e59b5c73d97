//! What a packaged install relies on, with the real binary: the CLI finds the daemon's admin
//! socket without options (`SATELLITE_SOCKET`, `--config`, `./satellite-data`, the packaged
//! defaults) and says where it looked when it cannot; the packaged configuration; shell
//! completions and manual pages generated from the CLI definition. `packaging/check-deb.sh`
//! builds, installs and removes the package itself (CI).

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{BIN, Daemon};

/// Runs the CLI in `dir` with `env` and nothing inherited that names a daemon.
fn cli_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("SATELLITE_CONFIG")
        .env_remove("SATELLITE_SOCKET")
        .env_remove("SATELLITE_TOKEN")
        .env_remove("STATE_DIRECTORY")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the satellite CLI")
}

fn assert_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn assert_fails(out: &Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what} should fail with exit code 1"
    );
    String::from_utf8(out.stderr.clone()).expect("UTF-8 error")
}

#[test]
fn satellite_socket_in_the_environment_names_the_daemon() {
    let daemon = Daemon::start();
    let elsewhere = tempfile::tempdir().unwrap();
    let socket = daemon.socket.to_str().unwrap();
    let out = cli_in(
        elsewhere.path(),
        &["status", "--json"],
        &[("SATELLITE_SOCKET", socket)],
    );
    let text = assert_ok(&out, "`SATELLITE_SOCKET=… satellite status`");
    assert!(text.contains("\"version\""), "not a status: {text}");
}

#[test]
fn a_relative_socket_of_config_is_found_in_the_configured_data_directory() {
    let daemon = Daemon::start_with("socket = \"ctl.sock\"", "");
    assert_eq!(daemon.socket, daemon.data_dir.join("ctl.sock"));
    let elsewhere = tempfile::tempdir().unwrap();
    let config = daemon.config_path.to_str().unwrap();
    let out = cli_in(elsewhere.path(), &["--config", config, "status"], &[]);
    assert_ok(
        &out,
        "`satellite --config FILE status` from another directory",
    );
}

#[test]
fn without_options_the_cli_finds_a_daemon_started_in_the_current_directory() {
    let here = tempfile::tempdir().unwrap();
    let _daemon = Daemon::start_custom(&here.path().join("satellite-data"), &[]);
    let out = cli_in(here.path(), &["status"], &[]);
    assert_ok(&out, "`satellite status` beside ./satellite-data");
}

/// A configuration without `data_dir` leaves the data directory to how the daemon was started:
/// by hand here (`./satellite-data`) or by the unit (`/var/lib/satellite`). The CLI looks in
/// both, and when neither holds the socket, its error lists both and how to point elsewhere.
#[test]
fn the_error_lists_every_place_looked_at_and_how_to_point_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("satellite.toml");
    std::fs::write(&config, "[admin]\nsocket = \"ctl-of-no-daemon.sock\"\n").unwrap();
    let out = cli_in(
        dir.path(),
        &["--config", config.to_str().unwrap(), "status"],
        &[],
    );
    let err = assert_fails(&out, "status with no daemon");
    for expected in [
        "./satellite-data/ctl-of-no-daemon.sock",
        "/var/lib/satellite/ctl-of-no-daemon.sock",
        "--socket PATH",
        "SATELLITE_SOCKET=PATH",
        "--config FILE",
    ] {
        assert!(err.contains(expected), "`{expected}` missing from: {err}");
    }

    let missing = dir.path().join("nothing-here.sock");
    let out = cli_in(
        dir.path(),
        &["status"],
        &[("SATELLITE_SOCKET", missing.to_str().unwrap())],
    );
    let err = assert_fails(&out, "status with SATELLITE_SOCKET naming no socket");
    assert!(
        err.contains(&format!(
            "{}  (given with $SATELLITE_SOCKET)",
            missing.display()
        )),
        "the error should name the socket and where it came from: {err}"
    );
    assert!(
        !err.contains("satellite-data"),
        "a socket given explicitly is the only place to look: {err}"
    );
}

#[test]
fn the_packaged_configuration_puts_the_socket_where_the_group_can_reach_it() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/satellite.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = cli_in(
        dir.path(),
        &["--config", config, "config", "check", "--json"],
        &[],
    );
    let settings: serde_json::Value =
        serde_json::from_str(&assert_ok(&out, "config check of the packaged file")).unwrap();
    assert_eq!(settings["admin_socket"], "/run/satellite/admin.sock");
    assert_eq!(settings["data_dir"], "/var/lib/satellite");
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains("socket_mode = \"0660\""), "{text}");

    // The unit lets the group into the runtime directory that holds the socket.
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/satellite.service"
    ))
    .unwrap();
    for line in [
        "RuntimeDirectory=satellite",
        "RuntimeDirectoryMode=0750",
        "Group=satellite",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks `{line}`");
    }
}

#[test]
fn completions_cover_every_subcommand_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = cli_in(dir.path(), &["completions", shell], &[]);
        let script = assert_ok(&out, &format!("`satellite completions {shell}`"));
        for word in [
            "status",
            "account",
            "reserve",
            "sync",
            "socket",
            "completions",
        ] {
            assert!(
                script.contains(word),
                "the {shell} completion does not mention `{word}`"
            );
        }
    }
    let out = cli_in(dir.path(), &["completions", "tcsh"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_pages_are_generated_for_the_command_and_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man");
    let out = cli_in(
        dir.path(),
        &["man-pages", "--out-dir", out_dir.to_str().unwrap()],
        &[],
    );
    let said = assert_ok(&out, "`satellite man-pages`");
    let pages: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        said.starts_with(&format!("{} manual pages", pages.len())),
        "{said}"
    );
    for page in [
        "satellite.1",
        "satellite-status.1",
        "satellite-completions.1",
        "satellite-man-pages.1",
        "satellite-account-create.1",
        "satellite-sync-export.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "no {page} in {pages:?}");
    }
    assert!(
        !pages
            .iter()
            .any(|p| p.starts_with("satellite-help") || p.contains("-help-")),
        "pages of the help command: {pages:?}"
    );
    let main = std::fs::read_to_string(out_dir.join("satellite.1")).unwrap();
    assert!(
        main.starts_with(".ie") || main.contains(".TH satellite 1"),
        "{main}"
    );
    for text in [
        "SATELLITE_SOCKET",
        "satellite\\-status(1)",
        "Virtual Accounts",
    ] {
        assert!(main.contains(text), "satellite.1 does not mention `{text}`");
    }
}
