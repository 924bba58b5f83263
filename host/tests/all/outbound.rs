//! Guests' outgoing HTTP (`wasi:http`): the hosts a hook allows and the installation's own
//! API are reachable, with the minted token working there until its lifetime ends; any
//! other host, and loopback or private addresses unless the operator allows them, are
//! refused with an error the guest reads and a line in the run log.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::FETCHER;

use super::drf::field_message;
use super::server::{Server, Tenant, OPERATOR_TOKEN};
use super::support::initialize;
use super::upstream::{Reply, Upstream};

fn results(tested: &Value) -> Vec<Value> {
    tested["response"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no results: {tested}"))
}

#[test]
fn a_guest_reaches_its_allowed_hosts_and_the_api_with_its_token_and_nothing_else() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("WASMHOOK_MAX_RESPONSE_BYTES", "4096"),
        ],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let (_, users) = acme.get("/users");
    let owner = users["results"][0]["url"].clone();
    let fetcher = acme.upload(FETCHER);
    upstream.script(
        "/big",
        vec![Reply::Json(200, json!({"filler": "x".repeat(10_000)}))],
    );
    let hook = acme.hook(
        &fetcher,
        json!({
            "name": "fetcher",
            "token_owner": owner,
            "token_lifetime_s": 0,
            "config": {
                "runtime": "wasm", "module": fetcher, "timeout_s": 10,
                "allowed_hosts": [upstream.authority],
            },
            "settings": {"requests": [
                {"method": "GET", "url": "{base_url}/api/v1/hooks/{hook_id}", "with_token": true},
                {"method": "POST", "url": format!("{}/collect", upstream.base), "with_token": true, "body": {"n": 1}},
                {"method": "GET", "url": "http://forbidden.example/steal"},
                {"method": "GET", "url": "http://127.0.0.1:9/other-port"},
                {"method": "GET", "url": format!("{}/big", upstream.base)},
            ]},
        }),
    );
    let (status, tested) = acme.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    let results = results(&tested);

    // The installation's own API, with the token minted for the run.
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    let own: Value = serde_json::from_str(results[0]["body"].as_str().unwrap_or_default())
        .expect("the API answered JSON");
    assert_eq!(own["id"], hook["id"]);
    assert_eq!(own["name"], "fetcher");

    // An allowed host, which received the request as sent.
    assert_eq!(results[1]["status"], 200, "{}", results[1]);
    let collected = upstream.received("/collect");
    assert_eq!(collected.len(), 1);
    assert_eq!(collected[0].method, "POST");
    assert_eq!(collected[0].body, br#"{"n":1}"#);
    let token = collected[0].headers["authorization"]
        .strip_prefix("Bearer ")
        .expect("the guest sent its token")
        .to_owned();

    // Hosts not on the list are refused before any connection is made.
    for refused in &results[2..4] {
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|error| error.contains("HttpRequestDenied")),
            "{refused}"
        );
    }
    // A response over the cap is cut off with an error.
    assert!(
        results[4]["error"]
            .as_str()
            .is_some_and(|error| error.contains("HttpResponseBodySize")),
        "{}",
        results[4]
    );

    // The run log says why each refused request was refused, and never holds the token.
    let (_, logs) = acme.get(&format!("/hooks/logs?hook={}", hook["id"]));
    let output = logs["results"][0]["output"].as_str().unwrap_or_default();
    assert!(
        output.contains(
            "[network] GET http://forbidden.example: refused: forbidden.example:80 is not in this hook's config.allowed_hosts"
        ),
        "{output}"
    );
    assert!(
        output.contains("127.0.0.1:9 is not in this hook's config.allowed_hosts"),
        "{output}"
    );
    assert!(!logs.to_string().contains(&token));

    // With a lifetime of 0 the token died with the run.
    let (status, _) = server.get(&format!("/hooks/{}", hook["id"]), &token);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn loopback_and_private_addresses_are_refused_unless_the_operator_allows_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let fetcher = acme.upload(FETCHER);
    let port = upstream.authority.rsplit(':').next().unwrap_or_default();
    let hook = acme.hook(
        &fetcher,
        json!({
            "config": {
                "runtime": "wasm", "module": fetcher, "timeout_s": 10,
                "allowed_hosts": [upstream.authority, format!("localhost:{port}"), "169.254.169.254"],
            },
            "settings": {"requests": [
                {"method": "GET", "url": format!("{}/direct", upstream.base)},
                {"method": "GET", "url": format!("http://localhost:{port}/by-name")},
                {"method": "GET", "url": "http://169.254.169.254/latest/meta-data/"},
                {"method": "GET", "url": "{base_url}/api/v1/hooks/{hook_id}"},
            ]},
        }),
    );
    let (status, tested) = acme.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    let answers = results(&tested);
    for refused in &answers[..3] {
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|error| error.contains("DestinationIpProhibited")),
            "{refused}"
        );
    }
    assert!(upstream.received("/direct").is_empty());
    assert!(upstream.received("/by-name").is_empty());
    // The installation's own API stays reachable (without a token it answers 401).
    assert_eq!(answers[3]["status"], 401, "{}", answers[3]);
    let (_, logs) = acme.get(&format!("/hooks/logs?hook={}", hook["id"]));
    let output = logs["results"][0]["output"].as_str().unwrap_or_default();
    assert!(output.contains("non-public address"), "{output}");

    // A hook without allowed_hosts has no network but its own API.
    let closed = acme.hook(
        &fetcher,
        json!({"settings": {"requests": [{"method": "GET", "url": "https://example.com/"}]}}),
    );
    let (status, tested) = acme.test_call(&closed, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    assert!(
        results(&tested)[0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("HttpRequestDenied")),
        "{tested}"
    );

    // Bad allow-list entries are refused when the hook is saved.
    let (status, refused) = acme.post(
        "/hooks",
        json!({"name": "bad", "events": ["invocation.manual"],
               "config": {"runtime": "wasm", "module": fetcher, "allowed_hosts": ["https://a.example/path"]}}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        field_message(&refused, "config").is_some_and(|m| m.starts_with("allowed_hosts: ")),
        "{refused}"
    );
}

/// Twice as many guests as the cap each want a request at once: as many requests as the
/// cap are in flight together (it is reached), never more (it binds).
#[test]
fn an_organization_has_a_cap_on_requests_in_flight() {
    const CAP: usize = 2;
    const CALLS: usize = 2 * CAP;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let cap = CAP.to_string();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("WASMHOOK_REQUESTS_PER_ORGANIZATION", cap.as_str()),
        ],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let fetcher = acme.upload(FETCHER);
    // Each answer takes a second: the calls, made at once, overlap at the receiver unless
    // the cap holds them back.
    upstream.script("/slow", vec![Reply::Slow(Duration::from_secs(1)); CALLS]);
    let hook = acme.hook(
        &fetcher,
        json!({
            "config": {"runtime": "wasm", "module": fetcher, "timeout_s": 20, "allowed_hosts": [upstream.authority]},
            "settings": {"requests": [{"method": "GET", "url": format!("{}/slow", upstream.base)}]},
        }),
    );
    std::thread::scope(|scope| {
        for _ in 0..CALLS {
            scope.spawn(|| {
                let (status, tested) = acme.test_call(&hook, initialize());
                assert_eq!(status, StatusCode::OK, "{tested}");
                assert_eq!(tested["status"], "completed", "{tested}");
                assert_eq!(results(&tested)[0]["status"], 200, "{tested}");
            });
        }
    });
    assert_eq!(upstream.received("/slow").len(), CALLS);
    assert_eq!(
        upstream.most_in_flight(),
        CAP,
        "the cap of {CAP} was not reached, or not kept"
    );
}

#[test]
fn a_guests_requests_count_against_its_time_limit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let fetcher = acme.upload(FETCHER);
    upstream.script("/stalls", vec![Reply::Slow(Duration::from_secs(5))]);
    let hook = acme.hook(
        &fetcher,
        json!({
            "config": {"runtime": "wasm", "module": fetcher, "timeout_s": 1, "allowed_hosts": [upstream.authority]},
            "settings": {"requests": [{"method": "GET", "url": format!("{}/stalls", upstream.base)}]},
        }),
    );
    let (status, tested) = acme.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "timeout", "{tested}");
    let (_, logs) = acme.get(&format!("/hooks/logs?hook={}", hook["id"]));
    assert_eq!(logs["results"][0]["status"], "timeout");
}
