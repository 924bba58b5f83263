//! Secrets and minted tokens cannot be stolen through a hook: a hook's answers are redacted
//! as its run logs are, a minted token is an extension's (scoped), lives as long as its
//! lifetime says, and a member cannot borrow an admin's rights by running an admin's hook.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wasmhook_tests::guests::{FETCHER, HOSTILE};

use super::support::{initialize, temp, wait_until, Server, Tenant, Upstream, OPERATOR_TOKEN};

const SECRET: &str = "sk-live-0123456789abcdef";

/// The first user of the tenant (its admin), as a URL.
fn admin_url(tenant: &Tenant<'_>) -> Value {
    let (_, users) = tenant.get("/users");
    users["results"][0]["url"].clone()
}

/// A member of the tenant's organization, logged in; its URL and token.
fn member(tenant: &Tenant<'_>, name: &str) -> (Value, String) {
    let password = format!("{name}'s long password");
    let (status, user) = tenant.post(
        "/users",
        json!({"username": name, "password": password, "role": "member"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{user}");
    (user["url"].clone(), tenant.server.login(name, &password))
}

#[test]
fn a_secret_a_hook_prints_is_redacted_in_its_every_answer() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let printing = acme.hook(
        &acme.upload(HOSTILE),
        json!({"settings": {"behavior": "print_secret"}, "secrets": {"api_key": SECRET}}),
    );

    let (status, tested) = acme.test_call(&printing, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    assert!(tested.to_string().contains("[redacted...]"), "{tested}");
    let (status, invoked) = acme.invoke(&printing, json!({}));
    assert_eq!(status, StatusCode::OK, "{invoked}");
    assert_eq!(invoked["messages"][0]["content"], "secret [redacted...]");
    let (status, event) = acme.post(
        "/events",
        json!({"event": "annotation_content.initialize", "payload": {"annotation": {"id": 1, "content": []}}}),
    );
    assert_eq!(status, StatusCode::OK, "{event}");
    for answer in [&tested, &invoked, &event] {
        assert!(!answer.to_string().contains(SECRET), "{answer}");
    }
}

#[test]
fn a_minted_token_a_hook_returns_is_redacted_in_its_every_answer() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let echoing = acme.hook(
        &acme.upload(HOSTILE),
        json!({"settings": {"behavior": "echo_token"}, "token_owner": admin_url(&acme)}),
    );

    let (status, tested) = acme.test_call(&echoing, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    assert_eq!(tested["response"]["token"], "[redacted...]", "{tested}");
    let (status, invoked) = acme.invoke(&echoing, json!({}));
    assert_eq!(status, StatusCode::OK, "{invoked}");
    assert_eq!(invoked["token"], "[redacted...]", "{invoked}");
}

/// A fetcher hook owned by `owner` that hands its minted token to `upstream` (as a token
/// leaks in real life: to a service the extension calls) and then answers.
fn leaking_hook(tenant: &Tenant<'_>, upstream: &Upstream, owner: &Value, lifetime: u64) -> Value {
    let fetcher = tenant.upload(FETCHER);
    tenant.hook(
        &fetcher,
        json!({
            "token_owner": owner,
            "token_lifetime_s": lifetime,
            "config": {"runtime": "wasm", "module": fetcher, "timeout_s": 10,
                       "allowed_hosts": [upstream.authority]},
            "settings": {"requests": [
                {"method": "POST", "url": format!("{}/collect", upstream.base), "with_token": true, "body": {}},
            ]},
        }),
    )
}

/// Runs the hook and returns the token the upstream received.
fn leaked_token(tenant: &Tenant<'_>, upstream: &Upstream, hook: &Value) -> String {
    let before = upstream.received("/collect").len();
    let (status, tested) = tenant.test_call(hook, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    let collected = upstream.received("/collect");
    assert_eq!(collected.len(), before + 1, "{tested}");
    collected[before].headers["authorization"]
        .strip_prefix("Bearer ")
        .expect("the guest sent its token")
        .to_owned()
}

fn private_server(dir: &tempfile::TempDir) -> Server {
    Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true")],
        &[],
    )
}

#[test]
fn a_minted_token_works_during_its_lifetime_and_not_after() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = private_server(&dir);
    let acme = Tenant::new(&server, "acme");
    let owner = admin_url(&acme);
    for (lifetime, alive_after) in [(0, false), (2, true)] {
        let hook = leaking_hook(&acme, &upstream, &owner, lifetime);
        let token = leaked_token(&acme, &upstream, &hook);
        let (status, _) = server.get(&format!("/hooks/{}", hook["id"]), &token);
        assert_eq!(
            status == StatusCode::OK,
            alive_after,
            "lifetime {lifetime}: {status}"
        );
        if alive_after {
            // Dead once its lifetime (whole seconds from the run's end) is over.
            let mut after = status;
            let expired = wait_until(Instant::now() + Duration::from_millis(3100), || {
                after = server.get(&format!("/hooks/{}", hook["id"]), &token).0;
                after == StatusCode::UNAUTHORIZED
            });
            assert!(expired, "lifetime {lifetime} after it: {after}");
        }
        let (_, logs) = acme.get(&format!("/hooks/logs?hook={}", hook["id"]));
        assert!(!logs.to_string().contains(&token));
    }
}

/// Acme on `server`, its admin's URL, a [`leaking_hook`] owned by the admin with a lifetime
/// of 600 s, and the token its run leaked to `upstream`.
fn leak_a_token<'a>(server: &'a Server, upstream: &Upstream) -> (Tenant<'a>, Value, Value, String) {
    let acme = Tenant::new(server, "acme");
    let owner = admin_url(&acme);
    let hook = leaking_hook(&acme, upstream, &owner, 600);
    let token = leaked_token(&acme, upstream, &hook);
    (acme, owner, hook, token)
}

/// What an extension needs: reading its organization, writing queues and its own hook's
/// settings.
#[test]
fn a_minted_token_reads_its_organization_and_writes_queues_and_its_hooks_settings() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = private_server(&dir);
    let (_acme, _, hook, token) = leak_a_token(&server, &upstream);
    let as_extension = |method: Method, path: &str, body: Option<Value>| {
        server.send(method, path, Some(&token), body)
    };
    let path = format!("/hooks/{}", hook["id"]);
    assert_eq!(as_extension(Method::GET, "/hooks", None).0, StatusCode::OK);
    assert_eq!(
        as_extension(Method::GET, "/hooks/logs", None).0,
        StatusCode::OK
    );
    let (status, queue) = as_extension(
        Method::POST,
        "/queues",
        Some(json!({"name": "by the extension"})),
    );
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    // The queue it read, sent back with its hooks unchanged, is written; its hooks are
    // not changed by an extension.
    let mut renamed = queue.clone();
    renamed["name"] = json!("renamed by the extension");
    let queue_path = format!("/queues/{}", queue["id"]);
    let (status, answer) = as_extension(Method::PUT, &queue_path, Some(renamed));
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = as_extension(
        Method::PATCH,
        &queue_path,
        Some(json!({"webhooks": [hook["url"]]})),
    );
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, patched) = as_extension(
        Method::PATCH,
        &path,
        Some(json!({"settings": {"requests": [], "seen": 1}})),
    );
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["settings"]["seen"], 1);
}

/// What a minted token must not do, for it would outlive the run or raise its rights:
/// create a user; change its hook's lifetime, owner, config or secrets; change `other`, a
/// hook of its organization, or which queues it is on; replace its hook; create a hook;
/// run one.
fn beyond_an_extension(hook: &Value, owner: &Value, other: &Value) -> Vec<(Method, String, Value)> {
    let path = format!("/hooks/{}", hook["id"]);
    vec![
        (
            Method::POST,
            "/users".into(),
            json!({"username": "mallory", "password": "a long password", "role": "admin"}),
        ),
        (
            Method::PATCH,
            path.clone(),
            json!({"token_lifetime_s": 7200}),
        ),
        (Method::PATCH, path.clone(), json!({"token_owner": owner})),
        (
            Method::PATCH,
            path.clone(),
            json!({"config": {"runtime": "wasm", "module": hook["config"]["module"], "allowed_hosts": ["*.example.com"]}}),
        ),
        (
            Method::PATCH,
            path.clone(),
            json!({"secrets": {"stolen": "x"}}),
        ),
        (
            Method::PATCH,
            format!("/hooks/{}", other["id"]),
            json!({"settings": {"behavior": "panic"}}),
        ),
        // A queue's hooks are each of those hooks' `queues`.
        (
            Method::POST,
            "/queues".into(),
            json!({"name": "detour", "hooks": [other["url"]]}),
        ),
        (Method::PUT, path.clone(), hook.clone()),
        (
            Method::POST,
            "/hooks".into(),
            json!({"name": "new", "events": ["invocation.manual"], "config": {"runtime": "wasm", "module": hook["config"]["module"]}}),
        ),
        (Method::POST, format!("{path}/invoke"), json!({})),
        (
            Method::POST,
            format!("{path}/test"),
            json!({"payload": initialize()}),
        ),
        (
            Method::POST,
            "/events".into(),
            json!({"event": "invocation.manual", "payload": {}}),
        ),
    ]
}

#[test]
fn a_minted_token_is_refused_what_would_outlive_the_run_or_raise_its_rights() {
    let dir = temp();
    let upstream = Upstream::start();
    let server = private_server(&dir);
    let (acme, owner, hook, token) = leak_a_token(&server, &upstream);
    let other = acme.hook(
        &acme.upload(HOSTILE),
        json!({"settings": {"behavior": "echo"}}),
    );
    for (method, path, body) in beyond_an_extension(&hook, &owner, &other) {
        let (status, answer) = server.send(method.clone(), &path, Some(&token), Some(body));
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert!(
            answer["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("minted for a hook's run")),
            "{method} {path}: {answer}"
        );
    }
    let (_, stored) = acme.get(&format!("/hooks/{}", hook["id"]));
    assert_eq!(stored["token_lifetime_s"], 600);
    let (_, users) = acme.get("/users");
    assert_eq!(users["pagination"]["total"], 1);
}

/// Acme's hooks that hand back their minted token: one carrying its admin's token, one
/// carrying that of `ann`, a member; ann's token.
struct TokenHooks {
    admins: Value,
    members: Value,
    ann: String,
}

fn token_hooks(acme: &Tenant) -> TokenHooks {
    let hostile = acme.upload(HOSTILE);
    let (ann_url, ann) = member(acme, "ann");
    let admins = acme.hook(
        &hostile,
        json!({"settings": {"behavior": "echo_token"}, "token_owner": admin_url(acme)}),
    );
    let members = acme.hook(
        &hostile,
        json!({"settings": {"behavior": "echo_token"}, "token_owner": ann_url}),
    );
    TokenHooks {
        admins,
        members,
        ann,
    }
}

#[test]
fn a_member_cannot_run_a_hook_that_carries_an_admins_token() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hooks = token_hooks(&acme);
    for (path, body) in [
        (format!("/hooks/{}/invoke", hooks.admins["id"]), json!({})),
        (
            format!("/hooks/{}/test", hooks.admins["id"]),
            json!({"payload": initialize()}),
        ),
        (
            "/events".to_owned(),
            json!({"event": "invocation.manual", "payload": {}}),
        ),
    ] {
        let (status, answer) = server.post(&path, Some(&hooks.ann), body);
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert!(
            answer["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("token_owner")),
            "{path}: {answer}"
        );
    }
    // Nothing the member was refused left a run log.
    let (_, logs) = acme.get(&format!("/hooks/logs?hook={}", hooks.admins["id"]));
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(0), "{logs}");
}

/// A hook carrying the member's own token runs for the member, and the admin's for the admin.
#[test]
fn the_owner_of_a_hooks_token_may_run_it() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hooks = token_hooks(&acme);
    let (status, answer) = server.post(
        &format!("/hooks/{}/invoke", hooks.members["id"]),
        Some(&hooks.ann),
        json!({}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = acme.invoke(&hooks.admins, json!({}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, logs) = acme.get(&format!("/hooks/logs?hook={}", hooks.admins["id"]));
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(1), "{logs}");
}

#[test]
fn only_an_admin_tests_a_hook_with_another_config() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hostile = acme.upload(HOSTILE);
    let hook = acme.hook(
        &hostile,
        json!({"settings": {"behavior": "print_secret"}, "secrets": {"api_key": SECRET}}),
    );
    let (_, ann) = member(&acme, "ann");
    let path = format!("/hooks/{}/test", hook["id"]);
    let with_config = json!({
        "payload": initialize(),
        "config": {"runtime": "wasm", "module": hostile, "allowed_hosts": ["collector.example.com"]},
    });
    let (status, answer) = server.post(&path, Some(&ann), with_config.clone());
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("only an admin")),
        "{answer}"
    );
    // The member may test it as it is, and the admin with another config.
    let (status, answer) = server.post(&path, Some(&ann), json!({"payload": initialize()}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "completed", "{answer}");
    let (status, answer) = acme.post(&path, with_config);
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "completed", "{answer}");
}
