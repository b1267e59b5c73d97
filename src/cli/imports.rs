//! Disconnected mode (SPEC §8): `license import FILE` sends a signed license file to the
//! daemon; `license sign` and `sync keygen` do offline what an issuing portal does, so
//! operators (and tests) can produce files a satellite trusts.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;
use time::OffsetDateTime;

use super::client::AdminClient;
use super::output::Output;
use crate::protocol::admin::LicenseImportView;
use crate::protocol::sync::{
    LicenseFile, LicenseGrant, LicenseKind, LicenseLine, SatelliteId, SatelliteKey, sign,
};

/// `satellite license sign`: writes a signed license file (offline, no daemon).
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The issuer's private key (from `satellite sync keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// The Smart Account the licenses are for, by domain.
    #[arg(long)]
    pub account: String,
    /// `VA_PATH:TAG:QTY` (perpetual) or `VA_PATH:TAG:QTY:START:END` (term, dates
    /// YYYY-MM-DD, END excluded); VA_PATH is `Default/...`; QTY is 1 to 1000000000000
    /// (10^12). Repeatable.
    #[arg(long = "grant", value_name = "GRANT", required = true, value_parser = parse_grant)]
    pub grants: Vec<Grant>,
    /// The issuer name the importing satellite trusts this key under (`name` in
    /// `[sync] trusted_license_keys`).
    #[arg(long, default_value = "portal")]
    pub issuer: String,
    /// The file's unique id (default: a random one).
    #[arg(long)]
    pub file_id: Option<String>,
    /// Where to write the file (mode 0600; a symbolic link there is refused).
    #[arg(long)]
    pub out: PathBuf,
}

/// One `--grant`: licenses for one VA.
#[derive(Debug, Clone)]
pub struct Grant {
    va: String,
    tag: String,
    quantity: u64,
    /// Start and end of a term license; `None` for a perpetual one.
    term: Option<(OffsetDateTime, OffsetDateTime)>,
}

/// The mode of a signed license file.
const LICENSE_FILE_MODE: u32 = 0o600;

pub fn keygen(out: Output, path: &std::path::Path) -> Result<()> {
    if path.exists() {
        bail!(
            "{} exists; a signing key is never replaced silently (its public key may be \
             pinned elsewhere): choose another path",
            path.display()
        );
    }
    let key = SatelliteKey::generate()?;
    key.save(path)?;
    out.show(
        &json!({
            "key_file": path.display().to_string(),
            "public_key": key.public_key_hex(),
            "key_id": key.id().as_str(),
        }),
        |_| {
            println!("wrote {} (mode 0600)", path.display());
            println!("public key  {}  (the `key` to trust)", key.public_key_hex());
            println!(
                "key id      {}  (names the key in files and messages)",
                key.id()
            );
            println!(
                "trust it on a satellite with:\n  [sync]\n  trusted_license_keys = [ {{ name = \
                 \"portal\", key = \"{}\" }} ]",
                key.public_key_hex()
            );
        },
    )
}

fn parse_date(s: &str) -> Result<OffsetDateTime, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| format!("`{s}` is not a date (expected YYYY-MM-DD)"))
}

/// Parses `VA_PATH:TAG:QTY` or `VA_PATH:TAG:QTY:START:END`.
fn parse_grant(s: &str) -> Result<Grant, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (va, tag, qty) = match parts.as_slice() {
        [va, tag, qty] | [va, tag, qty, _, _] => (*va, *tag, *qty),
        _ => return Err("expected VA_PATH:TAG:QTY or VA_PATH:TAG:QTY:START:END".into()),
    };
    let quantity = qty
        .parse()
        .map_err(|_| format!("`{qty}` is not a quantity"))?;
    let term = match parts.as_slice() {
        [_, _, _, start, end] => Some((parse_date(start)?, parse_date(end)?)),
        _ => None,
    };
    Ok(Grant {
        va: va.to_owned(),
        tag: tag.to_owned(),
        quantity,
        term,
    })
}

/// The license line of the `n`th grant of file `file_id`.
fn line(n: usize, file_id: &str, g: &Grant) -> LicenseLine {
    let (kind, start, end) = match g.term {
        Some((start, end)) => (LicenseKind::Term, Some(start), Some(end)),
        None => (LicenseKind::Perpetual, None, None),
    };
    LicenseLine {
        id: format!("{file_id}-{n}"),
        entitlement_tag: g.tag.clone(),
        display_name: g.tag.clone(),
        quantity: g.quantity,
        kind,
        start,
        end,
        export_controlled: false,
        order_ref: Some(file_id.to_string()),
        labels: BTreeSet::new(),
    }
}

pub fn sign_file(out: Output, a: SignArgs) -> Result<()> {
    let key = SatelliteKey::load(&a.key)?;
    let file_id = a
        .file_id
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut grants: Vec<LicenseGrant> = Vec::new();
    for (n, g) in a.grants.iter().enumerate() {
        let line = line(n + 1, &file_id, g);
        match grants.iter_mut().find(|x| x.va == g.va) {
            Some(x) => x.licenses.push(line),
            None => grants.push(LicenseGrant {
                va: g.va.clone(),
                licenses: vec![line],
            }),
        }
    }
    let body = LicenseFile {
        issuer: SatelliteId::new(a.issuer),
        account_domain: a.account,
        file_id: file_id.clone(),
        created_at: OffsetDateTime::now_utc().replace_nanosecond(0)?,
        grants,
    };
    let count: usize = body.grants.iter().map(|g| g.licenses.len()).sum();
    let bytes = sign(&key, body)?.to_json()?;
    // Owner-only, like every file the CLI writes; the operator hands it over deliberately.
    crate::fsutil::write_atomically(&a.out, &bytes, LICENSE_FILE_MODE)?;
    out.show(
        &json!({
            "file": a.out.display().to_string(),
            "file_id": file_id,
            "licenses": count,
            "key_id": key.id().as_str(),
        }),
        |_| {
            println!(
                "wrote {} ({count} license(s), file id {file_id}, signed by key id {})",
                a.out.display(),
                key.id()
            )
        },
    )
}

#[derive(serde::Serialize)]
struct ImportOut {
    #[serde(flatten)]
    view: LicenseImportView,
    key_id: String,
}

pub async fn import(client: &AdminClient, out: Output, file: PathBuf) -> Result<()> {
    let bytes = std::fs::read(&file)
        .with_context(|| format!("cannot read the license file {}", file.display()))?;
    let view: LicenseImportView = client.post_bytes("/v1/licenses/import", bytes).await?;
    // `key_id`, as `sync status`, `sync keygen` and `license sign` name it; `signer` is the
    // same value under the name the file's envelope gives it.
    let shown = ImportOut {
        key_id: view.signer.clone(),
        view,
    };
    out.show(&shown, |ImportOut { view: v, .. }| {
        println!(
            "imported {} license(s) from file {} (issuer {}, key id {}, account {})",
            v.licenses.len(),
            v.file_id,
            v.issuer,
            v.signer,
            v.account
        );
        super::licenses::entries_table(&v.licenses);
    })
}
