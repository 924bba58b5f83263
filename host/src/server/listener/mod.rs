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
//!
//! This file holds the accept loop, with the global and per-peer caps it applies and its
//! rate-limited warnings; each other concern is a file of its own:
//!
//! - `files.rs`: the open-file limit, raised at start, and the connection cap it sets;
//! - `peers.rs`: connections counted per peer address (IPv6: per /64), to cap each;
//! - `connection.rs`: one connection served: its idle timeout, the peer's address on each
//!   request, the 408 for a late body;
//! - `body_rate.rs`: request bodies that must keep coming (the minimum body rate).

mod body_rate;
mod connection;
mod files;
mod peers;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use self::connection::Shared;
use self::files::{connection_cap, raise_file_limit};
use self::peers::Peers;
use super::config::Connections;

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
