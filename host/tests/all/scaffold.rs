//! `wasmhook new`, the real binary: every template builds with its own `build.sh` as
//! generated and passes the hello conformance cases under `wasmhook run`; bad names and
//! existing directories are refused with nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use wasmhook_tests::conformance::{cases, json_equal};

use super::support::run_wasmhook;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host lives in the workspace")
        .to_owned()
}

fn wasmhook(args: &[&str]) -> Output {
    run_wasmhook("scaffold", args)
}

/// The toolchain the workspace pins, so the generated Rust crate builds with it too.
fn pinned_toolchain() -> String {
    let text = std::fs::read_to_string(workspace().join("rust-toolchain.toml"))
        .expect("the workspace pins a toolchain");
    text.lines()
        .find_map(|line| line.strip_prefix("channel = "))
        .map(|channel| channel.trim_matches('"').to_owned())
        .expect("rust-toolchain.toml names a channel")
}

/// Runs the generated `build.sh` as an author would; returns the module path it prints.
fn build(dir: &Path) -> String {
    let mut command = Command::new("bash");
    command.arg(dir.join("build.sh"));
    // What `cargo test` sets for itself must not leak into the author's build; the Rust
    // template's target directory is kept in the workspace so reruns are incremental.
    for variable in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(variable);
    }
    command
        .env("CARGO_TARGET_DIR", workspace().join("target/scaffolds"))
        .env("RUSTUP_TOOLCHAIN", pinned_toolchain())
        .stderr(std::process::Stdio::inherit());
    let output = command.output().expect("bash runs");
    assert!(
        output.status.success(),
        "{}/build.sh failed (its output is above)",
        dir.display()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let module = stdout.lines().last().unwrap_or_default().trim().to_owned();
    assert!(
        Path::new(&module).is_file(),
        "build.sh printed {stdout:?}, not a module"
    );
    module
}

/// Generates a hook in `language` with `wasmhook new`, builds it with its own `build.sh`,
/// and runs every hello case through it with `wasmhook run --json`: each answers as the
/// case expects.
fn the_template_builds_and_passes_the_hello_cases(language: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let parent = dir.path().display().to_string();
    let name = format!("my-{language}-hook");
    let output = wasmhook(&["new", language, &name, "--dir", &parent]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let project = dir.path().join(&name);
    assert!(project.join("wit/extension.wit").is_file());
    let module = build(&project);

    for case in cases().iter().filter(|case| case.extension == "hello") {
        let event = format!("{}.{}", case.event, case.action);
        let settings = dir.path().join("settings.json");
        let payload = dir.path().join("payload.json");
        std::fs::write(&settings, Value::Object(case.settings.clone()).to_string())
            .expect("writable");
        std::fs::write(&payload, Value::Object(case.body.clone()).to_string()).expect("writable");
        let output = wasmhook(&[
            "run",
            &module,
            "--event",
            &event,
            "--payload",
            &payload.display().to_string(),
            "--settings",
            &settings.display().to_string(),
            "--json",
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{language}, case {}: {stdout}\n{}",
            case.name,
            String::from_utf8_lossy(&output.stderr)
        );
        let log: Value = serde_json::from_str(&stdout).expect("--json prints the run log");
        let expected = case.expect.response.clone().unwrap_or_default();
        assert!(
            json_equal(&log["response"], &expected),
            "{language}, case {}: {} expected {expected}",
            case.name,
            log["response"]
        );
        for needle in &case.expect.output_contains {
            assert!(
                log["output"]
                    .as_str()
                    .unwrap_or("")
                    .contains(needle.as_str()),
                "{language}, case {}: output {} lacks {needle}",
                case.name,
                log["output"]
            );
        }
    }
}

#[test]
fn the_rust_template_builds_and_passes_the_hello_cases() {
    the_template_builds_and_passes_the_hello_cases("rust");
}

#[test]
fn the_python_template_builds_and_passes_the_hello_cases() {
    the_template_builds_and_passes_the_hello_cases("python");
}

#[test]
fn the_javascript_template_builds_and_passes_the_hello_cases() {
    the_template_builds_and_passes_the_hello_cases("javascript");
}

#[test]
fn bad_names_are_refused_with_nothing_written() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let parent = dir.path().display().to_string();
    for bad in ["My-Hook", "1st", "a_b", "../escape", "trailing-", ""] {
        let output = wasmhook(&["new", "rust", bad, "--dir", &parent]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("not a valid name"), "{bad}: {stderr}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("readable").count(),
        0,
        "a refused name wrote something"
    );
}

#[test]
fn an_existing_directory_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let parent = dir.path().display().to_string();
    std::fs::create_dir(dir.path().join("taken")).expect("writable");
    std::fs::write(dir.path().join("taken/keep.txt"), "mine").expect("writable");
    let output = wasmhook(&["new", "python", "taken", "--dir", &parent]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
    let kept: Vec<_> = std::fs::read_dir(dir.path().join("taken"))
        .expect("readable")
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(kept, vec!["keep.txt"]);
}

#[test]
fn an_unknown_language_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let parent = dir.path().display().to_string();
    let output = wasmhook(&["new", "cobol", "legacy", "--dir", &parent]);
    assert_eq!(output.status.code(), Some(2), "an unknown language");
}
