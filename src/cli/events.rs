//! `satellite events`: the audit log, filtered and paged.

use anyhow::Result;
use clap::Args;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::{AdminClient, query};
use super::fmt::parse_time;
use super::fmt::stamp;
use super::output::Output;
use super::table::Table;
use crate::protocol::admin::*;

/// Every action the satellite writes to its audit log. `events --action` takes one of these or
/// a family of them (the part before a dot, such as `license` or `sync.request`); a test checks
/// this list against the actions the code writes.
pub const ACTIONS: &[&str] = &[
    "account.approve",
    "account.create",
    "api_token.create",
    "api_token.revoke",
    "backup.create",
    "cisco.ack_delivered",
    "cisco.ack_delivery_failed",
    "cisco.ack_import",
    "cisco.ack_import_refused",
    "cisco.export",
    "cisco.device_added",
    "cisco.device_removed",
    "console.login",
    "console.login_failed",
    "console.logout",
    "device.auto_deregister",
    "device.clock_skew",
    "device.deregister",
    "device.move",
    "device.register",
    "device.remove",
    "device.renew",
    "device.reregister",
    "device.rum_refused",
    "device.rum_report",
    "license.add",
    "license.import",
    "license.remove",
    "license.transfer",
    "reservation.cancel",
    "reservation.create",
    "reservation.return",
    "sync.child.create",
    "sync.child.register",
    "sync.device.remove_order",
    "sync.failed",
    "sync.refused",
    "sync.register",
    "sync.request.apply",
    "sync.request.create",
    "sync.request.replayed",
    "sync.response.apply",
    "sync.response.replayed",
    "token.create",
    "token.revoke",
    "user.create",
    "user.delete",
    "user.grant",
    "user.passwd",
    "user.revoke",
    "va.create",
    "va.delete",
    "va.move",
];

/// Whether `a` is an action or a family of actions (a prefix ending at a dot).
fn known_action(a: &str) -> bool {
    ACTIONS
        .iter()
        .any(|x| *x == a || x.strip_prefix(a).is_some_and(|rest| rest.starts_with('.')))
}

/// Accepts a known action or family, so that a typo is a usage error rather than an empty
/// listing that looks like "nothing happened".
fn parse_action(a: &str) -> Result<String, String> {
    if known_action(a) {
        return Ok(a.to_owned());
    }
    let mut families: Vec<&str> = ACTIONS
        .iter()
        .filter_map(|x| x.split_once('.').map(|(f, _)| f))
        .collect();
    families.dedup();
    Err(format!(
        "`{a}` is not an action the satellite records; give one of {} or a family of them: {}",
        ACTIONS.join(", "),
        families.join(", ")
    ))
}

#[derive(Debug, Args)]
#[command(after_help = super::examples::EVENTS)]
pub struct EventsArgs {
    /// From this time on (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    since: Option<OffsetDateTime>,
    /// Before this time (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    until: Option<OffsetDateTime>,
    /// Only events of this account (name, domain or id).
    #[arg(long)]
    account: Option<String>,
    /// Only events of this VA (`ACCOUNT/Default/...` or an id).
    #[arg(long)]
    va: Option<String>,
    /// Only events of this device (its instance id).
    #[arg(long)]
    device: Option<String>,
    /// An action (`license.transfer`) or a family of them (`license`); an unknown one is
    /// refused with the list of valid ones.
    #[arg(long, value_parser = parse_action)]
    action: Option<String>,
    /// At most this many events, newest first (1 to 10000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Only events numbered below SEQ: page back from the last SEQ shown.
    #[arg(long, value_name = "SEQ")]
    before: Option<u64>,
}

pub async fn events(client: &AdminClient, out: Output, a: EventsArgs) -> Result<()> {
    let fmt = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
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
                stamp(&e.at),
                e.actor.clone(),
                e.action.clone(),
                e.subject.clone(),
                details.join(" "),
            ]);
        }
        print!("{}", t.render());
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_families_are_accepted_and_typos_refused() {
        for ok in [
            "license",
            "license.transfer",
            "sync.request",
            "sync",
            "device.remove",
        ] {
            assert_eq!(parse_action(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "licence",
            "license.",
            "lic",
            "sync.req",
            "device.removed",
            "",
        ] {
            let err = parse_action(bad).expect_err(bad);
            assert!(
                err.contains("license.transfer") && err.contains("va"),
                "{err}"
            );
        }
    }

    /// The quoted action names in the library's own code (not its tests): every
    /// `NewEvent::new("…"` literal, and every `"device.…"` literal of the domain and the
    /// servers (device actions are passed through variables; elsewhere `"device.listen"` is a
    /// configuration key).
    fn actions_in_code() -> std::collections::BTreeSet<String> {
        let mut found = std::collections::BTreeSet::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src") {
                let path = entry.expect("entry").path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if path.is_dir() {
                    if name != "tests" {
                        dirs.push(path);
                    }
                    continue;
                }
                if !name.ends_with(".rs") || name == "tests.rs" {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read");
                let serving = ["/src/domain/", "/src/server/"]
                    .iter()
                    .any(|d| path.to_string_lossy().contains(d));
                // Inline test modules come last in a file.
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                let markers: &[(&str, &str)] = match serving {
                    true => &[("NewEvent::new(\"", ""), ("\"device.", "device.")],
                    false => &[("NewEvent::new(\"", "")],
                };
                for (marker, keep) in markers {
                    for piece in code.split(marker).skip(1) {
                        let action: String = piece
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_' || *c == '.')
                            .collect();
                        if piece[action.len()..].starts_with('"') {
                            found.insert(format!("{keep}{action}"));
                        }
                    }
                }
            }
        }
        found
    }

    #[test]
    fn the_action_list_is_the_set_of_actions_the_code_records() {
        let found = actions_in_code();
        let listed: std::collections::BTreeSet<String> =
            ACTIONS.iter().map(|a| a.to_string()).collect();
        assert_eq!(listed, found, "update ACTIONS in src/cli/events.rs");
    }
}
