//! Several `wasmhook serve` processes on one PostgreSQL schema, each with its own data
//! directory, as replicas behind a load balancer run: any of them answers any request with
//! the same rows, a change through one is what another serves as soon as its commit's
//! notification has arrived (their caches hear each other's writes; `PROPAGATION` bounds
//! the wait, measured in milliseconds here), and replicas starting together migrate the
//! schema once.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use wasmhook_tests::guests::{HELLO, HOSTILE};

use crate::support::{
    schema_url_of, share_database, temp, wait_until, Server, Tenant, OPERATOR_TOKEN,
};

/// How long a replica may serve what it cached before another replica's commit: until the
/// commit's notification arrives (LISTEN/NOTIFY is asynchronous). Far above what it takes
/// on one machine, so that only a notification that never comes fails the tests.
const PROPAGATION: Duration = Duration::from_secs(2);

/// Whether `seen` holds through `server` within [`PROPAGATION`].
fn soon(seen: impl FnMut() -> bool) -> bool {
    wait_until(Instant::now() + PROPAGATION, seen)
}

/// The key every replica seals and opens secrets with: replicas must share it.
const SECRETS_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A replica of the database of `first` on its own data directory.
fn replica(first: &Path, data_dir: &Path) -> Server {
    share_database(first, data_dir);
    start(data_dir)
}

fn start(data_dir: &Path) -> Server {
    Server::start_with(
        data_dir,
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_SECRETS_KEY", SECRETS_KEY),
            ("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("WASMHOOK_ALLOW_HTTP_WEBHOOKS", "true"),
        ],
        &[],
    )
}

#[test]
fn a_hook_made_through_one_replica_is_read_changed_and_deleted_through_another() {
    let (first_dir, second_dir) = (temp(), temp());
    let first = start(first_dir.path());
    let second = replica(first_dir.path(), second_dir.path());
    let tenant = Tenant::new(&first, "replicated");
    let hook = tenant.webhook("http://127.0.0.1:9/receiver", json!({}));
    let path = format!("/hooks/{}", hook["id"]);

    // Read through the second replica: it also fills that replica's cache.
    let (status, seen) = second.get(&path, &tenant.token);
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["name"], hook["name"]);
    assert_eq!(seen["settings"], json!({"region": "eu"}));

    let (status, renamed) = tenant.patch(&path, json!({"name": "renamed", "active": false}));
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert!(
        soon(|| second.get(&path, &tenant.token).1["name"] == "renamed"),
        "the second replica serves the change"
    );
    let (status, seen) = second.get(&path, &tenant.token);
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["active"], false);

    // A list through the second replica, filtered in the database.
    let (status, listed) = second.get("/hooks?active=false", &tenant.token);
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["results"][0]["name"], "renamed", "{listed}");

    assert_eq!(tenant.delete(&path), StatusCode::NO_CONTENT);
    assert!(
        soon(|| second.get(&path, &tenant.token).0 == StatusCode::NOT_FOUND),
        "the second replica serves the deletion"
    );
}

#[test]
fn a_token_revoked_through_one_replica_is_refused_by_every_other() {
    let (first_dir, second_dir) = (temp(), temp());
    let first = start(first_dir.path());
    let second = replica(first_dir.path(), second_dir.path());
    let (_organization, _admin) = first.organization_with_admin("sessions");
    let token = second.login("sessions-admin", "long enough");

    // Accepted by both, so that both have the session cached.
    for replica in [&first, &second] {
        let (status, user) = replica.get("/auth/user", &token);
        assert_eq!(status, StatusCode::OK, "{user}");
    }
    let (status, _) = second.send(Method::POST, "/auth/logout", Some(&token), None);
    assert_eq!(status, StatusCode::OK);
    for replica in [&first, &second] {
        assert!(
            soon(|| replica.get("/auth/user", &token).0 == StatusCode::UNAUTHORIZED),
            "the logged-out token is refused"
        );
    }
}

#[test]
fn replicas_starting_together_apply_each_migration_once() {
    let dirs: Vec<_> = (0..3).map(|_| temp()).collect();
    for dir in &dirs[1..] {
        share_database(dirs[0].path(), dir.path());
    }
    let servers: Vec<Server> = std::thread::scope(|scope| {
        let starting: Vec<_> = dirs
            .iter()
            .map(|dir| scope.spawn(|| start(dir.path())))
            .collect();
        starting
            .into_iter()
            .map(|handle| handle.join().expect("a replica starts"))
            .collect()
    });
    for server in &servers {
        let (status, _) = server.send(Method::GET, "/healthz", None, None);
        assert!(
            status.is_success() || status == StatusCode::NOT_FOUND,
            "{status}"
        );
        let ready = server
            .client
            .get(format!("{}/readyz", server.root()))
            .send()
            .expect("the replica answers");
        assert_eq!(ready.status(), StatusCode::OK);
    }
    let url = schema_url_of(dirs[0].path());
    let applied = wasmhook_tests::postgres::query_text_at(
        &url,
        "SELECT COUNT(*)::text || ' ' || MAX(version)::text FROM schema_migrations",
    )
    .expect("PostgreSQL answers");
    assert_eq!(applied.as_deref(), Some("10 10"), "one row per migration");
}

#[test]
fn the_operator_token_is_rotated_while_replicas_run_and_both_refuse_the_old_one() {
    let (first_dir, second_dir) = (temp(), temp());
    let first = start(first_dir.path());
    let second = replica(first_dir.path(), second_dir.path());
    // Both have the operator's session cached.
    for replica in [&first, &second] {
        let (status, body) = replica.get("/organizations", OPERATOR_TOKEN);
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .args(["operator", "rotate-token", "--database"])
        .arg(schema_url_of(first_dir.path()))
        .env_remove("WASMHOOK_OPERATOR_TOKEN")
        .output()
        .expect("the command runs");
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).expect("text");
    let token = token.trim();
    assert!(token.len() >= 16, "{token}");
    for replica in [&first, &second] {
        assert!(
            soon(|| replica.get("/organizations", OPERATOR_TOKEN).0 == StatusCode::UNAUTHORIZED),
            "the old operator token is refused"
        );
        let (status, body) = replica.get("/organizations", token);
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// How long a replica may take to compile a module another replica accepted: a Rust
/// guest compiles in well under a second here, in a debug build on a busy machine in a few.
const COMPILE: Duration = Duration::from_secs(60);

#[test]
fn a_module_uploaded_through_one_replica_runs_through_every_other() {
    let (first_dir, second_dir, third_dir) = (temp(), temp(), temp());
    let first = start(first_dir.path());
    let second = replica(first_dir.path(), second_dir.path());
    let tenant = Tenant::new(&first, "modules");
    let hello = tenant.upload(HELLO);
    let hook = tenant.hook(&hello, json!({}));
    let calls = |server: &Server| {
        wait_until(Instant::now() + COMPILE, || {
            invoke(server, &tenant, &hook).0 == StatusCode::OK
        })
    };
    // Compiled code in a data directory, before any call went there.
    let compiled = |dir: &Path| {
        wait_until(Instant::now() + COMPILE, || {
            std::fs::read_dir(dir.join("artifacts"))
                .map(|entries| entries.count() > 0)
                .unwrap_or(false)
        })
    };
    // The second replica was running: it compiles the module when it hears of it, before
    // any call asks for it.
    assert!(
        compiled(second_dir.path()),
        "the second replica compiled ahead"
    );
    assert!(calls(&second), "the second replica runs the module");
    // The third starts after the upload: it compiles what is ready when it starts.
    let third = replica(first_dir.path(), third_dir.path());
    assert!(
        compiled(third_dir.path()),
        "a replica started later compiled ahead"
    );
    assert!(calls(&third), "a replica started later runs the module");
    let (status, answer) = invoke(&third, &tenant, &hook);
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["messages"][0]["content"]
        .as_str()
        .is_some_and(|content| content.starts_with("Hello")));
    // Each has the bytes in its own data directory now, fetched from the database.
    for dir in [&second_dir, &third_dir] {
        let files = std::fs::read_dir(dir.path().join("modules"))
            .map(|entries| entries.count())
            .unwrap_or(0);
        assert!(files >= 1, "the module's file was fetched");
    }
}

/// A replica whose organizations may have two runs at once in all.
fn limited(data_dir: &Path) -> Server {
    Server::start_with(
        data_dir,
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_SECRETS_KEY", SECRETS_KEY),
            ("WASMHOOK_RUNS_PER_ORGANIZATION", "2"),
        ],
        &[],
    )
}

/// `hook`'s invocation through `server`, by `tenant`'s admin.
fn invoke(
    server: &Server,
    tenant: &Tenant<'_>,
    hook: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    server.post(
        &format!("/hooks/{}/invoke", hook["id"]),
        Some(&tenant.token),
        json!({}),
    )
}

#[test]
fn an_organizations_run_limit_holds_across_replicas() {
    let (first_dir, second_dir) = (temp(), temp());
    let first = limited(first_dir.path());
    share_database(first_dir.path(), second_dir.path());
    let second = limited(second_dir.path());
    let tenant = Tenant::new(&first, "limited");
    let organization = tenant.organization_id();
    let sleeper = tenant.hook(
        &tenant.upload(HOSTILE),
        json!({"settings": {"behavior": "spin", "ms": 8000}}),
    );
    let greeter = tenant.hook(&tenant.upload(HELLO), json!({}));
    let invoke = |server: &Server, hook: &serde_json::Value| invoke(server, &tenant, hook);
    // Both replicas compiled both modules before the limit is measured.
    for server in [&first, &second] {
        assert!(
            wait_until(Instant::now() + COMPILE, || invoke(server, &greeter).0
                == StatusCode::OK),
            "each replica runs the greeter"
        );
    }
    let sleeper = &sleeper;
    std::thread::scope(|scope| {
        for server in [&first, &second] {
            let sleeping = scope.spawn(move || invoke(server, sleeper));
            assert!(
                wait_until(Instant::now() + COMPILE, || server
                    .runs_in_flight(organization)
                    >= 1.0),
                "the sleeper runs"
            );
            // Two replicas, a limit of two: this one's share is one run, and the sleeper
            // holds it (once the heartbeats have counted both replicas).
            assert!(
                wait_until(Instant::now() + PROPAGATION * 5, || invoke(
                    server, &greeter
                )
                .0
                    == StatusCode::TOO_MANY_REQUESTS),
                "a second run on one replica is refused"
            );
            drop(sleeping);
        }
        // Both sleepers run: the organization is at its limit on every replica.
        for server in [&first, &second] {
            let (status, refused) = invoke(server, &greeter);
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
        }
    });
    // Once they are done, either replica runs again.
    for server in [&first, &second] {
        let (status, answer) = invoke(server, &greeter);
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
}

#[test]
fn a_replica_killed_mid_run_gives_its_share_back_and_the_other_serves_on() {
    let (first_dir, second_dir) = (temp(), temp());
    let first = limited(first_dir.path());
    share_database(first_dir.path(), second_dir.path());
    let mut second = limited(second_dir.path());
    let tenant = Tenant::new(&first, "survivors");
    let organization = tenant.organization_id();
    // Longer than the heartbeat window, within its time limit.
    let hostile = tenant.upload(HOSTILE);
    let sleeper = tenant.hook(
        &hostile,
        json!({"config": {"runtime": "wasm", "module": hostile, "timeout_s": 40},
               "settings": {"behavior": "spin", "ms": 25000}}),
    );
    let greeter = tenant.hook(&tenant.upload(HELLO), json!({}));
    let invoke = |server: &Server, hook: &serde_json::Value| invoke(server, &tenant, hook);
    assert!(
        wait_until(Instant::now() + COMPILE, || invoke(&second, &greeter).0
            == StatusCode::OK),
        "the second replica runs the greeter"
    );
    let running = |server: &Server| {
        wait_until(Instant::now() + COMPILE, || {
            server.runs_in_flight(organization) >= 1.0
        })
    };
    let sleeper = &sleeper;
    std::thread::scope(|scope| {
        // A run in flight on the second replica when it is killed: its caller gets no
        // answer, and the first replica serves on.
        let cut = scope.spawn(|| {
            second
                .client
                .post(second.url(&format!("/hooks/{}/invoke", sleeper["id"])))
                .bearer_auth(&tenant.token)
                .json(&json!({}))
                .send()
                .is_err()
        });
        assert!(running(&second), "the sleeper runs on the second replica");
        let holding = scope.spawn(|| invoke(&first, sleeper));
        assert!(running(&first), "a sleeper runs on the first replica");
        // Both replicas are counted: the first's share of two is the one it holds.
        assert!(
            wait_until(Instant::now() + PROPAGATION * 5, || invoke(
                &first, &greeter
            )
            .0
                == StatusCode::TOO_MANY_REQUESTS),
            "the first replica holds its share of one"
        );
        let killed = std::process::Command::new("kill")
            .args(["-9", &second.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        assert!(
            cut.join().expect("no panic"),
            "the killed replica's call is cut"
        );
        // Killed without leaving: once its last beat is older than the window (10 s), the
        // first replica takes the whole limit again, its sleeper still running.
        assert!(
            wait_until(Instant::now() + Duration::from_secs(20), || invoke(
                &first, &greeter
            )
            .0
                == StatusCode::OK),
            "the survivor admits a second run once the killed replica stops counting"
        );
        assert!(
            first.runs_in_flight(organization) >= 1.0,
            "while its own sleeper still runs"
        );
        let (status, answer) = holding.join().expect("no panic");
        assert_eq!(status, StatusCode::OK, "{answer}");
    });
    second.kill();
}
