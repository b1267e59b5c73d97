//! Cisco devices polled for RUM reports (pull mode): adding one, its view with its polling
//! status, and the outcome of a poll. The password travels only in [`AddCiscoDevice`] and is
//! never answered back.

use serde::{Deserialize, Serialize};

use super::Time;

/// `POST /v1/cisco/devices`. Exactly one of `ca_pem` and `fingerprint` is given.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddCiscoDevice {
    pub name: String,
    /// The VA (`ACCOUNT/Default/...` or id) whose operators manage the device.
    pub va: String,
    /// `HOST` or `HOST:PORT` of the device's HTTPS server.
    pub address: String,
    pub username: String,
    pub password: String,
    /// A CA certificate (PEM) that signed the device's certificate.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// The SHA-256 of the device's certificate (DER), 64 hex digits (`:` separators allowed).
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// The password is never printed, not even in a debug log of a request.
impl std::fmt::Debug for AddCiscoDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddCiscoDevice")
            .field("name", &self.name)
            .field("va", &self.va)
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// A polled device, with what is known of its polling.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CiscoDeviceView {
    pub id: String,
    pub name: String,
    pub account: String,
    pub va_path: String,
    pub address: String,
    pub username: String,
    /// `ca` or `fingerprint`.
    pub trust: String,
    /// The pinned SHA-256 (hex), in fingerprint mode.
    pub fingerprint: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    pub created_by: String,
    /// `never polled`, `ok`, or the last failure (`unreachable`, `unauthorized`, ...).
    pub status: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_poll: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success: Option<Time>,
    pub last_error: Option<String>,
    /// Failed polls since the last success.
    pub failures: u32,
    /// Reports the device held at its last successful poll.
    pub reports_held: Option<u64>,
    /// `None` while scheduled polling is off.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_poll: Option<Time>,
}

/// `POST /v1/cisco/poll`: one device by name or id, or every device the caller may manage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollCisco {
    #[serde(default)]
    pub device: Option<String>,
}

/// What one poll came to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CiscoPollView {
    pub device: String,
    /// `ok`, or why not: `unreachable`, `untrusted`, `unauthorized`, `bad_answer`, `refused`,
    /// `error`.
    pub outcome: String,
    /// New reports ingested.
    pub accepted: u64,
    /// Reports seen before (not counted twice).
    pub duplicates: u64,
    /// Reports the device held.
    pub held: u64,
    /// ACK files the device took through `import` in this poll.
    #[serde(default)]
    pub acks_delivered: u64,
    /// ACK files the device did not take (tried again at the next poll).
    #[serde(default)]
    pub acks_failed: u64,
    pub error: Option<String>,
}
