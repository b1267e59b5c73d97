//! The figures computed at each scrape: devices by state, licenses per VA and tag, shortages
//! per account, alerts, certificates, the store, sync, the build and the process.
//!
//! **Cardinality** is bounded by what operators create, never by what devices send: license
//! series exist per (VA, tag) that holds at least one license entry (a pool with spare units
//! included), while usage of tags a VA holds no license for (any string a device reports) is
//! only counted in per-account totals. `docs/observability.md` gives the series count.

use std::collections::{BTreeMap, HashMap};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use time::{Duration, OffsetDateTime};

use super::process::Process;
use crate::app::App;
use crate::domain::{AlertInputs, Catalog, LicenseKind, VaId};

/// License units count as expiring when their term ends within this window.
const EXPIRING_WITHIN: Duration = Duration::days(30);

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The labels of a license series: `account`, `va` (unless per account) and `entitlement_tag`.
type PoolLabels = Vec<(&'static str, String)>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

/// How finely license series are broken down (`/metrics?licenses=va|account`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LicenseDetail {
    /// Per VA and tag with license entries (the default).
    Va,
    /// Per account and tag: for satellites with so many VAs that per-VA series would be too
    /// many (`docs/observability.md`, "Series").
    Account,
}

/// The units of one (VA, tag) with license entries, or their sum over an account.
#[derive(Default)]
struct Pool {
    purchased: u64,
    in_use: u64,
    expiring: u64,
}

/// Per account: units asked for and not granted, and those of tags without licenses.
#[derive(Default)]
struct AccountFigures {
    shortage: u64,
    unlicensed: u64,
}

/// The `satellite_*` registry and the standard `process_*` one.
pub(super) fn registries(
    app: &App,
    (sync, cisco): (
        Option<&crate::sync::SyncEngine>,
        Option<&crate::cisco::Poller>,
    ),
    certificates: &AlertInputs,
    alerts: &BTreeMap<(&'static str, &'static str), i64>,
    detail: LicenseDetail,
) -> (Registry, Registry) {
    let now = app.now();
    let timers = app.timers();
    let (by_state, (pools, accounts)) = app.read(|c| {
        let by_state: Vec<(&'static str, i64)> = c
            .device_states(now, &timers)
            .into_iter()
            .map(|(s, n)| (s.as_str(), n as i64))
            .collect();
        (by_state, licenses(c, now, detail))
    });
    let mut reg = Registry::with_prefix("satellite");
    let build = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    build
        .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))])
        .set(1);
    reg.register(
        "build_info",
        "The running satellite's version (always 1)",
        build,
    );
    let devices = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    for (state, n) in by_state {
        devices.get_or_create(&vec![("state", state)]).set(n);
    }
    reg.register("devices", "Registered devices by state", devices);
    register_licenses(&mut reg, pools, accounts);
    let by_kind = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    for ((kind, severity), n) in alerts {
        by_kind
            .get_or_create(&vec![("kind", *kind), ("severity", *severity)])
            .set(*n);
    }
    reg.register(
        "alerts",
        "Alerts holding after the last round of the alerts worker, by kind and severity \
         (`satellite alerts` lists them)",
        by_kind,
    );
    let expiry = Family::<Vec<(&'static str, &'static str)>, FloatGauge>::default();
    for (name, at) in [
        ("device_ca", certificates.ca_not_after),
        ("server", certificates.server_cert_not_after),
    ] {
        if let Some(at) = at {
            expiry
                .get_or_create(&vec![("certificate", name)])
                .set(at.unix_timestamp() as f64);
        }
    }
    reg.register(
        "certificate_expiry_timestamp_seconds",
        "When the device CA and the server certificate the satellite started with expire",
        expiry,
    );
    register_store(&mut reg, app);
    if let Some(sync) = sync {
        register_sync(&mut reg, app, sync, now);
    }
    if let Some(cisco) = cisco {
        register_cisco(&mut reg, cisco);
    }
    (reg, process_registry())
}

/// License figures per (VA, tag) with entries (or per account and tag), and totals per
/// account.
fn licenses(
    c: &Catalog,
    now: OffsetDateTime,
    detail: LicenseDetail,
) -> (BTreeMap<PoolLabels, Pool>, BTreeMap<String, AccountFigures>) {
    let mut in_use: HashMap<VaId, Vec<String>> = HashMap::new();
    for (va, tag) in c.pool_keys() {
        in_use.entry(va).or_default().push(tag);
    }
    let (mut pools, mut accounts) = (BTreeMap::new(), BTreeMap::new());
    for account in c.accounts() {
        let figures: &mut AccountFigures = accounts.entry(account.name.clone()).or_default();
        for va in c.subtree(account.default_va) {
            let mut licensed: BTreeMap<&str, u64> = BTreeMap::new();
            for l in c.licenses_in(va) {
                let expiring = licensed.entry(l.entitlement_tag.as_str()).or_default();
                if let LicenseKind::Term { end, .. } = l.kind
                    && l.is_valid_at(now)
                    && end - now <= EXPIRING_WITHIN
                {
                    *expiring = expiring.saturating_add(l.quantity);
                }
            }
            let path = (detail == LicenseDetail::Va && !licensed.is_empty()).then(|| c.va_path(va));
            for (tag, expiring) in &licensed {
                let (granted, requested, _) = c.granted(va, tag, now);
                figures.shortage += requested.saturating_sub(granted);
                let mut labels = vec![("account", account.name.clone())];
                labels.extend(path.clone().map(|p| ("va", p)));
                labels.push(("entitlement_tag", tag.to_string()));
                let pool: &mut Pool = pools.entry(labels).or_default();
                pool.purchased = pool.purchased.saturating_add(c.available(va, tag, now));
                pool.in_use = pool.in_use.saturating_add(granted);
                pool.expiring = pool.expiring.saturating_add(*expiring);
            }
            for tag in in_use.get(&va).into_iter().flatten() {
                if !licensed.contains_key(tag.as_str()) {
                    let (granted, requested, _) = c.granted(va, tag, now);
                    figures.shortage += requested.saturating_sub(granted);
                    figures.unlicensed += requested;
                }
            }
        }
    }
    (pools, accounts)
}

fn register_licenses(
    reg: &mut Registry,
    pools: BTreeMap<PoolLabels, Pool>,
    accounts: BTreeMap<String, AccountFigures>,
) {
    let gauge = |n: u64| n.min(i64::MAX as u64) as i64;
    let purchased = Family::<PoolLabels, Gauge>::default();
    let in_use = Family::<PoolLabels, Gauge>::default();
    let expiring = Family::<PoolLabels, Gauge>::default();
    for (labels, p) in pools {
        purchased.get_or_create(&labels).set(gauge(p.purchased));
        in_use.get_or_create(&labels).set(gauge(p.in_use));
        if p.expiring > 0 {
            expiring.get_or_create(&labels).set(gauge(p.expiring));
        }
    }
    reg.register(
        "licenses_purchased",
        "License units valid now, per VA (or account) and tag with license entries",
        purchased,
    );
    reg.register(
        "licenses_in_use",
        "License units granted to devices and reservations, per VA (or account) and tag with \
         license entries",
        in_use,
    );
    reg.register(
        "licenses_expiring_30d",
        "License units valid now whose term ends within 30 days, per VA (or account) and tag \
         (only where some do)",
        expiring,
    );
    let shortage = Family::<AccountLabels, Gauge>::default();
    let unlicensed = Family::<AccountLabels, Gauge>::default();
    for (account, f) in accounts {
        let labels = AccountLabels { account };
        shortage.get_or_create(&labels).set(gauge(f.shortage));
        unlicensed.get_or_create(&labels).set(gauge(f.unlicensed));
    }
    reg.register(
        "license_shortage_units",
        "Units devices and reservations ask for but are not granted, per account (every VA and \
         tag, tags without licenses included)",
        shortage,
    );
    reg.register(
        "unlicensed_units",
        "Units devices ask for of tags their VA holds no license entry for, per account",
        unlicensed,
    );
}

fn register_store(reg: &mut Registry, app: &App) {
    let store = app.store_health();
    let writable = Gauge::<i64>::default();
    writable.set(i64::from(store.failure.is_none()));
    reg.register(
        "store_writable",
        "1 while the store accepts writes, 0 after a failed flush (restart the satellite)",
        writable,
    );
    let size = Gauge::<i64>::default();
    size.set(store.bytes.unwrap_or(0) as i64);
    reg.register("store_bytes", "Size of the store on disk", size);
    let flushes = Counter::<u64>::default();
    flushes.inc_by(store.flushes);
    reg.register("store_flushes", "Store flushes (group commits)", flushes);
    let flush_secs = Counter::<f64>::default();
    flush_secs.inc_by(store.flush_micros as f64 / 1e6);
    reg.register(
        "store_flush_seconds",
        "Time spent flushing the store",
        flush_secs,
    );
    let flush_max = FloatGauge::default();
    flush_max.set(store.flush_max_micros as f64 / 1e6);
    reg.register(
        "store_flush_max_seconds",
        "Longest store flush since start",
        flush_max,
    );
    let commits = Counter::<u64>::default();
    commits.inc_by(store.commits);
    reg.register("store_commits", "Store transactions committed", commits);
    let checkpoints = Counter::<u64>::default();
    checkpoints.inc_by(store.checkpoints);
    reg.register(
        "store_checkpoints",
        "Store checkpoints (sled flushed and synced, the journal emptied)",
        checkpoints,
    );
    let journal = Gauge::<i64>::default();
    journal.set(i64::try_from(store.journal_bytes).unwrap_or(i64::MAX));
    reg.register(
        "store_journal_bytes",
        "Journal written since the last checkpoint: what a start after a crash replays",
        journal,
    );
}

/// Cisco pull mode: polls since start by outcome (labels from a fixed list, never from a
/// device), and the devices whose last poll could not reach, trust or log in to them.
fn register_cisco(reg: &mut Registry, poller: &crate::cisco::Poller) {
    let polls = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
    for (outcome, n) in poller.poll_counts() {
        polls.get_or_create(&vec![("outcome", outcome)]).inc_by(n);
    }
    reg.register(
        "cisco_polls",
        "Polls of Cisco devices (pull mode) since the satellite started, by outcome",
        polls,
    );
    let unreachable = Gauge::<i64>::default();
    unreachable.set(poller.unreachable_devices().len() as i64);
    reg.register(
        "cisco_devices_unreachable",
        "Cisco devices whose last poll could not reach the device, trust it or log in",
        unreachable,
    );
}

/// Only on a satellite bound to an upstream: seconds since the last successful sync (since
/// binding if none yet), and failures since the last success.
fn register_sync(
    reg: &mut Registry,
    app: &App,
    sync: &crate::sync::SyncEngine,
    now: OffsetDateTime,
) {
    let Some(bound) = app.read(|c| c.upstream_binding().cloned()) else {
        return;
    };
    let status = sync.status();
    let since = status
        .last_success
        .or(bound.last_success)
        .unwrap_or(bound.bound_at);
    let age = FloatGauge::default();
    age.set((now - since).as_seconds_f64().max(0.0));
    reg.register(
        "sync_age_seconds",
        "Seconds since the last successful sync with the upstream",
        age,
    );
    let failures = Gauge::<i64>::default();
    failures.set(i64::from(status.failures));
    reg.register(
        "sync_failures",
        "Failed sync attempts since the last success",
        failures,
    );
}

/// The standard process metrics, unprefixed as every client library names them.
fn process_registry() -> Registry {
    let mut reg = Registry::default();
    let p = Process::read();
    let int = |reg: &mut Registry, name: &str, help: &str, v: Option<u64>| {
        if let Some(v) = v {
            let g = Gauge::<i64>::default();
            g.set(v.min(i64::MAX as u64) as i64);
            reg.register(name, help, g);
        }
    };
    int(
        &mut reg,
        "process_resident_memory_bytes",
        "Resident memory size in bytes",
        p.resident_bytes,
    );
    int(
        &mut reg,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes",
        p.virtual_bytes,
    );
    int(
        &mut reg,
        "process_open_fds",
        "Number of open file descriptors",
        p.open_fds,
    );
    int(
        &mut reg,
        "process_max_fds",
        "Maximum number of open file descriptors",
        p.max_fds,
    );
    if let Some(cpu) = p.cpu_seconds {
        let c = Counter::<f64>::default();
        c.inc_by(cpu);
        reg.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            c,
        );
    }
    if let Some(start) = p.start_time {
        let g = FloatGauge::default();
        g.set(start);
        reg.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            g,
        );
    }
    reg
}
