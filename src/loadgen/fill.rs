//! `satellite loadgen fill`: writes a large, valid store directly (offline), for the scale
//! measurement of SPEC §10 (`benches/scale.sh`, `docs/benchmarks.md` "Scale").
//!
//! One account `scale` (domain `scale.example`) whose Default VA has `vas` descendants (fan-out
//! 10, so depth ≤ 4 for 1,000 VAs), one perpetual license entry per VA and tag, and `devices`
//! product instances spread evenly-at-random over the VAs, each using 1–3 tags (1–2 units each)
//! with a last report and the `last_answer` that report would have got: allocation in
//! registration order against the VA's pool. Every `oversubscribed_every`-th VA (default 10) is
//! over-subscribed (quantity ¾ of its use) so compliance has shortages to walk. Devices carry no identity certificate.
//!
//! Records go through the store's ordinary codec in large batches (`BATCH` records per
//! `commit_blocking`), so the daemon loads them exactly as it loads its own. The fill is
//! deterministic for a given `seed` (identifiers included).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::domain::{
    Account, AccountId, AccountStatus, AuthorizationState, DEFAULT_VA_NAME, DeviceTimers,
    EntitlementStatus, Event, InstanceId, InstanceSource, InstanceStatus, LastAnswer, License,
    LicenseId, LicenseKind, LicenseSource, ProductInstance, Udi, VaId, VirtualAccount,
};
use crate::store::{Batch, Record, Store, StoreError, tables};

/// Records per store batch (one `commit_blocking` each).
pub const BATCH: usize = 10_000;
/// Children per VA in the generated tree.
const FAN_OUT: usize = 10;

/// What to write where.
#[derive(Debug, Clone)]
pub struct FillOptions {
    /// The store directory (`DATA_DIR/store`).
    pub store_dir: PathBuf,
    pub devices: usize,
    /// VAs besides the Default VA.
    pub vas: usize,
    pub tags: usize,
    pub seed: u64,
    /// Every Nth VA's pools are over-subscribed (quantity ¾ of use); 0 for none.
    pub oversubscribed_every: usize,
    /// Progress on stderr: `Some(true)` rewrites one line (`\r`, a terminal), `Some(false)`
    /// prints a line every 10%, `None` is silent.
    pub progress: Option<bool>,
    /// The time the records are written "as of".
    pub now: OffsetDateTime,
}

/// What the fill wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FillSummary {
    pub account: String,
    pub vas: usize,
    pub licenses: usize,
    pub devices: usize,
    pub out_of_compliance_devices: usize,
    pub seconds: f64,
    pub devices_per_second: f64,
    pub store_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The account name the fill creates.
pub const ACCOUNT_NAME: &str = "scale";

/// splitmix64: small, fast, deterministic; good enough to spread records.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// One device's placement, derived from the seed and its index alone (so both passes agree).
struct Placement {
    va: usize,
    /// (tag index, units), distinct tags.
    usage: Vec<(usize, u64)>,
    rng: Rng,
}

fn place(seed: u64, i: usize, vas: usize, tags: usize) -> Placement {
    let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0xA076_1D64_78BD_642F));
    let va = rng.below(vas);
    let n = 1 + rng.below(3.min(tags));
    let mut usage: Vec<(usize, u64)> = Vec::with_capacity(n);
    while usage.len() < n {
        let tag = rng.below(tags);
        if usage.iter().all(|(t, _)| *t != tag) {
            usage.push((tag, 1 + rng.below(2) as u64));
        }
    }
    Placement { va, usage, rng }
}

fn tag_name(t: usize) -> String {
    format!("scale_tag_{t:03}")
}

struct Progress {
    mode: Option<bool>,
    total: usize,
    started: Instant,
    last_decile: usize,
}

impl Progress {
    fn show(&mut self, done: usize) {
        let Some(terminal) = self.mode else { return };
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let pct = (done * 100).checked_div(self.total).unwrap_or(100);
        let mut err = std::io::stderr().lock();
        if terminal {
            let _ = write!(
                err,
                "\rfill: {done}/{} devices ({pct}%), {rate:.0}/s   ",
                self.total
            );
            let _ = err.flush();
        } else if pct / 10 > self.last_decile || done == self.total {
            self.last_decile = pct / 10;
            let _ = writeln!(
                err,
                "fill: {done}/{} devices ({pct}%), {rate:.0}/s",
                self.total
            );
        }
    }
    fn finish(&self) {
        if self.mode == Some(true) {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Fills an empty store. Refuses a store that already holds an account, VA, license or device.
/// Blocking: call it off any async runtime.
pub fn fill(options: &FillOptions) -> Result<FillSummary, FillError> {
    let FillOptions {
        devices,
        vas,
        tags,
        seed,
        now,
        ..
    } = *options;
    if vas == 0 || tags == 0 {
        return Err(FillError::Invalid(
            "--vas and --tags must be at least 1".into(),
        ));
    }
    let started = Instant::now();
    let store = Store::open(&options.store_dir, tables::TABLES)?;
    if store.last_key::<Account>()?.is_some()
        || store.last_key::<VirtualAccount>()?.is_some()
        || store.last_key::<License>()?.is_some()
        || store.last_key::<ProductInstance>()?.is_some()
        || store.last_key::<Event>()?.is_some()
    {
        return Err(FillError::Invalid(format!(
            "the store in {} is not empty; fill a new data directory",
            options.store_dir.display()
        )));
    }
    let mut w = Writer {
        store: &store,
        batch: Batch::new(),
    };
    let mut ids = Rng::new(seed);
    let tree = put_tree(&mut w, &mut ids, vas, now)?;
    let quantity = license_quantities(options);
    put_licenses(&mut w, &mut ids, &tree, &quantity, tags)?;
    let mut progress = Progress {
        mode: options.progress,
        total: devices,
        started: Instant::now(),
        last_decile: 0,
    };
    let out_of_compliance = put_devices(&mut w, options, &tree, &quantity, &mut progress)?;
    w.batch.put(&filled_event(options, tree.account));
    store.commit_blocking(w.batch)?;
    progress.show(devices);
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    Ok(FillSummary {
        account: ACCOUNT_NAME.into(),
        vas: vas + 1,
        licenses: vas * tags,
        devices,
        out_of_compliance_devices: out_of_compliance,
        seconds,
        devices_per_second: devices as f64 / seconds.max(1e-9),
        store_bytes: store.size_on_disk().unwrap_or(0),
    })
}

/// Collects records into batches of [`BATCH`], each committed as it fills.
struct Writer<'a> {
    store: &'a Store,
    batch: Batch,
}

impl Writer<'_> {
    /// Adds a record; commits the batch when it is full and says so.
    fn put<R: Record>(&mut self, record: &R) -> Result<bool, StoreError> {
        self.batch.put(record);
        if self.batch.len() < BATCH {
            return Ok(false);
        }
        self.store
            .commit_blocking(std::mem::take(&mut self.batch))?;
        Ok(true)
    }
}

/// The account and its VAs, as the later passes refer to them.
struct Tree {
    account: AccountId,
    /// The VAs below the Default VA, `va-0001` first.
    vas: Vec<VaId>,
    created: OffsetDateTime,
}

/// The account, its Default VA and the tree of `vas` VAs below it.
fn put_tree(
    w: &mut Writer<'_>,
    ids: &mut Rng,
    vas: usize,
    now: OffsetDateTime,
) -> Result<Tree, StoreError> {
    let account_id = AccountId(ids.uuid());
    let default_va = VaId(ids.uuid());
    let created = now - Duration::days(60);
    w.put(&Account {
        id: account_id,
        name: ACCOUNT_NAME.into(),
        domain: "scale.example".into(),
        status: AccountStatus::Active,
        created_at: created,
        default_va,
    })?;
    w.put(&VirtualAccount {
        id: default_va,
        account: account_id,
        name: DEFAULT_VA_NAME.into(),
        description: String::new(),
        parent: None,
        created_at: created,
    })?;
    let mut va_ids = Vec::with_capacity(vas);
    for n in 1..=vas {
        // Node n (1-based) hangs under node (n-1)/FAN_OUT; node 0 is the Default VA.
        let parent = match (n - 1) / FAN_OUT {
            0 => default_va,
            p => va_ids[p - 1],
        };
        let id = VaId(ids.uuid());
        va_ids.push(id);
        w.put(&VirtualAccount {
            id,
            account: account_id,
            name: format!("va-{n:04}"),
            description: "scale fill".into(),
            parent: Some(parent),
            created_at: created,
        })?;
    }
    Ok(Tree {
        account: account_id,
        vas: va_ids,
        created,
    })
}

/// Pass 1: what each (VA, tag) pool is used for, to size its license (index `va * tags + tag`):
/// half as much again, or ¾ of the use in every `oversubscribed_every`-th VA.
fn license_quantities(options: &FillOptions) -> Vec<u64> {
    let FillOptions {
        devices,
        vas,
        tags,
        seed,
        oversubscribed_every,
        ..
    } = *options;
    let mut used = vec![0u64; vas * tags];
    for i in 0..devices {
        let p = place(seed, i, vas, tags);
        for (t, units) in &p.usage {
            used[p.va * tags + t] += units;
        }
    }
    used.iter()
        .enumerate()
        .map(|(k, &u)| {
            if oversubscribed_every > 0
                && (k / tags) % oversubscribed_every == oversubscribed_every - 1
            {
                (u * 3 / 4).max(1)
            } else {
                u + u / 2 + 1
            }
        })
        .collect()
}

/// One perpetual license entry per VA and tag.
fn put_licenses(
    w: &mut Writer<'_>,
    ids: &mut Rng,
    tree: &Tree,
    quantity: &[u64],
    tags: usize,
) -> Result<(), StoreError> {
    for (k, &q) in quantity.iter().enumerate() {
        let (va, t) = (k / tags, k % tags);
        w.put(&License {
            id: LicenseId(ids.uuid()),
            account: tree.account,
            va: tree.vas[va],
            entitlement_tag: tag_name(t),
            display_name: format!("Scale tag {t}"),
            quantity: q,
            kind: LicenseKind::Perpetual,
            export_controlled: false,
            source: LicenseSource::Manual,
            order_ref: Some(format!("SO-{k:07}")),
            labels: Default::default(),
            created_at: tree.created,
        })?;
    }
    Ok(())
}

/// Pass 2: the devices, in registration order, allocated as the domain would. Returns how many
/// are out of compliance.
fn put_devices(
    w: &mut Writer<'_>,
    options: &FillOptions,
    tree: &Tree,
    quantity: &[u64],
    progress: &mut Progress,
) -> Result<usize, StoreError> {
    let FillOptions {
        devices,
        vas,
        tags,
        seed,
        ..
    } = *options;
    let mut allocated = vec![0u64; vas * tags];
    let mut out_of_compliance = 0;
    for i in 0..devices {
        let p = place(seed, i, vas, tags);
        let device = device_record(options, tree, i, p, quantity, &mut allocated);
        if device.last_answer.as_ref().map(|a| a.status) == Some(InstanceStatus::OutOfCompliance) {
            out_of_compliance += 1;
        }
        if w.put(&device)? {
            progress.show(i + 1);
        }
    }
    Ok(out_of_compliance)
}

/// Device `i` as it would be after its last report: registered over the last 30 days, last
/// reporting within the last week, and its tags allocated against the pools (`allocated`
/// counts what earlier devices took).
fn device_record(
    options: &FillOptions,
    tree: &Tree,
    i: usize,
    mut p: Placement,
    quantity: &[u64],
    allocated: &mut [u64],
) -> ProductInstance {
    let (devices, tags, now) = (options.devices, options.tags, options.now);
    let timers = DeviceTimers::default();
    let span = Duration::days(30);
    let registered_at = now - span + (span * i as f64 / devices.max(1) as f64);
    let age = Duration::seconds(p.rng.below(7 * 86_400) as i64);
    let last_report = (now - age).max(registered_at);
    let mut usage = crate::domain::TagCounts::new();
    let mut entitlements = Vec::with_capacity(p.usage.len());
    p.usage.sort_unstable();
    for &(t, units) in &p.usage {
        let k = p.va * tags + t;
        allocated[k] += units;
        let status = if allocated[k] <= quantity[k] {
            EntitlementStatus::Authorized
        } else {
            EntitlementStatus::OutOfCompliance
        };
        usage.insert(tag_name(t), units);
        entitlements.push((tag_name(t).into(), units, status));
    }
    let status = if entitlements
        .iter()
        .all(|(_, _, s)| *s == EntitlementStatus::Authorized)
    {
        InstanceStatus::Authorized
    } else {
        InstanceStatus::OutOfCompliance
    };
    let last_answer = LastAnswer::from_owned(
        AuthorizationState {
            status,
            entitlements,
            expires_at: last_report + timers.authorization_valid,
            next_report_by: last_report + timers.report_interval,
        },
        &usage,
    );
    ProductInstance {
        id: InstanceId(p.rng.uuid()),
        account: tree.account,
        va: tree.vas[p.va],
        udi: Udi {
            pid: format!("SCALE-{}", i % 20).into(),
            serial: format!("SN{i:09}").into(),
        },
        hostname: format!("dev-{i}").into(),
        product: "scale-sim".into(),
        version: "1.0".into(),
        source: InstanceSource::Native,
        registered_at: registered_at.into(),
        order: i as u64,
        token: None,
        export_allowed: false,
        cert_serial: None,
        cert_not_after: None,
        last_contact: last_report.into(),
        last_report_at: Some(last_report.into()),
        last_seq: Some((1 + p.rng.below(1000) as u64).into()),
        last_measured_at: Some(last_report.into()),
        usage,
        last_answer: Some(last_answer),
        clock_skew: false,
    }
}

/// The one event of a fill, so the audit log says where the records came from.
fn filled_event(options: &FillOptions, account: AccountId) -> Event {
    Event {
        seq: 1,
        at: options.now,
        actor: "loadgen".into(),
        action: "store.filled".into(),
        subject: ACCOUNT_NAME.into(),
        account: Some(account),
        va: None,
        device: None,
        details: vec![
            ("devices".into(), options.devices.to_string()),
            ("vas".into(), options.vas.to_string()),
            ("tags".into(), options.tags.to_string()),
            ("seed".into(), options.seed.to_string()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::app::{App, SystemClock};

    #[test]
    fn a_small_fill_loads_and_refuses_a_second_fill() {
        let dir = tempfile::tempdir().unwrap();
        let options = FillOptions {
            store_dir: dir.path().join("store"),
            devices: 200,
            vas: 30,
            tags: 5,
            seed: 7,
            oversubscribed_every: 10,
            progress: None,
            now: OffsetDateTime::now_utc(),
        };
        let summary = fill(&options).unwrap();
        assert_eq!(summary.devices, 200);
        assert!(summary.out_of_compliance_devices > 0);
        {
            let store = Store::open(&options.store_dir, tables::TABLES).unwrap();
            assert_eq!(store.count::<ProductInstance>().unwrap(), 200);
            assert_eq!(store.count::<VirtualAccount>().unwrap(), 31);
            assert_eq!(store.count::<License>().unwrap(), 150);
            let app = App::load(store, Arc::new(SystemClock), DeviceTimers::default()).unwrap();
            assert!(app.unreadable().is_empty());
            // Every stored answer is the one the catalog computes now.
            let timers = DeviceTimers::default();
            app.read(|c| {
                let mut checked = 0;
                for i in c.instances() {
                    let fresh = c.authorization(i, i.last_report_at.unwrap().into(), &timers);
                    let stored = i.answer().unwrap();
                    assert_eq!(fresh.entitlements, stored.entitlements, "{}", i.udi);
                    assert_eq!(fresh.status, stored.status);
                    checked += 1;
                }
                assert_eq!(checked, 200);
            });
        }
        let err = fill(&options).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }
}
