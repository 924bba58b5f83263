//! Scheduled hooks, driven by a test clock (a file the server reads the time from) rather
//! than by waiting ten minutes: one run per tick, for a job and a webhook, even across a
//! restart, where the ticks missed while the server was down run once.
//!
//! No wait here is a guess of how long something takes: each waits for a run to be logged.
//! A run that must *not* come is looked for once a witness has run: a job saved after the
//! hooks it watches, due once at a time the test sets the clock to. The scheduler looks at
//! every scheduled hook in id order in each pass, so by the time the witness's run is
//! logged, a pass at that time has looked at the watched hooks, and any run it started for
//! them started before the witness's.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::HELLO;

use super::support::{field_message, wait_until, Server, Tenant, Upstream, OPERATOR_TOKEN};

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

/// How long a run that is due may take to be logged.
const WAIT: Duration = Duration::from_secs(30);

/// Waits until `hook` has at least `count` run logs, and returns them all.
fn runs(tenant: &Tenant<'_>, hook: &Value, count: usize) -> Vec<Value> {
    let arrived = wait_until(Instant::now() + WAIT, || {
        tenant.run_logs(hook).len() >= count
    });
    let logs = tenant.run_logs(hook);
    assert!(
        arrived,
        "hook {} has {} runs, not {count}: {logs:?}",
        hook["id"],
        logs.len()
    );
    logs
}

/// A witness: a job running `module` once a day at `at` (a whole minute, after now), saved
/// after the hooks it watches. See the module's documentation.
fn witness(tenant: &Tenant<'_>, module: &str, at: DateTime<Utc>) -> Value {
    let cron = format!("{} {} * * *", at.minute(), at.hour());
    let (status, hook) = tenant.post(
        "/hooks",
        json!({"name": format!("witness at {}", at.format("%H:%M")), "type": "job",
               "events": [], "config": {"runtime": "wasm", "module": module,
               "schedule": {"cron": cron}}}),
    );
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    hook
}

/// Moves the clock to `at` and waits for `witness_hook` (due at `at`) to run: then a pass
/// at `at` has looked at every hook saved before the witness.
fn pass_at(clock: &Path, at: DateTime<Utc>, tenant: &Tenant<'_>, witness_hook: &Value) {
    set_clock(clock, at);
    runs(tenant, witness_hook, 1);
}

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
    // The next tick after the hooks were saved, and a witness for each time at which runs
    // must not come (saved after the job and the webhook, so looked at after them).
    let tick = Utc::now()
        .duration_trunc(TimeDelta::minutes(10))
        .expect("a whole ten minutes")
        + TimeDelta::minutes(10);
    let within_tick = witness(&acme, &hello, tick + TimeDelta::minutes(5));
    let after_restart = witness(&acme, &hello, tick + TimeDelta::minutes(47));
    let when_inactive = witness(&acme, &hello, tick + TimeDelta::minutes(50));
    // Nothing has run yet: no tick has come since they were saved. (That none ran before
    // the tick is also seen below: the tick makes exactly one run.)
    assert!(acme.run_logs(&job).is_empty());

    // The tick: each runs once with invocation.scheduled.
    set_clock(&clock, tick + TimeDelta::seconds(1));
    let logs = runs(&acme, &job, 1);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["event"], "invocation");
    assert_eq!(logs[0]["action"], "scheduled");
    assert_eq!(logs[0]["hook_type"], "job");
    assert_eq!(logs[0]["status"], "completed", "{}", logs[0]);
    // The webhook's run is logged once its delivery is answered.
    assert_eq!(runs(&acme, &webhook, 1).len(), 1);
    let ticks = upstream.wait_for("/tick", 1, WAIT);
    assert_eq!(ticks.len(), 1);
    let payload: Value = serde_json::from_slice(&ticks[0].body).expect("JSON");
    assert_eq!(payload["event"], "invocation");
    assert_eq!(payload["action"], "scheduled");

    // Time passing within the tick runs nothing more; the next tick runs once more.
    pass_at(&clock, tick + TimeDelta::minutes(5), &acme, &within_tick);
    assert_eq!(acme.run_logs(&job).len(), 1);
    assert_eq!(acme.run_logs(&webhook).len(), 1);
    assert_eq!(upstream.received("/tick").len(), 1);
    set_clock(&clock, tick + TimeDelta::minutes(10));
    assert_eq!(runs(&acme, &job, 2).len(), 2);
    // Both runs of the tick are over before the server stops: the tick is claimed before
    // its runs start, so a run cut short by the stop would not come again.
    assert_eq!(runs(&acme, &webhook, 2).len(), 2);
    assert_eq!(upstream.received("/tick").len(), 2);

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
    assert_eq!(runs(&acme, &job, 3).len(), 3);
    assert_eq!(runs(&acme, &webhook, 3).len(), 3);
    assert_eq!(upstream.received("/tick").len(), 3);
    // No fourth run or delivery, by a pass after the one that ran them.
    pass_at(&clock, tick + TimeDelta::minutes(47), &acme, &after_restart);
    assert_eq!(acme.run_logs(&job).len(), 3);
    assert_eq!(acme.run_logs(&webhook).len(), 3);
    assert_eq!(upstream.received("/tick").len(), 3);

    // An inactive hook is not run, though its tick has come.
    let (status, _) = acme.patch(&format!("/hooks/{}", job["id"]), json!({"active": false}));
    assert_eq!(status, StatusCode::OK);
    pass_at(&clock, tick + TimeDelta::minutes(50), &acme, &when_inactive);
    assert_eq!(acme.run_logs(&job).len(), 3);
}
