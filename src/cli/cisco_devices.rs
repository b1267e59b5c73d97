//! `satellite cisco device add|list|show|remove` and `satellite cisco poll`: the Cisco devices
//! the satellite polls for RUM reports (pull mode, docs/cisco.md). The password is read from a
//! terminal with echo off, or from standard input with `--password-stdin`; it never appears in
//! arguments, the environment or any output.

use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::client::{AdminClient, query, segment};
use super::confirm::{Confirm, Decision};
use super::errors::CliError;
use super::fmt::stamp_or_dash;
use super::output::Output;
use super::table::Table;
use crate::protocol::admin::{AddCiscoDevice, CiscoDeviceView, CiscoPollView, PollCisco};

macro_rules! examples {
    ($($line:literal),+ $(,)?) => {
        concat!("Examples:", $("\n  ", $line),+)
    };
}

const DEVICE: &str = examples!(
    "satellite cisco device add edge-1 --va acme/Default --address 10.0.0.5 --user slp --fingerprint 3f..a1",
    "satellite cisco device list",
    "satellite cisco device show edge-1",
);
const ADD: &str = examples!(
    "satellite cisco device add edge-1 --va acme/Default --address 10.0.0.5 --user slp --ca device-ca.pem",
    "printf '%s\\n' \"$PW\" | satellite cisco device add edge-2 --va acme/Default --address r2:8443 --user slp --password-stdin --fingerprint 3f..a1",
);
const LIST: &str = examples!(
    "satellite cisco device list",
    "satellite cisco device list --va acme/Default/lab --json",
);
const SHOW: &str = examples!(
    "satellite cisco device show edge-1",
    "satellite cisco device show edge-1 --json"
);
const REMOVE: &str = examples!("satellite cisco device remove edge-1 --yes");
pub const POLL: &str = examples!(
    "satellite cisco poll            # every device you may change, now",
    "satellite cisco poll edge-1 --json",
);

/// `satellite cisco device ...`.
#[derive(Debug, Subcommand)]
#[command(after_help = DEVICE)]
pub enum CiscoDeviceCmd {
    /// Add a device to poll over its Smart Licensing REST API (HTTPS, Basic authentication).
    /// Trust is explicit: give the CA that signed its certificate or its SHA-256 fingerprint.
    #[command(after_help = ADD)]
    Add {
        /// A label for the device, unique in its account (letters, digits, `-`, `_`, `.`).
        name: String,
        /// The VA whose operators manage the device (id or ACCOUNT/Default/...).
        #[arg(long)]
        va: String,
        /// The device's HTTPS server: HOST or HOST:PORT.
        #[arg(long, value_name = "HOST[:PORT]")]
        address: String,
        /// The local user on the device (privilege 15).
        #[arg(long, value_name = "USER")]
        user: String,
        /// Read the password from one line of standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        /// The CA certificate (PEM) that signed the device's HTTPS certificate.
        #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
        ca: Option<PathBuf>,
        /// The SHA-256 fingerprint of the device's certificate (64 hex digits, `:` allowed).
        #[arg(long, value_name = "SHA256HEX")]
        fingerprint: Option<String>,
    },
    /// List the polled devices with their last poll and status.
    #[command(after_help = LIST)]
    List {
        /// Only devices of this VA.
        #[arg(long)]
        va: Option<String>,
    },
    /// Show one device: trust, status, last error, next poll.
    #[command(after_help = SHOW)]
    Show {
        /// The device's name or id.
        device: String,
    },
    /// Stop polling a device and forget its credentials (devices learned from it stay).
    #[command(after_help = REMOVE)]
    Remove {
        /// The device's name or id.
        device: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

pub async fn device(client: &AdminClient, out: Output, cmd: CiscoDeviceCmd) -> Result<()> {
    match cmd {
        CiscoDeviceCmd::Add {
            name,
            va,
            address,
            user,
            password_stdin,
            ca,
            fingerprint,
        } => {
            let ca_pem = match &ca {
                Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the CA certificate {}", path.display())
                })?),
                None => None,
            };
            if ca_pem.is_none() && fingerprint.is_none() {
                return Err(CliError::refused(
                    "invalid_request",
                    "trust is explicit: give the CA that signed the device's certificate \
                     (--ca FILE) or the SHA-256 fingerprint of its certificate (--fingerprint \
                     HEX); the satellite never accepts any certificate",
                )
                .into());
            }
            let password = read_password(&name, password_stdin)?;
            let body = AddCiscoDevice {
                name,
                va,
                address,
                username: user,
                password,
                ca_pem,
                fingerprint,
            };
            let d: CiscoDeviceView = client.post("/v1/cisco/devices", &body).await?;
            out.show(&d, |d| {
                println!(
                    "added Cisco device {} ({}, {}), polled with user {}; the password is sealed \
                     and never shown again",
                    d.name, d.address, d.va_path, d.username
                )
            })
        }
        CiscoDeviceCmd::List { va } => {
            let list: Vec<CiscoDeviceView> = client
                .get(&format!("/v1/cisco/devices{}", query(&[("va", va)])))
                .await?;
            out.show(&list, |list| print_list(list))
        }
        CiscoDeviceCmd::Show { device } => {
            let d = get(client, &device).await?;
            out.show(&d, print_one)
        }
        CiscoDeviceCmd::Remove { device, confirm } => {
            let d = get(client, &device).await?;
            let what = format!("Cisco device {} ({}, {})", d.name, d.address, d.va_path);
            if confirm.decide(&what)? == Decision::DryRun {
                return out.show(&d, |d| println!("would remove Cisco device {}", d.name));
            }
            let path = format!("/v1/cisco/devices/{}", segment(&d.id));
            let r: CiscoDeviceView = client
                .call(hyper::Method::DELETE, &path, None::<&()>)
                .await?;
            out.show(&r, |r| println!("removed Cisco device {}", r.name))
        }
    }
}

/// `satellite cisco poll [DEVICE]`: polls now and prints each outcome; fails when any poll did.
pub async fn poll(client: &AdminClient, out: Output, device: Option<String>) -> Result<()> {
    let list: Vec<CiscoPollView> = client.post("/v1/cisco/poll", &PollCisco { device }).await?;
    let failed = list.iter().filter(|o| o.outcome != "ok").count();
    out.show(&list, |list| {
        if list.is_empty() {
            println!("no Cisco devices to poll");
        }
        for o in list {
            match &o.error {
                None => {
                    println!(
                        "{}: ok, {} new report(s), {} seen before, {} held by the device",
                        o.device, o.accepted, o.duplicates, o.held
                    );
                    if o.acks_delivered + o.acks_failed > 0 {
                        println!(
                            "{}: {} ACK file(s) imported into the device, {} not taken \
                             (tried again at the next poll)",
                            o.device, o.acks_delivered, o.acks_failed
                        );
                    }
                }
                Some(e) => println!("{}: {}: {e}", o.device, o.outcome),
            }
        }
    })?;
    if failed > 0 {
        bail!("{failed} of {} poll(s) failed", list.len());
    }
    Ok(())
}

async fn get(client: &AdminClient, device: &str) -> Result<CiscoDeviceView> {
    client
        .get(&format!("/v1/cisco/devices/{}", segment(device)))
        .await
}

fn print_list(list: &[CiscoDeviceView]) {
    if list.is_empty() {
        println!("no Cisco devices; add one with `satellite cisco device add`");
        return;
    }
    let mut t =
        Table::new(&["NAME", "VA", "ADDRESS", "LAST POLL", "STATUS", "REPORTS"]).right(&[5]);
    for d in list {
        t.row(vec![
            d.name.clone(),
            d.va_path.clone(),
            d.address.clone(),
            stamp_or_dash(d.last_poll.as_ref()),
            d.status.clone(),
            d.reports_held.map_or_else(|| "-".into(), |n| n.to_string()),
        ]);
    }
    print!("{}", t.render());
}

fn print_one(d: &CiscoDeviceView) {
    let mut t = Table::new(&[]);
    let mut row = |k: &str, v: String| t.row(vec![k.to_string(), v]);
    row("name", d.name.clone());
    row("id", d.id.clone());
    row("VA", d.va_path.clone());
    row("address", d.address.clone());
    row("user", d.username.clone());
    row(
        "trust",
        match &d.fingerprint {
            Some(fp) => format!("fingerprint {fp}"),
            None => "CA".into(),
        },
    );
    row("status", d.status.clone());
    row("last poll", stamp_or_dash(d.last_poll.as_ref()));
    row("last success", stamp_or_dash(d.last_success.as_ref()));
    row(
        "last error",
        d.last_error.clone().unwrap_or_else(|| "-".into()),
    );
    row("failures", d.failures.to_string());
    row(
        "reports held",
        d.reports_held.map_or_else(|| "-".into(), |n| n.to_string()),
    );
    row(
        "next poll",
        d.next_poll.as_ref().map_or_else(
            || "off (`cisco.poll_interval`)".into(),
            |t| stamp_or_dash(Some(t)),
        ),
    );
    row(
        "added",
        format!("{} by {}", stamp_or_dash(Some(&d.created_at)), d.created_by),
    );
    print!("{}", t.render());
}

/// The password from standard input, or typed twice on the terminal with echo off.
fn read_password(name: &str, stdin: bool) -> Result<String> {
    let password = if stdin {
        super::passwd::read_stdin()?
    } else {
        let tty = File::options()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .context(
                "no terminal to read the device password from; give it on standard input with \
                 --password-stdin",
            )?;
        let first =
            super::passwd::prompt(&tty, &format!("Password of the device user for {name}: "))?;
        let second = super::passwd::prompt(&tty, "Repeat it: ")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    };
    if password.is_empty() {
        return Err(CliError::refused(
            "invalid_request",
            "the device password is empty; give the device user's password (nothing was changed)",
        )
        .into());
    }
    Ok(password)
}
