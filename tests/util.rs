//! The test harness: a real `satellite serve` process in a temporary directory, the real CLI
//! pointed at it, an HTTPS client that trusts only the daemon's own CA, and a parser for the
//! CLI's aligned tables.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Once;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod prelude;

/// The satellite binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_satellite");

/// Guards against a daemon that never becomes ready or never exits; not a wait.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the HTTPS admin API listens. It should be `127.0.0.1:0` like the device listener, but
/// `satellite` refuses two listeners on the same `IP:0` (see
/// `config::both_listeners_may_use_port_zero`), so the admin API takes another loopback address;
/// the client reaches it as `localhost`, which the server certificate names.
const ADMIN_LISTEN: &str = "127.0.0.1:0";

/// A running daemon with its own temporary data directory.
pub struct Daemon {
    /// Owns the temporary directory; removed when the daemon is dropped.
    _dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub socket: PathBuf,
    pub device_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub ca_pem: String,
    log_path: PathBuf,
    child: Option<Child>,
    /// A command the daemon is started under (e.g. `prlimit --fsize=N`), empty for none.
    wrapper: Vec<String>,
}

/// Writes the test configuration in `dir`: data under `dir/data`, both listeners on a free
/// port, `admin_keys` as extra lines of the `[admin]` section and `extra` (whole sections)
/// after it.
fn write_config(dir: &Path, admin_keys: &str, extra: &str) -> PathBuf {
    write_config_at(dir, &dir.join("data"), admin_keys, extra)
}

/// Like [`write_config`], with the data directory at `data`.
fn write_config_at(dir: &Path, data: &Path, admin_keys: &str, extra: &str) -> PathBuf {
    let text = format!(
        "data_dir = {data:?}\n\n[device]\nlisten = \"127.0.0.1:0\"\n\n[admin]\nlisten = \
         \"{ADMIN_LISTEN}\"\n{admin_keys}\n{extra}\n",
        data = data.display().to_string(),
    );
    let path = dir.join("satellite.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

impl Daemon {
    /// Starts a daemon with the default test configuration.
    pub fn start() -> Daemon {
        Self::start_with("", "")
    }

    /// Starts a daemon; `admin_keys` are extra lines of the `[admin]` section, `extra` is extra
    /// TOML appended after it (whole sections).
    pub fn start_with(admin_keys: &str, extra: &str) -> Daemon {
        install_crypto();
        let dir = tempfile::tempdir().expect("temporary directory");
        let config_path = write_config(dir.path(), admin_keys, extra);
        let data_dir = dir.path().join("data");
        let mut daemon = Daemon {
            log_path: dir.path().join("daemon.log"),
            _dir: dir,
            config_path,
            data_dir,
            socket: PathBuf::new(),
            device_addr: "0.0.0.0:0".parse().unwrap(),
            admin_addr: "0.0.0.0:0".parse().unwrap(),
            ca_pem: String::new(),
            child: None,
            wrapper: Vec::new(),
        };
        daemon.spawn();
        daemon
    }

    /// Starts a daemon with the default test configuration whose data directory is `data_dir`
    /// (which may live on a file system the test controls), run under `wrapper` (a command and
    /// its arguments that end by executing the rest of the command line, such as `prlimit
    /// --fsize=N`; empty for none).
    pub fn start_custom(data_dir: &Path, wrapper: &[String]) -> Daemon {
        install_crypto();
        let dir = tempfile::tempdir().expect("temporary directory");
        let config_path = write_config_at(dir.path(), data_dir, "", "");
        let mut daemon = Daemon {
            log_path: dir.path().join("daemon.log"),
            _dir: dir,
            config_path,
            data_dir: data_dir.to_owned(),
            socket: PathBuf::new(),
            device_addr: "0.0.0.0:0".parse().unwrap(),
            admin_addr: "0.0.0.0:0".parse().unwrap(),
            ca_pem: String::new(),
            child: None,
            wrapper: wrapper.to_vec(),
        };
        daemon.spawn();
        daemon
    }

    /// Sets the command the next [`Daemon::start_again`] runs the daemon under (see
    /// [`Daemon::start_custom`]).
    pub fn set_wrapper(&mut self, wrapper: &[String]) {
        self.wrapper = wrapper.to_vec();
    }

    /// Kills the daemon with SIGKILL (no shutdown sequence at all) and waits for it to exit.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the daemon is running");
        // `Child::kill` sends SIGKILL on Unix.
        child.kill().expect("send SIGKILL to the daemon");
        child.wait().expect("wait for the killed daemon")
    }

    /// Sends SIGTERM and returns how the daemon exited, whatever the exit code (`None` if it
    /// had to be killed after the guard time).
    pub fn stop_status(&mut self) -> Option<ExitStatus> {
        self.terminate()
    }

    /// Spawns `satellite serve` and reads its stdout up to `ready`.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("daemon log file");
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .arg("--config")
            .arg(&self.config_path)
            .arg("serve")
            .env_remove("SATELLITE_CONFIG")
            .env_remove("SATELLITE_TOKEN")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn satellite serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<String>();
        // Keeps draining stdout after `ready` so the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep reading to drain.
                    continue;
                }
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line == "ready" => break,
                Ok(line) => lines.push(line),
                Err(e) => panic!(
                    "satellite serve did not print `ready` ({e}); stdout so far: {lines:#?}\n\
                     log:\n{}",
                    self.log()
                ),
            }
        }
        let field = |prefix: &str| -> Option<String> {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(|v| v.trim().to_string()))
        };
        let addr = |prefix: &str| -> SocketAddr {
            field(prefix)
                .and_then(|v| v.strip_prefix("https://").map(str::to_string))
                .unwrap_or_else(|| panic!("no `{prefix}` line in {lines:#?}"))
                .parse()
                .expect("a socket address")
        };
        self.device_addr = addr("devices ");
        self.admin_addr = addr("admin  ");
        self.socket = PathBuf::from(field("admin socket ").expect("admin socket line"));
        let ca_path = PathBuf::from(field("device CA ").expect("device CA line"));
        self.ca_pem = std::fs::read_to_string(&ca_path).expect("read the device CA");
    }

    /// What the daemon logged to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit (SIGKILL after the guard timeout).
    fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon with SIGTERM and asserts it exits with code 0 within the guard time.
    pub fn stop(&mut self) {
        let status = self
            .terminate()
            .expect("the daemon exits within 10 s of SIGTERM");
        assert_eq!(
            status.code(),
            Some(0),
            "satellite serve should exit 0 on SIGTERM; log:\n{}",
            self.log()
        );
    }

    /// Stops (asserting exit code 0) and starts again on the same data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts again after [`Daemon::stop`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the daemon is still running");
        self.spawn();
    }

    /// Runs the real CLI against this daemon (through `--config`, so it finds the socket).
    pub fn cli(&self, args: &[&str]) -> Output {
        cli_with_config(&self.config_path, args)
    }

    /// Runs the CLI, asserts exit code 0, returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        stdout_of_success(self.cli(args), &format!("satellite {}", args.join(" ")))
    }

    /// Runs the CLI with `--json`, asserts success, parses stdout.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.cli_ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "`satellite {}` printed invalid JSON ({e}): {text}",
                all.join(" ")
            )
        })
    }

    /// Runs the CLI expecting failure; returns the exit code and stderr.
    pub fn cli_err(&self, args: &[&str]) -> (i32, String) {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "`satellite {}` should have failed but printed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().expect("exit code, not a signal"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The number of events in the audit log (as the system administrator sees it).
    pub fn event_count(&self) -> usize {
        self.events().len()
    }

    /// All events, newest first.
    pub fn events(&self) -> Vec<Value> {
        self.cli_json(&["events", "--limit", "10000"])
            .as_array()
            .expect("events are a JSON array")
            .clone()
    }

    /// Everything an operator can list, to compare before and after a refused command.
    pub fn snapshot(&self) -> Value {
        serde_json::json!({
            "accounts": self.cli_json(&["account", "list"]),
            "vas": self.cli_json(&["va", "list"]),
            "licenses": self.cli_json(&["license", "list"]),
            "tokens": self.cli_json(&["token", "list"]),
            "users": self.cli_json(&["user", "list"]),
            "api_tokens": self.cli_json(&["api-token", "list"]),
            "events": self.events(),
        })
    }

    /// The path of `account`'s unguessable RUM ingest URL, as `account show` gives it.
    pub fn rum_path(&self, account: &str) -> String {
        let shown = self.cli_json(&["account", "show", account]);
        shown["rum_ingest"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("`account show` gives no RUM ingest URL: {shown:#}"))
            .to_string()
    }

    /// An HTTPS client for the admin API, with `token` as bearer token if given.
    pub fn admin_api(&self, token: Option<&str>) -> Api {
        Api::new(&self.ca_pem, self.admin_addr, token)
    }

    /// An HTTPS client for the device listener.
    pub fn device_api(&self) -> Api {
        Api::new(&self.ca_pem, self.device_addr, None)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Runs the CLI with `--config path`.
pub fn cli_with_config(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("SATELLITE_CONFIG")
        .env_remove("SATELLITE_SOCKET")
        .env_remove("SATELLITE_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run the satellite CLI")
}

/// Runs `satellite agent --dir DIR ARGS…` with no configuration, token or log filter from the
/// environment (the agent needs no configuration; a daemon it speaks to is named in `args`).
pub fn agent(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("agent")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("SATELLITE_CONFIG")
        .env_remove("SATELLITE_TOKEN")
        .env_remove("SATELLITE_REGISTRATION_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run satellite agent")
}

/// Runs [`agent`], asserts exit code 0, returns stdout.
pub fn agent_ok(dir: &Path, args: &[&str]) -> String {
    stdout_of_success(agent(dir, args), &format!("agent {}", args.join(" ")))
}

/// Asserts that the command shown as `command` exited 0, and returns its stdout.
fn stdout_of_success(out: Output, command: &str) -> String {
    assert!(
        out.status.success(),
        "`{command}` failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// An HTTP response: status and JSON body (`Value::Null` if the body is not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body (status {}): {}", self.status, self.text))
    }

    /// Asserts the status and the error code of a refusal.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
        let message = self.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "the error has no message: {}",
            self.text
        );
    }
}

/// A blocking HTTPS client trusting only the daemon's CA, speaking to `https://localhost:PORT`.
pub struct Api {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(ca_pem: &str, addr: SocketAddr, token: Option<&str>) -> Api {
        install_crypto();
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("the CA parses");
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .resolve("localhost", addr)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTPS client");
        Api {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            client,
            base: format!("https://localhost:{}", addr.port()),
            token: token.map(str::to_string),
        }
    }

    fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        self.runtime.block_on(async {
            let res = req.send().await.expect("the HTTPS request is answered");
            let status = res.status().as_u16();
            let text = res.text().await.expect("a body");
            Resp {
                status,
                body: serde_json::from_str(&text).unwrap_or(Value::Null),
                text,
            }
        })
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send(self.client.get(format!("{}{path}", self.base)))
    }

    /// GETs `path` with one extra header (and no bearer token of this client's own).
    pub fn send_with_header(&self, path: &str, name: &str, value: &str) -> Resp {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .header(name, value),
        )
    }

    /// POSTs `body` as it is (it may be deliberately malformed).
    pub fn post_raw(&self, path: &str, body: impl Into<Vec<u8>>) -> Resp {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body.into()),
        )
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.post_raw(path, body.to_string())
    }
}

/// A table the CLI printed, split into cells by its column gutters.
#[derive(Debug)]
pub struct Table {
    /// Each row's cells, trimmed.
    pub rows: Vec<Vec<String>>,
    /// Each row's cells with their leading spaces (for the tree indentation).
    pub raw: Vec<Vec<String>>,
}

impl Table {
    /// The row whose column `col` equals `value`.
    pub fn row_where(&self, col: usize, value: &str) -> &Vec<String> {
        self.rows
            .iter()
            .find(|r| r[col] == value)
            .unwrap_or_else(|| panic!("no row with `{value}` in column {col}: {:#?}", self.rows))
    }
}

/// Parses the aligned table that starts at the first line of `text` and runs to the first
/// blank line, and asserts that it is aligned: columns are separated by gutters of at least
/// two spaces on every line, there is one column per header, the left-aligned columns start
/// at the same offset on every row (the first column may be indented by pairs of spaces, as
/// the VA tree is) and the `right` ones end at the same offset.
pub fn parse_table(text: &str, headers: &[&str], right: &[usize]) -> Table {
    let lines: Vec<Vec<char>> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.chars().collect())
        .collect();
    assert!(!lines.is_empty(), "no table in {text:?}");
    let width = lines.iter().map(Vec::len).max().unwrap_or(0);
    let blank = |i: usize| lines.iter().all(|l| l.get(i).is_none_or(|c| *c == ' '));
    // Column segments: maximal runs of positions, separated by gutters of >= 2 blank positions.
    let mut segments: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < width {
        if blank(i) {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        while end < width && !(blank(end) && (end + 1 >= width || blank(end + 1))) {
            end += 1;
        }
        segments.push((start, end));
        i = end;
    }
    let cell = |line: &Vec<char>, (s, e): (usize, usize)| -> String {
        line.iter().skip(s).take(e - s).collect::<String>()
    };
    let header_cells: Vec<String> = segments
        .iter()
        .map(|seg| cell(&lines[0], *seg).trim().to_string())
        .collect();
    assert_eq!(
        header_cells, headers,
        "the columns are not aligned (expected one gutter-separated column per header):\n{text}"
    );
    let mut rows = Vec::new();
    let mut raw = Vec::new();
    for line in &lines {
        let cells: Vec<String> = segments.iter().map(|seg| cell(line, *seg)).collect();
        for (c, (text_cell, (s, e))) in cells.iter().zip(&segments).enumerate() {
            if text_cell.trim().is_empty() {
                continue;
            }
            if right.contains(&c) {
                assert!(
                    line.get(e - 1).is_some_and(|ch| *ch != ' '),
                    "column {} is not right-aligned at offset {e} in {:?}",
                    headers[c],
                    line.iter().collect::<String>()
                );
            } else {
                // The first column may be indented by pairs of spaces (the VA tree).
                let indent = if c == 0 {
                    text_cell.len() - text_cell.trim_start().len()
                } else {
                    0
                };
                assert!(
                    indent % 2 == 0 && line.get(*s + indent).is_some_and(|ch| *ch != ' '),
                    "column {} does not start at offset {s} in {:?}",
                    headers[c],
                    line.iter().collect::<String>()
                );
            }
        }
        raw.push(cells.iter().map(|c| c.trim_end().to_string()).collect());
        rows.push(cells.iter().map(|c| c.trim().to_string()).collect());
    }
    Table {
        rows: rows.split_off(1),
        raw: raw.split_off(1),
    }
}

/// Asserts that `stderr` names every one of `needles` (case-insensitively).
pub fn assert_names(stderr: &str, needles: &[&str]) {
    let lower = stderr.to_lowercase();
    for n in needles {
        assert!(
            lower.contains(&n.to_lowercase()),
            "the error should mention `{n}`: {stderr}"
        );
    }
}

/// A protocol v1 registration of the switch `C9300-24T`/`serial` (host `host-SERIAL`) with
/// `token` and `csr`, not forced.
pub fn register_request(
    token: &str,
    serial: &str,
    csr: String,
) -> satellite::protocol::device::RegisterRequest {
    use satellite::protocol::device::{RegisterRequest, Udi};
    RegisterRequest {
        token: token.to_owned(),
        udi: Udi {
            pid: "C9300-24T".into(),
            serial: serial.to_owned(),
        },
        hostname: format!("host-{serial}"),
        product: "Catalyst 9300".into(),
        version: "17.9.4".into(),
        csr,
        force: false,
    }
}
