//! The operator commands for the satellite itself, accounts and VAs: each builds one admin API
//! request and renders the answer as an aligned table, or as JSON with `--json`. The other areas
//! have their own files (`licenses.rs`, `users.rs`, `events.rs`, `devices.rs`, ...).

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use super::client::{AdminClient, query, segment};
use super::confirm::{Confirm, Decision};
use super::examples as ex;
use super::fmt::{day, stamp};
use super::output::Output;
use super::table::Table;
use crate::protocol::admin::*;

pub fn config_check(global: &super::Global) -> Result<()> {
    let settings = global.settings()?;
    let origin = global
        .config
        .as_ref()
        .map_or("the embedded defaults".to_string(), |p| {
            p.display().to_string()
        });
    if global.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "valid": true,
                "origin": origin,
                "data_dir": settings.data_dir,
                "device_listen": settings.device.listen.to_string(),
                "admin_listen": settings.admin.listen.map(|a| a.to_string()),
                "admin_socket": settings.admin.socket,
            }))?
        );
    } else {
        println!("config {origin} is valid");
        println!("data dir      {}", settings.data_dir.display());
        println!("devices       {}", settings.device.listen);
        match settings.admin.listen {
            Some(a) => println!("admin https   {a}"),
            None => println!("admin https   disabled"),
        }
        println!("admin socket  {}", settings.admin.socket.display());
    }
    Ok(())
}

/// `status` with the number of alerts that hold now, counted as `satellite alerts` lists them
/// (for the same caller), so the two commands always agree.
#[derive(Serialize)]
struct StatusOut {
    #[serde(flatten)]
    status: Status,
    alerts: usize,
}

pub async fn status(client: &AdminClient, out: Output) -> Result<()> {
    let status: Status = client.get("/v1/status").await?;
    let alerts: Vec<AlertView> = client.get("/v1/alerts").await?;
    let shown = StatusOut {
        status,
        alerts: alerts.len(),
    };
    out.show(&shown, |shown| {
        let s = &shown.status;
        println!("satellite {}  up since {}", s.version, stamp(&s.started_at));
        let alerts = format!(
            "alerts            {} (`satellite alerts` lists them)",
            shown.alerts
        );
        let Some(sat) = &s.satellite else {
            println!(
                "you see           {} account(s), {} VA(s), {} license entr(ies), {} token(s), {} device(s) (your grants only)",
                s.accounts, s.virtual_accounts, s.licenses, s.tokens, s.devices
            );
            print_device_states(&s.devices_by_state);
            println!("{alerts}");
            return;
        };
        println!("data dir          {}", sat.data_dir);
        println!("store             {} bytes, schema v{}", sat.store_bytes, sat.schema_version);
        for l in &sat.listeners {
            println!("listener          {l}");
        }
        println!(
            "holds             {} account(s), {} VA(s), {} license entr(ies), {} token(s), {} user(s), {} device(s)",
            s.accounts, s.virtual_accounts, s.licenses, s.tokens, sat.users, s.devices
        );
        print_device_states(&s.devices_by_state);
        println!("{alerts}");
        println!(
            "flushes           {} (mean {:.2} ms)",
            sat.store_flushes, sat.store_flush_mean_ms
        );
        if let Some(f) = &sat.store_failure {
            println!("STORE FAILURE     {f}; writes are refused until the satellite restarts");
        }
        for w in &sat.workers {
            println!("worker            {:<16} {:<8} {}", w.name, w.state, w.detail);
        }
        if sat.unreadable_records.is_empty() {
            println!("unreadable        none");
        } else {
            println!("unreadable        {} record(s):", sat.unreadable_records.len());
            for r in &sat.unreadable_records {
                println!("  {r}");
            }
        }
    })
}

fn print_device_states(by_state: &[(String, usize)]) {
    let states: Vec<String> = by_state
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    println!("devices           {}", states.join(", "));
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account (with its Default VA).
    #[command(after_help = ex::ACCOUNT_CREATE)]
    Create {
        /// The account's name, the first segment of its VA paths (`NAME/Default/...`).
        name: String,
        /// Smart Account domain, e.g. example.com.
        #[arg(long)]
        domain: String,
    },
    /// List accounts.
    #[command(after_help = ex::ACCOUNT_LIST)]
    List,
    /// Show one account (by id, name or domain), with its RUM ingest URL for those who may
    /// change it.
    #[command(after_help = ex::ACCOUNT_SHOW)]
    Show {
        /// The account: its name, domain or id.
        account: String,
    },
    /// Approve a pending account.
    #[command(after_help = ex::ACCOUNT_APPROVE)]
    Approve {
        /// The account: its name, domain or id.
        account: String,
    },
}

fn accounts_table(accounts: &[AccountView]) {
    let mut t = Table::new(&["NAME", "DOMAIN", "STATUS", "CREATED", "ID"]);
    for a in accounts {
        t.row(vec![
            a.name.clone(),
            a.domain.clone(),
            a.status.clone(),
            day(&a.created_at),
            a.id.clone(),
        ]);
    }
    print!("{}", t.render());
}

pub async fn account(client: &AdminClient, out: Output, c: AccountCommand) -> Result<()> {
    match c {
        AccountCommand::Create { name, domain } => {
            let a: AccountView = client
                .post("/v1/accounts", &CreateAccount { name, domain })
                .await?;
            out.show(&a, |a| {
                println!(
                    "created account {} ({}), status {}",
                    a.name, a.domain, a.status
                );
                println!("its Default virtual account is {}/Default", a.name);
            })
        }
        AccountCommand::List => {
            let list: Vec<AccountView> = client.get("/v1/accounts").await?;
            out.show(&list, |l| accounts_table(l))
        }
        AccountCommand::Show { account } => {
            let a: AccountView = client
                .get(&format!("/v1/accounts/{}", segment(&account)))
                .await?;
            out.show(&a, |a| {
                accounts_table(std::slice::from_ref(a));
                if let Some(rum) = &a.rum_ingest {
                    println!();
                    println!(
                        "RUM ingest URL (Cisco devices push usage here; keep it private):\n  {}",
                        rum.url.as_deref().unwrap_or(&rum.path)
                    );
                }
            })
        }
        AccountCommand::Approve { account } => {
            let a: AccountView = client
                .post(
                    &format!("/v1/accounts/{}/approve", segment(&account)),
                    &json!({}),
                )
                .await?;
            out.show(&a, |a| println!("account {} is now {}", a.name, a.status))
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum VaCommand {
    /// Create a VA under a parent (`ACCOUNT/Default/...` or an id).
    #[command(after_help = ex::VA_CREATE)]
    Create {
        /// The new VA's name, its last path segment.
        name: String,
        /// The VA to create it under: `ACCOUNT/Default/...` or an id.
        #[arg(long, value_name = "VA")]
        parent: String,
        /// A note for operators.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List VAs as an indented tree.
    #[command(after_help = ex::VA_LIST)]
    List {
        /// Only this account's VAs (name, domain or id).
        #[arg(long)]
        account: Option<String>,
    },
    /// Show one VA.
    #[command(after_help = ex::VA_SHOW)]
    Show {
        /// The VA: `ACCOUNT/Default/...` or an id.
        va: String,
    },
    /// Move a VA (with its subtree) under another parent.
    #[command(after_help = ex::VA_MOVE)]
    Move {
        /// The VA to move: `ACCOUNT/Default/...` or an id.
        va: String,
        /// Its new parent, in the same account.
        #[arg(long = "to", value_name = "VA")]
        parent: String,
    },
    /// Delete an empty VA. Asks first on a terminal; give --yes in scripts.
    #[command(after_help = ex::VA_DELETE)]
    Delete {
        /// The VA: `ACCOUNT/Default/...` or an id.
        va: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

pub async fn va(client: &AdminClient, out: Output, c: VaCommand) -> Result<()> {
    match c {
        VaCommand::Create {
            name,
            parent,
            description,
        } => {
            let v: VaView = client
                .post(
                    "/v1/vas",
                    &CreateVa {
                        parent,
                        name,
                        description,
                    },
                )
                .await?;
            out.show(&v, |v| {
                println!(
                    "created virtual account {} (level {}, id {})",
                    v.path, v.level, v.id
                )
            })
        }
        VaCommand::List { account } => {
            let list: Vec<VaView> = client
                .get(&format!("/v1/vas{}", query(&[("account", account)])))
                .await?;
            out.show(&list, |l| {
                let mut t = Table::new(&["VIRTUAL ACCOUNT", "LEVEL", "ID"]).right(&[1]);
                for v in l {
                    t.row(vec![
                        if v.level == 1 {
                            v.path.clone()
                        } else {
                            format!("{}{}", "  ".repeat(v.level - 1), v.name)
                        },
                        v.level.to_string(),
                        v.id.clone(),
                    ]);
                }
                print!("{}", t.render());
            })
        }
        VaCommand::Show { va } => {
            let v: VaView = client.get(&format!("/v1/vas/{}", segment(&va))).await?;
            out.show(&v, |v| {
                println!("path         {}", v.path);
                println!("id           {}", v.id);
                println!("level        {}", v.level);
                println!("parent       {}", v.parent.as_deref().unwrap_or("-"));
                println!("description  {}", v.description);
                println!("created      {}", stamp(&v.created_at));
            })
        }
        VaCommand::Move { va, parent } => {
            let v: VaView = client
                .post(
                    &format!("/v1/vas/{}/move", segment(&va)),
                    &MoveVa { parent },
                )
                .await?;
            out.show(&v, |v| {
                println!("moved: {} is now at level {}", v.path, v.level)
            })
        }
        VaCommand::Delete { va, confirm } => delete_va(client, out, &va, confirm).await,
    }
}

/// `va delete`: asks first (or takes --yes / --dry-run), then deletes.
async fn delete_va(client: &AdminClient, out: Output, va: &str, confirm: Confirm) -> Result<()> {
    let v: VaView = client.get(&format!("/v1/vas/{}", segment(va))).await?;
    let what = format!("virtual account {} (id {})", v.path, v.id);
    if confirm.decide(&what)? == Decision::DryRun {
        let plan = json!({ "dry_run": true, "would_delete": v });
        return out.show(&plan, |_| {
            println!(
                "would delete {what}; nothing was changed (a VA that holds anything is refused)"
            )
        });
    }
    client
        .delete(&format!("/v1/vas/{}", segment(&v.id)))
        .await?;
    out.show(&json!({ "deleted": va }), |_| {
        println!("deleted virtual account {}", v.path)
    })
}
