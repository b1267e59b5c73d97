//! `satellite agent …`: a device from the command line. A thin shell over
//! [`crate::agent::Agent`], for trying a satellite out, scripting a device, and the tests.
//!
//! Unlike the operator commands, these talk to the device listener (`https://HOST:8443`), not
//! to the admin API, and authenticate with the agent's own certificate.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::examples as ex;
use super::fmt::stamp;
use super::table::Table;
use crate::agent::{Agent, AgentError, AgentState, RegisterParams};
use crate::protocol::device::{Authorization, Udi, UsageLine, codes};

/// Act as a device: register, report usage, renew, deregister.
#[derive(Debug, Args)]
#[command(after_help = ex::AGENT)]
pub struct AgentArgs {
    /// Directory holding the agent's key, certificate and state.
    #[arg(long, default_value = "./satellite-agent")]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Register this device with a registration token.
    #[command(after_help = ex::AGENT_REGISTER)]
    Register(RegisterArgs),
    /// Report license usage.
    #[command(after_help = ex::AGENT_REPORT)]
    Report(ReportArgs),
    /// Renew the identity certificate (new key).
    #[command(after_help = ex::AGENT_RENEW)]
    Renew,
    /// Show the local state and the satellite's current authorization.
    #[command(after_help = ex::AGENT_STATUS)]
    Status,
    /// Deregister this device; its licenses return to the pool.
    #[command(after_help = ex::AGENT_DEREGISTER)]
    Deregister,
    /// Make a reservation request code for a device that can reach nothing (SPEC §8b).
    #[command(after_help = ex::AGENT_RESERVE_REQUEST)]
    ReserveRequest(super::reserve::RequestArgs),
    /// Verify and install the authorization code `satellite reserve` printed.
    #[command(after_help = ex::AGENT_RESERVE_INSTALL)]
    ReserveInstall(super::reserve::InstallArgs),
    /// Show the installed reservation, if any.
    #[command(after_help = ex::AGENT_RESERVATION)]
    Reservation,
    /// Give the installed reservation back and print the return code for the operator.
    #[command(after_help = ex::AGENT_RESERVE_RETURN)]
    ReserveReturn,
}

/// `--version` here is the device's software version, so clap's own `--version` flag (which
/// `propagate_version` would add) is turned off for this subcommand.
#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
pub struct RegisterArgs {
    /// The satellite's device URL, e.g. https://localhost:8443.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// CA certificate to trust for the satellite (its `tls/ca.pem`).
    #[arg(long, value_name = "FILE")]
    pub ca: PathBuf,
    /// Registration token (from `satellite token create`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SATELLITE_REGISTRATION_TOKEN",
        hide_env_values = true
    )]
    pub token: String,
    /// Product id of the UDI.
    #[arg(long, value_name = "PID")]
    pub pid: String,
    /// Serial number of the UDI.
    #[arg(long, value_name = "SERIAL")]
    pub serial: String,
    /// Host name to register (default: this machine's).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Product name.
    #[arg(long, default_value = "satellite agent")]
    pub product: String,
    /// Software version.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    pub version: String,
    /// Replace an existing registration of this UDI (on the satellite) and of --dir.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// An entitlement in use: TAG=COUNT (repeatable; none reports that nothing is in use).
    #[arg(long = "usage", value_name = "TAG=COUNT", value_parser = parse_usage)]
    pub usage: Vec<UsageLine>,
    /// When the usage was measured, RFC 3339 (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub measured_at: Option<OffsetDateTime>,
}

/// Runs `satellite agent …`.
pub async fn run(args: AgentArgs, json: bool) -> Result<()> {
    let dir = args.dir;
    match args.command {
        AgentCommand::Register(a) => register(dir, a, json).await,
        AgentCommand::Report(a) => {
            let mut agent = open(&dir)?;
            let measured_at = a.measured_at.unwrap_or_else(OffsetDateTime::now_utc);
            let auth = agent
                .report(a.usage, measured_at)
                .await
                .map_err(|e| explain(e, &agent))?;
            print_json_or(json, &auth, || print_authorization(&auth))
        }
        AgentCommand::Renew => {
            let mut agent = open(&dir)?;
            let answer = agent.renew().await.map_err(|e| explain(e, &agent))?;
            let expires = certificate_expiry(&answer.certificate);
            let value = json!({
                "instance_id": agent.instance_id(),
                "renew_after": stamp(&answer.renew_after),
                "certificate_expires_at": expires.as_ref().map(stamp),
            });
            print_json_or(json, &value, || {
                println!(
                    "renewed the certificate of instance {}",
                    agent.instance_id()
                );
                if let Some(t) = &expires {
                    println!("valid until   {}", stamp(t));
                }
                println!("renew after   {}", stamp(&answer.renew_after));
            })
        }
        AgentCommand::Status => status(&dir, json).await,
        AgentCommand::ReserveRequest(a) => super::reserve::agent_request(&dir, a, json),
        AgentCommand::ReserveInstall(a) => super::reserve::agent_install(&dir, a, json),
        AgentCommand::Reservation => super::reserve::agent_show(&dir, json),
        AgentCommand::ReserveReturn => super::reserve::agent_return(&dir, json),
        AgentCommand::Deregister => {
            let mut agent = open(&dir)?;
            let answer = agent.deregister().await.map_err(|e| explain(e, &agent))?;
            print_json_or(json, &answer, || {
                println!("deregistered instance {}", answer.instance_id);
                if answer.released.is_empty() {
                    println!("no licenses were in use");
                } else {
                    let mut t = Table::new(&["RELEASED TAG", "COUNT"]).right(&[1]);
                    for l in &answer.released {
                        t.row(vec![l.entitlement_tag.clone(), l.count.to_string()]);
                    }
                    print!("{}", t.render());
                }
            })
        }
    }
}

async fn register(dir: PathBuf, a: RegisterArgs, json: bool) -> Result<()> {
    let ca_pem = std::fs::read_to_string(&a.ca).with_context(|| {
        format!(
            "cannot read the CA certificate {} (copy the satellite's `tls/ca.pem` and give it \
             with --ca)",
            a.ca.display()
        )
    })?;
    let udi = Udi {
        pid: a.pid,
        serial: a.serial,
    };
    let params = RegisterParams {
        token: a.token,
        udi: udi.clone(),
        hostname: a.hostname.unwrap_or_else(this_hostname),
        product: a.product,
        version: a.version,
        force: a.force,
    };
    let (agent, answer) = Agent::register(&dir, &a.url, &ca_pem, params)
        .await
        .map_err(|e| explain_register(e, &a.url, &udi))?;
    let value = json!({
        "dir": agent.dir(),
        "instance_id": answer.instance_id,
        "renew_after": stamp(&answer.renew_after),
        "report_interval_secs": answer.report_interval_secs,
        "certificate_expires_at": certificate_expiry(&answer.certificate).as_ref().map(stamp),
        "authorization": answer.authorization,
    });
    print_json_or(json, &value, || {
        println!(
            "registered {} as instance {}",
            super::fmt::udi(&udi.pid, &udi.serial),
            answer.instance_id
        );
        println!("state in      {}", agent.dir().display());
        println!("renew after   {}", stamp(&answer.renew_after));
        println!("report every  {}", interval(answer.report_interval_secs));
        println!("status        {}", answer.authorization.status);
    })
}

async fn status(dir: &std::path::Path, json: bool) -> Result<()> {
    let mut agent = open(dir)?;
    let fresh = agent.authorization().await;
    let state = agent.state().clone();
    let expires = certificate_expiry(&agent.identity().cert_pem);
    let (auth, error) = match fresh {
        Ok(auth) => (Some(auth), None),
        Err(e) => (state.last_authorization.clone(), Some(explain(e, &agent))),
    };
    let value = json!({
        "dir": agent.dir(),
        "url": state.url,
        "instance_id": state.instance_id,
        "udi": state.udi,
        "hostname": state.hostname,
        "seq": state.seq,
        "renew_after": stamp(&state.renew_after),
        "renew_due": agent.renew_due(OffsetDateTime::now_utc()),
        "certificate_expires_at": expires.as_ref().map(stamp),
        "report_interval_secs": state.report_interval_secs,
        "deregistered": state.deregistered,
        "authorization": auth,
        "authorization_is_current": error.is_none(),
    });
    print_json_or(json, &value, || {
        print_status(&agent, &state, expires, auth.as_ref(), &error)
    })?;
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn print_status(
    agent: &Agent,
    state: &AgentState,
    expires: Option<OffsetDateTime>,
    auth: Option<&Authorization>,
    error: &Option<anyhow::Error>,
) {
    println!("instance      {}", state.instance_id);
    println!(
        "udi           {}",
        super::fmt::udi(&state.udi.pid, &state.udi.serial)
    );
    println!("hostname      {}", state.hostname);
    println!("satellite     {}", state.url);
    println!("state in      {}", agent.dir().display());
    println!("last seq      {}", state.seq);
    let due = if agent.renew_due(OffsetDateTime::now_utc()) {
        " (due: run `satellite agent renew`)"
    } else {
        ""
    };
    println!("renew after   {}{due}", stamp(&state.renew_after));
    if let Some(t) = expires {
        println!("cert expires  {}", stamp(&t));
    }
    println!("report every  {}", interval(state.report_interval_secs));
    if state.deregistered {
        println!("deregistered");
        return;
    }
    match auth {
        Some(auth) => {
            if error.is_some() {
                println!("last known authorization (the satellite could not be asked):");
            }
            println!();
            print_authorization(auth);
        }
        None => println!("no authorization known yet"),
    }
}

fn print_authorization(auth: &Authorization) {
    if !auth.entitlements.is_empty() {
        let mut t = Table::new(&["TAG", "COUNT", "STATUS"]).right(&[1]);
        for e in &auth.entitlements {
            t.row(vec![
                e.entitlement_tag.clone(),
                e.count.to_string(),
                e.status.clone(),
            ]);
        }
        print!("{}", t.render());
        println!();
    }
    println!("instance           {}", auth.instance_id);
    println!("status             {}", auth.status);
    println!("next report by     {}", stamp(&auth.next_report_by));
    println!(
        "authorized until   {}",
        stamp(&auth.authorization_expires_at)
    );
}

fn print_json_or<T: serde::Serialize>(json: bool, value: &T, human: impl FnOnce()) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human();
    }
    Ok(())
}

fn open(dir: &std::path::Path) -> Result<Agent> {
    Agent::open(dir).map_err(|e| anyhow!(e))
}

/// Turns a failed registration into a message naming the cause and the fix.
fn explain_register(err: AgentError, url: &str, udi: &Udi) -> anyhow::Error {
    let advice = match err.code() {
        Some(codes::INVALID_TOKEN) => Some(
            "the registration token was not accepted; check it, or ask the operator for a new \
             one (`satellite token create`)"
                .to_owned(),
        ),
        Some(codes::TOKEN_EXPIRED) => Some(
            "the registration token has expired; ask the operator for a new one (`satellite \
             token create`)"
                .to_owned(),
        ),
        Some(codes::TOKEN_REVOKED) => Some(
            "the registration token was revoked; ask the operator for a new one (`satellite \
             token create`)"
                .to_owned(),
        ),
        Some(codes::TOKEN_EXHAUSTED) => Some(
            "the registration token has been used as many times as it allows; ask the operator \
             for a new one (`satellite token create`)"
                .to_owned(),
        ),
        Some(codes::ALREADY_REGISTERED) => Some(format!(
            "a device with UDI {} is already registered; add --force to replace its \
             registration (its old certificate is revoked)",
            super::fmt::udi(&udi.pid, &udi.serial)
        )),
        Some(codes::RATE_LIMITED) => Some(
            "too many failed registrations from this address; wait a minute, then retry with a \
             valid token"
                .to_owned(),
        ),
        Some(codes::ACCOUNT_PENDING) => Some(
            "the token's account is not active yet; ask the operator to activate it".to_owned(),
        ),
        _ => None,
    };
    match (advice, &err) {
        (Some(advice), AgentError::Refused { message, .. }) => {
            anyhow!("{advice} (satellite: {message})")
        }
        (_, AgentError::Transport(_)) => anyhow!(
            "{err}; check that the satellite is running at {url} and that --ca is the CA that \
             signed its server certificate"
        ),
        _ => common(err),
    }
}

/// Turns a failed call of a registered agent into a message naming the cause and the fix.
fn explain(err: AgentError, agent: &Agent) -> anyhow::Error {
    let again = format!(
        "register again with `satellite agent --dir {} register --force ...`",
        agent.dir().display()
    );
    let advice = match err.code() {
        Some(codes::CERTIFICATE_REVOKED) => Some(format!(
            "this agent's certificate was revoked (the device was registered again elsewhere, \
             or renewed from another copy of this directory); {again}"
        )),
        Some(codes::UNKNOWN_INSTANCE) => Some(format!(
            "the satellite no longer knows instance {} (removed by an operator, or deregistered \
             after too long without contact); {again}",
            agent.instance_id()
        )),
        Some(codes::STALE_SEQ) => Some(format!(
            "the satellite has already seen a newer report from instance {} than seq {} (is \
             this directory a restored or copied one?); {again}",
            agent.instance_id(),
            agent.state().seq
        )),
        Some(codes::CERTIFICATE_REQUIRED) => Some(
            "the satellite did not receive this agent's certificate; a TLS-terminating proxy \
             between them must pass client certificates through"
                .to_owned(),
        ),
        _ => None,
    };
    match (advice, &err) {
        (Some(advice), AgentError::Refused { message, .. }) => {
            anyhow!("{advice} (satellite: {message})")
        }
        (_, AgentError::Transport(_)) => anyhow!(
            "{err}; check that the satellite is running and reachable at {}",
            agent.state().url
        ),
        _ => common(err),
    }
}

fn common(err: AgentError) -> anyhow::Error {
    match err.code() {
        Some(codes::RATE_LIMITED) => anyhow!("{err}; wait a minute and retry"),
        Some(codes::UNAVAILABLE) => anyhow!("{err}; the satellite cannot write now, retry later"),
        _ => anyhow!(err),
    }
}

/// Parses `TAG=COUNT`; the tag is everything before the last `=`.
fn parse_usage(s: &str) -> Result<UsageLine, String> {
    let (tag, count) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("`{s}` is not TAG=COUNT"))?;
    if tag.is_empty() {
        return Err(format!("`{s}` has no entitlement tag before `=`"));
    }
    let count = count
        .parse()
        .map_err(|_| format!("`{count}` in `{s}` is not a count (a whole number)"))?;
    Ok(UsageLine {
        entitlement_tag: tag.to_owned(),
        count,
    })
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| format!("`{s}` is not an RFC 3339 time (e.g. 2025-03-01T12:00:00Z)"))
}

fn interval(secs: u64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s => format!("{s} seconds"),
    }
}

/// The end of validity of a PEM certificate, if it can be read.
fn certificate_expiry(pem: &str) -> Option<OffsetDateTime> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.to_datetime())
}

/// This machine's host name, as the kernel knows it.
fn this_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// The shape the lead wires in: global flags of the operator CLI (some share names with
    /// `register`'s) and the agent under them.
    #[derive(Debug, Parser)]
    #[command(name = "satellite", version, propagate_version = true)]
    struct Cli {
        #[arg(long, global = true, requires = "token")]
        url: Option<String>,
        #[arg(long, global = true, env = "SATELLITE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[arg(long, global = true)]
        ca: Option<PathBuf>,
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: Top,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Top {
        Agent(AgentArgs),
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("satellite").chain(args.iter().copied()))
    }

    #[test]
    fn the_cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn register_takes_its_own_url_token_and_version() {
        let cli = parse(&[
            "agent",
            "--dir",
            "/tmp/a",
            "register",
            "--url",
            "https://s:8443",
            "--ca",
            "ca.pem",
            "--token",
            "T",
            "--pid",
            "P",
            "--serial",
            "S",
            "--version",
            "1.2",
            "--json",
        ])
        .expect("parses");
        assert!(cli.json);
        let Top::Agent(args) = cli.command;
        assert_eq!(args.dir, PathBuf::from("/tmp/a"));
        let AgentCommand::Register(r) = args.command else {
            panic!("register expected");
        };
        assert_eq!(r.url, "https://s:8443");
        assert_eq!(r.token, "T");
        assert_eq!(r.version, "1.2");
        assert!(!r.force);

        // A --url before `register` is the operator CLI's; register still demands its own.
        let err = parse(&[
            "agent",
            "--url",
            "https://s:8443",
            "--token",
            "T",
            "register",
            "--ca",
            "ca.pem",
            "--token",
            "T",
            "--pid",
            "P",
            "--serial",
            "S",
        ])
        .expect_err("register needs --url");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn report_parses_usage_and_time() {
        let cli = parse(&[
            "agent",
            "report",
            "--usage",
            "regid.2019-03.com.example.ADV=3",
            "--usage",
            "a=b=0",
            "--measured-at",
            "2025-03-01T12:00:00Z",
        ])
        .expect("parses");
        let Top::Agent(args) = cli.command;
        assert_eq!(args.dir, PathBuf::from("./satellite-agent"));
        let AgentCommand::Report(r) = args.command else {
            panic!("report expected");
        };
        assert_eq!(r.usage[0].entitlement_tag, "regid.2019-03.com.example.ADV");
        assert_eq!(r.usage[0].count, 3);
        assert_eq!(r.usage[1].entitlement_tag, "a=b");
        assert!(r.measured_at.is_some());
        for bad in ["ADV", "=3", "ADV=x", "ADV=-1"] {
            assert!(
                parse(&["agent", "report", "--usage", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(parse(&["agent", "report", "--measured-at", "yesterday"]).is_err());
    }

    #[test]
    fn intervals_read_naturally() {
        assert_eq!(interval(2_592_000), "30 days");
        assert_eq!(interval(7_200), "2 hours");
        assert_eq!(interval(90), "90 seconds");
    }
}
