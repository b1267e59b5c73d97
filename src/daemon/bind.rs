//! Start-up steps that claim resources before anything is created: the TCP listeners, the data
//! directory (owner-only) and the admin socket, each failure naming its cause and its fix.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, UnixListener};
use tracing::warn;

use crate::config::Settings;

/// The error of a second daemon on a data directory another one serves.
pub(super) fn already_serving(dir: &Path, pid: Option<u32>) -> anyhow::Error {
    let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    anyhow::anyhow!(
        "a satellite is already serving {}{who}; stop it first, or give this one another data \
         directory (`data_dir` in the configuration, or --data-dir)",
        dir.display()
    )
}

/// Binds the device listener and the HTTPS admin listener. A failure names the configuration
/// key that sets the address, and says what to do when the address is taken.
pub(super) async fn bind_tcp(settings: &Settings) -> Result<(TcpListener, Option<TcpListener>)> {
    let bind = |key: &'static str, what: &'static str, addr: std::net::SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|e| {
            let advice = match e.kind() {
                std::io::ErrorKind::AddrInUse => format!(
                    "another process listens there (another satellite?); stop it, or choose \
                     another address with `{key}` in the configuration"
                ),
                std::io::ErrorKind::PermissionDenied => {
                    format!("ports below 1024 need privileges; choose another port with `{key}`")
                }
                _ => format!("check `{key}` in the configuration"),
            };
            anyhow::anyhow!("cannot listen for {what} on {addr} (`{key}`): {e}; {advice}")
        })
    };
    let device = bind("device.listen", "devices", settings.device.listen).await?;
    let admin = match settings.admin.listen {
        Some(addr) => Some(bind("admin.listen", "the HTTPS admin API", addr).await?),
        None => None,
    };
    Ok((device, admin))
}

/// Whether an I/O failure means the directory may not be written (as opposed to a missing
/// disk or a full one).
fn not_writable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

/// The error for a data directory the satellite may not write.
fn unwritable(dir: &Path, e: &std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "the data directory {} is not writable ({e}); give the user satellite runs as write \
         access to it, or choose another with `data_dir` in the configuration or --data-dir",
        dir.display()
    )
}

/// Creates the data directory readable by its owner only. One that already exists with a
/// broader mode (made by hand, or by a packaging script's `mkdir`) is tightened to 0700: it
/// holds the store, the CA key and every tenant's records, and the files inside are only as
/// private as the directory.
pub(super) fn prepare_data_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            if not_writable(&e) {
                unwritable(dir, &e)
            } else {
                anyhow::anyhow!("cannot create the data directory {}: {e}", dir.display())
            }
        })?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("cannot inspect the data directory {}", dir.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(
            || {
                format!(
                    "the data directory {} has mode {mode:04o}, open to other users, and cannot                      be made private; fix it with `chmod 700 {}`",
                    dir.display(),
                    dir.display()
                )
            },
        )?;
        warn!(
            path = %dir.display(),
            old_mode = %format_args!("{mode:04o}"),
            new_mode = %"0700",
            "the data directory was open to other users; made it private to the satellite"
        );
    }
    // Root-owned or read-only directories open fine and fail at the first write, deep in the
    // store: try one now, so the message says what is wrong.
    match crate::fsutil::unlinked_file(&dir.join("write-check"), 0o600) {
        Ok(_) => Ok(()),
        Err(crate::fsutil::WriteError::Io { source, .. }) if not_writable(&source) => {
            Err(unwritable(dir, &source))
        }
        Err(e) => Err(e.into()),
    }
}

/// Binds the admin socket with the configured mode. A socket file left by a crashed daemon is
/// replaced; one that a running daemon answers on is not.
pub(super) fn bind_socket(path: &Path, mode: u32) -> Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another satellite is already serving on {}; stop it first or use another data \
                 directory",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot create the admin socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(listener)
}
