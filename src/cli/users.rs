//! Who may do what: registration tokens for devices, operators and their roles, API tokens for
//! the HTTPS admin API.

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::client::{AdminClient, query, segment};
use super::examples as ex;
use super::fmt::day;
use super::output::Output;
use super::table::Table;
use crate::protocol::admin::*;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a registration token; its secret is shown once.
    #[command(after_help = ex::TOKEN_CREATE)]
    Create {
        /// The VA devices registering with it join (`ACCOUNT/Default/...` or an id).
        #[arg(long)]
        va: String,
        /// A note for operators (where the token is used).
        #[arg(long, default_value = "")]
        description: String,
        /// Days the token stays usable, 1 to 365 (default 30).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
        /// How many devices may register with it (default: no limit).
        #[arg(long, value_name = "N")]
        max_uses: Option<u32>,
        /// Let devices registered with it use export-controlled licenses.
        #[arg(long)]
        allow_export_controlled: bool,
    },
    /// List tokens with their state and uses.
    #[command(after_help = ex::TOKEN_LIST)]
    List {
        /// Only tokens of this account (name, domain or id).
        #[arg(long)]
        account: Option<String>,
        /// Only tokens of this VA and below (`ACCOUNT/Default/...` or an id).
        #[arg(long)]
        va: Option<String>,
    },
    /// Revoke a token: devices can no longer register with it (registered ones stay).
    #[command(after_help = ex::TOKEN_REVOKE)]
    Revoke {
        /// The token's id (from `token list`), not its secret.
        token: String,
    },
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
    #[command(after_help = ex::USER_CREATE)]
    Create {
        /// The operator's name (letters, digits, `-`, `_`, `.`).
        name: String,
    },
    /// List operators and their roles.
    #[command(after_help = ex::USER_LIST)]
    List,
    /// Delete an operator and their API tokens.
    #[command(after_help = ex::USER_DELETE)]
    Delete {
        /// The operator's name or id.
        user: String,
    },
    /// Set an operator's console password (asked twice on the terminal, never echoed). Their
    /// console sessions are signed out. Users may set their own; system-admin anyone's.
    #[command(after_help = ex::USER_PASSWD)]
    Passwd {
        /// The operator's name or id.
        user: String,
        /// Read the password from the first line of standard input (for scripts).
        #[arg(long)]
        stdin: bool,
    },
    /// Grant a role: system-admin or metrics-reader (no scope), account-admin/account-user
    /// (--account), va-admin/va-user (--va). metrics-reader may only scrape /metrics.
    #[command(after_help = ex::USER_GRANT)]
    Grant(GrantArgs),
    /// Take a role back.
    #[command(after_help = ex::USER_REVOKE)]
    Revoke(GrantArgs),
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The operator's name or id.
    user: String,
    /// The role.
    #[arg(long, value_enum)]
    role: Role,
    /// The account an account-admin or account-user role is for (name, domain or id).
    #[arg(long)]
    account: Option<String>,
    /// The VA (with its subtree) a va-admin or va-user role is for.
    #[arg(long)]
    va: Option<String>,
}

/// The roles of SPEC §7, as `user grant --role` takes them.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, satellite-wide (users, sync, backup).
    SystemAdmin,
    /// Scrape /metrics only.
    MetricsReader,
    /// One account, all its VAs (needs --account).
    AccountAdmin,
    /// Read one account (needs --account).
    AccountUser,
    /// One VA subtree: tokens, transfers within it, devices (needs --va).
    VaAdmin,
    /// Read one VA subtree (needs --va).
    VaUser,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system-admin",
            Role::MetricsReader => "metrics-reader",
            Role::AccountAdmin => "account-admin",
            Role::AccountUser => "account-user",
            Role::VaAdmin => "va-admin",
            Role::VaUser => "va-user",
        }
    }
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
        UserCommand::Passwd { user, stdin } => {
            super::passwd::passwd(client, out, user, stdin).await
        }
        UserCommand::Grant(g) => grant(client, out, g, "grants").await,
        UserCommand::Revoke(g) => grant(client, out, g, "revoke").await,
    }
}

async fn grant(client: &AdminClient, out: Output, g: GrantArgs, verb: &str) -> Result<()> {
    let req = GrantRole {
        role: g.role.as_str().to_owned(),
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
    #[command(after_help = ex::API_TOKEN_CREATE)]
    Create {
        /// The operator the token acts as (name or id).
        #[arg(long)]
        user: String,
        /// A note for operators (what uses the token).
        #[arg(long, default_value = "")]
        description: String,
        /// Days the token stays valid (default: until revoked).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List API tokens.
    #[command(after_help = ex::API_TOKEN_LIST)]
    List {
        /// Only this operator's tokens (name or id).
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke an API token.
    #[command(after_help = ex::API_TOKEN_REVOKE)]
    Revoke {
        /// The token's id (from `api-token list`), not its secret.
        token: String,
    },
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
