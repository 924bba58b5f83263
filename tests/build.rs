//! Builds every example and test guest from source into `OUT_DIR`, and writes `guests.rs`:
//! one constant per guest holding the path of its module.
//!
//! Each guest is built by its own cargo invocation, in a target directory apart from the
//! host's (so the two builds never wait on each other's lock). One package at a time keeps
//! cargo from unifying the SDK's `component` feature between a component and a command,
//! and each artifact is copied out as soon as it is built, because building a command also
//! rebuilds the cdylib of the example it reuses.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (constant, package, target, file the build produces)
const GUESTS: &[(&str, &str, &str, &str)] = &[
    ("HELLO", "hello", "wasm32-wasip2", "hello.wasm"),
    (
        "INVOICE_CHECK",
        "invoice-check",
        "wasm32-wasip2",
        "invoice_check.wasm",
    ),
    (
        "HELLO_COMMAND",
        "hello-command",
        "wasm32-wasip2",
        "hello-command.wasm",
    ),
    (
        "INVOICE_CHECK_COMMAND",
        "invoice-check-command",
        "wasm32-wasip2",
        "invoice-check-command.wasm",
    ),
    (
        "HELLO_COMMAND_CORE",
        "hello-command",
        "wasm32-wasip1",
        "hello-command.wasm",
    ),
    ("HOSTILE", "hostile", "wasm32-wasip2", "hostile.wasm"),
    (
        "OTHER_WORLD",
        "other-world",
        "wasm32-wasip2",
        "other_world.wasm",
    ),
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("the tests crate lives inside the workspace");
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let target_dir = root.join("target").join("guests");
    for watched in [
        "examples/rust",
        "tests/guests",
        "guest-sdk",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let mut constants = String::new();
    for (constant, package, target, file) in GUESTS {
        build(root, &target_dir, package, target);
        let built = target_dir.join(target).join("guest").join(file);
        let copied = out_dir.join(format!("{}.wasm", constant.to_lowercase()));
        std::fs::copy(&built, &copied)
            .unwrap_or_else(|error| panic!("cannot copy {}: {error}", built.display()));
        writeln!(
            constants,
            "/// The `{package}` guest built for `{target}`.\npub const {constant}: &str = {:?};",
            copied.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    std::fs::write(out_dir.join("guests.rs"), constants).expect("cannot write guests.rs");
}

fn build(root: &Path, target_dir: &Path, package: &str, target: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--profile",
            "guest",
            "--target",
            target,
            "-p",
            package,
        ])
        .arg("--target-dir")
        .arg(target_dir);
    // What the outer build sets for itself must not leak into the guests' build.
    for variable in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        command.env_remove(variable);
    }
    let status = command
        .status()
        .unwrap_or_else(|error| panic!("cannot run cargo to build {package}: {error}"));
    assert!(
        status.success(),
        "building the guest `{package}` for {target} failed; is the target installed? \
         (`rustup target add {target}`)"
    );
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}
