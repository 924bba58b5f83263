//! Every example in every language through the real server: uploaded as a module, hooked,
//! and called through `POST /hooks/{id}/test` with every conformance case; a secret that
//! every hello example prints and returns (as its greeting) redacted in every language; and
//! a clear failure, with the language's own diagnostics in the run log, when an example is
//! given a payload that breaks it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use wasmhook::runtime::REDACTED;
use wasmhook_tests::conformance::{cases, json_equal, Case};
use wasmhook_tests::guests::EXAMPLES;

use super::support::{initialize, wait_until, Server, Tenant, OPERATOR_TOKEN};

/// Large modules (Python, JavaScript, Go) compile in the background; this bounds the wait.
const COMPILE_DEADLINE: Duration = Duration::from_secs(600);

/// The test endpoint's payload for a case: the event, the action and the event's keys.
fn payload_of(case: &Case) -> Value {
    let mut payload = Map::new();
    payload.insert("event".into(), json!(case.event));
    payload.insert("action".into(), json!(case.action));
    payload.extend(case.body.clone());
    Value::Object(payload)
}

/// Uploads every example and hooks it; returns (extension, form, hook) once all are ready.
fn hook_every_example<'a>(tenant: &Tenant) -> Vec<(&'a str, &'a str, Value)> {
    let mut hooks = Vec::new();
    for (extension, form, path) in EXAMPLES {
        let module = tenant.upload(path);
        let hook = tenant.hook(&module, json!({"name": format!("{extension}, {form}")}));
        hooks.push((*extension, *form, hook));
    }
    let deadline = Instant::now() + COMPILE_DEADLINE;
    for (extension, form, hook) in &mut hooks {
        let mut current = Value::Null;
        let compiled = wait_until(deadline, || {
            let (status, shown) = tenant.get(&format!("/hooks/{}", hook["id"]));
            assert_eq!(status, StatusCode::OK, "{shown}");
            current = shown;
            current["status"] != "pending"
        });
        assert!(
            compiled,
            "{extension} ({form}) still compiling after {COMPILE_DEADLINE:?}"
        );
        assert_eq!(
            current["status"], "ready",
            "{extension} ({form}): {current}"
        );
        *hook = current;
    }
    hooks
}

/// Checks one answer of the test endpoint against a case; returns what differs.
fn check(case: &Case, answer: &Value) -> Result<(), String> {
    match case.expect.status.as_str() {
        "success" => {
            if answer["status"] != "completed" {
                return Err(format!("expected completed, got {answer}"));
            }
            let expected = case.expect.response.clone().unwrap_or_default();
            if !json_equal(&answer["response"], &expected) {
                return Err(format!(
                    "response {}\n  expected {expected}",
                    answer["response"]
                ));
            }
        }
        _ => {
            if answer["status"] != "failed" {
                return Err(format!("expected failed, got {answer}"));
            }
            let message = answer["message"].as_str().unwrap_or_default();
            for needle in &case.expect.message_contains {
                if !message.contains(needle.as_str()) {
                    return Err(format!("message {message:?} lacks {needle:?}"));
                }
            }
        }
    }
    let log = answer["log"].as_str().unwrap_or_default();
    for needle in &case.expect.output_contains {
        if !log.contains(needle.as_str()) {
            return Err(format!("log {log:?} lacks {needle:?}"));
        }
    }
    Ok(())
}

/// One server for both checks: the large modules are compiled once.
#[test]
fn every_example_through_the_server() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let tenant = Tenant::new(&server, "polyglot");
    let hooks = hook_every_example(&tenant);
    every_case_passes(&tenant, &hooks);
    a_secret_every_hello_prints_and_returns_is_redacted(&tenant, &hooks);
    a_broken_call_fails_with_the_languages_own_diagnostics(&tenant, &hooks);
}

fn every_case_passes(tenant: &Tenant, hooks: &[(&str, &str, Value)]) {
    let cases = cases();

    let mut failures = Vec::new();
    let mut checked = 0;
    for (extension, form, hook) in hooks {
        for case in cases.iter().filter(|case| case.extension == *extension) {
            let (status, patched) = tenant.patch(
                &format!("/hooks/{}", hook["id"]),
                json!({"settings": case.settings, "secrets": case.secrets}),
            );
            assert_eq!(status, StatusCode::OK, "{patched}");
            let (status, answer) = tenant.test_call(hook, payload_of(case));
            assert_eq!(status, StatusCode::OK, "{answer}");
            checked += 1;
            if let Err(difference) = check(case, &answer) {
                failures.push(format!(
                    "{extension} ({form}), case {}: {difference}",
                    case.name
                ));
            }
            // The secrets went in; none comes back out, in any language. (No example reads
            // its secrets, so this alone could not fail: the redaction is shown by
            // `a_secret_every_hello_prints_and_returns_is_redacted`.)
            for secret in case.secrets.values().filter_map(Value::as_str) {
                assert!(
                    !answer.to_string().contains(secret),
                    "{extension} ({form}) leaked a secret: {answer}"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 14 + 6 * 6);
}

/// No example reads its secrets, but every hello example prints its `greeting` setting and
/// returns it in its message. With a greeting that is also one of the hook's secrets, each
/// prints and returns a secret: its answer and its run log must carry the marker, never the
/// value, in every language.
fn a_secret_every_hello_prints_and_returns_is_redacted(
    tenant: &Tenant,
    hooks: &[(&str, &str, Value)],
) {
    const SECRET: &str = "greeting-that-is-also-a-secret-0451";
    let hellos = EXAMPLES
        .iter()
        .filter(|(extension, _, _)| *extension == "hello")
        .count();
    let mut checked = 0;
    for (extension, form, hook) in hooks.iter().filter(|(e, _, _)| *e == "hello") {
        let (status, patched) = tenant.patch(
            &format!("/hooks/{}", hook["id"]),
            json!({"settings": {"greeting": SECRET}, "secrets": {"api_key": SECRET}}),
        );
        assert_eq!(status, StatusCode::OK, "{patched}");
        let (status, answer) = tenant.test_call(hook, initialize());
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer["status"], "completed",
            "{extension} ({form}): {answer}"
        );
        let redacted = format!("{REDACTED}, annotation_content.initialize!");
        assert_eq!(
            answer["response"]["messages"][0]["content"], redacted,
            "{extension} ({form}): {answer}"
        );
        assert_eq!(
            answer["message"], redacted,
            "{extension} ({form}): {answer}"
        );
        assert!(
            answer["log"]
                .as_str()
                .is_some_and(|log| log.contains(REDACTED)),
            "{extension} ({form}) printed no redacted greeting: {answer}"
        );
        assert!(
            !answer.to_string().contains(SECRET),
            "{extension} ({form}) leaked the secret: {answer}"
        );
        let request_id = answer["request_id"].as_str().unwrap_or_default();
        let (status, logs) = tenant.get(&format!("/hooks/logs?request_id={request_id}"));
        assert_eq!(status, StatusCode::OK, "{logs}");
        assert_eq!(logs["results"].as_array().map(Vec::len), Some(1), "{logs}");
        assert!(
            !logs.to_string().contains(SECRET),
            "{extension} ({form}): a run log holds the secret: {logs}"
        );
        checked += 1;
    }
    assert!(hellos > 0);
    assert_eq!(checked, hellos);
}

/// What each language says when its invoice-check meets an annotation tree whose nodes are
/// numbers: the call fails, and the run log or message carries the language's diagnostic.
fn a_broken_call_fails_with_the_languages_own_diagnostics(
    tenant: &Tenant,
    hooks: &[(&str, &str, Value)],
) {
    let broken = json!({
        "event": "annotation_content",
        "action": "initialize",
        "annotation": {"id": 1, "content": "not a tree"}
    });
    for (extension, form, hook) in hooks.iter().filter(|(e, _, _)| *e == "invoice-check") {
        let (status, answer) = tenant.test_call(hook, broken.clone());
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], "failed", "{extension} ({form}): {answer}");
        let said = format!("{} {}", answer["message"], answer["log"]);
        assert!(
            said.contains("not a list"),
            "{extension} ({form}) gave no reason: {answer}"
        );
    }

    // An exception nobody catches: Python's traceback reaches the run log.
    let python = hooks
        .iter()
        .find(|(e, form, _)| *e == "invoice-check" && form.starts_with("python"))
        .map(|(_, _, hook)| hook)
        .expect("a Python invoice-check");
    let (status, answer) = tenant.test_call(
        python,
        json!({
            "event": "annotation_content",
            "action": "initialize",
            "annotation": {"id": 1, "content": [7]}
        }),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "failed", "{answer}");
    let said = format!("{} {}", answer["message"], answer["log"]);
    assert!(said.contains("Traceback"), "no traceback: {answer}");
    assert!(said.contains("TypeError"), "no exception type: {answer}");
}
