//! Guests' outgoing HTTP (`wasi:http`): the hosts a hook allows and the installation's own
//! API are reachable, with the minted token working there until its lifetime ends; any
//! other host, and loopback or private addresses unless the operator allows them, are
//! refused with an error the guest reads and a line in the run log.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::FETCHER;

use super::support::{field_message, initialize, Reply, Server, Tenant, Upstream, OPERATOR_TOKEN};

fn results(tested: &Value) -> Vec<Value> {
    tested["response"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no results: {tested}"))
}

/// The output of the hook's newest run log.
fn run_log_output(acme: &Tenant, hook: &Value) -> String {
    let (_, logs) = acme.get(&format!("/hooks/logs?hook={}", hook["id"]));
    logs["results"][0]["output"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A server whose guests may reach loopback addresses (the upstream's) and read at most
/// 4096 bytes of a response.
fn fetching_server(dir: &tempfile::TempDir) -> Server {
    Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("WASMHOOK_MAX_RESPONSE_BYTES", "4096"),
        ],
        &[],
    )
}

/// A fetcher hook of acme's named `fetcher`, carrying its admin's token with a lifetime of
/// 0 and allowed to reach `upstream`, making `requests`; tested once. The hook, and the
/// guest's results (one a request).
fn fetched(acme: &Tenant, upstream: &Upstream, requests: &Value) -> (Value, Vec<Value>) {
    let (_, users) = acme.get("/users");
    let owner = users["results"][0]["url"].clone();
    let fetcher = acme.upload(FETCHER);
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
            "settings": {"requests": requests},
        }),
    );
    let (status, tested) = acme.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    let results = results(&tested);
    (hook, results)
}

#[test]
fn a_guest_reaches_the_installations_api_with_its_minted_token() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = fetching_server(&dir);
    let acme = Tenant::new(&server, "acme");
    let (hook, results) = fetched(
        &acme,
        &upstream,
        &json!([{"method": "GET", "url": "{base_url}/api/v1/hooks/{hook_id}", "with_token": true}]),
    );
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    let own: Value = serde_json::from_str(results[0]["body"].as_str().unwrap_or_default())
        .expect("the API answered JSON");
    assert_eq!(own["id"], hook["id"]);
    assert_eq!(own["name"], "fetcher");
}

#[test]
fn an_allowed_host_receives_the_guests_request_as_sent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = fetching_server(&dir);
    let acme = Tenant::new(&server, "acme");
    let (_, results) = fetched(
        &acme,
        &upstream,
        &json!([
            {"method": "POST", "url": format!("{}/collect", upstream.base), "with_token": true, "body": {"n": 1}},
        ]),
    );
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    let collected = upstream.received("/collect");
    assert_eq!(collected.len(), 1);
    assert_eq!(collected[0].method, "POST");
    assert_eq!(collected[0].body, br#"{"n":1}"#);
}

/// Refused before any connection is made.
#[test]
fn hosts_not_on_the_list_are_refused_and_the_run_log_says_why() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = fetching_server(&dir);
    let acme = Tenant::new(&server, "acme");
    let (hook, results) = fetched(
        &acme,
        &upstream,
        &json!([
            {"method": "GET", "url": "http://forbidden.example/steal"},
            {"method": "GET", "url": "http://127.0.0.1:9/other-port"},
        ]),
    );
    for refused in &results[..2] {
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|error| error.contains("HttpRequestDenied")),
            "{refused}"
        );
    }
    let output = run_log_output(&acme, &hook);
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
}

#[test]
fn a_response_over_the_cap_is_cut_off_with_an_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = fetching_server(&dir);
    let acme = Tenant::new(&server, "acme");
    upstream.script(
        "/big",
        vec![Reply::Json(200, json!({"filler": "x".repeat(10_000)}))],
    );
    let (_, results) = fetched(
        &acme,
        &upstream,
        &json!([{"method": "GET", "url": format!("{}/big", upstream.base)}]),
    );
    assert!(
        results[0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("HttpResponseBodySize")),
        "{}",
        results[0]
    );
}

#[test]
fn a_minted_token_is_never_in_the_run_log_and_dies_with_a_lifetime_of_0() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = fetching_server(&dir);
    let acme = Tenant::new(&server, "acme");
    let (hook, _) = fetched(
        &acme,
        &upstream,
        &json!([
            {"method": "POST", "url": format!("{}/collect", upstream.base), "with_token": true, "body": {"n": 1}},
        ]),
    );
    let collected = upstream.received("/collect");
    let token = collected[0].headers["authorization"]
        .strip_prefix("Bearer ")
        .expect("the guest sent its token")
        .to_owned();
    let (_, logs) = acme.get(&format!("/hooks/logs?hook={}", hook["id"]));
    assert!(!logs.to_string().contains(&token));
    let (status, _) = server.get(&format!("/hooks/{}", hook["id"]), &token);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Acme's fetcher hook on a server with the operator's defaults, allowed the upstream by
/// address and by name and the cloud's metadata address, making `requests`; tested once.
/// The hook, and the guest's results (one a request).
fn fetched_by_default(acme: &Tenant, upstream: &Upstream, requests: &Value) -> (Value, Vec<Value>) {
    let fetcher = acme.upload(FETCHER);
    let port = upstream.authority.rsplit(':').next().unwrap_or_default();
    let hook = acme.hook(
        &fetcher,
        json!({
            "config": {
                "runtime": "wasm", "module": fetcher, "timeout_s": 10,
                "allowed_hosts": [upstream.authority, format!("localhost:{port}"), "169.254.169.254"],
            },
            "settings": {"requests": requests},
        }),
    );
    let (status, tested) = acme.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "completed", "{tested}");
    let results = results(&tested);
    (hook, results)
}

#[test]
fn loopback_and_private_addresses_are_refused_by_default_and_the_run_log_says_why() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let port = upstream.authority.rsplit(':').next().unwrap_or_default();
    let (hook, answers) = fetched_by_default(
        &acme,
        &upstream,
        &json!([
            {"method": "GET", "url": format!("{}/direct", upstream.base)},
            {"method": "GET", "url": format!("http://localhost:{port}/by-name")},
            {"method": "GET", "url": "http://169.254.169.254/latest/meta-data/"},
        ]),
    );
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
    let output = run_log_output(&acme, &hook);
    assert!(output.contains("non-public address"), "{output}");
}

/// Without a token it answers 401.
#[test]
fn the_installations_own_api_stays_reachable_though_it_is_on_loopback() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = Upstream::start();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let (_, answers) = fetched_by_default(
        &acme,
        &upstream,
        &json!([{"method": "GET", "url": "{base_url}/api/v1/hooks/{hook_id}"}]),
    );
    assert_eq!(answers[0]["status"], 401, "{}", answers[0]);
}

#[test]
fn a_hook_without_allowed_hosts_has_no_network() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let fetcher = acme.upload(FETCHER);
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
}

#[test]
fn a_bad_allow_list_entry_is_refused_when_the_hook_is_saved() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let fetcher = acme.upload(FETCHER);
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
