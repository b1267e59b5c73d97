//! The child side of a sync: applying the upstream's response (from a file or the network),
//! and one network sync, which exports, sends and imports.

use tracing::{info, warn};

use super::{ImportOutcome, SyncEngine, SyncFailure, not_bound, refusal_event, transport};
use crate::app::{AppError, RandomIds};
use crate::domain::{
    Change, DomainError, NewEvent, ReceivedAck, UpstreamLicense, UpstreamResponse,
};
use crate::protocol::sync::{
    self as wire, SatelliteId, SyncError, SyncResponse, TrustedKeys, VerifyCtx, parse_public_key,
};

impl SyncEngine {
    /// Verifies and applies a response from the upstream. Refusals are audited.
    pub async fn import(&self, actor: &str, bytes: &[u8]) -> Result<ImportOutcome, SyncFailure> {
        let max_age = self.settings.max_age;
        let outcome = self
            .app
            .change(actor, |c, now| -> Result<_, AppError> {
                let b = c.upstream_binding().ok_or_else(not_bound)?;
                let upstream_key = parse_public_key(&b.upstream_key)
                    .map_err(|e| DomainError::Refused(format!("pinned upstream key: {e}")))?;
                let trusted = TrustedKeys::new().with(SatelliteId::new(&b.upstream), upstream_key);
                let me = SatelliteId::new(&b.me);
                let last = b.last_response_seq;
                let ctx = VerifyCtx {
                    me: &me,
                    accounts: &[],
                    trusted: &trusted,
                    last_seq: move |_: &SatelliteId| Some(last),
                    now,
                    max_age,
                    max_skew: wire::DEFAULT_MAX_SKEW,
                };
                match wire::open::<SyncResponse, _>(bytes, &ctx) {
                    Ok(resp) => {
                        let resp_acks = resp.cisco_acks.clone();
                        let resp = match from_wire_response(&resp) {
                            Ok(resp) => resp,
                            Err(e) => {
                                let e = SyncError::Malformed(e.to_string());
                                return Ok((
                                    refusal_event(&b.upstream, "sync_response", &e),
                                    Err(e),
                                ));
                            }
                        };
                        let seq = resp.seq;
                        let acks = match from_wire_acks(&resp_acks) {
                            Ok(acks) => acks,
                            Err(e) => {
                                return Ok((
                                    refusal_event(&b.upstream, "sync_response", &e),
                                    Err(e),
                                ));
                            }
                        };
                        let (change, applied) =
                            c.apply_upstream_response(&resp, now, &RandomIds)?;
                        let change = c.receive_cisco_acks(change, &acks, now);
                        Ok((change, Ok(ImportOutcome::Applied { seq, applied })))
                    }
                    Err(SyncError::Replayed { seq, .. }) => Ok((
                        Change::new(
                            NewEvent::new("sync.response.replayed", &b.upstream)
                                .account(b.account)
                                .detail("seq", seq),
                        ),
                        Ok(ImportOutcome::AlreadyApplied { seq }),
                    )),
                    Err(e) => Ok((refusal_event(&b.upstream, "sync_response", &e), Err(e))),
                }
            })
            .await?;
        let outcome = outcome?;
        if let ImportOutcome::Applied { .. } = &outcome {
            self.update_status(|s| {
                s.last_success = Some(self.app.now());
                s.failures = 0;
            });
        }
        Ok(outcome)
    }

    /// One network sync: send the request, apply the response.
    pub async fn sync_now(&self, actor: &str) -> Result<ImportOutcome, SyncFailure> {
        let _one = self.running.lock().await;
        let started = self.app.now();
        self.update_status(|s| s.last_attempt = Some(started));
        let result = async {
            let (seq, request) = self.export_locked(actor).await?;
            let binding = self
                .app
                .read(|c| c.upstream_binding().cloned())
                .ok_or_else(|| SyncFailure::from(not_bound()))?;
            info!(seq, bytes = request.len(), upstream = %binding.upstream, "sending sync request");
            let response = transport::post_request(self, &binding, request).await?;
            self.import(actor, &response).await
        }
        .await;
        let now = self.app.now();
        match &result {
            Ok(_) => self.update_status(|s| {
                s.last_success = Some(now);
                s.last_error = None;
                s.failures = 0;
            }),
            Err(e) => {
                warn!(cause = %e, "sync with the upstream failed");
                let first = self.status().failures == 0;
                self.update_status(|s| {
                    s.last_error = Some((now, e.to_string()));
                    s.failures = s.failures.saturating_add(1);
                });
                if first {
                    // The first failure after a success is audited; retries are not, so an
                    // unreachable upstream does not flood the log.
                    let event = NewEvent::new("sync.failed", "upstream").detail("error", e);
                    let audited = self
                        .app
                        .change(actor, |_, _| -> Result<_, AppError> {
                            Ok((Change::new(event), ()))
                        })
                        .await;
                    if let Err(cause) = audited {
                        warn!(%cause, "the failed sync could not be audited");
                    }
                }
            }
        }
        // The worker recomputes its schedule: the next interval, or the backoff.
        self.wake.notify_one();
        result
    }
}

/// The Cisco ACKs of a verified response as domain input; an ACK that is not base64 refuses
/// the response (nothing is applied).
fn from_wire_acks(lines: &[wire::CiscoAckLine]) -> Result<Vec<ReceivedAck>, SyncError> {
    use base64::Engine as _;
    lines
        .iter()
        .map(|l| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&l.file)
                .map_err(|e| {
                    SyncError::Malformed(format!(
                        "a Cisco ACK for {} is not base64: {e}",
                        l.udi.serial
                    ))
                })?;
            Ok(ReceivedAck {
                id: crate::hex::encode(&crate::protocol::reservation::sha256(&bytes)),
                udi: crate::domain::Udi {
                    pid: l.udi.pid.clone().into(),
                    serial: l.udi.serial.clone().into(),
                },
                report_ids: l.report_ids.clone(),
                bytes,
                has_policy: l.has_policy,
            })
        })
        .collect()
}

/// The verified response as domain input. Refuses what this version cannot apply faithfully:
/// incremental pools (it sends and applies full pools only) and license ids that are not the
/// upstream's UUIDs; nothing in a response is silently dropped.
fn from_wire_response(r: &SyncResponse) -> Result<UpstreamResponse, DomainError> {
    if let Some(p) = r.pools.iter().find(|p| !p.full) {
        return Err(DomainError::Invalid(format!(
            "the response carries an incremental pool for `{}`; this satellite applies full \
             pools only (upgrade it to the upstream's version); nothing was applied",
            p.va
        )));
    }
    if let Some(l) = r
        .pools
        .iter()
        .flat_map(|p| &p.licenses)
        .find(|l| l.id.parse::<crate::domain::LicenseId>().is_err())
    {
        return Err(DomainError::Invalid(format!(
            "the response carries license id `{}`, which is not a license id of a satellite; \
             nothing was applied",
            l.id
        )));
    }
    Ok(UpstreamResponse {
        seq: r.seq,
        acks: r.acks.clone(),
        pools: r
            .pools
            .iter()
            .map(|p| {
                let licenses = p
                    .licenses
                    .iter()
                    .filter_map(|l| {
                        let id = l.id.parse().ok()?;
                        let kind = match (l.kind, l.start, l.end) {
                            (wire::LicenseKind::Term, Some(start), Some(end)) => {
                                crate::domain::LicenseKind::Term { start, end }
                            }
                            _ => crate::domain::LicenseKind::Perpetual,
                        };
                        Some(UpstreamLicense {
                            id,
                            entitlement_tag: l.entitlement_tag.clone(),
                            display_name: l.display_name.clone(),
                            quantity: l.quantity,
                            kind,
                            export_controlled: l.export_controlled,
                            order_ref: l.order_ref.clone(),
                            labels: l.labels.clone(),
                        })
                    })
                    .collect();
                (p.va.clone(), licenses)
            })
            .collect(),
        removals: r
            .removals
            .iter()
            .map(|x| (x.instance_id.clone(), x.reason.clone()))
            .collect(),
        revocations: r
            .revocations
            .iter()
            .map(|x| (x.certificate_serial.clone(), x.reason.clone()))
            .collect(),
    })
}
