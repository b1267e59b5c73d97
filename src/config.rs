//! The one configuration file, and the validated settings made from it.
//!
//! The daemon reads a single TOML file (`config/satellite.toml` is the documented reference).
//! Reading happens in two steps so that a bad file is refused before anything starts, with an
//! error that names both the file and the key:
//!
//! 1. [`Config`] mirrors the file. Serde rejects unknown keys (a typo must not silently fall back
//!    to a default) and wrong types; every field has a default, so an empty file and no file at
//!    all both give the embedded defaults of SPEC §9.
//! 2. [`Config::resolve`] checks the values against each other and turns them into [`Settings`]:
//!    socket addresses, durations and paths instead of strings. Nothing else in the daemon reads
//!    the raw `Config`.
//!
//! Durations are written with a unit (`"90s"`, `"30d"`) because a bare number of seconds is the
//! most common way to misconfigure a timer by a factor of 86 400. The parser is a dozen lines
//! rather than a dependency.

use std::ffi::OsStr;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod rum;
pub use rum::{Network, RumConfig, RumSettings};

/// The data directory used when neither the file nor systemd (`$STATE_DIRECTORY`) names one.
pub const DEFAULT_DATA_DIR: &str = "./satellite-data";

/// The longest duration accepted anywhere: a century. Larger values are certainly mistakes, and
/// capping them keeps later date arithmetic (`now + validity`) far away from overflow.
const MAX_DURATION_SECS: u64 = 36_500 * 86_400;

/// A Unix socket path must fit in `sockaddr_un.sun_path` (108 bytes with the terminating NUL).
const MAX_SOCKET_PATH_BYTES: usize = 107;

/// Why a configuration was refused. Every message starts with `config <file>:` and names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("config {}: cannot read the file: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong type. The message
    /// is toml's own, which already names the key and shows the line.
    #[error("config {origin}: {message}")]
    Parse {
        /// The file (or `(inline)` for a string that came from no file).
        origin: String,
        /// toml's description, including the key, line and column.
        message: String,
    },
    /// A value has the right type but is not acceptable (bad duration, address, mode, or
    /// inconsistent with another value).
    #[error("config {origin}: `{key}` = {value} {reason}")]
    Invalid {
        /// The file (or `(inline)`).
        origin: String,
        /// The dotted key, e.g. `timers.renew_after`.
        key: &'static str,
        /// The offending value as written in TOML (strings quoted).
        value: String,
        /// What is wrong with it and, where useful, what would be accepted.
        reason: String,
    },
}

/// The configuration file as written. See `config/satellite.toml` for the documented reference;
/// a test checks that file resolves to exactly these defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding the store, the device CA, the server certificate and the admin socket.
    /// Default: `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`), else `./satellite-data`.
    pub data_dir: Option<PathBuf>,
    /// The HTTPS listener devices talk to, and the connection limits of both TCP listeners.
    pub device: DeviceConfig,
    /// The operator interface: a Unix socket and an optional HTTPS listener.
    pub admin: AdminConfig,
    /// Logging to stderr.
    pub log: LogConfig,
    /// Certificate, reporting and expiry timers (SPEC §4).
    pub timers: TimersConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Alert derivation and notification.
    pub alerts: AlertsConfig,
    /// An operator-supplied server certificate replacing the generated one.
    pub tls: TlsConfig,
    /// Upstream reconciliation and license files (SPEC §8).
    pub sync: SyncConfig,
    /// Who may push Cisco RUM reports (SPEC §3b).
    pub rum: RumConfig,
    /// Where this configuration came from, for error messages; not a key in the file.
    #[serde(skip)]
    origin: Option<PathBuf>,
}

/// `[device]`: the device-facing HTTPS listener, and the connection limits (SPEC §9,
/// "Connections") that the HTTPS admin listener shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// Address and port to listen on. Default `"127.0.0.1:8443"`.
    pub listen: String,
    /// Connections served at once by each TCP listener (devices, HTTPS admin); a connection
    /// beyond it is closed at once. Default 10000.
    pub max_connections: usize,
    /// Connections one source address may hold at once on each TCP listener, so that one
    /// client cannot take every connection; IPv6 addresses count per /64 network. At most
    /// `max_connections`. Default 256.
    pub max_connections_per_address: usize,
    /// Largest accepted request body in bytes; larger bodies get 413. Default 65536.
    pub max_body_bytes: usize,
    /// Time allowed for one request, from headers to response. Default `"30s"`.
    pub request_timeout: String,
    /// Time allowed for a request body to arrive, from the request's headers; a slower body
    /// gets 408 and the connection is closed. Default `"20s"`.
    pub body_timeout: String,
    /// Time allowed for the TLS handshake of a new connection. Default `"10s"`.
    pub handshake_timeout: String,
    /// Time allowed for a request's headers to arrive: a new connection must begin its first
    /// request within it, and over HTTP/1.1 it counts from the moment the connection is ready
    /// for its next request. Default `"10s"`.
    pub header_timeout: String,
    /// A connection with no request in flight for this long is closed (HTTP/1.1 and HTTP/2).
    /// Default `"30s"`.
    pub idle_timeout: String,
    /// How often an HTTP/2 connection is pinged to detect a peer that went away.
    /// Default `"30s"`.
    pub http2_keepalive_interval: String,
    /// How long an HTTP/2 ping may wait for its answer before the connection is closed.
    /// Default `"10s"`.
    pub http2_keepalive_timeout: String,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8443".to_owned(),
            max_connections: 10_000,
            max_connections_per_address: 256,
            max_body_bytes: 65_536,
            request_timeout: "30s".to_owned(),
            body_timeout: "20s".to_owned(),
            handshake_timeout: "10s".to_owned(),
            header_timeout: "10s".to_owned(),
            idle_timeout: "30s".to_owned(),
            http2_keepalive_interval: "30s".to_owned(),
            http2_keepalive_timeout: "10s".to_owned(),
        }
    }
}

/// `[admin]`: the operator interface.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// HTTPS admin listener; the empty string disables it. Default `"127.0.0.1:8444"`.
    pub listen: String,
    /// Path of the admin Unix socket; a relative path is relative to `data_dir`.
    /// Default `"admin.sock"`.
    pub socket: PathBuf,
    /// Permissions of the admin socket as an octal string: `"0600"` (owner only) or `"0660"`
    /// (owner and group). Default `"0600"`.
    pub socket_mode: String,
    /// Largest accepted admin request body in bytes (license files can be large).
    /// Default 1048576.
    pub max_body_bytes: usize,
    /// Time allowed for one admin request, from headers to response; long enough for a
    /// backup of a large store or a network sync. Default `"5m"`.
    pub request_timeout: String,
    /// Time allowed for an admin request body to arrive, from the request's headers.
    /// Default `"30s"`.
    pub body_timeout: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8444".to_owned(),
            socket: PathBuf::from("admin.sock"),
            socket_mode: "0600".to_owned(),
            max_body_bytes: 1_048_576,
            request_timeout: "5m".to_owned(),
            body_timeout: "30s".to_owned(),
        }
    }
}

/// `[log]`: logging to stderr.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` EnvFilter directive such as `"info"` or `"info,satellite::store=debug"`.
    /// `RUST_LOG`, when set, takes precedence. Default `"info"`.
    pub level: String,
    /// `"text"` for people, `"json"` for log collectors. Default `"text"`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[timers]`: durations with a unit (`s`, `m`, `h`, `d`), e.g. `"90s"` or `"30d"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimersConfig {
    /// Validity of a device identity certificate. Default `"365d"`.
    pub certificate_validity: String,
    /// Age of a device certificate after which the device should renew it; must be shorter than
    /// `certificate_validity`. Default `"180d"`.
    pub renew_after: String,
    /// Longest interval between two usage reports of a device. Default `"30d"`.
    pub report_interval: String,
    /// How long an authorization stays valid after the last report. Default `"90d"`.
    pub authorization_valid: String,
    /// Time after authorization expiry without contact before the instance is deregistered
    /// automatically. Default `"90d"`.
    pub deregister_after: String,
    /// A report whose `measured_at` differs from the satellite clock by this much or more is
    /// flagged. Default `"1h"`.
    pub clock_skew: String,
    /// How often the expiry sweep runs. Default `"60s"`.
    pub sweep_interval: String,
}

impl Default for TimersConfig {
    fn default() -> Self {
        Self {
            certificate_validity: "365d".to_owned(),
            renew_after: "180d".to_owned(),
            report_interval: "30d".to_owned(),
            authorization_valid: "90d".to_owned(),
            deregister_after: "90d".to_owned(),
            clock_skew: "1h".to_owned(),
            sweep_interval: "60s".to_owned(),
        }
    }
}

/// `[shutdown]`: graceful shutdown.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// How long in-flight requests may run after SIGTERM before they are cut. Default `"10s"`.
    pub drain_timeout: String,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout: "10s".to_owned(),
        }
    }
}

/// `[alerts]`: derived alerts (SPEC §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// How often alerts are derived, logged and sent. Default `"60s"`.
    pub interval: String,
    /// A local URL (`http://127.0.0.1:PORT/...` or `https://...`) that receives new alerts as a
    /// JSON POST; empty disables it. Default `""`.
    pub webhook: String,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            interval: "60s".to_owned(),
            webhook: String::new(),
        }
    }
}

/// `[tls]`: an operator-supplied server certificate. Both or neither.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain (server certificate first); relative to `data_dir` if relative.
    /// Default: the certificate generated in `data_dir`.
    pub cert: Option<PathBuf>,
    /// PEM private key matching `cert`, mode 0600; relative to `data_dir` if relative.
    pub key: Option<PathBuf>,
}

/// `[sync]`: upstream reconciliation and license files (SPEC §8).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// This satellite's name in the sync messages it signs as an upstream. Default: the
    /// host name.
    pub name: String,
    /// How often a bound satellite syncs with its upstream; `"off"` for no scheduled network
    /// sync (air gap: files and `sync now` only). Default `"24h"`.
    pub interval: String,
    /// First retry delay after a failed sync; doubles per failure, with jitter. Default `"30s"`.
    pub retry_min: String,
    /// Longest retry delay. Default `"1h"`.
    pub retry_max: String,
    /// HTTP(S) proxy for the connection to the upstream (`http://host:port`); empty: none.
    /// Default `""`.
    pub proxy: String,
    /// Sync files and messages older than this are refused as stale. Default `"30d"`.
    pub max_age: String,
    /// Most changes in one sync request; the rest wait for the next one. Default `10000`.
    pub max_changes_per_message: usize,
    /// Issuers whose signed license files `license import` accepts. Default: none.
    pub trusted_license_keys: Vec<TrustedKeyConfig>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            interval: "24h".to_owned(),
            retry_min: "30s".to_owned(),
            retry_max: "1h".to_owned(),
            proxy: String::new(),
            max_age: "30d".to_owned(),
            max_changes_per_message: 10_000,
            trusted_license_keys: Vec::new(),
        }
    }
}

/// One trusted license-file issuer: the name it signs as and its Ed25519 public key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKeyConfig {
    /// The issuer name a license file must carry (`issuer`).
    pub name: String,
    /// The public key as 64 hex digits.
    pub key: String,
}

/// Validated settings: what the daemon actually runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The device listener.
    pub device: DeviceSettings,
    /// The operator interface.
    pub admin: AdminSettings,
    /// Logging.
    pub log: LogSettings,
    /// Timers.
    pub timers: Timers,
    /// Shutdown deadlines.
    pub shutdown: ShutdownSettings,
    /// Validated `[alerts]`.
    pub alerts: AlertsSettings,
    /// An operator-supplied server certificate, if any.
    pub tls: Option<TlsFiles>,
    /// The keys license files are accepted from, pinned with their issuer names.
    pub trusted_license_keys: crate::protocol::sync::TrustedKeys,
    /// Validated `[sync]` (without the trusted keys above).
    pub sync: SyncSettings,
    /// Validated `[rum]`.
    pub rum: RumSettings,
}

/// Validated `[sync]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// This satellite's name as an upstream (the host name when not configured).
    pub name: String,
    /// `None` (`"off"`): no scheduled network sync, only `sync now` and files.
    pub interval: Option<Duration>,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// `None`: connect directly.
    pub proxy: Option<String>,
    pub max_age: time::Duration,
    /// At least 1.
    pub max_changes_per_message: usize,
}

/// Validated `[device]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSettings {
    /// Where devices connect.
    pub listen: SocketAddr,
    /// At least 1.
    pub max_connections: usize,
    /// At least 1, at most `max_connections`.
    pub max_connections_per_address: usize,
    /// At least 1.
    pub max_body_bytes: usize,
    /// Greater than zero.
    pub request_timeout: Duration,
    /// Greater than zero.
    pub body_timeout: Duration,
    /// Greater than zero.
    pub handshake_timeout: Duration,
    /// Greater than zero.
    pub header_timeout: Duration,
    /// Greater than zero.
    pub idle_timeout: Duration,
    /// Greater than zero.
    pub http2_keepalive_interval: Duration,
    /// Greater than zero.
    pub http2_keepalive_timeout: Duration,
}

/// Validated `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// The HTTPS admin listener, `None` when disabled.
    pub listen: Option<SocketAddr>,
    /// The admin socket, already joined to the data directory if it was relative.
    pub socket: PathBuf,
    /// `0o600` or `0o660`.
    pub socket_mode: u32,
    /// At least 1.
    pub max_body_bytes: usize,
    /// Greater than zero.
    pub request_timeout: Duration,
    /// Greater than zero.
    pub body_timeout: Duration,
}

/// Validated `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// A directive string that `tracing_subscriber::EnvFilter` accepts.
    pub level: String,
    /// Text or JSON.
    pub format: LogFormat,
}

/// Validated `[timers]`. The domain timers are `time::Duration` because they are added to
/// `OffsetDateTime`s; the sweep interval feeds a tokio timer and is a `std` duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Device identity certificate validity.
    pub certificate_validity: time::Duration,
    /// Shorter than `certificate_validity`.
    pub renew_after: time::Duration,
    /// Not longer than `authorization_valid`.
    pub report_interval: time::Duration,
    /// Authorization lifetime after the last report.
    pub authorization_valid: time::Duration,
    /// Grace after authorization expiry before automatic deregistration.
    pub deregister_after: time::Duration,
    /// Clock difference that gets a report flagged.
    pub clock_skew: time::Duration,
    /// Period of the expiry sweep.
    pub sweep_interval: Duration,
}

/// Validated `[alerts]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsSettings {
    /// How often alerts are derived.
    pub interval: Duration,
    /// Where new alerts are POSTed, if anywhere.
    pub webhook: Option<String>,
}

/// Validated `[shutdown]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownSettings {
    /// Greater than zero.
    pub drain_timeout: Duration,
}

/// An operator-supplied certificate chain and key, both paths absolute or relative to the
/// working directory after joining with the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl Config {
    /// Parses a configuration from a string that came from no file (tests, `config check -`).
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        Self::parse(s, None)
    }

    /// Reads and parses a configuration file. Values are only checked by [`Config::resolve`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, Some(path))
    }

    fn parse(s: &str, origin: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(s).map_err(|err| ConfigError::Parse {
            origin: origin_name(origin),
            message: describe_toml_error(s, &err),
        })?;
        config.origin = origin.map(Path::to_owned);
        Ok(config)
    }

    /// The file this configuration was read from, if any.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }

    /// Validates every value and builds [`Settings`]. The data directory defaults to
    /// `$STATE_DIRECTORY` from the process environment.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        self.resolve_with_state_directory(std::env::var_os("STATE_DIRECTORY").as_deref())
    }

    /// Like [`Config::resolve`], with the value of `$STATE_DIRECTORY` passed in so that tests do
    /// not depend on (or modify) the process environment.
    pub fn resolve_with_state_directory(
        &self,
        state_directory: Option<&OsStr>,
    ) -> Result<Settings, ConfigError> {
        let v = Validator {
            origin: origin_name(self.origin.as_deref()),
        };

        let data_dir = match &self.data_dir {
            Some(dir) if dir.as_os_str().is_empty() => {
                return Err(v.invalid("data_dir", "\"\"", "must not be empty"));
            }
            Some(dir) => dir.clone(),
            None => default_data_dir(state_directory),
        };

        let device = self.device.validate(&v)?;

        let admin_listen = if self.admin.listen.is_empty() {
            None
        } else {
            let addr = v.socket_addr("admin.listen", &self.admin.listen)?;
            if addr == device.listen && addr.port() != 0 {
                return Err(v.invalid(
                    "admin.listen",
                    &quote(&self.admin.listen),
                    "is the same address as `device.listen`; the admin API needs its own port",
                ));
            }
            Some(addr)
        };
        let admin = AdminSettings {
            listen: admin_listen,
            socket: v.socket_path(&data_dir, &self.admin.socket)?,
            socket_mode: v.socket_mode(&self.admin.socket_mode)?,
            max_body_bytes: v.at_least_one("admin.max_body_bytes", self.admin.max_body_bytes)?,
            request_timeout: v.duration("admin.request_timeout", &self.admin.request_timeout)?,
            body_timeout: v.duration("admin.body_timeout", &self.admin.body_timeout)?,
        };

        let log = LogSettings {
            level: v.log_level(&self.log.level)?,
            format: self.log.format,
        };

        let t = &self.timers;
        let timers = Timers {
            certificate_validity: v
                .time_duration("timers.certificate_validity", &t.certificate_validity)?,
            renew_after: v.time_duration("timers.renew_after", &t.renew_after)?,
            report_interval: v.time_duration("timers.report_interval", &t.report_interval)?,
            authorization_valid: v
                .time_duration("timers.authorization_valid", &t.authorization_valid)?,
            deregister_after: v.time_duration("timers.deregister_after", &t.deregister_after)?,
            clock_skew: v.time_duration("timers.clock_skew", &t.clock_skew)?,
            sweep_interval: v.duration("timers.sweep_interval", &t.sweep_interval)?,
        };
        if timers.renew_after >= timers.certificate_validity {
            return Err(v.invalid(
                "timers.renew_after",
                &quote(&t.renew_after),
                &format!(
                    "must be shorter than `timers.certificate_validity` ({})",
                    t.certificate_validity
                ),
            ));
        }
        if timers.report_interval > timers.authorization_valid {
            return Err(v.invalid(
                "timers.report_interval",
                &quote(&t.report_interval),
                &format!(
                    "must not be longer than `timers.authorization_valid` ({}), or devices \
                     reporting on time would still lose their authorization",
                    t.authorization_valid
                ),
            ));
        }

        let webhook = self.alerts.webhook.trim();
        if !(webhook.is_empty()
            || webhook.starts_with("http://")
            || webhook.starts_with("https://"))
        {
            return Err(v.invalid(
                "alerts.webhook",
                &quote(webhook),
                "must be an http:// or https:// URL (or empty to disable)",
            ));
        }
        let alerts = AlertsSettings {
            interval: v.duration("alerts.interval", &self.alerts.interval)?,
            webhook: (!webhook.is_empty()).then(|| webhook.to_string()),
        };
        let shutdown = ShutdownSettings {
            drain_timeout: v.duration("shutdown.drain_timeout", &self.shutdown.drain_timeout)?,
        };

        let tls = match (&self.tls.cert, &self.tls.key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: data_dir.join(cert),
                key: data_dir.join(key),
            }),
            (Some(cert), None) => {
                return Err(v.invalid(
                    "tls.cert",
                    &quote(&cert.display().to_string()),
                    "is set but `tls.key` is not; set both or neither",
                ));
            }
            (None, Some(key)) => {
                return Err(v.invalid(
                    "tls.key",
                    &quote(&key.display().to_string()),
                    "is set but `tls.cert` is not; set both or neither",
                ));
            }
        };

        let trusted_license_keys = v.trusted_keys(&self.sync.trusted_license_keys)?;
        let sync = self.sync.validate(&v)?;
        let rum = self.rum.validate(&v)?;

        Ok(Settings {
            data_dir,
            device,
            admin,
            log,
            timers,
            shutdown,
            alerts,
            tls,
            trusted_license_keys,
            sync,
            rum,
        })
    }
}

/// The data directory when the file names none: systemd's `$STATE_DIRECTORY` (its first entry,
/// as systemd joins several with `:`), else [`DEFAULT_DATA_DIR`].
fn default_data_dir(state_directory: Option<&OsStr>) -> PathBuf {
    state_directory
        .and_then(OsStr::to_str)
        .and_then(|dirs| dirs.split(':').next())
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), PathBuf::from)
}

/// Turns a toml error into one line that starts with the dotted key when it can be told from
/// the error's position (toml's own message names only the innermost key, or for a wrong type
/// none at all), and ends with the line and column.
fn describe_toml_error(src: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    let Some(start) = err.span().map(|span| span.start) else {
        return message.to_owned();
    };
    let Some(before) = src.get(..start) else {
        return message.to_owned();
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_no = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    let line = src[line_start..].lines().next().unwrap_or_default();
    let key = line
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| !key.is_empty() && !key.starts_with(['[', '#']));
    let table = before[..line_start]
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with('['))
        .and_then(|header| header.trim_start_matches('[').split(']').next())
        .map(str::trim);
    let prefix = match (table, key) {
        (Some(table), Some(key)) => format!("`{table}.{key}`: "),
        (None, Some(key)) => format!("`{key}`: "),
        (_, None) => String::new(),
    };
    format!("{prefix}{message} (line {line_no}, column {column})")
}

fn origin_name(origin: Option<&Path>) -> String {
    origin.map_or_else(|| "(inline)".to_owned(), |p| p.display().to_string())
}

/// Renders a string value the way it would be written in TOML, for error messages.
fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// Parses a duration written with a unit: a non-negative decimal integer immediately followed by
/// `s`, `m`, `h` or `d`. Zero is refused: no timer in this daemon makes sense at zero. The error
/// explains what is accepted and is meant to follow the key in a message.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const HINT: &str = "expected a whole number with a unit s, m, h or d, e.g. \"90s\" or \"30d\"";
    let Some(unit) = s.chars().last() else {
        return Err(format!("is empty; {HINT}"));
    };
    let digits = &s[..s.len() - unit.len_utf8()];
    let unit_secs: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        c if c.is_ascii_digit() => return Err(format!("has no unit; {HINT}")),
        c => return Err(format!("has an unknown unit `{c}`; {HINT}")),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("is not a duration; {HINT}"));
    }
    let too_long = || format!("is too long (at most {}d)", MAX_DURATION_SECS / 86_400);
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .ok_or_else(too_long)?;
    if secs > MAX_DURATION_SECS {
        return Err(too_long());
    }
    if secs == 0 {
        return Err("must be greater than zero".to_owned());
    }
    Ok(Duration::from_secs(secs))
}

impl DeviceConfig {
    fn validate(&self, v: &Validator) -> Result<DeviceSettings, ConfigError> {
        let max_connections = v.at_least_one("device.max_connections", self.max_connections)?;
        let per_address = v.at_least_one(
            "device.max_connections_per_address",
            self.max_connections_per_address,
        )?;
        if per_address > max_connections {
            return Err(v.invalid(
                "device.max_connections_per_address",
                &per_address.to_string(),
                &format!(
                    "must not be greater than `device.max_connections` ({max_connections}), or \
                     one address could again take every connection"
                ),
            ));
        }
        Ok(DeviceSettings {
            listen: v.socket_addr("device.listen", &self.listen)?,
            max_connections,
            max_connections_per_address: per_address,
            max_body_bytes: v.at_least_one("device.max_body_bytes", self.max_body_bytes)?,
            request_timeout: v.duration("device.request_timeout", &self.request_timeout)?,
            body_timeout: v.duration("device.body_timeout", &self.body_timeout)?,
            handshake_timeout: v.duration("device.handshake_timeout", &self.handshake_timeout)?,
            header_timeout: v.duration("device.header_timeout", &self.header_timeout)?,
            idle_timeout: v.duration("device.idle_timeout", &self.idle_timeout)?,
            http2_keepalive_interval: v.duration(
                "device.http2_keepalive_interval",
                &self.http2_keepalive_interval,
            )?,
            http2_keepalive_timeout: v.duration(
                "device.http2_keepalive_timeout",
                &self.http2_keepalive_timeout,
            )?,
        })
    }
}

impl SyncConfig {
    fn validate(&self, v: &Validator) -> Result<SyncSettings, ConfigError> {
        let name = self.name.trim();
        let name = if name.is_empty() {
            crate::pki::host_names()
                .into_iter()
                .find(|n| n != "localhost")
                .unwrap_or_else(|| "satellite".to_owned())
        } else if name.len() > crate::protocol::sync::MAX_ID_BYTES
            || name.contains(char::is_whitespace)
        {
            return Err(v.invalid(
                "sync.name",
                &quote(&self.name),
                "must be a short name without spaces (at most 512 bytes)",
            ));
        } else {
            name.to_owned()
        };
        let proxy = self.proxy.trim();
        if !(proxy.is_empty() || proxy.starts_with("http://") || proxy.starts_with("https://")) {
            return Err(v.invalid(
                "sync.proxy",
                &quote(proxy),
                "must be an http:// or https:// URL (or empty for a direct connection)",
            ));
        }
        let retry_min = v.duration("sync.retry_min", &self.retry_min)?;
        let retry_max = v.duration("sync.retry_max", &self.retry_max)?;
        if retry_max < retry_min {
            return Err(v.invalid(
                "sync.retry_max",
                &quote(&self.retry_max),
                "must not be shorter than `sync.retry_min`",
            ));
        }
        Ok(SyncSettings {
            name,
            interval: match self.interval.trim() {
                "off" => None,
                other => Some(v.duration("sync.interval", other)?),
            },
            retry_min,
            retry_max,
            proxy: (!proxy.is_empty()).then(|| proxy.to_owned()),
            max_age: v.time_duration("sync.max_age", &self.max_age)?,
            max_changes_per_message: v
                .at_least_one("sync.max_changes_per_message", self.max_changes_per_message)?,
        })
    }
}

/// Builds `ConfigError::Invalid` values carrying the file name.
struct Validator {
    origin: String,
}

impl Validator {
    fn invalid(&self, key: &'static str, value: &str, reason: &str) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            key,
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn duration(&self, key: &'static str, value: &str) -> Result<Duration, ConfigError> {
        parse_duration(value).map_err(|reason| self.invalid(key, &quote(value), &reason))
    }

    fn time_duration(&self, key: &'static str, value: &str) -> Result<time::Duration, ConfigError> {
        let d = self.duration(key, value)?;
        // The cap in `parse_duration` keeps every accepted value far inside `i64` seconds.
        time::Duration::try_from(d).map_err(|_| self.invalid(key, &quote(value), "is too long"))
    }

    fn socket_addr(&self, key: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
        value.parse().map_err(|_| {
            self.invalid(
                key,
                &quote(value),
                "is not an IP address with a port, e.g. \"0.0.0.0:8443\" or \"[::]:8443\"",
            )
        })
    }

    fn at_least_one(&self, key: &'static str, value: usize) -> Result<usize, ConfigError> {
        if value == 0 {
            return Err(self.invalid(key, "0", "must be at least 1"));
        }
        Ok(value)
    }

    fn socket_mode(&self, value: &str) -> Result<u32, ConfigError> {
        match u32::from_str_radix(value, 8) {
            Ok(mode @ (0o600 | 0o660)) => Ok(mode),
            _ => Err(self.invalid(
                "admin.socket_mode",
                &quote(value),
                "is not allowed; use \"0600\" (owner only) or \"0660\" (owner and group)",
            )),
        }
    }

    fn socket_path(&self, data_dir: &Path, socket: &Path) -> Result<PathBuf, ConfigError> {
        let shown = quote(&socket.display().to_string());
        if socket.as_os_str().is_empty() {
            return Err(self.invalid("admin.socket", &shown, "must not be empty"));
        }
        let path = data_dir.join(socket);
        if path.as_os_str().len() > MAX_SOCKET_PATH_BYTES {
            return Err(self.invalid(
                "admin.socket",
                &shown,
                &format!(
                    "gives the path {}, longer than the {MAX_SOCKET_PATH_BYTES} bytes a Unix \
                     socket path may have; use a shorter absolute path",
                    path.display()
                ),
            ));
        }
        Ok(path)
    }

    fn trusted_keys(
        &self,
        entries: &[TrustedKeyConfig],
    ) -> Result<crate::protocol::sync::TrustedKeys, ConfigError> {
        use crate::protocol::sync::{PublicKeyId, SatelliteId, TrustedKeys, parse_public_key};
        const KEY: &str = "sync.trusted_license_keys";
        let mut keys = TrustedKeys::new();
        for (i, entry) in entries.iter().enumerate() {
            let name = entry.name.trim();
            if name.is_empty() || name.len() > 512 || name.chars().any(|c| c.is_whitespace()) {
                return Err(self.invalid(
                    KEY,
                    &quote(&entry.name),
                    &format!(
                        "entry {i}: `name` must be 1 to 512 characters without spaces (the \
                         issuer name its license files carry)"
                    ),
                ));
            }
            let key = parse_public_key(&entry.key).map_err(|err| {
                self.invalid(
                    KEY,
                    &quote(&entry.key),
                    &format!("entry {i} (`{name}`): `key` is {err}"),
                )
            })?;
            if keys.get(&PublicKeyId::of(&key)).is_some() {
                return Err(self.invalid(
                    KEY,
                    &quote(&entry.key),
                    &format!("entry {i} (`{name}`): this key is listed twice"),
                ));
            }
            keys.insert(SatelliteId::new(name), key);
        }
        Ok(keys)
    }

    fn log_level(&self, value: &str) -> Result<String, ConfigError> {
        if value.trim().is_empty() {
            return Err(self.invalid("log.level", "\"\"", "must not be empty; e.g. \"info\""));
        }
        tracing_subscriber::EnvFilter::builder()
            .parse(value)
            .map_err(|err| {
                self.invalid(
                    "log.level",
                    &quote(value),
                    &format!(
                        "is not a valid filter ({err}); e.g. \"info\" or \"warn,satellite=debug\""
                    ),
                )
            })?;
        Ok(value.to_owned())
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

#[cfg(test)]
mod tests;

impl Settings {
    /// The dotted keys whose validated value differs between `self` and `new`, in file order.
    ///
    /// Every field is named by an exhaustive destructuring, so a setting added later does not
    /// compile until it is listed here: a reload can then never change a setting silently.
    pub fn changed_keys(&self, new: &Settings) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |key: &'static str, differs: bool| {
            if differs {
                changed.push(key);
            }
        };
        let Settings {
            data_dir,
            device,
            admin,
            log,
            timers,
            shutdown,
            alerts,
            tls,
            trusted_license_keys,
            sync,
            rum,
        } = self;
        check("data_dir", *data_dir != new.data_dir);
        let DeviceSettings {
            listen,
            max_connections,
            max_body_bytes,
            request_timeout,
            handshake_timeout,
            max_connections_per_address,
            body_timeout,
            header_timeout,
            idle_timeout,
            http2_keepalive_interval,
            http2_keepalive_timeout,
        } = device;
        check("device.listen", *listen != new.device.listen);
        check(
            "device.max_connections",
            *max_connections != new.device.max_connections,
        );
        check(
            "device.max_body_bytes",
            *max_body_bytes != new.device.max_body_bytes,
        );
        check(
            "device.request_timeout",
            *request_timeout != new.device.request_timeout,
        );
        check(
            "device.handshake_timeout",
            *handshake_timeout != new.device.handshake_timeout,
        );
        let d = &new.device;
        check(
            "device.max_connections_per_address",
            *max_connections_per_address != d.max_connections_per_address,
        );
        check("device.body_timeout", *body_timeout != d.body_timeout);
        check("device.header_timeout", *header_timeout != d.header_timeout);
        check("device.idle_timeout", *idle_timeout != d.idle_timeout);
        check(
            "device.http2_keepalive_interval",
            *http2_keepalive_interval != d.http2_keepalive_interval,
        );
        check(
            "device.http2_keepalive_timeout",
            *http2_keepalive_timeout != d.http2_keepalive_timeout,
        );
        let AdminSettings {
            listen,
            socket,
            socket_mode,
            max_body_bytes,
            request_timeout,
            body_timeout,
        } = admin;
        check("admin.listen", *listen != new.admin.listen);
        check("admin.socket", *socket != new.admin.socket);
        check("admin.socket_mode", *socket_mode != new.admin.socket_mode);
        check(
            "admin.max_body_bytes",
            *max_body_bytes != new.admin.max_body_bytes,
        );
        check(
            "admin.request_timeout",
            *request_timeout != new.admin.request_timeout,
        );
        check(
            "admin.body_timeout",
            *body_timeout != new.admin.body_timeout,
        );
        let LogSettings { level, format } = log;
        check("log.level", *level != new.log.level);
        check("log.format", *format != new.log.format);
        let Timers {
            certificate_validity,
            renew_after,
            report_interval,
            authorization_valid,
            deregister_after,
            clock_skew,
            sweep_interval,
        } = timers;
        let t = &new.timers;
        check(
            "timers.certificate_validity",
            *certificate_validity != t.certificate_validity,
        );
        check("timers.renew_after", *renew_after != t.renew_after);
        check(
            "timers.report_interval",
            *report_interval != t.report_interval,
        );
        check(
            "timers.authorization_valid",
            *authorization_valid != t.authorization_valid,
        );
        check(
            "timers.deregister_after",
            *deregister_after != t.deregister_after,
        );
        check("timers.clock_skew", *clock_skew != t.clock_skew);
        check("timers.sweep_interval", *sweep_interval != t.sweep_interval);
        let ShutdownSettings { drain_timeout } = shutdown;
        check(
            "shutdown.drain_timeout",
            *drain_timeout != new.shutdown.drain_timeout,
        );
        let AlertsSettings { interval, webhook } = alerts;
        check("alerts.interval", *interval != new.alerts.interval);
        check("alerts.webhook", *webhook != new.alerts.webhook);
        check("tls", *tls != new.tls);
        check(
            "sync.trusted_license_keys",
            *trusted_license_keys != new.trusted_license_keys,
        );
        let SyncSettings {
            name,
            interval,
            retry_min,
            retry_max,
            proxy,
            max_age,
            max_changes_per_message,
        } = sync;
        let s = &new.sync;
        check("sync.name", *name != s.name);
        check("sync.interval", *interval != s.interval);
        check("sync.retry_min", *retry_min != s.retry_min);
        check("sync.retry_max", *retry_max != s.retry_max);
        check("sync.proxy", *proxy != s.proxy);
        check("sync.max_age", *max_age != s.max_age);
        check(
            "sync.max_changes_per_message",
            *max_changes_per_message != s.max_changes_per_message,
        );
        let RumSettings {
            guessable_urls,
            allow,
        } = rum;
        check(
            "rum.guessable_urls",
            *guessable_urls != new.rum.guessable_urls,
        );
        check("rum.allow", *allow != new.rum.allow);
        changed
    }
}
