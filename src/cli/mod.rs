//! The command line: `satellite serve` runs the daemon; every other command is a client of the
//! running daemon's admin API (SPEC §5).

pub mod agent;
mod backup;
mod cisco_acks;
mod cisco_devices;
mod client;
mod commands;
mod confirm;
mod devices;
mod errors;
mod events;
mod examples;
mod fmt;
mod generate;
mod imports;
mod licenses;
pub mod loadgen;
mod locate;
mod output;
mod passwd;
mod progress;
mod reserve;
mod suggest;
mod sync;
mod table;
mod users;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

pub use client::{AdminClient, Refused, Target};
pub use errors::{CliError, parse, report};

use crate::config::{Config, Settings};

/// On-premises license satellite.
#[derive(Debug, Parser)]
#[command(
    name = "satellite",
    version,
    about,
    propagate_version = true,
    after_help = examples::SATELLITE
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The heading the options every command takes are listed under, apart from its own.
const GLOBAL: &str = "Global options";

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Configuration file (default: the embedded defaults).
    #[arg(long, global = true, env = "SATELLITE_CONFIG", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` of the configuration).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub data_dir: Option<PathBuf>,
    /// Admin socket to talk to (default: `admin.socket` of --config; without it
    /// `./satellite-data/admin.sock`, then the packaged `/etc/satellite/satellite.toml` and
    /// `/run/satellite/admin.sock`, whichever exists first).
    #[arg(long, global = true, env = "SATELLITE_SOCKET", help_heading = GLOBAL)]
    pub socket: Option<PathBuf>,
    /// Talk to a remote satellite's HTTPS admin API instead of the local socket.
    #[arg(long, global = true, requires = "token", help_heading = GLOBAL)]
    pub url: Option<String>,
    /// API token for --url.
    #[arg(
        long,
        global = true,
        env = "SATELLITE_TOKEN",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    pub token: Option<String>,
    /// CA certificate that signed the remote satellite's server certificate (for --url;
    /// default: the local data directory's `tls/ca.pem`).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub ca: Option<PathBuf>,
    /// Machine-readable JSON output (errors too: `{"error":{"code","message"}}` on stderr).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    #[command(after_help = examples::SERVE)]
    Serve,
    /// Show what the running satellite holds and how it is doing.
    #[command(after_help = examples::STATUS)]
    Status,
    /// Configuration file tools.
    #[command(subcommand, after_help = examples::CONFIG)]
    Config(ConfigCommand),
    /// Smart Accounts held by this satellite.
    #[command(subcommand, after_help = examples::ACCOUNT)]
    Account(commands::AccountCommand),
    /// Virtual Accounts.
    #[command(subcommand, name = "va", after_help = examples::VA)]
    Va(commands::VaCommand),
    /// License pools.
    #[command(subcommand, after_help = examples::LICENSE)]
    License(licenses::LicenseCommand),
    /// Registration tokens for devices.
    #[command(subcommand, after_help = examples::TOKEN)]
    Token(users::TokenCommand),
    /// Operators and their roles.
    #[command(subcommand, after_help = examples::USER)]
    User(users::UserCommand),
    /// API tokens for the HTTPS admin API.
    #[command(subcommand, name = "api-token", after_help = examples::API_TOKEN)]
    ApiToken(users::ApiTokenCommand),
    /// The audit log.
    Events(events::EventsArgs),
    /// Registered devices (product instances).
    #[command(subcommand, after_help = examples::DEVICE)]
    Device(devices::DeviceCommand),
    /// Shortages per VA and tag, and where spare licenses are.
    Compliance(devices::ComplianceArgs),
    /// Alerts that hold now (expiring licenses, shortages, silent devices...).
    #[command(after_help = examples::ALERTS)]
    Alerts,
    /// Act as a device: register, report usage, renew, deregister (protocol v1 over TLS).
    Agent(agent::AgentArgs),
    /// Take a consistent backup of the running satellite's store into a file, or check one
    /// (`backup verify FILE`, offline).
    Backup(backup::BackupArgs),
    /// Restore a backup into a new data directory (offline: the daemon must be stopped).
    Restore(backup::RestoreArgs),
    /// Simulate many devices to measure a satellite: throughput, latency, memory.
    Loadgen(loadgen::LoadgenArgs),
    /// Upstream sync: binding, network and file sync, child satellites, signing keys.
    #[command(subcommand, after_help = examples::SYNC)]
    Sync(sync::SyncCommand),
    /// License reservation for devices that can reach nothing: reserve for a request code,
    /// release with a return code, list, cancel.
    Reserve(reserve::ReserveArgs),
    /// Cisco Smart Licensing Using Policy (docs/cisco.md): devices polled for RUM reports, usage
    /// files for Cisco's portal, the ACKs it returns, what waits per device.
    #[command(after_help = examples::CISCO)]
    Cisco {
        #[command(subcommand)]
        cmd: CiscoCmd,
    },
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    #[command(after_help = examples::COMPLETIONS)]
    Completions(generate::CompletionsArgs),
    /// Write the manual pages (satellite.1 and one per subcommand) into a directory.
    #[command(after_help = examples::MAN_PAGES)]
    ManPages(generate::ManPagesArgs),
}

#[derive(Debug, Subcommand)]
pub enum CiscoCmd {
    /// Devices the satellite polls over their Smart Licensing REST API (pull mode).
    Device {
        #[command(subcommand)]
        cmd: cisco_devices::CiscoDeviceCmd,
    },
    /// Poll now: one device, or every device you may change; prints what each poll came to.
    #[command(after_help = cisco_devices::POLL)]
    Poll {
        /// The device's name or id (default: all).
        device: Option<String>,
    },
    #[command(flatten)]
    Loop(cisco_acks::CiscoLoopCmd),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the settings it resolves to.
    #[command(after_help = examples::CONFIG_CHECK)]
    Check,
}

impl Global {
    /// Loads the configuration file if one was given, else the embedded defaults, and applies
    /// the command-line overrides.
    pub fn settings(&self) -> Result<Settings> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.data_dir = Some(dir.clone());
        }
        Ok(config.resolve()?)
    }

    fn target(&self) -> Result<Target> {
        if let Some(url) = &self.url {
            let settings = self.settings()?;
            let ca_path = self
                .ca
                .clone()
                .unwrap_or_else(|| settings.data_dir.join("tls").join("ca.pem"));
            let ca_pem = std::fs::read_to_string(&ca_path).with_context(|| {
                format!(
                    "cannot read the CA certificate {} (give the remote satellite's CA with --ca)",
                    ca_path.display()
                )
            })?;
            return Ok(Target::Https {
                url: url.clone(),
                token: self.token.clone().unwrap_or_default(),
                ca_pem,
            });
        }
        Ok(Target::Socket(locate::admin_socket(self)?))
    }
}

/// Runs a client command (everything but `serve`).
pub async fn run_client(global: &Global, command: Command) -> Result<()> {
    match command {
        Command::Config(ConfigCommand::Check) => return commands::config_check(global),
        Command::Agent(a) => return agent::run(a, global.json).await,
        Command::Restore(a) => return backup::restore(global, a),
        Command::Backup(backup::BackupArgs {
            command: Some(backup::BackupCommand::Verify { file }),
            ..
        }) => return backup::verify(global.json, &file),
        Command::Loadgen(a) => return loadgen::run(a, global).await,
        Command::Completions(a) => return generate::completions(&a),
        Command::ManPages(a) => return generate::man_pages(&a),
        Command::Sync(sync::SyncCommand::Keygen { out }) => {
            return imports::keygen(output::Output { json: global.json }, &out);
        }
        Command::License(licenses::LicenseCommand::Sign(a)) => {
            return imports::sign_file(output::Output { json: global.json }, a);
        }
        _ => {}
    }
    let client = AdminClient::new(global.target()?);
    let out = output::Output { json: global.json };
    let result = match command {
        Command::Serve
        | Command::Config(_)
        | Command::Agent(_)
        | Command::Loadgen(_)
        | Command::Restore(_)
        | Command::Completions(_)
        | Command::ManPages(_) => {
            unreachable!("handled above or by the caller")
        }
        Command::Status => commands::status(&client, out).await,
        Command::Account(c) => commands::account(&client, out, c).await,
        Command::Va(c) => commands::va(&client, out, c).await,
        Command::License(c) => licenses::license(&client, out, c).await,
        Command::Token(c) => users::token(&client, out, c).await,
        Command::User(c) => users::user(&client, out, c).await,
        Command::ApiToken(c) => users::api_token(&client, out, c).await,
        Command::Events(a) => events::events(&client, out, a).await,
        Command::Device(c) => devices::device(&client, out, c).await,
        Command::Compliance(a) => devices::compliance(&client, out, a).await,
        Command::Alerts => devices::alerts(&client, out).await,
        Command::Backup(a) => backup::backup(&client, global.json, a).await,
        Command::Sync(c) => sync::run(&client, out, c).await,
        Command::Reserve(a) => reserve::reserve(&client, out, a).await,
        Command::Cisco { cmd } => match cmd {
            CiscoCmd::Device { cmd } => cisco_devices::device(&client, out, cmd).await,
            CiscoCmd::Poll { device } => cisco_devices::poll(&client, out, device).await,
            CiscoCmd::Loop(cmd) => cisco_acks::run(&client, out, cmd).await,
        },
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(suggest::va_not_found(&client, e).await),
    }
}
