//! `satellite serve` refusing to start says why, names what to change, and leaves nothing
//! behind: a second daemon on a served data directory, a listen address in use, a data
//! directory the daemon may not write.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::{BIN, Daemon, assert_names};

/// Writes a configuration with the given data directory and listen addresses.
fn config(dir: &Path, data: &Path, device: &str, admin: &str) -> PathBuf {
    let path = dir.join("satellite.toml");
    let text = format!(
        "data_dir = {:?}\n\n[device]\nlisten = \"{device}\"\n\n[admin]\nlisten = \"{admin}\"\n",
        data.display().to_string()
    );
    std::fs::write(&path, text).expect("write the config");
    path
}

/// Runs `satellite serve` under `wrapper` (a command that executes the rest, or none),
/// expecting it to fail at start-up; returns its stderr.
fn serve_fails(config: &Path, wrapper: &[&str]) -> String {
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    let out: Output = command
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env_remove("SATELLITE_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run satellite serve");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("ready"),
        "{stderr}"
    );
    stderr
}

#[test]
fn a_second_daemon_on_a_served_data_directory_names_the_first() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let second = config(dir.path(), &d.data_dir, "127.0.0.1:0", "127.0.0.1:0");
    let stderr = serve_fails(&second, &[]);
    let needle = format!(
        "a satellite is already serving {} (pid ",
        d.data_dir.display()
    );
    assert!(stderr.contains(&needle), "{stderr}");
    assert_eq!(stderr.matches("already serving").count(), 1, "{stderr}");
    assert!(!stderr.contains("could not acquire lock"), "{stderr}");
    // The pid named is the running daemon's.
    let pid: u32 = stderr[stderr.find(&needle).unwrap() + needle.len()..]
        .split(')')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {stderr}"));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the named process runs");
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(
        cmdline.contains("serve") && cmdline.contains(&d.config_path.display().to_string()),
        "{cmdline}"
    );
    // The first one is unharmed.
    d.cli_ok(&["status"]);
}

#[test]
fn a_listen_address_in_use_names_its_key_and_creates_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    for (device, admin, key) in [
        (addr.as_str(), "127.0.0.1:0", "device.listen"),
        ("127.0.0.1:0", addr.as_str(), "admin.listen"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let stderr = serve_fails(&config(dir.path(), &data, device, admin), &[]);
        assert_names(&stderr, &[&addr, key, "in use"]);
        assert!(!data.exists(), "a failed start created {}", data.display());
    }
}

#[test]
fn an_unwritable_data_directory_is_named_not_writable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).expect("chmod");
    // Root writes anywhere; without the capability that lets it, it is held to the mode.
    let root = std::fs::metadata("/proc/self").expect("/proc").uid() == 0;
    let wrapper: &[&str] = match root {
        true => &[
            "setpriv",
            "--bounding-set",
            "-dac_override,-dac_read_search",
            "--",
        ],
        false => &[],
    };
    // An existing directory, and a new one that cannot be created in it.
    for data in [locked.clone(), locked.join("new")] {
        let stderr = serve_fails(
            &config(dir.path(), &data, "127.0.0.1:0", "127.0.0.1:0"),
            wrapper,
        );
        assert_names(
            &stderr,
            &[&data.display().to_string(), "not writable", "data_dir"],
        );
    }
    assert_eq!(std::fs::read_dir(&locked).expect("list").count(), 0);
}
