//! Rossum's hook behaviours of issue 16 over HTTP, against the real `wasmhook serve`:
//! `payload_logging_enabled` on function and webhook hooks, an interactive webhook that
//! answers 202, `POST /hooks/{id}/duplicate`, `POST /hooks/{id}/generate_payload`, and hook
//! templates (registered by the operator, listed, instantiated by `POST /hooks/create`).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wasmhook_tests::guests::HELLO;

use super::support::{
    id_of, register_template, sign, temp, Reply, Server, Tenant, Upstream, OPERATOR_TOKEN,
};

/// What the run log keeps of the payload of a hook's last run: none, or the payload.
fn logged_request(tenant: &Tenant<'_>, hook: &Value) -> Option<Value> {
    let logs = tenant.run_logs(hook);
    let log = logs.first().expect("the run has a run log");
    match &log["request"] {
        Value::Null => None,
        Value::String(text) => Some(serde_json::from_str(text).expect("the request is JSON text")),
        other => panic!("`request` is neither null nor JSON text: {other}"),
    }
}

/// The URL of the tenant's admin (its first user).
fn admin_url(tenant: &Tenant<'_>) -> Value {
    let (status, users) = tenant.get("/users");
    assert_eq!(status, StatusCode::OK, "{users}");
    users["results"][0]["url"].clone()
}

#[test]
fn a_function_hooks_payload_is_logged_only_when_it_asks_and_then_redacted() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);

    // Rossum's default: the payload stays out of the run log.
    let quiet = acme.hook(
        &hello,
        json!({"secrets": {"api_key": "quiet-secret-value"}}),
    );
    let (status, answer) = acme.invoke(&quiet, json!({"SAP_ID": "1234"}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(logged_request(&acme, &quiet), None);
    let (_, searched) = acme.get("/hooks/logs?search=SAP_ID");
    assert_eq!(searched["results"], json!([]), "{searched}");

    // Kept when asked, with every secret (even one too short to search for) and the minted
    // token redacted.
    let kept = acme.hook(
        &hello,
        json!({
            "config": {"runtime": "wasm", "module": hello, "payload_logging_enabled": true},
            "secrets": {"api_key": "kept-secret-value", "pin": "12"},
            "token_owner": admin_url(&acme),
        }),
    );
    assert_eq!(kept["config"]["payload_logging_enabled"], true, "{kept}");
    let (status, answer) = acme.invoke(&kept, json!({"SAP_ID": "1234"}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    let request = logged_request(&acme, &kept).expect("the payload is kept");
    assert_eq!(request["SAP_ID"], "1234");
    assert_eq!(request["event"], "invocation");
    assert_eq!(
        request["secrets"],
        json!({"api_key": "[redacted...]", "pin": "[redacted...]"})
    );
    assert_eq!(request["rossum_authorization_token"], "[redacted...]");
    let (_, all) = acme.get("/hooks/logs");
    assert!(!all.to_string().contains("kept-secret-value"), "{all}");
}

#[test]
fn a_webhooks_payload_is_logged_only_when_it_asks_and_then_redacted() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    let quiet = acme.webhook(&format!("{}/quiet", upstream.base), json!({}));
    let kept = acme.webhook(
        &format!("{}/kept", upstream.base),
        json!({"payload_logging_enabled": true}),
    );
    for hook in [&quiet, &kept] {
        let path = format!("/hooks/{}", hook["id"]);
        let (status, patched) = acme.patch(
            &path,
            json!({"secrets": {"password": "webhook-secret-value"}}),
        );
        assert_eq!(status, StatusCode::OK, "{patched}");
        let (status, answer) = acme.invoke(hook, json!({"order": "PO-7"}));
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // Both receivers got the whole payload, secrets included: only the log leaves it out.
    for path in ["/quiet", "/kept"] {
        let received = upstream.received(path);
        assert_eq!(received.len(), 1, "{path}");
        let payload: Value = serde_json::from_slice(&received[0].body).expect("JSON");
        assert_eq!(payload["order"], "PO-7");
        assert_eq!(payload["secrets"]["password"], "webhook-secret-value");
    }
    assert_eq!(logged_request(&acme, &quiet), None);
    let request = logged_request(&acme, &kept).expect("the payload is kept");
    assert_eq!(request["order"], "PO-7");
    assert_eq!(request["settings"], json!({"region": "eu"}));
    assert_eq!(request["secrets"], json!({"password": "[redacted...]"}));
    let (_, all) = acme.get("/hooks/logs");
    assert!(!all.to_string().contains("webhook-secret-value"), "{all}");
}

#[test]
fn an_interactive_webhook_answering_202_fails_saying_it_cannot_answer_later() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    let hook = acme.webhook(&format!("{}/later", upstream.base), json!({}));
    upstream.script("/later", vec![Reply::Accepted("/later/result".into()); 2]);
    let why = "interactive hooks cannot answer asynchronously";

    // annotation_content.updated: a user waits on it.
    let (status, tested) = acme.test_call(
        &hook,
        json!({"event": "annotation_content", "action": "updated", "annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "failed", "{tested}");
    assert!(
        tested["message"].as_str().unwrap_or_default().contains(why),
        "{tested}"
    );
    // invocation.manual: its caller waits on it.
    let (status, invoked) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{invoked}");
    assert!(invoked.to_string().contains(why), "{invoked}");
    // Never polled, never retried, and both runs are logged as failed with the reason.
    assert!(upstream.received("/later/result").is_empty());
    assert_eq!(upstream.received("/later").len(), 2);
    let logs = acme.run_logs(&hook);
    assert_eq!(logs.len(), 2);
    for log in &logs {
        assert_eq!(log["status"], "failed", "{log}");
        assert_eq!(log["status_code"], 202, "{log}");
        assert!(
            log["message"].as_str().unwrap_or_default().contains(why),
            "{log}"
        );
    }
}

#[test]
fn a_duplicate_is_an_inactive_copy_with_secrets_and_dependencies_only_when_asked() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = Server::for_webhooks(dir.path());
    let acme = Tenant::new(&server, "acme");
    let rival = Tenant::new(&server, "rival");
    let (status, queue) = acme.post("/queues", json!({"name": "Invoices"}));
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    let before = acme.webhook(&format!("{}/before", upstream.base), json!({}));
    let original = acme.webhook(
        &format!("{}/original", upstream.base),
        json!({"secret": "signing-secret-value"}),
    );
    let path = format!("/hooks/{}", original["id"]);
    let (status, original) = acme.patch(
        &path,
        json!({
            "queues": [queue["url"]],
            "run_after": [before["url"]],
            "secrets": {"password": "duplicated-secret-value"},
        }),
    );
    assert_eq!(status, StatusCode::OK, "{original}");
    let after = acme.webhook(&format!("{}/after", upstream.base), json!({}));
    let after_path = format!("/hooks/{}", after["id"]);
    let (status, after) = acme.patch(&after_path, json!({"run_after": [original["url"]]}));
    assert_eq!(status, StatusCode::OK, "{after}");
    let duplicate = |body: Value| acme.post(&format!("{path}/duplicate"), body);

    // Neither secrets nor dependencies: a copy of the rest, inactive and on no queue.
    let (status, bare) = duplicate(json!({"name": "Bare copy"}));
    assert_eq!(status, StatusCode::CREATED, "{bare}");
    assert_ne!(bare["id"], original["id"]);
    assert_eq!(bare["name"], "Bare copy");
    assert_eq!(bare["active"], false);
    assert_eq!(bare["queues"], json!([]));
    assert_eq!(bare["run_after"], json!([]));
    for field in ["type", "config", "events", "settings", "secrets_schema"] {
        assert_eq!(bare[field], original[field], "{field}");
    }
    let (_, keys) = acme.get(&format!("/hooks/{}/secrets_keys", bare["id"]));
    assert_eq!(keys, json!([]));

    // Both: the secrets (never shown), its run_after, and the original's successors run
    // after the copy too.
    let (status, full) = duplicate(json!({
        "name": "Full copy",
        "copy_secrets": true,
        "copy_dependencies": true,
    }));
    assert_eq!(status, StatusCode::CREATED, "{full}");
    assert_eq!(full["active"], false);
    assert_eq!(full["queues"], json!([]));
    assert_eq!(full["run_after"], json!([before["url"]]));
    assert!(
        !full.to_string().contains("duplicated-secret-value"),
        "{full}"
    );
    let (_, keys) = acme.get(&format!("/hooks/{}/secrets_keys", full["id"]));
    assert_eq!(keys, json!(["password"]));
    let (_, after) = acme.get(&after_path);
    assert_eq!(after["run_after"], json!([original["url"], full["url"]]));
    // The copy runs with the original's secrets and signing secret.
    let (status, answer) = acme.invoke(&full, json!({}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    let received = upstream.received("/original");
    assert_eq!(received.len(), 1);
    let payload: Value = serde_json::from_slice(&received[0].body).expect("JSON");
    assert_eq!(payload["hook"], full["url"]);
    assert_eq!(payload["secrets"]["password"], "duplicated-secret-value");
    assert_eq!(
        received[0].headers["x-rossum-signature-sha256"],
        sign("signing-secret-value", &received[0].body)
    );

    // A copy needs a name; another organization's hook is not found.
    let (status, refused) = duplicate(json!({"copy_secrets": true}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.to_string().contains("name"), "{refused}");
    let (status, refused) = rival.post(&format!("{path}/duplicate"), json!({"name": "mine"}));
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    let (_, theirs) = rival.get("/hooks");
    assert_eq!(theirs["pagination"]["total"], 0);
}

#[test]
fn a_generated_payload_is_the_hooks_with_realistic_content_and_no_secret() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let (status, queue) = acme.post("/queues", json!({"name": "Invoices"}));
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    let hook = acme.hook(
        &hello,
        json!({
            "queues": [queue["url"]],
            "settings": {"greeting": "Ahoj"},
            "sideload": ["queues"],
            "secrets": {"api_key": "generated-secret-value"},
            "token_owner": admin_url(&acme),
        }),
    );
    let path = format!("/hooks/{}/generate_payload", hook["id"]);
    let (status, payload) = acme.post(
        &path,
        json!({
            "event": "annotation_content",
            "action": "initialize",
            "annotation": format!("{}/annotations/314", server.base),
            "status": "to_review",
        }),
    );
    assert_eq!(status, StatusCode::OK, "{payload}");
    let keys: Vec<&str> = payload
        .as_object()
        .map(|payload| payload.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "request_id",
            "timestamp",
            "hook",
            "action",
            "event",
            "rossum_authorization_token",
            "base_url",
            "settings",
            "secrets",
            "annotation",
            "document",
            "updated_datapoints",
            "queues",
        ]
    );
    assert_eq!(payload["hook"], hook["url"]);
    assert_eq!(payload["event"], "annotation_content");
    assert_eq!(payload["action"], "initialize");
    assert_eq!(payload["settings"], json!({"greeting": "Ahoj"}));
    assert_eq!(payload["secrets"], json!({"api_key": "[redacted...]"}));
    assert_eq!(payload["rossum_authorization_token"], "[redacted...]");
    assert_eq!(payload["annotation"]["id"], 314);
    assert_eq!(payload["annotation"]["status"], "to_review");
    assert_eq!(payload["annotation"]["queue"], queue["url"]);
    assert!(
        payload["annotation"]["content"]
            .as_array()
            .is_some_and(|sections| !sections.is_empty()),
        "{payload}"
    );
    assert_eq!(payload["updated_datapoints"], json!([]));
    assert_eq!(payload["queues"][0]["url"], queue["url"]);
    assert!(
        !payload.to_string().contains("generated-secret-value"),
        "{payload}"
    );
    // Nothing was run to make it; and it tests the hook as it is.
    assert!(acme.run_logs(&hook).is_empty());
    let (status, tested) = acme.test_call(&hook, payload);
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");

    // Every event has its own keys.
    for (event, action, key) in [
        ("annotation_status", "changed", "document"),
        ("annotation_content", "updated", "updated_datapoints"),
        ("upload", "created", "upload"),
        ("email", "received", "headers"),
        ("invocation", "scheduled", "settings"),
    ] {
        let (status, payload) = acme.post(&path, json!({"event": event, "action": action}));
        assert_eq!(status, StatusCode::OK, "{event}.{action}: {payload}");
        assert_eq!(payload["event"], event);
        assert!(payload.get(key).is_some(), "{event}.{action}: {payload}");
    }

    // Bad values are refused naming their field; another organization's hook is not found.
    for (body, field) in [
        (json!({"action": "created"}), "event"),
        (
            json!({"event": "annotations", "action": "created"}),
            "event",
        ),
        (
            json!({"event": "annotation_content", "action": "changed"}),
            "action",
        ),
        (
            json!({"event": "annotation_status", "action": "changed", "status": "lost"}),
            "status",
        ),
    ] {
        let (status, refused) = acme.post(&path, body.clone());
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {refused}");
        assert!(refused.to_string().contains(field), "{body}: {refused}");
    }
    let rival = Tenant::new(&server, "rival");
    let (status, refused) = rival.post(&path, json!({"event": "invocation", "action": "manual"}));
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
}

#[test]
fn hook_templates_are_registered_by_the_operator_and_made_into_hooks_by_organizations() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let rival = Tenant::new(&server, "rival");

    // An installation without templates lists none, in Rossum's list shape.
    let (status, listed) = acme.get("/hook_templates");
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["results"], json!([]));
    assert_eq!(listed["pagination"]["total"], 0);

    let fields = json!({
        "name": "Greeter",
        "description": "Greets every event.",
        "events": ["annotation_content", "invocation.manual"],
        "config": {"runtime": "wasm", "timeout_s": 5},
        "settings": {"greeting": "Hej"},
        "settings_schema": {"type": "object", "properties": {"greeting": {"type": "string"}}},
        "secrets_schema": {
            "type": "object",
            "properties": {"api_key": {"type": "string"}},
            "additionalProperties": false,
        },
        "guide": "Set a greeting.",
        "read_more_url": "https://greeter.example/",
        "extension_image_url": "https://greeter.example/logo.png",
        "settings_description": [{"name": "greeting", "description": "What it says"}],
        "store_description": "Says hello.",
        "order": 2,
    });
    // Only the operator registers; a template is checked as a hook is, and holds no secret.
    let (status, refused) = register_template(&server, &acme.token, &fields, None);
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let with_secret = json!({"name": "x", "config": {"runtime": "wasm", "secret": "shared"}});
    let (status, refused) = register_template(&server, OPERATOR_TOKEN, &with_secret, Some(HELLO));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.to_string().contains("config.secret"), "{refused}");
    let (status, refused) = register_template(&server, OPERATOR_TOKEN, &fields, None);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.to_string().contains("file"), "{refused}");
    let (status, template) = register_template(&server, OPERATOR_TOKEN, &fields, Some(HELLO));
    assert_eq!(status, StatusCode::CREATED, "{template}");
    for field in [
        "id",
        "url",
        "name",
        "type",
        "events",
        "sideload",
        "metadata",
        "config",
        "test",
        "description",
        "extension_source",
        "settings",
        "settings_schema",
        "secrets_schema",
        "guide",
        "read_more_url",
        "extension_image_url",
        "settings_description",
        "store_description",
        "external_url",
        "use_token_owner",
        "install_action",
        "token_lifetime_s",
        "order",
    ] {
        assert!(
            template.get(field).is_some(),
            "a template lacks `{field}`: {template}"
        );
    }
    assert_eq!(template["type"], "function");
    assert_eq!(template["extension_source"], "rossum_store");
    assert_eq!(template["install_action"], "copy");
    assert_eq!(template["order"], 2);
    assert_eq!(template["config"]["runtime"], "wasm");
    let (_, listed) = rival.get("/hook_templates");
    assert_eq!(listed["pagination"]["total"], 1);
    assert_eq!(listed["results"][0], template);
    let template_path = format!("/hook_templates/{}", template["id"]);
    assert_eq!(acme.get(&template_path), (StatusCode::OK, template.clone()));

    // An admin makes a hook of it: the creator's fields over the template's, a module of
    // the organization's own for the template's bytes, and it runs.
    let (_, queue) = acme.post("/queues", json!({"name": "Invoices"}));
    let (status, hook) = acme.post(
        "/hooks/create",
        json!({
            "hook_template": template["url"],
            "name": "Our greeter",
            "queues": [queue["url"]],
            "settings": {"greeting": "Ahoj"},
            "secrets": {"api_key": "template-secret-value"},
        }),
    );
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(hook["hook_template"], template["url"]);
    assert_eq!(hook["extension_source"], "rossum_store");
    assert_eq!(hook["name"], "Our greeter");
    assert_eq!(hook["events"], template["events"]);
    assert_eq!(hook["queues"], json!([queue["url"]]));
    assert_eq!(hook["guide"], "Set a greeting.");
    assert_eq!(hook["status"], "ready");
    let module_url = hook["config"]["module"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, module) = acme.get(&format!("/modules/{}", id_of(&module_url)));
    assert_eq!(status, StatusCode::OK, "{module}");
    assert_eq!(module["sha256"], template["module"]["sha256"]);
    let (_, keys) = acme.get(&format!("/hooks/{}/secrets_keys", hook["id"]));
    assert_eq!(keys, json!(["api_key"]));
    assert!(!hook.to_string().contains("template-secret-value"));
    let (status, answer) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["messages"][0]["content"], "Ahoj, invocation.manual!");
    // A second hook of it reuses the organization's module.
    let (status, again) = acme.post("/hooks/create", json!({"hook_template": template["id"]}));
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["name"], "Greeter");
    assert_eq!(again["config"]["module"], hook["config"]["module"]);
    let (_, modules) = acme.get("/modules");
    assert_eq!(modules["pagination"]["total"], 1);
    // Another organization gets a module of its own.
    let (status, theirs) = rival.post("/hooks/create", json!({"hook_template": template["url"]}));
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    assert_ne!(theirs["config"]["module"], hook["config"]["module"]);
    assert_eq!(
        acme.get(&format!("/hooks/{}", theirs["id"])).0,
        StatusCode::NOT_FOUND
    );

    // Refusals: no template named, no such template, the operator (who owns no hooks).
    for body in [json!({"name": "x"}), json!({"hook_template": 999})] {
        let (status, refused) = acme.post("/hooks/create", body.clone());
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {refused}");
        assert!(refused.to_string().contains("hook_template"), "{refused}");
    }
    let (status, refused) = server.post(
        "/hooks/create",
        Some(OPERATOR_TOKEN),
        json!({"hook_template": template["url"]}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");

    // Only the operator deletes it; the hooks made of it keep running.
    let delete = |token: &str| {
        server
            .client
            .request(Method::DELETE, server.url(&template_path))
            .bearer_auth(token)
            .send()
            .expect("the server answers")
            .status()
    };
    assert_eq!(delete(&acme.token), StatusCode::FORBIDDEN);
    assert_eq!(delete(OPERATOR_TOKEN), StatusCode::NO_CONTENT);
    assert_eq!(acme.get(&template_path).0, StatusCode::NOT_FOUND);
    let (_, listed) = acme.get("/hook_templates");
    assert_eq!(listed["pagination"]["total"], 0);
    let (status, answer) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::OK, "{answer}");
}
