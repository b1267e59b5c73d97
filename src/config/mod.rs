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
//!
//! The parts, in reading order: `file.rs` the file's types, `settings.rs` the validated
//! settings, `resolve.rs` the steps from one to the other (one validate function per section),
//! `validate.rs` the checks of single values, `rum.rs` the `[rum]` section whole, and
//! `reload.rs` the comparison a reload makes.

use std::path::{Path, PathBuf};

mod cisco;
mod file;
mod reload;
mod resolve;
mod rum;
mod settings;
mod validate;

pub use cisco::{CiscoConfig, CiscoSettings};
pub use file::{
    AdminConfig, AlertsConfig, Config, ConsoleConfig, DeviceConfig, LogConfig, LogFormat,
    ShutdownConfig, SyncConfig, TimersConfig, TlsConfig, TrustedKeyConfig,
};
pub use rum::{Network, RumConfig, RumSettings};
pub use settings::{
    AdminSettings, AlertsSettings, ConsoleSettings, DeviceSettings, LogSettings, Settings,
    ShutdownSettings, SyncSettings, Timers, TlsFiles,
};
use validate::Validator;
pub use validate::parse_duration;

/// The data directory used when neither the file nor systemd (`$STATE_DIRECTORY`) names one.
pub const DEFAULT_DATA_DIR: &str = "./satellite-data";

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
#[cfg(test)]
mod tests;
