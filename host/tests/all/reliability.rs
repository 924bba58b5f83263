//! The load-and-fault suite: the real server under concurrent load from several
//! organizations mixing good and hostile hooks, killed with SIGKILL in the middle of a load,
//! and fed bad input at volume. Nothing may be lost or duplicated: every request is answered,
//! every answered call has exactly one run log (counted by request_id), no good call fails.
//!
//! Each test prints its counts (run with `-- --nocapture`); RELIABILITY.md quotes them.
//! No timing is asserted here: latency under load is measured by the benchmarks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use reqwest::blocking::RequestBuilder;
use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::{HELLO, HOSTILE};

use super::support::{
    artifacts, detail_of, field_error, initialize, wait_until, Server, Tenant, OPERATOR_TOKEN,
};

/// The hooks one organization calls: one good, and one of each kind of hostile guest.
struct Hooks {
    good: Value,
    hostile: Vec<(&'static str, Value)>,
}

fn hooks_of(tenant: &Tenant) -> Hooks {
    let hello = tenant.upload(HELLO);
    let hostile = tenant.upload(HOSTILE);
    let good = tenant.hook(&hello, json!({"settings": {"greeting": "Ahoj"}}));
    let hostile = [
        ("loop", json!({"behavior": "loop"}), json!({"timeout_s": 1})),
        (
            "grow_memory",
            json!({"behavior": "grow_memory"}),
            json!({"memory_size_mb": 32}),
        ),
        ("panic", json!({"behavior": "panic"}), json!({})),
        // Its point is the cut output, not the time: 30 s, as the guest threads run below
        // the server's priority and a CI machine busy compiling other tests' guests can
        // starve them for seconds (5 s was passed there).
        (
            "flood_stdout",
            json!({"behavior": "flood_stdout", "mb": 4}),
            json!({"timeout_s": 30}),
        ),
        (
            "invalid_json",
            json!({"behavior": "invalid_json"}),
            json!({}),
        ),
    ]
    .into_iter()
    .map(|(name, settings, config)| {
        let mut full = json!({"runtime": "wasm", "module": hostile, "timeout_s": 5});
        if let (Some(full), Value::Object(extra)) = (full.as_object_mut(), config) {
            full.extend(extra);
        }
        let hook = tenant.hook(&hostile, json!({"settings": settings, "config": full}));
        (name, hook)
    })
    .collect();
    Hooks { good, hostile }
}

/// How each kind of call must end, as the test endpoint answers it: its run status, and a
/// check of its message and output that names what it wanted.
fn check_outcome(kind: &str, body: &Value) -> Result<(), String> {
    let status = body["status"].as_str().unwrap_or_default();
    let message = body["message"].as_str().unwrap_or_default();
    let log = body["log"].as_str().unwrap_or_default();
    let (expected_status, fits, wanted) = match kind {
        "good" => (
            "completed",
            message == "Ahoj, annotation_content.initialize!",
            "the greeting",
        ),
        "loop" => (
            "timeout",
            message == "the extension ran past its time limit of 1 s and was stopped",
            "the time limit of 1 s",
        ),
        "grow_memory" => (
            "failed",
            message.starts_with("the extension exceeded its memory limit of 32 MiB"),
            "the memory limit of 32 MiB",
        ),
        "panic" => (
            "failed",
            message.starts_with("the extension panicked: ")
                && message.contains("the hostile guest panics on purpose"),
            "the panic and its text",
        ),
        // 4 MiB written, 1 MiB kept.
        "flood_stdout" => (
            "completed",
            log.ends_with("[output truncated: 3145728 more bytes were dropped]"),
            "the output cut at 1 MiB, saying how much was dropped",
        ),
        "invalid_json" => (
            "failed",
            message.starts_with("the response is not valid JSON: "),
            "the invalid JSON",
        ),
        other => return Err(format!("no expected outcome for {other}")),
    };
    if status != expected_status {
        return Err(format!(
            "{kind}: expected {expected_status}, got {status}: {message}"
        ));
    }
    if !fits {
        return Err(format!(
            "{kind}: the answer does not name {wanted}: {message}"
        ));
    }
    Ok(())
}

/// How many run logs carry each request_id, read back through the API.
fn logs_per_request(tenant: &Tenant, request_ids: &[String]) -> HashMap<String, usize> {
    request_ids
        .iter()
        .map(|id| {
            let (status, logs) = tenant.get(&format!("/hooks/logs?request_id={id}"));
            assert_eq!(status, StatusCode::OK, "{logs}");
            let count = logs["results"].as_array().map_or(0, Vec::len);
            (id.clone(), count)
        })
        .collect()
}

/// The mixed load: workers for each organization, calls each worker makes.
const WORKERS_PER_ORGANIZATION: usize = 4;
const CALLS_PER_WORKER: usize = 30;

/// An answered call of the mixed load: the organization's index, the hook's kind, the
/// status and the answer.
type Answered = (usize, &'static str, StatusCode, Value);

/// The mixed load: `WORKERS_PER_ORGANIZATION` workers for each organization call its hooks
/// through `/test` `CALLS_PER_WORKER` times each, all at once, every third call hostile (of
/// a kind chosen in turn). Every call must be answered; the answers.
fn mixed_load(tenants: &[Tenant], hooks: &[Hooks]) -> Vec<Answered> {
    let answered: Mutex<Vec<Answered>> = Mutex::new(Vec::new());
    let unanswered: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for (index, (tenant, hooks)) in tenants.iter().zip(hooks).enumerate() {
            for worker in 0..WORKERS_PER_ORGANIZATION {
                let (answered, unanswered) = (&answered, &unanswered);
                scope.spawn(move || {
                    for call in 0..CALLS_PER_WORKER {
                        // Every third call is hostile, of a kind chosen in turn.
                        let (kind, hook) = if call % 3 == 2 {
                            let (kind, hook) =
                                &hooks.hostile[(worker + call) % hooks.hostile.len()];
                            (*kind, hook)
                        } else {
                            ("good", &hooks.good)
                        };
                        let url = tenant.server.url(&format!("/hooks/{}/test", hook["id"]));
                        let sent = tenant
                            .server
                            .client
                            .post(url)
                            .bearer_auth(&tenant.token)
                            .json(&json!({"payload": initialize()}))
                            .send();
                        match sent.and_then(|response| {
                            let status = response.status();
                            response.json::<Value>().map(|body| (status, body))
                        }) {
                            Ok((status, body)) => answered
                                .lock()
                                .expect("not poisoned")
                                .push((index, kind, status, body)),
                            Err(error) => unanswered
                                .lock()
                                .expect("not poisoned")
                                .push(error.to_string()),
                        }
                    }
                });
            }
        }
    });
    let answered = answered.into_inner().expect("not poisoned");
    let unanswered = unanswered.into_inner().expect("not poisoned");
    assert!(unanswered.is_empty(), "unanswered: {unanswered:?}");
    assert_eq!(
        answered.len(),
        tenants.len() * WORKERS_PER_ORGANIZATION * CALLS_PER_WORKER
    );
    answered
}

/// Checks the answers of the mixed load: each a 200, no good call failed, and every kind
/// ended as it must, with its reason. The request ids of each organization's calls.
fn check_answers(answered: &[Answered], organizations: usize) -> Vec<Vec<String>> {
    let mut good_failed = Vec::new();
    let mut hostile_completed = Vec::new();
    let mut wrong_outcomes = Vec::new();
    let mut by_organization: Vec<Vec<String>> = vec![Vec::new(); organizations];
    for (index, kind, status, body) in answered {
        assert_eq!(*status, StatusCode::OK, "{kind}: {body}");
        match (*kind, body["status"].as_str()) {
            ("good", Some("completed")) => {}
            ("good", _) => good_failed.push(body.to_string()),
            (_, Some("completed")) => hostile_completed.push(format!("{kind}: {body}")),
            _ => {}
        }
        if let Err(wrong) = check_outcome(kind, body) {
            wrong_outcomes.push(wrong);
        }
        let request_id = body["request_id"].as_str().expect("a request_id");
        by_organization[*index].push(request_id.to_owned());
    }
    assert!(good_failed.is_empty(), "good calls failed: {good_failed:?}");
    // flood_stdout completes (its output is truncated); every other hostile kind must not.
    assert!(
        hostile_completed
            .iter()
            .all(|line| line.starts_with("flood_stdout")),
        "hostile calls completed: {hostile_completed:?}"
    );
    // Each kind ends as it must, with its reason.
    assert!(
        wrong_outcomes.is_empty(),
        "{} calls ended otherwise than their kind must: {wrong_outcomes:?}",
        wrong_outcomes.len()
    );
    by_organization
}

/// The run logs of each organization's calls, by request id: how many in all, and the
/// request ids with none and with several.
fn count_logs(
    tenants: &[Tenant],
    by_organization: &[Vec<String>],
) -> (usize, Vec<String>, Vec<String>) {
    let mut logs = 0;
    let mut missing = Vec::new();
    let mut duplicated = Vec::new();
    for (tenant, request_ids) in tenants.iter().zip(by_organization) {
        for (id, count) in logs_per_request(tenant, request_ids) {
            logs += count;
            match count {
                1 => {}
                0 => missing.push(id),
                _ => duplicated.push(id),
            }
        }
    }
    (logs, missing, duplicated)
}

#[test]
fn three_organizations_mixing_good_and_hostile_hooks_lose_nothing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let tenants: Vec<Tenant> = ["acme", "globex", "initech"]
        .iter()
        .map(|name| Tenant::new(&server, name))
        .collect();
    let hooks: Vec<Hooks> = tenants.iter().map(hooks_of).collect();
    let answered = mixed_load(&tenants, &hooks);
    let by_organization = check_answers(&answered, tenants.len());
    let (logs, missing, duplicated) = count_logs(&tenants, &by_organization);
    eprintln!(
        "mixed load: {} requests from 3 organizations ({} hostile), {} answered, {logs} run \
         logs, {} missing, {} duplicated, no good call failed",
        tenants.len() * WORKERS_PER_ORGANIZATION * CALLS_PER_WORKER,
        answered
            .iter()
            .filter(|(_, kind, _, _)| *kind != "good")
            .count(),
        answered.len(),
        missing.len(),
        duplicated.len(),
    );
    assert!(missing.is_empty(), "calls without a run log: {missing:?}");
    assert!(duplicated.is_empty(), "calls with several: {duplicated:?}");
}

/// What a load ended by a kill left: the answers given before it, how many calls were
/// refused after it, the hook called, and the compiled artifacts from before it.
struct Killed {
    answered: Vec<Value>,
    refused: usize,
    hook: Value,
    artifacts_before: Vec<(String, SystemTime)>,
}

/// A server on `dir` with acme's hello hook; eight workers call it through `/test` until
/// the server is killed with SIGKILL, once the load is under way (16 calls answered).
fn load_until_killed(dir: &Path) -> Killed {
    let answered = Mutex::new(Vec::new());
    let refused = Mutex::new(0usize);
    let killed = AtomicBool::new(false);
    let mut server = Server::start(dir, Some(OPERATOR_TOKEN));
    let tenant = Tenant::new(&server, "acme");
    let hello = tenant.upload(HELLO);
    let hook = tenant.hook(&hello, json!({}));
    let artifacts_before = artifacts(dir);
    // Compiled at upload: the comparison after the restart compares something.
    assert!(!artifacts_before.is_empty(), "no compiled artifact");
    let url = server.url(&format!("/hooks/{}/test", hook["id"]));
    let token = tenant.token;
    let client = super::support::http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (answered, refused, killed, url, token, client) =
                (&answered, &refused, &killed, &url, &token, &client);
            scope.spawn(move || {
                // Until the kill (and a bound, should the test fail before it).
                let deadline = Instant::now() + Duration::from_secs(120);
                while !killed.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let sent = client
                        .post(url)
                        .bearer_auth(token)
                        .json(&json!({"payload": initialize()}))
                        .send()
                        .and_then(|response| response.json::<Value>());
                    match sent {
                        Ok(body) => answered.lock().expect("not poisoned").push(body),
                        // Once the server is gone every call fails: that is expected.
                        Err(_) => {
                            *refused.lock().expect("not poisoned") += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            });
        }
        // Killed in the middle of the load: once calls are being answered.
        let under_way = wait_until(Instant::now() + Duration::from_secs(60), || {
            answered.lock().expect("not poisoned").len() >= 16
        });
        server.kill();
        killed.store(true, Ordering::SeqCst);
        assert!(under_way, "the load never got going");
    });
    Killed {
        answered: answered.into_inner().expect("not poisoned"),
        refused: refused.into_inner().expect("not poisoned"),
        hook,
        artifacts_before,
    }
}

/// The database in `dir` opens, and SQLite finds it intact.
fn assert_database_intact(dir: &Path) {
    let database = rusqlite::Connection::open(dir.join("wasmhook.db")).expect("opens");
    let integrity: String = database
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("checks");
    assert_eq!(integrity, "ok");
}

#[test]
fn a_kill_in_the_middle_of_a_load_loses_no_answered_call() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let Killed {
        answered,
        refused,
        hook,
        artifacts_before,
    } = load_until_killed(dir.path());
    assert!(!answered.is_empty(), "no call was answered before the kill");
    assert_database_intact(dir.path());

    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let token = server.login("acme-admin", "long enough");
    let tenant = Tenant {
        server: &server,
        token,
    };
    let request_ids: Vec<String> = answered
        .iter()
        .map(|body| {
            assert_eq!(body["status"], "completed", "{body}");
            body["request_id"]
                .as_str()
                .expect("a request_id")
                .to_owned()
        })
        .collect();
    let counts = logs_per_request(&tenant, &request_ids);
    let missing = counts.values().filter(|count| **count == 0).count();
    let duplicated = counts.values().filter(|count| **count > 1).count();
    // Calls in flight at the kill were never answered; their logs may or may not exist.
    let (_, all) = tenant.get(&format!("/hooks/logs?hook={}&page_size=100", hook["id"]));
    eprintln!(
        "kill -9 under load: {} answered before the kill, {refused} refused after it, \
         {missing} answered without a run log, {duplicated} duplicated; integrity_check ok",
        answered.len()
    );
    assert_eq!(missing, 0, "answered calls lost their run log");
    assert_eq!(duplicated, 0);
    assert!(all["results"]
        .as_array()
        .is_some_and(|logs| !logs.is_empty()));

    // Modules still load without recompiling, and calls work again.
    let (status, answer) = tenant.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "completed");
    assert_eq!(artifacts(dir.path()), artifacts_before);
}

/// Rounds of bad input, each sending every kind once.
const ROUNDS: usize = 250;

/// Sends bad requests with a tenant's token, checks each answer, and counts the statuses.
struct BadInput<'a> {
    server: &'a Server,
    token: &'a str,
    /// For the requests over the body limit: the server closes a connection whose body it
    /// refused to read.
    oversized_client: reqwest::blocking::Client,
    statuses: HashMap<u16, usize>,
}

impl BadInput<'_> {
    /// Sends `request`: its answer must have the status and the reason its kind of bad input
    /// must get.
    fn send(&mut self, request: RequestBuilder, expected: StatusCode, reason: Says) {
        let response = request.bearer_auth(self.token).send().expect("answered");
        let status = response.status();
        *self.statuses.entry(status.as_u16()).or_default() += 1;
        let body: Value = response.json().expect("a JSON answer");
        assert_eq!(status, expected, "{body}");
        assert!(reason.fits(&body), "expected {reason:?}, got {body}");
    }

    /// A POST of `body` to `path`, said to be JSON.
    fn json(&self, path: &str, body: &str) -> RequestBuilder {
        self.server
            .client
            .post(self.server.url(path))
            .header("Content-Type", "application/json")
            .body(body.to_owned())
    }

    /// Round `round` of bad input: every kind once, near `hook`; `random` stands for a
    /// module that is not WebAssembly, `oversized_json` for a body just over the limit.
    fn round(&mut self, round: usize, hook: &Value, random: &[u8], oversized_json: &[u8]) {
        // A copy of the reference, so that the requests built here leave `self` free.
        let server = self.server;
        let url = |path: &str| server.url(path);
        let requests = [
            (
                self.json("/hooks", "{\"name\": "),
                StatusCode::BAD_REQUEST,
                Says::StartsWith("JSON parse error - "),
            ),
            (
                self.json("/hooks", r#"{"name": 5, "events": "x", "config": []}"#),
                StatusCode::BAD_REQUEST,
                Says::Field("name", "must be a string"),
            ),
            (
                self.json("/queues", "[]"),
                StatusCode::BAD_REQUEST,
                Says::Field(
                    "non_field_errors",
                    "Invalid data. Expected a dictionary, but got list.",
                ),
            ),
            (
                self.json(
                    &format!("/hooks/{}/test", hook["id"]),
                    r#"{"payload": [1, 2]}"#,
                ),
                StatusCode::BAD_REQUEST,
                Says::Field("payload", "must be a map, not a list"),
            ),
            (
                self.json("/events", r#"{"event": 1}"#),
                StatusCode::BAD_REQUEST,
                Says::Field("event", "must be a string, not a number"),
            ),
        ];
        for (request, expected, reason) in requests {
            self.send(request, expected, reason);
        }
        // Not WebAssembly: refused, until the organization's refusals reach their bound;
        // then every upload is answered 429 before it is looked at.
        let (expected, reason) = if round < REFUSED_UPLOADS {
            (
                StatusCode::BAD_REQUEST,
                Says::Field(
                    "file",
                    "not a WebAssembly module: the file does not start with the `\\0asm` header",
                ),
            )
        } else {
            (
                StatusCode::TOO_MANY_REQUESTS,
                Says::StartsWith(
                    "50 uploads of this organization were refused in the last 600 s; retry in ",
                ),
            )
        };
        let upload = server
            .client
            .post(url("/modules?name=random"))
            .header("Content-Type", "application/wasm")
            .body(random.to_vec());
        self.send(upload, expected, reason);
        let unknown = server
            .client
            .get(url(&format!("/hooks/{}", 1_000_000 + round)));
        self.send(unknown, StatusCode::NOT_FOUND, Says::Exactly("Not found."));
        let not_a_number = server.client.get(url("/hooks/not-a-number"));
        self.send(
            not_a_number,
            StatusCode::NOT_FOUND,
            Says::Exactly("Not found."),
        );
        // Over the body limit: answered 413, through the client of its own.
        let oversized_path = if round.is_multiple_of(2) {
            "/hooks".to_owned()
        } else {
            format!("/hooks/{}/invoke", hook["id"])
        };
        let oversized = self
            .oversized_client
            .post(url(&oversized_path))
            .header("Content-Type", "application/json")
            .body(oversized_json.to_vec());
        self.send(
            oversized,
            StatusCode::PAYLOAD_TOO_LARGE,
            Says::Exactly("the request body is larger than 2097152 bytes"),
        );
    }
}

/// A module declared over the bound is refused from its headers: the answer comes before a
/// byte of the body is sent.
fn refuse_a_module_declared_too_large(server: &Server, token: &str) {
    let (status, body) = declare_only(
        server,
        "/modules?name=huge",
        token,
        "application/wasm",
        65 << 20,
    );
    assert_eq!(status, 413, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    assert_eq!(
        body["detail"], "the request body is larger than 67108864 bytes",
        "{body}"
    );
}

#[test]
fn bad_input_at_volume_gets_4xx_every_time_and_memory_stays_flat() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let tenant = Tenant::new(&server, "acme");
    let hello = tenant.upload(HELLO);
    let hook = tenant.hook(&hello, json!({}));
    let counts = |tenant: &Tenant| {
        ["/hooks", "/modules", "/queues", "/users"]
            .iter()
            .map(|path| tenant.get(path).1["pagination"]["total"].clone())
            .collect::<Vec<_>>()
    };
    let before = counts(&tenant);
    let random: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // Just over the 2 MiB body limit.
    let oversized_json = format!("{{\"note\": \"{}\"}}", "x".repeat(2 << 20)).into_bytes();
    let mut bad = BadInput {
        server: &server,
        token: &tenant.token,
        oversized_client: super::support::http_client(),
        statuses: HashMap::new(),
    };
    let mut rss = Vec::new();
    let mut refused_from_headers = 0;
    for round in 0..ROUNDS {
        bad.round(round, &hook, &random, &oversized_json);
        if round % 50 == 0 {
            refuse_a_module_declared_too_large(&server, &tenant.token);
            refused_from_headers += 1;
        }
        if round == 10 || round == ROUNDS - 1 {
            rss.push(server.rss_kib());
        }
    }
    let mut statuses = bad.statuses;
    *statuses.entry(413).or_default() += refused_from_headers;
    let after = counts(&tenant);
    eprintln!(
        "bad input: {} requests, statuses {statuses:?}, RSS {} KiB at round 10 and {} KiB at \
         the end",
        statuses.values().sum::<usize>(),
        rss[0],
        rss[1]
    );
    assert!(
        statuses.keys().all(|status| (400..500).contains(status)),
        "{statuses:?}"
    );
    let expected: HashMap<u16, usize> = [
        (400, 5 * ROUNDS + REFUSED_UPLOADS),
        (404, 2 * ROUNDS),
        (413, ROUNDS + refused_from_headers),
        (429, ROUNDS - REFUSED_UPLOADS),
    ]
    .into_iter()
    .collect();
    assert_eq!(statuses, expected);
    assert_eq!(before, after, "bad input changed something");
    // Flat: growth after warm-up bounded well below what leaking the bodies would cost
    // (2,000 refused requests of up to 64 KiB).
    assert!(
        rss[1] < rss[0] + 16 * 1024,
        "RSS grew from {} to {} KiB",
        rss[0],
        rss[1]
    );
}

/// Uploads of one organization refused before its further uploads get 429 (the default of
/// `refused_uploads_per_organization`, per 10 minutes).
const REFUSED_UPLOADS: usize = 50;

/// What a refusal must say, in DRF's shape: a detail, all of it or how it starts where the
/// rest is a parser's words or a number of seconds; or one field's error, all of it.
#[derive(Debug, Clone, Copy)]
enum Says {
    Exactly(&'static str),
    StartsWith(&'static str),
    Field(&'static str, &'static str),
}

impl Says {
    fn fits(self, body: &Value) -> bool {
        match self {
            Says::Exactly(text) => detail_of(body) == Some(text),
            Says::StartsWith(start) => detail_of(body).is_some_and(|d| d.starts_with(start)),
            Says::Field(field, message) => *body == field_error(field, message),
        }
    }
}

/// Sends only the head of a POST declaring `length` bytes of body, and reads the answer the
/// server gives without waiting for the body.
fn declare_only(
    server: &Server,
    path: &str,
    token: &str,
    content_type: &str,
    length: u64,
) -> (u16, Value) {
    use std::io::{Read, Write};
    let authority = server
        .base
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .expect("an http base URL");
    let mut stream = std::net::TcpStream::connect(authority).expect("the server accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    write!(
        stream,
        "POST /api/v1{path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .expect("the head is sent");
    // The client gives up on the body; the server has answered from the head alone and closes
    // the connection once it sees the body will not come.
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("the write half closes");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer, got {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or_else(|| panic!("a JSON body, got {text:?}"));
    (status, body)
}
