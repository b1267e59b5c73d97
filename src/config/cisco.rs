//! `[cisco]`: the Cisco reporting loop (SPEC §11): when reports waiting for Cisco's ACK raise
//! an alert.

use serde::Deserialize;

use super::{ConfigError, Validator};

/// The longest wait `ack_alert_after` accepts, in days (ten years).
pub const MAX_ACK_ALERT_DAYS: u32 = 3650;

/// `[cisco]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CiscoConfig {
    /// Days a device's oldest RUM report may wait for Cisco's ACK before the alert
    /// `cisco_ack_overdue` holds for it (`satellite alerts`, the webhook); `0` turns the alert
    /// off. Applied on reload. Default `30`.
    pub ack_alert_after: u32,
}

impl Default for CiscoConfig {
    fn default() -> Self {
        CiscoConfig {
            ack_alert_after: 30,
        }
    }
}

/// Validated `[cisco]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiscoSettings {
    /// `0`: no alert.
    pub ack_alert_after_days: u32,
}

impl CiscoConfig {
    pub(super) fn validate(&self, v: &Validator) -> Result<CiscoSettings, ConfigError> {
        if self.ack_alert_after > MAX_ACK_ALERT_DAYS {
            return Err(v.invalid(
                "cisco.ack_alert_after",
                &self.ack_alert_after.to_string(),
                &format!("must be a number of days from 0 (off) to {MAX_ACK_ALERT_DAYS}"),
            ));
        }
        Ok(CiscoSettings {
            ack_alert_after_days: self.ack_alert_after,
        })
    }
}
