//! `satellite sync ...` (SPEC §8): binding to an upstream, network and file sync, the children
//! of an upstream, and signing keys.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use hyper::Method;

use super::client::{AdminClient, segment};
use super::errors::CliError;
use super::examples as ex;
use super::fmt::{stamp, stamp_or_dash, udi};
use super::output::Output;
use super::progress::Meter;
use super::table::Table;
use crate::fsutil::NewFile;
use crate::protocol::admin::{
    BindingView, ChildCreated, ChildView, CreateChild, RegisterUpstream, RemoteDeviceView,
    RemoteDevices, SyncOutcomeView, SyncStatusView,
};

/// `satellite sync ...`.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Generate an Ed25519 signing key (PKCS#8 PEM, mode 0600) and print the public key and
    /// key id to pin, e.g. in `[sync] trusted_license_keys` of the importing satellite.
    #[command(after_help = ex::SYNC_KEYGEN)]
    Keygen {
        /// Where to write the private key; an existing file is not replaced.
        #[arg(long)]
        out: PathBuf,
    },
    /// Bind this satellite to an upstream satellite, with a token from `sync child add` there.
    #[command(after_help = ex::SYNC_REGISTER)]
    Register {
        /// The upstream's device listener, e.g. https://upstream.example.com:8443.
        #[arg(long)]
        upstream: String,
        /// The satellite registration token (`SECRET.FINGERPRINT`). Prefer the environment
        /// variable: other local users can read a command line (`ps`).
        #[arg(
            long,
            value_name = "TOKEN",
            env = "SATELLITE_SYNC_REGISTRATION_TOKEN",
            hide_env_values = true
        )]
        registration_token: String,
    },
    /// Sync with the upstream now, over the network.
    #[command(after_help = ex::SYNC_NOW)]
    Now,
    /// Role, binding, last success and error, next attempt, pending changes, children.
    #[command(after_help = ex::SYNC_STATUS)]
    Status,
    /// Write the signed request for the upstream to a file (air gap, step 1 of 3).
    #[command(after_help = ex::SYNC_EXPORT)]
    Export {
        /// Where to write the request (mode 0600; a symbolic link there is refused).
        #[arg(long)]
        out: PathBuf,
    },
    /// On the upstream: apply a child's request file and write the signed response (step 2).
    #[command(after_help = ex::SYNC_ANSWER)]
    Answer {
        /// The child's request file (from `sync export`).
        #[arg(long = "in")]
        input: PathBuf,
        /// Where to write the response (mode 0600; a symbolic link there is refused).
        #[arg(long)]
        out: PathBuf,
    },
    /// Apply the upstream's response file (step 3). A response applied before changes nothing
    /// and exits 1.
    #[command(after_help = ex::SYNC_IMPORT)]
    Import {
        /// The response file from `sync answer`.
        file: PathBuf,
    },
    /// Child satellites of this (upstream) satellite.
    #[command(subcommand, after_help = ex::SYNC_CHILD)]
    Child(ChildCommand),
    /// Devices and usage that child satellites reported (read-only here).
    #[command(after_help = ex::SYNC_DEVICES)]
    Devices,
    /// Order a child satellite to remove one of its devices (applied at its next sync).
    #[command(after_help = ex::SYNC_REMOVE_DEVICE)]
    RemoveDevice {
        /// The device's instance id (from `sync devices`).
        device: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChildCommand {
    /// Dedicate a VA subtree to a new child satellite; prints its registration token once.
    #[command(after_help = ex::SYNC_CHILD_ADD)]
    Add {
        /// The child's name (letters, digits, `-`, `_`, `.`).
        name: String,
        /// The VA dedicated to it (with everything below): `ACCOUNT/Default/...` or an id.
        #[arg(long)]
        va: String,
        /// Days the registration token stays usable (1-365, default 7).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List child satellites.
    #[command(after_help = ex::SYNC_CHILD_LIST)]
    List,
}

fn time(t: &Option<time::OffsetDateTime>) -> String {
    stamp_or_dash(t.as_ref())
}

fn children_table(children: &[ChildView]) {
    let mut t = Table::new(&[
        "CHILD",
        "VIRTUAL ACCOUNT",
        "REGISTERED",
        "LAST REQUEST",
        "LAST RESPONSE",
        "DEVICES",
        "LAST SEEN",
    ])
    .right(&[3, 4, 5]);
    for c in children {
        t.row(vec![
            c.name.clone(),
            c.va.clone(),
            if c.registered { "yes" } else { "no" }.into(),
            c.last_request_seq.to_string(),
            c.response_seq.to_string(),
            c.devices.to_string(),
            time(&c.last_seen),
        ]);
    }
    print!("{}", t.render());
}

/// The refusal of a response file applied before: nothing changed, so the command failed at
/// what it was asked to do, like a replayed request on `sync answer`.
fn replayed(v: &SyncOutcomeView) -> CliError {
    CliError::refused(
        "already_applied",
        format!(
            "response {} was applied before; nothing changed",
            v.response_seq
        ),
    )
}

fn outcome(v: &SyncOutcomeView) {
    match v.result.as_str() {
        "already_applied" => println!(
            "response {} was applied before; nothing changed",
            v.response_seq
        ),
        _ => println!(
            "applied response {}: {} change(s) acknowledged, {} license(s) changed, {} removed, \
             {} virtual account(s) created, {} device(s) removed",
            v.response_seq,
            v.acknowledged,
            v.licenses_changed,
            v.licenses_removed,
            v.vas_created,
            v.devices_removed
        ),
    }
}

/// Reads a sync file, with progress for large ones.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let show = size > 4 * 1024 * 1024;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::with_capacity(size as usize);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut meter = Meter::stderr();
    let what = path.display().to_string();
    loop {
        let n = std::io::Read::read(&mut file, &mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if show {
            meter.reading(&what, out.len() as u64, size);
        }
    }
    meter.done();
    Ok(out)
}

/// Starts a sync file, owner-only: it carries an account's devices, usage and licenses. It is
/// created before the daemon is asked for anything, so a target that cannot be written (a
/// symbolic link is refused, see `fsutil`) fails before a request is numbered or applied.
fn new_file(path: &Path) -> Result<NewFile> {
    Ok(NewFile::create(path, SYNC_FILE_MODE)?)
}

/// Writes the whole sync file and renames it into place.
fn finish_file(mut file: NewFile, bytes: &[u8]) -> Result<()> {
    file.write_all(bytes)?;
    Ok(file.commit()?)
}

/// The mode of the request and response files `sync export` and `sync answer` write.
const SYNC_FILE_MODE: u32 = 0o600;

fn seq_of(bytes: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["body"]["seq"].as_u64())
        .unwrap_or_default()
}

/// Runs one `sync` command against the daemon: one function per subcommand.
pub async fn run(client: &AdminClient, out: Output, c: SyncCommand) -> Result<()> {
    match c {
        SyncCommand::Keygen { .. } => unreachable!("offline command, handled by the caller"),
        SyncCommand::Register {
            upstream,
            registration_token,
        } => register(client, out, upstream, registration_token).await,
        SyncCommand::Now => {
            let v: SyncOutcomeView = client.post("/v1/sync/now", &()).await?;
            out.show(&v, outcome)
        }
        SyncCommand::Status => {
            let s: SyncStatusView = client.get("/v1/sync/status").await?;
            out.show(&s, print_status)
        }
        SyncCommand::Export { out: path } => export(client, out, &path).await,
        SyncCommand::Answer { input, out: path } => answer(client, out, &input, &path).await,
        SyncCommand::Import { file } => import(client, out, &file).await,
        SyncCommand::Child(ChildCommand::Add {
            name,
            va,
            expires_in_days,
        }) => {
            let body = CreateChild {
                name,
                va,
                expires_in_days,
            };
            child_add(client, out, &body).await
        }
        SyncCommand::Child(ChildCommand::List) => {
            let list: Vec<ChildView> = client.get("/v1/sync/children").await?;
            out.show(&list, |l| children_table(l))
        }
        SyncCommand::Devices => {
            let r: RemoteDevices = client.get("/v1/sync/devices").await?;
            out.show(&r, print_remote_devices)
        }
        SyncCommand::RemoveDevice { device } => remove_device(client, out, &device).await,
    }
}

/// `sync register`: binds this satellite to an upstream with the token the upstream gave.
async fn register(
    client: &AdminClient,
    out: Output,
    upstream: String,
    registration_token: String,
) -> Result<()> {
    let body = RegisterUpstream {
        url: upstream,
        token: registration_token,
    };
    let b: BindingView = client.post("/v1/sync/register", &body).await?;
    out.show(&b, |b| {
        println!(
            "bound to upstream `{}` ({}) as `{}`; virtual account {} is managed there",
            b.upstream, b.url, b.me, b.va
        );
        println!("pinned the upstream's public key {}", b.upstream_key);
        println!(
            "sync now with `satellite sync now` (or wait for the schedule, \
             `[sync] interval`); `satellite sync status` shows how it went"
        );
    })
}

/// `sync status` for people: this satellite's identity, its binding if any, then its children.
fn print_status(s: &SyncStatusView) {
    let mut t = Table::new(&["", ""]);
    t.row(vec!["role".into(), s.role.clone()]);
    t.row(vec!["name".into(), s.name.clone()]);
    t.row(vec!["key id".into(), s.key_id.clone()]);
    t.row(vec!["public key".into(), s.public_key.clone()]);
    if let Some(b) = &s.binding {
        binding_rows(&mut t, s, b);
    }
    if let Some(p) = &s.problem {
        t.row(vec!["problem".into(), p.clone()]);
    }
    print!("{}", t.render());
    if !s.children.is_empty() {
        println!();
        children_table(&s.children);
    }
}

/// The rows of `sync status` about the upstream this satellite is bound to.
fn binding_rows(t: &mut Table, s: &SyncStatusView, b: &BindingView) {
    t.row(vec![
        "upstream".into(),
        format!("{} ({})", b.upstream, b.url),
    ]);
    t.row(vec!["known there as".into(), b.me.clone()]);
    t.row(vec!["managed VA".into(), b.va.clone()]);
    t.row(vec!["last success".into(), time(&s.last_success)]);
    t.row(vec![
        "last error".into(),
        match (&s.last_error, &s.last_error_at) {
            (Some(e), at) => format!("{} ({e})", time(at)),
            _ => "-".into(),
        },
    ]);
    t.row(vec!["next attempt".into(), time(&s.next_attempt)]);
    t.row(vec![
        "outstanding request".into(),
        b.outstanding_seq.map_or("-".into(), |s| s.to_string()),
    ]);
    t.row(vec![
        "pending changes".into(),
        s.pending_changes.to_string(),
    ]);
    t.row(vec![
        "acknowledged items".into(),
        s.acknowledged_items.to_string(),
    ]);
}

/// `sync export`: the child's next request, written to a file to carry to the upstream.
async fn export(client: &AdminClient, out: Output, path: &Path) -> Result<()> {
    let file = new_file(path)?;
    let bytes = client
        .send_bytes(Method::POST, "/v1/sync/export", Vec::new())
        .await?;
    finish_file(file, &bytes)?;
    let seq = seq_of(&bytes);
    out.show(
        &serde_json::json!({"file": path.display().to_string(), "seq": seq, "bytes": bytes.len()}),
        |_| {
            println!(
                "wrote request {seq} to {} ({} bytes); carry it to the upstream and run \
                 `satellite sync answer --in FILE --out RESPONSE` there",
                path.display(),
                bytes.len()
            )
        },
    )
}

/// `sync answer`: the upstream applies a child's request file and writes the response file.
async fn answer(client: &AdminClient, out: Output, input: &Path, path: &Path) -> Result<()> {
    let request = read_file(input)?;
    let request_seq = seq_of(&request);
    let file = new_file(path)?;
    let bytes = client
        .send_bytes(Method::POST, "/v1/sync/answer", request)
        .await?;
    finish_file(file, &bytes)?;
    let seq = seq_of(&bytes);
    out.show(
        &serde_json::json!({"file": path.display().to_string(), "seq": seq, "bytes": bytes.len()}),
        |_| {
            println!(
                "applied request {} and wrote response {seq} to {}; carry it back and \
                 run `satellite sync import FILE` on the child",
                request_seq,
                path.display()
            )
        },
    )
}

/// `sync import`: the child applies the upstream's response file; a replayed one is an error.
async fn import(client: &AdminClient, out: Output, file: &Path) -> Result<()> {
    let bytes = read_file(file)?;
    let v: SyncOutcomeView = client.post_bytes("/v1/sync/import", bytes).await?;
    if v.result == "already_applied" {
        return Err(replayed(&v).into());
    }
    out.show(&v, outcome)
}

/// `sync child add`: dedicates a VA subtree to a child and shows its token once.
async fn child_add(client: &AdminClient, out: Output, body: &CreateChild) -> Result<()> {
    let c: ChildCreated = client.post("/v1/sync/children", body).await?;
    out.show(&c, |c| {
        println!(
            "child satellite `{}` may now bind to virtual account {}",
            c.child.name, c.child.va
        );
        println!(
            "registration token (shown once, valid until {}):",
            stamp(&c.token_expires_at)
        );
        println!("{}", c.registration_token);
        println!(
            "on the child: satellite sync register --upstream https://THIS-HOST:8443 \
             --registration-token TOKEN"
        );
    })
}

/// `sync devices` for people: the children's devices, their usage, and relayed RUM reports.
fn print_remote_devices(r: &RemoteDevices) {
    let mut t = Table::new(&[
        "DEVICE",
        "CHILD",
        "UDI",
        "HOSTNAME",
        "VIRTUAL ACCOUNT",
        "REMOVAL",
    ]);
    for d in &r.devices {
        t.row(vec![
            d.id.clone(),
            d.child.clone(),
            udi(&d.pid, &d.serial),
            d.hostname.clone(),
            d.va_path.clone(),
            if d.removal_ordered { "ordered" } else { "-" }.into(),
        ]);
    }
    print!("{}", t.render());
    println!();
    let mut u = Table::new(&[
        "CHILD",
        "VIRTUAL ACCOUNT",
        "ENTITLEMENT TAG",
        "DEVICES",
        "REQUESTED",
        "GRANTED",
    ])
    .right(&[3, 4, 5]);
    for x in &r.usage {
        u.row(vec![
            x.child.clone(),
            x.va_path.clone(),
            x.entitlement_tag.clone(),
            x.devices.to_string(),
            x.units_requested.to_string(),
            x.units_granted.to_string(),
        ]);
    }
    print!("{}", u.render());
    if !r.rum_reports.is_empty() {
        println!();
        println!(
            "{} Cisco RUM report(s) relayed by children",
            r.rum_reports.len()
        );
    }
}

/// `sync remove-device`: orders a child to remove one of its devices at its next sync.
async fn remove_device(client: &AdminClient, out: Output, device: &str) -> Result<()> {
    let d: RemoteDeviceView = client
        .post(&format!("/v1/sync/devices/{}/remove", segment(device)), &())
        .await?;
    out.show(&d, |d| {
        println!(
            "removal of {} ({}) ordered; child `{}` removes it at its next sync",
            d.id,
            udi(&d.pid, &d.serial),
            d.child
        )
    })
}
