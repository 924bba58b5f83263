//! The OpenAPI document (`/api/v1/openapi.json`) and the reference page (`/api/docs`):
//! the document is OpenAPI 3.1 with the Bearer and Token schemes, every route of the router
//! is in it and answers, and real answers of a live server validate against the schemas
//! the document gives for them.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wasmhook_tests::guests::HELLO;

use wasmhook::api::openapi::ROUTES;

use super::support::{initialize, Server, Tenant, OPERATOR_TOKEN};

/// The document, fetched without credentials.
fn document(server: &Server) -> Value {
    let response = server
        .client
        .get(format!("{}/api/v1/openapi.json", server.root()))
        .send()
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    serde_json::from_str(&response.text().expect("a body")).expect("the document is JSON")
}

/// The schema the document gives for `method path`'s answer with `status`, made whole:
/// the document's components beside it, so that its `$ref`s resolve.
fn answer_schema(document: &Value, method: &str, path: &str, status: u16) -> Value {
    let operation = &document["paths"][path][method.to_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {path} is not in the document"
    );
    let mut response = operation["responses"][status.to_string()].clone();
    if let Some(reference) = response["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/responses/");
        response = document["components"]["responses"][name].clone();
    }
    let schema = response["content"]["application/json"]["schema"].clone();
    assert!(
        schema.is_object(),
        "{method} {path} lists no JSON answer for {status}: {response}"
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": document["components"],
    })
}

/// Asserts that `answer` (of `method path`, with `status`) is what the document says.
fn assert_described(
    document: &Value,
    method: &str,
    path: &str,
    status: StatusCode,
    answer: &Value,
) {
    let schema = answer_schema(document, method, path, status.as_u16());
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|error| panic!("the schema of {method} {path} compiles: {error}"));
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with what the document does not describe: \
         {errors:?}\n{answer}"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_both_schemes_and_every_route() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let document = document(&server);
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|version| version.starts_with("3.1.")),
        "{}",
        document["openapi"]
    );
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["Bearer"]["type"], "http");
    assert_eq!(schemes["Bearer"]["scheme"], "bearer");
    assert_eq!(schemes["Token"]["type"], "apiKey");
    assert_eq!(schemes["Token"]["in"], "header");
    assert_eq!(schemes["Token"]["name"], "Authorization");
    assert!(schemes["Signature"]["name"]
        .as_str()
        .is_some_and(|name| name.eq_ignore_ascii_case("x-rossum-signature-sha256")));
    for name in ["ErrorDetail", "ValidationErrors"] {
        assert!(
            document["components"]["schemas"][name].is_object(),
            "{name}"
        );
    }

    let mut documented = 0;
    for (method, path) in ROUTES {
        let operation = &document["paths"][*path][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {path} is not in the document"
        );
        if path.contains("{id}") {
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                parameters
                    .iter()
                    .any(|parameter| parameter["name"] == "id" && parameter["in"] == "path"),
                "{method} {path} does not describe its id"
            );
        }
        documented += 1;
    }
    let in_document: usize = document["paths"]
        .as_object()
        .map(|paths| {
            paths
                .values()
                .map(|item| {
                    ["get", "put", "post", "delete", "patch"]
                        .iter()
                        .filter(|method| item.get(**method).is_some())
                        .count()
                })
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(
        in_document, documented,
        "the document has routes the router has not"
    );

    // And the router has each of them: a method it does not take is 405 (the fallback of
    // an unknown path is 404), and the documented method is not.
    for (method, path) in ROUTES {
        let url = format!("{}{}", server.root(), path.replace("{id}", "1"));
        let other = server
            .client
            .request(Method::TRACE, &url)
            .send()
            .expect("the server answers");
        assert_eq!(other.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let answer = server
            .client
            .request(method.clone(), &url)
            .send()
            .expect("the server answers");
        assert_ne!(
            answer.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
}

#[test]
fn real_answers_validate_against_the_documents_schemas() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let document = document(&server);
    let acme = Tenant::new(&server, "acme");
    let module = acme.upload(HELLO);
    let hook = acme.hook(&module, json!({}));
    let (status, queue) = acme.post("/queues", json!({"name": "Inbox", "hooks": [hook["url"]]}));
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    // A run, for the run logs.
    let (status, ran) = acme.event(
        "annotation_content",
        "initialize",
        Some(&queue["url"]),
        json!({"annotation": {"id": 1, "content": []}}),
    );
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_described(&document, "POST", "/api/v1/events", status, &ran);

    let hook_path = format!("/hooks/{}", hook["id"]);
    let queue_path = format!("/queues/{}", queue["id"]);
    let organization_path = format!("/organizations/{}", acme.organization_id());
    let cases: Vec<(&str, String, &str)> = vec![
        ("/hooks", "/hooks".to_owned(), "GET"),
        ("/hooks/{id}", hook_path.clone(), "GET"),
        (
            "/hooks/{id}/secrets_keys",
            format!("{hook_path}/secrets_keys"),
            "GET",
        ),
        ("/queues", "/queues".to_owned(), "GET"),
        ("/queues/{id}", queue_path.clone(), "GET"),
        ("/schemas/{id}", format!("/schemas/{}", queue["id"]), "GET"),
        ("/users", "/users".to_owned(), "GET"),
        ("/auth/user", "/auth/user".to_owned(), "GET"),
        ("/organizations", "/organizations".to_owned(), "GET"),
        ("/organizations/{id}", organization_path, "GET"),
        (
            "/organization_groups/{id}",
            "/organization_groups/1".to_owned(),
            "GET",
        ),
        ("/groups", "/groups".to_owned(), "GET"),
        ("/groups/{id}", "/groups/1".to_owned(), "GET"),
        ("/modules", "/modules".to_owned(), "GET"),
        (
            "/hooks/logs",
            format!("/hooks/logs?hook={}", hook["id"]),
            "GET",
        ),
        ("/hook_templates", "/hook_templates".to_owned(), "GET"),
        ("/version", "/version".to_owned(), "GET"),
    ];
    for (documented, path, method) in &cases {
        let (status, answer) = acme.get(path);
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        assert_described(
            &document,
            method,
            &format!("/api/v1{documented}"),
            status,
            &answer,
        );
    }
    let (_, user) = acme.get("/auth/user");
    let (status, answer) = acme.get(&format!("/users/{}", user["id"]));
    assert_described(&document, "GET", "/api/v1/users/{id}", status, &answer);
    let (status, logs) = acme.get(&format!("/hooks/logs?hook={}", hook["id"]));
    assert!(
        logs["results"]
            .as_array()
            .is_some_and(|logs| !logs.is_empty()),
        "{status}: {logs}"
    );

    // Errors: a 404 `{"detail"}`, and a 400 of field errors.
    let (status, missing) = acme.get("/hooks/999999");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_described(&document, "GET", "/api/v1/hooks/{id}", status, &missing);
    let (status, invalid) = acme.post("/queues", json!({"name": ""}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{invalid}");
    assert!(invalid["name"].is_array(), "{invalid}");
    assert_described(&document, "POST", "/api/v1/queues", status, &invalid);
    let (status, invalid) = acme.get("/hooks?page=0");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{invalid}");
    assert_described(&document, "GET", "/api/v1/hooks", status, &invalid);
    let (status, unauthenticated) = server.get("/hooks", "not a token");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_described(&document, "GET", "/api/v1/hooks", status, &unauthenticated);

    // Answers to writes.
    let (status, created) = acme.post(
        "/hooks",
        json!({
            "name": "another",
            "events": ["annotation_content"],
            "config": {"runtime": "wasm", "module": module},
        }),
    );
    assert_described(&document, "POST", "/api/v1/hooks", status, &created);
    let (status, patched) = acme.patch(&queue_path, json!({"name": "Renamed"}));
    assert_described(&document, "PATCH", "/api/v1/queues/{id}", status, &patched);
    let (status, ran) = acme.test_call(&hook, initialize());
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_described(&document, "POST", "/api/v1/hooks/{id}/test", status, &ran);
}

#[test]
fn the_reference_page_and_its_script_are_served_under_a_strict_policy() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let page = server
        .client
        .get(format!("{}/api/docs", server.root()))
        .send()
        .expect("the server answers");
    assert_eq!(page.status(), StatusCode::OK);
    let header = |response: &reqwest::blocking::Response, name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header(&page, "content-type").starts_with("text/html"));
    let policy = header(&page, "content-security-policy");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("http"), "no other origin: {policy}");
    assert!(header(&page, "cache-control").contains("max-age"));
    let html = page.text().expect("a body");
    assert!(html.contains("/api/docs/redoc.standalone.js"), "{html}");
    assert!(html.contains("/api/v1/openapi.json"), "{html}");
    assert!(!html.contains("://"), "nothing from another origin: {html}");

    let script = server
        .client
        .get(format!("{}/api/docs/redoc.standalone.js", server.root()))
        .send()
        .expect("the server answers");
    assert_eq!(script.status(), StatusCode::OK);
    assert!(header(&script, "content-type").contains("javascript"));
    assert!(header(&script, "cache-control").contains("max-age"));
    let body = script.text().expect("a body");
    assert!(
        body.len() > 100_000 && body.contains("Redoc"),
        "{}",
        body.len()
    );
}
