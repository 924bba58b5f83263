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
//!
//! Every operation runs, in three passes by who may call it: a tenant's admin (everything
//! but the operator's operations and logout), logout with a token of its own (it revokes
//! the token calling it), and the operator (its own operations, and deleting users) last,
//! as it may delete the tenants. The admin's and the operator's passes fail on
//! schemathesis's `missing_auth` warning, so a token that stopped working cannot pass as
//! a run of 401s.

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

/// Operations run with the operator's token, in the last pass: the ones only the operator
/// may call (a tenant's admin gets 403), and a user's deletion, which the admin (the
/// tenant's one user) may only be refused, as it may not delete itself. They may delete
/// the tenants, so they come after the other passes.
const BY_OPERATOR: &[&str] = &[
    "get_metrics",
    "post_api_v1_organizations",
    "delete_api_v1_organizations_id",
    "post_api_v1_hook_templates",
    "delete_api_v1_hook_templates_id",
    "delete_api_v1_users_id",
];

/// Logout revokes the token that calls it, so it runs last, in a pass of its own with a
/// token nothing else needs (after its first call, every call is a 401, as documented).
const LOGOUT: &str = "post_api_v1_auth_logout";

/// Fails a pass whose operations answered only 401 or 403: such a pass checked the
/// authentication's refusal, not the operations.
const STRICT: &str = "[warnings]\nfail-on = [\"missing_auth\"]\n";

/// One schemathesis pass over the operations `filter` selects, with `token`; panics with
/// its report (and the command to reproduce it) unless every check passed.
fn pass(server: &Server, dir: &Path, token: &str, filter: &[String], strict: bool) {
    let requirements =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/requirements.txt");
    let bin = python_venv("schemathesis", &requirements);
    let seed = setting("WASMHOOK_CONTRACT_SEED", "1");
    let examples = setting("WASMHOOK_CONTRACT_EXAMPLES", "20");
    let document = format!("{}/api/v1/openapi.json", server.root());
    let authorization = format!("Authorization: Bearer {token}");
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, if strict { STRICT } else { "" }).expect("the config is written");
    let mut args: Vec<String> = vec!["--config-file".into(), config.display().to_string()];
    args.extend(
        [
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
        ]
        .map(String::from),
    );
    args.extend(filter.iter().cloned());
    let output = Command::new(bin.join("schemathesis"))
        .args(&args)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("NO_COLOR", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(dir)
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found answers that break the document ({}); reproduce with \
         WASMHOOK_CONTRACT_SEED={seed} WASMHOOK_CONTRACT_EXAMPLES={examples} and {filter:?}:\n\
         {stdout}\n{stderr}\nthe server's log:\n{}",
        output.status,
        server.log()
    );
    assert!(
        stdout.contains("Tested:"),
        "schemathesis tested no operation of {filter:?}:\n{stdout}"
    );
    // Shown with --nocapture: what it ran and checked.
    eprintln!("{stdout}");
}

/// `--include-operation-id` (or exclude) for each id.
fn operations(flag: &str, ids: &[&str]) -> Vec<String> {
    ids.iter()
        .flat_map(|id| [flag.to_owned(), (*id).to_owned()])
        .collect()
}

#[test]
fn every_operation_answers_as_the_openapi_document_says() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    // Something to find: a module and a hook on it, so that ids 1 and up exist.
    let module = acme.upload(HELLO);
    acme.hook(&module, serde_json::json!({}));
    // A token for logout alone, taken before the passes can change anything.
    let leaving = Tenant::new(&server, "leaving");

    let mut by_tenant = operations("--exclude-operation-id", BY_OPERATOR);
    by_tenant.extend(operations("--exclude-operation-id", &[LOGOUT]));
    pass(&server, dir.path(), &acme.token, &by_tenant, true);
    let logout = operations("--include-operation-id", &[LOGOUT]);
    pass(&server, dir.path(), &leaving.token, &logout, false);
    let by_operator = operations("--include-operation-id", BY_OPERATOR);
    pass(&server, dir.path(), OPERATOR_TOKEN, &by_operator, true);
}
