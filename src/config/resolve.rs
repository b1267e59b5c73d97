//! From the file to the settings: [`Config::resolve`] as named steps, one validate function
//! per section. The first refused value stops the resolution; nothing is half-applied.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::{
    AdminConfig, AdminSettings, AlertsConfig, AlertsSettings, Config, ConfigError, ConsoleConfig,
    ConsoleSettings, DEFAULT_DATA_DIR, DeviceConfig, DeviceSettings, LogConfig, LogSettings,
    Settings, ShutdownConfig, ShutdownSettings, SyncConfig, SyncSettings, Timers, TimersConfig,
    TlsConfig, TlsFiles, Validator, origin_name, quote,
};

impl Config {
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
        let data_dir = self.resolve_data_dir(&v, state_directory)?;
        let device = self.device.validate(&v)?;
        let admin = self.admin.validate(&v, &data_dir, &device)?;
        Ok(Settings {
            device,
            admin,
            log: self.log.validate(&v)?,
            timers: self.timers.validate(&v)?,
            shutdown: self.shutdown.validate(&v)?,
            console: self.console.validate(&v)?,
            alerts: self.alerts.validate(&v)?,
            tls: self.tls.resolve(&v, &data_dir)?,
            trusted_license_keys: v.trusted_keys(&self.sync.trusted_license_keys)?,
            sync: self.sync.validate(&v)?,
            rum: self.rum.validate(&v)?,
            cisco: self.cisco.validate(&v)?,
            data_dir,
        })
    }

    /// The data directory: the file's, else systemd's, else [`DEFAULT_DATA_DIR`]. Every
    /// relative path of the file (socket, certificate) is resolved against it.
    fn resolve_data_dir(
        &self,
        v: &Validator,
        state_directory: Option<&OsStr>,
    ) -> Result<PathBuf, ConfigError> {
        match &self.data_dir {
            Some(dir) if dir.as_os_str().is_empty() => {
                Err(v.invalid("data_dir", "\"\"", "must not be empty"))
            }
            Some(dir) => Ok(dir.clone()),
            None => Ok(default_data_dir(state_directory)),
        }
    }
}

impl AdminConfig {
    /// The admin listener needs a port of its own: sharing the device listener's address would
    /// put the admin API where devices connect.
    fn validate(
        &self,
        v: &Validator,
        data_dir: &Path,
        device: &DeviceSettings,
    ) -> Result<AdminSettings, ConfigError> {
        let listen = if self.listen.is_empty() {
            None
        } else {
            let addr = v.socket_addr("admin.listen", &self.listen)?;
            if addr == device.listen && addr.port() != 0 {
                return Err(v.invalid(
                    "admin.listen",
                    &quote(&self.listen),
                    "is the same address as `device.listen`; the admin API needs its own port",
                ));
            }
            Some(addr)
        };
        Ok(AdminSettings {
            listen,
            socket: v.socket_path(data_dir, &self.socket)?,
            socket_mode: v.socket_mode(&self.socket_mode)?,
            max_body_bytes: v.at_least_one("admin.max_body_bytes", self.max_body_bytes)?,
            request_timeout: v.duration("admin.request_timeout", &self.request_timeout)?,
            body_timeout: v.duration("admin.body_timeout", &self.body_timeout)?,
        })
    }
}

impl LogConfig {
    fn validate(&self, v: &Validator) -> Result<LogSettings, ConfigError> {
        Ok(LogSettings {
            level: v.log_level(&self.level)?,
            format: self.format,
        })
    }
}

impl TimersConfig {
    /// Besides each duration, two orders between them: a device renews before its certificate
    /// expires, and reporting on time keeps a device authorized.
    fn validate(&self, v: &Validator) -> Result<Timers, ConfigError> {
        let timers = Timers {
            certificate_validity: v
                .time_duration("timers.certificate_validity", &self.certificate_validity)?,
            renew_after: v.time_duration("timers.renew_after", &self.renew_after)?,
            report_interval: v.time_duration("timers.report_interval", &self.report_interval)?,
            authorization_valid: v
                .time_duration("timers.authorization_valid", &self.authorization_valid)?,
            deregister_after: v.time_duration("timers.deregister_after", &self.deregister_after)?,
            clock_skew: v.time_duration("timers.clock_skew", &self.clock_skew)?,
            sweep_interval: v.duration("timers.sweep_interval", &self.sweep_interval)?,
        };
        if timers.renew_after >= timers.certificate_validity {
            return Err(v.invalid(
                "timers.renew_after",
                &quote(&self.renew_after),
                &format!(
                    "must be shorter than `timers.certificate_validity` ({})",
                    self.certificate_validity
                ),
            ));
        }
        if timers.report_interval > timers.authorization_valid {
            return Err(v.invalid(
                "timers.report_interval",
                &quote(&self.report_interval),
                &format!(
                    "must not be longer than `timers.authorization_valid` ({}), or devices \
                     reporting on time would still lose their authorization",
                    self.authorization_valid
                ),
            ));
        }
        Ok(timers)
    }
}

impl AlertsConfig {
    fn validate(&self, v: &Validator) -> Result<AlertsSettings, ConfigError> {
        let webhook = self.webhook.trim();
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
        Ok(AlertsSettings {
            interval: v.duration("alerts.interval", &self.interval)?,
            webhook: (!webhook.is_empty()).then(|| webhook.to_string()),
        })
    }
}

impl ConsoleConfig {
    fn validate(&self, v: &Validator) -> Result<ConsoleSettings, ConfigError> {
        let idle_timeout = v.time_duration("console.idle_timeout", &self.idle_timeout)?;
        let absolute_timeout =
            v.time_duration("console.absolute_timeout", &self.absolute_timeout)?;
        if absolute_timeout < idle_timeout {
            return Err(v.invalid(
                "console.absolute_timeout",
                &quote(&self.absolute_timeout),
                &format!(
                    "is shorter than console.idle_timeout (\"{}\"); make it at least as long",
                    self.idle_timeout
                ),
            ));
        }
        Ok(ConsoleSettings {
            idle_timeout,
            absolute_timeout,
        })
    }
}

impl ShutdownConfig {
    fn validate(&self, v: &Validator) -> Result<ShutdownSettings, ConfigError> {
        Ok(ShutdownSettings {
            drain_timeout: v.duration("shutdown.drain_timeout", &self.drain_timeout)?,
        })
    }
}

impl TlsConfig {
    /// Both files or neither: one without the other is a half-done change, not a choice.
    fn resolve(&self, v: &Validator, data_dir: &Path) -> Result<Option<TlsFiles>, ConfigError> {
        match (&self.cert, &self.key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: data_dir.join(cert),
                key: data_dir.join(key),
            })),
            (Some(cert), None) => Err(v.invalid(
                "tls.cert",
                &quote(&cert.display().to_string()),
                "is set but `tls.key` is not; set both or neither",
            )),
            (None, Some(key)) => Err(v.invalid(
                "tls.key",
                &quote(&key.display().to_string()),
                "is set but `tls.cert` is not; set both or neither",
            )),
        }
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
