//! The sync engine (SPEC §8): turns the catalog's view of reconciliation (`domain::sync`) into
//! signed messages (`protocol::sync`) and back, for both transports.
//!
//! - Child side: [`SyncEngine::export`] numbers and signs the next request (or returns the
//!   outstanding one, unchanged), [`SyncEngine::import`] verifies and applies a response,
//!   [`SyncEngine::sync_now`] does both over the network, [`SyncEngine::register`] binds this
//!   satellite to an upstream.
//! - Upstream side: [`SyncEngine::answer`] verifies and applies a child's request and returns
//!   the signed response (the same bytes again for a retried request).
//!
//! Each apply happens inside one `App::change`: the message is opened (signature, sender,
//! sequence, freshness) under the catalog's write lock, so two copies of one message racing
//! each other cannot both pass the sequence check, and the records, the sequence numbers and
//! the audit event become durable together. A refused message is audited too (`sync.refused`).

pub mod transport;

use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tracing::{info, warn};

use crate::app::{App, AppError};
use crate::config::SyncSettings;
use crate::domain::{
    Applied, Catalog, Change, ChildChange, DomainError, NewEvent, OutItem, Outstanding, Received,
    UpstreamLicense, UpstreamResponse,
};
use crate::protocol::sync::{
    self as wire, Envelope, PoolSnapshot, SatelliteId, SatelliteKey, SyncError, SyncRequest,
    SyncResponse, TrustedKeys, VerifyCtx, parse_public_key,
};

/// Why a sync operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    /// The message was refused; the reason is specific (see `docs/sync.md`).
    #[error("sync message refused: {0}")]
    Refused(#[from] SyncError),
    /// The state does not allow it (not bound, unknown child...).
    #[error(transparent)]
    App(#[from] AppError),
    /// The upstream could not be reached or answered with an error.
    #[error("{0}")]
    Transport(String),
    /// A bug or an unusable local file (key, certificate).
    #[error("{0}")]
    Internal(String),
}

impl From<DomainError> for SyncFailure {
    fn from(e: DomainError) -> Self {
        SyncFailure::App(e.into())
    }
}

/// What the network sync worker and `sync status` show.
#[derive(Clone, Debug, Default)]
pub struct SyncStatus {
    pub last_attempt: Option<OffsetDateTime>,
    pub last_success: Option<OffsetDateTime>,
    pub last_error: Option<(OffsetDateTime, String)>,
    pub next_attempt: Option<OffsetDateTime>,
    /// Failures since the last success (drives the backoff).
    pub failures: u32,
}

/// The outcome of applying a response.
#[derive(Clone, Debug)]
pub enum ImportOutcome {
    Applied {
        seq: u64,
        applied: Applied,
    },
    /// The response was applied before: nothing changed.
    AlreadyApplied {
        seq: u64,
    },
}

/// The engine: shared by the admin handlers, the device listener and the worker.
pub struct SyncEngine {
    pub app: App,
    pub key: Arc<SatelliteKey>,
    pub settings: SyncSettings,
    /// Where the client certificate for the upstream lives (`DATA/sync`).
    pub dir: std::path::PathBuf,
    status: Mutex<SyncStatus>,
    /// One network sync or export at a time.
    running: tokio::sync::Mutex<()>,
    /// Wakes the worker (`sync now`, binding).
    pub wake: tokio::sync::Notify,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SyncEngine {
    pub fn new(
        app: App,
        key: Arc<SatelliteKey>,
        settings: SyncSettings,
        dir: std::path::PathBuf,
    ) -> Self {
        SyncEngine {
            app,
            key,
            settings,
            dir,
            status: Mutex::new(SyncStatus::default()),
            running: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn status(&self) -> SyncStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_next_attempt(&self, at: Option<OffsetDateTime>) {
        self.update_status(|s| s.next_attempt = at);
    }

    fn update_status(&self, f: impl FnOnce(&mut SyncStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// A one-line problem for the alerts (`None` when sync is healthy or not configured):
    /// failing since the last success, or overdue (no success for two intervals).
    pub fn problem(&self, now: OffsetDateTime) -> Option<String> {
        let bound = self.app.read(|c| c.upstream_binding().cloned())?;
        let status = self.status();
        let last_success = status.last_success.or(bound.last_success);
        if let Some((at, error)) = &status.last_error
            && last_success.is_none_or(|s| s < *at)
        {
            return Some(format!(
                "sync with upstream `{}` is failing since {at}: {error}",
                bound.upstream
            ));
        }
        let interval = time::Duration::try_from(self.settings.interval?).unwrap_or_default();
        let since = last_success.unwrap_or(bound.bound_at);
        (now - since > interval * 2).then(|| {
            format!(
                "sync with upstream `{}` is overdue: no successful sync since {since}",
                bound.upstream
            )
        })
    }

    // ----- child side ------------------------------------------------------------------------

    /// The request to send: the outstanding one (the same bytes again), or a new one with the
    /// changes the upstream has not acknowledged. Durable before it is returned.
    pub async fn export(&self, actor: &str) -> Result<(u64, Vec<u8>), SyncFailure> {
        let _one = self.running.lock().await;
        self.export_locked(actor).await
    }

    async fn export_locked(&self, actor: &str) -> Result<(u64, Vec<u8>), SyncFailure> {
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
        let texts = self.rum_texts(max)?;
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
                        let (mut items, _) = c.outbox(max, now);
                        // A report that arrived after the texts were read waits for the next
                        // request: it stays in the outbox until acknowledged.
                        items.retain(|i| rum_text(i, &texts).is_some());
                        let changes = items
                            .iter()
                            .map(|i| to_wire_change(i, &texts))
                            .collect::<Vec<_>>();
                        let items = items.into_iter().map(|i| (i.key, i.digest)).collect();
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
    fn rum_texts(&self, max: usize) -> Result<RumTexts, SyncFailure> {
        let now = self.app.now();
        let (items, _) = self.app.read(|c| c.outbox(max, now));
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
                texts.insert((udi.serial, report_id), text);
            }
        }
        Ok(texts)
    }

    fn seal(&self, body: SyncRequest) -> Result<Vec<u8>, SyncFailure> {
        wire::sign(&self.key, body)
            .and_then(|e| e.to_json())
            .map_err(|e| SyncFailure::Internal(e.to_string()))
    }

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
                        let (change, applied) = c.apply_upstream_response(&resp, now)?;
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

    /// Changes not in any request yet (the outstanding request's are not counted).
    pub fn pending(&self) -> usize {
        let now = self.app.now();
        self.app.read(|c| c.pending_count(now))
    }

    // ----- upstream side ---------------------------------------------------------------------

    /// Verifies and applies a child's request; returns the signed response. A request applied
    /// before gets the response produced for it, byte for byte.
    pub async fn answer(&self, actor: &str, bytes: &[u8]) -> Result<Vec<u8>, SyncFailure> {
        let max_age = self.settings.max_age;
        let me = SatelliteId::new(&self.settings.name);
        let key = self.key.clone();
        let result = self
            .app
            .change(actor, |c, now| -> Result<_, AppError> {
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
                    max_age,
                    max_skew: wire::DEFAULT_MAX_SKEW,
                };
                let req = match wire::open::<SyncRequest, _>(bytes, &ctx) {
                    Ok(req) => req,
                    Err(SyncError::Replayed { seq, last }) => {
                        // Verified: the sender and number can be read from the body.
                        let from = serde_json::from_slice::<Envelope<SyncRequest>>(bytes)
                            .map(|e| e.body.from.0)
                            .unwrap_or_default();
                        let stored = c
                            .child_satellite(&from)
                            .filter(|_| seq == last)
                            .and_then(|ch| ch.last_response.clone());
                        return Ok(match stored {
                            Some(resp) => (
                                Change::new(
                                    NewEvent::new("sync.request.replayed", &from)
                                        .detail("seq", seq),
                                ),
                                Ok(resp.into_bytes()),
                            ),
                            None => {
                                let e = SyncError::Replayed { seq, last };
                                (refusal_event(&from, "sync_request", &e), Err(e))
                            }
                        });
                    }
                    Err(e) => {
                        let from = peek_from(bytes);
                        return Ok((refusal_event(&from, "sync_request", &e), Err(e)));
                    }
                };
                let child = c
                    .child_satellite(req.from.as_str())
                    .ok_or_else(|| DomainError::not_found("child satellite", &req.from))?;
                let response_seq = req.ack_upstream_seq + 1;
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
                let response = SyncResponse {
                    from: me.clone(),
                    to: req.from.clone(),
                    seq: response_seq,
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
                };
                let bytes = wire::sign(&key, response)
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
                Ok((change, Ok(bytes)))
            })
            .await?;
        Ok(result?)
    }
}

fn not_bound() -> DomainError {
    DomainError::Refused(
        "this satellite is not bound to an upstream; bind it with `satellite sync register \
         --upstream URL --registration-token TOKEN`"
            .into(),
    )
}

/// The sender a refused file claims, for the audit event (unverified: for reading only).
fn peek_from(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["body"]["from"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn refusal_event(from: &str, kind: &str, e: &SyncError) -> Change {
    Change::new(
        NewEvent::new("sync.refused", from)
            .detail("kind", kind)
            .detail("reason", e),
    )
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
            .get(&(udi.serial.clone(), *report_id))
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
                pid: udi.pid.clone(),
                serial: udi.serial.clone(),
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
                pid: udi.pid.clone(),
                serial: udi.serial.clone(),
            },
            // A report of this satellite's own devices was read from the store before the
            // request was made; a relayed one carries its text.
            raw: rum_text(item, texts).unwrap_or_default().to_owned(),
        },
    }
}

fn from_wire_change(c: &wire::Change) -> ChildChange {
    let udi = |u: &crate::protocol::device::Udi| crate::domain::Udi {
        pid: u.pid.clone(),
        serial: u.serial.clone(),
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
