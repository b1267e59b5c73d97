//! The configuration file as written: one serde type per section, every field documented and
//! defaulted, unknown keys refused.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::{CiscoConfig, RumConfig};

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
    /// The web console's sessions.
    pub console: ConsoleConfig,
    /// Alert derivation and notification.
    pub alerts: AlertsConfig,
    /// An operator-supplied server certificate replacing the generated one.
    pub tls: TlsConfig,
    /// Upstream reconciliation and license files (SPEC §8).
    pub sync: SyncConfig,
    /// Who may push Cisco RUM reports (SPEC §3b).
    pub rum: RumConfig,
    /// The Cisco reporting loop (SPEC §11): polling Cisco devices (pull mode) and the ACK alert.
    pub cisco: CiscoConfig,
    /// Where this configuration came from, for error messages; not a key in the file.
    #[serde(skip)]
    pub(super) origin: Option<PathBuf>,
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

/// `[console]`: the web console's sessions (SPEC §12).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// A console session ends after this long without a request. Default `"30m"`.
    pub idle_timeout: String,
    /// A console session ends this long after its login, however busy. At least
    /// `idle_timeout`. Default `"12h"`.
    pub absolute_timeout: String,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            idle_timeout: "30m".to_owned(),
            absolute_timeout: "12h".to_owned(),
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
impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}
