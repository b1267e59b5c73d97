//! Black-box tests of the `satellite` binary: a real daemon, the real CLI, real TLS.

mod inproc;
mod util;

mod access_log;
mod agent_cli;
mod allocation;
mod backup;
mod bad_input;
mod bodies;
mod cli_polish;
mod concurrency;
mod config;
mod connections;
mod corrupt;
mod crash;
mod device_auth;
mod device_timers;
mod devices;
mod durability;
mod files;
mod full_disk;
mod https;
mod license_import;
mod metrics;
mod operator_devices;
mod package;
mod power_loss;
mod process;
mod promtool;
mod quantities;
mod readme;
mod reservation;
mod rum;
mod startup;
mod store_access;
mod sync;
mod systemd;
mod upgrade;
mod walkthrough;

/// Every file in `tests/` is a module of this binary: a file that is not listed here is never
/// compiled, and its tests never run.
#[test]
fn every_test_file_is_a_module_of_the_test_binary() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    let listed = include_str!("tests.rs");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if stem != "tests" && !listed.lines().any(|l| l.trim() == format!("mod {stem};")) {
                missing.push(stem);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "tests/ files that are not modules of tests.rs: {missing:?}"
    );
}
