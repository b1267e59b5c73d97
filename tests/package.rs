//! What a packaged install relies on, with the real binary: the CLI finds the daemon's admin
//! socket without options (`SATELLITE_SOCKET`, `--config`, `./satellite-data`, the packaged
//! defaults) and says where it looked when it cannot.

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
