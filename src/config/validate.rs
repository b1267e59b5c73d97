//! Checks of single values (durations, addresses, modes, paths, keys), each refusing with an
//! error that names the key, the value and what would be accepted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ConfigError, TrustedKeyConfig, quote};

/// The longest duration accepted anywhere: a century. Larger values are certainly mistakes, and
/// capping them keeps later date arithmetic (`now + validity`) far away from overflow.
pub(super) const MAX_DURATION_SECS: u64 = 36_500 * 86_400;

/// A Unix socket path must fit in `sockaddr_un.sun_path` (108 bytes with the terminating NUL).
const MAX_SOCKET_PATH_BYTES: usize = 107;

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
/// Builds `ConfigError::Invalid` values carrying the file name.
pub(super) struct Validator {
    pub(super) origin: String,
}

impl Validator {
    pub(super) fn invalid(&self, key: &'static str, value: &str, reason: &str) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            key,
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }

    pub(super) fn duration(&self, key: &'static str, value: &str) -> Result<Duration, ConfigError> {
        parse_duration(value).map_err(|reason| self.invalid(key, &quote(value), &reason))
    }

    pub(super) fn time_duration(
        &self,
        key: &'static str,
        value: &str,
    ) -> Result<time::Duration, ConfigError> {
        let d = self.duration(key, value)?;
        // The cap in `parse_duration` keeps every accepted value far inside `i64` seconds.
        time::Duration::try_from(d).map_err(|_| self.invalid(key, &quote(value), "is too long"))
    }

    pub(super) fn socket_addr(
        &self,
        key: &'static str,
        value: &str,
    ) -> Result<SocketAddr, ConfigError> {
        value.parse().map_err(|_| {
            self.invalid(
                key,
                &quote(value),
                "is not an IP address with a port, e.g. \"0.0.0.0:8443\" or \"[::]:8443\"",
            )
        })
    }

    pub(super) fn at_least_one(
        &self,
        key: &'static str,
        value: usize,
    ) -> Result<usize, ConfigError> {
        if value == 0 {
            return Err(self.invalid(key, "0", "must be at least 1"));
        }
        Ok(value)
    }

    pub(super) fn socket_mode(&self, value: &str) -> Result<u32, ConfigError> {
        match u32::from_str_radix(value, 8) {
            Ok(mode @ (0o600 | 0o660)) => Ok(mode),
            _ => Err(self.invalid(
                "admin.socket_mode",
                &quote(value),
                "is not allowed; use \"0600\" (owner only) or \"0660\" (owner and group)",
            )),
        }
    }

    pub(super) fn socket_path(
        &self,
        data_dir: &Path,
        socket: &Path,
    ) -> Result<PathBuf, ConfigError> {
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

    pub(super) fn trusted_keys(
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

    pub(super) fn log_level(&self, value: &str) -> Result<String, ConfigError> {
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
