//! Django REST Framework's manners, which Rossum's API has and its clients rely on: an
//! empty query parameter is as if absent, a parameter that is no filter is ignored, a known
//! filter with a bad value is a 400 naming it, a page size above the maximum is capped, and
//! every error has a JSON body in DRF's shape: `{"field": ["message"]}` for a field's
//! error (a key inside a JSON field such as `config` leads the message under the field),
//! `{"non_field_errors": ["message"]}` for the rest of validation, and `{"detail": "..."}`
//! for authentication, permission, not found, method, media type, parse errors and
//! throttling, worded as DRF words them.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wasmhook_tests::guests::HELLO;

use super::support::{
    detail_of, field_error, field_message, http_client, Server, Shape, Tenant, OPERATOR_TOKEN,
};

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
            field_message(&answer, name).is_some(),
            "{path}: the answer is {{\"{name}\": [...]}}: {answer}"
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

#[test]
fn validation_errors_name_their_field_as_drf_does() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.upload(HELLO);
    let function = |extra: Value| {
        let mut config = json!({"runtime": "wasm", "module": hello});
        if let (Some(config), Value::Object(extra)) = (config.as_object_mut(), extra) {
            config.extend(extra);
        }
        config
    };
    let cases: Vec<((StatusCode, Value), Value)> = vec![
        // A key of a JSON field leads the message under the field, as a serializer's
        // JSONField reports it.
        (
            acme.post(
                "/hooks",
                json!({"name": "h", "config": function(json!({"timeout_s": 0}))}),
            ),
            field_error("config", "timeout_s: must be an integer from 1 to 60"),
        ),
        (
            acme.post("/hooks", json!({"config": function(json!({}))})),
            field_error("name", "required"),
        ),
        // A secret's name with a dot in it stays one key.
        (
            acme.post(
                "/hooks",
                json!({"name": "h", "config": function(json!({})), "secrets": {"api.key": 5}}),
            ),
            field_error("secrets", "api.key: must be a string"),
        ),
        (
            acme.post("/queues", json!({"name": 5})),
            field_error("name", "must be a string, not a number"),
        ),
        (
            acme.post("/queues", json!({})),
            field_error("name", "This field is required."),
        ),
        (
            server.post("/organizations", Some(OPERATOR_TOKEN), json!({})),
            field_error("name", "This field is required."),
        ),
        (
            acme.post("/users", json!({"password": "long enough"})),
            field_error("username", "This field is required."),
        ),
        (
            acme.post("/users", json!({"username": "ann", "password": "short"})),
            field_error("password", "at least 8 characters"),
        ),
        (
            acme.post(
                "/users",
                json!({"username": "acme-admin", "password": "long enough"}),
            ),
            field_error("username", "this username cannot be used; choose another"),
        ),
        (
            server.post("/auth/login", None, json!({"username": "acme-admin"})),
            field_error("password", "This field is required."),
        ),
        (
            acme.post(
                "/events",
                json!({"event": "invocation.manual", "payload": {"secrets": {}}}),
            ),
            field_error("payload", "`secrets` is set by the host and cannot be sent"),
        ),
        (
            acme.get("/hooks?ordering=colour"),
            field_error(
                "ordering",
                "`colour` is not one of id, name, type, active, events (with - to reverse)",
            ),
        ),
        (
            acme.get("/hooks/logs?hook=abc"),
            field_error("hook", "`abc` is not an id"),
        ),
    ];
    for (index, ((status, answer), expected)) in cases.into_iter().enumerate() {
        assert_eq!(status, StatusCode::BAD_REQUEST, "case {index}: {answer}");
        assert_eq!(answer, expected, "case {index}");
    }
    // A schedule is a key of the config; the cron expression's own words follow.
    let (status, answer) = acme.post(
        "/hooks",
        json!({"name": "j", "type": "job", "events": [],
               "config": function(json!({"schedule": {"cron": "61 * * * *"}}))}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        field_message(&answer, "config").is_some_and(|m| m.starts_with("schedule.cron: ")),
        "{answer}"
    );
    // A field the body type does not have, where it refuses unknown fields.
    let hook = acme.hook(&hello, json!({}));
    let (status, answer) = acme.post(
        &format!("/hooks/{}/test", hook["id"]),
        json!({"nothing": 1}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        Shape::Field("nothing", "not a field here").fits(&answer),
        "{answer}"
    );
    // Nothing of it was written.
    let (_, hooks) = acme.get("/hooks");
    assert_eq!(hooks["pagination"]["total"], 1, "{hooks}");
    let (_, queues) = acme.get("/queues");
    assert_eq!(queues["pagination"]["total"], 0, "{queues}");
}

#[test]
fn errors_about_no_one_field_are_non_field_errors() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let (status, answer) =
        server.send(Method::POST, "/queues", Some(&acme.token), Some(json!([1])));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error(
            "non_field_errors",
            "Invalid data. Expected a dictionary, but got list."
        )
    );
    let (status, answer) = server.post(
        "/auth/login",
        None,
        json!({"username": "acme-admin", "password": "wrong password"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        field_error(
            "non_field_errors",
            "Unable to log in with provided credentials."
        )
    );
    let hello = acme.upload(HELLO);
    let quiet = acme.hook(&hello, json!({"events": ["annotation_content"]}));
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
fn authentication_permission_and_not_found_answer_a_detail() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    // No credentials, and credentials that are not valid: 401, as DRF words each.
    let response = server
        .client
        .get(server.url("/hooks"))
        .send()
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().expect("a JSON body");
    assert_eq!(
        body,
        json!({"detail": "Authentication credentials were not provided."})
    );
    let (status, body) = server.get("/hooks", "not-a-token");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"detail": "Invalid token."}));
    // A member may not write queues: 403.
    let (status, _) = acme.post(
        "/users",
        json!({"username": "ann", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::CREATED);
    let ann = server.login("ann", "long enough");
    let (status, body) = server.post("/queues", Some(&ann), json!({"name": "q"}));
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body,
        json!({"detail": "You do not have permission to perform this action."})
    );
    // No such object, no such route, and an id no object can have: 404.
    for path in [
        "/hooks/12345",
        "/hooks/abc",
        "/hooks/99999999999999999999",
        "/queues/-1",
        "/no-such-thing",
    ] {
        let (status, body) = acme.get(path);
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body, json!({"detail": "Not found."}), "{path}");
    }
    let response = server
        .client
        .get(format!("{}/nothing-here", server.root()))
        .send()
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().expect("a JSON body");
    assert_eq!(body, json!({"detail": "Not found."}));
    // A method the route does not take, outside the API too.
    let response = server
        .client
        .post(format!("{}/healthz", server.root()))
        .send()
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = response.json().expect("a JSON body");
    assert_eq!(body, json!({"detail": "Method \"POST\" not allowed."}));
}

#[test]
fn bodies_that_cannot_be_read_answer_as_drf_does() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let send = |content_type: Option<&str>, body: String| {
        let mut request = http_client()
            .post(server.url("/queues"))
            .bearer_auth(&acme.token)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let response = request.send().expect("the server answers");
        let status = response.status();
        (status, response.json::<Value>().expect("a JSON body"))
    };
    // Not JSON by its content type: 415.
    let (status, body) = send(Some("text/plain"), "name=q".into());
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(
        body,
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );
    let (status, body) = send(None, "{\"name\": \"q\"}".into());
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(
        body,
        json!({"detail": "Unsupported media type \"\" in request."})
    );
    // JSON that does not parse: 400, DRF's ParseError.
    let (status, body) = send(Some("application/json"), "{\"name\": ".into());
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        detail_of(&body).is_some_and(|detail| detail.starts_with("JSON parse error - ")),
        "{body}"
    );
    // A JSON media type with parameters is JSON.
    let (status, body) = send(
        Some("application/json; charset=utf-8"),
        "{\"name\": \"q\"}".into(),
    );
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Over the body limit: 413, with a detail too.
    let (status, body) = send(
        Some("application/json"),
        format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20)),
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(
        body,
        json!({"detail": "the request body is larger than 2097152 bytes"})
    );
    // An invocation's body is read by the API too.
    let hello = acme.upload(HELLO);
    let hook = acme.hook(&hello, json!({}));
    let response = http_client()
        .post(server.url(&format!("/hooks/{}/invoke", hook["id"])))
        .bearer_auth(&acme.token)
        .header("Content-Type", "application/json")
        .body("{\"note\": ")
        .send()
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().expect("a JSON body");
    assert!(
        detail_of(&body).is_some_and(|detail| detail.starts_with("JSON parse error - ")),
        "{body}"
    );
}

#[test]
fn a_throttled_login_says_when_as_drf_does() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    server.organization_with_admin("acme");
    let throttled = (0..30).find_map(|_| {
        let response = server
            .client
            .post(server.url("/auth/login"))
            .json(&json!({"username": "acme-admin", "password": "wrong password"}))
            .send()
            .expect("the server answers");
        if response.status() != StatusCode::TOO_MANY_REQUESTS {
            return None;
        }
        let retry_after: u64 = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .expect("a 429 says when to retry, in seconds");
        let body: Value = response.json().expect("a JSON body");
        Some((retry_after, body))
    });
    let (retry_after, body) = throttled.expect("throttled within 30 failed logins");
    let unit = if retry_after == 1 {
        "second"
    } else {
        "seconds"
    };
    assert_eq!(
        body,
        json!({"detail": format!(
            "Request was throttled. Expected available in {retry_after} {unit}."
        )})
    );
}
