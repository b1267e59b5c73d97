//! `satellite config check` and start-up validation: errors name the key (SPEC §9).

use std::process::Command;

use crate::util::{BIN, assert_names, cli_with_config};

fn config_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("satellite.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn the_shipped_reference_config_passes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/satellite.toml");
    let out = cli_with_config(&path, &["config", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("is valid"), "{text}");
    assert!(text.contains("127.0.0.1:8443"), "{text}");
    let out = cli_with_config(&path, &["config", "check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["valid"], true);
    assert_eq!(v["device_listen"], "127.0.0.1:8443");
}

#[test]
fn a_typo_or_a_bad_duration_is_refused_naming_the_key() {
    let (_dir, path) = config_file("[device]\nlisen = \"x\"\n");
    let out = cli_with_config(&path, &["config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert_names(&String::from_utf8_lossy(&out.stderr), &["lisen"]);

    let (_dir2, path) = config_file("[timers]\nclock_skew = \"5x\"\n");
    let out = cli_with_config(&path, &["config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert_names(
        &String::from_utf8_lossy(&out.stderr),
        &["timers.clock_skew", "5x"],
    );

    let (_dir3, path) = config_file("[shutdown]\ndrain_timeout = \"10\"\n");
    let out = cli_with_config(&path, &["config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert_names(
        &String::from_utf8_lossy(&out.stderr),
        &["shutdown.drain_timeout"],
    );
}

#[test]
fn serve_with_a_typo_exits_naming_the_key_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("satellite.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[admin]\nmax_body_byts = 10\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .env_remove("SATELLITE_CONFIG")
        .output()
        .expect("run satellite serve");
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(1));
    assert_names(&String::from_utf8_lossy(&out.stderr), &["max_body_byts"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
    assert!(
        !data.exists(),
        "a refused config must not create the data directory"
    );
}

/// Port 0 asks the kernel for a free port, so two listeners on `127.0.0.1:0` never collide;
/// tests and operators who let the kernel choose need both.
#[test]
fn both_listeners_may_use_port_zero() {
    let (_dir, path) =
        config_file("[device]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n");
    let out = cli_with_config(&path, &["config", "check"]);
    assert!(
        out.status.success(),
        "both listeners on 127.0.0.1:0 should be accepted: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two fixed equal addresses are still a mistake.
    let (_dir, path) = config_file(
        "[device]\nlisten = \"127.0.0.1:9443\"\n[admin]\nlisten = \"127.0.0.1:9443\"\n",
    );
    let out = cli_with_config(&path, &["config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert_names(&String::from_utf8_lossy(&out.stderr), &["admin.listen"]);
}
