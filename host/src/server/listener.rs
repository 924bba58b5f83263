//! Accepting and serving connections under limits, so that no number of idle, slow or
//! numerous connections keeps the server from answering (issue 13, "hold under attack").
//!
//! - **Request heads** must arrive within the header read timeout. hyper starts that clock
//!   whenever it waits for a head (hyper 1.12, `proto/h1/conn.rs`, `poll_read_head`): when
//!   the connection opens, and again as soon as an answer has gone out on a kept-alive
//!   connection (`State::idle` sets `notify_read` so the next head is awaited at once). So
//!   it closes silent connections, slowloris ones (a header byte now and then) and kept-alive
//!   connections silent between requests alike. It never runs while a handler does: hyper
//!   reads no head while a request is in flight.
//! - **Idle connections**: one on which nothing is read or written for the idle timeout
//!   while none of its requests is being handled is closed (a client that stopped reading
//!   its answer, or sends the rest of a body nobody waits for). While a handler runs the
//!   connection is never idle, however long the hook takes.
//! - **Request bodies** must keep coming: the next part within the body read timeout of the
//!   handler asking for it, and the whole at `MIN_BODY_BYTES_PER_SECOND` on average beyond
//!   that allowance, or the request is answered 408 and the connection closed.
//! - **Caps**: at most `max_connections` at once, lowered to the open-file limit (raised to
//!   its hard limit at start) less `FILE_RESERVE`, so neither `accept` nor the database,
//!   module files or outgoing sockets run out of file descriptors; and at most
//!   `max_connections_per_peer` from one address, more being closed at once.
//!
//! Every request carries `ConnectInfo<SocketAddr>`, as with axum's own `serve`. Shutdown
//! stops accepting and waits for every connection to finish the requests it is handling.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::{BoxError, Router};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use super::config::Connections;

/// Open files kept for everything but client connections: the database and its WAL, module
/// files and compiled artifacts, outgoing webhook and guest sockets, the log. With the
/// connections capped at the open-file limit less this, `accept` never fails for want of a
/// file descriptor, and neither does anything else.
pub const FILE_RESERVE: usize = 1024;

/// The slowest a request body may come on average, beyond the body read timeout's
/// allowance: far below any real link, even a poor mobile one, so it stops only a body
/// dripped on purpose (a byte now and then, each in time for the body read timeout).
pub const MIN_BODY_BYTES_PER_SECOND: u64 = 1024;

/// How long the accept loop pauses after an error that is not about one connection (out of
/// file descriptors or memory): long enough not to spin, short enough that a place freed by
/// a closing connection is soon used.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The most often one recurring warning (accept errors, refused peers) is logged.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` under the limits of `config` until `shutdown` completes;
/// then stops accepting, lets every open connection finish the requests it is handling,
/// and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &Connections,
    shutdown: impl Future<Output = ()>,
) {
    let file_limit = raise_file_limit();
    let max_connections = connection_cap(config.max_connections, file_limit);
    let per_peer = config.max_connections_per_peer.max(1);
    tracing::info!(
        "open-file limit {}; serving at most {max_connections} connections, {per_peer} per \
         address; timeouts: header read {:?}, idle {:?}, body read {:?}",
        file_limit.map_or_else(|| "unlimited".to_owned(), |limit| limit.to_string()),
        config.header_read_timeout(),
        config.idle_timeout(),
        config.body_read_timeout(),
    );
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout())
        .keep_alive(true);
    let shared = Arc::new(Shared {
        http,
        router: TowerToHyperService::new(router),
        idle_timeout: config.idle_timeout(),
        body_timeout: config.body_read_timeout(),
    });
    let places = Arc::new(Semaphore::new(max_connections));
    let peers = Arc::new(Peers::new(per_peer));
    let graceful = GracefulShutdown::new();
    let mut accept_errors = Throttled::default();
    let mut refusals = Throttled::default();
    let mut shutdown = pin!(shutdown);
    loop {
        // At the global cap, wait for a connection to end rather than accept and close. A
        // waiting connection holds no file descriptor of ours (it sits in the kernel's
        // listen queue), so the reserve stays whole, and it is served in its turn as soon
        // as the timeouts free a place: a client sees a delay of at most about one header
        // read timeout. Accepting and closing would instead refuse every client, attacker
        // or not, for as long as an attacker keeps the server at its cap, and spend an
        // accept per refusal. (While waiting, the per-peer check pauses too: reaching the
        // global cap takes many addresses, each within its own cap.)
        let place = tokio::select! {
            biased;
            () = shutdown.as_mut() => break,
            place = Arc::clone(&places).acquire_owned() => match place {
                Ok(place) => place,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.as_mut() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if let Some(skipped) = accept_errors.due() {
                        tracing::warn!(
                            "cannot accept a connection: {error} ({skipped} more accept \
                             errors since the last report)"
                        );
                    }
                    // An error about one connection (it went away before it was taken)
                    // consumes it: the next accept moves on, so it cannot spin. Any other
                    // (EMFILE, ENFILE, ENOBUFS) repeats until something is freed: pause.
                    if !is_about_one_connection(&error) {
                        tokio::select! {
                            biased;
                            () = shutdown.as_mut() => break,
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        }
                    }
                    continue;
                }
            },
        };
        let Some(peer_place) = peers.claim(peer.ip()) else {
            if let Some(skipped) = refusals.due() {
                tracing::warn!(
                    "closed a connection from {peer}: {per_peer} connections from its address \
                     are open ({skipped} more closed since the last report)"
                );
            }
            // Closed at once; its place goes back with `place`.
            drop(stream);
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on the connection of {peer}: {error}");
        }
        let shared = Arc::clone(&shared);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            shared.serve_connection(stream, peer, watcher).await;
            // The connection is closed: its places go back.
            drop((place, peer_place));
        });
    }
    // No more connections: those still in the listen queue are refused by the kernel.
    drop(listener);
    tracing::info!(
        "waiting for {} open connections to finish their requests",
        graceful.count()
    );
    graceful.shutdown().await;
}

/// Raises the open-file soft limit to the hard limit, and returns the soft limit then in
/// force (`None`: unlimited). A failure keeps the limit as it was, with a warning.
fn raise_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    if before.current != before.maximum {
        let raised = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(
                "cannot raise the open-file limit from {:?} to {:?}: {error}",
                before.current,
                before.maximum
            );
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The connections served at once: as configured, but never so many that they would take
/// the file descriptors of `FILE_RESERVE` (with a small limit, half of it), and at least one.
fn connection_cap(configured: usize, file_limit: Option<u64>) -> usize {
    let by_files = match file_limit {
        None => usize::MAX,
        Some(limit) => {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            if limit > 2 * FILE_RESERVE {
                limit - FILE_RESERVE
            } else {
                limit / 2
            }
        }
    };
    configured.min(by_files).clamp(1, Semaphore::MAX_PERMITS)
}

/// Whether an `accept` error concerns only the connection being accepted, which went away
/// before it was taken; the next one can be accepted at once.
fn is_about_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// What every connection shares: hyper's settings, the router and the timeouts.
struct Shared {
    http: http1::Builder,
    router: TowerToHyperService<Router>,
    idle_timeout: Duration,
    body_timeout: Duration,
}

impl Shared {
    /// Serves one connection until it ends, stays idle too long, or the server shuts down
    /// (then it finishes the request it is handling, if any, and ends).
    async fn serve_connection(&self, stream: TcpStream, peer: SocketAddr, watcher: Watcher) {
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

/// The answer to a request whose body did not come in time: 408 in the API's error shape,
/// closing the connection, whose rest of the body is unread.
fn body_too_slow() -> Response<Body> {
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
struct TimedBody<B> {
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
    fn new(inner: B, gap: Duration, late: Arc<AtomicBool>) -> Self {
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

/// Connections open per peer address, to cap each.
#[derive(Debug)]
struct Peers {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Peers {
    fn new(limit: usize) -> Self {
        Peers {
            limit: limit.max(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a new connection from `address`; `None` when its address is at the cap.
    fn claim(self: &Arc<Self>, address: IpAddr) -> Option<PeerPlace> {
        let key = peer_key(address);
        // Held only to count, never across an await.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(PeerPlace {
            peers: Arc::clone(self),
            key,
        })
    }
}

/// One connection counted against its peer's cap, until dropped.
#[derive(Debug)]
struct PeerPlace {
    peers: Arc<Peers>,
    key: IpAddr,
}

impl Drop for PeerPlace {
    fn drop(&mut self) {
        let mut open = self
            .peers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The address a peer's connections are counted under: its IPv4 address (also when mapped
/// into IPv6), or its IPv6 /64, since one host usually holds a whole /64 and counting single
/// IPv6 addresses would cap nothing.
fn peer_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(Ipv6Addr::from(segments))
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// A warning that may recur many times a second, logged at most once per `WARN_EVERY` with
/// how many were left out.
#[derive(Debug, Default)]
struct Throttled {
    last: Option<Instant>,
    skipped: u64,
}

impl Throttled {
    /// `Some(occurrences left out since the last report)` when this one should be logged.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < WARN_EVERY)
        {
            self.skipped = self.skipped.saturating_add(1);
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_keeps_a_reserve_of_files() {
        assert_eq!(connection_cap(16_384, Some(20_000)), 16_384);
        assert_eq!(
            connection_cap(usize::MAX, Some(20_000)),
            20_000 - FILE_RESERVE
        );
        // A small limit: half of it for connections.
        assert_eq!(connection_cap(16_384, Some(1024)), 512);
        assert_eq!(connection_cap(16_384, Some(0)), 1);
        assert_eq!(connection_cap(10, None), 10);
    }

    #[test]
    fn a_peer_at_its_cap_is_refused_until_one_of_its_connections_ends() {
        let peers = Arc::new(Peers::new(2));
        let address = IpAddr::from([127, 0, 0, 2]);
        let first = peers.claim(address);
        let second = peers.claim(address);
        assert!(first.is_some() && second.is_some());
        assert!(peers.claim(address).is_none());
        assert!(peers.claim(IpAddr::from([127, 0, 0, 3])).is_some());
        drop(first);
        assert!(peers.claim(address).is_some());
        drop(second);
        assert!(peers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty());
    }

    #[test]
    fn ipv6_peers_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("an address");
        let other: IpAddr = "2001:db8:1:2:ffff::1".parse().expect("an address");
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().expect("an address");
        assert_eq!(peer_key(one), peer_key(other));
        assert_ne!(peer_key(one), peer_key(elsewhere));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("an address");
        assert_eq!(peer_key(mapped), IpAddr::from([192, 0, 2, 1]));
    }

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
