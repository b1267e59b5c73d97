//! Request limits, applied to a router in front of its handlers (SPEC §9, "Connections").
//!
//! - **Size.** A body announced larger than the route accepts (`Content-Length`, or its HTTP/2
//!   equivalent) is answered 413 `payload_too_large` at once, before any of it is read, so an
//!   HTTP/1.1 client sending `Expect: 100-continue` gets the 413 instead of `100 Continue`. A
//!   body without a length is cut by the handler's own limit as soon as it crosses it.
//! - **Time.** The whole body must arrive within `body_timeout` of the request's headers, and
//!   the response must be ready within `request_timeout`; otherwise 408 `request_timeout`.
//! - **Answering a body we will not read.** Closing a connection whose unread request data is
//!   still arriving makes the kernel reset it, and a client still sending then loses the
//!   response it has not read yet. So a body left unread by a handler (refused by size, or
//!   answered early) is read and discarded in the background, up to [`LINGER_BYTES`] and at
//!   most [`LINGER_TIME`] (never past the body deadline), while the response goes out; over
//!   HTTP/2 this also ends the stream cleanly instead of resetting it. A 413 or 408 over
//!   HTTP/1.1 carries `Connection: close`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::error::{ApiError, BodyTimedOut};
use super::metrics::Observed;

/// The most an unread body is read and discarded after its request was answered.
pub const LINGER_BYTES: u64 = 16 * 1024 * 1024;
/// The longest an unread body is read and discarded after its request was answered.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// The limits of one listener's requests.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    /// The body limit of every route not named by `larger_bodies`.
    pub max_body_bytes: usize,
    /// The routes that take larger bodies (files, RUM uploads), by path, with their limit. It
    /// must agree with the limits the handlers of those routes read bodies with.
    pub larger_bodies: fn(&str) -> Option<usize>,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
}

impl RequestLimits {
    fn body_limit(&self, path: &str) -> usize {
        (self.larger_bodies)(path).unwrap_or(self.max_body_bytes)
    }
}

/// The request metrics and these limits, in front of every route of a listener's router.
struct Guards {
    limits: RequestLimits,
    observed: Observed,
}

/// Puts the request metrics (`metrics::track`), then `limits`, in front of every route of
/// `router`, as one middleware: one boxed future and one clone of the route per request, not
/// one per concern.
pub fn apply(router: Router, limits: RequestLimits, observed: Observed) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        Arc::new(Guards { limits, observed }),
        guarded,
    ))
}

async fn guarded(State(g): State<Arc<Guards>>, req: Request, next: Next) -> Response {
    super::metrics::track(&g.observed, req, |req| guard(&g.limits, req, next)).await
}

async fn guard(limits: &RequestLimits, req: Request, next: Next) -> Response {
    let limit = limits.body_limit(req.uri().path());
    let http1 = req.version() < Version::HTTP_2;
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, body) = req.into_parts();
    let announced = body.size_hint().lower();
    let body = Guarded {
        inner: Some(body),
        deadline: Instant::now() + limits.body_timeout,
        timeout: limits.body_timeout,
        timer: None,
        progress: Progress::Untouched,
        expects_continue,
    };
    let response = if announced > limit as u64 {
        // Dropping the body without reading it: over HTTP/1.1 hyper then never sends
        // `100 Continue`, and a body already on its way is discarded in the background.
        drop(body);
        ApiError::payload_too_large(limit).into_response()
    } else {
        let req = Request::from_parts(parts, Body::new(body));
        match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
            Ok(response) => response,
            Err(_) => ApiError::request_timeout(format!(
                "the request was not answered within {} s",
                limits.request_timeout.as_secs()
            ))
            .into_response(),
        }
    };
    closing_if_refused(response, http1)
}

/// Adds `Connection: close` to a 408 or 413 over HTTP/1.1: the request's body may be partly
/// unread, so the connection cannot carry another request.
fn closing_if_refused(mut response: Response, http1: bool) -> Response {
    let refused = matches!(
        response.status(),
        StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
    );
    if http1 && refused {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    /// Never polled: over HTTP/1.1 with `Expect: 100-continue`, the client has not been told
    /// to send it.
    Untouched,
    Reading,
    /// Read to its end, or failed (timed out, connection broken): nothing left to discard.
    Finished,
}

/// A request body with a deadline, discarded in the background if dropped unread.
struct Guarded {
    /// `None` only once dropped.
    inner: Option<Body>,
    deadline: Instant,
    timeout: Duration,
    /// Created only when the body is not already there when first asked for, so a request
    /// whose body came with its headers costs no timer.
    timer: Option<Pin<Box<Sleep>>>,
    progress: Progress,
    expects_continue: bool,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.progress = Progress::Reading;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => {
                this.progress = Progress::Finished;
                Poll::Ready(other)
            }
            Poll::Pending => {
                this.progress = Progress::Reading;
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.progress = Progress::Finished;
                    return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(this.timeout)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.progress == Progress::Finished || self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        let unread = match self.progress {
            Progress::Finished => false,
            // The client waits for `100 Continue` before sending: there is nothing to discard.
            Progress::Untouched if self.expects_continue => false,
            Progress::Untouched | Progress::Reading => !body.is_end_stream(),
        };
        // A body announced beyond what lingering would read is not worth reading at all.
        let too_long = body.size_hint().lower() > LINGER_BYTES;
        if !unread || too_long {
            return;
        }
        let until = self.deadline.min(Instant::now() + LINGER_TIME);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(discard(body, until));
        }
    }
}

/// Reads and discards `body` until its end, [`LINGER_BYTES`] or `until`, whichever is first.
async fn discard(mut body: Body, until: Instant) {
    let read = async {
        let mut bytes = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                bytes += data.len() as u64;
                if bytes > LINGER_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout_at(until, read).await;
}
