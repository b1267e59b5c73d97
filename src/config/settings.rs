//! The validated settings: what the daemon runs with, as socket addresses, durations and paths.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{CiscoSettings, LogFormat, RumSettings};

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
    /// `[console]`.
    pub console: ConsoleSettings,
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
    /// Validated `[cisco]`.
    pub cisco: CiscoSettings,
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

/// Validated `[console]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Greater than zero.
    pub idle_timeout: time::Duration,
    /// At least `idle_timeout`.
    pub absolute_timeout: time::Duration,
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
