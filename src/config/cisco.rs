//! `[cisco]`: the Cisco reporting loop (SPEC §11): pull mode, how often the satellite polls
//! the Cisco devices it was told about (`satellite cisco device add`) and how it backs off from
//! one that fails; and when reports waiting for Cisco's ACK raise an alert.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Validator, quote};
use crate::protocol::cisco::pull::ImportEncoding;

/// The longest wait `ack_alert_after` accepts, in days (ten years).
pub const MAX_ACK_ALERT_DAYS: u32 = 3650;

/// `[cisco]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CiscoConfig {
    /// How often each Cisco device is polled for its RUM reports (close, fetch, ingest), or
    /// `"off"` to poll only on `satellite cisco poll`. At least `"1m"`. Default `"1h"`.
    pub poll_interval: String,
    /// After a failed poll, the first retry comes this long after it, and each further failure
    /// doubles the wait up to `retry_max`. Default `"1m"`.
    pub retry_min: String,
    /// The longest wait between retries of a failing device. Default `"1h"`.
    pub retry_max: String,
    /// Time allowed for each request to a device (connecting included). Default `"30s"`.
    pub timeout: String,
    /// Days a device's oldest RUM report may wait for Cisco's ACK before the alert
    /// `cisco_ack_overdue` holds for it (`satellite alerts`, the webhook); `0` turns the alert
    /// off. Applied on reload. Default `30`.
    pub ack_alert_after: u32,
    /// How an ACK file is carried in a device's `POST /smartlic-service/import` (the public
    /// sources disagree, docs/cisco.md): `"xml"`, the file as it is (DevNet's sample code), or
    /// `"base64:FIELD"`, a JSON object with the file in base64 under FIELD. Default `"xml"`.
    pub import_body: String,
}

impl Default for CiscoConfig {
    fn default() -> Self {
        CiscoConfig {
            poll_interval: "1h".into(),
            retry_min: "1m".into(),
            retry_max: "1h".into(),
            timeout: "30s".into(),
            ack_alert_after: 30,
            import_body: "xml".into(),
        }
    }
}

/// Validated `[cisco]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiscoSettings {
    /// `None`: scheduled polling is off.
    pub poll_interval: Option<Duration>,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub timeout: Duration,
    /// `0`: no alert.
    pub ack_alert_after_days: u32,
    pub import_encoding: ImportEncoding,
}

impl Default for CiscoSettings {
    fn default() -> Self {
        CiscoSettings {
            poll_interval: Some(Duration::from_secs(3600)),
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            timeout: Duration::from_secs(30),
            ack_alert_after_days: 30,
            import_encoding: ImportEncoding::RawXml,
        }
    }
}

impl CiscoConfig {
    pub(super) fn validate(&self, v: &Validator) -> Result<CiscoSettings, ConfigError> {
        let poll_interval = match self.poll_interval.trim() {
            "off" => None,
            text => {
                let d = v.duration("cisco.poll_interval", text)?;
                if d < Duration::from_secs(60) {
                    return Err(v.invalid(
                        "cisco.poll_interval",
                        &quote(text),
                        "must be at least \"1m\" (or \"off\"): a device closes a report at each poll",
                    ));
                }
                Some(d)
            }
        };
        let retry_min = v.duration("cisco.retry_min", &self.retry_min)?;
        let retry_max = v.duration("cisco.retry_max", &self.retry_max)?;
        if retry_min.is_zero() {
            return Err(v.invalid(
                "cisco.retry_min",
                &quote(&self.retry_min),
                "must not be zero",
            ));
        }
        if retry_max < retry_min {
            return Err(v.invalid(
                "cisco.retry_max",
                &quote(&self.retry_max),
                &format!("must be at least cisco.retry_min ({:?})", self.retry_min),
            ));
        }
        let timeout = v.duration("cisco.timeout", &self.timeout)?;
        if timeout.is_zero() || timeout > Duration::from_secs(600) {
            return Err(v.invalid(
                "cisco.timeout",
                &quote(&self.timeout),
                "must be between \"1s\" and \"10m\"",
            ));
        }
        if self.ack_alert_after > MAX_ACK_ALERT_DAYS {
            return Err(v.invalid(
                "cisco.ack_alert_after",
                &self.ack_alert_after.to_string(),
                &format!("must be a number of days from 0 (off) to {MAX_ACK_ALERT_DAYS}"),
            ));
        }
        let import_encoding = match self.import_body.trim() {
            "xml" => ImportEncoding::RawXml,
            text => text
                .strip_prefix("base64:")
                .and_then(|field| ImportEncoding::base64_json(field).ok())
                .ok_or_else(|| {
                    v.invalid(
                        "cisco.import_body",
                        &quote(&self.import_body),
                        "must be \"xml\" or \"base64:FIELD\" (FIELD: letters, digits, `_`, `-`)",
                    )
                })?,
        };
        Ok(CiscoSettings {
            poll_interval,
            retry_min,
            retry_max,
            timeout,
            ack_alert_after_days: self.ack_alert_after,
            import_encoding,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;
    use crate::config::Config;

    fn resolve(toml: &str) -> Result<CiscoSettings, ConfigError> {
        Ok(Config::from_toml_str(toml)?
            .resolve_with_state_directory(Some(OsStr::new("/var/lib/satellite")))?
            .cisco)
    }

    #[test]
    fn poll_interval_may_be_off_and_bad_values_name_their_key() {
        assert_eq!(resolve("").unwrap(), CiscoSettings::default());
        let off = resolve("[cisco]\npoll_interval = \"off\"\n").unwrap();
        assert_eq!(off.poll_interval, None);
        let b64 = resolve("[cisco]\nimport_body = \"base64:data\"\n").unwrap();
        assert_eq!(
            b64.import_encoding,
            ImportEncoding::base64_json("data").unwrap()
        );
        for (toml, key) in [
            ("poll_interval = \"30s\"", "cisco.poll_interval"),
            ("poll_interval = \"often\"", "cisco.poll_interval"),
            ("retry_min = \"0s\"", "cisco.retry_min"),
            ("retry_min = \"2h\"", "cisco.retry_max"),
            ("timeout = \"1h\"", "cisco.timeout"),
            ("import_body = \"json\"", "cisco.import_body"),
            ("import_body = \"base64:a b\"", "cisco.import_body"),
        ] {
            let err = resolve(&format!("[cisco]\n{toml}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("`{key}`")), "{toml}: {err}");
        }
    }
}
