//! Operator commands for product instances, compliance and alerts.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::client::{AdminClient, query, segment};
use super::commands::Output;
use super::table::Table;
use crate::protocol::admin::*;

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List devices (filter by account, VA subtree, status, UDI, hostname).
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        va: Option<String>,
        /// registered, authorized, out_of_compliance or authorization_expired.
        #[arg(long)]
        status: Option<String>,
        /// Part of the PID or serial number.
        #[arg(long)]
        udi: Option<String>,
        /// Part of the hostname.
        #[arg(long)]
        hostname: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Show one device (by id or PID:SERIAL) with its entitlements.
    Show { device: String },
    /// Move a device to another VA of its account.
    Move {
        device: String,
        #[arg(long = "to")]
        va: String,
    },
    /// Remove (deregister) a device; its licenses return to the pool.
    Remove { device: String },
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
            format!("{}:{}", d.udi_pid, d.udi_serial),
            d.hostname.clone(),
            d.va_path.clone(),
            d.status.clone(),
            d.last_contact.date().to_string(),
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
                ("status", status),
                ("udi", udi),
                ("hostname", hostname),
                ("limit", Some(limit.to_string())),
            ]);
            let list: Vec<DeviceView> = client.get(&format!("/v1/devices{q}")).await?;
            out.show(&list, |l| devices_table(l))
        }
        DeviceCommand::Show { device } => {
            let d: DeviceView = client
                .get(&format!("/v1/devices/{}", segment(&device)))
                .await?;
            out.show(&d, |d| {
                println!("device             {}", d.id);
                println!("udi                {}:{}", d.udi_pid, d.udi_serial);
                println!("hostname           {}", d.hostname);
                println!("product            {} {}", d.product, d.version);
                println!("virtual account    {}", d.va_path);
                println!("status             {}", d.status);
                println!("registered         {}", d.registered_at);
                println!("last contact       {}", d.last_contact);
                println!("next report by     {}", d.next_report_by);
                println!("authorization until {}", d.authorization_expires_at);
                if let Some(c) = d.certificate_expires_at {
                    println!("certificate until  {c}");
                }
                if d.clock_skew {
                    println!("clock skew         yes (its last report's time was off by the skew limit or more)");
                }
                let mut t = Table::new(&["ENTITLEMENT TAG", "COUNT", "STATUS"]).right(&[1]);
                for e in &d.entitlements {
                    t.row(vec![e.entitlement_tag.clone(), e.count.to_string(), e.status.clone()]);
                }
                print!("{}", t.render());
            })
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
        DeviceCommand::Remove { device } => {
            let r: RemovedDevice = client
                .call(
                    hyper::Method::DELETE,
                    &format!("/v1/devices/{}", segment(&device)),
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

#[derive(Debug, Args)]
pub struct ComplianceArgs {
    #[arg(long)]
    account: Option<String>,
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
            let spare: Vec<String> = c
                .spare_in
                .iter()
                .map(|s| format!("{} ({})", s.va_path, s.spare))
                .collect();
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
