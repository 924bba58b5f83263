//! `wasmhook run`, the real binary: conformance answers, the run log, and exit codes.

use std::process::Output;

use serde_json::Value;
use wasmhook_tests::conformance::{cases, json_equal, Case};
use wasmhook_tests::guests::{FETCHER, HELLO, HOSTILE, INVOICE_CHECK};

use super::support::{run_wasmhook, Upstream};

fn wasmhook(args: &[&str]) -> Output {
    run_wasmhook("cli", args)
}

fn write_json(dir: &tempfile::TempDir, name: &str, value: &Value) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, value.to_string()).expect("writable");
    path.display().to_string()
}

/// Runs a conformance case with `wasmhook run` (hello's or invoice-check's), its payload,
/// settings and secrets given as an author would; the binary's output and stderr.
fn run_case(dir: &tempfile::TempDir, case: &Case) -> (Output, String) {
    let module = if case.extension == "hello" {
        HELLO
    } else {
        INVOICE_CHECK
    };
    let event = format!("{}.{}", case.event, case.action);
    let payload = write_json(dir, "payload.json", &Value::Object(case.body.clone()));
    let settings = write_json(dir, "settings.json", &Value::Object(case.settings.clone()));
    let mut args = vec![
        "run",
        module,
        "--event",
        &event,
        "--payload",
        &payload,
        "--settings",
        &settings,
    ];
    let secrets: Vec<String> = case
        .secret_pairs()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for secret in &secrets {
        args.extend(["--secret", secret]);
    }
    let output = wasmhook(&args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

#[test]
fn run_prints_the_response_of_each_succeeding_case_and_exits_0() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let succeeding: Vec<Case> = cases()
        .into_iter()
        .filter(|case| case.expect.status == "success")
        .collect();
    assert!(!succeeding.is_empty(), "no succeeding case");
    for case in &succeeding {
        let (output, stderr) = run_case(&dir, case);
        assert_eq!(output.status.code(), Some(0), "{}: {stderr}", case.name);
        let response: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
        let expected = case.expect.response.clone().unwrap_or_default();
        assert!(
            json_equal(&response, &expected),
            "{}: {response} != {expected}",
            case.name
        );
        assert!(stderr.starts_with("status: completed in "), "{stderr}");
        for needle in &case.expect.output_contains {
            assert!(
                stderr.contains(needle.as_str()),
                "{}: summary lacks {needle}: {stderr}",
                case.name
            );
        }
    }
}

#[test]
fn run_exits_1_with_the_reason_of_each_failing_case() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let failing: Vec<Case> = cases()
        .into_iter()
        .filter(|case| case.expect.status != "success")
        .collect();
    assert!(!failing.is_empty(), "no failing case");
    for case in &failing {
        let (output, stderr) = run_case(&dir, case);
        assert_eq!(output.status.code(), Some(1), "{}: {stderr}", case.name);
        assert!(output.stdout.is_empty());
        for needle in &case.expect.message_contains {
            assert!(stderr.contains(needle.as_str()), "{}: {stderr}", case.name);
        }
    }
}

/// `wasmhook run HELLO --event upload.created --secret api_key=very-secret-value --json`:
/// it exits 0; its stdout.
fn hello_run_log() -> Vec<u8> {
    let output = wasmhook(&[
        "run",
        HELLO,
        "--event",
        "upload.created",
        "--secret",
        "api_key=very-secret-value",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    output.stdout
}

#[test]
fn json_prints_the_whole_run_log_with_the_request_in_rossums_key_order() {
    let stdout = hello_run_log();
    let log: Value = serde_json::from_slice(&stdout).expect("one JSON object");
    for field in [
        "status",
        "log_level",
        "message",
        "request",
        "response",
        "output",
        "start",
        "end",
        "duration_ms",
    ] {
        assert!(log.get(field).is_some(), "no {field} in {log}");
    }
    assert_eq!(log["status"], "completed");
    assert_eq!(log["log_level"], "INFO");
    assert_eq!(log["request"]["event"], "upload");
    let keys: Vec<&str> = log["request"]
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "request_id",
            "timestamp",
            "hook",
            "action",
            "event",
            "base_url",
            "settings",
            "secrets"
        ]
    );
}

#[test]
fn json_prints_the_secrets_redacted() {
    let stdout = hello_run_log();
    let log: Value = serde_json::from_slice(&stdout).expect("one JSON object");
    assert_eq!(log["request"]["secrets"]["api_key"], "[redacted...]");
    assert!(!String::from_utf8_lossy(&stdout).contains("very-secret-value"));
}

#[test]
fn a_timeout_exits_1_with_the_reason() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let settings = write_json(
        &dir,
        "settings.json",
        &serde_json::json!({"behavior": "loop"}),
    );
    let output = wasmhook(&[
        "run",
        HOSTILE,
        "--settings",
        &settings,
        "--timeout-s",
        "1",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let log: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(log["status"], "timeout");
    assert_eq!(log["log_level"], "ERROR");
    assert_eq!(
        log["message"],
        "the extension ran past its time limit of 1 s and was stopped"
    );
}

#[test]
fn bad_usage_and_unloadable_modules_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let noise = dir.path().join("noise.wasm");
    std::fs::write(&noise, b"definitely not wasm").expect("writable");
    let not_json = dir.path().join("bad.json");
    std::fs::write(&not_json, b"{oops").expect("writable");
    let array = write_json(&dir, "array.json", &serde_json::json!([1]));
    let reserved = write_json(&dir, "reserved.json", &serde_json::json!({"secrets": {}}));
    let noise = noise.display().to_string();
    let not_json = not_json.display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["run", &noise], "not a WebAssembly module"),
        (&["run", "/no/such/module.wasm"], "cannot read the module"),
        (
            &["run", HELLO, "--event", "annotation_content.explode"],
            "unknown action `explode`",
        ),
        (&["run", HELLO, "--event", "nope"], "EVENT.ACTION"),
        (&["run", HELLO, "--settings", &not_json], "not valid JSON"),
        (
            &["run", HELLO, "--payload", &array],
            "must hold a JSON object",
        ),
        (
            &["run", HELLO, "--payload", &reserved],
            "`secrets` is set by the host",
        ),
        (&["run", HELLO, "--secret", "no-equals-sign"], "NAME=VALUE"),
        (&["run", HELLO, "--timeout-s", "0"], "--timeout-s"),
        (&["run", HELLO, "--memory-mb", "4096"], "--memory-mb"),
        (
            &["run", HELLO, "--allow-host", "https://a.example/x"],
            "without scheme or path",
        ),
        (&["run"], "MODULE"),
    ];
    for (args, reason) in cases {
        let output = wasmhook(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(reason),
            "{args:?}: expected {reason:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Runs the fetcher, its settings asking for a GET of the upstream's `/local`, with these
/// extra arguments: it exits 0; its response.
fn fetch_local(upstream: &Upstream, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let settings = write_json(
        &dir,
        "settings.json",
        &serde_json::json!({"requests": [{"method": "GET", "url": format!("{}/local", upstream.base)}]}),
    );
    let mut args = vec!["run", FETCHER, "--settings", settings.as_str()];
    args.extend_from_slice(extra);
    let output = wasmhook(&args);
    assert_eq!(output.status.code(), Some(0), "{args:?}");
    serde_json::from_slice(&output.stdout).expect("the response")
}

/// Not even to the loopback upstream.
#[test]
fn run_gives_no_network_unless_a_host_is_allowed() {
    let upstream = Upstream::start();
    let closed = fetch_local(&upstream, &[]);
    assert!(closed["results"][0]["error"]
        .as_str()
        .is_some_and(|error| error.contains("HttpRequestDenied")));
    assert!(upstream.received("/local").is_empty());
}

#[test]
fn run_refuses_an_allowed_loopback_host_unless_private_addresses_are_allowed() {
    let upstream = Upstream::start();
    let private = fetch_local(&upstream, &["--allow-host", &upstream.authority]);
    assert!(private["results"][0]["error"]
        .as_str()
        .is_some_and(|error| error.contains("DestinationIpProhibited")));
    assert!(upstream.received("/local").is_empty());
}

#[test]
fn run_reaches_an_allowed_loopback_host_when_private_addresses_are_allowed() {
    let upstream = Upstream::start();
    let open = fetch_local(
        &upstream,
        &[
            "--allow-host",
            &upstream.authority,
            "--allow-private-addresses",
        ],
    );
    assert_eq!(open["results"][0]["status"], 200, "{open}");
    assert_eq!(upstream.received("/local").len(), 1);
}
