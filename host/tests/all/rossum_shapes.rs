//! Rossum's shapes (issue 16): the keys `rossum-api` 3.x's models require of queues,
//! organizations and users, with their types; roles as Rossum's groups (`/groups`), given
//! on create and update; users updated and deactivated as Rossum's API allows, with
//! wasmhook's permission rules; `/auth/user`; and another organization's objects 404.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::support::{Server, Tenant, OPERATOR_TOKEN};

/// What a key's value must be, as the client's dataclass types it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A non-negative integer.
    Id,
    /// A string.
    Text,
    /// A string or null.
    TextOrNull,
    Bool,
    Number,
    /// An array of anything.
    List,
    /// An array of strings (URLs).
    TextList,
    /// An object.
    Dict,
}

const QUEUE: &[(&str, Kind)] = &[
    ("id", Kind::Id),
    ("name", Kind::Text),
    ("url", Kind::Text),
    ("workspace", Kind::TextOrNull),
    ("connector", Kind::TextOrNull),
    ("schema", Kind::Text),
    ("inbox", Kind::TextOrNull),
    ("counts", Kind::Dict),
    ("session_timeout", Kind::Text),
    ("webhooks", Kind::TextList),
    ("hooks", Kind::TextList),
    ("users", Kind::TextList),
    ("rir_url", Kind::TextOrNull),
    ("rir_params", Kind::TextOrNull),
    ("automation_enabled", Kind::Bool),
    ("automation_level", Kind::Text),
    ("default_score_threshold", Kind::Number),
    ("locale", Kind::Text),
    ("metadata", Kind::Dict),
    ("settings", Kind::Dict),
    ("dedicated_engine", Kind::TextOrNull),
    ("generic_engine", Kind::TextOrNull),
    ("use_confirmed_state", Kind::Bool),
    ("document_lifetime", Kind::TextOrNull),
    ("delete_after", Kind::TextOrNull),
    ("status", Kind::TextOrNull),
    ("engine", Kind::TextOrNull),
    ("training_enabled", Kind::Bool),
];

const SCHEMA: &[(&str, Kind)] = &[
    ("id", Kind::Id),
    ("name", Kind::TextOrNull),
    ("queues", Kind::TextList),
    ("url", Kind::Text),
    ("content", Kind::List),
    ("metadata", Kind::Dict),
    ("modified_by", Kind::TextOrNull),
    ("modified_at", Kind::TextOrNull),
];

const ORGANIZATION: &[(&str, Kind)] = &[
    ("id", Kind::Id),
    ("name", Kind::Text),
    ("url", Kind::Text),
    ("workspaces", Kind::TextList),
    ("users", Kind::TextList),
    ("organization_group", Kind::Text),
    ("is_trial", Kind::Bool),
    ("created_at", Kind::Text),
    ("trial_expires_at", Kind::TextOrNull),
    ("expires_at", Kind::TextOrNull),
    ("oidc_provider", Kind::TextOrNull),
    ("ui_settings", Kind::Dict),
    ("metadata", Kind::Dict),
];

const ORGANIZATION_GROUP: &[(&str, Kind)] = &[
    ("id", Kind::Id),
    ("name", Kind::Text),
    ("is_trial", Kind::Bool),
    ("is_production", Kind::Bool),
    ("deployment_location", Kind::Text),
    ("modified_by", Kind::TextOrNull),
    ("modified_at", Kind::TextOrNull),
    ("usage", Kind::Dict),
];

const USER: &[(&str, Kind)] = &[
    ("id", Kind::Id),
    ("url", Kind::Text),
    ("first_name", Kind::Text),
    ("last_name", Kind::Text),
    ("email", Kind::Text),
    ("date_joined", Kind::Text),
    ("username", Kind::Text),
    ("organization", Kind::Text),
    ("last_login", Kind::TextOrNull),
    ("is_active", Kind::Bool),
    ("email_verified", Kind::Bool),
    ("groups", Kind::TextList),
    ("queues", Kind::TextList),
    ("ui_settings", Kind::Dict),
    ("metadata", Kind::Dict),
    ("oidc_id", Kind::TextOrNull),
    ("auth_type", Kind::Text),
    ("deleted", Kind::Bool),
];

const GROUP: &[(&str, Kind)] = &[("id", Kind::Id), ("name", Kind::Text), ("url", Kind::Text)];

/// The parameters `rossum-api` 3.x sends with every list call.
const CLIENT_PARAMETERS: &str = "ordering=&sideload=&content.schema_id=&include_total=true";

/// Asserts that `object` has every key of `keys`, each of its kind.
fn check(what: &str, object: &Value, keys: &[(&str, Kind)]) {
    for (key, kind) in keys {
        let value = object
            .get(*key)
            .unwrap_or_else(|| panic!("{what} has no `{key}`: {object}"));
        let fits = match kind {
            Kind::Id => value.as_u64().is_some(),
            Kind::Text => value.is_string(),
            Kind::TextOrNull => value.is_string() || value.is_null(),
            Kind::Bool => value.is_boolean(),
            Kind::Number => value.is_number(),
            Kind::List => value.is_array(),
            Kind::TextList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            Kind::Dict => value.is_object(),
        };
        assert!(fits, "{what}: `{key}` is not {kind:?}: {value}");
    }
}

/// GETs an absolute URL the API answered, as a client following it does.
fn follow(server: &Server, url: &Value, token: &str) -> (StatusCode, Value) {
    let url = url.as_str().unwrap_or_else(|| panic!("not a URL: {url}"));
    let response = server
        .client
        .get(url)
        .bearer_auth(token)
        .send()
        .expect("the server answers");
    let status = response.status();
    (status, response.json().expect("a JSON answer"))
}

/// The URL of the group named `name`, from `/groups`.
fn group_url(tenant: &Tenant<'_>, name: &str) -> String {
    let (status, groups) = tenant.get(&format!("/groups?name={name}"));
    assert_eq!(status, StatusCode::OK, "{groups}");
    groups["results"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no group {name}: {groups}"))
        .to_owned()
}

/// Asserts a 400 whose answer names `needle`.
fn assert_refused(answered: &(StatusCode, Value), needle: &str) {
    let (status, answer) = answered;
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{needle}: {answer}");
    assert!(
        answer.to_string().contains(needle),
        "the answer names {needle}: {answer}"
    );
}

#[test]
fn every_object_has_the_keys_rossums_models_require() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");

    let (status, queue) = acme.post("/queues", json!({"name": "Invoices"}));
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    check("the created queue", &queue, QUEUE);
    let (status, queue) = follow(&server, &queue["url"], &acme.token);
    assert_eq!(status, StatusCode::OK, "{queue}");
    check("a queue", &queue, QUEUE);
    let (status, queues) = acme.get(&format!("/queues?{CLIENT_PARAMETERS}"));
    assert_eq!(status, StatusCode::OK, "{queues}");
    for listed in queues["results"].as_array().expect("results") {
        check("a listed queue", listed, QUEUE);
    }
    // No workspace, connector or inbox, and no documents counted.
    for key in ["workspace", "connector", "inbox"] {
        assert!(queue[key].is_null(), "{key}: {queue}");
    }
    let counts = queue["counts"].as_object().expect("counts");
    assert!(counts.contains_key("to_review"), "{queue}");
    assert!(
        counts.values().all(|count| count.as_u64() == Some(0)),
        "{queue}"
    );

    // The schema a queue names is served, and says it is a placeholder without content.
    let (status, schema) = follow(&server, &queue["schema"], &acme.token);
    assert_eq!(status, StatusCode::OK, "{schema}");
    check("the queue's schema", &schema, SCHEMA);
    assert_eq!(schema["content"], json!([]));
    assert_eq!(schema["queues"], json!([queue["url"]]));
    assert!(
        schema["name"]
            .as_str()
            .is_some_and(|name| name.contains("placeholder")),
        "{schema}"
    );

    // A member created with Rossum's presentation fields; she has not logged in.
    let (status, member) = acme.post(
        "/users",
        json!({"username": "ann", "password": "long enough", "first_name": "Ann",
               "last_name": "Lee", "email": "ann@acme.example"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{member}");
    check("a created user", &member, USER);
    assert!(member["last_login"].is_null(), "{member}");
    assert_eq!(member["first_name"], "Ann");

    // The organization, listed and alone, with its users and its group.
    let (status, organizations) = acme.get(&format!("/organizations?{CLIENT_PARAMETERS}"));
    assert_eq!(status, StatusCode::OK, "{organizations}");
    check(
        "a listed organization",
        &organizations["results"][0],
        ORGANIZATION,
    );
    let (status, organization) = follow(&server, &organizations["results"][0]["url"], &acme.token);
    assert_eq!(status, StatusCode::OK, "{organization}");
    check("an organization", &organization, ORGANIZATION);
    assert_eq!(organization["workspaces"], json!([]));
    assert_eq!(organization["is_trial"], false);
    let (status, group) = follow(&server, &organization["organization_group"], &acme.token);
    assert_eq!(status, StatusCode::OK, "{group}");
    check("the organization group", &group, ORGANIZATION_GROUP);

    let users = organization["users"].as_array().expect("users");
    assert_eq!(users.len(), 2, "{organization}");
    assert!(users.contains(&member["url"]), "{organization}");
    for url in users {
        let (status, user) = follow(&server, url, &acme.token);
        assert_eq!(status, StatusCode::OK, "{user}");
        check("a user", &user, USER);
    }
    let (status, listed) = acme.get(&format!("/users?{CLIENT_PARAMETERS}"));
    assert_eq!(status, StatusCode::OK, "{listed}");
    for user in listed["results"].as_array().expect("results") {
        check("a listed user", user, USER);
    }

    // The admin logged in (the tenant's token): its last login is known.
    let (status, admin) = acme.get("/auth/user");
    assert_eq!(status, StatusCode::OK, "{admin}");
    check("the admin", &admin, USER);
    assert!(admin["last_login"].is_string(), "{admin}");
    assert_eq!(admin["groups"], json!([group_url(&acme, "admin")]));
    assert_eq!(member["groups"], json!([group_url(&acme, "annotator")]));
}

#[test]
fn roles_are_listed_as_rossums_groups() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");

    let (status, groups) = acme.get(&format!("/groups?{CLIENT_PARAMETERS}"));
    assert_eq!(status, StatusCode::OK, "{groups}");
    assert_eq!(groups["pagination"]["total"], 2, "{groups}");
    assert!(groups["pagination"]["next"].is_null(), "{groups}");
    let results = groups["results"].as_array().expect("results");
    for group in results {
        check("a group", group, GROUP);
        let (status, shown) = follow(&server, &group["url"], &acme.token);
        assert_eq!(status, StatusCode::OK, "{shown}");
        assert_eq!(&shown, group);
    }
    let names: Vec<&str> = results
        .iter()
        .filter_map(|group| group["name"].as_str())
        .collect();
    assert_eq!(names, ["admin", "annotator"]);

    let (_, admins) = acme.get("/groups?name=admin");
    assert_eq!(admins["pagination"]["total"], 1, "{admins}");
    let (_, by_name) = acme.get("/groups?ordering=-name&page_size=1");
    assert_eq!(by_name["results"][0]["name"], "annotator", "{by_name}");
    assert!(by_name["pagination"]["next"].is_string(), "{by_name}");
    assert_eq!(acme.get("/groups/99").0, StatusCode::NOT_FOUND);
    assert_eq!(
        acme.get("/groups?ordering=colour").0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(server.get("/groups", OPERATOR_TOKEN).0, StatusCode::OK);
    assert_eq!(
        server.send(Method::GET, "/groups", None, None).0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn users_are_created_with_rossums_groups() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let admin_group = group_url(&acme, "admin");
    let annotator_group = group_url(&acme, "annotator");

    // As Rossum's create_new_user sends it.
    let (status, boss) = acme.post(
        "/users",
        json!({"username": "boss", "password": "long enough", "email": "boss@acme.example",
               "groups": [admin_group], "queues": []}),
    );
    assert_eq!(status, StatusCode::CREATED, "{boss}");
    assert_eq!(boss["role"], "admin");
    assert_eq!(boss["groups"], json!([admin_group]));
    let (status, ann) = acme.post(
        "/users",
        json!({"username": "ann", "password": "long enough", "groups": [annotator_group],
               "role": "member"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{ann}");
    assert_eq!(ann["role"], "member");
    assert_eq!(ann["groups"], json!([annotator_group]));
    // Neither groups nor role: a member, an annotator.
    let (status, plain) = acme.post(
        "/users",
        json!({"username": "plain", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    assert_eq!(plain["groups"], json!([annotator_group]));

    // The group decides what each may do.
    let boss_token = server.login("boss", "long enough");
    let (status, queue) = server.post("/queues", Some(&boss_token), json!({"name": "boss's"}));
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    let ann_token = server.login("ann", "long enough");
    let (status, _) = server.post("/queues", Some(&ann_token), json!({"name": "ann's"}));
    assert_eq!(status, StatusCode::FORBIDDEN);

    let user = |extra: Value| {
        let mut body = json!({"username": "refused", "password": "long enough"});
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        acme.post("/users", body)
    };
    assert_refused(
        &user(json!({"groups": ["https://elis.rossum.ai/api/v1/groups/7"]})),
        "groups",
    );
    assert_refused(
        &user(json!({"groups": [admin_group, annotator_group]})),
        "groups",
    );
    assert_refused(
        &user(json!({"groups": [admin_group], "role": "member"})),
        "groups",
    );
    assert_refused(&user(json!({"queues": ["banana"]})), "queues");
    assert_refused(&user(json!({"email": "not an address"})), "email");
    assert_refused(&user(json!({"is_active": false})), "is_active");
    let (_, users) = acme.get("/users");
    assert_eq!(
        users["pagination"]["total"], 4,
        "nothing refused was created: {users}"
    );
}

#[test]
fn users_are_updated_as_rossums_api_allows() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let (status, ann) = acme.post(
        "/users",
        json!({"username": "ann", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{ann}");
    let ann_path = format!("/users/{}", ann["id"]);

    let (status, patched) = acme.patch(
        &ann_path,
        json!({"first_name": "Ann", "last_name": "Lee", "email": "ann@acme.example"}),
    );
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (
            &patched["first_name"],
            &patched["last_name"],
            &patched["email"]
        ),
        (&json!("Ann"), &json!("Lee"), &json!("ann@acme.example"))
    );
    // What was read, sent back whole, changes nothing.
    let (status, put) = acme.put(&ann_path, patched.clone());
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put, patched);

    // An admin raises her by Rossum's groups, and lowers her by wasmhook's role.
    let (status, raised) = acme.patch(&ann_path, json!({"groups": [group_url(&acme, "admin")]}));
    assert_eq!(status, StatusCode::OK, "{raised}");
    assert_eq!(raised["role"], "admin");
    let (status, lowered) = acme.patch(&ann_path, json!({"role": "member"}));
    assert_eq!(status, StatusCode::OK, "{lowered}");
    assert_eq!(lowered["groups"], json!([group_url(&acme, "annotator")]));
    // An admin sets her password.
    let (status, answer) = acme.patch(&ann_path, json!({"password": "a new password"}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    let ann_token = server.login("ann", "a new password");

    // She changes her own names, not her role, activity or password, nor anyone else.
    let as_ann =
        |path: &str, body: Value| server.send(Method::PATCH, path, Some(&ann_token), Some(body));
    let (status, renamed) = as_ann(&ann_path, json!({"first_name": "Anna"}));
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["first_name"], "Anna");
    for body in [
        json!({"groups": [group_url(&acme, "admin")]}),
        json!({"role": "admin"}),
        json!({"is_active": false}),
        json!({"password": "my own choice"}),
    ] {
        let (status, answer) = as_ann(&ann_path, body);
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    }
    let (_, admin) = acme.get("/auth/user");
    let admin_path = format!("/users/{}", admin["id"]);
    assert_eq!(
        as_ann(&admin_path, json!({"first_name": "Mallory"})).0,
        StatusCode::FORBIDDEN
    );

    // An admin neither demotes nor deactivates themselves, but renames themselves.
    assert_eq!(
        acme.patch(&admin_path, json!({"role": "member"})).0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        acme.patch(&admin_path, json!({"is_active": false})).0,
        StatusCode::FORBIDDEN
    );
    let (status, answer) = acme.patch(&admin_path, json!({"last_name": "Boss"}));
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Refused with the field named, and nothing written.
    assert_refused(
        &acme.patch(&ann_path, json!({"username": "someone-else"})),
        "username",
    );
    assert_refused(
        &acme.patch(
            &ann_path,
            json!({"organization": format!("{}/organizations/999", server.base)}),
        ),
        "organization",
    );
    assert_refused(&acme.patch(&ann_path, json!({"groups": []})), "groups");
    assert_refused(
        &acme.patch(&ann_path, json!({"groups": ["/api/v1/groups/42"]})),
        "groups",
    );
    assert_refused(
        &acme.patch(&ann_path, json!({"password": "short"})),
        "password",
    );
    assert_refused(
        &acme.patch(&ann_path, json!({"first_name": "x".repeat(151)})),
        "first_name",
    );
    let (_, after) = acme.get(&ann_path);
    assert_eq!(after["first_name"], "Anna", "{after}");
    assert_eq!(after["role"], "member", "{after}");
    assert_eq!(after["is_active"], true, "{after}");
    assert_eq!(after["username"], "ann", "{after}");

    // The operator changes any user.
    let (status, answer) = server.send(
        Method::PATCH,
        &ann_path,
        Some(OPERATOR_TOKEN),
        Some(json!({"email": "anna@acme.example"})),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["email"], "anna@acme.example");
}

#[test]
fn a_deactivated_user_cannot_log_in_and_its_tokens_stop_working() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let (status, ann) = acme.post(
        "/users",
        json!({"username": "ann", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{ann}");
    let ann_path = format!("/users/{}", ann["id"]);
    let old_token = server.login("ann", "long enough");
    assert_eq!(server.get("/auth/user", &old_token).0, StatusCode::OK);

    let (status, deactivated) = acme.patch(&ann_path, json!({"is_active": false}));
    assert_eq!(status, StatusCode::OK, "{deactivated}");
    assert_eq!(deactivated["is_active"], false);
    let (status, answer) = server.get("/auth/user", &old_token);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(
        server.get("/queues", &old_token).0,
        StatusCode::UNAUTHORIZED
    );
    let (status, answer) = server.post(
        "/auth/login",
        None,
        json!({"username": "ann", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // Still there, inactive.
    let (_, listed) = acme.get(&ann_path);
    assert_eq!(listed["is_active"], false, "{listed}");

    // Reactivated, she logs in again; the token she had stays dead.
    let (status, answer) = acme.patch(&ann_path, json!({"is_active": true}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    let fresh = server.login("ann", "long enough");
    assert_eq!(server.get("/auth/user", &fresh).0, StatusCode::OK);
    assert_eq!(
        server.get("/auth/user", &old_token).0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn a_user_created_without_a_password_cannot_log_in_until_an_admin_sets_one() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    // Rossum's create_new_user sends no password (Rossum invites by email).
    let (status, ann) = acme.post(
        "/users",
        json!({"username": "ann", "email": "ann@acme.example"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{ann}");
    assert!(ann.get("password").is_none_or(Value::is_null), "{ann}");
    for password in ["", "!", "long enough", "a password nobody set"] {
        let (status, answer) = server.post(
            "/auth/login",
            None,
            json!({"username": "ann", "password": password}),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{password:?}: {answer}");
    }
    let ann_path = format!("/users/{}", ann["id"]);
    let (status, answer) = acme.patch(&ann_path, json!({"password": "long enough"}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    let token = server.login("ann", "long enough");
    let (status, me) = server.get("/auth/user", &token);
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "ann");
}

#[test]
fn auth_user_answers_the_caller() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");

    let (status, me) = acme.get("/auth/user");
    assert_eq!(status, StatusCode::OK, "{me}");
    check("/auth/user", &me, USER);
    assert_eq!(me["username"], "acme-admin");
    // As Rossum's retrieve_own_organization does: follow `organization`.
    let (status, organization) = follow(&server, &me["organization"], &acme.token);
    assert_eq!(status, StatusCode::OK, "{organization}");
    assert_eq!(organization["name"], "acme");
    assert!(
        organization["users"]
            .as_array()
            .is_some_and(|users| users.contains(&me["url"])),
        "{organization}"
    );

    let (status, _) = acme.post(
        "/users",
        json!({"username": "ann", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::CREATED);
    let ann = server.login("ann", "long enough");
    let (status, ann_me) = server.get("/auth/user", &ann);
    assert_eq!(status, StatusCode::OK, "{ann_me}");
    assert_eq!(ann_me["username"], "ann");
    assert_eq!(ann_me["organization"], me["organization"]);

    // The operator is no user; without a token, 401.
    let (status, answer) = server.get("/auth/user", OPERATOR_TOKEN);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(
        server.send(Method::GET, "/auth/user", None, None).0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn another_organizations_users_queues_and_schemas_are_not_found() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let globex = Tenant::new(&server, "globex");

    let (_, theirs) = globex.get("/auth/user");
    let path = format!("/users/{}", theirs["id"]);
    for (status, answer) in [
        acme.patch(&path, json!({"first_name": "Mole"})),
        acme.put(&path, json!({"is_active": false})),
        acme.get(&path),
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    }
    let (_, unchanged) = globex.get(&path);
    assert_eq!(unchanged["first_name"], "", "{unchanged}");
    assert_eq!(unchanged["is_active"], true, "{unchanged}");

    let (status, queue) = globex.post("/queues", json!({"name": "theirs"}));
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    assert_eq!(
        acme.get(&format!("/queues/{}", queue["id"])).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        follow(&server, &queue["schema"], &acme.token).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        follow(&server, &queue["schema"], &globex.token).0,
        StatusCode::OK
    );

    // Each organization lists its own users only.
    let (_, organizations) = acme.get("/organizations");
    let users = organizations["results"][0]["users"]
        .as_array()
        .expect("users");
    assert_eq!(users.len(), 1, "{organizations}");
    assert!(!users.contains(&theirs["url"]), "{organizations}");
}
