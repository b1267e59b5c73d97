//! `satellite license ...`: pools and their entries, transfers, removal; `import` and `sign`
//! live in `imports.rs`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use time::OffsetDateTime;

use super::client::{AdminClient, Refused, query, segment};
use super::confirm::{Confirm, Decision};
use super::examples as ex;
use super::fmt::day;
use super::fmt::parse_time;
use super::output::Output;
use super::table::Table;
use crate::protocol::admin::*;

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Add purchased licenses to a VA.
    #[command(after_help = ex::LICENSE_ADD)]
    Add {
        /// The VA to add them to: `ACCOUNT/Default/...` or an id.
        #[arg(long)]
        va: String,
        /// Entitlement tag, the license identity.
        #[arg(long)]
        tag: String,
        /// Units, 1 to 1000000000000 (10^12). The entries of one tag in one VA may hold at
        /// most 10^12 units together; a larger quantity is refused and nothing is added.
        #[arg(long, allow_negative_numbers = true)]
        quantity: i64,
        /// Display name (default: the tag).
        #[arg(long, default_value = "")]
        name: String,
        /// Term start (YYYY-MM-DD or RFC 3339); term licenses give --start and --end.
        #[arg(long, value_parser = parse_time)]
        start: Option<OffsetDateTime>,
        /// Term end, excluded (YYYY-MM-DD or RFC 3339).
        #[arg(long, value_parser = parse_time)]
        end: Option<OffsetDateTime>,
        /// The licenses are export-controlled: only devices whose token allows it may use them.
        #[arg(long)]
        export_controlled: bool,
        /// The purchase order it came with, for reference.
        #[arg(long)]
        order_ref: Option<String>,
        /// A label for search (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// Purchased / in use / balance per VA and tag, then the entries.
    #[command(after_help = ex::LICENSE_LIST)]
    List {
        /// Only this account's licenses (name, domain or id).
        #[arg(long)]
        account: Option<String>,
        /// Only this VA and below (`ACCOUNT/Default/...` or an id).
        #[arg(long)]
        va: Option<String>,
        /// Only entries carrying this label.
        #[arg(long)]
        label: Option<String>,
        /// Only this entitlement tag.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Move units of a tag between two VAs of one account, keeping their dates.
    #[command(after_help = ex::LICENSE_TRANSFER)]
    Transfer {
        /// The VA to take the units from: `ACCOUNT/Default/...` or an id.
        #[arg(long, value_name = "VA")]
        from: String,
        /// The VA to move them to, in the same account.
        #[arg(long, value_name = "VA")]
        to: String,
        /// The entitlement tag to move.
        #[arg(long)]
        tag: String,
        /// Units to move, 1 to 1000000000000 (10^12); the destination's entries of the tag
        /// may hold at most 10^12 units together.
        #[arg(long, allow_negative_numbers = true)]
        quantity: i64,
        /// Take the units from this entry only.
        #[arg(long)]
        license: Option<String>,
    },
    /// Remove an entry, or some units of it. Asks first on a terminal; give --yes in scripts.
    #[command(after_help = ex::LICENSE_REMOVE)]
    Remove {
        /// The entry's id (the LICENSE column of `license list`).
        license: String,
        /// Remove only this many of its units (default: the whole entry).
        #[arg(long, allow_negative_numbers = true)]
        quantity: Option<i64>,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Import a license file signed by an issuer trusted in `[sync] trusted_license_keys`.
    #[command(after_help = ex::LICENSE_IMPORT)]
    Import {
        /// The signed license file (JSON, from the issuing portal or `license sign`).
        file: std::path::PathBuf,
    },
    /// Write a signed license file, as an issuing portal does (offline, no daemon).
    #[command(after_help = ex::LICENSE_SIGN)]
    Sign(super::imports::SignArgs),
}

fn pools_table(list: &LicenseList) {
    let mut t = Table::new(&[
        "VIRTUAL ACCOUNT",
        "ENTITLEMENT TAG",
        "PURCHASED",
        "IN USE",
        "BALANCE",
        "NEXT EXPIRY",
    ])
    .right(&[2, 3, 4]);
    for p in &list.pools {
        t.row(vec![
            p.va_path.clone(),
            p.entitlement_tag.clone(),
            p.purchased.to_string(),
            p.in_use.to_string(),
            p.balance.to_string(),
            p.next_expiry.as_ref().map_or("-".into(), day),
        ]);
    }
    print!("{}", t.render());
    if !list.entries.is_empty() {
        println!();
        entries_table(&list.entries);
    }
}

/// License pool entries, one per row.
pub fn entries_table(entries: &[LicenseView]) {
    let mut t = Table::new(&[
        "LICENSE",
        "VIRTUAL ACCOUNT",
        "ENTITLEMENT TAG",
        "QTY",
        "KIND",
        "START",
        "END",
        "LABELS",
    ])
    .right(&[3]);
    for e in entries {
        t.row(vec![
            e.id.clone(),
            e.va_path.clone(),
            e.entitlement_tag.clone(),
            e.quantity.to_string(),
            if e.export_controlled {
                format!("{} (export)", e.kind)
            } else {
                e.kind.clone()
            },
            e.start.as_ref().map_or("-".into(), day),
            e.end.as_ref().map_or("-".into(), day),
            e.labels.join(","),
        ]);
    }
    print!("{}", t.render());
}

pub async fn license(client: &AdminClient, out: Output, c: LicenseCommand) -> Result<()> {
    match c {
        LicenseCommand::Add {
            va,
            tag,
            quantity,
            name,
            start,
            end,
            export_controlled,
            order_ref,
            labels,
        } => {
            let req = AddLicense {
                va,
                entitlement_tag: tag,
                display_name: name,
                quantity,
                start,
                end,
                export_controlled,
                order_ref,
                labels,
            };
            let l: LicenseView = client.post("/v1/licenses", &req).await?;
            out.show(&l, |l| {
                println!(
                    "added {} x {} ({}) to {} as license {}",
                    l.quantity, l.entitlement_tag, l.kind, l.va_path, l.id
                )
            })
        }
        LicenseCommand::List {
            account,
            va,
            label,
            tag,
        } => {
            let q = query(&[
                ("account", account),
                ("va", va),
                ("label", label),
                ("tag", tag),
            ]);
            let list: LicenseList = client.get(&format!("/v1/licenses{q}")).await?;
            out.show(&list, pools_table)
        }
        LicenseCommand::Transfer {
            from,
            to,
            tag,
            quantity,
            license,
        } => {
            let req = TransferLicenses {
                from,
                to,
                entitlement_tag: tag,
                quantity,
                license,
            };
            let list: LicenseList = client.post("/v1/licenses/transfer", &req).await?;
            out.show(&list, |l| {
                println!("transferred {quantity} unit(s)");
                pools_table(l)
            })
        }
        LicenseCommand::Remove {
            license,
            quantity,
            confirm,
        } => remove(client, out, &license, quantity, confirm).await,
        LicenseCommand::Import { file } => super::imports::import(client, out, file).await,
        LicenseCommand::Sign(a) => super::imports::sign_file(out, a),
    }
}

/// `license remove`: asks first (or takes --yes / --dry-run), then removes.
async fn remove(
    client: &AdminClient,
    out: Output,
    license: &str,
    quantity: Option<i64>,
    confirm: Confirm,
) -> Result<()> {
    // Scripts pass --yes and need no description, so the listing is skipped for them.
    let entry = match confirm.yes {
        true => None,
        false => Some(find_entry(client, license).await?),
    };
    let what = match (&entry, quantity) {
        (None, _) => format!("license {license}"),
        (Some(e), None) => format!(
            "license {} ({} x {} in {})",
            e.id, e.quantity, e.entitlement_tag, e.va_path
        ),
        (Some(e), Some(q)) => format!(
            "{q} of the {} unit(s) of license {} ({} in {})",
            e.quantity, e.id, e.entitlement_tag, e.va_path
        ),
    };
    if confirm.decide(&what)? == Decision::DryRun {
        let plan = json!({ "dry_run": true, "would_remove": entry, "quantity": quantity });
        return out.show(&plan, |_| {
            println!("would remove {what}; nothing was changed")
        });
    }
    let q = query(&[("quantity", quantity.map(|q| q.to_string()))]);
    client
        .delete(&format!("/v1/licenses/{}{q}", segment(license)))
        .await?;
    out.show(&json!({ "removed": license, "quantity": quantity }), |_| {
        println!("removed license {license}")
    })
}

/// The license entry `id` among those the caller may see, or the daemon's own `not_found`.
async fn find_entry(client: &AdminClient, id: &str) -> Result<LicenseView> {
    let list: LicenseList = client.get("/v1/licenses").await?;
    list.entries
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| {
            Refused {
                status: hyper::StatusCode::NOT_FOUND,
                code: "not_found".into(),
                message: format!("license `{id}` not found"),
            }
            .into()
        })
}
