//! The baseline of the benchmarks: a bare hyper + rustls server answering `204 No Content` to
//! every request, with the satellite's own TLS setup.
//!
//! It loads (or creates) a device CA and server certificate in `--dir` with the satellite's
//! [`Pki`], so the crypto provider (aws-lc-rs), certificate kinds, TLS versions, ALPN (h2,
//! http/1.1) and client-certificate verifier are exactly the satellite's; the accept loop
//! mirrors `server/listen.rs` (handshake under a deadline, hyper's auto HTTP/1 + HTTP/2
//! builder, one task per connection). Everything the satellite does after reading the body —
//! routing, authentication, the domain, the durable write, the JSON answer — is what the
//! comparison measures.
//!
//! It also signs one client certificate (`client.pem`, `client.key` in `--dir`) so that the
//! load generator presents a certificate on every connection, as devices do:
//!
//! ```text
//! cargo run --release --example baseline -- --dir /tmp/bl --listen 127.0.0.1:0
//! satellite loadgen --url https://127.0.0.1:PORT --ca /tmp/bl/ca.pem --baseline-identity /tmp/bl
//! ```
//!
//! It prints `baseline https://ADDR`, then `ready`, and serves until SIGTERM or SIGINT.
//!
//! With `--store DIR` it is the **durable baseline**: before each answer it commits the
//! request's body as one record (keyed by its connection, so each connection rewrites its own
//! record as a device does) through the satellite's own [`Store`] — the journal's group commit
//! with its `fdatasync`, then sled — and answers 204 only once that is on disk. What it adds to
//! the bare server is the least any durable report costs with this store; what the satellite
//! spends beyond it is HTTP routing, authentication, JSON, the domain and metrics.
//!
//! With `--fdatasync FILE` it is the **sync floor**: each body is appended to a preallocated
//! file, one `fdatasync` per group of whatever bodies arrived meanwhile (on tokio's blocking
//! pool, so the runtime is woken once per group), and answered once synced. No store, no
//! encoding, no second copy: the least any server that makes a report durable before
//! answering pays on this disk, at this concurrency.

use std::convert::Infallible;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use satellite::pki::Pki;
use satellite::store::{Batch, Record, Store};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;

/// The satellite's default handshake deadline.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bare TLS server answering 204, for benchmarks.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Directory for the CA, server certificate and the client identity (created if needed).
    #[arg(long)]
    dir: PathBuf,
    /// Commit every request's body to a store in this directory (created if needed) before
    /// answering: the durable baseline.
    #[arg(long, conflicts_with = "fdatasync")]
    store: Option<PathBuf>,
    /// Append every request's body to this file (created, preallocated) and `fdatasync` it
    /// before answering, a group at a time: the sync floor.
    #[arg(long)]
    fdatasync: Option<PathBuf>,
}

/// What a request's body goes through before its 204.
#[derive(Clone)]
enum Durability {
    /// Nothing: the bare server.
    None,
    /// A record in the satellite's store.
    Store(Store),
    /// An appended, synced file.
    Log(Arc<SyncLog>),
}

/// One connection's latest request body, as the durable baseline stores it.
#[derive(Serialize, Deserialize)]
struct LastBody {
    connection: u64,
    body: Vec<u8>,
}

impl Record for LastBody {
    const TABLE: &'static str = "bodies";
    const FORMAT: u8 = 1;

    fn key(&self) -> Vec<u8> {
        self.connection.to_be_bytes().to_vec()
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: Args) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    let pki = Pki::load_or_create(&args.dir, &["localhost".to_owned()], now)
        .context("loading the certificates")?;
    write_client_identity(&pki, &args.dir, now)?;
    let durability = match (&args.store, &args.fdatasync) {
        (Some(dir), _) => Durability::Store(
            Store::open(dir, &[LastBody::TABLE])
                .with_context(|| format!("opening the store in {}", dir.display()))?,
        ),
        (None, Some(path)) => Durability::Log(SyncLog::start(path)?),
        (None, None) => Durability::None,
    };
    let connections = AtomicU64::new(0);
    let acceptor = TlsAcceptor::from(pki.server_config()?);
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "baseline https://{}", listener.local_addr()?)?;
    writeln!(out, "device CA {}", pki.ca_path().display())?;
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);

    let mut term = signal(SignalKind::terminate())?;
    loop {
        let (tcp, _) = tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // As the satellite does: without it a fresh connection's first answer can wait for
        // the client's delayed ACK of the handshake's session tickets (40 ms).
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let durability = durability.clone();
        let connection = connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let durability = durability.clone();
                async move { answer(req, &durability, connection).await }
            });
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// Reads the whole body (as the satellite does), puts it through `durability`, and answers 204
/// (400 if the body did not arrive, 500 if it could not be made durable).
async fn answer(
    req: Request<Incoming>,
    durability: &Durability,
    connection: u64,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let status = match req.into_body().collect().await {
        Err(_) => StatusCode::BAD_REQUEST,
        Ok(body) => {
            let durable = match durability {
                Durability::None => true,
                Durability::Store(store) => {
                    let mut batch = Batch::new();
                    batch.put(&LastBody {
                        connection,
                        body: body.to_bytes().to_vec(),
                    });
                    store.commit(batch).await.is_ok()
                }
                Durability::Log(log) => log.append(&body.to_bytes()).await,
            };
            if durable {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    };
    let mut res = Response::new(Empty::new());
    *res.status_mut() = status;
    Ok(res)
}

/// The sync floor's file: bodies appended to a buffer, written and synced a group at a time by
/// one task, which hands the blocking write and `fdatasync` to tokio's blocking pool.
struct SyncLog {
    file: Arc<std::fs::File>,
    /// Bodies not yet taken by a group, and the number of the last one appended.
    pending: Mutex<(Vec<u8>, u64)>,
    kick: tokio::sync::Notify,
    /// The number of the last body on disk; `u64::MAX` once a write or sync failed.
    synced: tokio::sync::watch::Sender<u64>,
}

/// The sync floor's file size: preallocated with zeros and synced, then written round, so that
/// no sync has to write the file's size or allocate blocks.
const LOG_BYTES: u64 = 64 << 20;

impl SyncLog {
    fn start(path: &Path) -> Result<Arc<SyncLog>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let zeros = vec![0u8; 1 << 20];
        for chunk in 0..LOG_BYTES / zeros.len() as u64 {
            file.write_all_at(&zeros, chunk * zeros.len() as u64)?;
        }
        file.sync_all()?;
        let log = Arc::new(SyncLog {
            file: Arc::new(file),
            pending: Mutex::new((Vec::new(), 0)),
            kick: tokio::sync::Notify::new(),
            synced: tokio::sync::watch::channel(0).0,
        });
        tokio::spawn(Arc::clone(&log).write_groups());
        Ok(log)
    }

    /// Appends `body` and returns whether a sync covered it.
    async fn append(&self, body: &[u8]) -> bool {
        let number = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.0.extend_from_slice(body);
            pending.1 += 1;
            pending.1
        };
        self.kick.notify_one();
        let mut synced = self.synced.subscribe();
        match synced.wait_for(|&done| done >= number).await {
            Ok(done) => *done != u64::MAX,
            Err(_) => false,
        }
    }

    /// Takes whatever was appended since the last group, writes it at the file's next offset
    /// (round the file), syncs, and tells the writers; until a write fails.
    async fn write_groups(self: Arc<SyncLog>) {
        let mut offset = 0u64;
        loop {
            self.kick.notified().await;
            loop {
                let (group, last) = {
                    let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    (std::mem::take(&mut pending.0), pending.1)
                };
                if group.is_empty() {
                    break;
                }
                if offset + group.len() as u64 > LOG_BYTES {
                    offset = 0;
                }
                let file = Arc::clone(&self.file);
                let at = offset;
                offset += group.len() as u64;
                let written = tokio::task::spawn_blocking(move || {
                    file.write_all_at(&group, at)?;
                    file.sync_data()
                })
                .await;
                let done = match written {
                    Ok(Ok(())) => last,
                    _ => u64::MAX,
                };
                self.synced.send_replace(done);
                if done == u64::MAX {
                    return;
                }
            }
        }
    }
}

/// Signs a client certificate with the CA in `dir` and writes it with its key, unless it
/// exists already.
fn write_client_identity(pki: &Pki, dir: &Path, now: OffsetDateTime) -> Result<()> {
    let (cert_path, key_path) = (dir.join("client.pem"), dir.join("client.key"));
    if cert_path.exists() && key_path.exists() {
        return Ok(());
    }
    let (key_pem, csr) = satellite::agent::new_key_and_csr("loadgen baseline")?;
    let issued = pki.sign_csr(&csr, "loadgen baseline", time::Duration::days(7), now)?;
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    key.write_all(key_pem.as_bytes())?;
    std::fs::write(&cert_path, issued.pem)
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    Ok(())
}
