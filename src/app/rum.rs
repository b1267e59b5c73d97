//! Ingesting Cisco RUM reports (SPEC §3b, §11): the one path shared by envelopes pushed to the
//! CSLU-style endpoint (`server::rum`) and answers pulled from a device (`cisco`), so both
//! channels decide a batch by the same trust rules and de-duplicate it the same way.

use super::{App, AppError, RandomIds, Steps};
use crate::domain::{AccountId, DeviceError, RumInput, Udi};
use crate::protocol::rum::RumReport;

/// What a batch of RUM reports came to.
#[derive(Debug)]
pub enum RumOutcome {
    /// Applied: the report ids taken, and those seen before (not counted twice).
    Done {
        accepted: Vec<u64>,
        duplicates: Vec<u64>,
    },
    /// Refused as a whole (it names a device registered with protocol v1); the refusal is
    /// audited and nothing else changed.
    Refused(DeviceError),
}

/// A parsed report as the domain takes it.
pub fn rum_input(r: RumReport) -> RumInput {
    RumInput {
        report_id: r.report_id,
        udi: Udi {
            pid: r.udi_pid.into(),
            serial: r.udi_serial.into(),
        },
        entitlement_tag: r.entitlement_tag,
        count: r.count,
        software_version: r.software_version,
        raw: r.raw,
    }
}

impl App {
    /// Decides `reports` for `account` as a whole, then applies them one by one, under one
    /// hold of the write lock: no registration can slip in between the check and the reports.
    /// Answers once everything is durable, a duplicate's first copy included.
    pub async fn ingest_rum(
        &self,
        actor: &str,
        account: AccountId,
        reports: &[RumInput],
    ) -> Result<RumOutcome, AppError> {
        let outcome = self
            .change_many(actor, |s| decide(s, account, reports))
            .await?;
        if let RumOutcome::Done { duplicates, .. } = &outcome
            && !duplicates.is_empty()
        {
            // The first copy of a duplicate may still be on its way to disk.
            self.wait_durable().await?;
        }
        Ok(outcome)
    }
}

fn decide(
    s: &mut Steps<'_>,
    account: AccountId,
    reports: &[RumInput],
) -> Result<RumOutcome, AppError> {
    if let Some(refusal) = s.catalog().check_rum(account, reports)? {
        s.apply(refusal.audit)?;
        return Ok(RumOutcome::Refused(refusal.error));
    }
    let (mut accepted, mut duplicates) = (Vec::new(), Vec::new());
    for r in reports {
        match s.catalog().ingest_rum(account, r, s.now(), &RandomIds)? {
            Some(change) => {
                s.apply(change)?;
                accepted.push(r.report_id);
            }
            None => duplicates.push(r.report_id),
        }
    }
    Ok(RumOutcome::Done {
        accepted,
        duplicates,
    })
}
