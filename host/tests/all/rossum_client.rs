//! Rossum's own Python client, `rossum-api` (the version pinned in
//! `host/tests/rossum_client/requirements.txt`), against the real `wasmhook serve`: login;
//! list, retrieve, create, update, partial update and delete of organizations, users,
//! queues and hooks; lists over several pages; run logs with each filter; the own
//! organization, user roles and hook templates; every object parsed by the client's own
//! models and holding our values.
//!
//! The calls are made by `host/tests/rossum_client/drive.py`, one group of them per test,
//! each against a fresh server. The client is installed from PyPI into a virtual
//! environment, `target/toolchains/rossum-api/`, by `host/tests/python/venv.sh`
//! the first time a test asks for it (as `examples/toolchains.sh` installs the PyPI
//! toolchains), and not again while its requirements are unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use wasmhook_tests::guests::{HELLO, HOSTILE};

use super::support::{python_venv, Server, Tenant, OPERATOR_TOKEN};

/// The organization the driver works in, and its admin (as `Tenant::new` makes them).
const ORGANIZATION: &str = "acme";
const ADMIN: &str = "acme-admin";
const ADMIN_PASSWORD: &str = "long enough";

/// Where the driver and its requirements are.
fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rossum_client")
}

/// The Python of the virtual environment that holds the pinned client, installed once per
/// test run (see [`python_venv`]).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        python_venv("rossum-api", &client_dir().join("requirements.txt")).join("python")
    })
}

/// Runs the driver's `group` against a fresh server holding one organization with an
/// admin, and these guests uploaded (their URLs in the named variables); fails with what
/// the driver printed and the server's log.
fn drive(group: &str, modules: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The run logs group calls a webhook receiver of its own on loopback, over plain HTTP.
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("WASMHOOK_ALLOW_HTTP_WEBHOOKS", "true"),
        ],
        &[],
    );
    let acme = Tenant::new(&server, ORGANIZATION);
    let mut command = Command::new(python());
    command
        .arg(client_dir().join("drive.py"))
        .arg(group)
        .env("WASMHOOK_URL", &server.base)
        .env("WASMHOOK_USERNAME", ADMIN)
        .env("WASMHOOK_PASSWORD", ADMIN_PASSWORD)
        .env("WASMHOOK_ORGANIZATION", ORGANIZATION)
        .env("WASMHOOK_OPERATOR_TOKEN", OPERATOR_TOKEN)
        // httpx follows the proxy variables: never for the server on loopback.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    for (variable, guest) in modules {
        command.env(variable, acme.upload(guest));
    }
    let output = command.output().expect("the driver runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "rossum-api, `drive.py {group}` ({}):\n{stdout}\n{stderr}\nthe server's log:\n{}",
        output.status,
        server.log()
    );
    // Shown with --nocapture: every check the client passed.
    eprintln!("{stdout}");
}

const HELLO_MODULE: (&str, &str) = ("WASMHOOK_HELLO_MODULE", HELLO);
const HOSTILE_MODULE: (&str, &str) = ("WASMHOOK_HOSTILE_MODULE", HOSTILE);

#[test]
fn rossums_client_logs_in_with_a_password_or_a_token_and_again_after_a_401() {
    drive("auth", &[]);
}

#[test]
fn rossums_client_lists_retrieves_creates_updates_and_deletes_organizations() {
    drive("organizations", &[]);
}

#[test]
fn rossums_client_lists_retrieves_creates_updates_and_deletes_users() {
    drive("users", &[]);
}

#[test]
fn rossums_client_lists_retrieves_creates_updates_and_deletes_queues() {
    drive("queues", &[]);
}

#[test]
fn rossums_client_lists_retrieves_creates_updates_and_deletes_hooks() {
    drive("hooks", &[HELLO_MODULE]);
}

#[test]
fn rossums_client_lists_over_several_pages() {
    drive("pages", &[HELLO_MODULE]);
}

#[test]
fn rossums_client_reads_run_logs_with_each_filter() {
    drive("run_data", &[HELLO_MODULE, HOSTILE_MODULE]);
}

#[test]
fn rossums_client_lists_user_roles() {
    drive("roles", &[]);
}

#[test]
fn rossums_client_lists_hook_templates() {
    drive("templates", &[]);
}
