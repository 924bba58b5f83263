//! The smaller attacks of issue 13, each against the real `wasmhook serve`: ids and pages
//! beyond SQLite's integers, the operator logging itself out, password guessing,
//! usernames that differ only in case, duplicated multipart fields, uppercase signatures;
//! and those of later reviews: hook and queue quotas, bounded reference lists, a long
//! run_after chain, an event of more hooks than its organization's run slots, uploads at
//! once, and a run-log search that scans past its deadline.

use std::time::Duration;

use reqwest::blocking::multipart;
use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::HELLO;

use super::support::{field_error, field_message, sign, temp, Server, Tenant, OPERATOR_TOKEN};

/// 2^63: the first number beyond SQLite's (signed) integers.
const JUST_BEYOND: &str = "9223372036854775808";
/// 2^64 - 1: the largest u64.
const HUGE: &str = "18446744073709551615";

/// What every refused username is answered, under `username`.
const USERNAME_UNAVAILABLE: &str = "this username cannot be used; choose another";

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

/// One login: the status, the `Retry-After` header (seconds) and the body.
fn log_in(server: &Server, username: &str, password: &str) -> (StatusCode, Option<u64>, Value) {
    let response = server
        .client
        .post(server.url("/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .expect("the server answers");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    (status, retry_after, response.json().expect("a JSON answer"))
}

/// Fails logins as `username` until one is throttled (at most `tries`); its Retry-After.
fn fail_until_throttled(server: &Server, username: &str, tries: usize) -> Option<u64> {
    (0..tries).find_map(|_| {
        let (status, retry_after, body) = log_in(server, username, "wrong password");
        match status {
            StatusCode::BAD_REQUEST => None,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(
                    detail(&body).starts_with("Request was throttled."),
                    "{body}"
                );
                Some(retry_after.expect("a 429 says when to retry"))
            }
            other => panic!("{other}: {body}"),
        }
    })
}

#[test]
fn ids_beyond_sqlites_integers_are_not_found() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    for collection in ["users", "organizations", "queues", "modules", "hooks"] {
        for id in [JUST_BEYOND, HUGE] {
            let (status, body) = acme.get(&format!("/{collection}/{id}"));
            assert_eq!(status, StatusCode::NOT_FOUND, "{collection}/{id}: {body}");
            assert_eq!(body, json!({"detail": "Not found."}));
        }
    }
    assert_eq!(
        acme.delete(&format!("/hooks/{HUGE}")),
        StatusCode::NOT_FOUND
    );
    let (status, body) = acme.post(&format!("/hooks/{HUGE}/test"), json!({"payload": {}}));
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[test]
fn an_absurd_page_is_an_empty_page() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    for list in ["/users", "/queues", "/hooks"] {
        for page in ["9223372036854775807", JUST_BEYOND, HUGE] {
            let (status, body) = acme.get(&format!("{list}?page={page}"));
            assert_eq!(status, StatusCode::OK, "{list}?page={page}: {body}");
            assert_eq!(body["results"], json!([]), "{list}?page={page}");
            assert_eq!(body["pagination"]["next"], Value::Null, "{body}");
        }
    }
}

#[test]
fn an_id_beyond_sqlites_integers_in_a_reference_is_refused() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let (status, body) = acme.post(
        "/hooks",
        json!({
            "name": "a webhook",
            "type": "webhook",
            "events": ["invocation.manual"],
            "queues": [server.url(&format!("/queues/{HUGE}"))],
            "config": {"url": "https://example.com/hook"},
        }),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        field_message(&body, "queues").is_some_and(|m| m.ends_with("is not a URL of queues")),
        "{body}"
    );

    let (status, body) = acme.post("/queues", json!({"name": "q", "hooks": [u64::MAX]}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body,
        field_error("hooks", "`18446744073709551615` is not a hook URL")
    );

    let (status, body) = server.post(
        "/users",
        Some(OPERATOR_TOKEN),
        json!({"username": "mole", "password": "long enough", "organization": u64::MAX}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body,
        field_error("organization", "expected an organization URL or id")
    );
}

#[test]
fn an_id_beyond_sqlites_integers_in_a_filter_is_refused() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    for (path, token, parameter) in [
        (
            format!("/users?organization={HUGE}"),
            OPERATOR_TOKEN,
            "organization",
        ),
        (format!("/hooks/logs?hook={HUGE}"), &*acme.token, "hook"),
        (
            format!("/hooks/logs?annotation={JUST_BEYOND}"),
            &*acme.token,
            "annotation",
        ),
        (format!("/hooks?queue={HUGE}"), &*acme.token, "queue"),
    ] {
        let (status, body) = server.get(&path, token);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            field_message(&body, parameter).is_some_and(|m| m.ends_with("is not an id")),
            "{path}: {body}"
        );
    }
}

#[test]
fn a_payload_annotation_id_beyond_sqlites_integers_still_gets_its_run_log() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let hook = acme.hook(&hello, json!({}));
    let (status, body) = acme.test_call(
        &hook,
        json!({"event": "annotation_content", "action": "initialize",
               "annotation": {"id": u64::MAX, "content": []}}),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    let (status, logs) = acme.get(&format!("/hooks/logs?hook={}", hook["id"]));
    assert_eq!(status, StatusCode::OK, "{logs}");
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(1), "{logs}");
}

#[test]
fn the_operator_cannot_log_its_own_token_out() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (status, body) = server.post("/auth/logout", Some(OPERATOR_TOKEN), json!({}));
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(detail(&body).contains("WASMHOOK_OPERATOR_TOKEN"), "{body}");
    let (status, body) = server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(status, StatusCode::OK, "the operator is still in: {body}");
}

#[test]
fn repeated_wrong_passwords_lock_the_username_out_even_for_the_right_one() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    server.organization_with_admin("acme");
    for attempt in 1..=10 {
        let (status, _, body) = log_in(&server, "acme-admin", "wrong password");
        assert_eq!(status, StatusCode::BAD_REQUEST, "attempt {attempt}: {body}");
    }
    // Beyond ten, each failure locks the name out for twice as long (1 s, 2 s, 4 s...):
    // fail until a lockout of more than a second is running.
    let mut locked_for = 0;
    for _ in 0..20 {
        let retry_after =
            fail_until_throttled(&server, "acme-admin", 10).expect("throttled after ten failures");
        assert!(retry_after >= 1);
        if retry_after >= 2 {
            locked_for = retry_after;
            break;
        }
        std::thread::sleep(Duration::from_secs(retry_after));
    }
    assert!(locked_for >= 2, "no lockout grew beyond a second");
    // The throttle answers before the password is looked at.
    let (status, retry_after, body) = log_in(&server, "acme-admin", "long enough");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry_after.is_some(), "{body}");
}

#[test]
fn an_unknown_username_is_answered_and_throttled_like_a_wrong_password() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    server.organization_with_admin("acme");
    let (known_status, _, known) = log_in(&server, "acme-admin", "wrong password");
    let (unknown_status, _, unknown) = log_in(&server, "nobody-here", "wrong password");
    assert_eq!(
        (known_status, &known),
        (unknown_status, &unknown),
        "the answers tell the two apart"
    );
    assert!(
        fail_until_throttled(&server, "nobody-here", 20).is_some(),
        "an unknown username is never throttled"
    );
}

#[test]
fn one_address_guessing_many_usernames_is_throttled() {
    // Needs the server to give handlers the peer's address (`ConnectInfo`).
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    for index in 0..100 {
        let (status, _, body) = log_in(&server, &format!("guess-{index}"), "a password");
        assert_eq!(status, StatusCode::BAD_REQUEST, "attempt {index}: {body}");
    }
    let throttled = (100..120).find_map(|index| {
        let (status, retry_after, _) = log_in(&server, &format!("guess-{index}"), "a password");
        (status == StatusCode::TOO_MANY_REQUESTS).then_some(retry_after)
    });
    assert!(
        throttled.is_some_and(|retry_after| retry_after.is_some()),
        "an address was never throttled across usernames"
    );
}

#[test]
fn usernames_that_differ_only_in_case_are_one_username() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let (status, body) = acme.post(
        "/users",
        json!({"username": "ann", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for variant in ["ANN", "Ann", "aNn"] {
        let (status, body) = acme.post(
            "/users",
            json!({"username": variant, "password": "long enough"}),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{variant}: {body}");
        assert_eq!(
            body,
            field_error("username", USERNAME_UNAVAILABLE),
            "{variant}"
        );
    }
}

#[test]
fn a_login_ignores_the_case_of_the_username() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    server.organization_with_admin("acme");
    let token = server.login("ACME-Admin", "long enough");
    let (status, users) = server.get("/users", &token);
    assert_eq!(status, StatusCode::OK, "{users}");
    assert_eq!(users["results"][0]["username"], "acme-admin");
}

#[test]
fn a_username_of_another_organization_gets_the_same_answer_as_one_of_ones_own() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let globex = Tenant::new(&server, "globex");
    let body = json!({"username": "acme-admin", "password": "long enough"});
    let (own_status, own) = acme.post("/users", body.clone());
    let (other_status, other) = globex.post("/users", body);
    assert_eq!(other_status, StatusCode::BAD_REQUEST, "{other}");
    assert_eq!((own_status, &own), (other_status, &other));
    assert_eq!(other, field_error("username", USERNAME_UNAVAILABLE));
}

#[test]
fn a_duplicated_multipart_field_is_refused_naming_it() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let module = || {
        multipart::Part::bytes(std::fs::read(HELLO).expect("the guest was built"))
            .file_name("hello.wasm")
    };
    let forms = [
        (
            multipart::Form::new()
                .part("file", module())
                .part("file", module()),
            "file",
        ),
        (
            multipart::Form::new()
                .text("name", "first")
                .text("name", "second")
                .part("file", module()),
            "name",
        ),
    ];
    for (form, field) in forms {
        let response = server
            .client
            .post(server.url("/modules"))
            .bearer_auth(&acme.token)
            .multipart(form)
            .send()
            .expect("the server answers");
        let status = response.status();
        let body: Value = response.json().expect("a JSON answer");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field} {body}");
        assert!(
            field_message(&body, field).is_some_and(|m| m.starts_with("sent more than once")),
            "{body}"
        );
    }
    let (_, modules) = acme.get("/modules");
    assert_eq!(modules["pagination"]["total"], 0, "{modules}");
}

#[test]
fn a_signature_in_uppercase_hex_is_refused() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let hook = acme.hook(
        &hello,
        json!({"config": {"runtime": "wasm", "module": hello, "secret": "shared-secret"}}),
    );
    let body = br#"{"source": "outside"}"#.to_vec();
    let call = |hex: &str| {
        server
            .client
            .post(server.url(&format!("/hooks/{}/invoke", hook["id"])))
            .header("content-type", "application/json")
            .header("X-Rossum-Signature-SHA256", format!("sha256={hex}"))
            .body(body.clone())
            .send()
            .expect("the server answers")
            .status()
    };
    let signed = sign("shared-secret", &body);
    let lowercase = signed.strip_prefix("sha256=").expect("a sha256 signature");
    assert_eq!(call(lowercase), StatusCode::OK);
    assert_eq!(
        call(&lowercase.to_ascii_uppercase()),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn an_organization_holds_no_more_hooks_than_its_quota_and_another_is_not_counted() {
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_HOOKS_PER_ORGANIZATION", "2")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let module = acme.upload(HELLO);
    let first = acme.hook(&module, json!({}));
    acme.hook(&module, json!({}));
    let (status, refused) = acme.post(
        "/hooks",
        json!({"name": "third", "config": {"runtime": "wasm", "module": module}}),
    );
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(detail(&refused).contains("2 hooks, its limit"), "{refused}");
    let (status, refused) = acme.post(
        &format!("/hooks/{}/duplicate", first["id"]),
        json!({"name": "copy"}),
    );
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    // Refused whole: nothing was written.
    let (_, listed) = acme.get("/hooks");
    assert_eq!(listed["pagination"]["total"], 2, "{listed}");
    // An update is no new hook; a deletion makes room; another organization has its own.
    let (status, updated) = acme.patch(
        &format!("/hooks/{}", first["id"]),
        json!({"name": "renamed"}),
    );
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(acme.delete_hook(&first), StatusCode::NO_CONTENT);
    acme.hook(&module, json!({}));
    let rival = Tenant::new(&server, "rival");
    let theirs = rival.upload(HELLO);
    rival.hook(&theirs, json!({}));
    rival.hook(&theirs, json!({}));
}

#[test]
fn an_organization_holds_no_more_queues_than_its_quota() {
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_QUEUES_PER_ORGANIZATION", "2")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    for name in ["one", "two"] {
        let (status, queue) = acme.post("/queues", json!({"name": name}));
        assert_eq!(status, StatusCode::CREATED, "{queue}");
    }
    let (status, refused) = acme.post("/queues", json!({"name": "three"}));
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        detail(&refused).contains("2 queues, its limit"),
        "{refused}"
    );
    let (_, listed) = acme.get("/queues");
    assert_eq!(listed["pagination"]["total"], 2, "{listed}");
    let rival = Tenant::new(&server, "rival");
    let (status, queue) = rival.post("/queues", json!({"name": "one"}));
    assert_eq!(status, StatusCode::CREATED, "{queue}");
}

#[test]
fn a_list_of_references_is_bounded_and_its_repeats_count_once() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let module = acme.upload(HELLO);
    let (status, queue) = acme.post("/queues", json!({"name": "inbox"}));
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    let hook = acme.hook(&module, json!({}));

    // A thousand and one names of one queue: refused before any is looked up.
    let queues = vec![queue["url"].clone(); 1001];
    let (status, refused) = acme.post(
        "/hooks",
        json!({"name": "wide", "queues": queues, "config": {"runtime": "wasm", "module": module}}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        field_message(&refused, "queues"),
        Some("may name at most 1000 queues"),
        "{refused}"
    );
    let (status, refused) = acme.patch(
        &format!("/hooks/{}", hook["id"]),
        json!({"run_after": vec![json!("https://x.invalid/api/v1/hooks/1"); 1001]}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(field_message(&refused, "run_after").is_some(), "{refused}");
    let (status, refused) = acme.post(
        "/queues",
        json!({"name": "wide", "hooks": vec![hook["url"].clone(); 1001]}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        field_message(&refused, "hooks"),
        Some("may name at most 1000 hooks"),
        "{refused}"
    );
    // At the bound, repeats are one subscription.
    let queues = vec![queue["url"].clone(); 1000];
    let (status, saved) = acme.patch(&format!("/hooks/{}", hook["id"]), json!({"queues": queues}));
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["queues"], json!([queue["url"]]), "{saved}");
    let (status, saved) = acme.patch(
        &format!("/queues/{}", queue["id"]),
        json!({"hooks": vec![hook["url"].clone(); 1000]}),
    );
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["hooks"], json!([hook["url"]]), "{saved}");
}

#[test]
fn a_run_after_chain_as_long_as_the_quota_is_checked_for_cycles_without_harm() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let module = acme.upload(HELLO);
    // Each hook runs after the one before it.
    let first = acme.hook(&module, json!({}));
    let mut last = first.clone();
    for _ in 0..100 {
        last = acme.hook(&module, json!({"run_after": [last["url"]]}));
    }
    // Closing the chain is a cycle, named through its whole length.
    let (status, refused) = acme.patch(
        &format!("/hooks/{}", first["id"]),
        json!({"run_after": [last["url"]]}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(field_message(&refused, "run_after").is_some(), "{refused}");
    let (status, _) = acme.get("/hooks");
    assert_eq!(status, StatusCode::OK, "the server still answers");
}

#[test]
fn an_event_of_more_hooks_than_the_organizations_run_slots_runs_that_many_at_a_time() {
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_RUNS_PER_ORGANIZATION", "2")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let hostile = acme.upload(wasmhook_tests::guests::HOSTILE);
    for _ in 0..5 {
        acme.hook(
            &hostile,
            json!({"settings": {"behavior": "sleep", "ms": 500}}),
        );
    }
    let acme_id = acme.organization_id();
    // Interactive (every hook run while the caller waits) and not (recorded deliveries).
    for action in ["updated", "initialize"] {
        let done = std::sync::atomic::AtomicBool::new(false);
        let (status, answer, most) = std::thread::scope(|scope| {
            let watcher = scope.spawn(|| {
                let mut most: f64 = 0.0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    most = most.max(server.runs_in_flight(acme_id));
                    std::thread::sleep(Duration::from_millis(20));
                }
                most
            });
            let (status, answer) = acme.event(
                "annotation_content",
                action,
                None,
                json!({"annotation": {"id": 1, "content": []}}),
            );
            // Those beyond the permit's slots are the workers' (202), under permits of
            // their own: watched until every delivery is done.
            let answer = acme.settle(status, answer);
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            (status, answer, watcher.join().expect("no panic"))
        });
        let expected = match action {
            "updated" => StatusCode::OK,
            _ => StatusCode::ACCEPTED,
        };
        assert_eq!(status, expected, "{action}: {answer}");
        let results = answer["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(results.len(), 5, "{action}: {answer}");
        for result in &results {
            assert_eq!(result["status"], "completed", "{action}: {answer}");
        }
        assert!(
            (1.0..=2.0).contains(&most),
            "{action}: {most} runs at once, beyond the organization's 2"
        );
    }
}

/// Starts an upload of a large module whose body never comes: the connection, which holds
/// one of the organization's upload places until it is closed.
fn stalled_upload(server: &Server, token: &str) -> std::net::TcpStream {
    use std::io::Write;
    let address = server
        .root()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&address).expect("the server listens");
    write!(
        stream,
        "POST /api/v1/modules?name=slow HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/wasm\r\n\
         Content-Length: 10000000\r\n\r\n\0asm"
    )
    .expect("sent");
    stream.flush().expect("flushed");
    stream
}

/// Whether the server answered (or closed) a stalled upload's connection.
fn answered(stream: &std::net::TcpStream) -> bool {
    stream.set_nonblocking(true).expect("non-blocking");
    let mut byte = [0; 1];
    let answered = !matches!(
        stream.peek(&mut byte),
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
    );
    stream.set_nonblocking(false).expect("blocking");
    answered
}

#[test]
fn an_organization_has_a_few_uploads_under_way_and_its_bodies_wait_for_none_of_anothers() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let rival = Tenant::new(&server, "rival");
    let hello = std::fs::read(HELLO).expect("built");
    // Four uploads that hold acme's places once their handlers run: a fifth is refused
    // before its body is read. A stalled one that came while a probe held a place was
    // answered 429 itself, and is opened again.
    let mut stalled: Vec<std::net::TcpStream> = Vec::new();
    let refused =
        super::support::wait_until(std::time::Instant::now() + Duration::from_secs(60), || {
            stalled.retain(|stream| !answered(stream));
            while stalled.len() < 4 {
                stalled.push(stalled_upload(&server, &acme.token));
            }
            acme.upload_bytes(hello.clone(), "fifth.wasm").0 == StatusCode::TOO_MANY_REQUESTS
        });
    assert!(refused, "a fifth upload of acme was not refused");
    let (status, answer) = acme.upload_bytes(hello.clone(), "fifth.wasm");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert!(detail(&answer).contains("uploads under way"), "{answer}");
    // Another organization uploads meanwhile.
    let (status, answer) = rival.upload_bytes(hello.clone(), "theirs.wasm");
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    // Hung up, the stalled uploads give their places back.
    drop(stalled);
    let stored =
        super::support::wait_until(std::time::Instant::now() + Duration::from_secs(10), || {
            acme.upload_bytes(hello.clone(), "later.wasm").0 == StatusCode::CREATED
        });
    assert!(
        stored,
        "acme's places were not given back:\n{}",
        server.log()
    );
}

/// A run-log read that scans (a `search` no log matches, over 110 MB of payloads that
/// compress poorly and that the search tries to match every few bytes) past the
/// installation's `log_query_ms` (40 ms here) is stopped and answered 400, asking for a
/// narrower filter; a narrow one is answered, and calls go on.
#[test]
fn a_run_log_search_that_scans_past_its_deadline_is_stopped_and_answered_400() {
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_LOG_QUERY_MS", "40")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let hook = acme.hook(
        &hello,
        json!({"config": {"runtime": "wasm", "module": hello, "timeout_s": 5,
                          "payload_logging_enabled": true}}),
    );
    // 250 KB of hex digits from a xorshift: neither the database's compression nor any
    // shortcut of LIKE makes reading them cheap.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    // The whole scan took 113 ms for 300 of them here: 450 take four times the deadline.
    for index in 0..450 {
        let filler: String = (0..250_000 / 16)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("{state:016x}")
            })
            .collect();
        let (status, answer) = acme.invoke(&hook, json!({"index": index, "filler": filler}));
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // A word that begins as one byte in sixteen of the hex digits does, so that the scan
    // tries a match at each of those, and none succeeds.
    let (status, answer) = acme.get("/hooks/logs?search=0123zz");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let said = detail(&answer);
    assert!(
        said.contains("40 ms") && said.contains("narrow the filter"),
        "{answer}"
    );
    // A read by an index is answered, and the hook still runs.
    let (status, answer) = acme.get(&format!("/hooks/logs?hook={}&page_size=1", hook["id"]));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["results"].as_array().map(Vec::len), Some(1));
    let (status, answer) = acme.invoke(&hook, json!({"index": 450}));
    assert_eq!(status, StatusCode::OK, "{answer}");
}
