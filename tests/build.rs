//! Builds every example and test guest from source into `OUT_DIR`, and writes `guests.rs`:
//! one constant per guest holding the path of its module, and `EXAMPLES`, every example in
//! every language with its form.
//!
//! The Rust guests are built here with cargo; the other languages through their
//! `examples/<language>/build.sh`, which installs the toolchain from its package registry
//! when it is missing. A language that cannot be built fails the build: every example must
//! pass the conformance cases, so none may be skipped.
//!
//! Each guest is built by its own cargo invocation, in a target directory apart from the
//! host's (so the two builds never wait on each other's lock). One package at a time keeps
//! cargo from unifying the SDK's `component` feature between a component and a command,
//! and each artifact is copied out as soon as it is built, because building a command also
//! rebuilds the cdylib of the example it reuses.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The other languages: (directory under `examples/`, form, examples).
const LANGUAGES: &[(&str, &str, &[&str])] = &[
    (
        "python",
        "component (componentize-py)",
        &["hello", "invoice-check"],
    ),
    (
        "javascript",
        "component (componentize-js)",
        &["hello", "invoice-check"],
    ),
    (
        "c",
        "command (wasip1 core module)",
        &["hello", "invoice-check"],
    ),
    (
        "go",
        "command (wasip1 core module)",
        &["hello", "invoice-check"],
    ),
    (
        "zig",
        "command (wasip1 core module)",
        &["hello", "invoice-check"],
    ),
    (
        "assemblyscript",
        "command (wasip1 core module)",
        &["hello", "invoice-check"],
    ),
];

/// The Rust examples: (extension, form, constant).
const RUST_EXAMPLES: &[(&str, &str, &str)] = &[
    ("hello", "rust component", "HELLO"),
    ("hello", "rust command (wasip2 component)", "HELLO_COMMAND"),
    (
        "hello",
        "rust command (wasip1 core module)",
        "HELLO_COMMAND_CORE",
    ),
    ("invoice-check", "rust component", "INVOICE_CHECK"),
    (
        "invoice-check",
        "rust command (wasip2 component)",
        "INVOICE_CHECK_COMMAND",
    ),
];

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
    ("FETCHER", "fetcher", "wasm32-wasip2", "fetcher.wasm"),
    ("COUNTER", "counter", "wasm32-wasip2", "counter.wasm"),
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
        "examples",
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

    let mut examples = String::new();
    for (extension, form, constant) in RUST_EXAMPLES {
        writeln!(examples, "    ({extension:?}, {form:?}, {constant}),")
            .expect("writing to a String cannot fail");
    }
    for (language, form, names) in LANGUAGES {
        for path in build_language(root, language, names) {
            let name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            let copied = out_dir.join(format!("{language}-{name}.wasm"));
            std::fs::copy(&path, &copied)
                .unwrap_or_else(|error| panic!("cannot copy {}: {error}", path.display()));
            writeln!(
                examples,
                "    ({name:?}, {:?}, {:?}),",
                format!("{language} {form}"),
                copied.display().to_string()
            )
            .expect("writing to a String cannot fail");
        }
    }
    writeln!(
        constants,
        "/// Every example, as (extension, language and form, module path).\n\
         pub const EXAMPLES: &[(&str, &str, &str)] = &[\n{examples}];"
    )
    .expect("writing to a String cannot fail");
    std::fs::write(out_dir.join("guests.rs"), constants).expect("cannot write guests.rs");
}

/// Runs `examples/<language>/build.sh` for these examples; returns the modules it built.
fn build_language(root: &Path, language: &str, names: &[&str]) -> Vec<PathBuf> {
    let script = root.join("examples").join(language).join("build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .args(names)
        .current_dir(root)
        .env_remove("CARGO_TARGET_DIR")
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "{} failed (its output is above): the {language} examples must build",
        script.display()
    );
    let built: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(
        built.len(),
        names.len(),
        "{} printed {built:?} for {names:?}",
        script.display()
    );
    built
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
