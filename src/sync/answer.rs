//! The upstream side of a sync: a child's request verified and applied, and the signed
//! response (the same bytes again for a retried request).

use time::OffsetDateTime;

use super::{SyncEngine, SyncFailure, refusal_event};
use crate::app::AppError;
use crate::domain::{
    Catalog, Change, ChildChange, ChildSatellite, DomainError, NewEvent, Received,
};
use crate::protocol::sync::{
    self as wire, Envelope, PoolSnapshot, SatelliteId, SyncError, SyncRequest, SyncResponse,
    TrustedKeys, VerifyCtx, parse_public_key,
};

/// What a request that is not applied comes to: its audit event, and the bytes of the
/// response produced for it before (a retried request) or why it was refused.
type Settled = (Change, Result<Vec<u8>, SyncError>);

impl SyncEngine {
    /// Verifies and applies a child's request; returns the signed response. A request applied
    /// before gets the response produced for it, byte for byte.
    pub async fn answer(&self, actor: &str, bytes: &[u8]) -> Result<Vec<u8>, SyncFailure> {
        let result = self
            .app
            .change(actor, |c, now| -> Result<_, AppError> {
                let req = match self.open_request(c, bytes, now) {
                    Ok(req) => req,
                    Err(settled) => return Ok(*settled),
                };
                let child = c
                    .child_satellite(req.from.as_str())
                    .ok_or_else(|| DomainError::not_found("child satellite", &req.from))?;
                let response = self.response_to(c, child, &req, now);
                let response_seq = response.seq;
                let acks_sent: Vec<String> = c
                    .cisco_acks_for_child(&child.name)
                    .iter()
                    .map(|a| a.id.clone())
                    .collect();
                let bytes = wire::sign(&self.key, response)
                    .and_then(|e| e.to_json())
                    .map_err(|e| DomainError::Refused(e.to_string()))?;
                let text = String::from_utf8(bytes.clone())
                    .map_err(|e| DomainError::Refused(e.to_string()))?;
                let changes: Vec<ChildChange> = req.changes.iter().map(from_wire_change).collect();
                let (change, _received): (Change, Received) = c.apply_child_request(
                    req.from.as_str(),
                    req.seq,
                    &changes,
                    response_seq,
                    text,
                    now,
                )?;
                let change =
                    c.mark_cisco_acks_sent(change, &acks_sent, &child.name, response_seq, now);
                Ok((change, Ok(bytes)))
            })
            .await?;
        Ok(result?)
    }

    /// Opens a child's request under the write lock (signature, sender, sequence, freshness).
    /// `Err` settles a request that is not to be applied: a retry of the last one, answered
    /// with its stored response, or a refusal.
    fn open_request(
        &self,
        c: &Catalog,
        bytes: &[u8],
        now: OffsetDateTime,
    ) -> Result<SyncRequest, Box<Settled>> {
        let me = SatelliteId::new(&self.settings.name);
        let trusted = children_keys(c);
        let ctx = VerifyCtx {
            me: &me,
            accounts: &[],
            trusted: &trusted,
            last_seq: |sender: &SatelliteId| {
                c.child_satellite(sender.as_str())
                    .map(|ch| ch.last_request_seq)
            },
            now,
            max_age: self.settings.max_age,
            max_skew: wire::DEFAULT_MAX_SKEW,
        };
        match wire::open::<SyncRequest, _>(bytes, &ctx) {
            Ok(req) => Ok(req),
            Err(SyncError::Replayed { seq, last }) => Err(Box::new(replayed(c, bytes, seq, last))),
            Err(e) => {
                let from = peek_from(bytes);
                Err(Box::new((refusal_event(&from, "sync_request", &e), Err(e))))
            }
        }
    }

    /// The response to `req`: the child's pools in full and the removals ordered for it.
    fn response_to(
        &self,
        c: &Catalog,
        child: &ChildSatellite,
        req: &SyncRequest,
        now: OffsetDateTime,
    ) -> SyncResponse {
        let pools = c
            .child_pools(child)
            .into_iter()
            .map(|(va, licenses)| PoolSnapshot {
                va,
                full: true,
                licenses: licenses.into_iter().map(to_wire_license).collect(),
                removed: Vec::new(),
            })
            .collect();
        SyncResponse {
            from: SatelliteId::new(&self.settings.name),
            to: req.from.clone(),
            seq: req.ack_upstream_seq + 1,
            acks: vec![req.seq],
            created_at: now,
            pools,
            removals: child
                .pending_removals
                .iter()
                .map(|(id, reason)| wire::Removal {
                    instance_id: id.clone(),
                    reason: reason.clone(),
                })
                .collect(),
            revocations: Vec::new(),
            cisco_acks: c
                .cisco_acks_for_child(&child.name)
                .into_iter()
                .map(to_wire_ack)
                .collect(),
        }
    }
}

/// A Cisco ACK as it travels down to the child holding the device.
fn to_wire_ack(a: &crate::domain::CiscoAck) -> wire::CiscoAckLine {
    use base64::Engine as _;
    let mut report_ids = a.report_ids.clone();
    report_ids.sort_unstable();
    report_ids.dedup();
    wire::CiscoAckLine {
        udi: crate::protocol::device::Udi {
            pid: a.udi.pid.to_string(),
            serial: a.udi.serial.to_string(),
        },
        report_ids,
        file: base64::engine::general_purpose::STANDARD.encode(&a.bytes),
        has_policy: a.has_policy,
    }
}

/// A request numbered at or below the last one applied: the last one again gets the response
/// produced for it; an older one is refused.
fn replayed(c: &Catalog, bytes: &[u8], seq: u64, last: u64) -> Settled {
    // Verified: the sender and number can be read from the body.
    let from = serde_json::from_slice::<Envelope<SyncRequest>>(bytes)
        .map(|e| e.body.from.0)
        .unwrap_or_default();
    let stored = c
        .child_satellite(&from)
        .filter(|_| seq == last)
        .and_then(|ch| ch.last_response.clone());
    match stored {
        Some(resp) => (
            Change::new(NewEvent::new("sync.request.replayed", &from).detail("seq", seq)),
            Ok(resp.into_bytes()),
        ),
        None => {
            let e = SyncError::Replayed { seq, last };
            (refusal_event(&from, "sync_request", &e), Err(e))
        }
    }
}

/// The sender a refused file claims, for the audit event (unverified: for reading only).
fn peek_from(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["body"]["from"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The pinned keys of every registered child, each under its name.
fn children_keys(c: &Catalog) -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    for child in c.child_satellites() {
        if let Some(k) = child.key.as_deref().and_then(|k| parse_public_key(k).ok()) {
            keys.insert(SatelliteId::new(&child.name), k);
        }
    }
    keys
}

fn from_wire_change(c: &wire::Change) -> ChildChange {
    let udi = |u: &crate::protocol::device::Udi| crate::domain::Udi {
        pid: u.pid.clone().into(),
        serial: u.serial.clone().into(),
    };
    match c {
        wire::Change::Registration {
            instance_id,
            va,
            udi: u,
            hostname,
            product,
            version,
            registered_at,
        } => ChildChange::Registration {
            instance_id: instance_id.clone(),
            va: va.clone(),
            udi: udi(u),
            hostname: hostname.clone(),
            product: product.clone(),
            version: version.clone(),
            registered_at: *registered_at,
        },
        wire::Change::Removal {
            instance_id,
            reason,
        } => ChildChange::Removal {
            instance_id: instance_id.clone(),
            reason: reason.clone(),
        },
        wire::Change::Usage {
            va,
            entitlement_tag,
            devices,
            units_requested,
            units_granted,
            measured_at,
        } => ChildChange::Usage {
            va: va.clone(),
            tag: entitlement_tag.clone(),
            devices: *devices,
            units_requested: *units_requested,
            units_granted: *units_granted,
            measured_at: *measured_at,
        },
        wire::Change::RumReport {
            report_id,
            udi: u,
            raw,
        } => ChildChange::Rum {
            report_id: *report_id,
            udi: udi(u),
            raw: raw.clone(),
        },
    }
}

fn to_wire_license(l: &crate::domain::License) -> wire::LicenseLine {
    let (kind, start, end) = match l.kind {
        crate::domain::LicenseKind::Perpetual => (wire::LicenseKind::Perpetual, None, None),
        crate::domain::LicenseKind::Term { start, end } => {
            (wire::LicenseKind::Term, Some(start), Some(end))
        }
    };
    wire::LicenseLine {
        id: l.id.to_string(),
        entitlement_tag: l.entitlement_tag.clone(),
        display_name: l.display_name.clone(),
        quantity: l.quantity,
        kind,
        start,
        end,
        export_controlled: l.export_controlled,
        order_ref: l.order_ref.clone(),
        labels: l.labels.clone(),
    }
}
