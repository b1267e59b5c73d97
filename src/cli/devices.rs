//! Operator commands for product instances, compliance and alerts.

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::client::{AdminClient, query, segment};
use super::confirm::{Confirm, Decision};
use super::examples as ex;
use super::fmt::{day, stamp, udi};
use super::output::Output;
use super::table::Table;
use crate::protocol::admin::*;

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List devices (filter by account, VA subtree, status, UDI, hostname).
    #[command(after_help = ex::DEVICE_LIST)]
    List {
        /// Only devices of this account (name, domain or id).
        #[arg(long)]
        account: Option<String>,
        /// Only devices in this VA and below (`ACCOUNT/Default/...` or an id).
        #[arg(long)]
        va: Option<String>,
        /// Only devices in this state.
        #[arg(long, value_enum)]
        status: Option<DeviceStatus>,
        /// Part of the PID or serial number.
        #[arg(long)]
        udi: Option<String>,
        /// Part of the hostname.
        #[arg(long)]
        hostname: Option<String>,
        /// At most this many devices.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Show one device (by id or PID:SERIAL) with its entitlements.
    #[command(after_help = ex::DEVICE_SHOW)]
    Show {
        /// The device: its instance id, or its UDI as PID:SERIAL.
        device: String,
    },
    /// Move a device to another VA of its account.
    #[command(after_help = ex::DEVICE_MOVE)]
    Move {
        /// The device: its instance id, or its UDI as PID:SERIAL.
        device: String,
        /// The VA to move it to (`ACCOUNT/Default/...` or an id), in the same account.
        #[arg(long = "to", value_name = "VA")]
        va: String,
    },
    /// Remove (deregister) a device; its licenses return to the pool. Asks first on a
    /// terminal; give --yes in scripts.
    #[command(after_help = ex::DEVICE_REMOVE)]
    Remove {
        /// The device: its instance id, or its UDI as PID:SERIAL.
        device: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

/// The states a device can be in, as `device list --status` takes them.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Registered, no usage reported yet.
    Registered,
    /// Every entitlement it uses is covered.
    Authorized,
    /// Some entitlement it uses is not covered.
    OutOfCompliance,
    /// It has not reported for too long.
    AuthorizationExpired,
}

impl DeviceStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Registered => "registered",
            DeviceStatus::Authorized => "authorized",
            DeviceStatus::OutOfCompliance => "out_of_compliance",
            DeviceStatus::AuthorizationExpired => "authorization_expired",
        }
    }
}

fn devices_table(list: &[DeviceView]) {
    let mut t = Table::new(&[
        "DEVICE",
        "UDI",
        "HOSTNAME",
        "VIRTUAL ACCOUNT",
        "STATUS",
        "LAST CONTACT",
        "SOURCE",
    ]);
    for d in list {
        t.row(vec![
            d.id.clone(),
            udi(&d.udi_pid, &d.udi_serial),
            d.hostname.clone(),
            d.va_path.clone(),
            d.status.clone(),
            day(&d.last_contact),
            d.source.clone(),
        ]);
    }
    print!("{}", t.render());
}

pub async fn device(client: &AdminClient, out: Output, c: DeviceCommand) -> Result<()> {
    match c {
        DeviceCommand::List {
            account,
            va,
            status,
            udi,
            hostname,
            limit,
        } => {
            let q = query(&[
                ("account", account),
                ("va", va),
                ("status", status.map(|s| s.as_str().to_owned())),
                ("udi", udi),
                ("hostname", hostname),
                ("limit", Some(limit.to_string())),
            ]);
            let list: Vec<DeviceView> = client.get(&format!("/v1/devices{q}")).await?;
            out.show(&list, |l| devices_table(l))
        }
        DeviceCommand::Show { device } => {
            let d = get(client, &device).await?;
            out.show(&d, show_device)
        }
        DeviceCommand::Move { device, va } => {
            let d: DeviceView = client
                .post(
                    &format!("/v1/devices/{}/move", segment(&device)),
                    &MoveDevice { va },
                )
                .await?;
            out.show(&d, |d| {
                println!("device {} is now in {} ({})", d.id, d.va_path, d.status)
            })
        }
        DeviceCommand::Remove { device, confirm } => {
            let d = get(client, &device).await?;
            let what = format!(
                "device {} ({}, {} in {})",
                d.id,
                udi(&d.udi_pid, &d.udi_serial),
                d.hostname,
                d.va_path
            );
            if confirm.decide(&what)? == Decision::DryRun {
                let released: Vec<_> = d
                    .entitlements
                    .iter()
                    .filter(|e| e.status == "authorized")
                    .map(|e| json!({ "entitlement_tag": e.entitlement_tag, "count": e.count }))
                    .collect();
                let plan = json!({ "dry_run": true, "would_remove": d, "would_release": released });
                return out.show(&plan, |_| {
                    println!("would remove {what}; nothing was changed");
                    for e in d.entitlements.iter().filter(|e| e.status == "authorized") {
                        println!("would release {} x {}", e.count, e.entitlement_tag);
                    }
                });
            }
            let r: RemovedDevice = client
                .call(
                    hyper::Method::DELETE,
                    &format!("/v1/devices/{}", segment(&d.id)),
                    None::<&()>,
                )
                .await?;
            out.show(&r, |r| {
                println!("removed device {}", r.id);
                for l in &r.released {
                    println!("released {} x {}", l.count, l.entitlement_tag);
                }
            })
        }
    }
}

/// `GET /v1/devices/DEVICE`: one device, by instance id or `PID:SERIAL`.
async fn get(client: &AdminClient, device: &str) -> Result<DeviceView> {
    client
        .get(&format!("/v1/devices/{}", segment(device)))
        .await
}

fn show_device(d: &DeviceView) {
    let mut t = Table::new(&["", ""]);
    let mut row = |k: &str, v: String| t.row(vec![k.to_owned(), v]);
    row("device", d.id.clone());
    row("udi", udi(&d.udi_pid, &d.udi_serial));
    row("hostname", d.hostname.clone());
    row("product", format!("{} {}", d.product, d.version));
    row("virtual account", d.va_path.clone());
    row("status", d.status.clone());
    row("registered", stamp(&d.registered_at));
    row("last contact", stamp(&d.last_contact));
    row("next report by", stamp(&d.next_report_by));
    row("authorized until", stamp(&d.authorization_expires_at));
    if let Some(c) = &d.certificate_expires_at {
        row("certificate until", stamp(c));
    }
    if d.clock_skew {
        row(
            "clock skew",
            "yes (its last report's time was off by the skew limit or more)".into(),
        );
    }
    print!("{}", t.render());
    let mut t = Table::new(&["ENTITLEMENT TAG", "COUNT", "STATUS"]).right(&[1]);
    for e in &d.entitlements {
        t.row(vec![
            e.entitlement_tag.clone(),
            e.count.to_string(),
            e.status.clone(),
        ]);
    }
    print!("{}", t.render());
}

#[derive(Debug, Args)]
#[command(after_help = ex::COMPLIANCE)]
pub struct ComplianceArgs {
    /// Only this account (name, domain or id).
    #[arg(long)]
    account: Option<String>,
    /// Only this VA and below (`ACCOUNT/Default/...` or an id).
    #[arg(long)]
    va: Option<String>,
    /// Show every VA and tag, not only shortages.
    #[arg(long)]
    all: bool,
}

pub async fn compliance(client: &AdminClient, out: Output, a: ComplianceArgs) -> Result<()> {
    let q = query(&[
        ("account", a.account),
        ("va", a.va),
        ("all", a.all.then(|| "true".to_string())),
    ]);
    let list: Vec<ComplianceView> = client.get(&format!("/v1/compliance{q}")).await?;
    out.show(&list, |l| {
        if l.is_empty() {
            println!("no shortages: every device is covered by the licenses of its VA");
            return;
        }
        let mut t = Table::new(&[
            "VIRTUAL ACCOUNT",
            "ENTITLEMENT TAG",
            "PURCHASED",
            "REQUESTED",
            "GRANTED",
            "SHORT",
            "SPARE IN",
        ])
        .right(&[2, 3, 4, 5]);
        for c in l {
            let mut spare: Vec<String> = c
                .spare_in
                .iter()
                .map(|s| format!("{} ({})", s.va_path, s.spare))
                .collect();
            if c.spare_in_more > 0 {
                spare.push(format!("{} more", c.spare_in_more));
            }
            t.row(vec![
                c.va_path.clone(),
                c.entitlement_tag.clone(),
                c.purchased.to_string(),
                c.requested.to_string(),
                c.granted.to_string(),
                c.shortage.to_string(),
                if spare.is_empty() {
                    "-".into()
                } else {
                    spare.join(", ")
                },
            ]);
        }
        print!("{}", t.render());
    })
}

pub async fn alerts(client: &AdminClient, out: Output) -> Result<()> {
    let list: Vec<AlertView> = client.get("/v1/alerts").await?;
    out.show(&list, |l| {
        if l.is_empty() {
            println!("no alerts");
            return;
        }
        let mut t = Table::new(&["SEVERITY", "KIND", "MESSAGE"]);
        for a in l {
            t.row(vec![a.severity.clone(), a.kind.clone(), a.message.clone()]);
        }
        print!("{}", t.render());
    })
}
