//! The child side of a sync: the request to send, with the changes the upstream has not
//! acknowledged, numbered, signed and durable before it leaves.

use super::{SyncEngine, SyncFailure, not_bound};
use crate::app::AppError;
use crate::domain::{ChildChange, DomainError, OutItem, Outstanding, RegistrationScan};
use crate::protocol::sync::{self as wire, SatelliteId, SyncRequest};

impl SyncEngine {
    /// The request to send: the outstanding one (the same bytes again), or a new one with the
    /// changes the upstream has not acknowledged. Durable before it is returned.
    pub async fn export(&self, actor: &str) -> Result<(u64, Vec<u8>), SyncFailure> {
        let _one = self.running.lock().await;
        self.export_locked(actor).await
    }

    pub(super) async fn export_locked(&self, actor: &str) -> Result<(u64, Vec<u8>), SyncFailure> {
        let now = self.app.now();
        let refresh = self.settings.max_age / 2;
        let existing = self.app.read(|c| -> Result<_, DomainError> {
            let b = c.upstream_binding().ok_or_else(not_bound)?;
            Ok(b.outstanding.clone())
        })?;
        if let Some(out) = existing
            && now - out.created_at < refresh
        {
            let body: SyncRequest = serde_json::from_str(&out.body)
                .map_err(|e| SyncFailure::Internal(format!("stored request unreadable: {e}")))?;
            return Ok((out.seq, self.seal(body)?));
        }
        let max = self.settings.max_changes_per_message;
        let scan = self.registration_scan().await;
        let texts = self.rum_texts(&scan, max)?;
        let key = self.key.clone();
        let (seq, bytes) = self
            .app
            .change(actor, |c, now| -> Result<_, AppError> {
                let b = c.upstream_binding().ok_or_else(not_bound)?;
                // An outstanding request that is getting old is re-dated, with the same number
                // and the same changes, so it is not refused as stale.
                let (seq, changes, items) = match &b.outstanding {
                    Some(out) => {
                        let old: SyncRequest = serde_json::from_str(&out.body).map_err(|e| {
                            DomainError::Refused(format!("stored request unreadable: {e}"))
                        })?;
                        (out.seq, old.changes, out.items.clone())
                    }
                    None => {
                        let (mut items, _) = c.outbox_scanned(&scan, max, now);
                        // A report that arrived after the texts were read waits for the next
                        // request: it stays in the outbox until acknowledged.
                        items.retain(|i| rum_text(i, &texts).is_some());
                        let changes = items
                            .iter()
                            .map(|i| to_wire_change(i, &texts))
                            .collect::<Vec<_>>();
                        let items = items
                            .into_iter()
                            .map(|i| (i.key.to_string(), i.digest))
                            .collect();
                        (b.next_seq, changes, items)
                    }
                };
                let body = SyncRequest {
                    from: SatelliteId::new(&b.me),
                    to: SatelliteId::new(&b.upstream),
                    seq,
                    ack_upstream_seq: b.last_response_seq,
                    created_at: now,
                    changes,
                };
                let json = serde_json::to_string(&body)
                    .map_err(|e| DomainError::Refused(format!("cannot encode the request: {e}")))?;
                let bytes = wire::sign(&key, body)
                    .and_then(|e| e.to_json())
                    .map_err(|e| DomainError::Refused(e.to_string()))?;
                let (change, _) = c.record_outstanding(Outstanding {
                    seq,
                    body: json,
                    items,
                    created_at: now,
                })?;
                Ok((change, (seq, bytes)))
            })
            .await?;
        Ok((seq, bytes))
    }

    /// The texts of this satellite's own RUM reports the next request may carry, read from the
    /// store before the write lock is taken (the catalog does not hold them).
    fn rum_texts(&self, scan: &RegistrationScan, max: usize) -> Result<RumTexts, SyncFailure> {
        let now = self.app.now();
        let (items, _) = self.app.read(|c| c.outbox_scanned(scan, max, now));
        let mut texts = RumTexts::new();
        for item in items {
            if let ChildChange::Rum {
                report_id,
                udi,
                raw,
            } = item.change
                && raw.is_empty()
            {
                let text = self
                    .app
                    .rum_report_text(&udi.serial, report_id)
                    .map_err(AppError::from)?
                    .ok_or_else(|| {
                        SyncFailure::Internal(format!(
                            "RUM report {report_id} of device {} is in the outbox but not in \
                             the store",
                            udi.serial
                        ))
                    })?;
                texts.insert((udi.serial.to_string(), report_id), text);
            }
        }
        Ok(texts)
    }

    fn seal(&self, body: SyncRequest) -> Result<Vec<u8>, SyncFailure> {
        wire::sign(&self.key, body)
            .and_then(|e| e.to_json())
            .map_err(|e| SyncFailure::Internal(e.to_string()))
    }
}

/// The texts of this satellite's own RUM reports, by device serial and report id.
type RumTexts = std::collections::HashMap<(String, u64), String>;

/// The text a RUM item carries: a relayed report's own, or one read for this request; `None`
/// for a report of this satellite's own devices whose text was not read. Other items have
/// no text and always pass.
fn rum_text<'a>(item: &'a OutItem, texts: &'a RumTexts) -> Option<&'a str> {
    match &item.change {
        ChildChange::Rum {
            report_id,
            udi,
            raw,
        } if raw.is_empty() => texts
            .get(&(udi.serial.to_string(), *report_id))
            .map(String::as_str),
        ChildChange::Rum { raw, .. } => Some(raw),
        _ => Some(""),
    }
}

fn to_wire_change(item: &OutItem, texts: &RumTexts) -> wire::Change {
    match &item.change {
        ChildChange::Registration {
            instance_id,
            va,
            udi,
            hostname,
            product,
            version,
            registered_at,
        } => wire::Change::Registration {
            instance_id: instance_id.clone(),
            va: va.clone(),
            udi: crate::protocol::device::Udi {
                pid: udi.pid.to_string(),
                serial: udi.serial.to_string(),
            },
            hostname: hostname.clone(),
            product: product.clone(),
            version: version.clone(),
            registered_at: *registered_at,
        },
        ChildChange::Removal {
            instance_id,
            reason,
        } => wire::Change::Removal {
            instance_id: instance_id.clone(),
            reason: reason.clone(),
        },
        ChildChange::Usage {
            va,
            tag,
            devices,
            units_requested,
            units_granted,
            measured_at,
        } => wire::Change::Usage {
            va: va.clone(),
            entitlement_tag: tag.clone(),
            devices: *devices,
            units_requested: *units_requested,
            units_granted: *units_granted,
            measured_at: *measured_at,
        },
        ChildChange::Rum { report_id, udi, .. } => wire::Change::RumReport {
            report_id: *report_id,
            udi: crate::protocol::device::Udi {
                pid: udi.pid.to_string(),
                serial: udi.serial.to_string(),
            },
            // A report of this satellite's own devices was read from the store before the
            // request was made; a relayed one carries its text.
            raw: rum_text(item, texts).unwrap_or_default().to_owned(),
        },
    }
}
