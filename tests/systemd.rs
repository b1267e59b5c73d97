//! The systemd side: the notify protocol spoken by the real binary to a real datagram socket,
//! reload on SIGHUP (good and bad configurations), and the unit file checked by systemd's own
//! tools.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_satellite");

fn config(dir: &Path, level: &str) -> String {
    format!(
        "data_dir = \"{}\"\n[device]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [log]\nlevel = \"{level}\"\n",
        dir.join("data").display()
    )
}

/// Waits for the next notify datagram; the deadline only guards against a hang.
fn next(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notify message before the deadline");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Reads datagrams until one contains `needle`, skipping watchdog pings; returns what came
/// before it (other than pings).
fn until(sock: &UnixDatagram, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let msg = next(sock);
        if msg.contains(needle) {
            return seen;
        }
        if msg.trim() != "WATCHDOG=1" {
            seen.push(msg);
        }
    }
    panic!("no `{needle}` notification; saw {seen:?}");
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn notify_protocol_ready_reloading_watchdog_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("satellite.toml");
    std::fs::write(&cfg, config(dir.path(), "info")).unwrap();
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();

    let mut child = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "serve"])
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = stdout.lines();

    // Loading the catalog asks for more time at once; READY=1 comes only once the listeners
    // are bound: after `ready` is printed.
    let first = next(&sock);
    assert!(
        first.contains("EXTEND_TIMEOUT_USEC=15000000") && first.contains("STATUS=loading"),
        "the first notification extends the start-up timeout, got {first:?}"
    );
    let before_ready = until(&sock, "READY=1");
    assert!(
        before_ready
            .iter()
            .all(|m| m.contains("READY=1") || m.contains("EXTEND_TIMEOUT_USEC")),
        "{before_ready:?}"
    );
    let printed: Vec<String> = lines
        .by_ref()
        .map_while(Result::ok)
        .take_while(|l| l != "ready")
        .collect();
    assert!(
        printed.iter().any(|l| l.starts_with("devices")),
        "{printed:?}"
    );

    // The watchdog pings at half of WATCHDOG_USEC.
    let ping = next(&sock);
    assert_eq!(ping.trim(), "WATCHDOG=1");

    // A good reload: RELOADING=1 (with its monotonic timestamp), then READY=1.
    std::fs::write(&cfg, config(dir.path(), "debug")).unwrap();
    signal(child.id(), "-HUP");
    until(&sock, "RELOADING=1");
    until(&sock, "READY=1");

    // A bad configuration is refused and the daemon keeps serving.
    std::fs::write(&cfg, "[device]\nlisen = \"x\"\n").unwrap();
    signal(child.id(), "-HUP");
    until(&sock, "RELOADING=1");
    until(&sock, "READY=1");
    assert!(
        child.try_wait().unwrap().is_none(),
        "a bad reload must not stop the daemon"
    );

    signal(child.id(), "-TERM");
    until(&sock, "STOPPING=1");
    // Writing the snapshot of the devices asks for more time too.
    until(&sock, "STATUS=writing the snapshot");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Starts the daemon on `config(dir, "info")` in a new directory, its log in `DIR/log`; answers
/// the directory, the process and what it printed before `ready`.
fn serve_logging() -> (tempfile::TempDir, std::process::Child, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("satellite.toml");
    std::fs::write(&cfg, config(dir.path(), "info")).unwrap();
    let log_path = dir.path().join("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "serve"])
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed = lines
        .map_while(Result::ok)
        .take_while(|l| l != "ready")
        .collect();
    (dir, child, printed)
}

#[test]
fn a_bad_reload_keeps_the_old_configuration_and_says_why() {
    let (dir, mut child, printed) = serve_logging();
    let (cfg, log_path) = (dir.path().join("satellite.toml"), dir.path().join("log"));
    let socket = printed
        .iter()
        .find_map(|l| l.strip_prefix("admin socket "))
        .unwrap()
        .trim()
        .to_string();

    std::fs::write(&cfg, "[timers]\nrenew_after = \"400d\"\n").unwrap();
    signal(child.id(), "-HUP");
    // The refusal is logged; wait for it (bounded) rather than for time.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if text.contains("reload refused") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(text.contains("reload refused"), "{text}");
    assert!(
        text.contains("timers.renew_after"),
        "the refusal names the key: {text}"
    );
    // Still serving on the old configuration.
    let out = Command::new(BIN)
        .args(["--socket", &socket, "status"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    signal(child.id(), "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn unit_file_verifies_and_is_hardened() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze is required (Debian package `systemd`); .ci/run installs it");
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/satellite.service"
    ))
    .unwrap()
    .replace("/usr/local/bin/satellite", BIN);
    let path = dir.path().join("satellite.service");
    std::fs::write(&path, unit).unwrap();

    let verify = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && complaints.trim().is_empty(),
        "verify: {complaints}"
    );

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split("exposure level for satellite.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure figure in {text}"));
    assert!(exposure <= 2.0, "exposure {exposure} must be 2.0 or lower");
}

/// Waits (bounded) until the log holds `count` lines containing `needle`; returns the log.
fn wait_for_log(path: &Path, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap();
        if text.matches(needle).count() >= count || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_reload_names_every_changed_setting_it_did_not_apply() {
    let (dir, mut child, _) = serve_logging();
    let (cfg, log_path) = (dir.path().join("satellite.toml"), dir.path().join("log"));

    // One applied change (the timers) and one of each section a reload cannot apply.
    let changed = config(dir.path(), "info")
        .replace("[device]\n", "[device]\nmax_body_bytes = 12345\n")
        + "[timers]\nreport_interval = \"1d\"\n[shutdown]\ndrain_timeout = \"7s\"\n\
         [sync]\ninterval = \"off\"\n";
    std::fs::write(&cfg, changed).unwrap();
    signal(child.id(), "-HUP");
    let text = wait_for_log(&log_path, "configuration reloaded", 1);
    let line = text
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap_or_else(|| panic!("no reload line in {text}"));
    for key in [
        "device.max_body_bytes",
        "shutdown.drain_timeout",
        "sync.interval",
    ] {
        assert!(line.contains(key), "the reload names {key}: {line}");
    }
    assert!(line.contains("not applied until a restart"), "{line}");
    assert!(
        !line.contains("timers.report_interval"),
        "timers are applied: {line}"
    );

    // Still not applied: a second reload names the same keys again.
    signal(child.id(), "-HUP");
    let text = wait_for_log(&log_path, "configuration reloaded", 2);
    let second = text
        .lines()
        .filter(|l| l.contains("configuration reloaded"))
        .nth(1)
        .unwrap();
    assert!(second.contains("sync.interval"), "{second}");
    signal(child.id(), "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
