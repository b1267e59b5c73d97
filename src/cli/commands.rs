//! The operator commands: each builds one admin API request and renders the answer as an
//! aligned table, or as JSON with `--json`.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::{AdminClient, query, segment};
use super::table::Table;
use crate::protocol::admin::*;

/// How to print answers.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or runs `human` to print it for people.
    pub fn show<T: Serialize>(self, value: &T, human: impl FnOnce(&T)) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            human(value);
        }
        Ok(())
    }
}

fn date(t: &OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn day(t: &OffsetDateTime) -> String {
    t.date().to_string()
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| format!("`{s}` is not a date (expected YYYY-MM-DD or RFC 3339)"))
}

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

pub async fn status(client: &AdminClient, out: Output) -> Result<()> {
    let s: Status = client.get("/v1/status").await?;
    out.show(&s, |s| {
        println!("satellite {}  up since {}", s.version, date(&s.started_at));
        let Some(sat) = &s.satellite else {
            println!(
                "you see           {} account(s), {} VA(s), {} license entr(ies), {} token(s), {} device(s) (your grants only)",
                s.accounts, s.virtual_accounts, s.licenses, s.tokens, s.devices
            );
            print_device_states(&s.devices_by_state);
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
    Create {
        name: String,
        /// Smart Account domain, e.g. example.com.
        #[arg(long)]
        domain: String,
    },
    /// List accounts.
    List,
    /// Show one account (by id, name or domain), with its RUM ingest URL for those who may
    /// change it.
    Show { account: String },
    /// Approve a pending account.
    Approve { account: String },
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
    Create {
        name: String,
        #[arg(long)]
        parent: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List VAs as an indented tree.
    List {
        #[arg(long)]
        account: Option<String>,
    },
    /// Show one VA.
    Show { va: String },
    /// Move a VA (with its subtree) under another parent.
    Move {
        va: String,
        #[arg(long = "to")]
        parent: String,
    },
    /// Delete an empty VA.
    Delete { va: String },
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
                println!("created      {}", date(&v.created_at));
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
        VaCommand::Delete { va } => {
            client.delete(&format!("/v1/vas/{}", segment(&va))).await?;
            out.show(&json!({ "deleted": va }), |_| {
                println!("deleted virtual account {va}")
            })
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Add purchased licenses to a VA.
    Add {
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
        #[arg(long, value_parser = parse_time)]
        end: Option<OffsetDateTime>,
        #[arg(long)]
        export_controlled: bool,
        #[arg(long)]
        order_ref: Option<String>,
        /// A label for search (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// Purchased / in use / balance per VA and tag, then the entries.
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        va: Option<String>,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        tag: Option<String>,
    },
    /// Move units of a tag between two VAs of one account, keeping their dates.
    Transfer {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
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
    /// Remove an entry, or some units of it.
    Remove {
        license: String,
        #[arg(long, allow_negative_numbers = true)]
        quantity: Option<i64>,
    },
    /// Import a license file signed by an issuer trusted in `[sync] trusted_license_keys`.
    Import { file: std::path::PathBuf },
    /// Write a signed license file, as an issuing portal does (offline, no daemon).
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
        LicenseCommand::Remove { license, quantity } => {
            let q = query(&[("quantity", quantity.map(|q| q.to_string()))]);
            client
                .delete(&format!("/v1/licenses/{}{q}", segment(&license)))
                .await?;
            out.show(&json!({ "removed": license, "quantity": quantity }), |_| {
                println!("removed license {license}")
            })
        }
        LicenseCommand::Import { file } => super::imports::import(client, out, file).await,
        LicenseCommand::Sign(a) => super::imports::sign_file(out, a),
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a registration token; its secret is shown once.
    Create {
        #[arg(long)]
        va: String,
        #[arg(long, default_value = "")]
        description: String,
        /// 1 to 365 days (default 30).
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[arg(long)]
        max_uses: Option<u32>,
        #[arg(long)]
        allow_export_controlled: bool,
    },
    /// List tokens with their state and uses.
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        va: Option<String>,
    },
    /// Revoke a token.
    Revoke { token: String },
}

fn tokens_table(list: &[TokenView]) {
    let mut t = Table::new(&[
        "TOKEN",
        "VIRTUAL ACCOUNT",
        "STATE",
        "USES",
        "EXPIRES",
        "EXPORT",
        "DESCRIPTION",
    ])
    .right(&[3]);
    for k in list {
        t.row(vec![
            k.id.clone(),
            k.va_path.clone(),
            k.state.clone(),
            match k.max_uses {
                Some(m) => format!("{}/{m}", k.uses),
                None => k.uses.to_string(),
            },
            day(&k.expires_at),
            if k.allow_export_controlled {
                "yes"
            } else {
                "no"
            }
            .into(),
            k.description.clone(),
        ]);
    }
    print!("{}", t.render());
}

pub async fn token(client: &AdminClient, out: Output, c: TokenCommand) -> Result<()> {
    match c {
        TokenCommand::Create {
            va,
            description,
            expires_in_days,
            max_uses,
            allow_export_controlled,
        } => {
            let req = CreateToken {
                va,
                description,
                expires_in_days,
                max_uses,
                allow_export_controlled,
            };
            let t: CreatedSecret<TokenView> = client.post("/v1/tokens", &req).await?;
            out.show(&t, |t| {
                println!(
                    "token {} for {} (expires {})",
                    t.object.id,
                    t.object.va_path,
                    day(&t.object.expires_at)
                );
                println!("secret (shown once, store it now): {}", t.secret);
            })
        }
        TokenCommand::List { account, va } => {
            let q = query(&[("account", account), ("va", va)]);
            let list: Vec<TokenView> = client.get(&format!("/v1/tokens{q}")).await?;
            out.show(&list, |l| tokens_table(l))
        }
        TokenCommand::Revoke { token } => {
            let t: TokenView = client
                .post(
                    &format!("/v1/tokens/{}/revoke", segment(&token)),
                    &json!({}),
                )
                .await?;
            out.show(&t, |t| println!("token {} is {}", t.id, t.state))
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an operator.
    Create { name: String },
    /// List operators and their roles.
    List,
    /// Delete an operator and their API tokens.
    Delete { user: String },
    /// Grant a role: system-admin or metrics-reader (no scope), account-admin/account-user
    /// (--account), va-admin/va-user (--va). metrics-reader may only scrape /metrics.
    Grant(GrantArgs),
    /// Take a role back.
    Revoke(GrantArgs),
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    user: String,
    #[arg(long)]
    role: String,
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    va: Option<String>,
}

fn users_table(list: &[UserView]) {
    let mut t = Table::new(&["USER", "ROLES", "ID"]);
    for u in list {
        let roles: Vec<String> = u
            .grants
            .iter()
            .map(|g| format!("{} on {}", g.role, g.scope))
            .collect();
        t.row(vec![
            u.name.clone(),
            if roles.is_empty() {
                "-".into()
            } else {
                roles.join("; ")
            },
            u.id.clone(),
        ]);
    }
    print!("{}", t.render());
}

pub async fn user(client: &AdminClient, out: Output, c: UserCommand) -> Result<()> {
    match c {
        UserCommand::Create { name } => {
            let u: UserView = client.post("/v1/users", &CreateUser { name }).await?;
            out.show(&u, |u| println!("created user {} ({})", u.name, u.id))
        }
        UserCommand::List => {
            let list: Vec<UserView> = client.get("/v1/users").await?;
            out.show(&list, |l| users_table(l))
        }
        UserCommand::Delete { user } => {
            client
                .delete(&format!("/v1/users/{}", segment(&user)))
                .await?;
            out.show(&json!({ "deleted": user }), |_| {
                println!("deleted user {user}")
            })
        }
        UserCommand::Grant(g) => grant(client, out, g, "grants").await,
        UserCommand::Revoke(g) => grant(client, out, g, "revoke").await,
    }
}

async fn grant(client: &AdminClient, out: Output, g: GrantArgs, verb: &str) -> Result<()> {
    let req = GrantRole {
        role: g.role,
        account: g.account,
        va: g.va,
    };
    let u: UserView = client
        .post(&format!("/v1/users/{}/{verb}", segment(&g.user)), &req)
        .await?;
    out.show(&u, |u| users_table(std::slice::from_ref(u)))
}

#[derive(Debug, Subcommand)]
pub enum ApiTokenCommand {
    /// Create an API token for a user; its secret is shown once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List API tokens.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke an API token.
    Revoke { token: String },
}

pub async fn api_token(client: &AdminClient, out: Output, c: ApiTokenCommand) -> Result<()> {
    match c {
        ApiTokenCommand::Create {
            user,
            description,
            expires_in_days,
        } => {
            let req = CreateApiToken {
                user,
                description,
                expires_in_days,
            };
            let t: CreatedSecret<ApiTokenView> = client.post("/v1/api-tokens", &req).await?;
            out.show(&t, |t| {
                println!("API token {} for user {}", t.object.id, t.object.user);
                println!("secret (shown once, store it now): {}", t.secret);
            })
        }
        ApiTokenCommand::List { user } => {
            let list: Vec<ApiTokenView> = client
                .get(&format!("/v1/api-tokens{}", query(&[("user", user)])))
                .await?;
            out.show(&list, |l| {
                let mut t = Table::new(&[
                    "API TOKEN",
                    "USER",
                    "STATE",
                    "CREATED",
                    "EXPIRES",
                    "DESCRIPTION",
                ]);
                for k in l {
                    t.row(vec![
                        k.id.clone(),
                        k.user.clone(),
                        k.state.clone(),
                        day(&k.created_at),
                        k.expires_at.as_ref().map_or("never".into(), day),
                        k.description.clone(),
                    ]);
                }
                print!("{}", t.render());
            })
        }
        ApiTokenCommand::Revoke { token } => {
            let t: ApiTokenView = client
                .post(
                    &format!("/v1/api-tokens/{}/revoke", segment(&token)),
                    &json!({}),
                )
                .await?;
            out.show(&t, |t| {
                println!("API token {} of {} is {}", t.id, t.user, t.state)
            })
        }
    }
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// From this time on (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    since: Option<OffsetDateTime>,
    /// Before this time.
    #[arg(long, value_parser = parse_time)]
    until: Option<OffsetDateTime>,
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    va: Option<String>,
    #[arg(long)]
    device: Option<String>,
    /// An action (`license.transfer`) or a family of them (`license`).
    #[arg(long)]
    action: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Only events numbered below SEQ: page back from the last SEQ shown.
    #[arg(long, value_name = "SEQ")]
    before: Option<u64>,
}

pub async fn events(client: &AdminClient, out: Output, a: EventsArgs) -> Result<()> {
    let fmt = |t: Option<OffsetDateTime>| t.map(|t| date(&t));
    let q = query(&[
        ("since", fmt(a.since)),
        ("until", fmt(a.until)),
        ("account", a.account),
        ("va", a.va),
        ("device", a.device),
        ("action", a.action),
        ("limit", Some(a.limit.to_string())),
        ("before", a.before.map(|b| b.to_string())),
    ]);
    let list: Vec<EventView> = client.get(&format!("/v1/events{q}")).await?;
    out.show(&list, |l| {
        let mut t =
            Table::new(&["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAILS"]).right(&[0]);
        for e in l {
            let details: Vec<String> = e.details.iter().map(|(k, v)| format!("{k}={v}")).collect();
            t.row(vec![
                e.seq.to_string(),
                date(&e.at),
                e.actor.clone(),
                e.action.clone(),
                e.subject.clone(),
                details.join(" "),
            ]);
        }
        print!("{}", t.render());
    })
}
