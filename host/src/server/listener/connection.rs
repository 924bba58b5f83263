//! One accepted connection, served until it ends: hyper's HTTP/1 connection over a socket
//! that notes when bytes move, closed when idle (nothing read or written for the idle
//! timeout while no handler runs); each request given its peer's address and a timed body,
//! and answered 408 when that body came too slowly. Apart from the accept loop because it
//! is what happens after a connection is taken, whatever the caps that let it in.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use futures::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::body_rate::{body_too_slow, TimedBody};

/// What every connection shares: hyper's settings, the router and the timeouts.
pub(super) struct Shared {
    pub(super) http: http1::Builder,
    pub(super) router: TowerToHyperService<Router>,
    pub(super) idle_timeout: Duration,
    pub(super) body_timeout: Duration,
}

impl Shared {
    /// Serves one connection until it ends, stays idle too long, or the server shuts down
    /// (then it finishes the request it is handling, if any, and ends).
    pub(super) async fn serve_connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        watcher: Watcher,
    ) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked {
            stream,
            activity: Arc::clone(&activity),
        });
        let service = ConnectionService {
            router: self.router.clone(),
            peer,
            activity: Arc::clone(&activity),
            body_timeout: self.body_timeout,
        };
        let mut connection = pin!(watcher.watch(self.http.serve_connection(io, service)));
        loop {
            let wait = match activity.idle_left(self.idle_timeout) {
                Some(left) if left.is_zero() => {
                    // Dropping the connection closes the socket; no handler is running.
                    tracing::debug!(
                        "closing the connection of {peer}: silent for {:?}",
                        self.idle_timeout
                    );
                    return;
                }
                Some(left) => left,
                // A handler is running: look again later.
                None => self.idle_timeout,
            };
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        // Header read timeouts, clients that went away: expected.
                        tracing::debug!("the connection of {peer} ended: {error}");
                    }
                    return;
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// When bytes last moved on a connection, and how many of its requests are being handled.
#[derive(Debug)]
struct Activity {
    origin: Instant,
    /// Milliseconds from `origin` to the last read, write or end of a handler.
    last: AtomicU64,
    /// Handlers running (HTTP/1: at most one).
    handling: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
        }
    }

    /// Notes that something happened now.
    fn touch(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::SeqCst);
    }

    /// How much longer the connection may stay silent before it is idle for `limit`;
    /// `None` while a handler runs, since a running request is never cut.
    fn idle_left(&self, limit: Duration) -> Option<Duration> {
        if self.handling.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last.load(Ordering::SeqCst));
        let silent = self.origin.elapsed().saturating_sub(last);
        Some(limit.saturating_sub(silent))
    }
}

/// A running handler, counted in its connection's `Activity` for as long as it lives.
struct Handling(Arc<Activity>);

impl Handling {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.handling.fetch_add(1, Ordering::SeqCst);
        Handling(Arc::clone(activity))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        // The connection's silence is counted from the handler's end, not its start.
        self.0.touch();
        self.0.handling.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The accepted socket, noting in `activity` whenever bytes move either way.
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl Tracked {
    fn note_written(&self, result: &Poll<io::Result<usize>>) {
        if matches!(result, Poll::Ready(Ok(written)) if *written > 0) {
            self.activity.touch();
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.note_written(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.note_written(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// One connection's way into the router: gives each request its peer's address and a
/// timed body, counts it as handled while its handler runs, and answers 408 when its body
/// did not come in time.
struct ConnectionService {
    router: TowerToHyperService<Router>,
    peer: SocketAddr,
    activity: Arc<Activity>,
    body_timeout: Duration,
}

impl Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let handling = Handling::begin(&self.activity);
        let late = Arc::new(AtomicBool::new(false));
        let (mut parts, body) = request.into_parts();
        // What `Router::into_make_service_with_connect_info` would add: handlers that
        // throttle or log by peer read it.
        parts.extensions.insert(ConnectInfo(self.peer));
        let body = Body::new(TimedBody::new(body, self.body_timeout, Arc::clone(&late)));
        let answer = self.router.call(Request::from_parts(parts, body));
        Box::pin(async move {
            let response = answer.await;
            drop(handling);
            if late.load(Ordering::SeqCst) {
                // Whatever the handler made of the failed body read, the client was late.
                return Ok(body_too_slow());
            }
            response
        })
    }
}
