//! Webhook hooks against a real receiver on loopback: the signed payload, the answer as the
//! response, run logs with status codes, retries of non-interactive calls (never of
//! interactive ones), the async protocol, private hooks, plain `http://` only where the
//! operator allows it; and retries of function hooks.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::HOSTILE;

use super::support::{
    message_at, sign, Reply, Server, Tenant, TlsUpstream, Upstream, OPERATOR_TOKEN,
};

/// Sends an event through `/events` and returns the answer once the event has finished
/// (a non-interactive event with retries or polling left is answered 202, and read again
/// at its URL).
fn event(tenant: &Tenant<'_>, event: &str, action: &str, payload: &Value) -> Value {
    let (status, answer) = tenant.post(
        "/events",
        json!({"event": event, "action": action, "payload": payload}),
    );
    assert!(
        status == StatusCode::OK || status == StatusCode::ACCEPTED,
        "{status}: {answer}"
    );
    tenant.settle(status, answer)
}

/// A hook's run logs, oldest first.
fn logs(tenant: &Tenant<'_>, hook: &Value) -> Vec<Value> {
    let mut logs = tenant.run_logs(hook);
    logs.reverse();
    logs
}

#[test]
fn a_webhook_gets_the_signed_payload_and_its_answer_is_the_response() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    let hook = acme.webhook(
        &format!("{}/hook", upstream.base),
        json!({"secret": "webhook-signing-secret"}),
    );
    assert!(hook["config"].get("secret").is_none(), "{hook}");
    assert_eq!(hook["type"], "webhook");
    let answer = json!({"messages": [{"content": "checked by the webhook", "type": "info"}], "operations": []});
    upstream.script("/hook", vec![Reply::Json(200, answer.clone())]);

    let (status, tested) = acme.test_call(
        &hook,
        json!({"event": "annotation_content", "action": "initialize", "annotation": {"id": 7, "content": []}}),
    );
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    assert_eq!(tested["message"], "checked by the webhook", "{tested}");
    assert_eq!(tested["response"], answer);

    let received = upstream.received("/hook");
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.headers["x-rossum-signature-sha256"],
        sign("webhook-signing-secret", &request.body),
        "the signature is HMAC-SHA256 of the raw body"
    );
    let payload: Value = serde_json::from_slice(&request.body).expect("a JSON payload");
    assert_eq!(payload["event"], "annotation_content");
    assert_eq!(payload["action"], "initialize");
    assert_eq!(payload["hook"], hook["url"]);
    assert_eq!(payload["settings"], json!({"region": "eu"}));
    assert_eq!(payload["annotation"]["id"], 7);

    let logs = logs(&acme, &hook);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["hook_type"], "webhook");
    assert_eq!(logs[0]["status"], "completed");
    assert_eq!(logs[0]["status_code"], 200);
    assert_eq!(logs[0]["message"], "checked by the webhook");
    assert!(logs[0].get("output").is_none(), "{}", logs[0]);
    assert!(!logs[0].to_string().contains("webhook-signing-secret"));

    // A private webhook hides its URL; the URL, the secret and `private` are then fixed.
    let path = format!("/hooks/{}", hook["id"]);
    let (status, private) = acme.patch(
        &path,
        json!({"config": {"url": format!("{}/hook", upstream.base), "private": true}}),
    );
    assert_eq!(status, StatusCode::OK, "{private}");
    assert!(private["config"].get("url").is_none(), "{private}");
    for (change, field) in [
        (json!({"config": {"private": false}}), "config.private"),
        (
            json!({"config": {"url": "http://elsewhere.example/"}}),
            "config.url",
        ),
        (json!({"config": {"secret": "new"}}), "config.secret"),
    ] {
        let (status, refused) = acme.patch(&path, change.clone());
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change}: {refused}");
        assert!(
            message_at(&refused, field).is_some_and(|m| m.contains("on a private hook")),
            "{refused}"
        );
    }
    // Writing it back as read keeps it calling the same URL with the same secret.
    let (status, written) = acme.put(&path, private);
    assert_eq!(status, StatusCode::OK, "{written}");
    let (status, invoked) = acme.invoke(&hook, json!({"note": "hi"}));
    assert_eq!(status, StatusCode::OK, "{invoked}");
    // The script is used up: the receiver answers `{}`, and that is the response.
    assert_eq!(invoked, json!({}));
    // Newest first: the invocation's run, after the test's.
    let runs = acme.run_logs(&hook);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["status"], "completed", "{}", runs[0]);
    assert_eq!(runs[0]["action"], "manual", "{}", runs[0]);
    let received = upstream.received("/hook");
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[1].headers["x-rossum-signature-sha256"],
        sign("webhook-signing-secret", &received[1].body)
    );
}

#[test]
fn bad_webhook_configs_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    for (config, field) in [
        (json!({}), "config.url"),
        (json!({"url": "not a url"}), "config.url"),
        (json!({"url": "ftp://files.example/"}), "config.url"),
        (
            json!({"url": "https://a.example", "timeout_s": 61}),
            "config.timeout_s",
        ),
        (
            json!({"url": "https://a.example", "retry_count": 5}),
            "config.retry_count",
        ),
        (
            json!({"url": "https://a.example", "max_polling_time_s": 0}),
            "config.max_polling_time_s",
        ),
        (
            json!({"url": "https://a.example", "insecure_ssl": "no"}),
            "config.insecure_ssl",
        ),
        (
            json!({"url": "https://a.example", "runtime": "wasm"}),
            "config.runtime",
        ),
        (
            json!({"url": "https://a.example", "schedule": {"cron": "*/5 * * * *"}}),
            "config.schedule.cron",
        ),
    ] {
        let (status, refused) = acme.post(
            "/hooks",
            json!({"name": "w", "type": "webhook", "events": ["invocation.manual"], "config": config}),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{config}: {refused}");
        assert!(message_at(&refused, field).is_some(), "{config}: {refused}");
    }
    let (_, hooks) = acme.get("/hooks");
    assert_eq!(hooks["pagination"]["total"], 0, "nothing was written");
}

#[test]
fn non_interactive_calls_are_retried_as_rossum_does_and_interactive_ones_never() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");

    // 503 and 500 are retried; the third attempt answers.
    let flaky = acme.webhook(&format!("{}/flaky", upstream.base), json!({}));
    upstream.script(
        "/flaky",
        vec![
            Reply::Json(503, json!({})),
            Reply::Json(500, json!({})),
            Reply::Json(200, json!({"messages": [], "operations": []})),
        ],
    );
    let answer = event(
        &acme,
        "annotation_content",
        "initialize",
        &json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(answer["results"][0]["status"], "completed", "{answer}");
    assert_eq!(upstream.received("/flaky").len(), 3);
    let attempts = logs(&acme, &flaky);
    let codes: Vec<&Value> = attempts.iter().map(|log| &log["status_code"]).collect();
    assert_eq!(codes, [&json!(503), &json!(500), &json!(200)]);
    let statuses: Vec<&Value> = attempts.iter().map(|log| &log["status"]).collect();
    assert_eq!(
        statuses,
        [&json!("failed"), &json!("failed"), &json!("completed")]
    );
    assert!(
        attempts
            .iter()
            .all(|log| log["request_id"] == attempts[0]["request_id"]),
        "every attempt has the call's request id"
    );
    assert_eq!(
        attempts
            .iter()
            .map(|log| log["uuid"].clone())
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3
    );
    assert_eq!(acme.delete_hook(&flaky), StatusCode::NO_CONTENT);

    // retry_count bounds the attempts; 404 is retried only with retry_on_any_non_2xx.
    for (config, status, attempts) in [
        (json!({"retry_count": 1}), 500, 2),
        (json!({}), 404, 1),
        (
            json!({"retry_count": 2, "retry_on_any_non_2xx": true}),
            404,
            3,
        ),
        (json!({"retry_count": 0}), 503, 1),
    ] {
        let path = format!("/status-{status}-{attempts}");
        let hook = acme.webhook(&format!("{}{path}", upstream.base), config.clone());
        upstream.script(&path, vec![Reply::Json(status, json!({})); 8]);
        let answer = event(
            &acme,
            "annotation_content",
            "initialize",
            &json!({"annotation": {"id": 1, "content": []}}),
        );
        assert_eq!(answer["results"][0]["status"], "failed", "{answer}");
        assert_eq!(
            upstream.received(&path).len(),
            attempts,
            "{config} on {status}"
        );
        assert_eq!(logs(&acme, &hook).len(), attempts);
        assert_eq!(acme.delete_hook(&hook), StatusCode::NO_CONTENT);
    }

    // An interactive event is never retried.
    let interactive = acme.webhook(&format!("{}/interactive", upstream.base), json!({}));
    upstream.script("/interactive", vec![Reply::Json(503, json!({})); 5]);
    let answer = event(
        &acme,
        "annotation_content",
        "updated",
        &json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(answer["results"][0]["status"], "failed", "{answer}");
    assert_eq!(upstream.received("/interactive").len(), 1);
    assert_eq!(logs(&acme, &interactive).len(), 1);
}

#[test]
fn webhooks_are_retried_on_408_429_502_and_504_and_not_on_other_errors() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    // (500 and 503 are retried in the test above, 404 is not.)
    for (status, attempts) in [
        (408, 2),
        (429, 2),
        (502, 2),
        (504, 2),
        (400, 1),
        (403, 1),
        (409, 1),
        (422, 1),
        (501, 1),
    ] {
        let path = format!("/answers-{status}");
        let hook = acme.webhook(
            &format!("{}{path}", upstream.base),
            json!({"retry_count": 1}),
        );
        upstream.script(&path, vec![Reply::Json(status, json!({})); 2]);
        let answer = event(
            &acme,
            "annotation_content",
            "initialize",
            &json!({"annotation": {"id": 1, "content": []}}),
        );
        let reason = format!(
            "the webhook answered {}",
            StatusCode::from_u16(status).expect("a status")
        );
        assert_eq!(answer["results"][0]["status"], "failed", "{answer}");
        assert_eq!(answer["results"][0]["message"], reason, "{answer}");
        assert_eq!(
            upstream.received(&path).len(),
            attempts,
            "{status}: attempts"
        );
        let logged = logs(&acme, &hook);
        assert_eq!(logged.len(), attempts, "{status}: {logged:?}");
        for log in &logged {
            assert_eq!(log["status"], "failed", "{status}: {log}");
            assert_eq!(log["status_code"], status, "{status}: {log}");
            assert_eq!(log["message"], reason, "{status}: {log}");
            assert_eq!(
                log["request_id"], logged[0]["request_id"],
                "{status}: {log}"
            );
        }
        assert_eq!(acme.delete_hook(&hook), StatusCode::NO_CONTENT);
    }
}

/// How late a retry may come after its scheduled wait, on a busy machine.
const RETRY_SLACK: Duration = Duration::from_secs(5);

#[test]
fn each_retry_waits_twice_as_long_as_the_one_before() {
    const FIRST_DELAY_MS: u64 = 300;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let first_delay = FIRST_DELAY_MS.to_string();
    let server = Server::for_webhooks_with(
        dir.path(),
        &[("WASMHOOK_RETRY_DELAY_MS", first_delay.as_str())],
    );
    let acme = Tenant::new(&server, "acme");
    let hook = acme.webhook(
        &format!("{}/backoff", upstream.base),
        json!({"retry_count": 4}),
    );
    // Four failures; the fifth attempt gets the receiver's default 200 `{}`.
    upstream.script("/backoff", vec![Reply::Json(503, json!({})); 4]);
    let answer = event(
        &acme,
        "annotation_content",
        "initialize",
        &json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(answer["results"][0]["status"], "completed", "{answer}");
    let received = upstream.received("/backoff");
    assert_eq!(received.len(), 5, "one call and four retries");

    // One run log per attempt, each with its own answer, all of the one call.
    let attempts = logs(&acme, &hook);
    let codes: Vec<&Value> = attempts.iter().map(|log| &log["status_code"]).collect();
    assert_eq!(
        codes,
        [
            &json!(503),
            &json!(503),
            &json!(503),
            &json!(503),
            &json!(200)
        ]
    );
    let statuses: Vec<&Value> = attempts.iter().map(|log| &log["status"]).collect();
    assert_eq!(
        statuses,
        [
            &json!("failed"),
            &json!("failed"),
            &json!("failed"),
            &json!("failed"),
            &json!("completed")
        ]
    );
    assert!(
        attempts
            .iter()
            .all(|log| log["request_id"] == attempts[0]["request_id"]),
        "{attempts:?}"
    );

    // The waits are 300, 600, 1200 and 2400 ms: a retry never comes before its wait is
    // over, nor long after.
    for (index, pair) in received.windows(2).enumerate() {
        let gap = pair[1].at.duration_since(pair[0].at);
        let scheduled = Duration::from_millis(FIRST_DELAY_MS << index);
        assert!(
            gap >= scheduled,
            "retry {}: {gap:?} after the attempt before, {scheduled:?} scheduled",
            index + 1
        );
        assert!(
            gap < scheduled + RETRY_SLACK,
            "retry {}: {gap:?} after the attempt before, {scheduled:?} scheduled",
            index + 1
        );
    }
}

#[test]
fn the_wait_before_a_retry_is_capped_at_30_seconds() {
    // The cap is a constant (DispatchSettings::retry_delay_cap), so this test waits it out.
    const CAP: Duration = Duration::from_secs(30);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    // Ten minutes asked before the first retry.
    let server = Server::for_webhooks_with(dir.path(), &[("WASMHOOK_RETRY_DELAY_MS", "600000")]);
    let acme = Tenant::new(&server, "acme");
    let hook = acme.webhook(
        &format!("{}/capped", upstream.base),
        json!({"retry_count": 1}),
    );
    upstream.script("/capped", vec![Reply::Json(503, json!({}))]);
    // The event is answered at once, 202: no request waits for a retry. Its delivery
    // completes at the retry, 30 s later.
    let asked = std::time::Instant::now();
    let (status, answer) = acme.post(
        "/events",
        json!({
            "event": "annotation_content",
            "action": "initialize",
            "payload": {"annotation": {"id": 1, "content": []}}
        }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert!(
        asked.elapsed() < CAP,
        "answered after {:?}",
        asked.elapsed()
    );
    assert_eq!(answer["results"][0]["state"], "retrying", "{answer}");
    assert_eq!(answer["results"][0]["status"], Value::Null, "{answer}");
    assert_eq!(answer["results"][0]["attempts"], 1, "{answer}");
    let answer = acme.settle(status, answer);
    assert_eq!(answer["results"][0]["status"], "completed", "{answer}");
    let received = upstream.received("/capped");
    assert_eq!(received.len(), 2, "one call and one retry");
    let gap = received[1].at.duration_since(received[0].at);
    assert!(gap >= CAP, "the retry came {gap:?} after the call");
    assert!(
        gap < CAP + RETRY_SLACK,
        "the retry came {gap:?} after the call, past the 30 s cap"
    );
    let codes: Vec<Value> = logs(&acme, &hook)
        .iter()
        .map(|log| log["status_code"].clone())
        .collect();
    assert_eq!(codes, [json!(503), json!(200)]);
}

#[test]
fn the_async_protocol_polls_the_location_until_201() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    let files = json!({"files": [{"id": 1, "values": []}]});

    let hook = acme.webhook(
        &format!("{}/async", upstream.base),
        json!({"retry_count": 0}),
    );
    upstream.script("/async", vec![Reply::Accepted("/async/result/1".into())]);
    upstream.script(
        "/async/result/1",
        vec![
            Reply::Json(202, json!({})),
            Reply::Json(503, json!({})),
            Reply::Json(201, files.clone()),
        ],
    );
    let answer = event(
        &acme,
        "upload",
        "created",
        &json!({"files": [], "documents": []}),
    );
    assert_eq!(answer["results"][0]["status"], "completed", "{answer}");
    assert_eq!(answer["results"][0]["response"], files, "{answer}");
    assert_eq!(upstream.received("/async/result/1").len(), 3);
    let logs_of = logs(&acme, &hook);
    assert_eq!(logs_of.len(), 1);
    assert_eq!(logs_of[0]["status_code"], 201);
    assert_eq!(acme.delete_hook(&hook), StatusCode::NO_CONTENT);

    // A poll that fails is a polling failure: the call is sent again (retry_count 1).
    let hook = acme.webhook(
        &format!("{}/async2", upstream.base),
        json!({"retry_count": 1}),
    );
    upstream.script(
        "/async2",
        vec![
            Reply::Accepted("/async2/result".into()),
            Reply::Accepted("/async2/result".into()),
        ],
    );
    upstream.script("/async2/result", vec![Reply::Json(404, json!({})); 2]);
    let answer = event(&acme, "upload", "created", &json!({"files": []}));
    assert_eq!(answer["results"][0]["status"], "failed", "{answer}");
    assert_eq!(upstream.received("/async2").len(), 2);
    let logs_of = logs(&acme, &hook);
    assert!(
        logs_of[0]["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("polling failed")),
        "{}",
        logs_of[0]
    );
    assert_eq!(acme.delete_hook(&hook), StatusCode::NO_CONTENT);

    // max_polling_time_s bounds the polling (the result answers 200, never 201).
    let hook = acme.webhook(
        &format!("{}/async3", upstream.base),
        json!({"retry_count": 0, "max_polling_time_s": 1}),
    );
    upstream.script("/async3", vec![Reply::Accepted("/async3/result".into())]);
    let answer = event(&acme, "upload", "created", &json!({"files": []}));
    assert_eq!(answer["results"][0]["status"], "failed", "{answer}");
    let polls = upstream.received("/async3/result").len();
    assert!((3..=25).contains(&polls), "{polls} polls in 1 s at 50 ms");
    let logs_of = logs(&acme, &hook);
    assert!(
        logs_of[0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("max_polling_time_s")),
        "{}",
        logs_of[0]
    );
}

#[test]
fn a_slow_or_unreachable_webhook_is_a_logged_timeout_or_failure() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    let slow = acme.webhook(
        &format!("{}/slow", upstream.base),
        json!({"timeout_s": 1, "retry_count": 0}),
    );
    upstream.script("/slow", vec![Reply::Slow(Duration::from_secs(3))]);
    let answer = event(
        &acme,
        "annotation_content",
        "initialize",
        &json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(answer["results"][0]["status"], "timeout", "{answer}");
    assert_eq!(
        answer["results"][0]["message"], "the webhook did not answer within 1 s",
        "{answer}"
    );
    let logged = logs(&acme, &slow);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["status"], "timeout", "{}", logged[0]);
    assert_eq!(acme.delete_hook(&slow), StatusCode::NO_CONTENT);

    // An answer over the cap is a failure naming the cap, and is not retried.
    let big = acme.webhook(&format!("{}/big", upstream.base), json!({"retry_count": 2}));
    upstream.script(
        "/big",
        vec![Reply::Json(200, json!({"filler": "x".repeat(100_000)})); 3],
    );
    let answer = event(
        &acme,
        "annotation_content",
        "initialize",
        &json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(answer["results"][0]["status"], "failed", "{answer}");
    assert!(
        answer["results"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("larger than 65536 bytes")),
        "{answer}"
    );
    assert_eq!(upstream.received("/big").len(), 1);
    assert_eq!(acme.delete_hook(&big), StatusCode::NO_CONTENT);

    // Nothing listens on port 9 of loopback.
    let gone = acme.webhook("http://127.0.0.1:9/hook", json!({"retry_count": 1}));
    let answer = event(
        &acme,
        "annotation_content",
        "initialize",
        &json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(answer["results"][0]["status"], "failed", "{answer}");
    assert!(
        answer["results"][0]["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("the webhook was not reached: ")),
        "{answer}"
    );
    let logs_of = logs(&acme, &gone);
    assert_eq!(logs_of.len(), 2, "a connection failure is retried");
    assert!(logs_of[0]["status_code"].is_null());
}

/// A webhook's answer is a hook's response, held to a module's 1 MiB even where a
/// module's own requests may fetch 8 MiB.
#[test]
fn a_webhooks_answer_is_held_to_a_modules_response_bytes() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server =
        Server::for_webhooks_with(dir.path(), &[("WASMHOOK_MAX_RESPONSE_BYTES", "8388608")]);
    let acme = Tenant::new(&server, "acme");
    acme.webhook(&format!("{}/big", upstream.base), json!({"retry_count": 0}));
    upstream.script(
        "/big",
        vec![Reply::Json(200, json!({"filler": "x".repeat(1_500_000)}))],
    );
    let answer = event(
        &acme,
        "annotation_content",
        "initialize",
        &json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(answer["results"][0]["status"], "failed", "{answer}");
    assert!(
        answer["results"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("larger than 1048576 bytes")),
        "{answer}"
    );
}

#[test]
fn webhooks_to_private_addresses_are_refused_unless_the_operator_allows_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    // Plain HTTP is allowed (the receiver speaks it), private addresses are not.
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_ALLOW_HTTP_WEBHOOKS", "true")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let hook = acme.webhook(&format!("{}/inside", upstream.base), json!({}));
    let (status, tested) =
        acme.test_call(&hook, json!({"event": "invocation", "action": "manual"}));
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "failed", "{tested}");
    assert!(
        tested["message"]
            .as_str()
            .is_some_and(|message| message.contains("non-public address")),
        "{tested}"
    );
    assert!(upstream.received("/inside").is_empty());
    let logs_of = logs(&acme, &hook);
    assert_eq!(logs_of[0]["status"], "failed");
    assert!(
        logs_of[0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("non-public address")),
        "{}",
        logs_of[0]
    );
}

/// A webhook's payload carries the hook's secrets and a minted token: by default it goes
/// over TLS only.
#[test]
fn plain_http_webhooks_are_refused_by_default_naming_config_url() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let create = |url: &str| {
        acme.post(
            "/hooks",
            json!({"name": "w", "type": "webhook", "events": ["invocation.manual"],
                   "config": {"url": url, "secret": "webhook-signing-secret"}}),
        )
    };
    let (status, refused) = create("http://hooks.example.com/rossum");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let message = message_at(&refused, "config.url").unwrap_or_default();
    assert!(message.contains("https://"), "{refused}");
    assert!(
        message.contains("WASMHOOK_ALLOW_HTTP_WEBHOOKS"),
        "{refused}"
    );
    let (_, hooks) = acme.get("/hooks");
    assert_eq!(hooks["pagination"]["total"], 0, "nothing was written");

    // https:// is accepted (saving a hook does not call it) ...
    let (status, created) = create("https://hooks.example.com/rossum");
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // ... and cannot be changed to plain http:// afterwards.
    let (status, refused) = acme.patch(
        &format!("/hooks/{}", created["id"]),
        json!({"config": {"url": "http://hooks.example.com/rossum"}}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(message_at(&refused, "config.url").is_some(), "{refused}");
}

#[test]
fn plain_http_webhooks_are_accepted_and_called_where_the_operator_allows_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_ALLOW_HTTP_WEBHOOKS", "true"),
            ("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
        ],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let hook = acme.webhook(&format!("{}/plain", upstream.base), json!({}));
    assert!(
        hook["config"]["url"]
            .as_str()
            .is_some_and(|url| url.starts_with("http://")),
        "{hook}"
    );
    upstream.script(
        "/plain",
        vec![Reply::Json(200, json!({"messages": [], "operations": []}))],
    );
    let (status, tested) =
        acme.test_call(&hook, json!({"event": "invocation", "action": "manual"}));
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    assert_eq!(upstream.received("/plain").len(), 1);
}

#[test]
fn failed_function_runs_of_non_interactive_events_are_retried() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    let hostile = acme.upload(HOSTILE);
    let hook = acme.hook(
        &hostile,
        json!({
            "config": {"runtime": "wasm", "module": hostile, "timeout_s": 5, "retry_count": 2},
            "settings": {"behavior": "guest_error"},
        }),
    );
    let answer = event(
        &acme,
        "annotation_content",
        "initialize",
        &json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(answer["results"][0]["status"], "failed", "{answer}");
    let logs_of = logs(&acme, &hook);
    assert_eq!(logs_of.len(), 3, "one run and two retries");
    assert!(logs_of
        .iter()
        .all(|log| log["request_id"] == logs_of[0]["request_id"]));
    assert!(logs_of.iter().all(|log| log["hook_type"] == "function"));

    // Interactive: one run.
    event(
        &acme,
        "annotation_content",
        "updated",
        &json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(logs(&acme, &hook).len(), 4);
    // A completed run is not repeated.
    let (status, _) = acme.patch(
        &format!("/hooks/{}", hook["id"]),
        json!({"settings": {"behavior": "echo"}}),
    );
    assert_eq!(status, StatusCode::OK);
    event(
        &acme,
        "annotation_content",
        "initialize",
        &json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(logs(&acme, &hook).len(), 5);
}

#[test]
fn a_private_function_hides_its_module_and_keeps_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    let hostile = acme.upload(HOSTILE);
    let other = acme.upload(wasmhook_tests::guests::HELLO);
    let hook = acme.hook(
        &hostile,
        json!({
            "config": {"runtime": "wasm", "module": hostile, "private": true},
            "settings": {"behavior": "echo"},
        }),
    );
    assert!(hook["config"].get("module").is_none(), "{hook}");
    let path = format!("/hooks/{}", hook["id"]);
    let (status, refused) = acme.patch(
        &path,
        json!({"config": {"runtime": "wasm", "module": other, "private": true}}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(message_at(&refused, "config.module").is_some(), "{refused}");
    // Written back as read, it still runs the hidden module.
    let (status, written) = acme.put(&path, hook);
    assert_eq!(status, StatusCode::OK, "{written}");
    let (status, tested) = acme.test_call(
        &written,
        json!({"event": "annotation_content", "action": "initialize", "annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
}

#[test]
fn a_deleted_hooks_id_is_never_given_again() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    let first = acme.webhook(&format!("{}/first", upstream.base), json!({}));
    let (status, invoked) = acme.invoke(&first, json!({}));
    assert_eq!(status, StatusCode::OK, "{invoked}");
    // The first hook has a run log, which the second must not get.
    let runs = logs(&acme, &first);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "completed", "{}", runs[0]);
    assert_eq!(acme.delete_hook(&first), StatusCode::NO_CONTENT);
    let second = acme.webhook(&format!("{}/second", upstream.base), json!({}));
    assert_ne!(first["id"], second["id"]);
    assert!(
        logs(&acme, &second).is_empty(),
        "the deleted hook's logs are not the new one's"
    );
}

#[test]
fn https_webhooks_check_the_certificate_unless_insecure_ssl() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = TlsUpstream::start();
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    let url = format!("{}/hook", upstream.base);
    let manual = json!({"event": "invocation", "action": "manual"});

    // A self-signed certificate is refused: the call fails before any request is sent.
    let checked = acme.webhook(&url, json!({}));
    let (status, tested) = acme.test_call(&checked, manual.clone());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "failed", "{tested}");
    assert!(
        tested["message"]
            .as_str()
            .is_some_and(|message| message.contains("certificate")),
        "{tested}"
    );
    assert_eq!(upstream.answered(), 0);

    // With insecure_ssl the same receiver is reached over TLS.
    let insecure = acme.webhook(&url, json!({"insecure_ssl": true}));
    let (status, tested) = acme.test_call(&insecure, manual);
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    assert_eq!(upstream.answered(), 1);
}
