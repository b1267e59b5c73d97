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

use std::convert::Infallible;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use satellite::pki::Pki;
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
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = hyper::service::service_fn(no_content);
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// Reads the whole body (as the satellite does) and answers 204.
async fn no_content(req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    let status = match req.into_body().collect().await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut res = Response::new(Empty::new());
    *res.status_mut() = status;
    Ok(res)
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
