//! Request bodies that must keep coming: each part within the body read timeout of the
//! handler asking for it, and the whole at `MIN_BODY_BYTES_PER_SECOND` on average beyond
//! that allowance, else the request is answered 408 and its connection closed. Apart from
//! the connection because it wraps one request's body, whatever connection carries it, and
//! is tested without one.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::IntoResponse;
use axum::BoxError;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The slowest a request body may come on average, beyond the body read timeout's
/// allowance: far below any real link, even a poor mobile one, so it stops only a body
/// dripped on purpose (a byte now and then, each in time for the body read timeout).
pub const MIN_BODY_BYTES_PER_SECOND: u64 = 1024;

/// The answer to a request whose body did not come in time: 408 in the API's error shape,
/// closing the connection, whose rest of the body is unread.
pub(super) fn body_too_slow() -> Response<Body> {
    let detail = BodyTooSlow.to_string();
    let mut response = (
        StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({ "detail": detail })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that did not come in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not come in time")]
struct BodyTooSlow;

/// A request body that must keep coming: each part within `gap` of the handler asking for
/// it, and all of it within `gap` plus a second per `MIN_BODY_BYTES_PER_SECOND` bytes
/// received, counting only the time the handler spent waiting for it. A body too slow ends
/// in an error, and `late` tells the connection to answer 408.
#[derive(Debug)]
pub(super) struct TimedBody<B> {
    inner: B,
    gap: Duration,
    /// Time the handler has spent waiting for parts, up to the last one received.
    waited: Duration,
    received: u64,
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    late: Arc<AtomicBool>,
}

impl<B> TimedBody<B> {
    pub(super) fn new(inner: B, gap: Duration, late: Arc<AtomicBool>) -> Self {
        TimedBody {
            inner,
            gap,
            waited: Duration::ZERO,
            received: 0,
            waiting_since: None,
            timer: None,
            late,
        }
    }

    /// How long the handler may wait for the next part, from now.
    fn allowance(&self) -> Duration {
        let earned =
            Duration::from_millis(self.received.saturating_mul(1000) / MIN_BODY_BYTES_PER_SECOND);
        self.gap
            .saturating_add(earned)
            .saturating_sub(self.waited)
            .min(self.gap)
    }
}

impl<B> hyper::body::Body for TimedBody<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.timer.is_none() {
            this.waiting_since = Some(Instant::now());
            this.timer = Some(Box::pin(tokio::time::sleep(this.allowance())));
        }
        if let Some(timer) = &mut this.timer {
            if timer.as_mut().poll(cx).is_ready() {
                this.late.store(true, Ordering::SeqCst);
                return Poll::Ready(Some(Err(BoxError::from(BodyTooSlow))));
            }
        }
        let frame = ready!(hyper::body::Body::poll_frame(Pin::new(&mut this.inner), cx));
        if let Some(since) = this.waiting_since.take() {
            this.waited = this.waited.saturating_add(since.elapsed());
        }
        this.timer = None;
        if let Some(Ok(frame)) = &frame {
            if let Some(data) = frame.data_ref() {
                let length = u64::try_from(data.len()).unwrap_or(u64::MAX);
                this.received = this.received.saturating_add(length);
            }
        }
        Poll::Ready(frame.map(|result| result.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.inner)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// A body that gives its parts (last first), then ends or stalls.
    struct Scripted {
        parts: Vec<Bytes>,
        ends: bool,
    }

    impl hyper::body::Body for Scripted {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.parts.pop() {
                Some(part) => Poll::Ready(Some(Ok(Frame::data(part)))),
                None if self.ends => Poll::Ready(None),
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test]
    async fn a_body_that_comes_at_once_is_read_whole() {
        let late = Arc::new(AtomicBool::new(false));
        let body = Scripted {
            parts: vec![Bytes::from_static(b"}"), Bytes::from_static(b"{")],
            ends: true,
        };
        let body = TimedBody::new(body, Duration::from_millis(50), Arc::clone(&late));
        let collected = http_body_util::BodyExt::collect(body)
            .await
            .expect("the whole body");
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"{}"));
        assert!(!late.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_body_that_stops_coming_fails_after_the_timeout_and_marks_the_request_late() {
        let late = Arc::new(AtomicBool::new(false));
        let body = Scripted {
            parts: vec![Bytes::from_static(b"{")],
            ends: false,
        };
        let body = TimedBody::new(body, Duration::from_millis(50), Arc::clone(&late));
        let started = Instant::now();
        let result = http_body_util::BodyExt::collect(body).await;
        assert!(result.is_err());
        assert!(late.load(Ordering::SeqCst));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
