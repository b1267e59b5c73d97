//! Alerts (SPEC §6), derived from the catalog at a given time. Nothing is stored: an alert
//! exists while its condition holds. Device alerts are grouped per VA so a thousand silent
//! devices make one line, not a thousand.

use time::{Duration, OffsetDateTime};

use super::access::Principal;
use super::catalog::Catalog;
use super::compliance::{DeviceTimers, SpareIn};
use super::ids::{AccountId, CiscoDeviceId, VaId};
use super::model::LicenseKind;
use super::tokens::TokenState;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One derived alert. `key` identifies the condition (stable while it holds), so a notifier
/// can tell a new alert from one already sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub key: String,
    pub kind: &'static str,
    pub severity: Severity,
    pub account: Option<AccountId>,
    pub va: Option<VaId>,
    /// The message, naming only the alert's own VA (or nothing of any VA); what depends on
    /// who reads it is kept structured below and rendered by [`Catalog::alert_message`].
    pub message: String,
    /// For a shortage: the other VAs of the account with spare units of the tag, and how many,
    /// most first (shared with the other alerts of the account and tag).
    pub spare_in: SpareIn,
}

/// Inputs that do not live in the catalog.
#[derive(Clone, Debug, Default)]
pub struct AlertInputs {
    pub ca_not_after: Option<OffsetDateTime>,
    pub server_cert_not_after: Option<OffsetDateTime>,
    /// `Some(message)` when the upstream sync is overdue or failing.
    pub sync_problem: Option<String>,
    /// `[cisco] ack_alert_after`, in days (0: off). Shared, so that a reload reaches every
    /// holder of a copy of these inputs (the alerts worker, the admin API).
    pub cisco_ack_alert_after: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// Cisco devices (pull mode) whose last poll could not reach, trust or log in to them,
    /// with the reason.
    pub cisco_unreachable: Vec<(CiscoDeviceId, String)>,
}

const LICENSE_THRESHOLDS: [i64; 4] = [7, 30, 60, 90];

impl Catalog {
    /// Every alert that holds at `now`, most severe first.
    pub fn alerts(
        &self,
        now: OffsetDateTime,
        timers: &DeviceTimers,
        inputs: &AlertInputs,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        self.license_alerts(now, &mut out);
        self.shortage_alerts(now, &mut out);
        self.device_alerts(now, timers, &mut out);
        self.token_alerts(now, &mut out);
        let days = inputs
            .cisco_ack_alert_after
            .load(std::sync::atomic::Ordering::Relaxed);
        self.cisco_ack_alerts(now, days, &mut out);
        for (what, at) in [
            ("device CA", inputs.ca_not_after),
            ("server certificate", inputs.server_cert_not_after),
        ] {
            if let Some(at) = at
                && at - now <= Duration::days(30)
            {
                out.push(Alert {
                    key: format!("certificate_expiring:{what}"),
                    kind: "certificate_expiring",
                    severity: if at <= now {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    account: None,
                    va: None,
                    spare_in: SpareIn::default(),
                    message: format!("the {what} expires on {}", at.date()),
                });
            }
        }
        if let Some(problem) = &inputs.sync_problem {
            out.push(Alert {
                key: "sync".into(),
                kind: "sync_failing",
                severity: Severity::Warning,
                account: None,
                va: None,
                spare_in: SpareIn::default(),
                message: problem.clone(),
            });
        }
        self.cisco_alerts(&inputs.cisco_unreachable, &mut out);
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.key.cmp(&b.key)));
        out
    }

    /// One alert per polled Cisco device that cannot be reached, in the device's VA.
    fn cisco_alerts(&self, unreachable: &[(CiscoDeviceId, String)], out: &mut Vec<Alert>) {
        for (id, reason) in unreachable {
            let Some(d) = self.cisco_device(*id) else {
                continue;
            };
            out.push(Alert {
                key: format!("cisco_unreachable:{id}"),
                kind: "cisco_device_unreachable",
                severity: Severity::Warning,
                account: Some(d.account),
                va: Some(d.va),
                spare_in: SpareIn::default(),
                message: format!(
                    "Cisco device `{}` ({}) cannot be polled: {reason}",
                    d.name, d.address
                ),
            });
        }
    }

    fn license_alerts(&self, now: OffsetDateTime, out: &mut Vec<Alert>) {
        for l in self.stock.licenses.values() {
            let LicenseKind::Term { start, end } = l.kind else {
                continue;
            };
            if start > now || end <= now {
                continue;
            }
            let days = (end - now).whole_days();
            let Some(threshold) = LICENSE_THRESHOLDS.into_iter().find(|t| days < *t) else {
                continue;
            };
            out.push(Alert {
                key: format!("license_expiring:{}:{threshold}", l.id),
                kind: "license_expiring",
                severity: if threshold <= 7 {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                account: Some(l.account),
                va: Some(l.va),
                spare_in: SpareIn::default(),
                message: format!(
                    "{} x {} in {} expire on {} (within {threshold} days)",
                    l.quantity,
                    l.entitlement_tag,
                    self.va_path(l.va),
                    end.date()
                ),
            });
        }
    }

    fn shortage_alerts(&self, now: OffsetDateTime, out: &mut Vec<Alert>) {
        let vas: Vec<VaId> = self
            .fleet
            .pools
            .keys()
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for line in self.compliance(&vas, now, true) {
            let account = self.va(line.va).map(|v| v.account);
            out.push(Alert {
                key: format!("insufficient_licenses:{}:{}", line.va, line.entitlement_tag),
                kind: "insufficient_licenses",
                severity: Severity::Critical,
                account,
                va: Some(line.va),
                message: format!(
                    "{} is short of {} unit(s) of {} ({} device(s) out of compliance)",
                    self.va_path(line.va),
                    line.shortage(),
                    line.entitlement_tag,
                    line.devices_short
                ),
                spare_in: line.spare_in,
            });
        }
    }

    fn device_alerts(&self, now: OffsetDateTime, timers: &DeviceTimers, out: &mut Vec<Alert>) {
        use std::collections::BTreeMap;
        let mut missed: BTreeMap<VaId, usize> = BTreeMap::new();
        let mut expired: BTreeMap<VaId, usize> = BTreeMap::new();
        for i in self.silent_since(now - timers.report_interval) {
            let base = i.last_report_at.unwrap_or(i.registered_at);
            if now >= base + timers.authorization_valid {
                *expired.entry(i.va).or_default() += 1;
            } else if now >= base + timers.report_interval {
                *missed.entry(i.va).or_default() += 1;
            }
        }
        let mut skewed: BTreeMap<VaId, usize> = BTreeMap::new();
        for id in &self.fleet.skewed {
            if let Some(i) = self.fleet.instances.get(id) {
                *skewed.entry(i.va).or_default() += 1;
            }
        }
        for (kind, severity, map, what) in [
            (
                "report_missed",
                Severity::Warning,
                missed,
                "missed their usage report",
            ),
            (
                "authorization_expired",
                Severity::Critical,
                expired,
                "have an expired authorization (no report for the validity period)",
            ),
            (
                "clock_skew",
                Severity::Warning,
                skewed,
                "report a clock that differs from the satellite's by the skew limit or more",
            ),
        ] {
            for (va, n) in map {
                out.push(Alert {
                    key: format!("{kind}:{va}"),
                    kind,
                    severity,
                    account: self.va(va).map(|v| v.account),
                    va: Some(va),
                    spare_in: SpareIn::default(),
                    message: format!("{n} device(s) in {} {what}", self.va_path(va)),
                });
            }
        }
    }

    fn token_alerts(&self, now: OffsetDateTime, out: &mut Vec<Alert>) {
        for t in self.credentials.tokens.values() {
            if t.state(now) == TokenState::Active && t.expires_at - now <= Duration::days(7) {
                out.push(Alert {
                    key: format!("token_expiring:{}", t.id),
                    kind: "token_expiring",
                    severity: Severity::Info,
                    account: Some(t.account),
                    va: Some(t.va),
                    spare_in: SpareIn::default(),
                    message: format!(
                        "registration token {} of {} expires on {}",
                        t.id,
                        self.va_path(t.va),
                        t.expires_at.date()
                    ),
                });
            }
        }
    }

    /// The alert's message as `p` may read it (SPEC §7): a shortage names the VAs with spare
    /// units only where `p` may look. A caller who cannot read the whole account is never told
    /// that no spare units exist elsewhere, since that too would describe VAs it cannot see.
    pub fn alert_message(&self, a: &Alert, p: &Principal) -> String {
        if a.kind != "insufficient_licenses" {
            return a.message.clone();
        }
        // Only the first VA the reader may see is named: the search stops there, so a list of a
        // thousand VAs costs one check for a reader who sees them all.
        let visible = a
            .spare_in
            .iter()
            .find(|(va, _)| self.va_access(p, *va).is_some());
        let sees_account = a
            .account
            .is_some_and(|acc| self.account_access(p, acc).is_some());
        let clause = match (visible, sees_account) {
            (Some((va, n)), _) => format!(
                "; {} has {n} spare: transfer with `satellite license transfer`",
                self.va_path(*va)
            ),
            (None, true) => "; no other VA of the account has spare units: purchase more".into(),
            (None, false) => "; no VA you can see has spare units".into(),
        };
        format!("{}{clause}", a.message)
    }
}
