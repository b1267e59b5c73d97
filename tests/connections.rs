//! Connections (SPEC §9): one client cannot take every connection, and idle and slow clients
//! are closed. Request bodies that are too large or too slow are in `bodies.rs`, which shares
//! the raw TLS helpers here.
//!
//! Every test talks to the real listeners through real TLS from real sockets, raw where the
//! wire matters. Timeouts are configured short (1 s) and waited for with a bounded read (at
//! most [`CAP`]), never with a sleep.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::inproc::{Sat, usage_request};
use satellite::agent::{new_key_and_csr, register_raw};
use satellite::pki;
use satellite::protocol::device::{Authorization, RegisterRequest, Udi};

/// The longest any test waits for the server to act.
pub const CAP: Duration = Duration::from_secs(10);
/// The address that plays the greedy client, and the one a device comes from.
pub const GREEDY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A TLS connection from the local address `from` to `to`, offering `alpn` (`h2` or
/// `http/1.1`).
pub async fn connect(
    from: IpAddr,
    to: SocketAddr,
    ca_pem: &str,
    alpn: &[u8],
) -> std::io::Result<TlsStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(to).await?;
    let mut config = Arc::unwrap_or_clone(pki::client_config_trusting(ca_pem).expect("the CA"));
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = ServerName::try_from("localhost").expect("a server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

pub async fn h1(to: SocketAddr, ca_pem: &str) -> TlsStream<TcpStream> {
    connect(GREEDY, to, ca_pem, b"http/1.1")
        .await
        .expect("TLS connection")
}

/// Reads until the server closes the connection, within [`CAP`]: what came, and how long it
/// took. A reset after the response counts as the end.
pub async fn read_to_end(stream: &mut TlsStream<TcpStream>) -> (String, Duration) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let read = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    if tokio::time::timeout(CAP, read).await.is_err() {
        panic!(
            "the server kept the connection open for {CAP:?}; it sent: {}",
            String::from_utf8_lossy(&seen)
        );
    }
    (
        String::from_utf8_lossy(&seen).into_owned(),
        started.elapsed(),
    )
}

/// A reqwest client whose connections come from `from`, optionally with a device identity.
fn client_from(from: IpAddr, ca_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    let config = match identity {
        Some((cert, key)) => pki::client_config_with_identity(ca_pem, cert, key),
        None => pki::client_config_trusting(ca_pem),
    };
    let mut config = Arc::unwrap_or_clone(config.expect("client configuration"));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .local_address(from)
        .timeout(CAP)
        .build()
        .expect("HTTPS client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holding_connections_does_not_lock_out_other_devices() {
    let s = Sat::start_with(
        "max_connections = 20\nmax_connections_per_address = 5\n\
         header_timeout = \"5m\"\nidle_timeout = \"5m\"",
        "",
    )
    .await;
    s.account("acme").await;
    s.license("acme/Default", "regid.ADV", 5).await;
    let (token, _) = s.token("acme/Default").await;
    let device_addr: SocketAddr = s.url.trim_start_matches("https://").parse().unwrap();

    // One address opens more connections than the listener's cap and keeps them idle.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..30 {
        match connect(GREEDY, device_addr, &s.ca_pem, b"http/1.1").await {
            Ok(stream) => held.push(stream),
            Err(_) => refused += 1,
        }
    }
    assert_eq!(held.len(), 5, "one address holds its own cap, no more");
    assert_eq!(refused, 25);

    // A device from another address registers and reports meanwhile.
    let started = Instant::now();
    let (key_pem, csr) = new_key_and_csr("test").expect("key and CSR");
    let request = RegisterRequest {
        token,
        udi: Udi {
            pid: "C9300-24T".into(),
            serial: "FOC1".into(),
        },
        hostname: "sw-1".into(),
        product: "Catalyst 9300".into(),
        version: "17.9.4".into(),
        csr,
        force: false,
    };
    let registered = register_raw(&client_from(OTHER, &s.ca_pem, None), &s.url, &request)
        .await
        .expect("a device from another address registers");
    let device = client_from(OTHER, &s.ca_pem, Some((&registered.certificate, &key_pem)));
    let answer = device
        .post(format!("{}/v1/usage", s.url))
        .json(&usage_request(1, &[("regid.ADV", 2)], s.now()))
        .send()
        .await
        .expect("the report is answered");
    assert_eq!(answer.status(), 200);
    let authorization: Authorization = answer.json().await.expect("an authorization");
    assert_eq!(authorization.entitlements[0].count, 2);
    eprintln!(
        "registered and reported from {OTHER} in {:?} while {GREEDY} held {} connections",
        started.elapsed(),
        held.len()
    );

    // The refusals are counted, per listener and reason.
    let metrics = s
        .admin
        .send_bytes(reqwest::Method::GET, "/metrics", Vec::new())
        .await
        .expect("metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(
            "satellite_connections_refused_total{listener=\"devices\",reason=\"address_limit\"} 25"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let s = Sat::start_with("idle_timeout = \"1s\"\nheader_timeout = \"5m\"", "").await;
    let addr: SocketAddr = s.url.trim_start_matches("https://").parse().unwrap();

    // HTTP/1.1, kept alive after one request.
    let mut stream = h1(addr, &s.ca_pem).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (answer, took) = read_to_end(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    eprintln!("an idle HTTP/1.1 connection was closed after {took:?}");

    // A connection that never says anything after its handshake.
    let mut silent = h1(addr, &s.ca_pem).await;
    let (nothing, _) = read_to_end(&mut silent).await;
    assert_eq!(nothing, "");

    // HTTP/2, kept alive after one request: the server ends the connection itself.
    let tls = connect(GREEDY, addr, &s.ca_pem, b"h2").await.expect("TLS");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("HTTP/2 handshake");
    let conn = tokio::spawn(conn);
    let request = hyper::Request::get("https://localhost/healthz")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.expect("answered");
    assert_eq!(response.status(), 200);
    let started = Instant::now();
    tokio::time::timeout(CAP, conn)
        .await
        .expect("the server closes an idle HTTP/2 connection")
        .expect("the connection task")
        .expect("a graceful close");
    eprintln!(
        "an idle HTTP/2 connection was closed after {:?}",
        started.elapsed()
    );
    drop(sender);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_after_the_header_timeout() {
    let s = Sat::start_with("header_timeout = \"1s\"\nidle_timeout = \"5m\"", "").await;
    let addr: SocketAddr = s.url.trim_start_matches("https://").parse().unwrap();
    let stream = h1(addr, &s.ca_pem).await;
    let (mut reader, mut writer) = tokio::io::split(stream);
    // One request in time, then the next one's headers a byte every 100 ms, until the server
    // closes the connection.
    let sender = tokio::spawn(async move {
        let first = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
        writer.write_all(first).await.expect("the first request");
        let header = b"POST /v1/register HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".to_vec();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        for byte in header.into_iter().chain(std::iter::repeat(b'a')) {
            tick.tick().await;
            if writer.write_all(&[byte]).await.is_err() || writer.flush().await.is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(CAP, async {
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    sender.abort();
    assert!(
        closed.is_ok(),
        "a slowloris sender is still connected after {CAP:?}"
    );
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "the first request was answered: {}",
        String::from_utf8_lossy(&seen)
    );
    eprintln!(
        "a slow header sender was cut off after {:?}",
        started.elapsed()
    );
}
