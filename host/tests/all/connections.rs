//! Connections under attack (issue 13): thousands of idle and slowloris connections neither
//! keep an ordinary request from its answer nor stay open past the header read timeout; one
//! address gets at most its cap of connections while others are served; a request body
//! that stops coming, or only drips, is answered 408 after the body read timeout.
//!
//! The attacks come from other loopback addresses than the tests' own requests (all of
//! 127/8 is loopback on Linux), so the server sees them as other peers.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::support::{http_client_builder, wait_until, Server, OPERATOR_TOKEN};

/// The timeouts the tests' servers run with, short so that the tests see them act.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How much later than its timeout a busy machine may close a connection.
const SLACK: Duration = Duration::from_secs(3);
/// How much earlier than its timeout a connection may seem closed (clocks, scheduling).
const EARLY: Duration = Duration::from_millis(500);
/// The longest an ordinary request may take during the attack; it usually takes a few
/// milliseconds.
const PROMPT: Duration = Duration::from_secs(2);
/// The attack's idle connections (fewer if this process may not open so many files).
const IDLE_CONNECTIONS: usize = 2_000;
/// The attack's slowloris connections: a header byte every `DRIP_EVERY`, the head never
/// complete.
const SLOWLORIS_CONNECTIONS: usize = 300;
/// Loopback addresses the idle connections come from (127.0.0.2 on), and the slowloris
/// ones (after those): each address stays under the per-address cap (128 by default), so
/// every connection is left to the timeouts.
const IDLE_SOURCES: u8 = 40;
const SLOWLORIS_SOURCES: u8 = 10;
const DRIP_EVERY: Duration = Duration::from_millis(500);
/// Files this process keeps for the other tests, which run alongside.
const FILES_FOR_THE_REST: usize = 2_000;

/// A server with the short timeouts, and `extra` settings.
fn start(extra: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut env = vec![
        ("WASMHOOK_HEADER_READ_TIMEOUT_MS", "2000"),
        ("WASMHOOK_IDLE_TIMEOUT_MS", "3000"),
        ("WASMHOOK_BODY_READ_TIMEOUT_MS", "2000"),
    ];
    env.extend_from_slice(extra);
    let server = Server::start_with(dir.path(), Some(OPERATOR_TOKEN), &env, &[]);
    (dir, server)
}

/// The server's address.
fn address(server: &Server) -> SocketAddr {
    server
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/api/v1")
        .parse()
        .expect("the server's address")
}

/// Raises this process's open-file soft limit to its hard limit, and returns it.
fn raise_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    // Failing, the soft limit stays, and the attack is sized to it.
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The `index`th of `count` loopback addresses from 127.0.0.`first` on.
fn source(first: u8, count: u8, index: usize) -> Ipv4Addr {
    let offset = u8::try_from(index % usize::from(count)).expect("under 256");
    Ipv4Addr::new(127, 0, 0, first + offset)
}

/// A connection to `to` from `from`.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("a socket");
    socket
        .bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(from), 0)))
        .expect("bound to the source address");
    socket.connect(&SockAddr::from(to)).expect("connected");
    TcpStream::from(socket)
}

/// Whether the server has closed `stream`: reads what it sent until the end (closed, or
/// reset) or until nothing more is there (open).
fn is_closed(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("non-blocking");
    let mut buffer = [0; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => return false,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Whether the server closes `stream` within `within`.
fn closed_within(stream: &TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if is_closed(stream) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET /api/v1/organizations` as the operator from `from`: the answer's status line, or
/// what stopped the request being sent (a connection over the cap may be reset by the server
/// before the request is written, and that is an answer too, not a failure of the test).
fn get_from(from: Ipv4Addr, to: SocketAddr) -> String {
    let mut stream = connect_from(from, to);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    if let Err(error) = write!(
        stream,
        "GET /api/v1/organizations HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {OPERATOR_TOKEN}\r\nConnection: close\r\n\r\n"
    ) {
        return format!("not sent: {error}");
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Sends each connection the next byte of a request head every `DRIP_EVERY` (the head
/// never ends: after its start, one header value grows forever) until told to stop, and
/// hands the connections back.
fn drip(streams: Vec<TcpStream>, stop: &AtomicBool) -> Vec<TcpStream> {
    let start = b"GET /api/v1/organizations HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    let mut sent = 0;
    while !stop.load(Ordering::SeqCst) {
        let byte = [start.get(sent).copied().unwrap_or(b'a')];
        for mut stream in &streams {
            // Fails once the server has closed the connection.
            let _ = stream.write_all(&byte);
        }
        sent += 1;
        std::thread::sleep(DRIP_EVERY);
    }
    streams
}

/// How many idle and slowloris connections this process may open for the attack, leaving
/// `FILES_FOR_THE_REST`: at most `IDLE_CONNECTIONS` and `SLOWLORIS_CONNECTIONS`, and at
/// least 100 idle ones.
fn attack_size() -> (usize, usize) {
    let limit = raise_file_limit();
    let room = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(FILES_FOR_THE_REST);
    let idle_count = IDLE_CONNECTIONS.min(room / 8 * 7);
    let slow_count = SLOWLORIS_CONNECTIONS.min(room / 8);
    assert!(
        idle_count >= 100,
        "this process may open only {limit} files"
    );
    (idle_count, slow_count)
}

/// The attack's connections, opened.
struct Attack {
    /// The idle connections; those from `fresh` on were opened last.
    idle: Vec<TcpStream>,
    fresh: usize,
    /// The slowloris connections, not yet dripping.
    slow: Vec<TcpStream>,
    /// When the last was opened.
    opened: Instant,
}

/// Opens `idle_count` idle connections from `IDLE_SOURCES` addresses and `slow_count`
/// slowloris ones from `SLOWLORIS_SOURCES` others, then ten more idle ones. Opening
/// thousands takes seconds on a loaded machine, longer than the timeout: the first are
/// closed before the last are open. The ten are the newest.
fn open_attack(to: SocketAddr, idle_count: usize, slow_count: usize) -> Attack {
    let mut idle: Vec<TcpStream> = (0..idle_count)
        .map(|index| connect_from(source(2, IDLE_SOURCES, index), to))
        .collect();
    let slow: Vec<TcpStream> = (0..slow_count)
        .map(|index| connect_from(source(2 + IDLE_SOURCES, SLOWLORIS_SOURCES, index), to))
        .collect();
    let fresh = idle.len();
    idle.extend((0..10).map(|index| connect_from(source(2, IDLE_SOURCES, index), to)));
    Attack {
        idle,
        fresh,
        slow,
        opened: Instant::now(),
    }
}

/// Five ordinary requests during the attack, a tenth of a second apart, each on a new
/// connection (it must be accepted, too): each is answered 200 within `PROMPT`. The
/// slowest's time.
fn ordinary_requests(server: &Server) -> Duration {
    let client = http_client_builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let response = client
            .get(server.url("/organizations"))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .expect("an answer during the attack");
        let took = started.elapsed();
        slowest = slowest.max(took);
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            took < PROMPT,
            "an ordinary request took {took:?} during the attack"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    slowest
}

/// One scenario: its thousands of connections are costly, and a second attack beside it
/// would share this process's files and the machine's loopback.
#[test]
fn thousands_of_idle_and_slowloris_connections_neither_hold_up_a_request_nor_stay_open() {
    let (idle_count, slow_count) = attack_size();
    let (_dir, server) = start(&[]);
    let Attack {
        idle,
        fresh,
        slow,
        opened,
    } = open_attack(address(&server), idle_count, slow_count);
    let stop = Arc::new(AtomicBool::new(false));
    let dripping = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || drip(slow, &stop))
    };

    // Not closed at once: the last ones opened are still open.
    std::thread::sleep(Duration::from_millis(200));
    for stream in &idle[fresh..] {
        assert!(
            !is_closed(stream),
            "an idle connection was closed after {:?}, before the header read timeout",
            opened.elapsed()
        );
    }

    let slowest = ordinary_requests(&server);

    std::thread::sleep(
        (opened + HEADER_READ_TIMEOUT + SLACK).saturating_duration_since(Instant::now()),
    );
    stop.store(true, Ordering::SeqCst);
    let slow = dripping.join().expect("the dripping thread");
    let idle_open = idle.iter().filter(|stream| !is_closed(stream)).count();
    eprintln!(
        "{} idle and {slow_count} slowloris connections: the slowest of 5 ordinary requests \
         took {slowest:?}; {idle_open} still open {:?} after the last was opened",
        idle.len(),
        opened.elapsed()
    );
    let slow_open = slow.iter().filter(|stream| !is_closed(stream)).count();
    assert_eq!(
        (idle_open, slow_open),
        (0, 0),
        "idle and slowloris connections still open {:?} after the last was opened \
         (of {idle_count} idle and {slow_count} slowloris)",
        opened.elapsed()
    );
    let (status, _) = server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn one_address_gets_at_most_its_cap_of_connections_while_others_are_served() {
    // Long timeouts: here only the cap closes connections.
    let (_dir, server) = start(&[
        ("WASMHOOK_MAX_CONNECTIONS_PER_PEER", "20"),
        ("WASMHOOK_HEADER_READ_TIMEOUT_MS", "30000"),
        ("WASMHOOK_IDLE_TIMEOUT_MS", "30000"),
    ]);
    let to = address(&server);
    let flooder = Ipv4Addr::new(127, 0, 0, 2);

    let held: Vec<TcpStream> = (0..20).map(|_| connect_from(flooder, to)).collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        held.iter().all(|stream| !is_closed(stream)),
        "a connection within the cap was closed"
    );
    let over: Vec<TcpStream> = (0..10).map(|_| connect_from(flooder, to)).collect();
    for stream in &over {
        assert!(
            closed_within(stream, Duration::from_secs(2)),
            "a connection over the cap was kept"
        );
    }
    assert!(
        held.iter().all(|stream| !is_closed(stream)),
        "a connection within the cap was closed"
    );

    // Other addresses are served as usual.
    assert_eq!(get_from(Ipv4Addr::new(127, 0, 0, 3), to), "HTTP/1.1 200 OK");
    let (status, _) = server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(status, StatusCode::OK);

    // A connection that ends gives its place back, once the server has seen it end.
    drop(held);
    let mut answer = String::new();
    let served = wait_until(Instant::now() + Duration::from_secs(10), || {
        answer = get_from(flooder, to);
        answer == "HTTP/1.1 200 OK"
    });
    assert!(served, "the address was not served again: {answer:?}");
}

/// The head of a request creating an organization, whose body of `length` bytes follows.
fn create_organization_head(length: usize) -> String {
    format!(
        "POST /api/v1/organizations HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {OPERATOR_TOKEN}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

#[test]
fn a_request_body_that_stops_coming_is_answered_408_after_the_body_read_timeout() {
    let (_dir, server) = start(&[]);
    let mut stream = TcpStream::connect(address(&server)).expect("connected");
    stream
        .set_read_timeout(Some(BODY_READ_TIMEOUT + SLACK))
        .expect("a read timeout");
    let started = Instant::now();
    write!(stream, "{}{{\"name\": ", create_organization_head(100)).expect("the request is sent");

    let mut answer = Vec::new();
    let ended = stream.read_to_end(&mut answer);
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        ended.is_ok(),
        "the connection is still open after {took:?}: {ended:?}"
    );
    assert!(
        took >= BODY_READ_TIMEOUT - EARLY && took < BODY_READ_TIMEOUT + SLACK,
        "answered after {took:?}"
    );
}

#[test]
fn a_request_body_dripped_in_time_byte_by_byte_is_still_stopped_after_the_body_read_timeout() {
    let (_dir, server) = start(&[]);
    let mut stream = TcpStream::connect(address(&server)).expect("connected");
    stream
        .set_read_timeout(Some(DRIP_EVERY))
        .expect("a read timeout");
    let started = Instant::now();
    stream
        .write_all(create_organization_head(10_000).as_bytes())
        .expect("the head is sent");

    // A byte every `DRIP_EVERY`, each well within the body read timeout of the last.
    let mut answer = Vec::new();
    let mut ended = false;
    while !ended && started.elapsed() < BODY_READ_TIMEOUT + SLACK {
        if answer.is_empty() {
            let _ = stream.write_all(b" ");
        }
        let mut buffer = [0; 1024];
        match stream.read(&mut buffer) {
            Ok(0) => ended = true,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            // Reset: the server closed the connection with dripped bytes unread.
            Err(_) => ended = true,
        }
    }
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        ended,
        "the connection is still open after {took:?}: {answer}"
    );
    // The 408 may be lost to the reset; if anything came, it is the 408.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(
        took >= BODY_READ_TIMEOUT - EARLY,
        "closed after {took:?}, before the body read timeout"
    );
}
