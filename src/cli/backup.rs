//! `satellite backup`, `satellite backup verify` and `satellite restore` (SPEC §9).
//!
//! `backup` asks the running daemon for a consistent snapshot (`GET /v1/backup`), writes it to
//! a temporary file beside `FILE` (created exclusively, mode 0600, see `fsutil`), checks it
//! completely and only then renames it to `FILE`: a `FILE` that exists is always a whole,
//! verified backup. `backup verify` checks a file offline, as a restore would before writing
//! anything. `restore` works offline on a stopped satellite: it
//! refuses a data directory whose admin socket answers or that holds anything, builds the new
//! data directory beside it and renames it into place only once the store is restored and opens.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use super::client::AdminClient;
use super::progress::Meter;
use crate::fsutil::NewFile;
use crate::store::{BackupSummary, Store, tables};

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = super::examples::BACKUP
)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// Where to write the backup (mode 0600). It is written to a temporary file beside FILE and
    /// renamed to FILE once it is complete and its checksum verified; an existing FILE is
    /// replaced, a symbolic link at FILE is refused.
    #[arg(long = "out", value_name = "FILE", required = true)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Check a backup file completely (structure, record counts, checksum) and print what it
    /// holds; offline, no daemon needed. Exits 1 if the file is damaged or incomplete.
    #[command(after_help = super::examples::BACKUP_VERIFY)]
    Verify {
        /// The backup file (from `satellite backup --out FILE`).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
#[command(after_help = super::examples::RESTORE)]
pub struct RestoreArgs {
    /// The backup file to restore (from `satellite backup`). The target is the data directory
    /// (`--data-dir` or the configuration's), which must be new or empty.
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
}

/// The mode of a backup file.
const BACKUP_MODE: u32 = 0o600;

/// `satellite backup --out FILE`.
pub async fn backup(client: &AdminClient, json: bool, args: BackupArgs) -> Result<()> {
    let Some(out) = args.out else {
        bail!("give the file to write with --out FILE");
    };
    // A backup holds every secret hash and license of every tenant: owner only.
    let mut file = NewFile::create(&out, BACKUP_MODE)?;
    let mut meter = Meter::stderr();
    let result = async {
        client
            .download("/v1/backup", |chunk| {
                file.write_all(chunk)?;
                meter.bytes(chunk.len() as u64);
                Ok(())
            })
            .await?;
        meter.done();
        let summary = crate::store::backup::verify(file.temp_path(), |p| meter.records(p))
            .context("the backup the daemon sent does not verify")?;
        meter.done();
        // Dropping the file on an error above removes the temporary file.
        file.commit()?;
        Ok::<_, anyhow::Error>(summary)
    }
    .await;
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            meter.done();
            return Err(e);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&describe(&summary, &out))?
        );
    } else {
        println!("backup written to {}", out.display());
        print_summary(&summary);
    }
    Ok(())
}

/// `satellite restore --in FILE`: offline, into the (new or empty) data directory.
pub fn restore(global: &super::Global, args: RestoreArgs) -> Result<()> {
    let settings = global.settings()?;
    let dir = settings.data_dir;
    let socket = global.socket.clone().unwrap_or(settings.admin.socket);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        bail!(
            "a satellite is running on {} (its admin socket {} answers): stop the daemon first, \
             then restore into a new or empty data directory",
            dir.display(),
            socket.display()
        );
    }
    let holds_files = match std::fs::read_dir(&dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    if holds_files {
        bail!(
            "{} already holds a store (or other files); restore into an empty or new directory \
             (give it with --data-dir DIR)",
            dir.display()
        );
    }
    // The new data directory is built beside the target and renamed into place when complete,
    // so a failed restore leaves nothing at the target. Its name is random and it is created
    // exclusively, so nothing planted beside the target can receive the store.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let tmp = crate::fsutil::private_dir_beside(&dir, "restore")?;
    let mut meter = Meter::stderr();
    let result = Store::import(&args.input, &tmp.join("store"), tables::TABLES, |p| {
        meter.records(p)
    })
    .map_err(anyhow::Error::from)
    .and_then(|summary| {
        std::fs::rename(&tmp, &dir)
            .with_context(|| format!("cannot move the restored data to {}", dir.display()))?;
        sync_parent(&dir)?;
        Ok(summary)
    });
    meter.done();
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if global.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&describe(&summary, &args.input))?
        );
    } else {
        println!("restored {} into {}", args.input.display(), dir.display());
        print_summary(&summary);
        println!(
            "note: a backup holds the store only. Before starting the daemon, copy tls/ (the \
             device CA and server certificate) from the old data directory into {}, or \
             registered devices will not trust the new CA the daemon would create",
            dir.display()
        );
    }
    Ok(())
}

/// `satellite backup verify FILE`: reads the whole file and checks it; writes nothing.
pub fn verify(json: bool, file: &Path) -> Result<()> {
    let mut meter = Meter::stderr();
    let result = crate::store::backup::verify(file, |p| meter.records(p));
    meter.done();
    let summary = result?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&describe(&summary, file))?
        );
    } else {
        println!("backup {} is intact", file.display());
        print_summary(&summary);
    }
    Ok(())
}

/// When the backup was taken, RFC 3339 (the file holds unix seconds).
fn taken_at(s: &BackupSummary) -> String {
    time::OffsetDateTime::from_unix_timestamp(s.created_at)
        .map(|t| super::fmt::stamp(&t))
        .unwrap_or_else(|_| s.created_at.to_string())
}

fn print_summary(s: &BackupSummary) {
    let tables: Vec<String> = s.tables.iter().map(|(n, c)| format!("{n} {c}")).collect();
    println!("taken at  {}", taken_at(s));
    println!("records   {} ({})", s.records, tables.join(", "));
    println!("bytes     {}", s.bytes);
    println!(
        "sha256    {}  (of the whole file, as `sha256sum` prints it)",
        s.sha256
    );
    println!("schema    {} (backup format {})", s.schema, s.format);
}

fn describe(s: &BackupSummary, file: &Path) -> serde_json::Value {
    let tables: serde_json::Map<String, serde_json::Value> = s
        .tables
        .iter()
        .map(|(n, c)| (n.clone(), json!(c)))
        .collect();
    json!({
        "file": file,
        "created_at": taken_at(s),
        "records": s.records,
        "tables": tables,
        "bytes": s.bytes,
        "sha256": s.sha256,
        "content_sha256": s.content_sha256,
        "schema_version": s.schema,
        "format_version": s.format,
    })
}

/// Makes a rename of `path` durable by syncing its directory.
fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory {}", parent.display()))
}
