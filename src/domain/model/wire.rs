//! How a [`ProductInstance`] is serialized: field for field as the struct reads, with the last
//! answer written whole (its lines from the usage, see `answer.rs`), so the stored bytes are
//! those of the plain derive the record had before it packed its answer (the store's
//! golden-bytes tests pin them). Reading packs the answer again. A [`Stamp`] is written as the
//! `OffsetDateTime` it holds and a [`Seq`] as its `u64`, as the fields were.

use serde::{Deserialize, Serialize};

use super::{
    AuthorizationState, InstanceSource, InstanceStatus, LastAnswer, ProductInstance, Seq, Stamp,
    TagCounts, Text, Udi,
};
use crate::domain::ids::{AccountId, InstanceId, TokenId, VaId};

/// A record as written: borrowed from the [`ProductInstance`].
#[derive(Serialize)]
#[serde(rename = "ProductInstance")]
struct Out<'a> {
    id: InstanceId,
    account: AccountId,
    va: VaId,
    udi: &'a Udi,
    hostname: &'a str,
    product: &'a str,
    version: &'a str,
    source: InstanceSource,
    registered_at: Stamp,
    order: u64,
    token: Option<TokenId>,
    export_allowed: bool,
    cert_serial: Option<&'a str>,
    cert_not_after: Option<Stamp>,
    last_contact: Stamp,
    last_report_at: Option<Stamp>,
    last_seq: Option<Seq>,
    last_measured_at: Option<Stamp>,
    usage: &'a TagCounts,
    last_answer: Option<AnswerOut<'a>>,
    clock_skew: bool,
}

/// An answer as written: an `AuthorizationState`.
#[derive(Serialize)]
#[serde(rename = "AuthorizationState")]
struct AnswerOut<'a> {
    status: InstanceStatus,
    entitlements: LinesOut<'a>,
    expires_at: Stamp,
    next_report_by: Stamp,
}

/// An answer's lines, written as the `Vec<(Tag, u64, EntitlementStatus)>` they were.
struct LinesOut<'a>(super::answer::Lines<'a>);

impl Serialize for LinesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .clone()
                .map(|(tag, units, status)| (&**tag, units, status)),
        )
    }
}

/// A record as read.
#[derive(Deserialize)]
#[serde(rename = "ProductInstance")]
struct In {
    id: InstanceId,
    account: AccountId,
    va: VaId,
    udi: Udi,
    hostname: Box<str>,
    product: Text,
    version: Text,
    source: InstanceSource,
    registered_at: Stamp,
    order: u64,
    token: Option<TokenId>,
    export_allowed: bool,
    cert_serial: Option<Box<str>>,
    cert_not_after: Option<Stamp>,
    last_contact: Stamp,
    last_report_at: Option<Stamp>,
    last_seq: Option<Seq>,
    last_measured_at: Option<Stamp>,
    usage: TagCounts,
    last_answer: Option<AuthorizationState>,
    clock_skew: bool,
}

impl Serialize for ProductInstance {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let last_answer = self.last_answer.as_ref().and_then(|a| {
            Some(AnswerOut {
                status: a.status,
                entitlements: LinesOut(a.lines(&self.usage)?),
                expires_at: a.expires_at,
                next_report_by: a.next_report_by,
            })
        });
        Out {
            id: self.id,
            account: self.account,
            va: self.va,
            udi: &self.udi,
            hostname: &self.hostname,
            product: &self.product,
            version: &self.version,
            source: self.source,
            registered_at: self.registered_at,
            order: self.order,
            token: self.token,
            export_allowed: self.export_allowed,
            cert_serial: self.cert_serial.as_deref(),
            cert_not_after: self.cert_not_after,
            last_contact: self.last_contact,
            last_report_at: self.last_report_at,
            last_seq: self.last_seq,
            last_measured_at: self.last_measured_at,
            usage: &self.usage,
            last_answer,
            clock_skew: self.clock_skew,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ProductInstance {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = In::deserialize(d)?;
        Ok(ProductInstance {
            last_answer: r.last_answer.map(|a| LastAnswer::from_owned(a, &r.usage)),
            id: r.id,
            account: r.account,
            va: r.va,
            udi: r.udi,
            hostname: r.hostname,
            product: r.product,
            version: r.version,
            source: r.source,
            registered_at: r.registered_at,
            order: r.order,
            token: r.token,
            export_allowed: r.export_allowed,
            cert_serial: r.cert_serial,
            cert_not_after: r.cert_not_after,
            last_contact: r.last_contact,
            last_report_at: r.last_report_at,
            last_seq: r.last_seq,
            last_measured_at: r.last_measured_at,
            usage: r.usage,
            clock_skew: r.clock_skew,
        })
    }
}
