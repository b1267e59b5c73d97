//! `satellite cisco …`, the Cisco reporting loop from the command line (SPEC §11,
//! docs/cisco.md): `export` the usage file for Cisco's portal, `import-ack` the archive it
//! returns, `ack` a device's latest ACK file (to install with `license smart import`), and
//! `reports`, what waits for an ACK per device. Files are written through `fsutil`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, Subcommand};

use super::client::{AdminClient, query};
use super::examples as ex;
use super::fmt::stamp_or_dash;
use super::output::Output;
use super::progress::Meter;
use super::table::Table;
use crate::protocol::admin::{
    AckFileView, AckImportView, CiscoExportRequest, CiscoExportView, DeviceReportsView,
};

/// Usage files, ACK files and policies are not secret (Cisco's portal gets them); readable by
/// the operator's other tools.
const FILE_MODE: u32 = 0o644;

#[derive(Debug, Subcommand)]
pub enum CiscoLoopCmd {
    /// Write the usage file for Cisco's portal: every RUM report not yet acknowledged, of one
    /// account (or one VA and those below it). Nothing waiting: no file.
    #[command(after_help = ex::CISCO_EXPORT)]
    Export(ExportArgs),
    /// Import the ACK archive Cisco's portal returned for an export: the reports it names are
    /// acknowledged, each ACK is kept byte for byte for its device.
    #[command(name = "import-ack", after_help = ex::CISCO_IMPORT_ACK)]
    ImportAck {
        /// The archive as the portal returned it (`.tar.gz`).
        file: PathBuf,
    },
    /// Write a device's latest ACK file, to install on it with `license smart import`.
    #[command(after_help = ex::CISCO_ACK)]
    Ack {
        /// The device: `PID:SERIAL`, or the serial alone.
        #[arg(long)]
        device: String,
        /// Look only in this Virtual Account and those below it.
        #[arg(long)]
        va: Option<String>,
        /// Where to write the ACK file (a symbolic link there is refused).
        #[arg(long)]
        out: PathBuf,
    },
    /// Per device: RUM reports held, waiting for an ACK, the oldest waiting, the last ACK.
    #[command(after_help = ex::CISCO_REPORTS)]
    Reports {
        /// Only this Virtual Account and those below it.
        #[arg(long)]
        va: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write, or a directory to write `UD_SA_<time>.tar.gz` into (a symbolic link
    /// at the target is refused).
    #[arg(long)]
    pub out: PathBuf,
    /// Export one Virtual Account and those below it.
    #[arg(long, conflicts_with = "account")]
    pub va: Option<String>,
    /// Export one account (the default when you can see only one).
    #[arg(long)]
    pub account: Option<String>,
}

pub async fn run(client: &AdminClient, out: Output, cmd: CiscoLoopCmd) -> Result<()> {
    match cmd {
        CiscoLoopCmd::Export(a) => export(client, out, a).await,
        CiscoLoopCmd::ImportAck { file } => import_ack(client, out, &file).await,
        CiscoLoopCmd::Ack {
            device,
            va,
            out: path,
        } => ack(client, out, &device, va, &path).await,
        CiscoLoopCmd::Reports { va } => reports(client, out, va).await,
    }
}

async fn export(client: &AdminClient, out: Output, a: ExportArgs) -> Result<()> {
    let body = CiscoExportRequest {
        account: a.account,
        va: a.va,
    };
    let mut view: CiscoExportView = client.post("/v1/cisco/export", &body).await?;
    let (Some(name), Some(archive)) = (view.file.clone(), view.archive.take()) else {
        return out.show(&view, |v| {
            println!(
                "nothing to export: every RUM report of {} is acknowledged (or none was \
                 received); no file was written",
                v.va_path
            );
        });
    };
    let bytes = BASE64
        .decode(archive)
        .context("the daemon sent an archive that is not base64")?;
    let target = if a.out.is_dir() {
        a.out.join(&name)
    } else {
        a.out
    };
    write_with_progress(&target, &bytes)?;
    out.show(&view, |v| {
        println!("wrote {} ({} bytes)", target.display(), bytes.len());
        println!(
            "{} reports of {} devices ({}); upload it to Cisco's portal and import the ACK \
             archive it returns with `satellite cisco import-ack`",
            v.reports,
            v.devices.len(),
            v.va_path
        );
        let mut t = Table::new(&["FILE", "DEVICE", "HELD BY", "REPORTS"]).right(&[0, 3]);
        for d in &v.devices {
            t.row(vec![
                d.file_id.to_string(),
                d.udi.clone(),
                d.held_by.clone(),
                d.reports.to_string(),
            ]);
        }
        print!("{}", t.render());
    })
}

/// Writes `bytes` to `target` through `fsutil`, showing progress for a large file.
fn write_with_progress(target: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = crate::fsutil::NewFile::create(target, FILE_MODE)?;
    let mut meter = Meter::stderr();
    for chunk in bytes.chunks(1 << 20) {
        file.write_all(chunk)?;
        meter.bytes(chunk.len() as u64);
    }
    meter.done();
    file.commit()?;
    Ok(())
}

async fn import_ack(client: &AdminClient, out: Output, file: &Path) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let path = format!("/v1/cisco/acks/import{}", query(&[("name", name)]));
    let view: AckImportView = client.post_bytes(&path, bytes).await?;
    out.show(&view, |v| {
        if v.imported.is_empty() {
            println!(
                "{}: every ACK in it ({}) was imported before; nothing changed",
                v.archive, v.already_imported
            );
            return;
        }
        println!(
            "{}: {} ACKs imported, {} reports acknowledged{}",
            v.archive,
            v.imported.len(),
            v.reports_acknowledged,
            if v.already_imported > 0 {
                format!(" ({} imported before)", v.already_imported)
            } else {
                String::new()
            }
        );
        let mut t = Table::new(&["DEVICE", "HELD BY", "REPORTS", "POLICY"]).right(&[2]);
        for a in &v.imported {
            t.row(vec![
                a.udi.clone(),
                a.held_by.clone(),
                a.report_ids.len().to_string(),
                if a.has_policy { "yes" } else { "no" }.into(),
            ]);
        }
        print!("{}", t.render());
    })
}

async fn ack(
    client: &AdminClient,
    out: Output,
    device: &str,
    va: Option<String>,
    path: &Path,
) -> Result<()> {
    let q = query(&[("device", Some(device.to_owned())), ("va", va)]);
    let view: AckFileView = client.get(&format!("/v1/cisco/ack{q}")).await?;
    let bytes = BASE64
        .decode(&view.file)
        .context("the daemon sent an ACK that is not base64")?;
    if bytes.len() != view.ack.bytes {
        bail!(
            "the daemon sent {} bytes of an ACK of {}",
            bytes.len(),
            view.ack.bytes
        );
    }
    crate::fsutil::write_atomically(path, &bytes, FILE_MODE)?;
    out.show(&view.ack, |a| {
        println!(
            "wrote {} ({} bytes): the ACK of {} received {}{}",
            path.display(),
            a.bytes,
            a.udi,
            stamp_or_dash(Some(&a.received_at)),
            if a.has_policy { ", with a policy" } else { "" }
        );
        println!("install it on the device with `license smart import` (docs/cisco.md)");
    })
}

async fn reports(client: &AdminClient, out: Output, va: Option<String>) -> Result<()> {
    let q = query(&[("va", va)]);
    let lines: Vec<DeviceReportsView> = client.get(&format!("/v1/cisco/reports{q}")).await?;
    out.show(&lines, |lines| {
        if lines.is_empty() {
            println!("no RUM report is held");
            return;
        }
        let mut t = Table::new(&[
            "DEVICE",
            "VA",
            "HELD BY",
            "REPORTS",
            "WAITING",
            "OLDEST WAITING",
            "LAST ACK",
            "ACK DEADLINE",
        ])
        .right(&[3, 4]);
        for l in lines {
            t.row(vec![
                l.udi.clone(),
                l.va_path.clone(),
                l.held_by.clone(),
                l.reports_held.to_string(),
                l.waiting_for_ack.to_string(),
                stamp_or_dash(l.oldest_waiting.as_ref()),
                stamp_or_dash(l.last_ack.as_ref()),
                l.ack_deadline.clone(),
            ]);
        }
        print!("{}", t.render());
    })
}
