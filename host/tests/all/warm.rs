//! Warm instances (`config.reuse_instances`) against the real server: the `counter` guest
//! counts its calls in its own memory, so its answer says whether the instance was reused
//! (it goes on counting) or fresh (it starts at 1).

use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::{COUNTER, FETCHER, HELLO};

use super::support::{message_at, temp, Server, Tenant, Upstream, OPERATOR_TOKEN};

/// A hook running `module` with `config.reuse_instances` set to `reuse`.
fn counting_hook(tenant: &Tenant<'_>, module: &str, reuse: &Value) -> Value {
    tenant.hook(
        module,
        json!({"config": {"runtime": "wasm", "module": module, "timeout_s": 5, "reuse_instances": reuse}}),
    )
}

/// Invokes `hook` with `body`; the count its instance answered.
fn count(tenant: &Tenant<'_>, hook: &Value, body: Value) -> u64 {
    let (status, answer) = tenant.invoke(hook, body);
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["count"].as_u64().expect("a count")
}

/// The counts of `calls` invocations of `hook` in a row.
fn counts(tenant: &Tenant<'_>, hook: &Value, calls: usize) -> Vec<u64> {
    (0..calls).map(|_| count(tenant, hook, json!({}))).collect()
}

#[test]
fn a_hooks_calls_share_its_warm_instance_and_no_other_hook_sees_it() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let module = acme.upload(COUNTER);
    let first = counting_hook(&acme, &module, &json!(true));
    assert_eq!(counts(&acme, &first, 2), [1, 2]);

    let second = counting_hook(&acme, &module, &json!(true));
    assert_eq!(counts(&acme, &second, 1), [1], "another hook, same module");
    let globex = Tenant::new(&server, "globex");
    let theirs = counting_hook(&globex, &globex.upload(COUNTER), &json!(true));
    assert_eq!(counts(&globex, &theirs, 1), [1], "another organization");
    assert_eq!(
        counts(&acme, &first, 1),
        [3],
        "the first hook's state is its own"
    );

    let fresh = counting_hook(&acme, &module, &json!(false));
    assert_eq!(counts(&acme, &fresh, 3), [1, 1, 1]);
    let metrics = server.metrics();
    let reused = metrics
        .get("wasmhook_instances_total{kind=\"reused\"}")
        .copied();
    assert_eq!(reused, Some(2.0), "{metrics:?}");
    assert!(
        metrics.get("wasmhook_warm_instances").copied() >= Some(3.0),
        "{metrics:?}"
    );
}

#[test]
fn an_instance_that_trapped_is_not_reused() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hook = counting_hook(&acme, &acme.upload(COUNTER), &json!(true));
    assert_eq!(counts(&acme, &hook, 2), [1, 2]);
    let (status, trapped) = acme.invoke(&hook, json!({"trap": true}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{trapped}");
    assert_eq!(trapped["status"], "failed", "{trapped}");
    assert_eq!(
        counts(&acme, &hook, 2),
        [1, 2],
        "a new instance after the trap"
    );
}

#[test]
fn a_saved_hook_starts_a_new_instance() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let module = acme.upload(COUNTER);
    let hook = counting_hook(&acme, &module, &json!(true));
    let path = format!("/hooks/{}", hook["id"]);
    assert_eq!(counts(&acme, &hook, 2), [1, 2]);

    let (status, patched) = acme.patch(&path, json!({"settings": {"colour": "red"}}));
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        counts(&acme, &hook, 2),
        [1, 2],
        "new settings, new instance"
    );

    // Another module, then the counter again: the instance made before is not the one.
    let hello = acme.upload(HELLO);
    let config = |module: &str| json!({"config": {"runtime": "wasm", "module": module, "reuse_instances": true}});
    let (status, patched) = acme.patch(&path, config(&hello));
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (status, answer) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.get("count").is_none(), "hello answered: {answer}");
    let (status, patched) = acme.patch(&path, config(&module));
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(counts(&acme, &hook, 1), [1], "the counter again, fresh");
}

#[test]
fn an_instance_serves_max_calls_then_a_new_one_starts() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hook = counting_hook(&acme, &acme.upload(COUNTER), &json!({"max_calls": 2}));
    assert_eq!(counts(&acme, &hook, 5), [1, 2, 1, 2, 1]);
}

#[test]
fn a_token_an_earlier_call_left_in_the_instance_is_redacted() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let (_, users) = acme.get("/users");
    let module = acme.upload(COUNTER);
    let hook = acme.hook(
        &module,
        json!({
            "config": {"runtime": "wasm", "module": module, "reuse_instances": true},
            "token_owner": users["results"][0]["url"],
        }),
    );
    let (status, first) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["previous_token"], Value::Null, "{first}");
    let (status, second) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["count"], 2, "{second}");
    assert_eq!(second["previous_token"], "[redacted...]", "{second}");
    let logs = acme.run_logs(&hook);
    let output = logs[0]["output"].as_str().unwrap_or_default();
    assert!(
        output.contains("the previous call's token was [redacted...]"),
        "{output}"
    );
}

#[test]
fn reuse_bounds_out_of_range_are_refused_naming_the_field() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let module = acme.upload(COUNTER);
    let cases = [
        (json!({"max_calls": 0}), "config.reuse_instances.max_calls"),
        (
            json!({"max_calls": 10_001}),
            "config.reuse_instances.max_calls",
        ),
        (json!({"idle_s": 601}), "config.reuse_instances.idle_s"),
        (json!("always"), "config.reuse_instances"),
    ];
    for (reuse, field) in cases {
        let (status, refused) = acme.post(
            "/hooks",
            json!({
                "name": "refused",
                "events": ["invocation.manual"],
                "config": {"runtime": "wasm", "module": module, "reuse_instances": reuse},
            }),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reuse}: {refused}");
        assert!(
            message_at(&refused, field).is_some_and(|message| message.contains("must be")),
            "{reuse}: {refused}"
        );
    }
}

/// A call whose outgoing request is answered and dropped leaves its instance quiet: it is
/// kept. (One whose request outlives it is not: a request still running could write into
/// the next call's output; the runtime counts each request and response body alive.)
#[test]
fn an_instance_whose_requests_all_ended_is_kept() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let module = acme.upload(FETCHER);
    let hook = acme.hook(
        &module,
        json!({
            "config": {
                "runtime": "wasm", "module": module, "timeout_s": 10, "reuse_instances": true,
                "allowed_hosts": [upstream.authority],
            },
            "settings": {"requests": [{"method": "GET", "url": format!("{}/ping", upstream.base)}]},
        }),
    );
    for _ in 0..2 {
        let (status, answer) = acme.invoke(&hook, json!({}));
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(
        upstream.received("/ping").len(),
        2,
        "both calls reached the upstream"
    );
    let metrics = server.metrics();
    assert_eq!(
        metrics
            .get("wasmhook_instances_total{kind=\"reused\"}")
            .copied(),
        Some(1.0),
        "the second call ran on the first one's instance: {metrics:?}"
    );
}
