//! Scheduled hooks, driven by a test clock (a file the server reads the time from) rather
//! than by waiting ten minutes: one run per tick, for a job and a webhook, even across a
//! restart, where the ticks missed while the server was down run once.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::HELLO;

use super::drf::field_message;
use super::server::{Server, Tenant, OPERATOR_TOKEN};
use super::support::wait_until;
use super::upstream::Upstream;

fn set_clock(file: &Path, now: DateTime<Utc>) {
    std::fs::write(file, now.to_rfc3339()).expect("the clock file is writable");
}

fn start(dir: &Path, clock: &Path) -> Server {
    let clock = clock.to_string_lossy().into_owned();
    Server::start_with(
        dir,
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_TEST_CLOCK_FILE", clock.as_str()),
            ("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("WASMHOOK_ALLOW_HTTP_WEBHOOKS", "true"),
        ],
        &[],
    )
}

/// Waits until the hook has `count` run logs, then a little longer to see no more come.
///
/// The second wait stays a wait of a fixed length: a scheduler pass that finds nothing due
/// leaves no trace to wait for (no log, no write, no metric), so "no more runs" is seen by
/// the scheduler's passes (every 100 ms with a test clock) having had the time to add one.
fn settle(tenant: &Tenant<'_>, hook: &Value, count: usize) -> Vec<Value> {
    wait_until(Instant::now() + Duration::from_secs(20), || {
        tenant.run_logs(hook).len() >= count
    });
    std::thread::sleep(QUIET);
    tenant.run_logs(hook)
}

/// How long no further run must come: six scheduler passes.
const QUIET: Duration = Duration::from_millis(600);

#[test]
fn a_schedule_runs_once_per_tick_even_across_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = dir.path().join("clock");
    let data = dir.path().join("data");
    let upstream = Upstream::start();
    let now = Utc::now();
    set_clock(&clock, now);
    let server = start(&data, &clock);
    let acme = Tenant::new(&server, "acme");

    // Schedules are checked when saved: five fields, at most every ten minutes.
    let hello = acme.upload(HELLO);
    for (schedule, reason) in [
        (
            json!({"cron": "*/5 * * * *"}),
            "at most once every 10 minutes",
        ),
        (
            json!({"cron": "61 * * * *"}),
            "not a five-field cron expression",
        ),
        (
            json!({"every": "hour"}),
            "schedule.every: not a key of a schedule",
        ),
    ] {
        let (status, refused) = acme.post(
            "/hooks",
            json!({"name": "job", "type": "job", "events": [],
                   "config": {"runtime": "wasm", "module": hello, "schedule": schedule}}),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{schedule}: {refused}");
        // A key of the config: `{"config": ["schedule...: ..."]}`, as DRF's JSONField.
        assert!(
            field_message(&refused, "config")
                .is_some_and(|m| m.starts_with("schedule") && m.contains(reason)),
            "{refused}"
        );
    }

    let (status, job) = acme.post(
        "/hooks",
        json!({"name": "nightly", "type": "job", "events": [],
               "config": {"runtime": "wasm", "module": hello, "schedule": {"cron": "*/10 * * * *"}}}),
    );
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let (status, webhook) = acme.post(
        "/hooks",
        json!({"name": "report", "type": "webhook", "events": ["invocation.scheduled"],
               "config": {"url": format!("{}/tick", upstream.base), "schedule": {"cron": "*/10 * * * *"}}}),
    );
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    // Nothing has run yet: no tick has passed since they were saved.
    assert!(settle(&acme, &job, 0).is_empty());

    // The next tick after the hooks were saved: each runs once with invocation.scheduled.
    let tick = Utc::now()
        .duration_trunc(TimeDelta::minutes(10))
        .expect("a whole ten minutes")
        + TimeDelta::minutes(10);
    set_clock(&clock, tick + TimeDelta::seconds(1));
    let logs = settle(&acme, &job, 1);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["event"], "invocation");
    assert_eq!(logs[0]["action"], "scheduled");
    assert_eq!(logs[0]["hook_type"], "job");
    assert_eq!(logs[0]["status"], "completed", "{}", logs[0]);
    let ticks = upstream.wait_for("/tick", 1, Duration::from_secs(10));
    assert_eq!(ticks.len(), 1);
    let payload: Value = serde_json::from_slice(&ticks[0].body).expect("JSON");
    assert_eq!(payload["event"], "invocation");
    assert_eq!(payload["action"], "scheduled");

    // Time passing within the tick runs nothing more; the next tick runs once more.
    set_clock(&clock, tick + TimeDelta::minutes(5));
    assert_eq!(settle(&acme, &job, 1).len(), 1);
    set_clock(&clock, tick + TimeDelta::minutes(10));
    assert_eq!(settle(&acme, &job, 2).len(), 2);

    // Down for three ticks: one run when it is back, not three.
    drop(acme);
    drop(server);
    set_clock(&clock, tick + TimeDelta::minutes(45));
    let server = start(&data, &clock);
    let token = server.login("acme-admin", "long enough");
    let acme = Tenant {
        server: &server,
        token,
    };
    assert_eq!(settle(&acme, &job, 3).len(), 3);
    assert_eq!(
        upstream.wait_for("/tick", 3, Duration::from_secs(10)).len(),
        3
    );
    // No fourth delivery (see `settle` for why this is a wait of a fixed length).
    std::thread::sleep(QUIET);
    assert_eq!(upstream.received("/tick").len(), 3);

    // An inactive hook is not run.
    let (status, _) = acme.patch(&format!("/hooks/{}", job["id"]), json!({"active": false}));
    assert_eq!(status, StatusCode::OK);
    set_clock(&clock, tick + TimeDelta::minutes(50));
    assert_eq!(settle(&acme, &job, 3).len(), 3);
}
