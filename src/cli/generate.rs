//! Documents generated from the command-line definition itself, so they cannot drift from it:
//! shell completions (`satellite completions SHELL`) and manual pages (`satellite man-pages
//! --out-dir DIR`). The package build installs both (`packaging/build-deb.sh`); on a host
//! installed by hand an operator runs them once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use clap_mangen::Man;

use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManPagesArgs {
    /// Directory to write the pages into (created if missing); existing pages are replaced.
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
}

/// Prints the completion script for `shell` on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "satellite", &mut script);
    use std::io::Write;
    match std::io::stdout().write_all(&script) {
        // `satellite completions bash | head` closes stdout early: end quietly, as a filter should.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("cannot write the completion script"),
    }
}

/// Writes `satellite.1` and one page per subcommand at every level (`satellite-account.1`,
/// `satellite-account-create.1`, ...) into the directory; prints how many.
pub fn man_pages(args: &ManPagesArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    // Building resolves the names subcommand pages are titled by (`satellite-account`); the
    // `help` subcommand would only repeat what every page's options already say. Hidden
    // commands get no page.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = 0;
    write_pages(&cmd, &args.out_dir, &mut written)?;
    println!(
        "{written} manual pages written to {}",
        args.out_dir.display()
    );
    Ok(())
}

fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut usize) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    let man = Man::new(cmd.clone()).manual("satellite manual");
    let mut page = Vec::new();
    man.render(&mut page)
        .with_context(|| format!("cannot render the page of {}", cmd.get_name()))?;
    crate::fsutil::write_atomically(&dir.join(man.get_filename()), &page, 0o644)?;
    *written += 1;
    Ok(())
}
