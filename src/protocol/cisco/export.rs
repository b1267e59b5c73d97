//! The offline usage file handed to Cisco's portal, laid out as DevNet's sample code
//! (`xe-sip-api-code`, `run_offline_rum`) builds it:
//!
//! ```text
//! UD_SA_<t>.tar.gz             gzip tar
//! ├── manifest.mf              JAR-style manifest naming the account and the VA
//! └── UD_VA_<t>.tar.gz         gzip tar
//!     ├── dev_1_<t>.txt        <smartLicense><RUMReport><![CDATA[...]]></RUMReport>...</smartLicense>
//!     └── dev_2_<t>.txt        one file per device, numbered on from the caller's first number
//! ```
//!
//! `<t>` is the export time in UTC as `%y%b%d_%H_%M_%S` and milliseconds (`24Jan05_14_03_09_417`).
//! Each report is the device's envelope text byte for byte (the signature covers its `payload`).
//! The output is a function of the input: tar headers carry the export time as mtime, uid and
//! gid 0, mode 0644, no user names, and gzip headers the same mtime, so golden tests can pin it.
//! The per-device number is how an ACK finds its way back: the portal names an ACK after the
//! file it acknowledges (`ACK_dev_<n>_...`), so the caller keeps the returned [`Exported`]
//! record of which device and reports went into which file.

use std::io::{self, Write};

use flate2::{Compression, GzBuilder};
use time::{OffsetDateTime, UtcOffset};

use super::xml;
use crate::protocol::device::Udi;

/// At most this many bytes in an account, VA or id written to the manifest.
pub const MAX_NAME_BYTES: usize = 255;

/// What one export holds: one Virtual Account's devices and their reports.
#[derive(Debug, Clone)]
pub struct Usage<'a> {
    /// `Smart-Account` and `Smart-Account-ID` in the manifest (either may be empty).
    pub account: &'a str,
    pub account_id: &'a str,
    /// `Specification-VA` and `Specification-VA-ID` in the manifest (either may be empty).
    pub va: &'a str,
    pub va_id: &'a str,
    /// The exporting satellite's id, written as `Created-By: "{\"uuid\": \"...\"}"`.
    pub created_by: &'a str,
    /// The export time: every name and every mtime in the file.
    pub time: OffsetDateTime,
    /// The `<n>` of the first device file; the others are numbered on from it. The caller
    /// keeps numbers unique across its exports, so that an ACK maps to one device file.
    pub first_file_id: u64,
    pub devices: &'a [DeviceUsage],
}

/// One device and the raw envelope texts of its reports, in the order to write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceUsage {
    pub udi: Udi,
    pub reports: Vec<String>,
}

/// What was written, for the caller to keep: the name to give the file and which device went
/// into which numbered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// `UD_SA_<t>.tar.gz`, the name the written bytes should be saved under.
    pub file_name: String,
    /// `UD_VA_<t>.tar.gz`, the inner archive.
    pub va_file_name: String,
    pub devices: Vec<ExportedDevice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedDevice {
    /// The `<n>` of `dev_<n>_<t>.txt`, from [`Usage::first_file_id`].
    pub file_id: u64,
    pub file_name: String,
    pub udi: Udi,
    pub reports: usize,
}

/// How far a large export has got, after each device file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub devices_done: usize,
    pub devices_total: usize,
    pub reports_done: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "the {field} {value:?} cannot go in the manifest: {reason}; rename it or leave the field empty"
    )]
    BadName {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("there is nothing to export: no device has a report")]
    Nothing,
    #[error("device {pid} {serial} has no report to export", pid = .0.pid, serial = .0.serial)]
    NoReport(Udi),
    #[error("device {pid} {serial}: report #{index} is empty", pid = .udi.pid, serial = .udi.serial)]
    EmptyReport { udi: Udi, index: usize },
    #[error("the export time is before 1970")]
    BadTime,
    #[error("writing the export failed: {0}")]
    Io(#[from] io::Error),
}

/// Writes the usage file for `usage` to `out`, calling `progress` after each device file.
pub fn write(
    usage: &Usage<'_>,
    out: impl Write,
    mut progress: impl FnMut(Progress),
) -> Result<Exported, ExportError> {
    check(usage)?;
    let mtime = u64::try_from(usage.time.unix_timestamp()).map_err(|_| ExportError::BadTime)?;
    let t = stamp(usage.time);
    let va_file_name = format!("UD_VA_{t}.tar.gz");

    // The inner archive is a member of the outer one, whose header needs its length first.
    let mut inner = tar::Builder::new(gzip(Vec::new(), mtime));
    let mut devices = Vec::with_capacity(usage.devices.len());
    let mut reports_done = 0;
    for (i, device) in usage.devices.iter().enumerate() {
        let file_id = usage.first_file_id + i as u64;
        let file_name = format!("dev_{file_id}_{t}.txt");
        append(&mut inner, &file_name, &device_file(&device.reports), mtime)?;
        reports_done += device.reports.len();
        devices.push(ExportedDevice {
            file_id,
            file_name,
            udi: device.udi.clone(),
            reports: device.reports.len(),
        });
        progress(Progress {
            devices_done: i + 1,
            devices_total: usage.devices.len(),
            reports_done,
        });
    }
    let inner = inner.into_inner()?.finish()?;

    let mut outer = tar::Builder::new(gzip(out, mtime));
    append(
        &mut outer,
        "manifest.mf",
        manifest(usage, &va_file_name).as_bytes(),
        mtime,
    )?;
    append(&mut outer, &va_file_name, &inner, mtime)?;
    outer.into_inner()?.finish()?.flush()?;
    Ok(Exported {
        file_name: format!("UD_SA_{t}.tar.gz"),
        va_file_name,
        devices,
    })
}

/// The `<t>` of every name: UTC, `%y%b%d_%H_%M_%S_` and milliseconds, as the sample writes
/// it (the sample uses local time; the satellite uses UTC so the name does not depend on where
/// it runs).
pub fn stamp(time: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = time.to_offset(UtcOffset::UTC);
    format!(
        "{:02}{}{:02}_{:02}_{:02}_{:02}_{:03}",
        t.year().rem_euclid(100),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The manifest, in the sample's layout with its typo fixed: `Name:` names the inner archive
/// as it really is in the file (the sample writes `/UD_VA_<t>.ta.gz`). The leading `/` and
/// the quoted JSON of `Created-By` are kept as the sample writes them.
pub fn manifest(usage: &Usage<'_>, va_file_name: &str) -> String {
    format!(
        "Manifest-Version: 1.0\n\
         Created-By: \"{{\\\"uuid\\\": \\\"{uuid}\\\"}}\"\n\
         Smart-Account:{account}\n\
         Smart-Account-ID:{account_id}\n\
         \n\
         Name: /{va_file_name}\n\
         Specification-VA: {va}\n\
         Specification-VA-ID: {va_id}\n",
        uuid = usage.created_by,
        account = spaced(usage.account),
        account_id = spaced(usage.account_id),
        va = usage.va,
        va_id = usage.va_id,
    )
}

/// ` value`, or nothing for an empty value (the sample writes `Smart-Account:` bare).
fn spaced(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!(" {value}")
    }
}

/// One device's file: its reports as `<RUMReport>` CDATA in a `<smartLicense>` root, with no
/// declaration and no whitespace, as the sample writes it.
pub fn device_file(reports: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(reports.iter().map(|r| r.len() + 48).sum::<usize>() + 32);
    out.extend_from_slice(b"<smartLicense>");
    for report in reports {
        out.extend_from_slice(b"<RUMReport>");
        xml::push_cdata(&mut out, report);
        out.extend_from_slice(b"</RUMReport>");
    }
    out.extend_from_slice(b"</smartLicense>");
    out
}

fn check(usage: &Usage<'_>) -> Result<(), ExportError> {
    for (field, value) in [
        ("account", usage.account),
        ("account id", usage.account_id),
        ("VA", usage.va),
        ("VA id", usage.va_id),
        ("satellite id", usage.created_by),
    ] {
        let reason = if value.len() > MAX_NAME_BYTES {
            Some("it is longer than 255 bytes")
        } else if value.chars().any(char::is_control) {
            Some("it holds a control character")
        } else if field == "satellite id" && value.contains(['"', '\\']) {
            Some("it holds a quote or a backslash")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(ExportError::BadName {
                field,
                value: value.chars().take(64).collect(),
                reason,
            });
        }
    }
    if usage.devices.is_empty() {
        return Err(ExportError::Nothing);
    }
    for device in usage.devices {
        if device.reports.is_empty() {
            return Err(ExportError::NoReport(device.udi.clone()));
        }
        if let Some(index) = device.reports.iter().position(String::is_empty) {
            return Err(ExportError::EmptyReport {
                udi: device.udi.clone(),
                index,
            });
        }
    }
    Ok(())
}

fn gzip<W: Write>(out: W, mtime: u64) -> flate2::write::GzEncoder<W> {
    // The gzip header's mtime is 32 bits; past 2106 it wraps, which changes nothing a reader
    // checks.
    GzBuilder::new()
        .mtime(mtime as u32)
        .write(out, Compression::default())
}

/// Appends a regular file with a header that depends only on its name, length and `mtime`.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    mtime: u64,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_cksum();
    tar.append(&header, data)
}

#[cfg(test)]
mod tests;
