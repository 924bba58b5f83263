//! Several `wasmhook serve` processes on one PostgreSQL schema, each with its own data
//! directory, as replicas behind a load balancer run: any of them answers any request with
//! the same rows, a change answered through one is what another serves on its very next
//! request (their caches hear each other's writes, and each request first catches up with
//! them), and replicas starting together migrate the schema once.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use wasmhook_tests::guests::{HELLO, HOSTILE};

use crate::support::{
    schema_url_of, share_database, temp, wait_until, Server, Tenant, OPERATOR_TOKEN,
};

/// How long replicas may take to count each other from their heartbeats.
const HEARTBEATS: Duration = Duration::from_secs(10);

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
    let (status, seen) = second.get(&path, &tenant.token);
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(
        seen["name"], "renamed",
        "the second replica serves the change"
    );
    assert_eq!(seen["active"], false);

    // A list through the second replica, filtered in the database.
    let (status, listed) = second.get("/hooks?active=false", &tenant.token);
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["results"][0]["name"], "renamed", "{listed}");

    assert_eq!(tenant.delete(&path), StatusCode::NO_CONTENT);
    assert_eq!(
        second.get(&path, &tenant.token).0,
        StatusCode::NOT_FOUND,
        "the second replica serves the deletion"
    );
}

#[test]
fn every_call_through_another_replica_runs_the_hook_as_last_patched() {
    let (first_dir, second_dir) = (temp(), temp());
    let first = start(first_dir.path());
    // The second hears each change 300 ms after its commit, as over a slow network: a call
    // right after a PATCH would race the notification, and run the old hook, if reads
    // did not wait for every change committed before the request began.
    share_database(first_dir.path(), second_dir.path());
    let second = Server::start_with(
        second_dir.path(),
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_SECRETS_KEY", SECRETS_KEY),
            ("WASMHOOK_TEST_LISTEN_DELAY_MS", "300"),
        ],
        &[],
    );
    let tenant = Tenant::new(&first, "patched");
    let hello = tenant.upload(HELLO);
    let hook = tenant.hook(&hello, json!({"settings": {"greeting": "Zero"}}));
    let path = format!("/hooks/{}", hook["id"]);
    // The second replica has compiled the module and cached the hook.
    assert!(
        wait_until(Instant::now() + COMPILE, || invoke(&second, &tenant, &hook)
            .0
            == StatusCode::OK),
        "the second replica runs the hook"
    );
    // Each PATCH answered by the first, then at once a call through the second: no wait
    // in between for a notification to arrive.
    for round in 0..8 {
        let greeting = format!("Round{round}");
        let (status, patched) = tenant.patch(&path, json!({"settings": {"greeting": greeting}}));
        assert_eq!(status, StatusCode::OK, "{patched}");
        let (status, answer) = invoke(&second, &tenant, &hook);
        assert_eq!(status, StatusCode::OK, "{answer}");
        let content = answer["messages"][0]["content"]
            .as_str()
            .unwrap_or_default();
        assert!(
            content.starts_with(&format!("{greeting},")),
            "round {round}: the second replica ran {content:?}"
        );
    }
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
        assert_eq!(
            replica.get("/auth/user", &token).0,
            StatusCode::UNAUTHORIZED,
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
    assert_eq!(applied.as_deref(), Some("14 14"), "one row per migration");
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
        assert_eq!(
            replica.get("/organizations", OPERATOR_TOKEN).0,
            StatusCode::UNAUTHORIZED,
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

#[test]
fn a_module_deleted_through_one_replica_has_its_file_dropped_by_another() {
    let (first_dir, second_dir) = (temp(), temp());
    let first = start(first_dir.path());
    let second = replica(first_dir.path(), second_dir.path());
    let tenant = Tenant::new(&first, "forgetting");
    let module = tenant.upload(HELLO);
    let files = |dir: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.join("modules"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
                    .collect()
            })
            .unwrap_or_default()
    };
    // The second replica fetches the bytes to compile them ahead.
    assert!(
        wait_until(Instant::now() + COMPILE, || files(second_dir.path()).len()
            == 1),
        "the second replica has the module's file"
    );
    // Older than an upload under way could make it (files younger than a minute stay).
    for file in files(second_dir.path()) {
        std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|opened| {
                opened.set_modified(std::time::SystemTime::now() - Duration::from_secs(120))
            })
            .expect("the file's time is set");
    }
    assert_eq!(
        tenant.delete(&crate::support::api_path(&module)),
        StatusCode::NO_CONTENT
    );
    assert!(files(first_dir.path()).is_empty(), "deleted where deleted");
    assert!(
        wait_until(Instant::now() + Duration::from_secs(20), || files(
            second_dir.path()
        )
        .is_empty()),
        "the other replica drops its copy once it hears of the deletion: {}",
        second.log()
    );
    drop(second);
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
    // It must outlast both replicas' waits for their heartbeats below (up to HEARTBEATS
    // each, longer on a loaded machine), so it spins longer than the helper's 5 s limit.
    let spinner = tenant.upload(HOSTILE);
    let sleeper = tenant.hook(
        &spinner,
        json!({"settings": {"behavior": "spin", "ms": 25000},
               "config": {"runtime": "wasm", "module": spinner, "timeout_s": 30}}),
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
                wait_until(Instant::now() + HEARTBEATS, || invoke(server, &greeter).0
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
            wait_until(Instant::now() + HEARTBEATS, || invoke(&first, &greeter).0
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

/// A replica for the delivery tests: webhooks on loopback, retries after `retry_ms`, polls
/// every 200 ms, and leases of 1.5 s, so that a killed replica's deliveries are taken over
/// within seconds.
fn delivering(data_dir: &Path, retry_ms: &str) -> Server {
    Server::for_webhooks_with(
        data_dir,
        &[
            ("WASMHOOK_SECRETS_KEY", SECRETS_KEY),
            ("WASMHOOK_RETRY_DELAY_MS", retry_ms),
            ("WASMHOOK_WEBHOOK_POLL_INTERVAL_MS", "200"),
            ("WASMHOOK_DELIVERY_LEASE_MS", "1500"),
        ],
    )
}

/// The non-interactive event these tests send, through `server` as `tenant`'s admin.
fn send_event(server: &Server, tenant: &Tenant<'_>) -> (StatusCode, serde_json::Value) {
    server.post(
        "/events",
        Some(&tenant.token),
        json!({"event": "upload", "action": "created", "payload": {"files": []}}),
    )
}

/// How long a taken-over delivery may take to finish: a lease (1.5 s) and a retry, on a
/// busy machine.
const TAKEOVER: Duration = Duration::from_secs(60);

#[test]
fn a_replica_killed_mid_attempt_has_the_attempt_logged_once_and_the_retry_made_by_another() {
    let (first_dir, second_dir) = (temp(), temp());
    let mut first = delivering(first_dir.path(), "200");
    share_database(first_dir.path(), second_dir.path());
    let second = delivering(second_dir.path(), "200");
    let upstream = crate::support::Upstream::start();
    let tenant = Tenant::new(&second, "takeover");
    let hook = tenant.webhook(
        &format!("{}/slow", upstream.base),
        json!({"retry_count": 2}),
    );
    // The first attempt is still waiting for its answer when its replica dies.
    upstream.script(
        "/slow",
        vec![crate::support::Reply::Slow(Duration::from_secs(20))],
    );
    std::thread::scope(|scope| {
        let first = &first;
        let tenant = &tenant;
        let posted = scope.spawn(move || send_event(first, tenant));
        assert!(
            wait_until(Instant::now() + TAKEOVER, || !upstream
                .received("/slow")
                .is_empty()),
            "the first attempt reached the webhook"
        );
        // The replica making it dies; the request with it.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &first.pid().to_string()])
            .status();
        let _ = posted.join();
    });
    first.kill();
    // The other replica takes the delivery over once the lease has run out: it logs the
    // interrupted attempt as failed, once, and makes the retry, which completes.
    let logs = |server: &Server| {
        let (status, logs) = server.get(&format!("/hooks/logs?hook={}", hook["id"]), &tenant.token);
        assert_eq!(status, StatusCode::OK, "{logs}");
        logs["results"].as_array().cloned().unwrap_or_default()
    };
    assert!(
        wait_until(Instant::now() + TAKEOVER, || logs(&second).len() >= 2),
        "the survivor finished the delivery: {:?}",
        logs(&second)
    );
    std::thread::sleep(Duration::from_secs(2));
    let logs = logs(&second);
    let statuses: Vec<&serde_json::Value> = logs.iter().map(|log| &log["status"]).collect();
    assert_eq!(
        statuses,
        [&json!("completed"), &json!("failed")],
        "{logs:?}"
    );
    assert!(
        logs[1]["message"]
            .as_str()
            .is_some_and(|message| message.contains("stopped before it ended")),
        "{}",
        logs[1]
    );
    assert_eq!(logs[0]["request_id"], logs[1]["request_id"]);
    assert_eq!(
        upstream.received("/slow").len(),
        2,
        "the attempt and one retry"
    );
    let (status, event) = second.get("/events/1", &tenant.token);
    assert_eq!(status, StatusCode::OK, "{event}");
    assert_eq!(event["state"], "finished", "{event}");
    assert_eq!(event["results"][0]["attempts"], 2, "{event}");
}

#[test]
fn a_replica_killed_while_polling_has_the_polling_finished_by_another() {
    let (first_dir, second_dir) = (temp(), temp());
    let mut first = delivering(first_dir.path(), "200");
    share_database(first_dir.path(), second_dir.path());
    let second = delivering(second_dir.path(), "200");
    let upstream = crate::support::Upstream::start();
    let tenant = Tenant::new(&second, "polling");
    let hook = tenant.webhook(
        &format!("{}/async", upstream.base),
        json!({"retry_count": 0, "max_polling_time_s": 60}),
    );
    upstream.script(
        "/async",
        vec![crate::support::Reply::Accepted("/async/result".into())],
    );
    let files = json!({"files": [{"id": 1, "values": []}]});
    let mut polls = vec![crate::support::Reply::Json(202, json!({})); 10];
    polls.push(crate::support::Reply::Json(201, files.clone()));
    upstream.script("/async/result", polls);
    let (status, answer) = send_event(&first, &tenant);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["results"][0]["state"], "polling", "{answer}");
    assert!(
        wait_until(Instant::now() + TAKEOVER, || upstream
            .received("/async/result")
            .len()
            >= 2),
        "the polling began"
    );
    first.kill();
    let path = format!("/events/{}", answer["id"]);
    assert!(
        wait_until(Instant::now() + TAKEOVER, || second
            .get(&path, &tenant.token)
            .1["state"]
            == "finished"),
        "the survivor finished the polling"
    );
    let (_, event) = second.get(&path, &tenant.token);
    assert_eq!(event["results"][0]["status"], "completed", "{event}");
    assert_eq!(event["results"][0]["response"], files, "{event}");
    assert_eq!(event["results"][0]["attempts"], 1, "{event}");
    let (_, logs) = second.get(&format!("/hooks/logs?hook={}", hook["id"]), &tenant.token);
    let logs = logs["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(logs.len(), 1, "one attempt, one log: {logs:?}");
    assert_eq!(logs[0]["status_code"], 201);
    assert_eq!(
        upstream.received("/async").len(),
        1,
        "the call was not sent again"
    );
}

#[test]
fn deliveries_pending_when_every_replica_is_killed_complete_once_one_is_back() {
    let (first_dir, second_dir, third_dir) = (temp(), temp(), temp());
    let mut first = delivering(first_dir.path(), "3000");
    share_database(first_dir.path(), second_dir.path());
    let mut second = delivering(second_dir.path(), "3000");
    let upstream = crate::support::Upstream::start();
    let tenant = Tenant::new(&first, "restarts");
    let hook = tenant.webhook(
        &format!("{}/flaky", upstream.base),
        json!({"retry_count": 1}),
    );
    upstream.script("/flaky", vec![crate::support::Reply::Json(503, json!({}))]);
    let token = tenant.token.clone();
    let (status, answer) = send_event(&second, &tenant);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    first.kill();
    second.kill();
    // A new replica, three seconds later, with nothing in memory of the event.
    let third = replica(first_dir.path(), third_dir.path());
    let path = format!("/events/{}", answer["id"]);
    assert!(
        wait_until(Instant::now() + TAKEOVER, || third.get(&path, &token).1
            ["state"]
            == "finished"),
        "the new replica finished the delivery"
    );
    let (_, event) = third.get(&path, &token);
    assert_eq!(event["results"][0]["status"], "completed", "{event}");
    let (_, logs) = third.get(&format!("/hooks/logs?hook={}", hook["id"]), &token);
    let codes: Vec<serde_json::Value> = logs["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|log| log["status_code"].clone())
        .collect();
    assert_eq!(codes, [json!(200), json!(503)], "each attempt once");
    assert_eq!(upstream.received("/flaky").len(), 2);
}

#[test]
fn a_replica_killed_under_load_loses_no_answered_call_and_duplicates_none() {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    let (first_dir, second_dir) = (temp(), temp());
    let mut first = start(first_dir.path());
    let second = replica(first_dir.path(), second_dir.path());
    let tenant = Tenant::new(&second, "load");
    let hook = tenant.hook(&tenant.upload(HELLO), json!({}));
    for server in [&first, &second] {
        assert!(
            wait_until(Instant::now() + COMPILE, || invoke(server, &tenant, &hook)
                .0
                == StatusCode::OK),
            "each replica runs the hook"
        );
    }
    let urls = [
        first.url(&format!("/hooks/{}/invoke", hook["id"])),
        second.url(&format!("/hooks/{}/invoke", hook["id"])),
    ];
    let answered = Mutex::new(Vec::<String>::new());
    let failed = Mutex::new(0usize);
    let killed = AtomicBool::new(false);
    let client = crate::support::http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let (answered, failed, killed, urls, client, token) =
                (&answered, &failed, &killed, &urls, &client, &tenant.token);
            scope.spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut after_kill = 0;
                let mut turn = worker;
                // Until 64 calls have gone out after the kill (or a bound).
                while after_kill < 64 && Instant::now() < deadline {
                    if killed.load(Ordering::SeqCst) {
                        after_kill += 1;
                    }
                    turn += 1;
                    let request_id = uuid::Uuid::new_v4().to_string();
                    let sent = client
                        .post(&urls[turn % 2])
                        .bearer_auth(token)
                        .header("x-request-id", &request_id)
                        .json(&json!({}))
                        .send();
                    match sent {
                        Ok(response) if response.status() == StatusCode::OK => {
                            answered.lock().expect("not poisoned").push(request_id);
                        }
                        _ => *failed.lock().expect("not poisoned") += 1,
                    }
                }
            });
        }
        let under_way = wait_until(Instant::now() + Duration::from_secs(60), || {
            answered.lock().expect("not poisoned").len() >= 64
        });
        first.kill();
        killed.store(true, Ordering::SeqCst);
        assert!(under_way, "the load never got going");
    });
    let answered = answered.into_inner().expect("not poisoned");
    let failed = failed.into_inner().expect("not poisoned");
    let counts = wasmhook_tests::postgres::query_text_at(
        &schema_url_of(first_dir.path()),
        "SELECT COALESCE(string_agg(request_id || ' ' || n::text, ','), '')
         FROM (SELECT request_id, COUNT(*) AS n FROM run_logs GROUP BY request_id) AS logged",
    )
    .expect("PostgreSQL answers")
    .unwrap_or_default();
    let logged: HashMap<&str, u64> = counts
        .split(',')
        .filter_map(|pair| pair.split_once(' '))
        .map(|(id, n)| (id, n.parse().unwrap_or(0)))
        .collect();
    let missing = answered
        .iter()
        .filter(|id| !logged.contains_key(id.as_str()))
        .count();
    let duplicated = logged.values().filter(|n| **n > 1).count();
    eprintln!(
        "kill -9 of one of two replicas under load: {} calls answered 200, {failed} failed \
         (the killed replica's), {missing} answered without a run log, {duplicated} request ids \
         with several logs",
        answered.len()
    );
    assert!(answered.len() >= 64);
    assert_eq!(missing, 0, "answered calls lost their run log");
    assert_eq!(duplicated, 0, "a call logged twice");
    // The survivor still serves.
    assert_eq!(invoke(&second, &tenant, &hook).0, StatusCode::OK);
}
