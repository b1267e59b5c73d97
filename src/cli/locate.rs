//! Where the running daemon's admin socket is.
//!
//! An operator on a host installed from the package types `satellite status` and expects it to
//! reach the daemon systemd runs; a developer in a checkout expects the daemon they started by
//! hand in `./satellite-data`. The CLI considers, in this order:
//!
//! 1. `--socket PATH` or `$SATELLITE_SOCKET`: that socket, and nothing else;
//! 2. `--config FILE` or `$SATELLITE_CONFIG` (with `--data-dir`, if given): the configuration's
//!    `admin.socket`, resolved as the daemon resolves it. When the file names no `data_dir` and
//!    `$STATE_DIRECTORY` is not set (the CLI does not run inside the unit), the daemon's data
//!    directory was either `./satellite-data` (started by hand here) or the unit's
//!    `StateDirectory`, `/var/lib/satellite`: both are candidates;
//! 3. with none of those: `./satellite-data/admin.sock` (a daemon started by hand here), then
//!    the socket of the packaged configuration `/etc/satellite/satellite.toml` when that file
//!    exists, then [`PACKAGED_SOCKET`].
//!
//! The first candidate that exists is used; connecting to it reports a refusal or missing
//! permissions. When none exists, the error lists every place looked at and how to name the
//! right one.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::config::Config;

use super::Global;

/// The configuration file of a host installed from the package.
pub const PACKAGED_CONFIG: &str = "/etc/satellite/satellite.toml";
/// Where the packaged configuration puts the admin socket: the unit's `RuntimeDirectory`, which
/// members of the `satellite` group may enter.
pub const PACKAGED_SOCKET: &str = "/run/satellite/admin.sock";
/// The data directory systemd gives the unit (`StateDirectory=satellite`).
const UNIT_STATE_DIRECTORY: &str = "/var/lib/satellite";

/// One place the socket may be, and why the CLI looks there.
#[derive(Debug)]
struct Candidate {
    path: PathBuf,
    why: String,
}

/// The admin socket to talk to; an error listing every place looked at when none exists.
pub fn admin_socket(global: &Global) -> Result<PathBuf> {
    let state_directory = std::env::var_os("STATE_DIRECTORY");
    let mut notes = Vec::new();
    let candidates = candidates(global, state_directory.as_deref(), &mut notes)?;
    choose(candidates, &notes)
}

/// Every place to look, in order, without duplicates. A broken `--config` is an error; a broken
/// packaged configuration only a note (its socket may still be at the packaged default).
fn candidates(
    global: &Global,
    state_directory: Option<&OsStr>,
    notes: &mut Vec<String>,
) -> Result<Vec<Candidate>> {
    let mut found = Vec::new();
    if let Some(socket) = &global.socket {
        let by = given_by(socket.as_os_str(), "SATELLITE_SOCKET", "--socket");
        found.push(Candidate {
            path: socket.clone(),
            why: format!("given with {by}"),
        });
        return Ok(found);
    }
    if global.config.is_some() || global.data_dir.is_some() {
        let config = match &global.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let why = match &global.config {
            Some(path) => {
                let by = given_by(path.as_os_str(), "SATELLITE_CONFIG", "--config");
                format!("admin.socket of {} from {by}", path.display())
            }
            None => "admin.socket in --data-dir".to_owned(),
        };
        from_config(
            config,
            global.data_dir.as_deref(),
            state_directory,
            &why,
            &mut found,
        )?;
        return Ok(found);
    }

    let defaults = Config::default().resolve_with_state_directory(state_directory)?;
    found.push(Candidate {
        path: defaults.admin.socket,
        why: "the default data directory, for a daemon started here".to_owned(),
    });
    let packaged = Path::new(PACKAGED_CONFIG);
    if packaged.exists() {
        let why = format!("admin.socket of {PACKAGED_CONFIG}");
        let loaded = Config::load(packaged).map_err(anyhow::Error::from);
        match loaded.and_then(|c| from_config(c, None, state_directory, &why, &mut found)) {
            Ok(()) => {}
            Err(e) => notes.push(format!("{PACKAGED_CONFIG} was not used: {e:#}")),
        }
    }
    found.push(Candidate {
        path: PathBuf::from(PACKAGED_SOCKET),
        why: "the packaged default".to_owned(),
    });
    let mut seen = std::collections::HashSet::new();
    found.retain(|c| seen.insert(c.path.clone()));
    Ok(found)
}

/// Adds the sockets `config` puts the daemon's socket at: exactly where the daemon puts it when
/// that does not depend on how it was started, else both places it may have been started from.
fn from_config(
    mut config: Config,
    data_dir: Option<&Path>,
    state_directory: Option<&OsStr>,
    why: &str,
    found: &mut Vec<Candidate>,
) -> Result<()> {
    if let Some(dir) = data_dir {
        config.data_dir = Some(dir.to_owned());
    }
    let settings = config.resolve_with_state_directory(state_directory)?;
    let by_hand = config.data_dir.is_none() && state_directory.is_none();
    found.push(Candidate {
        path: settings.admin.socket,
        why: if by_hand {
            format!("{why}, for a daemon started here")
        } else {
            why.to_owned()
        },
    });
    if by_hand {
        let unit = config.resolve_with_state_directory(Some(OsStr::new(UNIT_STATE_DIRECTORY)))?;
        if unit.admin.socket != found[found.len() - 1].path {
            found.push(Candidate {
                path: unit.admin.socket,
                why: format!("{why}, for the systemd unit's data directory"),
            });
        }
    }
    Ok(())
}

/// Names the option or the environment variable a value came from (clap reads both into one
/// field; the variable is the source when it holds the same value).
fn given_by(value: &OsStr, variable: &str, option: &str) -> String {
    if std::env::var_os(variable).as_deref() == Some(value) {
        format!("${variable}")
    } else {
        option.to_owned()
    }
}

/// The first candidate that exists. One the CLI may not even look at (a directory it cannot
/// enter) counts as existing: connecting to it then says that permission is missing, which is
/// the actual problem.
fn choose(candidates: Vec<Candidate>, notes: &[String]) -> Result<PathBuf> {
    for c in &candidates {
        match std::fs::symlink_metadata(&c.path) {
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
            _ => return Ok(c.path.clone()),
        }
    }
    let mut message =
        String::from("cannot find the admin socket of a running satellite; looked at:");
    for c in &candidates {
        message.push_str(&format!("\n  {}  ({})", c.path.display(), c.why));
    }
    for note in notes {
        message.push_str(&format!("\n  ({note})"));
    }
    message.push_str(
        "\nIs the daemon running (`systemctl status satellite`, or `satellite serve`)? Name its \
         socket with --socket PATH or SATELLITE_SOCKET=PATH, or its configuration with --config \
         FILE; reach a remote satellite with --url URL",
    );
    bail!(message)
}
