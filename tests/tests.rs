//! Black-box tests of the `satellite` binary: a real daemon, the real CLI, real TLS.

mod inproc;
mod util;

mod access_log;
mod agent_cli;
mod allocation;
mod architecture;
mod backup;
mod bad_input;
mod bodies;
mod cisco_acks;
mod cisco_pull;
mod cli_polish;
mod concurrency;
mod config;
mod connections;
mod console;
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
mod snapshot;
mod startup;
mod store_access;
mod sync;
mod systemd;
mod upgrade;
mod walkthrough;

/// Every `.rs` file under `tests/` is a module of this binary: a file that its parent does not
/// declare (`tests.rs` for the top level, `NAME.rs` or `NAME/mod.rs` for `NAME/`) is never
/// compiled, and its tests never run.
#[test]
fn every_test_file_is_a_module_of_the_test_binary() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"));
    let mut missing = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path != root.join("tests.rs")
                && !declared_by_parent(root, &path)
            {
                missing.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "files under tests/ that their parent does not declare with `mod NAME;`: {missing:?}"
    );
}

/// Whether the parent module of the file at `path` (below `root`, the `tests/` directory)
/// declares it: `tests/x.rs` and `tests/x/mod.rs` by `tests/tests.rs`, `tests/x/y.rs` by
/// `tests/x.rs` or `tests/x/mod.rs`.
fn declared_by_parent(root: &std::path::Path, path: &std::path::Path) -> bool {
    // A `mod.rs` stands for its directory: the module is named after the directory and lives
    // one level up.
    let (name, dir) = if path.file_name().is_some_and(|n| n == "mod.rs") {
        let dir = path.parent().unwrap();
        (dir.file_name().unwrap(), dir.parent().unwrap())
    } else {
        (path.file_stem().unwrap(), path.parent().unwrap())
    };
    let name = name.to_str().unwrap();
    let parents = if dir == root {
        vec![root.join("tests.rs")]
    } else {
        vec![dir.with_extension("rs"), dir.join("mod.rs")]
    };
    let declaration = |line: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let words = words.strip_prefix(&["pub"]).unwrap_or(&words);
        words == ["mod", &format!("{name};")]
    };
    parents.iter().any(|parent| {
        std::fs::read_to_string(parent).is_ok_and(|text| text.lines().any(declaration))
    })
}
