//! The API contract checked by a machine: schemathesis (the version pinned in
//! `host/tests/contract/requirements.txt`, installed from PyPI into
//! `target/toolchains/schemathesis/` by `host/tests/python/venv.sh`) reads the live server's
//! own `/api/v1/openapi.json` and calls every operation in it with data generated from the
//! document, valid and invalid, checking each answer: no server error, a status the
//! document lists, its content type, and a body that matches the listed schema.
//!
//! A run is reproducible from its seed: `WASMHOOK_CONTRACT_SEED` (1 unless set) and
//! `WASMHOOK_CONTRACT_EXAMPLES` (examples per operation, 20 unless set); the failure message
//! holds the command, and schemathesis prints a `curl` line for every failing call.
//! Exclusions, if ever needed, are explained in RELIABILITY.md; there are none.

use std::path::Path;
use std::process::Command;

use wasmhook_tests::guests::HELLO;

use super::support::{python_venv, Server, Tenant, OPERATOR_TOKEN};

/// The checks run on every answer (the four; schemathesis has others that judge
/// API design rather than the contract).
const CHECKS: &str = "not_a_server_error,status_code_conformance,\
                      content_type_conformance,response_schema_conformance";

/// A variable's value, or `default` when unset or empty.
fn setting(variable: &str, default: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[test]
fn every_operation_answers_as_the_openapi_document_says() {
    let requirements =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/requirements.txt");
    let bin = python_venv("schemathesis", &requirements);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    // Something to find: a module and a hook on it, so that ids 1 and up exist.
    let module = acme.upload(HELLO);
    acme.hook(&module, serde_json::json!({}));

    let seed = setting("WASMHOOK_CONTRACT_SEED", "1");
    let examples = setting("WASMHOOK_CONTRACT_EXAMPLES", "20");
    let document = format!("{}/api/v1/openapi.json", server.root());
    let authorization = format!("Authorization: Bearer {}", acme.token);
    let args = [
        "run",
        document.as_str(),
        "--checks",
        CHECKS,
        "--mode",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        seed.as_str(),
        "--max-examples",
        examples.as_str(),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "too_slow",
        "--header",
        authorization.as_str(),
    ];
    let output = Command::new(bin.join("schemathesis"))
        .args(args)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("NO_COLOR", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(dir.path())
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found answers that break the document ({}); reproduce with \
         WASMHOOK_CONTRACT_SEED={seed} WASMHOOK_CONTRACT_EXAMPLES={examples}:\n\
         {stdout}\n{stderr}\nthe server's log:\n{}",
        output.status,
        server.log()
    );
    // Shown with --nocapture: what it ran and checked.
    eprintln!("{stdout}");
}
