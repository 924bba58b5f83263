//! What an operator relies on: probes a load balancer can call without a token, a drain
//! before a stop, and an operator token that a failed start cannot lose and a lost one that
//! can be replaced.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::HOSTILE;

use super::support::{http_client, rss_kib_of, wait_until, Server, Tenant, OPERATOR_TOKEN};

fn get(url: &str) -> (StatusCode, Value) {
    let response = http_client().get(url).send().expect("the server answers");
    let status = response.status();
    (status, response.json().expect("a JSON answer"))
}

#[test]
fn the_health_and_readiness_probes_answer_without_a_token() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (status, alive) = get(&format!("{}/healthz", server.root()));
    assert_eq!(status, StatusCode::OK, "{alive}");
    let (status, ready) = get(&format!("{}/readyz", server.root()));
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "ready");
}

/// Without a token, too.
#[test]
fn the_version_names_the_crate_the_pinned_wasmtime_and_a_commit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (status, version) = get(&server.url("/version"));
    assert_eq!(status, StatusCode::OK, "{version}");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    // The wasmtime the lock file pins, and a commit.
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("the lock file");
    let wasmtime = version["wasmtime"].as_str().unwrap_or_default();
    assert!(wasmtime.starts_with("48."), "{version}");
    assert!(
        lock.contains(&format!("name = \"wasmtime\"\nversion = \"{wasmtime}\"")),
        "{version}"
    );
    assert!(!version["git_commit"]
        .as_str()
        .unwrap_or_default()
        .is_empty());
}

#[test]
fn a_stopping_server_is_not_ready_while_it_drains() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_DRAIN_DELAY_MS", "2000")],
        &[],
    );
    let readyz = format!("{}/readyz", server.root());
    assert_eq!(get(&readyz).0, StatusCode::OK);
    let stopping = Instant::now();
    server.terminate();
    // Not ready once the signal is handled (the drain lasts 2 s from then).
    let mut answer = Value::Null;
    let unready = wait_until(stopping + Duration::from_millis(2000), || {
        let (status, body) = get(&readyz);
        answer = body;
        status == StatusCode::SERVICE_UNAVAILABLE
    });
    assert!(unready, "still ready while stopping: {answer}");
    assert!(answer["detail"]
        .as_str()
        .is_some_and(|detail| detail.contains("shutting down")));
    // Still serving meanwhile: it answers after it said it was shutting down.
    let (status, _) = server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(status, StatusCode::OK);
    server.wait_for_exit();
    assert!(stopping.elapsed() >= Duration::from_millis(2000));
}

/// Runs `wasmhook ARGS` to its end; its exit status, stdout and stderr.
fn wasmhook(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("WASMHOOK_OPERATOR_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("wasmhook runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn shown_token(banner: &str) -> String {
    banner
        .lines()
        .find_map(|line| line.strip_prefix("operator token (shown once, keep it): "))
        .unwrap_or_else(|| panic!("no operator token in: {banner}"))
        .to_owned()
}

/// Runs `wasmhook serve` on `dir` with these environment variables to its end (it is to
/// fail); its exit status and stderr.
fn serve_failing(dir: &std::path::Path, env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("WASMHOOK_OPERATOR_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("wasmhook runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// After a failed start: the next start on `dir` shows the operator token, and it works.
fn assert_the_next_start_shows_a_working_token(dir: &std::path::Path) {
    let server = Server::start(dir, None);
    let token = shown_token(&server.banner);
    let (status, _) = server.post("/organizations", Some(&token), json!({"name": "acme"}));
    assert_eq!(status, StatusCode::CREATED);
}

#[test]
fn a_start_that_cannot_listen_shows_no_token_and_the_next_start_does() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("an address").to_string();
    let (ok, _, stderr) = wasmhook(&["serve", "--listen", &address], dir.path());
    assert!(!ok, "the start failed: {stderr}");
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(!stderr.contains("operator token"), "{stderr}");
    drop(taken);
    assert_the_next_start_shows_a_working_token(dir.path());
}

/// The start fails after the database exists.
#[test]
fn a_start_with_a_bad_secrets_key_shows_no_token_and_the_next_start_does() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (ok, stderr) = serve_failing(dir.path(), &[("WASMHOOK_SECRETS_KEY", "not-a-key")]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("secrets key"), "{stderr}");
    assert!(!stderr.contains("operator token"), "{stderr}");
    assert_the_next_start_shows_a_working_token(dir.path());
}

/// The metrics address is bound after the API's.
#[test]
fn a_start_whose_metrics_address_is_taken_shows_no_token_and_the_next_start_does() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("an address").to_string();
    let (ok, stderr) = serve_failing(dir.path(), &[("WASMHOOK_METRICS_LISTEN", address.as_str())]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("cannot listen for metrics"), "{stderr}");
    assert!(!stderr.contains("operator token"), "{stderr}");
    drop(taken);
    assert_the_next_start_shows_a_working_token(dir.path());
}

/// Starts a server on `dir` and hands back the token it shows; the server is stopped once
/// `while_running` has looked at the directory it holds.
fn with_a_server_holding(dir: &std::path::Path, while_running: impl FnOnce()) -> String {
    let server = Server::start(dir, None);
    while_running();
    shown_token(&server.banner)
}

#[test]
fn the_token_cannot_be_rotated_while_a_server_holds_the_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // It would go on trusting the old token.
    with_a_server_holding(dir.path(), || {
        let (ok, _, stderr) = wasmhook(&["operator", "rotate-token"], dir.path());
        assert!(!ok);
        assert!(stderr.contains("another wasmhook process"), "{stderr}");
    });
}

#[test]
fn a_second_server_cannot_start_on_a_held_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    with_a_server_holding(dir.path(), || {
        let (ok, _, stderr) = wasmhook(&["serve", "--listen", "127.0.0.1:0"], dir.path());
        assert!(!ok);
        assert!(stderr.contains("another wasmhook process"), "{stderr}");
    });
}

#[test]
fn a_lost_operator_token_is_replaced_by_rotating_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let lost = with_a_server_holding(dir.path(), || {});
    let (ok, stdout, stderr) = wasmhook(&["operator", "rotate-token"], dir.path());
    assert!(ok, "{stderr}");
    let token = stdout.trim().to_owned();
    assert_eq!(token.len(), 64, "{stdout}");
    let server = Server::start(dir.path(), None);
    assert!(
        !server.banner.contains("operator token"),
        "{}",
        server.banner
    );
    assert_eq!(
        server.get("/organizations", &lost).0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.get("/organizations", &token).0, StatusCode::OK);
}

#[test]
fn there_is_no_token_to_rotate_without_a_database() {
    let empty = tempfile::tempdir().expect("a temporary directory");
    let (ok, _, stderr) = wasmhook(&["operator", "rotate-token"], empty.path());
    assert!(!ok);
    assert!(stderr.contains("no database"), "{stderr}");
}

/// Waits until the server's log holds `text` (lines are read from its stderr by a thread);
/// the log.
fn wait_for_log(server: &Server, text: &str) -> String {
    wait_until(Instant::now() + Duration::from_secs(5), || {
        server.log().contains(text)
    });
    server.log()
}

/// A secret that no line of the server's log may hold.
const SECRET: &str = "sk-live-logged-nowhere-0123";
/// A mark in payloads, which no line of the server's log may hold.
const MARKER: &str = "payload-marker-never-logged";

/// An acme hook that prints its secret [`SECRET`] and carries its admin's token.
fn printing_hook(acme: &Tenant) -> Value {
    let (_, users) = acme.get("/users");
    let hostile = acme.upload(HOSTILE);
    acme.hook(
        &hostile,
        json!({"settings": {"behavior": "print_secret"}, "secrets": {"api_key": SECRET},
               "token_owner": users["results"][0]["url"]}),
    )
}

#[test]
fn a_clients_request_id_is_echoed_and_carried_into_the_lines_about_the_request() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hook = printing_hook(&acme);
    let response = server
        .client
        .post(server.url(&format!("/hooks/{}/invoke", hook["id"])))
        .bearer_auth(&acme.token)
        .header("X-Request-Id", "client-chosen-id-42")
        .json(&json!({"note": MARKER}))
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id-42");
    // The access line is written after the answer has gone out: wait for it.
    let log = wait_for_log(
        &server,
        &format!("POST /api/v1/hooks/{}/invoke 200", hook["id"]),
    );
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("client-chosen-id-42"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|line| line.contains(&format!("POST /api/v1/hooks/{}/invoke 200", hook["id"]))),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains(&format!("hook {} completed", hook["id"]))),
        "no run line about the request: {log}"
    );
}

#[test]
fn a_request_without_an_id_gets_one_made_by_the_server_in_its_access_line() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let response = server
        .client
        .get(server.url("/organizations"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .expect("answers");
    let made = response.headers()["x-request-id"]
        .to_str()
        .expect("text")
        .to_owned();
    assert_eq!(made.len(), 36, "a UUID: {made}");
    let log = wait_for_log(&server, &made);
    assert!(log.contains(&made), "{log}");
}

/// After an invocation, a test call, an event and a refused call.
#[test]
fn no_log_line_holds_a_secret_a_token_a_payload_or_a_colour_code() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hook = printing_hook(&acme);
    let (status, answer) = acme.invoke(&hook, json!({"note": MARKER}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    wait_for_log(
        &server,
        &format!("POST /api/v1/hooks/{}/invoke 200", hook["id"]),
    );
    let (status, tested) = acme.test_call(
        &hook,
        json!({"event": "annotation_content", "action": "initialize", "marker": MARKER}),
    );
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    let (status, answer) = acme.post(
        "/events",
        json!({"event": "invocation.manual", "payload": {"marker": MARKER}}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["results"][0]["status"], "completed", "{answer}");
    let (status, answer) = server.get("/organizations", "not-a-token");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["detail"], "Invalid token.");
    let log = wait_for_log(&server, "GET /api/v1/organizations 401");
    for never in [
        SECRET,
        MARKER,
        OPERATOR_TOKEN,
        acme.token.as_str(),
        "\u{1b}[",
    ] {
        assert!(
            !log.contains(never),
            "`{never}` is in the server's log:\n{log}"
        );
    }
}

/// A log collector that stops reading stderr stops no request: lines past the buffer's
/// bound are dropped and counted, and the server's memory does not grow with them. (With
/// `tracing_appender`, never lossy, the server stopped answering, health checks included,
/// once 128k lines waited.)
#[test]
fn a_log_reader_that_stops_reading_stops_no_request() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start_with_stderr_unread(dir.path(), Some(OPERATOR_TOKEN));
    let before = server.rss_kib();
    // The path is in the access line: lines of about 4 KiB, so the 4 MiB that may wait and
    // the pipe's 64 KiB are full after about a thousand requests; 16,000 are sent.
    let url = format!("{}/api/v1/{}", server.root(), "x".repeat(4000));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let client = http_client();
                for _ in 0..4000 {
                    let response = client
                        .get(&url)
                        .timeout(Duration::from_secs(10))
                        .send()
                        .expect("answered, although nobody reads the log");
                    assert!(response.status().is_client_error(), "{response:?}");
                }
            });
        }
    });
    let started = Instant::now();
    let (status, body) = server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let dropped = server.metrics()["wasmhook_log_lines_dropped_total"];
    assert!(dropped >= 12000.0, "{dropped} lines dropped");
    // What waits is bounded (the buffer, and the batch stuck in the write: 8 MiB at most),
    // though 64 MiB of lines went by. The bound leaves room for what the allocator keeps
    // of the requests' memory (27-32 MiB of growth in all were seen with 16 MiB of lines):
    // lines that piled up would pass it.
    let mut grown = 0;
    let settled = wait_until(Instant::now() + Duration::from_secs(10), || {
        grown = server.rss_kib().saturating_sub(before);
        grown < 48 * 1024
    });
    assert!(settled, "the server grew by {grown} KiB");
    eprintln!("{dropped} lines dropped; the server grew by {grown} KiB");
    // And it stops when told, though its last lines cannot be written.
    let pid = server.pid();
    server.terminate();
    assert!(
        wait_until(Instant::now() + Duration::from_secs(20), || {
            rss_kib_of(pid).is_none()
        }),
        "the server did not stop"
    );
}

#[test]
fn json_logs_are_one_object_a_line() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_LOG_FORMAT", "json")],
        &[],
    );
    server.get("/organizations", OPERATOR_TOKEN);
    let log = wait_for_log(&server, "/api/v1/organizations");
    let access: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "wasmhook::access")
        .collect();
    assert!(!access.is_empty(), "{log}");
    let line = &access[0];
    assert_eq!(line["fields"]["status"], 200, "{line}");
    assert_eq!(line["fields"]["method"], "GET", "{line}");
    assert!(line["fields"]["request_id"].is_string(), "{line}");
    assert!(line["fields"]["latency_ms"].is_number(), "{line}");
}
