//! Upgrades (SPEC §9): a store written by an earlier release opens and keeps its records; a
//! store written by a newer release is refused naming both versions, and is left untouched.

use std::path::Path;
use std::process::Command;

use satellite::store::{Migration, SCHEMA_VERSION, Store, tables::TABLES};

use crate::util::Daemon;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/store-v1");

fn copy_golden(to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for name in ["conf", "db"] {
        std::fs::copy(Path::new(GOLDEN).join(name), to.join(name)).unwrap();
    }
}

/// The golden store was written by schema version 1 (the first release) with one account, a
/// VA, a term license, a token and a user holding a role.
#[test]
fn a_store_from_schema_1_opens_with_every_record() {
    let mut d = Daemon::start();
    d.stop();
    copy_golden(&d.data_dir.join("store"));
    d.start_again();

    let accounts = d.cli_json(&["account", "list"]);
    assert_eq!(accounts[0]["name"], "golden");
    assert_eq!(accounts[0]["domain"], "golden.example");
    let licenses = d.cli_json(&["license", "list", "--va", "golden/Default/lab"]);
    assert_eq!(licenses["entries"][0]["quantity"], 7);
    assert_eq!(licenses["entries"][0]["labels"][0], "golden");
    assert_eq!(licenses["entries"][0]["end"], "2030-01-01T00:00:00Z");
    let tokens = d.cli_json(&["token", "list"]);
    assert_eq!(tokens[0]["description"], "golden");
    let users = d.cli_json(&["user", "list"]);
    assert_eq!(users[0]["grants"][0]["role"], "account-user");
    let status = d.cli_json(&["status"]);
    assert_eq!(
        status["schema_version"], SCHEMA_VERSION,
        "migrated to the current schema"
    );
    assert_eq!(status["unreadable_records"].as_array().unwrap().len(), 0);
    // Event numbering continues after the golden log (6 events).
    d.cli_ok(&["va", "create", "new", "--parent", "golden/Default"]);
    assert_eq!(d.events()[0]["seq"], 7);
}

fn noop(_: &satellite::store::MigrationCtx<'_>) -> Result<(), satellite::store::StoreError> {
    Ok(())
}

#[test]
fn a_store_from_a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("data").join("store");
    copy_golden(&store_dir);
    // A "newer release" migrates the store past this one's schema.
    let newer_version = SCHEMA_VERSION + 1;
    let mut steps = satellite::store::MIGRATIONS.to_vec();
    steps.push(Migration {
        from: SCHEMA_VERSION,
        to: newer_version,
        name: "a future change",
        run: noop,
    });
    let newer = Store::open_with(&store_dir, TABLES, newer_version, &steps).unwrap();
    drop(newer);
    let before = std::fs::read(store_dir.join("db")).unwrap();

    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\n[device]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_satellite"))
        .args(["--config", cfg.to_str().unwrap(), "serve"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("schema version {newer_version}"))
            && err.contains(&format!("up to {SCHEMA_VERSION}")),
        "{err}"
    );
    assert_eq!(
        std::fs::read(store_dir.join("db")).unwrap(),
        before,
        "the store is untouched"
    );
}
