//! Modules, queues, hooks, calls, tokens, secrets and run logs over HTTP against the real
//! `wasmhook serve` on a free port with a temporary data directory.

use std::time::{Duration, Instant};

use reqwest::blocking::multipart;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wasmhook_tests::guests::{HELLO, HOSTILE, INVOICE_CHECK, OTHER_WORLD};

use super::support::{
    artifact_names, artifacts, detail_of, execute_in_database, field_error, field_message, id_of,
    initialize, initialize_annotation, message_at, register_template, sign, temp, wait_until,
    Server, Tenant, OPERATOR_TOKEN,
};

#[test]
fn a_module_is_uploaded_raw_or_multipart_and_compiled_at_once() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");

    // Raw upload: validated and compiled at once.
    let hello = acme.upload(HELLO);
    let (status, module) = acme.get(&format!("/modules/{}", id_of(&hello)));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(module["status"], "ready");
    assert_eq!(module["kind"], "component");
    assert_eq!(module["sha256"].as_str().map(str::len), Some(64));
    assert!(module["exports"].to_string().contains("handle"), "{module}");

    // Multipart upload.
    let form = multipart::Form::new().text("name", "invoice-check").part(
        "file",
        multipart::Part::bytes(std::fs::read(INVOICE_CHECK).expect("built"))
            .file_name("invoice_check.wasm"),
    );
    let response = server
        .client
        .post(server.url("/modules"))
        .bearer_auth(&acme.token)
        .multipart(form)
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let invoice: Value = response.json().expect("JSON");
    assert_eq!(invoice["name"], "invoice-check");
    let (_, modules) = acme.get("/modules");
    assert_eq!(modules["pagination"]["total"], 2);
}

/// Saves `acme`'s `Greeter`: a function hook of `hello` on a new queue `Invoices`, with
/// settings, metadata and every optional key of Rossum's hook sent. The queue and the hook.
fn greeter(acme: &Tenant, hello: &str) -> (Value, Value) {
    let (status, queue) = acme.post(
        "/queues",
        json!({"name": "Invoices", "metadata": {"region": "eu"}}),
    );
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    // It keeps its payloads in its run logs (Rossum's default is not to), which the
    // logs' test reads.
    let hook = acme.hook(
        hello,
        json!({
            "name": "Greeter",
            "config": {"runtime": "wasm", "module": hello, "timeout_s": 5, "payload_logging_enabled": true},
            "queues": [queue["url"]],
            "settings": {"greeting": "Ahoj"},
            "settings_schema": {"type": "object", "properties": {"greeting": {"type": "string"}}},
            "metadata": {"team": "ap"},
            "sideload": ["queues"],
            "description": "says hello",
            "token_lifetime_s": 60,
            "test": {"saved_input": {}},
        }),
    );
    (queue, hook)
}

/// Runs `hook` twice: a `/test` of `annotation_content.initialize` on annotation 314, then
/// an invocation with `{"SAP_ID": "1234"}`.
fn test_and_invoke(acme: &Tenant, hook: &Value) {
    let (status, tested) = acme.test_call(hook, initialize_annotation(314));
    assert_eq!(status, StatusCode::OK, "{tested}");
    let (status, invoked) = acme.invoke(hook, json!({"SAP_ID": "1234"}));
    assert_eq!(status, StatusCode::OK, "{invoked}");
}

#[test]
fn a_saved_hook_has_every_key_of_rossums_hook_and_its_queue_names_it() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let (queue, hook) = greeter(&acme, &hello);
    for field in [
        "id",
        "url",
        "name",
        "type",
        "queues",
        "run_after",
        "active",
        "events",
        "sideload",
        "metadata",
        "config",
        "test",
        "token_owner",
        "token_lifetime_s",
        "description",
        "extension_source",
        "settings",
        "settings_schema",
        "secrets_schema",
        "guide",
        "read_more_url",
        "extension_image_url",
        "status",
        "created_at",
        "modified_at",
        "created_by",
        "modified_by",
    ] {
        assert!(
            hook.get(field).is_some(),
            "the hook lacks `{field}`: {hook}"
        );
    }
    assert_eq!(hook["type"], "function");
    assert_eq!(hook["status"], "ready");
    assert_eq!(hook["config"]["module"], Value::String(hello));
    assert_eq!(hook["extension_source"], "custom");
    let (_, queue) = acme.get(&format!("/queues/{}", queue["id"]));
    assert_eq!(queue["hooks"], json!([hook["url"]]));
}

#[test]
fn a_hook_is_tested_and_invoked_with_its_settings() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let (_, hook) = greeter(&acme, &hello);

    // Test: the response and the captured output.
    let (status, tested) = acme.test_call(&hook, initialize_annotation(314));
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    assert_eq!(
        tested["response"]["messages"][0]["content"],
        "Ahoj, annotation_content.initialize!"
    );
    assert!(
        tested["log"].as_str().unwrap_or("").contains("Ahoj"),
        "{tested}"
    );

    // Invoke: invocation.manual with the body merged in.
    let (status, invoked) = acme.invoke(&hook, json!({"SAP_ID": "1234"}));
    assert_eq!(status, StatusCode::OK, "{invoked}");
    assert_eq!(
        invoked["messages"][0]["content"],
        "Ahoj, invocation.manual!"
    );
}

/// An invocation's body is read at its top level only and its values spliced into the
/// payload as they came: the payload the run log keeps holds them (nested, escaped, a key
/// given twice keeping its last value) beside the hook's sideload, and the log is filed
/// under the body's annotation. A body that is not JSON, not an object, nests deeper than
/// the host parses, or sets a key the host sets, is refused with a 400 saying why, and runs
/// nothing.
#[test]
fn an_invocations_body_reaches_the_payload_as_sent_or_is_refused_saying_why() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let (_, hook) = greeter(&acme, &hello);
    let invoke = |body: &str| {
        let response = server
            .client
            .post(server.url(&format!("/hooks/{}/invoke", hook["id"])))
            .bearer_auth(&acme.token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .expect("answers");
        let status = response.status();
        (status, response.json::<Value>().expect("a JSON answer"))
    };
    let sent = r#"{"annotation": {"id": 4242, "content": [{"value": "\"quoted\" \u00e9"}]},
        "SAP_ID": 1, "SAP_ID": [ 2.50, null ], "note": "ahoj"}"#;
    let (status, answer) = invoke(sent);
    assert_eq!(status, StatusCode::OK, "{answer}");
    let logs = acme.run_logs(&hook);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["annotation_id"], 4242, "{}", logs[0]);
    let request: Value = logs[0]["request"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .expect("the kept payload is JSON text");
    let expected: Value = serde_json::from_str(sent).expect("JSON");
    for key in ["annotation", "SAP_ID", "note"] {
        assert_eq!(request[key], expected[key], "`{key}` in {request}");
    }
    assert_eq!(
        request["SAP_ID"],
        json!([2.5, null]),
        "the last of a key given twice"
    );
    assert!(
        request["queues"].is_array(),
        "the hook's sideload: {request}"
    );
    assert_eq!(request["action"], "manual");

    let deep = format!("{{\"deep\": {}{}}}", "[".repeat(200), "]".repeat(200));
    for (body, says) in [
        ("{\"note\": ", "JSON parse error - "),
        (
            "[1, 2]",
            "Invalid data. Expected a dictionary, but got list.",
        ),
        (
            "\"text\"",
            "Invalid data. Expected a dictionary, but got str.",
        ),
        (deep.as_str(), "JSON parse error - "),
    ] {
        let (status, answer) = invoke(body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:.40}: {answer}");
        let detail = detail_of(&answer)
            .or_else(|| field_message(&answer, "non_field_errors"))
            .unwrap_or_default();
        assert!(detail.starts_with(says), "{body:.40}: {answer}");
    }
    let (status, answer) = invoke(r#"{"note": 1, "secrets": {"api_key": "mine"}}"#);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(field_message(&answer, "secrets").is_some(), "{answer}");
    assert_eq!(acme.run_logs(&hook).len(), 1, "a refused body ran the hook");
}

#[test]
fn both_runs_of_a_hook_are_logged_newest_first_in_hookrundatas_shape() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let (_, hook) = greeter(&acme, &hello);
    test_and_invoke(&acme, &hook);

    // Both runs are logged, newest first, in HookRunData's shape.
    let (status, logs) = acme.get(&format!("/hooks/logs?hook={}", hook["id"]));
    assert_eq!(status, StatusCode::OK, "{logs}");
    let results = logs["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 2, "{logs}");
    assert_eq!(results[0]["action"], "manual");
    assert_eq!(results[1]["action"], "initialize");
    assert_eq!(results[1]["annotation_id"], 314);
    for log in &results {
        assert_eq!(log["status"], "completed");
        assert_eq!(log["log_level"], "INFO");
        assert_eq!(log["hook_type"], "function");
        assert!(
            log["request"].is_string() && log["response"].is_string(),
            "{log}"
        );
        for field in [
            "uuid",
            "request_id",
            "organization_id",
            "hook_id",
            "start",
            "end",
            "timestamp",
            "settings",
            "output",
            "message",
            "status_code",
            "queue_id",
            "email_id",
        ] {
            assert!(log.get(field).is_some(), "a log lacks `{field}`: {log}");
        }
    }
    let request: Value =
        serde_json::from_str(results[0]["request"].as_str().unwrap_or("")).expect("JSON text");
    assert_eq!(request["SAP_ID"], "1234");
    let (_, one) = acme.get(&format!(
        "/hooks/logs?request_id={}",
        results[0]["request_id"].as_str().unwrap_or("")
    ));
    assert_eq!(one["results"].as_array().map(Vec::len), Some(1));
    let (_, searched) = acme.get("/hooks/logs?search=SAP_ID");
    assert_eq!(searched["results"].as_array().map(Vec::len), Some(1));
    let (_, none) = acme.get("/hooks/logs?status=failed");
    assert_eq!(none["results"], json!([]));
}

#[test]
fn patch_changes_what_is_sent_and_put_replaces_the_whole_hook() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let (_, hook) = greeter(&acme, &hello);

    // PATCH changes what is sent; PUT replaces the whole.
    let (status, patched) = acme.patch(
        &format!("/hooks/{}", hook["id"]),
        json!({"name": "Renamed", "active": false}),
    );
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Renamed");
    assert_eq!(patched["settings"]["greeting"], "Ahoj");
    let (status, replaced) = acme.put(
        &format!("/hooks/{}", hook["id"]),
        json!({"name": "Whole", "events": ["invocation"], "config": {"runtime": "wasm", "module": hello}}),
    );
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["settings"], json!({}));
    assert_eq!(replaced["queues"], json!([]));
    assert_eq!(replaced["active"], true);
    let (_, listed) = acme.get("/hooks?name=Whole");
    assert_eq!(listed["pagination"]["total"], 1);
}

#[test]
fn a_module_in_use_is_not_deleted_and_the_logs_outlive_its_hook() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let (_, hook) = greeter(&acme, &hello);
    test_and_invoke(&acme, &hook);

    // A module in use cannot be deleted; once its hook is gone, it can.
    let path = format!("/modules/{}", id_of(&hello));
    let (status, refused) = server.send(Method::DELETE, &path, Some(&acme.token), None);
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        refused["detail"].as_str().unwrap_or("").contains("/hooks/"),
        "{refused}"
    );
    assert_eq!(
        acme.delete(&format!("/hooks/{}", hook["id"])),
        StatusCode::NO_CONTENT
    );
    assert_eq!(acme.delete(&path), StatusCode::NO_CONTENT);
    assert_eq!(acme.get(&path).0, StatusCode::NOT_FOUND);
    // The logs outlive the hook.
    let (_, logs) = acme.get(&format!("/hooks/logs?hook={}", hook["id"]));
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_refused_module_gets_a_400_naming_the_reason_and_nothing_is_written() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");

    // A module refused for what it is: an error of the upload's `file`.
    let (status, answer) = acme.upload_bytes(b"definitely not wasm".to_vec(), "x.wasm");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        field_message(&answer, "file").is_some_and(|m| m.contains("not a WebAssembly module")),
        "{answer}"
    );
    let (status, answer) = acme.upload_bytes(std::fs::read(OTHER_WORLD).expect("built"), "x.wasm");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        field_message(&answer, "file").is_some_and(|m| m.contains("does not export")),
        "{answer}"
    );
    let mut truncated = std::fs::read(HELLO).expect("built");
    truncated.truncate(truncated.len() / 2);
    let (status, answer) = acme.upload_bytes(truncated, "x.wasm");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        field_message(&answer, "file")
            .is_some_and(|m| m.starts_with("not a valid WebAssembly component: ")),
        "{answer}"
    );
    let (status, answer) = acme.upload_bytes(vec![0; 65 * 1024 * 1024], "big.wasm");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(
        answer["detail"],
        "the request body is larger than 67108864 bytes"
    );
    let response = server
        .client
        .post(server.url("/modules"))
        .bearer_auth(&acme.token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer: Value = response.json().expect("a JSON answer");
    assert_eq!(
        answer,
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );
    let (_, modules) = acme.get("/modules");
    assert_eq!(
        modules["pagination"]["total"], 0,
        "a refused module was stored"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("modules"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[test]
fn a_refused_hook_gets_a_400_naming_its_field_and_nothing_is_written() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");

    let hello = acme.upload(HELLO);
    let other = Tenant::new(&server, "other");
    let foreign_module = other.upload(HELLO);
    let (_, foreign_user) = server.get("/users?organization=2", OPERATOR_TOKEN);
    let foreign_user = foreign_user["results"][0]["url"].clone();
    let config = |extra: Value| {
        let mut config = json!({"runtime": "wasm", "module": hello});
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        config
    };
    let cases = [
        (json!({"events": ["annotation_content.exploded"]}), "events"),
        (json!({"events": ["nonsense"]}), "events"),
        (
            json!({"config": config(json!({"timeout_s": 0}))}),
            "config.timeout_s",
        ),
        (
            json!({"config": config(json!({"timeout_s": 61}))}),
            "config.timeout_s",
        ),
        (
            json!({"config": config(json!({"memory_size_mb": 4096}))}),
            "config.memory_size_mb",
        ),
        (
            json!({"config": config(json!({"retry_count": 9}))}),
            "config.retry_count",
        ),
        (
            json!({"config": config(json!({"runtime": "python3.12"}))}),
            "config.runtime",
        ),
        (
            json!({"config": {"runtime": "wasm", "module": foreign_module}}),
            "config.module",
        ),
        (
            json!({"config": {"runtime": "wasm", "module": "/api/v1/modules/999"}}),
            "config.module",
        ),
        (json!({"token_lifetime_s": 7201}), "token_lifetime_s"),
        (json!({"token_owner": foreign_user}), "token_owner"),
        (
            json!({"settings_schema": {"type": "object", "required": ["greeting"]}}),
            "settings",
        ),
        (
            json!({"settings_schema": {"type": "nonsense"}}),
            "settings_schema",
        ),
        (
            json!({"secrets_schema": {"type": "object"}}),
            "secrets_schema",
        ),
        (json!({"secrets": {"k": 5}}), "secrets.k"),
        (json!({"queues": ["/api/v1/queues/999"]}), "queues"),
        (json!({"run_after": ["/api/v1/hooks/999"]}), "run_after"),
        (json!({"type": "cron"}), "type"),
        (json!({"type": "webhook"}), "config.runtime"),
        (json!({"name": ""}), "name"),
        (json!({"unknown_field": 1}), "unknown_field"),
    ];
    for (extra, field) in cases {
        let mut body = json!({"name": "h", "events": ["invocation"], "config": config(json!({}))});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let (status, answer) = acme.post("/hooks", body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {answer}");
        // DRF's shape: the top-level field is the key; a key inside a JSON field leads
        // the message (`{"config": ["timeout_s: ..."]}`).
        assert!(
            message_at(&answer, field).is_some_and(|message| !message.is_empty()),
            "{extra}: {answer}"
        );
    }
    // Malformed JSON, and a body that is not an object.
    let response = server
        .client
        .post(server.url("/hooks"))
        .bearer_auth(&acme.token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().expect("a JSON answer");
    assert!(
        detail_of(&answer).is_some_and(|detail| detail.starts_with("JSON parse error - ")),
        "{answer}"
    );
    let (status, answer) = server.send(Method::POST, "/hooks", Some(&acme.token), Some(json!([1])));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error(
            "non_field_errors",
            "Invalid data. Expected a dictionary, but got list."
        )
    );
    let (_, hooks) = acme.get("/hooks");
    assert_eq!(hooks["pagination"]["total"], 0, "a refused hook was stored");
}

#[test]
fn calls_with_bad_input_get_a_400_naming_the_reason() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);

    // Calls with bad input.
    let hook = acme.hook(&hello, json!({}));
    let (status, answer) = acme.test_call(
        &hook,
        json!({"event": "annotation_content", "action": "exploded"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        field_message(&answer, "payload").is_some_and(
            |m| m.starts_with("unknown action `exploded` for event `annotation_content`")
        ),
        "{answer}"
    );
    let (status, answer) = acme.post(
        &format!("/hooks/{}/test", hook["id"]),
        json!({"nothing": 1}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        field_message(&answer, "nothing").is_some_and(|m| m.starts_with("not a field here")),
        "{answer}"
    );
    let (status, answer) = acme.invoke(&hook, json!({"secrets": {}}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error("secrets", "set by the host and cannot be sent")
    );
    // An invoke body over the limit: 413 in the API's shape, like every other body.
    let response = super::support::http_client()
        .post(server.url(&format!("/hooks/{}/invoke", hook["id"])))
        .bearer_auth(&acme.token)
        .header("Content-Type", "application/json")
        .body(format!("{{\"note\": \"{}\"}}", "x".repeat(3 << 20)))
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let answer: Value = response.json().expect("a JSON answer");
    assert_eq!(
        answer,
        json!({"detail": "the request body is larger than 2097152 bytes"})
    );
    let (status, answer) = acme.post(
        "/events",
        json!({"event": "annotation_content", "action": "nope", "payload": {}}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        field_message(&answer, "event")
            .is_some_and(|m| m.starts_with("unknown action `nope` for event `annotation_content`")),
        "{answer}"
    );
}

#[test]
fn a_bad_filter_value_or_id_gets_drfs_answer() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");

    // A page size beyond the maximum is capped and a parameter that is no filter ignored,
    // as DRF does (drf.rs); a bad value of a filter is not.
    let (status, answer) = acme.get("/hooks/logs?page_size=0");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error("page_size", "`0` is not a positive integer")
    );
    let (status, answer) = acme.get("/hooks/logs?status=red");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error(
            "status",
            "`red` is not one of completed, failed, timeout, cancelled"
        )
    );
    let (status, answer) = acme.get("/hooks/logs?start_before=yesterday");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error(
            "start_before",
            "`yesterday` is not an RFC 3339 time such as 2026-01-31T12:00:00Z"
        )
    );
    let (status, answer) = acme.get("/hooks/abc");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer, json!({"detail": "Not found."}));
}

#[test]
fn a_hook_not_subscribed_to_invocation_manual_cannot_be_invoked() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let hook = acme.hook(&hello, json!({}));

    // A hook that does not subscribe to invocation.manual cannot be invoked.
    let (status, quiet) = acme.patch(
        &format!("/hooks/{}", hook["id"]),
        json!({"events": ["annotation_status"]}),
    );
    assert_eq!(status, StatusCode::OK, "{quiet}");
    let (status, answer) = acme.invoke(&quiet, json!({}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error(
            "non_field_errors",
            "The hook does not subscribe to invocation.manual; add it to `events`."
        )
    );
}

#[test]
fn run_after_cycles_are_refused_naming_the_cycle() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let a = acme.hook(&hello, json!({"name": "A"}));
    let b = acme.hook(&hello, json!({"name": "B", "run_after": [a["url"]]}));
    let c = acme.hook(&hello, json!({"name": "C", "run_after": [b["url"]]}));
    let (status, answer) = acme.patch(
        &format!("/hooks/{}", a["id"]),
        json!({"run_after": [c["url"]]}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let message = field_message(&answer, "run_after").unwrap_or_default();
    assert!(message.starts_with("this makes a cycle: "), "{answer}");
    for name in ["(A)", "(B)", "(C)"] {
        assert!(message.contains(name), "{answer}");
    }
    let (status, answer) = acme.patch(
        &format!("/hooks/{}", a["id"]),
        json!({"run_after": [a["url"]]}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error("run_after", "a hook cannot run after itself")
    );
    let (_, unchanged) = acme.get(&format!("/hooks/{}", a["id"]));
    assert_eq!(unchanged["run_after"], json!([]));
}

#[test]
fn secrets_are_write_only_encrypted_at_rest_and_never_logged() {
    const SECRET: &str = "s3cr3t-value-that-must-never-leak";
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hostile = acme.upload(HOSTILE);
    let hook = acme.hook(
        &hostile,
        json!({"settings": {"behavior": "print_secret"}, "secrets": {"api_key": SECRET, "other": "x-other-secret"},
               "config": {"runtime": "wasm", "module": hostile, "secret": "signing-secret-value"}}),
    );
    assert!(!hook.to_string().contains(SECRET), "{hook}");
    assert!(!hook.to_string().contains("signing-secret-value"), "{hook}");
    let (_, keys) = acme.get(&format!("/hooks/{}/secrets_keys", hook["id"]));
    assert_eq!(keys, json!(["api_key", "other"]));
    let (status, tested) = acme.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    assert!(
        !tested["log"].as_str().unwrap_or("").contains(SECRET),
        "{tested}"
    );
    assert!(
        tested["log"].as_str().unwrap_or("").contains("[redacted"),
        "{tested}"
    );
    // A PATCH without secrets keeps them; a new schema without them is refused, whatever
    // it says of them (its answer tells nothing of the values), and one with them is
    // checked against them.
    let (status, _) = acme.patch(
        &format!("/hooks/{}", hook["id"]),
        json!({"name": "renamed"}),
    );
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = acme.patch(
        &format!("/hooks/{}", hook["id"]),
        json!({"secrets_schema": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 5}}}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!answer.to_string().contains(SECRET), "{answer}");
    assert!(answer.to_string().contains("sent again"), "{answer}");
    let (status, answer) = acme.patch(
        &format!("/hooks/{}", hook["id"]),
        json!({"secrets_schema": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}}),
    );
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "accepting ones too: {answer}"
    );
    let (status, answer) = acme.patch(
        &format!("/hooks/{}", hook["id"]),
        json!({"secrets_schema": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 5}},
               "secrets": {"api_key": SECRET}}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(!answer.to_string().contains(SECRET), "{answer}");
    // With them, and they match: saved.
    let with_length =
        json!({"type": "object", "additionalProperties": {"type": "string", "minLength": 1}});
    let (status, answer) = acme.patch(
        &format!("/hooks/{}", hook["id"]),
        json!({"secrets_schema": with_length, "secrets": {"api_key": SECRET, "other": "x-other-secret"}}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A whole hook sent back without its secrets_schema (Rossum's SDK model has none)
    // keeps it, with the secrets.
    let (_, mut whole) = acme.get(&format!("/hooks/{}", hook["id"]));
    whole
        .as_object_mut()
        .map(|fields| fields.remove("secrets_schema"));
    let (status, answer) = acme.put(&format!("/hooks/{}", hook["id"]), whole);
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["secrets_schema"], with_length, "{answer}");
    let (status, tested) = acme.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    let (_, logs) = acme.get("/hooks/logs");
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(2));
    assert!(
        !logs.to_string().contains(SECRET),
        "a run log holds the secret"
    );
    drop(server);
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("the data directory") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            stored.extend(std::fs::read(&path).expect("readable"));
        }
    }
    assert!(!stored.is_empty());
    for value in [SECRET, "x-other-secret", "signing-secret-value"] {
        assert!(
            !stored
                .windows(value.len())
                .any(|window| window == value.as_bytes()),
            "`{value}` is stored in the clear"
        );
    }
}

#[test]
fn a_signed_invocation_needs_the_right_signature() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let hook = acme.hook(
        &hello,
        json!({"config": {"runtime": "wasm", "module": hello, "secret": "shared-secret"}}),
    );
    let unsigned = acme.hook(&hello, json!({}));
    let body = br#"{"source": "outside"}"#.to_vec();
    let call = |id: &Value, signature: Option<String>| {
        let mut request = server
            .client
            .post(server.url(&format!("/hooks/{id}/invoke")))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("X-Rossum-Signature-SHA256", signature);
        }
        let response = request.send().expect("answers");
        (
            response.status(),
            response.json::<Value>().unwrap_or(Value::Null),
        )
    };
    let (status, answer) = call(&hook["id"], Some(sign("shared-secret", &body)));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["messages"][0]["content"],
        "Hello, invocation.manual!"
    );
    assert_eq!(
        call(&hook["id"], Some(sign("wrong-secret", &body))).0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&hook["id"], Some("sha256=zz".into())).0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(&hook["id"], None).0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&unsigned["id"], Some(sign("shared-secret", &body))).0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&json!(999), Some(sign("shared-secret", &body))).0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn an_organization_cannot_see_or_call_anothers_hooks() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let rival = Tenant::new(&server, "rival");
    let hello = acme.upload(HELLO);
    let (_, queue) = acme.post("/queues", json!({"name": "q"}));
    let hook = acme.hook(&hello, json!({"queues": [queue["url"]]}));
    let (status, invoked) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::OK, "{invoked}");
    assert_eq!(
        invoked["messages"][0]["content"],
        "Hello, invocation.manual!"
    );
    let id = hook["id"].clone();
    // Its run is logged, for acme to see.
    let (_, logs) = acme.get(&format!("/hooks/logs?hook={id}"));
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(1), "{logs}");
    assert_eq!(logs["results"][0]["status"], "completed", "{logs}");
    for path in [
        format!("/hooks/{id}"),
        format!("/hooks/{id}/secrets_keys"),
        format!("/modules/{}", id_of(&hello)),
        format!("/queues/{}", queue["id"]),
    ] {
        assert_eq!(rival.get(&path).0, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        rival.test_call(&hook, initialize()).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(rival.invoke(&hook, json!({})).0, StatusCode::NOT_FOUND);
    assert_eq!(
        rival
            .patch(&format!("/hooks/{id}"), json!({"name": "mine"}))
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(rival.delete(&format!("/hooks/{id}")), StatusCode::NOT_FOUND);
    assert_eq!(
        rival.delete(&format!("/modules/{}", id_of(&hello))),
        StatusCode::NOT_FOUND
    );
    let (_, logs) = rival.get(&format!("/hooks/logs?hook={id}"));
    assert_eq!(logs["results"], json!([]));
    let (_, hooks) = rival.get("/hooks");
    assert_eq!(hooks["pagination"]["total"], 0);
    let (_, modules) = rival.get("/modules");
    assert_eq!(modules["pagination"]["total"], 0);
    let (_, queues) = rival.get("/queues");
    assert_eq!(queues["pagination"]["total"], 0);
    let (status, answer) = rival.post("/queues", json!({"name": "steal", "hooks": [hook["url"]]}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = rival.post("/events", json!({"event": "annotation_content", "action": "initialize", "queue": queue["url"], "payload": {}}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // Members read, test and invoke, but do not write.
    let (_, created) = server.post(
        "/users",
        Some(&acme.token),
        json!({"username": "acme-member", "password": "long enough"}),
    );
    assert_eq!(created["role"], "member");
    let member = server.login("acme-member", "long enough");
    assert_eq!(
        server.get(&format!("/hooks/{id}"), &member).0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .post(&format!("/hooks/{id}/invoke"), Some(&member), json!({}))
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .post("/queues", Some(&member), json!({"name": "x"}))
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .send(
                Method::PATCH,
                &format!("/hooks/{id}"),
                Some(&member),
                Some(json!({"name": "x"}))
            )
            .0,
        StatusCode::FORBIDDEN
    );
}

#[test]
fn an_event_runs_hooks_in_run_after_order_and_cancels_successors_of_a_failure() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hostile = acme.upload(HOSTILE);
    let (_, queue) = acme.post("/queues", json!({"name": "q"}));
    let (_, elsewhere) = acme.post("/queues", json!({"name": "elsewhere"}));
    let echo = |name: &str, operations: Value, run_after: Vec<Value>, queue: &Value| {
        acme.hook(
            &hostile,
            json!({"name": name, "queues": [queue["url"]], "run_after": run_after,
                   "settings": {"behavior": "echo", "operations": operations}}),
        )
    };
    let first = echo(
        "first",
        json!([{"op": "replace", "id": 2, "value": {"content": {"value": "12"}}}]),
        vec![],
        &queue,
    );
    let second = echo("second", json!([]), vec![first["url"].clone()], &queue);
    let failing = acme.hook(
        &hostile,
        // Not retried (retries are tested in webhooks.rs): one run log for this event.
        json!({"name": "failing", "queues": [queue["url"]], "run_after": [first["url"]], "settings": {"behavior": "panic"},
               "config": {"runtime": "wasm", "module": hostile, "timeout_s": 5, "retry_count": 0}}),
    );
    let after_failure = echo(
        "after failure",
        json!([]),
        vec![failing["url"].clone()],
        &queue,
    );
    let _other_queue = echo("other queue", json!([]), vec![], &elsewhere);
    let payload = json!({
        "annotation": {"id": 7, "content": [{"id": 1, "category": "section", "children": [
            {"id": 2, "category": "datapoint", "schema_id": "amount", "content": {"value": "10"}}
        ]}]},
        "updated_datapoints": [],
    });
    let (status, answer) = acme.post(
        "/events",
        json!({"event": "annotation_content", "action": "initialize", "queue": queue["url"], "payload": payload}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 4, "{answer}");
    let result = |hook: &Value| {
        results
            .iter()
            .find(|result| result["hook"] == hook["url"])
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(result(&first)["status"], "completed");
    assert_eq!(
        result(&first)["response"]["seen"]["content"][0]["children"][0]["content"]["value"],
        "10"
    );
    let seen = &result(&second)["response"]["seen"];
    assert_eq!(
        seen["content"][0]["children"][0]["content"]["value"], "12",
        "{answer}"
    );
    assert_eq!(seen["updated_datapoints"], json!([2]));
    assert_eq!(result(&failing)["status"], "failed");
    assert_eq!(result(&after_failure)["status"], "cancelled");
    assert_eq!(answer["operations"].as_array().map(Vec::len), Some(1));
    // Every hook that was considered has exactly one run log; the cancelled one a warning.
    let (_, logs) = acme.get("/hooks/logs");
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(4), "{logs}");
    let (_, cancelled) = acme.get("/hooks/logs?status=cancelled&log_level=WARNING");
    assert_eq!(cancelled["results"][0]["hook_id"], after_failure["id"]);
    assert_eq!(cancelled["results"][0]["queue_id"], queue["id"]);
}

#[test]
fn a_busy_organization_gets_429_and_does_not_slow_another() {
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_RUNS_PER_ORGANIZATION", "1")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let other = Tenant::new(&server, "other");
    let hostile = acme.upload(HOSTILE);
    let sleeper = acme.hook(
        &hostile,
        json!({"settings": {"behavior": "spin", "ms": 3000}}),
    );
    let hello = other.upload(HELLO);
    let greeter = other.hook(&hello, json!({}));
    let acme_id = acme.organization_id();
    std::thread::scope(|scope| {
        let busy = scope.spawn(|| acme.invoke(&sleeper, json!({})));
        // The sleeper holds acme's one run once it is in flight.
        assert!(
            wait_until(Instant::now() + Duration::from_secs(10), || {
                server.runs_in_flight(acme_id) >= 1.0
            }),
            "the sleeper never ran"
        );
        let response = server
            .client
            .post(server.url(&format!("/hooks/{}/invoke", sleeper["id"])))
            .bearer_auth(&acme.token)
            .json(&json!({}))
            .send()
            .expect("answers");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let refusal: Value = response.json().expect("a JSON answer");
        assert_eq!(
            refusal["detail"],
            "the organization has 1 runs in progress, its limit; retry shortly"
        );
        let (status, answer) = other.invoke(&greeter, json!({}));
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (status, answer) = busy.join().expect("no panic");
        assert_eq!(status, StatusCode::OK, "{answer}");
    });
}

/// A module of many large functions that takes a while to compile and then fails to load: it looks like a WASI
/// command (so the precheck lets it through) but imports `fd_write` with the wrong type.
fn slow_module() -> Vec<u8> {
    let mut text = String::from(
        "(module\n(import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32)))\n\
         (func (export \"_start\"))\n",
    );
    for index in 0..4000 {
        text.push_str(&format!(
            "(func $f{index} (param i32) (result i32) local.get 0\n"
        ));
        for step in 0..60 {
            text.push_str(&format!("i32.const {step} i32.add i32.const 3 i32.mul\n"));
        }
        text.push_str(")\n");
    }
    text.push(')');
    wat::parse_str(&text).expect("valid text")
}

#[test]
fn a_large_module_compiles_in_the_background_while_its_hook_is_pending() {
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        // Cranelift's compile, the slow one this test needs: Winch's (tiers, the
        // default) compiles the slow module fast enough that hello was at times ready
        // before its hook was made.
        &[
            ("WASMHOOK_FOREGROUND_COMPILE_BYTES", "0"),
            ("WASMHOOK_TIERED_COMPILE", "false"),
        ],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    // Compiles are one at a time: hello waits behind the slow one.
    let (status, slow) = acme.upload_bytes(slow_module(), "slow.wasm");
    assert_eq!(status, StatusCode::ACCEPTED, "{slow}");
    let (status, module) = acme.upload_bytes(std::fs::read(HELLO).expect("built"), "hello.wasm");
    assert_eq!(status, StatusCode::ACCEPTED, "{module}");
    assert_eq!(module["status"], "pending");
    let url = module["url"].as_str().expect("a URL").to_owned();
    let hook = acme.hook(&url, json!({}));
    assert_eq!(hook["status"], "pending");
    let pending = "The hook's module is still being compiled (status: pending); \
                   retry in a few seconds.";
    let (status, answer) = acme.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["detail"], pending);
    let (status, answer) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer, field_error("non_field_errors", pending));
    let mut ready = Value::Null;
    let compiled = wait_until(Instant::now() + Duration::from_secs(120), || {
        let (status, shown) = acme.get(&format!("/hooks/{}", hook["id"]));
        assert_eq!(status, StatusCode::OK, "{shown}");
        ready = shown;
        ready["status"] != "pending"
    });
    assert!(compiled, "still pending: {ready}");
    assert_eq!(ready["status"], "ready");
    let (status, tested) = acme.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    assert_eq!(
        tested["response"]["messages"][0]["content"],
        "Hello, annotation_content.initialize!"
    );
    let (_, slow) = acme.get(&format!("/modules/{}", slow["id"]));
    assert_eq!(slow["status"], "failed");
    assert!(
        slow["error"].as_str().unwrap_or("").contains("fd_write"),
        "{slow}"
    );
}

#[test]
fn a_restart_keeps_modules_hooks_and_logs_without_recompiling() {
    let dir = temp();
    let hook;
    let artifacts_before;
    {
        let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
        let acme = Tenant::new(&server, "acme");
        let hello = acme.upload(HELLO);
        hook = acme.hook(&hello, json!({"secrets": {"k": "v"}}));
        assert_eq!(acme.invoke(&hook, json!({})).0, StatusCode::OK);
        artifacts_before = artifacts(dir.path());
        assert_eq!(artifacts_before.len(), 1);
    }
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let token = server.login("acme-admin", "long enough");
    let (_, again) = server.get(&format!("/hooks/{}", hook["id"]), &token);
    assert_eq!(again["status"], "ready");
    let (status, answer) = server.post(
        &format!("/hooks/{}/invoke", hook["id"]),
        Some(&token),
        json!({}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, logs) = server.get("/hooks/logs", &token);
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        artifacts(dir.path()),
        artifacts_before,
        "the module was recompiled"
    );
    let (_, keys) = server.get(&format!("/hooks/{}/secrets_keys", hook["id"]), &token);
    assert_eq!(keys, json!(["k"]));
}

#[test]
fn the_demo_is_ready_to_call_and_created_once() {
    let dir = temp();
    // A module that is not an extension: refused before anything is created, so the next
    // start still creates (and shows the password of) the demo admin.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--demo", "--demo-module", OTHER_WORLD])
        .output()
        .expect("the binary runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("was refused"), "{stderr}");
    assert!(!stderr.contains("demo-admin"), "{stderr}");
    let args = ["--demo", "--demo-module", HELLO];
    let curl_line = |server: &Server| {
        server
            .banner
            .lines()
            .find(|line| line.contains("curl"))
            .map(str::to_owned)
            .expect("the demo prints a curl line")
    };
    let first = {
        let server = Server::start_with(dir.path(), None, &[], &args);
        assert!(server.banner.contains("demo-admin"), "{}", server.banner);
        let line = curl_line(&server);
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http"))
            .expect("a URL")
            .to_owned();
        let token = line
            .split("Bearer ")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("a token")
            .to_owned();
        let response = server
            .client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({"note": "hi"}))
            .send()
            .expect("answers");
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().expect("JSON");
        assert_eq!(
            answer["messages"][0]["content"],
            "Hello, invocation.manual!"
        );
        // The port changes between starts; the hook's path must not.
        url.split("/api/v1").nth(1).expect("an API path").to_owned()
    };
    let server = Server::start_with(dir.path(), None, &[], &args);
    assert!(
        !server.banner.contains("password"),
        "the password is shown once"
    );
    let line = curl_line(&server);
    assert!(
        line.contains(&first),
        "the demo hook was created again: {line}"
    );
}

#[test]
fn old_run_logs_are_deleted_after_the_retention() {
    let dir = temp();
    // Two runs' logs; one of them is then made older than a retention of one day.
    let (old, recent) = {
        let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
        let acme = Tenant::new(&server, "acme");
        let hello = acme.upload(HELLO);
        let hook = acme.hook(&hello, json!({}));
        for _ in 0..2 {
            let (status, answer) = acme.invoke(&hook, json!({}));
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
        let (_, logs) = acme.get("/hooks/logs");
        let uuids: Vec<String> = logs["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|log| log["uuid"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(uuids.len(), 2, "{logs}");
        (uuids[0].clone(), uuids[1].clone())
    };
    assert!(
        old.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
        "{old}"
    );
    let moved = execute_in_database(
        dir.path(),
        &format!("UPDATE run_logs SET start = '2000-01-01T00:00:00.000000Z' WHERE uuid = '{old}'"),
    );
    assert_eq!(moved, 1);

    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_LOG_RETENTION_DAYS", "1")],
        &[],
    );
    let token = server.login("acme-admin", "long enough");
    let logged = || -> Vec<String> {
        let (status, logs) = server.get("/hooks/logs", &token);
        assert_eq!(status, StatusCode::OK, "{logs}");
        logs["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|log| log["uuid"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        wait_until(Instant::now() + Duration::from_secs(10), || !logged()
            .contains(&old)),
        "the old log is still there: {:?}",
        logged()
    );
    // The old one only: the recent one is within the retention and stays.
    assert_eq!(logged(), [recent]);
}

#[test]
fn queues_are_created_changed_listed_and_deleted() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let (status, queue) = acme.post("/queues", json!({"name": "Invoices"}));
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    let b = acme.hook(&hello, json!({"name": "b"}));
    let a = acme.hook(&hello, json!({"name": "a"}));
    let path = format!("/queues/{}", queue["id"]);
    let (status, patched) = acme.patch(
        &path,
        json!({"hooks": [a["url"], b["url"]], "metadata": {"k": 1}}),
    );
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Invoices");
    assert_eq!(patched["metadata"], json!({"k": 1}));
    let (_, hook) = acme.get(&format!("/hooks/{}", a["id"]));
    assert_eq!(hook["queues"], json!([queue["url"]]));
    let (status, put) = acme.put(&path, json!({"name": "Receipts", "hooks": []}));
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["hooks"], json!([]));
    let (status, answer) = acme.patch(&path, json!({"name": ""}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = acme.patch(&path, json!({"metadata": {"big": "x".repeat(5000)}}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // Hooks list with Rossum's filters and ordering.
    let (_, by_name) = acme.get("/hooks?ordering=-name");
    let names: Vec<&str> = by_name["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(names, ["b", "a"]);
    let (_, filtered) = acme.get("/hooks?events=invocation.manual&active=true&type=function");
    assert_eq!(filtered["pagination"]["total"], 2);
    let (status, _) = acme.get("/hooks?ordering=colour");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    acme.post("/queues", json!({"name": "Archive"}));
    acme.post("/queues", json!({"name": "Zeta"}));
    let (_, ordered) = acme.get("/queues?ordering=-name&page_size=2");
    assert_eq!(ordered["results"][0]["name"], "Zeta");
    assert_eq!(ordered["results"][1]["name"], "Receipts");
    assert!(
        ordered["pagination"]["next"]
            .as_str()
            .unwrap_or("")
            .ends_with("&ordering=-name"),
        "{ordered}"
    );
    assert_eq!(
        acme.get("/queues?ordering=secret").0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(acme.delete(&path), StatusCode::NO_CONTENT);
    assert_eq!(acme.get(&path).0, StatusCode::NOT_FOUND);
}

#[test]
fn an_organization_cannot_store_more_modules_than_its_quota() {
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_MODULES_PER_ORGANIZATION", "1")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    acme.upload(HELLO);
    let (status, answer) =
        acme.upload_bytes(std::fs::read(INVOICE_CHECK).expect("built"), "second.wasm");
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        answer["detail"],
        "the organization has 1 modules, its limit; delete one first"
    );
    let (_, modules) = acme.get("/modules");
    assert_eq!(
        modules["pagination"]["total"], 1,
        "a refused module was stored"
    );
    // Another organization has its own quota.
    let other = Tenant::new(&server, "other");
    let (status, answer) = other.upload_bytes(std::fs::read(HELLO).expect("built"), "hello.wasm");
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[test]
fn another_organization_cannot_replace_a_hook_and_put_cannot_move_one_to_it() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let rival = Tenant::new(&server, "rival");
    let acme_module = acme.upload(HELLO);
    let rival_module = rival.upload(HELLO);
    let hook = acme.hook(&acme_module, json!({"name": "acme's"}));
    let path = format!("/hooks/{}", hook["id"]);
    let (status, before) = acme.get(&path);
    assert_eq!(status, StatusCode::OK, "{before}");

    // Another organization's PUT is answered as its GET is, whatever it sends.
    for body in [
        json!({"name": "taken", "events": ["invocation.manual"],
               "config": {"runtime": "wasm", "module": rival_module}}),
        before.clone(),
    ] {
        let (status, answer) = rival.put(&path, body);
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(answer, json!({"detail": "Not found."}));
    }
    let (status, after) = acme.get(&path);
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after, before, "a refused PUT changed the hook");
    let (_, listed) = rival.get("/hooks");
    assert_eq!(listed["pagination"]["total"], 0, "{listed}");

    // A PUT naming another organization is the organization's own hook still.
    let acme_organization = acme.organization_url();
    assert_eq!(before["organization"], acme_organization);
    let mut moved = before;
    moved["organization"] = json!(rival.organization_url());
    moved["name"] = json!("renamed");
    let (status, written) = acme.put(&path, moved);
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["name"], "renamed");
    assert_eq!(written["organization"], acme_organization);
    assert_eq!(rival.get(&path).0, StatusCode::NOT_FOUND);
    let (_, listed) = rival.get("/hooks");
    assert_eq!(listed["pagination"]["total"], 0, "{listed}");
    let (status, invoked) = acme.invoke(&written, json!({}));
    assert_eq!(status, StatusCode::OK, "{invoked}");

    // Nor may a PUT name another organization's module.
    let mut foreign = written.clone();
    foreign["config"]["module"] = json!(rival_module);
    let (status, refused) = acme.put(&path, foreign);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        message_at(&refused, "config.module"),
        Some(format!("no module {} in this organization", id_of(&rival_module)).as_str()),
        "{refused}"
    );
    let (_, unchanged) = acme.get(&path);
    assert_eq!(unchanged, written, "a refused PUT changed the hook");
}

#[test]
fn run_after_and_queues_naming_another_organizations_objects_are_refused() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let rival = Tenant::new(&server, "rival");
    let acme_module = acme.upload(HELLO);
    let (status, acme_queue) = acme.post("/queues", json!({"name": "acme's"}));
    assert_eq!(status, StatusCode::CREATED, "{acme_queue}");
    let hook = acme.hook(&acme_module, json!({"queues": [acme_queue["url"]]}));
    let rival_module = rival.upload(HELLO);
    let (status, rival_queue) = rival.post("/queues", json!({"name": "rival's"}));
    assert_eq!(status, StatusCode::CREATED, "{rival_queue}");
    let rival_hook = rival.hook(&rival_module, json!({}));

    let path = format!("/hooks/{}", hook["id"]);
    let acme_queue_path = format!("/queues/{}", acme_queue["id"]);
    let rival_queue_path = format!("/queues/{}", rival_queue["id"]);
    let rival_hook_path = format!("/hooks/{}", rival_hook["id"]);
    let (_, before) = acme.get(&path);
    let (_, acme_queue_before) = acme.get(&acme_queue_path);
    let (_, rival_queue_before) = rival.get(&rival_queue_path);
    let (_, rival_hook_before) = rival.get(&rival_hook_path);

    let foreign_hook = field_error(
        "run_after",
        &format!("no hook {} in this organization", rival_hook["id"]),
    );
    let foreign_queue = field_error(
        "queues",
        &format!("no queue {} in this organization", rival_queue["id"]),
    );
    // A new hook, and the stored one as a PUT sends it, with `changes` laid over.
    let new_hook = |changes: Value| {
        let mut body = json!({"name": "new", "events": ["invocation.manual"],
                              "config": {"runtime": "wasm", "module": acme_module}});
        if let (Some(body), Value::Object(changes)) = (body.as_object_mut(), changes) {
            body.extend(changes);
        }
        body
    };
    let whole = |changes: Value| {
        let mut body = before.clone();
        if let (Some(body), Value::Object(changes)) = (body.as_object_mut(), changes) {
            body.extend(changes);
        }
        body
    };
    let refusals = [
        (
            "POST run_after",
            acme.post(
                "/hooks",
                new_hook(json!({"run_after": [rival_hook["url"]]})),
            ),
            &foreign_hook,
        ),
        (
            "POST queues",
            acme.post("/hooks", new_hook(json!({"queues": [rival_queue["url"]]}))),
            &foreign_queue,
        ),
        (
            "PATCH run_after",
            acme.patch(&path, json!({"run_after": [rival_hook["url"]]})),
            &foreign_hook,
        ),
        (
            "PATCH queues",
            acme.patch(
                &path,
                json!({"queues": [acme_queue["url"], rival_queue["url"]]}),
            ),
            &foreign_queue,
        ),
        (
            "PUT run_after",
            acme.put(&path, whole(json!({"run_after": [rival_hook["url"]]}))),
            &foreign_hook,
        ),
        (
            "PUT queues",
            acme.put(&path, whole(json!({"queues": [rival_queue["url"]]}))),
            &foreign_queue,
        ),
    ];
    for (what, (status, answer), detail) in refusals {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(answer, *detail, "{what}");
    }
    // A queue cannot take the other organization's hook either.
    let (status, answer) = acme.patch(
        &acme_queue_path,
        json!({"hooks": [hook["url"], rival_hook["url"]]}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error(
            "hooks",
            &format!("no hook {} in this organization", rival_hook["id"])
        )
    );

    // Nothing was written, on either side.
    assert_eq!(
        acme.get(&path).1,
        before,
        "a refused write changed the hook"
    );
    let (_, hooks) = acme.get("/hooks");
    assert_eq!(hooks["pagination"]["total"], 1, "{hooks}");
    assert_eq!(acme.get(&acme_queue_path).1, acme_queue_before);
    assert_eq!(rival.get(&rival_queue_path).1, rival_queue_before);
    assert_eq!(rival.get(&rival_hook_path).1, rival_hook_before);
}

#[test]
fn a_hooks_queues_decide_which_events_run_it_and_a_deleted_queue_runs_nothing() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let (status, first) = acme.post("/queues", json!({"name": "first"}));
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = acme.post("/queues", json!({"name": "second"}));
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let hook = acme.hook(&hello, json!({"queues": [first["url"]]}));
    let path = format!("/hooks/{}", hook["id"]);
    let payload = || json!({"annotation": {"id": 1, "content": []}});
    // The hooks an event on `queue` ran, each completed.
    let ran_on = |queue: &Value| -> Vec<Value> {
        let (status, answer) = acme.event(
            "annotation_content",
            "initialize",
            Some(&queue["url"]),
            payload(),
        );
        assert_eq!(status, StatusCode::OK, "{answer}");
        let results = answer["results"].as_array().cloned().unwrap_or_default();
        for result in &results {
            assert_eq!(result["status"], "completed", "{answer}");
        }
        results
            .iter()
            .map(|result| result["hook"].clone())
            .collect()
    };
    let only_the_hook = [hook["url"].clone()];
    let hooks_of = |queue: &Value| -> Value {
        let (status, shown) = acme.get(&format!("/queues/{}", queue["id"]));
        assert_eq!(status, StatusCode::OK, "{shown}");
        shown["hooks"].clone()
    };
    assert_eq!(ran_on(&first), only_the_hook);
    assert!(ran_on(&second).is_empty());

    // PATCH moves it to the second queue: the first no longer runs it.
    let (status, patched) = acme.patch(&path, json!({"queues": [second["url"]]}));
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["queues"], json!([second["url"]]));
    assert!(
        ran_on(&first).is_empty(),
        "the old queue still runs the hook"
    );
    assert_eq!(ran_on(&second), only_the_hook);
    assert_eq!(hooks_of(&first), json!([]));
    assert_eq!(hooks_of(&second), json!([hook["url"]]));

    // PUT moves it back.
    let mut whole = patched;
    whole["queues"] = json!([first["url"]]);
    let (status, replaced) = acme.put(&path, whole);
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["queues"], json!([first["url"]]));
    assert_eq!(ran_on(&first), only_the_hook);
    assert!(
        ran_on(&second).is_empty(),
        "the old queue still runs the hook"
    );
    assert_eq!(hooks_of(&first), json!([hook["url"]]));
    assert_eq!(hooks_of(&second), json!([]));

    // One run log per run, on the queue of its event (oldest first).
    let mut logged = acme.run_logs(&hook);
    logged.reverse();
    let queues: Vec<&Value> = logged.iter().map(|log| &log["queue_id"]).collect();
    assert_eq!(queues, [&first["id"], &second["id"], &first["id"]]);

    // A deleted queue leaves the hook, and an event naming it is refused: nothing runs.
    assert_eq!(
        acme.delete(&format!("/queues/{}", first["id"])),
        StatusCode::NO_CONTENT
    );
    let (_, shown) = acme.get(&path);
    assert_eq!(shown["queues"], json!([]), "{shown}");
    let (_, listed) = acme.get(&format!("/hooks?queue={}", first["id"]));
    assert_eq!(listed["pagination"]["total"], 0, "{listed}");
    let (status, answer) = acme.event(
        "annotation_content",
        "initialize",
        Some(&first["url"]),
        payload(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error(
            "queue",
            &format!("no queue {} in this organization", first["id"])
        )
    );
    assert!(ran_on(&second).is_empty());
    assert_eq!(acme.run_logs(&hook).len(), 3, "the hook ran again");
}

#[test]
fn run_logs_are_the_callers_organizations_and_a_request_id_names_exactly_its_runs() {
    const SHARED: &str = "shared-request-1";
    const ACME_ONLY: &str = "acme-request-2";
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let rival = Tenant::new(&server, "rival");
    let hello = acme.upload(HELLO);
    let first = acme.hook(&hello, json!({"name": "first"}));
    let second = acme.hook(&hello, json!({"name": "second"}));
    let rival_hook = rival.hook(&rival.upload(HELLO), json!({}));
    let (acme_id, rival_id) = (acme.organization_id(), rival.organization_id());
    let id = |hook: &Value| hook["id"].as_u64().expect("an id");

    // An event running both of acme's hooks, an invocation of one of them, and the
    // rival's invocation under the same request id as acme's event.
    let (status, answer) = acme.post_with_request_id(
        "/events",
        SHARED,
        &json!({"event": "annotation_content", "action": "initialize",
                "payload": {"annotation": {"id": 1, "content": []}}}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["results"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );
    let (status, answer) = acme.post_with_request_id(
        &format!("/hooks/{}/invoke", first["id"]),
        ACME_ONLY,
        &json!({}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = rival.post_with_request_id(
        &format!("/hooks/{}/invoke", rival_hook["id"]),
        SHARED,
        &json!({}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");

    // The runs a token's `/hooks/logs?{query}` lists: (organization, hook, request id),
    // sorted.
    let runs = |token: &str, query: &str| -> Vec<(u64, u64, String)> {
        let (status, logs) = server.get(&format!("/hooks/logs{query}"), token);
        assert_eq!(status, StatusCode::OK, "{logs}");
        let mut runs: Vec<(u64, u64, String)> = logs["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|log| {
                (
                    log["organization_id"].as_u64().expect("an organization"),
                    log["hook_id"].as_u64().expect("a hook"),
                    log["request_id"].as_str().expect("a request id").to_owned(),
                )
            })
            .collect();
        runs.sort();
        runs
    };
    let run = |organization: u64, hook: &Value, request_id: &str| {
        (organization, id(hook), request_id.to_owned())
    };
    let mut acme_runs = vec![
        run(acme_id, &first, SHARED),
        run(acme_id, &second, SHARED),
        run(acme_id, &first, ACME_ONLY),
    ];
    acme_runs.sort();
    let rival_run = run(rival_id, &rival_hook, SHARED);

    // Without a filter: the organization's own runs, never the other's.
    assert_eq!(runs(&acme.token, ""), acme_runs);
    assert_eq!(runs(&rival.token, ""), std::slice::from_ref(&rival_run));
    // By request id: exactly the runs of that call, of the caller's organization.
    let mut shared_runs = vec![run(acme_id, &first, SHARED), run(acme_id, &second, SHARED)];
    shared_runs.sort();
    assert_eq!(
        runs(&acme.token, &format!("?request_id={SHARED}")),
        shared_runs
    );
    assert_eq!(
        runs(&acme.token, &format!("?request_id={ACME_ONLY}")),
        [run(acme_id, &first, ACME_ONLY)]
    );
    assert_eq!(
        runs(&rival.token, &format!("?request_id={SHARED}")),
        std::slice::from_ref(&rival_run)
    );
    assert!(runs(&rival.token, &format!("?request_id={ACME_ONLY}")).is_empty());
    assert!(runs(&acme.token, "?request_id=no-such-request").is_empty());
    // The operator sees every organization's.
    let mut everyone = shared_runs;
    everyone.push(rival_run);
    everyone.sort();
    assert_eq!(
        runs(OPERATOR_TOKEN, &format!("?request_id={SHARED}")),
        everyone
    );
}

#[test]
fn deleting_a_module_leaves_another_organizations_copy_of_the_same_bytes_running() {
    let dir = temp();
    let hook;
    let rival_module;
    let bytes;
    {
        let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
        let acme = Tenant::new(&server, "acme");
        let rival = Tenant::new(&server, "rival");
        let acme_module = acme.upload(HELLO);
        rival_module = rival.upload(HELLO);
        assert_ne!(acme_module, rival_module);
        let (_, acme_shown) = acme.get(&format!("/modules/{}", id_of(&acme_module)));
        let (_, rival_shown) = rival.get(&format!("/modules/{}", id_of(&rival_module)));
        assert_eq!(
            acme_shown["sha256"], rival_shown["sha256"],
            "the same bytes"
        );
        let sha256 = rival_shown["sha256"].as_str().expect("a digest");
        bytes = dir.path().join("modules").join(format!("{sha256}.wasm"));
        assert!(bytes.exists(), "no file at {}", bytes.display());
        hook = rival.hook(&rival_module, json!({}));

        // Acme runs its own copy, then deletes its hook and its module.
        let acme_hook = acme.hook(&acme_module, json!({}));
        let (status, invoked) = acme.invoke(&acme_hook, json!({}));
        assert_eq!(status, StatusCode::OK, "{invoked}");
        assert_eq!(acme.delete_hook(&acme_hook), StatusCode::NO_CONTENT);
        assert_eq!(
            acme.delete(&format!("/modules/{}", id_of(&acme_module))),
            StatusCode::NO_CONTENT
        );

        let (status, invoked) = rival.invoke(&hook, json!({}));
        assert_eq!(status, StatusCode::OK, "{invoked}");
        assert_eq!(
            invoked["messages"][0]["content"],
            "Hello, invocation.manual!"
        );
        let (status, shown) = rival.get(&format!("/modules/{}", id_of(&rival_module)));
        assert_eq!(status, StatusCode::OK, "{shown}");
        assert_eq!(shown["status"], "ready", "{shown}");
        assert!(
            bytes.exists(),
            "the shared bytes were deleted with acme's copy"
        );
    }

    // Restarted without its compiled code, the rival's module is compiled again from the
    // bytes, and its hook runs.
    for entry in std::fs::read_dir(dir.path().join("artifacts")).expect("the compiled code") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            std::fs::remove_file(&path).expect("removed");
        }
    }
    assert!(artifacts(dir.path()).is_empty(), "compiled code is left");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let rival = Tenant {
        server: &server,
        token: server.login("rival-admin", "long enough"),
    };
    let mut last = (StatusCode::OK, Value::Null);
    let settled = wait_until(Instant::now() + Duration::from_secs(120), || {
        last = rival.invoke(&hook, json!({}));
        let pending = field_message(&last.1, "non_field_errors")
            .is_some_and(|message| message.contains("pending"));
        !pending
    });
    assert!(settled, "still compiling: {last:?}");
    assert_eq!(last.0, StatusCode::OK, "{:?}", last.1);
    assert_eq!(
        last.1["messages"][0]["content"],
        "Hello, invocation.manual!"
    );

    // The last copy takes its bytes with it.
    assert_eq!(rival.delete_hook(&hook), StatusCode::NO_CONTENT);
    assert_eq!(
        rival.delete(&format!("/modules/{}", id_of(&rival_module))),
        StatusCode::NO_CONTENT
    );
    assert!(!bytes.exists(), "the last copy's bytes stayed");
}

#[test]
fn an_organization_cannot_store_more_module_bytes_than_its_quota() {
    let hello = std::fs::read(HELLO).expect("built");
    let invoice = std::fs::read(INVOICE_CHECK).expect("built");
    // Room for hello, exactly.
    let quota = hello.len() as u64;
    let quota_setting = quota.to_string();
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[(
            "WASMHOOK_MODULE_BYTES_PER_ORGANIZATION",
            quota_setting.as_str(),
        )],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let (status, stored) = acme.upload_bytes(hello.clone(), "hello.wasm");
    assert_eq!(status, StatusCode::CREATED, "up to the quota: {stored}");

    let (status, refused) = acme.upload_bytes(invoice.clone(), "invoice.wasm");
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(
        refused["detail"],
        format!(
            "the organization's modules would take {} bytes, over its limit of {quota}",
            quota + invoice.len() as u64
        )
    );
    // Nothing of it was stored.
    let (_, modules) = acme.get("/modules");
    assert_eq!(modules["pagination"]["total"], 1, "{modules}");
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&invoice));
    assert!(
        !dir.path()
            .join("modules")
            .join(format!("{digest}.wasm"))
            .exists(),
        "the refused module's bytes were written"
    );

    // Another organization has a quota of its own.
    let rival = Tenant::new(&server, "rival");
    let (status, answer) = rival.upload_bytes(hello.clone(), "hello.wasm");
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // A deleted module's bytes no longer count.
    assert_eq!(
        acme.delete(&format!("/modules/{}", stored["id"])),
        StatusCode::NO_CONTENT
    );
    let (status, answer) = acme.upload_bytes(hello, "again.wasm");
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[test]
fn a_graceful_stop_finishes_the_run_in_flight_and_writes_its_log() {
    let dir = temp();
    let hook;
    {
        let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
        let acme = Tenant::new(&server, "acme");
        let hostile = acme.upload(HOSTILE);
        hook = acme.hook(
            &hostile,
            json!({"settings": {"behavior": "spin", "ms": 1500}}),
        );
        let acme_id = acme.organization_id();
        std::thread::scope(|scope| {
            let call = scope.spawn(|| acme.invoke(&hook, json!({})));
            // Stopped once the run is in flight.
            assert!(
                wait_until(Instant::now() + Duration::from_secs(10), || {
                    server.runs_in_flight(acme_id) >= 1.0
                }),
                "the run never started"
            );
            server.terminate();
            let (status, answer) = call.join().expect("no panic");
            assert_eq!(status, StatusCode::OK, "{answer}");
        });
    }
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let token = server.login("acme-admin", "long enough");
    let (_, logs) = server.get(&format!("/hooks/logs?hook={}", hook["id"]), &token);
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(1), "{logs}");
    assert_eq!(logs["results"][0]["status"], "completed");
}

/// Sets a file's modification time to `age` ago.
fn age(path: &std::path::Path, age: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(std::time::SystemTime::now() - age))
        .expect("aged");
}

/// Creates a file in the artifact directory, modified `age` ago.
fn plant(data_dir: &std::path::Path, name: &str, modified: Duration) {
    let path = data_dir.join("artifacts").join(name);
    std::fs::write(&path, b"not code").expect("planted");
    age(&path, modified);
}

#[test]
fn the_artifacts_no_module_needs_are_swept_and_those_of_live_modules_kept() {
    let dir = temp();
    let kept;
    let doomed;
    let fingerprint;
    {
        let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
        let acme = Tenant::new(&server, "acme");
        let doomed_module = acme.upload(HELLO);
        let kept_module = acme.upload(INVOICE_CHECK);
        // Both optimized in the background (tiers are on by default): their artifacts are
        // the optimized ones from here on.
        let optimized = wait_until(Instant::now() + Duration::from_secs(120), || {
            server
                .metrics()
                .get("wasmhook_modules_optimized_total")
                .copied()
                >= Some(2.0)
        });
        assert!(optimized, "never optimized: {}", server.log());
        let sha_of = |module: &str| {
            let (_, shown) = acme.get(&format!("/modules/{}", id_of(module)));
            shown["sha256"].as_str().expect("a digest").to_owned()
        };
        let (doomed_sha, kept_sha) = (sha_of(&doomed_module), sha_of(&kept_module));
        let names = artifact_names(dir.path());
        let artifact_of = |sha: &str| {
            names
                .iter()
                .find(|name| name.starts_with(sha))
                .cloned()
                .unwrap_or_else(|| panic!("no artifact of {sha}: {names:?}"))
        };
        (doomed, kept) = (artifact_of(&doomed_sha), artifact_of(&kept_sha));
        fingerprint = kept
            .strip_prefix(&format!("{kept_sha}-"))
            .and_then(|rest| rest.strip_suffix(".cwasm"))
            .expect("named digest-fingerprint.cwasm")
            .to_owned();
        assert_eq!(
            acme.delete(&format!("/modules/{}", id_of(&doomed_module))),
            StatusCode::NO_CONTENT
        );
    }

    // An hour later, as far as the files can tell: the sweep keeps nothing for its youth
    // but what this test plants young.
    let hour = Duration::from_secs(3600);
    for name in [&doomed, &kept] {
        age(&dir.path().join("artifacts").join(name), hour);
    }
    // What the server would never load, left while it was down: code of bytes no module
    // holds, of another engine, of the quick tier an older version had, and a write that
    // never finished. Younger files may be a compile's under way, and files that are not
    // artifacts are not the cache's.
    let orphan = format!("{}-{fingerprint}.cwasm", "ab".repeat(32));
    let young_orphan = format!("{}-{fingerprint}.cwasm", "cd".repeat(32));
    let kept_sha = kept.split('-').next().expect("a digest");
    let older_engine = format!("{kept_sha}-0123456789abcdef.cwasm");
    let retired_tier = format!("{kept_sha}-{fingerprint}-none.cwasm");
    let unfinished = format!(".{kept_sha}-1234.0123.tmp");
    for name in [&orphan, &older_engine, &retired_tier, &unfinished] {
        plant(dir.path(), name, hour);
    }
    plant(dir.path(), &young_orphan, Duration::ZERO);
    plant(dir.path(), "notes.txt", hour);

    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let unwanted = [&doomed, &orphan, &older_engine, &retired_tier, &unfinished];
    let swept = wait_until(Instant::now() + Duration::from_secs(30), || {
        let names = artifact_names(dir.path());
        !unwanted.iter().any(|name| names.contains(name))
    });
    let names = artifact_names(dir.path());
    assert!(swept, "left after a restart: {names:?}\n{}", server.log());
    for name in [&kept, &young_orphan] {
        assert!(names.contains(name), "{name} was swept: {names:?}");
    }
    assert!(names.iter().any(|name| name == "notes.txt"), "{names:?}");
    // And said, once the sweep is over.
    let said = wait_until(Instant::now() + Duration::from_secs(10), || {
        format!("{}{}", server.banner, server.log())
            .contains("removed compiled artifacts no module needs")
    });
    assert!(said, "{}{}", server.banner, server.log());
}

#[test]
fn module_files_no_row_holds_are_swept_on_sqlite_and_those_of_live_modules_kept() {
    let dir = temp();
    let modules = dir.path().join("modules");
    let (hook, live, template_held) = {
        let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
        let acme = Tenant::new(&server, "acme");
        let module = acme.upload(HELLO);
        let hook = acme.hook(&module, json!({}));
        let (_, shown) = acme.get(&format!("/modules/{}", id_of(&module)));
        let sha = shown["sha256"].as_str().expect("a digest").to_owned();
        // Bytes only a template holds: no module row has them.
        let fields = json!({
            "name": "Checker",
            "events": ["invocation.manual"],
            "config": {"runtime": "wasm"},
        });
        let (status, template) =
            register_template(&server, OPERATOR_TOKEN, &fields, Some(INVOICE_CHECK));
        assert_eq!(status, StatusCode::CREATED, "{template}");
        let template_sha = template["module"]["sha256"].as_str().expect("a digest");
        (hook, format!("{sha}.wasm"), format!("{template_sha}.wasm"))
    };

    // An hour later, as far as the files can tell. Left while the server was down: the
    // file of bytes no row holds (a create that failed after writing it, a deletion whose
    // client hung up before the file went) and a write a crash cut short. A younger file
    // may be an upload's whose row is not committed yet, and a file that is not a
    // module's is not the library's.
    let hour = Duration::from_secs(3600);
    let orphan = format!("{}.wasm", "ab".repeat(32));
    let young_orphan = format!("{}.wasm", "cd".repeat(32));
    let unfinished = live.replace(".wasm", ".tmp-0123");
    age(&modules.join(&live), hour);
    age(&modules.join(&template_held), hour);
    for (name, modified) in [
        (&orphan, hour),
        (&unfinished, hour),
        (&young_orphan, Duration::ZERO),
        (&"notes.txt".to_owned(), hour),
    ] {
        let path = modules.join(name);
        std::fs::write(&path, b"not a module").expect("planted");
        age(&path, modified);
    }

    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let names = || -> Vec<String> {
        std::fs::read_dir(&modules)
            .expect("the module directory")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect()
    };
    let swept = wait_until(Instant::now() + Duration::from_secs(30), || {
        let names = names();
        !names.contains(&orphan) && !names.contains(&unfinished)
    });
    assert!(
        swept,
        "left after a restart: {:?}\n{}",
        names(),
        server.log()
    );
    for name in [
        &live,
        &template_held,
        &young_orphan,
        &"notes.txt".to_owned(),
    ] {
        assert!(names().contains(name), "{name} was swept: {:?}", names());
    }
    // The live module still runs (from its artifact: the file's presence is the check
    // above).
    let token = server.login("acme-admin", "long enough");
    let (status, answer) = server.post(
        &format!("/hooks/{}/invoke", hook["id"]),
        Some(&token),
        json!({}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}\n{}", server.log());
}

/// An organization whose run logs pass its quota (`log_mb_per_organization`, 1 MiB here)
/// has its oldest deleted within a second or two, down to 90% of it, while its newest stay
/// readable; another organization's logs are untouched, and the trim is counted for the
/// organization in `/metrics`.
#[test]
fn an_organizations_oldest_run_logs_are_deleted_past_its_quota_and_no_one_elses() {
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_LOG_MB_PER_ORGANIZATION", "1")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let rival = Tenant::new(&server, "rival");
    let logged = |module: &str| {
        json!({"config": {"runtime": "wasm", "module": module, "timeout_s": 5,
                          "payload_logging_enabled": true}})
    };
    let hello = acme.upload(HELLO);
    let hook = acme.hook(&hello, logged(&hello));
    let theirs = rival.upload(HELLO);
    let rival_hook = rival.hook(&theirs, logged(&theirs));
    let (status, answer) = rival.invoke(&rival_hook, json!({"small": true}));
    assert_eq!(status, StatusCode::OK, "{answer}");

    // 20 logs of about 200 KB each (the payload kept): four times the quota.
    let filler = "f".repeat(200_000);
    for index in 0..20 {
        let (status, answer) = acme.invoke(&hook, json!({"index": index, "filler": filler}));
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let indexes = |tenant: &Tenant| -> Vec<u64> {
        let (status, logs) = tenant.get("/hooks/logs?page_size=100");
        assert_eq!(status, StatusCode::OK, "{logs}");
        logs["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|log| {
                let request: Value = serde_json::from_str(log["request"].as_str().unwrap_or("{}"))
                    .unwrap_or(Value::Null);
                request["index"].as_u64().unwrap_or(u64::MAX)
            })
            .collect()
    };
    let acme_id = acme.organization_id();
    let counted = || {
        server
            .metrics()
            .get(&format!(
                "wasmhook_run_logs_trimmed_total{{organization=\"{acme_id}\"}}"
            ))
            .copied()
            .unwrap_or(0.0)
    };
    // Settled: the newest, newest first: four (within 90% of a MiB, 200 KB each), or five
    // when the last call came after the last trim (five are still within the quota itself);
    // each deleted one counted.
    let settled = wait_until(Instant::now() + Duration::from_secs(20), || {
        let kept = indexes(&acme);
        let newest: Vec<u64> = (20 - kept.len() as u64..20).rev().collect();
        (4..=5).contains(&kept.len()) && kept == newest && counted() == 20.0 - kept.len() as f64
    });
    assert!(
        settled,
        "acme's logs were not trimmed to its newest: {:?}, {} counted\n{}",
        indexes(&acme),
        counted(),
        server.log()
    );
    assert_eq!(
        indexes(&rival),
        vec![u64::MAX],
        "rival's one small log is kept"
    );
    // Calls go on, and are logged.
    let (status, answer) = acme.invoke(&hook, json!({"index": 20}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(indexes(&acme).first(), Some(&20));
}
