//! `GET /v1/backup`: a consistent backup of the whole store, streamed to a system administrator.
//!
//! The export holds the catalog lock (writers wait), so it goes to a temporary file in the data
//! directory as fast as the disk allows, and the lock is released before the (possibly slow)
//! client reads it. The file is unlinked as soon as it is created: only the open handle keeps
//! it, so a crash leaves nothing behind, and it is created with mode 0600 because a backup holds
//! everything the store does.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::io::AsyncReadExt;
use tracing::info;

use super::{AdminCtx, Caller};
use crate::domain::{Change, DomainError, NewEvent};
use crate::server::error::ApiError;
use crate::store::{BackupError, BackupSummary};

/// The routes of this resource.
pub(super) fn routes() -> axum::Router<AdminCtx> {
    use axum::routing::get;
    axum::Router::new().route("/v1/backup", get(backup))
}

/// Headers that describe the backup in the body, for clients that do not parse it. The SHA-256
/// is the whole body's, what `sha256sum` prints for the saved file.
pub const RECORDS_HEADER: &str = "x-satellite-backup-records";
pub const SHA256_HEADER: &str = "x-satellite-backup-sha256";

pub async fn backup(State(ctx): State<AdminCtx>, Caller(p): Caller) -> Result<Response, ApiError> {
    ctx.app.read(|c| c.check_system(&p))?;
    let app = ctx.app.clone();
    let dir = PathBuf::from(&ctx.data_dir);
    let started = std::time::Instant::now();
    let (file, summary) = tokio::task::spawn_blocking(move || {
        let mut file = unlinked_temp_file(&dir)?;
        let summary = app.backup(&mut file, |_| {})?;
        file.flush().map_err(BackupError::Write)?;
        file.rewind().map_err(BackupError::Write)?;
        Ok::<_, BackupError>((file, summary))
    })
    .await
    .map_err(|e| failed(format!("the backup task failed: {e}")))?
    .map_err(|e| match e {
        BackupError::Store(s) => ApiError::from(s),
        other => failed(other.to_string()),
    })?;
    info!(
        records = summary.records,
        bytes = summary.bytes,
        took_ms = started.elapsed().as_millis() as u64,
        "backup taken"
    );
    record_event(&ctx, &p.actor, &summary).await?;
    let mut response = Response::new(Body::from_stream(chunks(tokio::fs::File::from_std(file))));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(summary.bytes));
    headers.insert(RECORDS_HEADER, HeaderValue::from(summary.records));
    if let Ok(v) = HeaderValue::from_str(&summary.sha256) {
        headers.insert(SHA256_HEADER, v);
    }
    Ok(response)
}

/// The audit event: who took a backup, of how much, and the SHA-256 of the whole file (what
/// `sha256sum` prints for it), so that a file found later can be matched with its event. It is
/// written after the snapshot, so a backup never holds its own event.
async fn record_event(ctx: &AdminCtx, actor: &str, s: &BackupSummary) -> Result<(), ApiError> {
    let event = NewEvent::new("backup.create", format!("{} records", s.records))
        .detail("records", s.records)
        .detail("bytes", s.bytes)
        .detail("sha256", &s.sha256);
    ctx.app
        .change(actor, |_, _| Ok::<_, DomainError>((Change::new(event), ())))
        .await?;
    Ok(())
}

/// Creates a file for the export in `dir` and unlinks it at once; the handle keeps it alive.
fn unlinked_temp_file(dir: &Path) -> Result<std::fs::File, BackupError> {
    Ok(crate::fsutil::unlinked_file(&dir.join("backup"), 0o600)?)
}

/// The file's content as a stream of 64 KiB chunks.
fn chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((buf, file)))
    })
}

fn failed(message: String) -> ApiError {
    tracing::error!(cause = %message, "backup failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "backup_failed",
        format!("the backup could not be taken: {message}"),
    )
}
