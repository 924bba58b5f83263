//! `wasmhook serve`, the real binary on a free port with a temporary data directory, over
//! real HTTP: accounts, organizations, users, isolation between organizations, bad input,
//! pagination, and a restart.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::support::{http_client, id_of, Server, Shape, OPERATOR_TOKEN};

/// A server with one organization, `acme`, and its admin: what the tests of accounts and
/// bad input start from.
struct Acme {
    /// Declared before the directory, so that it stops before the directory is removed.
    server: Server,
    _dir: tempfile::TempDir,
    /// The organization's URL.
    organization: String,
    /// Its admin's token.
    admin: String,
}

fn acme() -> Acme {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (organization, admin) = server.organization_with_admin("acme");
    Acme {
        server,
        _dir: dir,
        organization,
        admin,
    }
}

/// Creates `ann` (password "ann's password") as acme's admin; the new user.
fn create_ann(acme: &Acme) -> Value {
    let (status, member) = acme.server.post(
        "/users",
        Some(&acme.admin),
        json!({"username": "ann", "password": "ann's password", "email": "ann@acme.example"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{member}");
    member
}

#[test]
fn an_admin_creates_a_member_of_its_own_organization() {
    let acme = acme();
    let member = create_ann(&acme);
    assert_eq!(member["organization"], acme.organization);
    assert_eq!(member["role"], "member");
    assert!(member.get("password").is_none());
}

#[test]
fn a_member_logs_in_with_a_form_as_rossums_login_takes_it() {
    let acme = acme();
    create_ann(&acme);
    let response = acme
        .server
        .client
        .post(acme.server.url("/auth/login"))
        .form(&[("username", "ann"), ("password", "ann's password")])
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().expect("JSON");
    let ann = answer["key"].as_str().expect("a key");
    let (status, users) = acme.server.get("/users", ann);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["pagination"]["total"], 2);
}

#[test]
fn a_token_is_taken_with_the_token_scheme_too() {
    let acme = acme();
    let response = acme
        .server
        .client
        .get(acme.server.url("/users"))
        .header("Authorization", format!("Token {}", acme.admin))
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn a_logged_out_token_is_refused() {
    let acme = acme();
    create_ann(&acme);
    let ann = acme.server.login("ann", "ann's password");
    let (status, body) = acme.server.post("/auth/logout", Some(&ann), json!({}));
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = acme.server.get("/users", &ann);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"detail": "Invalid token."}));
}

/// Two organizations on one server, `acme` and `globex`, each with its admin.
struct Two {
    /// Declared before the directory, so that it stops before the directory is removed.
    server: Server,
    _dir: tempfile::TempDir,
    acme: String,
    acme_admin: String,
    globex: String,
    globex_admin: String,
}

fn acme_and_globex() -> Two {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (acme, acme_admin) = server.organization_with_admin("acme");
    let (globex, globex_admin) = server.organization_with_admin("globex");
    Two {
        server,
        _dir: dir,
        acme,
        acme_admin,
        globex,
        globex_admin,
    }
}

#[test]
fn an_admin_cannot_read_another_organizations_users_or_the_organization() {
    let two = acme_and_globex();
    let server = &two.server;
    let (_, globex_users) = server.get("/users", &two.globex_admin);
    let globex_user = globex_users["results"][0]["id"].as_u64().expect("an id");
    assert_eq!(
        server
            .get(&format!("/users/{globex_user}"), &two.acme_admin)
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .get(
                &format!("/organizations/{}", id_of(&two.globex)),
                &two.acme_admin
            )
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .get(
                &format!("/organizations/{}", id_of(&two.acme)),
                &two.acme_admin
            )
            .0,
        StatusCode::OK
    );
}

#[test]
fn an_admins_lists_hold_only_its_own_organization() {
    let two = acme_and_globex();
    let server = &two.server;
    let (_, organizations) = server.get("/organizations", &two.acme_admin);
    assert_eq!(organizations["pagination"]["total"], 1);
    assert_eq!(organizations["results"][0]["url"], two.acme);
    let (_, users) = server.get(
        &format!("/users?organization={}", id_of(&two.globex)),
        &two.acme_admin,
    );
    assert_eq!(users["pagination"]["total"], 0, "{users}");
}

#[test]
fn an_admin_cannot_create_a_user_in_another_organization() {
    let two = acme_and_globex();
    let (status, body) = two.server.post(
        "/users",
        Some(&two.acme_admin),
        json!({"username": "mole", "password": "long enough", "organization": two.globex}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        Shape::Field(
            "organization",
            "admins create users of their own organization only"
        )
        .fits(&body),
        "{body}"
    );
}

#[test]
fn the_operator_sees_every_organization() {
    let two = acme_and_globex();
    let (_, organizations) = two.server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(organizations["pagination"]["total"], 2);
}

#[test]
fn only_the_operator_creates_organizations() {
    let acme = acme();
    let (status, _) =
        acme.server
            .post("/organizations", Some(&acme.admin), json!({"name": "mine"}));
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[test]
fn a_member_creates_no_users() {
    let acme = acme();
    let server = &acme.server;
    server.post(
        "/users",
        Some(&acme.admin),
        json!({"username": "max", "password": "long enough"}),
    );
    let max = server.login("max", "long enough");
    let (status, _) = server.post(
        "/users",
        Some(&max),
        json!({"username": "min", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Checks each answer of a refused request: its status, and a `detail` that holds the
/// needle. Cases are numbered in the messages in the order given.
fn assert_refused(cases: Vec<((StatusCode, Value), StatusCode, Shape)>) {
    for (index, ((status, body), expected, shape)) in cases.into_iter().enumerate() {
        assert_eq!(status, expected, "case {index}: {body}");
        assert!(
            shape.fits(&body),
            "case {index}: {shape:?} does not fit {body}"
        );
    }
}

/// Nothing of the refused requests was written: acme has only its admin, and is the only
/// organization.
fn assert_nothing_written(acme: &Acme) {
    let (_, users) = acme.server.get("/users", &acme.admin);
    assert_eq!(users["pagination"]["total"], 1, "{users}");
    let (_, organizations) = acme.server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(organizations["pagination"]["total"], 1);
    assert_eq!(organizations["results"][0]["url"], acme.organization);
}

#[test]
fn a_user_with_a_bad_field_is_refused_naming_it() {
    let acme = acme();
    let user = |body: Value| acme.server.post("/users", Some(&acme.admin), body);
    assert_refused(vec![
        (
            user(json!({"password": "long enough"})),
            StatusCode::BAD_REQUEST,
            Shape::Field("username", "This field is required."),
        ),
        (
            user(json!({"username": "x", "password": "short"})),
            StatusCode::BAD_REQUEST,
            Shape::Field("password", "at least 8"),
        ),
        (
            user(json!({"username": "has space", "password": "long enough"})),
            StatusCode::BAD_REQUEST,
            Shape::Field("username", "letters, digits and @.+-_"),
        ),
        (
            user(json!({"username": "acme-admin", "password": "long enough"})),
            StatusCode::BAD_REQUEST,
            Shape::Field("username", "this username cannot be used"),
        ),
        (
            user(json!({"username": "y", "password": "long enough", "role": "owner"})),
            StatusCode::BAD_REQUEST,
            Shape::Field("role", "`owner` is not one of admin, member"),
        ),
        (
            user(json!({"username": "y", "password": "long enough", "shoe_size": 44})),
            StatusCode::BAD_REQUEST,
            Shape::Field("shoe_size", "not a field here"),
        ),
        (
            user(json!(["not", "an", "object"])),
            StatusCode::BAD_REQUEST,
            Shape::NonField("Expected a dictionary, but got list."),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn the_operator_must_name_an_existing_organization_for_a_user() {
    let acme = acme();
    assert_refused(vec![
        (
            acme.server.post(
                "/users",
                Some(OPERATOR_TOKEN),
                json!({"username": "z", "password": "long enough"}),
            ),
            StatusCode::BAD_REQUEST,
            Shape::Field("organization", "required"),
        ),
        (
            acme.server.post(
                "/users",
                Some(OPERATOR_TOKEN),
                json!({"username": "z", "password": "long enough", "organization": 999}),
            ),
            StatusCode::BAD_REQUEST,
            Shape::Field("organization", "no such organization"),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn an_organization_without_a_name_is_refused() {
    let acme = acme();
    assert_refused(vec![(
        acme.server.post(
            "/organizations",
            Some(OPERATOR_TOKEN),
            json!({"name": "  "}),
        ),
        StatusCode::BAD_REQUEST,
        Shape::Field("name", "must be 1 to 200 characters"),
    )]);
    assert_nothing_written(&acme);
}

#[test]
fn a_bad_page_or_page_size_is_refused_naming_it() {
    let acme = acme();
    assert_refused(vec![
        (
            acme.server.get("/users?page_size=many", &acme.admin),
            StatusCode::BAD_REQUEST,
            Shape::Field("page_size", "must be a positive integer, not `many`"),
        ),
        (
            acme.server.get("/users?page=0", &acme.admin),
            StatusCode::BAD_REQUEST,
            Shape::Field("page", "must be a positive integer, not `0`"),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn a_missing_or_unknown_token_gets_401() {
    let acme = acme();
    assert_refused(vec![
        (
            acme.server.get("/users", "not-a-token"),
            StatusCode::UNAUTHORIZED,
            Shape::Detail("Invalid token."),
        ),
        (
            acme.server.send(Method::GET, "/users", None, None),
            StatusCode::UNAUTHORIZED,
            Shape::Detail("Authentication credentials were not provided."),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn an_unknown_id_or_path_gets_404() {
    let acme = acme();
    assert_refused(vec![
        (
            acme.server.get("/users/banana", &acme.admin),
            StatusCode::NOT_FOUND,
            Shape::Detail("Not found."),
        ),
        (
            acme.server.get("/no/such/thing", &acme.admin),
            StatusCode::NOT_FOUND,
            Shape::Detail("Not found."),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn a_wrong_password_and_an_unknown_username_get_the_same_refusal() {
    let acme = acme();
    assert_refused(vec![
        (
            acme.server.post(
                "/auth/login",
                None,
                json!({"username": "acme-admin", "password": "wrong password"}),
            ),
            StatusCode::BAD_REQUEST,
            Shape::NonField("Unable to log in with provided credentials."),
        ),
        (
            acme.server.post(
                "/auth/login",
                None,
                json!({"username": "nobody", "password": "whatever it is"}),
            ),
            StatusCode::BAD_REQUEST,
            Shape::NonField("Unable to log in with provided credentials."),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn malformed_json_gets_400_and_writes_nothing() {
    let acme = acme();
    let response = acme
        .server
        .client
        .post(acme.server.url("/users"))
        .bearer_auth(&acme.admin)
        .header("Content-Type", "application/json")
        .body("{\"username\": ")
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_nothing_written(&acme);
}

#[test]
fn a_body_over_the_limit_gets_413_and_writes_nothing() {
    let acme = acme();
    // Its own client: the server closes a connection whose body it refused to read.
    let response = http_client()
        .post(acme.server.url("/organizations"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("Content-Type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20)))
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_nothing_written(&acme);
}

#[test]
fn lists_are_paginated_as_rossum_does() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (_, admin) = server.organization_with_admin("acme");
    for name in ["u1", "u2", "u3", "u4"] {
        let (status, _) = server.post(
            "/users",
            Some(&admin),
            json!({"username": name, "password": "long enough"}),
        );
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, page) = server.get("/users?page_size=2&page=2", &admin);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["pagination"]["total"], 5);
    assert_eq!(page["pagination"]["total_pages"], 3);
    assert_eq!(
        page["pagination"]["next"],
        server.url("/users?page=3&page_size=2")
    );
    assert_eq!(
        page["pagination"]["previous"],
        server.url("/users?page=1&page_size=2")
    );
    let names: Vec<&str> = page["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["u2", "u3"]);
}

/// Starts a server on a fresh data directory without an operator token, creates `acme`
/// with the token it shows, and starts it again: the directory, the second server and the
/// token (in that order, so that the server stops before the directory is removed).
fn restarted_with_a_generated_token() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let token = {
        let server = Server::start(dir.path(), None);
        let token = server
            .banner
            .lines()
            .find_map(|line| line.strip_prefix("operator token (shown once, keep it): "))
            .unwrap_or_else(|| panic!("no operator token in: {}", server.banner))
            .to_owned();
        let (status, _) = server.post("/organizations", Some(&token), json!({"name": "acme"}));
        assert_eq!(status, StatusCode::CREATED);
        token
    };
    let server = Server::start(dir.path(), None);
    (dir, server, token)
}

#[test]
fn a_generated_operator_token_is_shown_at_the_first_start_only() {
    let (_dir, server, _) = restarted_with_a_generated_token();
    assert!(
        !server.banner.contains("operator token"),
        "shown again: {}",
        server.banner
    );
}

#[test]
fn a_restart_keeps_the_organizations_and_the_generated_token() {
    let (_dir, server, token) = restarted_with_a_generated_token();
    let (status, organizations) = server.get("/organizations", &token);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(organizations["results"][0]["name"], "acme");
}

#[test]
fn the_database_holds_the_operator_tokens_hash_never_the_token() {
    let (dir, _server, token) = restarted_with_a_generated_token();
    let database = std::fs::read(dir.path().join("wasmhook.db")).expect("the database file");
    let text = String::from_utf8_lossy(&database);
    assert!(!text.contains(&token));
}
