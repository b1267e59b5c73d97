//! Confirmation of destructive commands (`device remove`, `license remove`, `va delete`).
//!
//! On a terminal the operator is shown what would go and asked. Without one (a script, a pipe)
//! nobody can answer, and guessing either way is wrong, so the command is refused as a usage
//! error naming `--yes`; `--dry-run` shows what would go and changes nothing.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use clap::Args;

use super::errors::CliError;

/// `--yes` and `--dry-run`, for every destructive command.
#[derive(Debug, Clone, Copy, Args)]
pub struct Confirm {
    /// Do it without asking (needed when stdin is not a terminal, as in scripts).
    #[arg(long, short = 'y', conflicts_with = "dry_run")]
    pub yes: bool,
    /// Show what would be removed and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What to do after [`Confirm::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Proceed,
    /// `--dry-run`: the caller prints what would be removed and stops.
    DryRun,
}

impl Confirm {
    /// Decides whether to go ahead with removing `what` (a phrase such as `device X (PID:SN)`):
    /// `--yes` goes ahead, `--dry-run` does not, a terminal asks, anything else is refused.
    pub fn decide(self, what: &str) -> Result<Decision> {
        if self.dry_run {
            return Ok(Decision::DryRun);
        }
        if self.yes {
            return Ok(Decision::Proceed);
        }
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(CliError::usage(
                "confirmation_required",
                format!(
                    "this would remove {what}, and there is no terminal to confirm on: add \
                     --yes to do it, or --dry-run to see what it would remove"
                ),
            )
            .into());
        }
        eprint!("remove {what}? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        stdin.lock().read_line(&mut answer)?;
        if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            Ok(Decision::Proceed)
        } else {
            Err(CliError::refused("not_confirmed", "not confirmed; nothing was changed").into())
        }
    }
}
