//! License reservation (SPEC §8b) from the command line: the operator's `satellite reserve …`
//! (a client of the admin API) and the device's `satellite agent reserve-…` (offline, in the
//! agent directory). `docs/reservation.md` describes the codes.
//!
//! Codes are printed alone on stdout (explanations go to stderr) so that
//! `CODE=$(satellite agent reserve-request …)` captures exactly the code.

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::{AdminClient, query, segment};
use super::errors::CliError;
use super::examples as ex;
use super::output::Output;
use super::table::Table;
use crate::agent::reservation as agent;
use crate::protocol::admin::{
    CreateReservation, ReleasedReservation, ReservationView, ReservedView, ReturnReservation,
};
use crate::protocol::device::Udi;
use crate::protocol::reservation::{Authorization, Entitlement};

/// `satellite reserve --va VA --request CODE`, `--return CODE`, `list`, `cancel`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = ex::RESERVE)]
pub struct ReserveArgs {
    #[command(subcommand)]
    pub command: Option<ReserveCommand>,
    /// The virtual account to reserve from (id or ACCOUNT/Default/...).
    #[arg(long, value_name = "VA", requires = "request")]
    pub va: Option<String>,
    /// The device's request code (`SRQ1-…`, from `satellite agent reserve-request`).
    #[arg(
        long,
        value_name = "CODE",
        requires = "va",
        conflicts_with = "return_code"
    )]
    pub request: Option<String>,
    /// Release a reservation with the device's return code (`SRT1-…`).
    #[arg(long = "return", value_name = "CODE")]
    pub return_code: Option<String>,
    /// Allow reserving export-controlled entitlements for this device.
    #[arg(long, requires = "request")]
    pub allow_export_controlled: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReserveCommand {
    /// List active reservations.
    #[command(after_help = ex::RESERVE_LIST)]
    List {
        /// Only reservations in this VA and below.
        #[arg(long)]
        va: Option<String>,
    },
    /// Release a reservation without the device (a lost device). The device, if it still
    /// exists, keeps an authorization code that looks valid to it.
    #[command(after_help = ex::RESERVE_CANCEL)]
    Cancel {
        /// The reservation's id (the ID column of `reserve list`).
        id: String,
    },
    /// Release a reservation with the device's return code (same as `--return CODE`).
    #[command(after_help = ex::RESERVE_RETURN)]
    Return {
        /// The device's return code (`SRT1-…`, from `satellite agent reserve-return`).
        code: String,
    },
}

/// `satellite agent reserve-request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Product id of the UDI (default: the registered one in --dir).
    #[arg(long, value_name = "PID", requires = "serial")]
    pub pid: Option<String>,
    /// Serial number of the UDI (default: the registered one in --dir).
    #[arg(long, value_name = "SERIAL", requires = "pid")]
    pub serial: Option<String>,
    /// An entitlement to reserve: TAG or TAG:COUNT (COUNT defaults to 1). Repeatable.
    #[arg(long = "entitlement", value_name = "TAG[:COUNT]", required = true,
          value_parser = parse_entitlement)]
    pub entitlements: Vec<Entitlement>,
}

/// `satellite agent reserve-install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The authorization code (`SAC1-…`) from `satellite reserve`.
    #[arg(long, value_name = "CODE")]
    pub code: String,
    /// Accept only a code signed by the key with this key id (printed by `satellite reserve`
    /// and `satellite sync status`).
    #[arg(long, value_name = "KEYID")]
    pub trust_key: Option<String>,
}

/// Parses `TAG` or `TAG:COUNT`; a suffix that is not a number belongs to the tag.
fn parse_entitlement(s: &str) -> Result<Entitlement, String> {
    let (tag, count) = match s.rsplit_once(':') {
        Some((tag, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => (
            tag,
            n.parse::<u64>()
                .map_err(|_| format!("`{n}` is too large a count"))?,
        ),
        _ => (s, 1),
    };
    if tag.is_empty() || tag.contains(char::is_whitespace) {
        return Err(format!(
            "`{s}` has no entitlement tag (expected TAG or TAG:COUNT)"
        ));
    }
    if count == 0 {
        return Err(format!("`{s}`: the count must be at least 1"));
    }
    if count > crate::domain::MAX_UNITS {
        return Err(format!(
            "`{s}`: the count must be at most {} (the satellite refuses more)",
            crate::domain::MAX_UNITS
        ));
    }
    Ok(Entitlement {
        tag: tag.to_string(),
        count,
    })
}

fn stamp(t: &OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(*t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn udi(u: &Udi) -> String {
    super::fmt::udi(&u.pid, &u.serial)
}

fn entitlements(list: &[Entitlement]) -> String {
    list.iter()
        .map(|e| format!("{}:{}", e.tag, e.count))
        .collect::<Vec<_>>()
        .join(", ")
}

fn reservations_table(list: &[ReservationView]) {
    let mut t = Table::new(&["ID", "VA", "UDI", "ENTITLEMENTS", "CREATED", "BY"]);
    for r in list {
        t.row(vec![
            r.id.clone(),
            r.va_path.clone(),
            udi(&r.udi),
            entitlements(&r.entitlements),
            stamp(&r.created_at),
            r.created_by.clone(),
        ]);
    }
    print!("{}", t.render());
}

/// Runs `satellite reserve …`.
pub async fn reserve(client: &AdminClient, out: Output, a: ReserveArgs) -> Result<()> {
    match (a.command, a.va, a.request, a.return_code) {
        (Some(ReserveCommand::List { va }), ..) => {
            let list: Vec<ReservationView> = client
                .get(&format!("/v1/reservations{}", query(&[("va", va)])))
                .await?;
            out.show(&list, |list| {
                if list.is_empty() {
                    println!("no active reservations");
                } else {
                    reservations_table(list);
                }
            })
        }
        (Some(ReserveCommand::Cancel { id }), ..) => {
            let done: ReleasedReservation = client
                .post(
                    &format!("/v1/reservations/{}/cancel", segment(&id)),
                    &json!({}),
                )
                .await?;
            out.show(&done, |d| {
                println!(
                    "cancelled reservation {}; released {} in {}",
                    d.reservation.id,
                    entitlements(&d.reservation.entitlements),
                    d.reservation.va_path
                );
                println!(
                    "note: device {} still holds an authorization code that looks valid to it \
                     (it cannot be revoked offline); make sure the device is gone or reset",
                    udi(&d.reservation.udi)
                );
            })
        }
        (Some(ReserveCommand::Return { code }), ..) | (None, None, None, Some(code)) => {
            let done: ReleasedReservation = client
                .post("/v1/reservations/return", &ReturnReservation { code })
                .await?;
            out.show(&done, |d| {
                println!(
                    "returned reservation {} of device {}; released {} in {}",
                    d.reservation.id,
                    udi(&d.reservation.udi),
                    entitlements(&d.reservation.entitlements),
                    d.reservation.va_path
                );
            })
        }
        (None, Some(va), Some(request), None) => {
            let body = CreateReservation {
                va,
                request,
                allow_export_controlled: a.allow_export_controlled,
            };
            let done: ReservedView = client.post("/v1/reservations", &body).await?;
            out.show(&done, |d| {
                reservations_table(std::slice::from_ref(&d.reservation));
                println!();
                println!(
                    "authorization code for the device (signed by key id {}; install it with \
                     `satellite agent reserve-install --code CODE --trust-key {}`):",
                    d.key_id, d.key_id
                );
                println!("{}", d.authorization_code);
            })
        }
        _ => Err(CliError::usage(
            "usage",
            "say what to do: `satellite reserve --va VA --request CODE`, `satellite reserve \
             --return CODE`, `satellite reserve list` or `satellite reserve cancel ID`",
        )
        .into()),
    }
}

/// `satellite agent reserve-request`.
pub fn agent_request(dir: &Path, a: RequestArgs, json: bool) -> Result<()> {
    let configured = agent::configured_udi(dir)?;
    let device = match (a.pid, a.serial, configured) {
        (Some(pid), Some(serial), Some(reg)) if reg.pid != pid || reg.serial != serial => bail!(
            "{} holds the registration of device {}; a request for {} must use another --dir",
            dir.display(),
            udi(&reg),
            super::fmt::udi(&pid, &serial)
        ),
        (Some(pid), Some(serial), _) => Udi { pid, serial },
        (_, _, Some(reg)) => reg,
        _ => {
            return Err(CliError::usage(
                "usage",
                format!(
                    "give the device's UDI with --pid and --serial (no registration in {} to \
                     take it from)",
                    dir.display()
                ),
            )
            .into());
        }
    };
    let pending = agent::request(dir, device, a.entitlements, OffsetDateTime::now_utc())?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "code": pending.code,
                "request": pending.request,
                "dir": dir,
            }))?
        );
    } else {
        eprintln!(
            "reservation request for device {} ({}); give this code to the operator, who runs \
             `satellite reserve --va VA --request CODE`:",
            udi(&pending.request.udi),
            entitlements(&pending.request.entitlements)
        );
        println!("{}", pending.code);
    }
    Ok(())
}

fn print_authorization(a: &Authorization) {
    let mut t = Table::new(&["TAG", "COUNT"]).right(&[1]);
    for e in &a.entitlements {
        t.row(vec![e.tag.clone(), e.count.to_string()]);
    }
    print!("{}", t.render());
    println!();
    println!("reservation   {}", a.reservation_id);
    println!("device        {}", udi(&a.udi));
    println!("account       {}", a.account);
    println!("va            {}", a.va);
    println!("issued at     {}", stamp(&a.issued_at));
    println!("key id        {}", a.key_id);
}

/// `satellite agent reserve-install`.
pub fn agent_install(dir: &Path, a: InstallArgs, json: bool) -> Result<()> {
    let installed = agent::install(
        dir,
        &a.code,
        a.trust_key.as_deref(),
        OffsetDateTime::now_utc(),
    )
    .map_err(|e| anyhow!("authorization code refused: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&installed)?);
    } else {
        println!("installed: the signature verifies; this device is authorized for");
        print_authorization(&installed.authorization);
        if a.trust_key.is_none() {
            println!(
                "(the signer's key was not pinned: add --trust-key KEYID to accept only your \
                 satellite's codes)"
            );
        }
    }
    Ok(())
}

/// `satellite agent reservation`.
pub fn agent_show(dir: &Path, json: bool) -> Result<()> {
    let installed = agent::installed(dir)?;
    let pending = agent::pending(dir)?;
    let returned = agent::last_return(dir)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "installed": installed,
                "pending_request": pending,
                "last_return": returned,
            }))?
        );
        return Ok(());
    }
    match &installed {
        Some(i) => print_authorization(&i.authorization),
        None => println!("no reservation is installed"),
    }
    if let Some(p) = pending {
        println!(
            "pending request for {} ({}):\n{}",
            udi(&p.request.udi),
            entitlements(&p.request.entitlements),
            p.code
        );
    }
    if installed.is_none()
        && let Some(r) = returned
    {
        println!(
            "last return code (reservation {}):\n{}",
            r.returned.reservation_id, r.code
        );
    }
    Ok(())
}

/// `satellite agent reserve-return`.
pub fn agent_return(dir: &Path, json: bool) -> Result<()> {
    let returned = agent::give_back(dir, OffsetDateTime::now_utc())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&returned)?);
    } else {
        eprintln!(
            "gave back reservation {}; the device no longer holds it. Give this return code to \
             the operator, who runs `satellite reserve --return CODE`:",
            returned.returned.reservation_id
        );
        println!("{}", returned.code);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_entitlements_parse_with_an_optional_count() {
        let e = parse_entitlement("regid.a,1.0_e72:3").expect("parses");
        assert_eq!((e.tag.as_str(), e.count), ("regid.a,1.0_e72", 3));
        let e = parse_entitlement("urn:x:tag").expect("parses");
        assert_eq!((e.tag.as_str(), e.count), ("urn:x:tag", 1));
        for bad in [":3", "a:0", "", "a b:1", "a:1000000000001"] {
            assert!(parse_entitlement(bad).is_err(), "{bad}");
        }
    }
}
