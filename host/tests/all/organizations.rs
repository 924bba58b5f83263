//! Organizations and users changed and deleted as Rossum's API allows (issue 16): an
//! organization renamed by its admin or the operator (a `PUT` of what was read succeeds),
//! deleted by the operator with everything it owns (its tokens refused, its hooks, run logs
//! and own module bytes gone, bytes another organization shares kept); a user deleted by an
//! admin (not themself) or the operator, its tokens and login refused, and not while a hook
//! runs as it.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wasmhook_tests::guests::{HELLO, INVOICE_CHECK};

use super::support::{id_of, temp, Server, Tenant, OPERATOR_TOKEN};

/// DELETE `path` with `token`; the status (a 204 has no body to read).
fn delete_as(server: &Server, path: &str, token: &str) -> StatusCode {
    server
        .client
        .delete(server.url(path))
        .bearer_auth(token)
        .send()
        .expect("the server answers")
        .status()
}

/// Whether the data directory holds the file of `module`'s bytes (by its `sha256`).
fn has_bytes(data_dir: &Path, module: &Value) -> bool {
    let sha256 = module["sha256"].as_str().expect("a module's sha256");
    data_dir
        .join("modules")
        .join(format!("{sha256}.wasm"))
        .exists()
}

#[test]
fn an_organization_is_renamed_by_its_admin_or_the_operator() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let globex = Tenant::new(&server, "globex");
    let path = format!("/organizations/{}", acme.organization_id());
    let globex_path = format!("/organizations/{}", globex.organization_id());

    // What was read, sent back whole (read-only keys and all), changes nothing.
    let (status, read) = acme.get(&path);
    assert_eq!(status, StatusCode::OK, "{read}");
    let (status, put) = acme.put(&path, read.clone());
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put, read);

    let (status, patched) = acme.patch(&path, json!({"name": "  Acme Corp "}));
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Acme Corp");
    let mut renamed = read.clone();
    renamed["name"] = json!("Acme Inc");
    let (status, put) = acme.put(&path, renamed);
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["name"], "Acme Inc");
    assert_eq!(put["users"], read["users"]);
    assert_eq!(acme.get(&path).1["name"], "Acme Inc");
    let (status, empty) = acme.patch(&path, json!({"metadata": {}, "ui_settings": null}));
    assert_eq!(status, StatusCode::OK, "{empty}");

    // Refused with the field named, and nothing written.
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"metadata": {"region": "eu"}}), "metadata"),
        (json!({"ui_settings": {"theme": "dark"}}), "ui_settings"),
    ] {
        let (status, answer) = acme.patch(&path, body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert!(answer.to_string().contains(field), "{field}: {answer}");
    }
    assert_eq!(
        acme.patch(&path, json!({"name": 7})).0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(acme.get(&path).1["name"], "Acme Inc");

    // A member may not; another organization's is not found; the operator renames any.
    let (status, member) = acme.post(
        "/users",
        json!({"username": "ann", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let ann = server.login("ann", "long enough");
    for method in [Method::PATCH, Method::PUT] {
        let (status, answer) =
            server.send(method, &path, Some(&ann), Some(json!({"name": "Ann's"})));
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    }
    let (status, answer) = acme.patch(&globex_path, json!({"name": "Mole"}));
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = server.send(
        Method::PATCH,
        &globex_path,
        Some(OPERATOR_TOKEN),
        Some(json!({"name": "Globex Ltd"})),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(globex.get(&globex_path).1["name"], "Globex Ltd");
    assert_eq!(acme.get(&path).1["name"], "Acme Inc");
    let (status, answer) = server.send(
        Method::PATCH,
        "/organizations/999",
        Some(OPERATOR_TOKEN),
        Some(json!({"name": "nobody"})),
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

#[test]
fn deleting_an_organization_deletes_everything_it_owns() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let globex = Tenant::new(&server, "globex");
    let id = acme.organization_id();
    let path = format!("/organizations/{id}");
    let (_, admin) = acme.get("/auth/user");
    let (status, ann) = acme.post(
        "/users",
        json!({"username": "ann", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{ann}");
    let ann_token = server.login("ann", "long enough");

    // Acme's modules: hello, whose bytes globex uploads too, and invoice-check, its own.
    let hello = acme.upload(HELLO);
    let invoice = acme.upload(INVOICE_CHECK);
    let theirs = globex.upload(HELLO);
    let module = |url: &str| {
        let (status, module) = server.get(&format!("/modules/{}", id_of(url)), OPERATOR_TOKEN);
        assert_eq!(status, StatusCode::OK, "{module}");
        module
    };
    let (hello_module, invoice_module) = (module(&hello), module(&invoice));
    assert_eq!(hello_module["sha256"], module(&theirs)["sha256"]);
    assert!(has_bytes(dir.path(), &hello_module));
    assert!(has_bytes(dir.path(), &invoice_module));

    // A queue, a hook with a token owner and secrets, and its run log.
    let (status, queue) = acme.post("/queues", json!({"name": "Invoices"}));
    assert_eq!(status, StatusCode::CREATED, "{queue}");
    let hook = acme.hook(
        &hello,
        json!({"queues": [queue["url"]], "token_owner": admin["url"],
               "secrets": {"api_key": "s3cret"}}),
    );
    let (status, answer) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    let hook_logs = format!("/hooks/logs?hook={}", hook["id"]);
    let (_, logs) = server.get(&hook_logs, OPERATOR_TOKEN);
    assert_eq!(logs["results"].as_array().map(Vec::len), Some(1), "{logs}");

    // Only the operator deletes it; another organization does not see it.
    assert_eq!(acme.delete(&path), StatusCode::FORBIDDEN);
    assert_eq!(delete_as(&server, &path, &ann_token), StatusCode::FORBIDDEN);
    assert_eq!(globex.delete(&path), StatusCode::NOT_FOUND);
    assert_eq!(acme.get(&path).0, StatusCode::OK, "nothing was deleted");
    assert_eq!(
        delete_as(&server, &path, OPERATOR_TOKEN),
        StatusCode::NO_CONTENT
    );

    // Gone, not listed, its tokens and logins refused.
    assert_eq!(server.get(&path, OPERATOR_TOKEN).0, StatusCode::NOT_FOUND);
    let (_, organizations) = server.get("/organizations", OPERATOR_TOKEN);
    let listed = organizations["results"].as_array().expect("results");
    assert!(
        listed.iter().all(|organization| organization["id"] != id),
        "{organizations}"
    );
    assert_eq!(organizations["pagination"]["total"], 1, "{organizations}");
    for token in [&acme.token, &ann_token] {
        assert_eq!(server.get("/auth/user", token).0, StatusCode::UNAUTHORIZED);
    }
    for username in ["acme-admin", "ann"] {
        let (status, answer) = server.post(
            "/auth/login",
            None,
            json!({"username": username, "password": "long enough"}),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{username}: {answer}");
    }

    // Everything it owned is gone: users, queue, hook, modules, run logs.
    for gone in [
        format!("/users/{}", admin["id"]),
        format!("/users/{}", ann["id"]),
        format!("/queues/{}", queue["id"]),
        format!("/hooks/{}", hook["id"]),
        format!("/modules/{}", id_of(&hello)),
        format!("/modules/{}", id_of(&invoice)),
    ] {
        let (status, answer) = server.get(&gone, OPERATOR_TOKEN);
        assert_eq!(status, StatusCode::NOT_FOUND, "{gone}: {answer}");
    }
    let (_, logs) = server.get(&hook_logs, OPERATOR_TOKEN);
    assert_eq!(logs["results"], json!([]), "{logs}");

    // Its own bytes are deleted; those globex uploaded too are kept, and still run.
    assert!(!has_bytes(dir.path(), &invoice_module));
    assert!(has_bytes(dir.path(), &hello_module));
    let their_hook = globex.hook(&theirs, json!({}));
    let (status, answer) = globex.invoke(&their_hook, json!({}));
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Once is enough; a new organization gets a new id.
    assert_eq!(
        delete_as(&server, &path, OPERATOR_TOKEN),
        StatusCode::NOT_FOUND
    );
    let (status, next) = server.post(
        "/organizations",
        Some(OPERATOR_TOKEN),
        json!({"name": "acme"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{next}");
    assert!(next["id"].as_u64() > Some(id), "{next}");
}

#[test]
fn a_deleted_user_loses_its_tokens_and_its_login() {
    let dir = temp();
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let globex = Tenant::new(&server, "globex");
    let (_, admin) = acme.get("/auth/user");
    let admin_path = format!("/users/{}", admin["id"]);
    let create = |username: &str, role: &str| {
        let (status, user) = acme.post(
            "/users",
            json!({"username": username, "password": "long enough", "role": role}),
        );
        assert_eq!(status, StatusCode::CREATED, "{user}");
        user
    };
    let (ann, bob, carl) = (
        create("ann", "member"),
        create("bob", "admin"),
        create("carl", "member"),
    );
    let path = |user: &Value| format!("/users/{}", user["id"]);
    let ann_token = server.login("ann", "long enough");
    let bob_token = server.login("bob", "long enough");
    let bob_path = path(&bob);

    // No admin deletes themself; a member deletes no one; another organization sees no one.
    for (token, own) in [(&acme.token, &admin_path), (&bob_token, &bob_path)] {
        let (status, answer) = server.send(Method::DELETE, own, Some(token.as_str()), None);
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert!(answer.to_string().contains("themselves"), "{answer}");
    }
    assert_eq!(
        delete_as(&server, &path(&carl), &ann_token),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        delete_as(&server, &path(&ann), &ann_token),
        StatusCode::FORBIDDEN
    );
    assert_eq!(globex.delete(&path(&ann)), StatusCode::NOT_FOUND);

    // A hook runs with her tokens: she stays until it has another token owner (or none).
    let hook = acme.hook(&acme.upload(HELLO), json!({"token_owner": ann["url"]}));
    let (status, answer) = server.send(Method::DELETE, &path(&ann), Some(&acme.token), None);
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer
            .to_string()
            .contains(&format!("/hooks/{}", hook["id"])),
        "the refusal names the hook: {answer}"
    );
    assert_eq!(
        server.get("/auth/user", &ann_token).0,
        StatusCode::OK,
        "nothing was deleted"
    );
    let (status, answer) = acme.patch(
        &format!("/hooks/{}", hook["id"]),
        json!({"token_owner": null}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Deleted: her token and her login are refused, and she is not found.
    assert_eq!(acme.delete(&path(&ann)), StatusCode::NO_CONTENT);
    assert_eq!(
        server.get("/auth/user", &ann_token).0,
        StatusCode::UNAUTHORIZED
    );
    let (status, answer) = server.post(
        "/auth/login",
        None,
        json!({"username": "ann", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(acme.get(&path(&ann)).0, StatusCode::NOT_FOUND);
    let (_, organization) = acme.get(&format!("/organizations/{}", acme.organization_id()));
    let users = organization["users"].as_array().expect("users");
    assert!(!users.contains(&ann["url"]), "{organization}");
    assert_eq!(acme.delete(&path(&ann)), StatusCode::NOT_FOUND);

    // An admin deletes another admin; the operator deletes anyone.
    assert_eq!(acme.delete(&bob_path), StatusCode::NO_CONTENT);
    assert_eq!(
        server.get("/auth/user", &bob_token).0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        delete_as(&server, &path(&carl), OPERATOR_TOKEN),
        StatusCode::NO_CONTENT
    );
    let (status, me) = acme.get("/auth/user");
    assert_eq!(status, StatusCode::OK, "{me}");
    // A new user never gets a deleted user's id.
    let dora = create("dora", "member");
    assert!(dora["id"].as_u64() > carl["id"].as_u64(), "{dora}");
}
