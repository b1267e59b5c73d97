//! How the CLI fails: one message on stderr, and an exit code scripts can branch on.
//!
//! Exit codes are the same for every command: `0` success, `1` a refusal or a failure (the
//! daemon said no, a file is damaged, a replayed file changed nothing), `2` a usage error (the
//! command line itself is wrong, or a destructive command lacks `--yes` without a terminal to
//! ask on). Under `--json` the error is JSON too, on stderr, in the shape of the admin API's
//! error bodies (`{"error":{"code":...,"message":...}}`), with the same exit code.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use serde_json::json;

use super::Cli;
use super::client::Refused;
use crate::store::BackupError;

/// The exit code of a refusal or a failure.
pub const EXIT_REFUSED: u8 = 1;
/// The exit code of a usage error (clap's own).
pub const EXIT_USAGE: u8 = 2;

/// A failure the CLI decides itself (not the daemon), with a stable code and its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub code: &'static str,
    pub message: String,
    pub exit: u8,
}

impl CliError {
    /// The command line is wrong or incomplete: exit 2.
    pub fn usage(code: &'static str, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            exit: EXIT_USAGE,
        }
    }

    /// The command was understood and refused, or changed nothing: exit 1.
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            exit: EXIT_REFUSED,
        }
    }
}

/// Whether `--json` is on the command line, for errors found before it could be parsed.
fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// Parses the command line. A usage error exits 2, as clap's text or, under `--json`, as a
/// JSON error on stderr; `--help` and `--version` print and exit 0 as usual.
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let shown = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
            if shown || !json_requested() {
                e.exit();
            }
            let rendered = e.render().to_string();
            let message = rendered.trim_end();
            print_json("usage", message.strip_prefix("error: ").unwrap_or(message));
            std::process::exit(e.exit_code());
        }
    }
}

fn print_json(code: &str, message: &str) {
    eprintln!(
        "{}",
        json!({ "error": { "code": code, "message": message } })
    );
}

/// The stable code, the message and the exit code of a failed command.
fn describe(err: &anyhow::Error) -> (String, String, u8) {
    if let Some(r) = err.downcast_ref::<Refused>() {
        return (r.code.clone(), r.message.clone(), EXIT_REFUSED);
    }
    if let Some(e) = err.downcast_ref::<CliError>() {
        return (e.code.to_owned(), e.message.clone(), e.exit);
    }
    let code = match err.downcast_ref::<BackupError>() {
        Some(
            BackupError::NotABackup { .. }
            | BackupError::NewerFormat { .. }
            | BackupError::NewerSchema { .. }
            | BackupError::Truncated { .. }
            | BackupError::ChecksumMismatch { .. }
            | BackupError::Damaged { .. },
        ) => "invalid_backup",
        _ => "failed",
    };
    (code.to_owned(), format!("{err:#}"), EXIT_REFUSED)
}

/// Prints why a command failed on stderr (as JSON under `--json`) and returns its exit code.
pub fn report(err: &anyhow::Error, json: bool) -> ExitCode {
    let (code, message, exit) = describe(err);
    if json {
        print_json(&code, &message);
    } else if let Some(r) = err.downcast_ref::<Refused>() {
        eprintln!("error: {} ({}, {})", r.message, r.code, r.status);
    } else {
        eprintln!("error: {message}");
    }
    ExitCode::from(exit)
}
