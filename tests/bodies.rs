//! Request bodies (SPEC §9, "Connections"): a body over the limit is answered 413 at once, over
//! HTTP/1.1 (with and without `Expect: 100-continue`) and HTTP/2, on both TCP listeners, and
//! reaches a client that is still sending; a body that never arrives is answered 408 and its
//! connection closed. Real TLS over real sockets, raw where the wire matters.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connections::{CAP, GREEDY, connect, h1, read_to_end};
use crate::inproc::Sat;
use crate::util::Daemon;

const MIB: usize = 1024 * 1024;

/// The head of a POST of `length` bytes over HTTP/1.1, with `extra` header lines.
fn post_head(path: &str, length: usize, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n{extra}\r\n"
    )
}

/// Asserts an HTTP/1.1 answer is exactly one 413 `payload_too_large`, with no `100 Continue`.
fn assert_413(answer: &str) {
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "expected a 413 first, got: {answer:.300}"
    );
    assert!(answer.contains("\"payload_too_large\""), "{answer:.300}");
    assert!(!answer.contains("100 Continue"), "{answer:.300}");
}

/// A request body sent in 64 KiB frames that tells, once hyper drops it, whether all of it went
/// out: a stream the server resets stops being sent.
struct Counted {
    chunks: std::collections::VecDeque<Bytes>,
    announced: Option<u64>,
    left: Arc<std::sync::atomic::AtomicUsize>,
    dropped: Option<tokio::sync::oneshot::Sender<()>>,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let chunk = self.chunks.pop_front();
        if let Some(chunk) = &chunk {
            self.left
                .fetch_sub(chunk.len(), std::sync::atomic::Ordering::SeqCst);
        }
        std::task::Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self.announced {
            Some(n) => hyper::body::SizeHint::with_exact(n),
            None => hyper::body::SizeHint::default(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(dropped) = self.dropped.take() {
            let _ = dropped.send(());
        }
    }
}

/// What an HTTP/2 POST got: the status, the body, and whether the client could send its whole
/// request body (the server read it to its end rather than resetting the stream).
struct H2Answer {
    status: u16,
    body: String,
    sent_all: bool,
}

/// POSTs `size` bytes to `path` over HTTP/2 (ALPN h2), with its length announced or not.
async fn h2_post(
    to: SocketAddr,
    ca_pem: &str,
    path: &str,
    size: usize,
    announced: bool,
) -> H2Answer {
    let tls = connect(GREEDY, to, ca_pem, b"h2").await.expect("TLS");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(size));
    let (dropped, body_dropped) = tokio::sync::oneshot::channel();
    let body = Counted {
        chunks: vec![b' '; size]
            .chunks(64 * 1024)
            .map(Bytes::copy_from_slice)
            .collect(),
        announced: announced.then_some(size as u64),
        left: left.clone(),
        dropped: Some(dropped),
    };
    let request = hyper::Request::post(format!("https://localhost{path}"))
        .header("content-type", "application/json")
        .body(body)
        .expect("a request");
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .expect("the HTTP/2 request is answered, not reset");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("a body");
        let _ = body_dropped.await;
        H2Answer {
            status,
            body: String::from_utf8_lossy(&bytes.to_bytes()).into_owned(),
            sent_all: left.load(std::sync::atomic::Ordering::SeqCst) == 0,
        }
    };
    tokio::time::timeout(CAP, exchange)
        .await
        .expect("answered within the cap")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_device_bodies_get_413_over_http1_and_http2() {
    let s = Sat::start().await;
    let addr: SocketAddr = s.url.trim_start_matches("https://").parse().unwrap();
    let big = vec![b' '; 8 * MIB];

    // HTTP/1.1: the client sends all 8 MiB before reading, and still reads the 413.
    let mut stream = h1(addr, &s.ca_pem).await;
    let head = post_head("/v1/register", big.len(), "");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&big)
        .await
        .expect("the server reads (and discards) the body instead of resetting");
    let (answer, _) = read_to_end(&mut stream).await;
    assert_413(&answer);

    // HTTP/1.1 with `Expect: 100-continue`: 413 instead of `100 Continue`.
    let mut stream = h1(addr, &s.ca_pem).await;
    let head = post_head("/v1/register", MIB, "Expect: 100-continue\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let (answer, _) = read_to_end(&mut stream).await;
    assert_413(&answer);

    // 10 MB announced and never sent: 413 at once, not 408 after the body timeout.
    let mut stream = h1(addr, &s.ca_pem).await;
    let head = post_head("/v1/register", 10_000_000, "");
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut first = vec![0u8; 12];
    tokio::time::timeout(CAP, stream.read_exact(&mut first))
        .await
        .expect("answered within the cap")
        .expect("an answer");
    assert_eq!(&first, b"HTTP/1.1 413", "answered 413, not 408");
    eprintln!("10 MB announced: 413 after {:?}", started.elapsed());

    // A body with no length (chunked) over the limit: 413 as soon as it is crossed.
    let mut stream = h1(addr, &s.ca_pem).await;
    let head =
        "POST /v1/register HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in big.chunks(64 * 1024) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        stream.write_all(&framed).await.expect("the body is read");
    }
    stream
        .write_all(b"0\r\n\r\n")
        .await
        .expect("the body is read");
    let (answer, _) = read_to_end(&mut stream).await;
    assert_413(&answer);

    // HTTP/2, announced and streamed: 413, and the stream ends cleanly (a client still sending
    // when it was reset lost the answer). The RUM endpoint takes up to 8 MiB; its handler
    // checks the account before reading a body of unknown length, so only the announced case
    // is about its limit.
    for (path, size, announced) in [
        ("/v1/register", MIB, true),
        ("/v1/register", 8 * MIB, true),
        ("/v1/register", 8 * MIB, false),
        ("/cslu/v1/pi", 8 * MIB + 1, true),
    ] {
        let a = h2_post(addr, &s.ca_pem, path, size, announced).await;
        let what = format!("{path} {size} bytes, announced {announced}");
        assert_eq!(a.status, 413, "{what}: {}", a.body);
        assert!(
            a.body.contains("\"payload_too_large\""),
            "{what}: {}",
            a.body
        );
        assert!(
            a.sent_all,
            "{what}: the stream was reset, not read to its end"
        );
    }
}

#[test]
fn admin_bodies_too_large_or_too_slow_are_answered_and_closed() {
    let d = Daemon::start_with("body_timeout = \"1s\"", "");
    d.cli_ok(&["user", "create", "root"]);
    d.cli_ok(&["user", "grant", "root", "--role", "system-admin"]);
    let secret = d.cli_json(&["api-token", "create", "--user", "root"])["secret"]
        .as_str()
        .expect("a secret")
        .to_string();
    let auth = format!("Authorization: Bearer {secret}\r\n");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        // A body that never arrives: 408 within the body timeout, and the connection closed.
        let mut stream = h1(d.admin_addr, &d.ca_pem).await;
        let head = post_head("/v1/accounts", 100, &auth);
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(b"{\"name\": ").await.unwrap();
        let (answer, took) = read_to_end(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"request_timeout\""), "{answer}");
        eprintln!("an admin body that never came: 408 and closed after {took:?}");

        // Over the admin limit (1 MiB): HTTP/1.1 with and without 100-continue, and HTTP/2.
        let mut stream = h1(d.admin_addr, &d.ca_pem).await;
        let expect = format!("{auth}Expect: 100-continue\r\n");
        let head = post_head("/v1/accounts", 2 * MIB, &expect);
        stream.write_all(head.as_bytes()).await.unwrap();
        let (answer, _) = read_to_end(&mut stream).await;
        assert_413(&answer);

        let mut stream = h1(d.admin_addr, &d.ca_pem).await;
        let head = post_head("/v1/accounts", 2 * MIB, &auth);
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
            .write_all(&vec![b' '; 2 * MIB])
            .await
            .expect("the body is read, not reset");
        let (answer, _) = read_to_end(&mut stream).await;
        assert_413(&answer);

        let a = h2_post(d.admin_addr, &d.ca_pem, "/v1/accounts", 2 * MIB, true).await;
        assert_eq!(a.status, 413, "{}", a.body);
        assert!(a.body.contains("\"payload_too_large\""), "{}", a.body);
        assert!(a.sent_all, "the stream was reset, not read to its end");
    });
}
