//! A non-interactive event's deliveries outlive the request and the process: `POST /events`
//! answers 202 with the event's URL while retries, polling or later hooks are left, the
//! worker finishes them, `GET /events/{id}` shows each hook's state to its organization
//! only, and a delivery pending when the server is killed completes after a restart with
//! each attempt logged once. An event's answers, non-interactive or interactive, hold its
//! responses within a budget, and its later hooks' payloads take their ancestors' within
//! one. (Run on both backends: `tests/postgres` includes this file.)

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::support::{
    api_path, execute_in_database, temp, wait_until, Reply, Server, Tenant, Upstream,
};

/// An event every webhook of these tests subscribes to, and which is not interactive.
const EVENT: (&str, &str) = ("annotation_content", "initialize");

fn post_event(tenant: &Tenant<'_>) -> (StatusCode, Value) {
    tenant.event(
        EVENT.0,
        EVENT.1,
        None,
        json!({"annotation": {"id": 7, "content": []}}),
    )
}

/// The event's path under the API, from its URL.
fn path_of(answer: &Value) -> String {
    api_path(answer["url"].as_str().expect("an event URL"))
}

/// Two webhooks of `tenant` on `upstream`: `/first` with `retry_count`, and `/after`, which
/// runs after it.
fn chained(tenant: &Tenant<'_>, upstream: &Upstream, retry_count: u64) -> (Value, Value) {
    let first = tenant.webhook(
        &format!("{}/first", upstream.base),
        json!({"retry_count": retry_count}),
    );
    let after = tenant.webhook(&format!("{}/after", upstream.base), json!({}));
    let (status, patched) = tenant.patch(
        &format!("/hooks/{}", after["id"]),
        json!({"run_after": [first["url"]]}),
    );
    assert_eq!(status, StatusCode::OK, "{patched}");
    (first, after)
}

#[test]
fn a_hook_after_a_retrying_one_waits_for_it_and_one_after_a_failed_one_is_cancelled() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = Server::for_webhooks_with(dir.path(), &[("WASMHOOK_RETRY_DELAY_MS", "400")]);
    let acme = Tenant::new(&server, "acme");
    let (first, after) = chained(&acme, &upstream, 2);
    upstream.script("/first", vec![Reply::Json(503, json!({}))]);
    upstream.script(
        "/after",
        vec![Reply::Json(
            200,
            json!({"messages": [{"type": "info", "content": "after"}]}),
        )],
    );

    let (status, answer) = post_event(&acme);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["state"], "running", "{answer}");
    assert_eq!(answer["results"][0]["state"], "retrying", "{answer}");
    assert_eq!(answer["results"][0]["attempts"], 1, "{answer}");
    assert_eq!(answer["results"][0]["max_attempts"], 3, "{answer}");
    assert_eq!(
        answer["results"][0]["message"],
        "the webhook answered 503 Service Unavailable"
    );
    assert_eq!(answer["results"][1]["state"], "waiting", "{answer}");
    assert_eq!(answer["results"][1]["status"], Value::Null, "{answer}");
    assert!(
        upstream.received("/after").is_empty(),
        "the later hook waits"
    );

    let done = acme.settle(status, answer);
    assert_eq!(done["results"][0]["status"], "completed", "{done}");
    assert_eq!(done["results"][0]["attempts"], 2, "{done}");
    assert_eq!(done["results"][1]["status"], "completed", "{done}");
    assert_eq!(
        done["messages"],
        json!([{"type": "info", "content": "after"}])
    );
    assert_eq!(done["failed"], 0);
    assert!(done["finished_at"].is_string(), "{done}");
    let called = upstream.received("/first");
    let later = upstream.received("/after");
    assert_eq!((called.len(), later.len()), (2, 1));
    assert!(later[0].at > called[1].at, "after the retry that completed");
    let logs = acme.run_logs(&first);
    assert_eq!(logs.len(), 2, "one log per attempt");
    assert!(logs
        .iter()
        .all(|log| log["request_id"] == done["results"][0]["request_id"]));

    // A predecessor that never completes cancels the hook after it, with a log saying so.
    upstream.script("/first", vec![Reply::Json(503, json!({})); 3]);
    let (status, answer) = post_event(&acme);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let done = acme.settle(status, answer);
    assert_eq!(done["results"][0]["status"], "failed", "{done}");
    assert_eq!(done["results"][0]["attempts"], 3, "{done}");
    assert_eq!(done["results"][1]["status"], "cancelled", "{done}");
    assert_eq!(done["failed"], 2);
    assert_eq!(upstream.received("/after").len(), 1, "not called again");
    let cancelled = acme.run_logs(&after);
    assert_eq!(cancelled[0]["status"], "cancelled", "{}", cancelled[0]);
}

#[test]
fn an_event_is_shown_to_its_organization_only() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = Server::for_webhooks_with(dir.path(), &[("WASMHOOK_RETRY_DELAY_MS", "60000")]);
    let acme = Tenant::new(&server, "acme");
    let rival = Tenant::new(&server, "rival");
    acme.webhook(
        &format!("{}/kept", upstream.base),
        json!({"retry_count": 1}),
    );
    upstream.script("/kept", vec![Reply::Json(502, json!({}))]);
    let (status, answer) = post_event(&acme);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let path = path_of(&answer);
    let (status, seen) = acme.get(&path);
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["id"], answer["id"]);
    assert_eq!(seen["results"][0]["state"], "retrying", "{seen}");
    for (tenant_path, token) in [
        (path.clone(), rival.token.as_str()),
        (
            "/events/99999999999999999999".to_owned(),
            acme.token.as_str(),
        ),
        ("/events/0".to_owned(), acme.token.as_str()),
    ] {
        let (status, body) = server.get(&tenant_path, token);
        assert_eq!(status, StatusCode::NOT_FOUND, "{tenant_path}: {body}");
    }
    let (status, _) = server.send(reqwest::Method::GET, &path, None, None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn a_delivery_pending_when_the_server_is_killed_completes_after_a_restart() {
    let dir = temp();
    let upstream = Upstream::start();
    let settings = [("WASMHOOK_RETRY_DELAY_MS", "2500")];
    let mut server = Server::for_webhooks_with(dir.path(), &settings);
    let acme = Tenant::new(&server, "acme");
    let token = acme.token.clone();
    let hook = acme.webhook(
        &format!("{}/pending", upstream.base),
        json!({"retry_count": 1}),
    );
    upstream.script("/pending", vec![Reply::Json(503, json!({}))]);
    let (status, answer) = post_event(&acme);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let path = path_of(&answer);
    server.kill();

    let restarted = Server::for_webhooks_with(dir.path(), &settings);
    let acme = Tenant {
        server: &restarted,
        token,
    };
    let done = acme.settle(StatusCode::ACCEPTED, answer);
    assert_eq!(done["results"][0]["status"], "completed", "{done}");
    assert_eq!(done["results"][0]["attempts"], 2, "{done}");
    assert_eq!(
        upstream.received("/pending").len(),
        2,
        "one call, one retry"
    );
    let codes: Vec<Value> = acme
        .run_logs(&hook)
        .iter()
        .map(|log| log["status_code"].clone())
        .collect();
    assert_eq!(
        codes,
        [json!(200), json!(503)],
        "newest first, each attempt once"
    );
    let (status, seen) = acme.get(&path);
    assert_eq!(
        (status, &seen["state"]),
        (StatusCode::OK, &json!("finished"))
    );
}

#[test]
fn an_organizations_unfinished_deliveries_are_bounded_and_the_bound_is_its_own() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = Server::for_webhooks_with(
        dir.path(),
        &[
            ("WASMHOOK_RETRY_DELAY_MS", "60000"),
            ("WASMHOOK_UNFINISHED_DELIVERIES_PER_ORGANIZATION", "2"),
        ],
    );
    let acme = Tenant::new(&server, "acme");
    let quiet = Tenant::new(&server, "quiet");
    for tenant in [&acme, &quiet] {
        tenant.webhook(
            &format!("{}/down", upstream.base),
            json!({"retry_count": 1}),
        );
    }
    upstream.script("/down", vec![Reply::Json(503, json!({})); 8]);
    for _ in 0..2 {
        let (status, answer) = post_event(&acme);
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    let (status, refused) = post_event(&acme);
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("2 deliveries of earlier events")),
        "{refused}"
    );
    // Another organization's events are not held back by it.
    let (status, answer) = post_event(&quiet);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    // An interactive event is not a delivery: it still runs.
    let (status, answer) = acme.event(
        "annotation_content",
        "updated",
        None,
        json!({"annotation": {"id": 7, "content": []}}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[test]
fn an_event_left_between_a_layer_and_the_next_by_a_crash_is_advanced_by_the_sweep() {
    let dir = temp();
    let upstream = Upstream::start();
    let settings = [("WASMHOOK_RETRY_DELAY_MS", "60000")];
    let mut server = Server::for_webhooks_with(dir.path(), &settings);
    let acme = Tenant::new(&server, "acme");
    let token = acme.token.clone();
    let (first, _after) = chained(&acme, &upstream, 1);
    upstream.script("/first", vec![Reply::Json(503, json!({}))]);
    let (status, answer) = post_event(&acme);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    server.kill();
    // What a replica killed right after committing the first hook's last attempt leaves:
    // that delivery done, the next layer still waiting, the event unfinished.
    let changed = execute_in_database(
        dir.path(),
        &format!(
            "UPDATE deliveries SET state = 'done', status = 'completed', message = '',
                    response = '{{}}', lease_owner = NULL, lease_until = NULL
             WHERE hook_id = {}",
            first["id"]
        ),
    );
    assert_eq!(changed, 1);

    let restarted = Server::for_webhooks_with(dir.path(), &settings);
    let acme = Tenant {
        server: &restarted,
        token,
    };
    let done = acme.settle(StatusCode::ACCEPTED, answer);
    assert_eq!(done["results"][1]["status"], "completed", "{done}");
    assert_eq!(
        upstream.received("/after").len(),
        1,
        "the next layer ran once"
    );
    assert_eq!(
        upstream.received("/first").len(),
        1,
        "the done one was not run again"
    );
}

#[test]
fn one_organizations_retries_take_no_more_than_its_share_of_the_workers_turns() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = Server::for_webhooks_with(dir.path(), &[("WASMHOOK_RETRY_DELAY_MS", "5000")]);
    let flood = Tenant::new(&server, "flood");
    let quiet = Tenant::new(&server, "quiet");
    flood.webhook(
        &format!("{}/flood", upstream.base),
        json!({"retry_count": 1}),
    );
    quiet.webhook(
        &format!("{}/quiet", upstream.base),
        json!({"retry_count": 1}),
    );
    // More retries than the worker has turns (64): each first attempt fails at once, and
    // each retry hangs for 20 s. Without a share of the turns per organization they would
    // take every turn (16 calling, the rest waiting for the organization's outbound
    // requests), and the quiet organization's retry would wait for them.
    const EVENTS: usize = 72;
    const CLIENTS: usize = 8;
    const HANG: Duration = Duration::from_secs(20);
    const RETRY: Duration = Duration::from_secs(5);
    upstream.script("/flood", vec![Reply::Json(503, json!({})); EVENTS]);
    // Sent by eight clients at once, so that every first attempt is made well within the
    // 5 s before the first retry.
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                for _ in 0..EVENTS / CLIENTS {
                    let (status, answer) = post_event(&flood);
                    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
                }
            });
        }
    });
    let first_attempts = upstream.received("/flood");
    assert_eq!(first_attempts.len(), EVENTS, "one first attempt each");
    assert!(
        first_attempts[first_attempts.len() - 1].at < first_attempts[0].at + RETRY,
        "every first attempt came before any retry"
    );
    let events = first_attempts.len();
    upstream.script("/flood", vec![Reply::Slow(HANG); events]);
    let hanging = upstream.wait_for("/flood", events + 16, Duration::from_secs(60));
    assert!(hanging.len() >= events + 16, "the flood's retries began");
    let hanging_since = hanging[events].at;

    upstream.script(
        "/quiet",
        vec![
            Reply::Json(503, json!({})),
            Reply::Json(200, json!({"messages": []})),
        ],
    );
    let (status, answer) = post_event(&quiet);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let done = quiet.settle(status, answer);
    assert_eq!(done["results"][0]["status"], "completed", "{done}");
    let retried = upstream.received("/quiet");
    assert_eq!(retried.len(), 2);
    assert!(
        retried[1].at < hanging_since + HANG,
        "the quiet organization's retry ran while the flood's hung"
    );
}

/// A hook's answer of operations that would each nest the content a level deeper (an
/// added cell that says it is a multivalue, added to in turn) neither crashes the server,
/// which applies them for the hook after it (before, the walks over the tree overflowed
/// the stack, and the delivery crashed the server again at every start), nor nests the
/// content: an added cell is a datapoint, and past 10,000 operations none is applied.
#[test]
fn operations_that_would_nest_the_content_without_end_neither_crash_nor_nest_it() {
    let dir = temp();
    let upstream = Upstream::start();
    let server =
        Server::for_webhooks_with(dir.path(), &[("WASMHOOK_MAX_RESPONSE_BYTES", "8388608")]);
    let acme = Tenant::new(&server, "acme");
    let (_first, _after) = chained(&acme, &upstream, 0);
    let operations: Vec<Value> = (1..=15_000u64)
        .map(|id| json!({"op": "add", "id": id, "value": {"category": "multivalue"}}))
        .collect();
    upstream.script(
        "/first",
        vec![Reply::Json(200, json!({"operations": operations}))],
    );
    upstream.script("/after", vec![Reply::Json(200, json!({}))]);
    let (status, answer) = acme.event(
        EVENT.0,
        EVENT.1,
        None,
        json!({"annotation": {"id": 7, "content": [
            {"id": 1, "category": "multivalue", "children": []}
        ]}}),
    );
    let settled = acme.settle(status, answer);
    assert_eq!(settled["results"][1]["status"], "completed", "{settled}");
    let received = upstream.wait_for("/after", 1, Duration::from_secs(30));
    let payload: Value = serde_json::from_slice(&received[0].body).expect("a JSON payload");
    let content = &payload["annotation"]["content"];
    assert_eq!(
        content,
        &json!([{"id": 1, "category": "multivalue", "children": [
            {"id": 2, "category": "datapoint"}
        ]}]),
        "{payload}"
    );
    assert_eq!(payload["updated_datapoints"], json!([1, 2]));
    // The server still answers.
    let (status, _) = post_event(&acme);
    assert!(status.is_success(), "{status}");
}

/// What one answer about an event holds of its responses at most
/// (`dispatch::ANSWERED_RESPONSE_BYTES`), and what a hook's payload is built from of its
/// ancestors' (`ANCESTOR_RESPONSE_BYTES` in `dispatch/event.rs`): 8 MiB each.
const RESPONSE_BUDGET: usize = 8 * 1024 * 1024;
/// Hooks of [`answering_a_mib_each`] answering about a MiB each.
const BIG: usize = 9;
/// Of them, those whose responses fit in [`RESPONSE_BUDGET`].
const READ: usize = 8;

/// A server of webhooks whose answers may be up to 8 MiB, a module's response bytes
/// (1 MiB) and more, not the 64 KiB of these tests.
fn answering_mibs(dir: &std::path::Path) -> Server {
    Server::for_webhooks_with(dir, &[("WASMHOOK_MAX_RESPONSE_BYTES", "8388608")])
}

/// Webhooks of `acme` on `upstream`: [`BIG`] of them each answer about a MiB (a message of
/// 1,000,000 bytes and an operation on a datapoint of its own), and a tenth (`/after`),
/// which runs after them all, a short message.
fn answering_a_mib_each(acme: &Tenant<'_>, upstream: &Upstream) {
    let padding = "x".repeat(1_000_000);
    let mut big = Vec::new();
    for index in 1..=BIG {
        let path = format!("/big-{index}");
        big.push(acme.webhook(&format!("{}{path}", upstream.base), json!({})));
        let operation =
            json!({"op": "replace", "id": index, "value": {"content": {"value": "set"}}});
        upstream.script(
            &path,
            vec![Reply::Json(
                200,
                json!({
                    "messages": [{"type": "info", "content": padding}],
                    "operations": [operation],
                }),
            )],
        );
    }
    let after = acme.webhook(&format!("{}/after", upstream.base), json!({}));
    let run_after: Vec<Value> = big.iter().map(|hook| hook["url"].clone()).collect();
    let (status, patched) = acme.patch(
        &format!("/hooks/{}", after["id"]),
        json!({"run_after": run_after}),
    );
    assert_eq!(status, StatusCode::OK, "{patched}");
    upstream.script(
        "/after",
        vec![Reply::Json(
            200,
            json!({"messages": [{"type": "info", "content": "after"}]}),
        )],
    );
}

/// The keys of an event on [`answering_a_mib_each`]'s hooks: an annotation with a
/// datapoint for each of its big ones to set.
fn big_event_keys() -> Value {
    let datapoints: Vec<Value> = (1..=BIG)
        .map(|id| json!({"id": id, "category": "datapoint", "content": {"value": "0"}}))
        .collect();
    json!({"annotation": {"id": 7, "content": [
        {"id": 100, "category": "section", "children": datapoints}
    ]}})
}

/// `seen`, an answer (`name`) about an event on [`answering_a_mib_each`]'s hooks, holds
/// the responses of the first [`READ`] only, each left out marked (the tenth's too, small
/// as it is: it comes after them in plan order), folds those held, and cuts each message.
fn assert_held_within_the_budget(name: &str, seen: &Value) {
    // Not `{seen}` in a message: it is megabytes.
    let results = seen["results"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert_eq!(results.len(), BIG + 1, "{name}");
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result["status"], "completed", "{name}: result {index}");
        // Each message (its response's messages joined) is cut, as a response would
        // be: ten of a MB each would be the answer's budget again.
        let message = result["message"].as_str().unwrap_or_default();
        assert!(
            message.chars().count() <= 1024,
            "{name}: result {index}'s message of {} bytes",
            message.len()
        );
        let omitted = index >= READ;
        assert_eq!(
            result["response"].is_object(),
            !omitted,
            "{name}: result {index}'s response"
        );
        assert_eq!(
            result.get("response_omitted").cloned(),
            omitted.then_some(json!(true)),
            "{name}: result {index} says whether its response was left out"
        );
    }
    let folded = |key: &str| seen[key].as_array().map(Vec::len);
    assert_eq!(folded("messages"), Some(READ), "{name}: the eight held");
    assert_eq!(folded("operations"), Some(READ), "{name}: the eight held");
    let bytes = serde_json::to_string(seen)
        .map(|text| text.len())
        .unwrap_or(0);
    assert!(
        bytes < 2 * RESPONSE_BUDGET,
        "{name}: an answer of {bytes} bytes"
    );
}

/// The tenth hook of [`answering_a_mib_each`] received a payload with the first [`READ`]
/// operations applied and not the ninth's, and `server` warned that it left that out.
fn assert_the_tenth_took_its_ancestors_within_the_budget(server: &Server, upstream: &Upstream) {
    let received = upstream.wait_for("/after", 1, Duration::from_secs(30));
    let payload: Value = serde_json::from_slice(&received[0].body).expect("a JSON payload");
    let children = &payload["annotation"]["content"][0]["children"];
    for index in 0..BIG {
        let expected = if index < READ { "set" } else { "0" };
        assert_eq!(
            children[index]["content"]["value"],
            expected,
            "datapoint {}",
            index + 1
        );
    }
    assert_eq!(
        payload["updated_datapoints"],
        json!([1, 2, 3, 4, 5, 6, 7, 8])
    );
    let warned = wait_until(Instant::now() + Duration::from_secs(10), || {
        server
            .log()
            .contains("their operations not applied to its payload")
    });
    assert!(warned, "no warning that operations were left out");
}

/// An event of nine hooks each answering about a MiB, and a tenth after them all
/// ([`answering_a_mib_each`]). The answers about it (`POST /events` and
/// `GET /events/{id}`) read its responses up to 8 MiB, in plan order: the ninth's and the
/// tenth's are left out, each marked, and the fold is of the eight read, so that an answer
/// holds each response read twice at most (in its result, and its messages in the fold).
/// Before, every response was read, parsed and answered, however often asked: up to 500
/// MiB for an event of 500 hooks. The tenth's payload is built from its ancestors'
/// responses up to 8 MiB too: the first eight's operations are applied, the ninth's not,
/// with a warning. Before, every response of the event was read at each of its turns.
#[test]
fn an_events_responses_are_read_within_a_budget_by_its_answers_and_its_later_hooks() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = answering_mibs(dir.path());
    let acme = Tenant::new(&server, "acme");
    answering_a_mib_each(&acme, &upstream);
    let (status, answer) = acme.event(EVENT.0, EVENT.1, None, big_event_keys());
    let posted = acme.settle(status, answer);
    let (status, shown) = acme.get(&path_of(&posted));
    assert_eq!(status, StatusCode::OK);
    for (name, seen) in [("POST", &posted), ("GET", &shown)] {
        assert_held_within_the_budget(name, seen);
    }
    assert_the_tenth_took_its_ancestors_within_the_budget(&server, &upstream);
}

/// The same hooks on an interactive event (`annotation_content.updated`), whose runs are
/// not stored as deliveries but kept in memory until its answer: the answer holds its
/// responses up to 8 MiB in plan order as a non-interactive event's does (the ninth's and
/// the tenth's dropped as their runs end, each marked, the fold of the eight held, each
/// message cut), and the tenth's payload is built from the operations of its ancestors'
/// responses up to 8 MiB (the ninth's not applied, with a warning). Before, every run's
/// whole response was kept, passed to the tenth's payload and answered: up to 500 hooks of
/// 1 MiB each, parsed, per event.
#[test]
fn an_interactive_events_responses_are_held_within_a_budget_by_its_answer_and_later_hooks() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = answering_mibs(dir.path());
    let acme = Tenant::new(&server, "acme");
    answering_a_mib_each(&acme, &upstream);
    let (status, answer) = acme.event("annotation_content", "updated", None, big_event_keys());
    // Not `{answer}`: it is megabytes.
    assert_eq!(status, StatusCode::OK);
    assert!(
        answer.get("url").is_none(),
        "an interactive event is not stored"
    );
    assert_held_within_the_budget("POST", &answer);
    assert_the_tenth_took_its_ancestors_within_the_budget(&server, &upstream);
}
