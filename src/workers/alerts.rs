//! Alert notification (SPEC §6): derives the alerts, logs each new one at warn level, and POSTs
//! new ones to the configured local webhook. An alert counts as sent only once the webhook
//! answered 2xx; until then it is retried every round. An alert that clears and comes back is
//! sent again.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::json;
use tracing::warn;

use crate::app::App;
use crate::config::AlertsSettings;
use crate::domain::{Alert, AlertInputs};

pub struct AlertsWorker {
    pub app: App,
    pub inputs: AlertInputs,
    /// Interval and webhook; replaced on reload.
    pub settings: Arc<RwLock<AlertsSettings>>,
    pub sent: HashSet<String>,
    logged: HashSet<String>,
    client: reqwest::Client,
}

impl AlertsWorker {
    pub fn new(app: App, inputs: AlertInputs, settings: Arc<RwLock<AlertsSettings>>) -> Self {
        AlertsWorker {
            app,
            inputs,
            settings,
            sent: HashSet::new(),
            logged: HashSet::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The alerts that hold now.
    pub fn current(&self) -> Vec<Alert> {
        let now = self.app.now();
        let timers = self.app.timers();
        self.app.read(|c| c.alerts(now, &timers, &self.inputs))
    }

    /// One round: returns (alerts holding, newly delivered to the webhook).
    pub async fn round(&mut self) -> Result<(usize, usize), String> {
        let alerts = self.current();
        let keys: HashSet<String> = alerts.iter().map(|a| a.key.clone()).collect();
        self.sent.retain(|k| keys.contains(k));
        self.logged.retain(|k| keys.contains(k));
        for a in &alerts {
            if self.logged.insert(a.key.clone()) {
                warn!(
                    kind = a.kind,
                    severity = a.severity.as_str(),
                    "alert: {}",
                    a.message
                );
            }
        }
        let webhook = self
            .settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .webhook
            .clone();
        let Some(url) = &webhook else {
            return Ok((alerts.len(), 0));
        };
        let fresh: Vec<&Alert> = alerts
            .iter()
            .filter(|a| !self.sent.contains(&a.key))
            .collect();
        if fresh.is_empty() {
            return Ok((alerts.len(), 0));
        }
        let body = json!({
            "alerts": fresh.iter().map(|a| json!({
                "key": a.key,
                "kind": a.kind,
                "severity": a.severity.as_str(),
                "account": a.account.map(|x| x.to_string()),
                "va": a.va.map(|x| x.to_string()),
                "message": a.message,
            })).collect::<Vec<_>>()
        });
        let res = self
            .client
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("webhook {url} unreachable: {e}; retrying next round"))?;
        if !res.status().is_success() {
            return Err(format!(
                "webhook {url} answered {}; retrying next round",
                res.status()
            ));
        }
        let n = fresh.len();
        for a in fresh {
            self.sent.insert(a.key.clone());
        }
        Ok((alerts.len(), n))
    }
}

impl super::Worker for AlertsWorker {
    const NAME: &'static str = "alerts";

    async fn work(&mut self) -> Result<String, String> {
        let (holding, sent) = self.round().await?;
        Ok(format!(
            "{holding} alert(s) holding, {sent} sent to the webhook"
        ))
    }

    fn interval(&self) -> Duration {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .interval
    }
}
