//! Django REST Framework's manners, which Rossum's API has and its clients rely on: an
//! empty query parameter is as if absent, a parameter that is no filter is ignored, a known
//! filter with a bad value is a 400 naming it, a page size above the maximum is capped, and
//! every error, 405 included, has a JSON body.

use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::HELLO;

use super::server::{Server, Tenant, OPERATOR_TOKEN};

/// The parameters `rossum-api` 3.x sends with every list call.
const CLIENT_PARAMETERS: &str = "ordering=&sideload=&content.schema_id=&include_total=true";

#[test]
fn lists_take_what_rossums_client_sends() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.hook(&acme.upload(HELLO), json!({}));
    assert_eq!(acme.invoke(&hello, json!({})).0, StatusCode::OK);

    for list in [
        "/hooks",
        "/queues",
        "/organizations",
        "/users",
        "/modules",
        "/hooks/logs",
    ] {
        let (status, answer) = acme.get(&format!("{list}?{CLIENT_PARAMETERS}"));
        assert_eq!(status, StatusCode::OK, "{list}: {answer}");
        assert!(answer["results"].is_array(), "{list}: {answer}");
        // Empty values of known parameters too.
        let (status, answer) = acme.get(&format!("{list}?page=&page_size=&ordering="));
        assert_eq!(status, StatusCode::OK, "{list}: {answer}");
    }
    // The run log is found with the client's parameters and a filter.
    let (_, logs) = acme.get(&format!(
        "/hooks/logs?{CLIENT_PARAMETERS}&hook={}&status=",
        hello["id"]
    ));
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(1), "{logs}");
    // Empty filters filter nothing.
    let (_, hooks) = acme.get("/hooks?name=&type=&queue=&active=&id=");
    assert_eq!(hooks["pagination"]["total"], 1, "{hooks}");
}

#[test]
fn a_bad_value_of_a_known_filter_is_named() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    for (path, name) in [
        ("/hooks?queue=abc", "queue"),
        ("/hooks?active=maybe", "active"),
        ("/hooks/logs?hook=abc", "hook"),
        ("/hooks/logs?status=exploded", "status"),
        ("/users?organization=x", "organization"),
        ("/hooks?page=0", "page"),
        ("/hooks?ordering=colour", "ordering"),
    ] {
        let (status, answer) = acme.get(path);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(
            answer.to_string().contains(name),
            "{path}: the answer names {name}: {answer}"
        );
    }
}

#[test]
fn a_page_size_above_the_maximum_is_capped() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    for n in 0..3 {
        let (status, _) = acme.post("/queues", json!({"name": format!("q{n}")}));
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, page) = acme.get("/queues?page_size=1000");
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["results"].as_array().map(Vec::len), Some(3));
    let (status, page) = acme.get("/queues?page_size=1000&page=1");
    assert_eq!(status, StatusCode::OK, "{page}");
    // The links carry the size served.
    let (_, small) = acme.get("/queues?page_size=2");
    let next = small["pagination"]["next"].as_str().unwrap_or_default();
    assert!(next.contains("page_size=2"), "{small}");
    let (status, logs) = acme.get("/hooks/logs?page_size=100000");
    assert_eq!(status, StatusCode::OK, "{logs}");
}

#[test]
fn every_error_has_a_json_body() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    // A method the route does not take.
    let response = server
        .client
        .delete(server.url("/organizations"))
        .bearer_auth(&acme.token)
        .send()
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response
        .headers()
        .get("allow")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let body: Value = response.json().expect("a JSON body");
    assert_eq!(body["detail"], "Method \"DELETE\" not allowed.", "{body}");
    // An unknown path, an unauthenticated call.
    for (path, token, status) in [
        (
            "/no-such-thing",
            Some(acme.token.as_str()),
            StatusCode::NOT_FOUND,
        ),
        ("/hooks", None, StatusCode::UNAUTHORIZED),
    ] {
        let mut request = server.client.get(server.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().expect("the server answers");
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().expect("a JSON body");
        assert!(body["detail"].is_string(), "{path}: {body}");
    }
}
