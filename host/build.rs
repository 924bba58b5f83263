//! Build facts the server reports at `GET /api/v1/version`: the git commit it was built
//! from and the version of wasmtime it runs guests with (from `Cargo.lock`, so it cannot
//! disagree with what was compiled).

use std::path::Path;
use std::process::Command;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let root = Path::new(&manifest_dir).join("..");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&root)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=WASMHOOK_GIT_COMMIT={commit}");
    let lock_path = root.join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap_or_default();
    let wasmtime = lock
        .split("[[package]]")
        .find(|package| package.contains("\nname = \"wasmtime\"\n"))
        .and_then(|package| {
            package
                .lines()
                .find_map(|line| line.strip_prefix("version = \""))
                .map(|version| version.trim_end_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=WASMHOOK_WASMTIME_VERSION={wasmtime}");
    // Rebuilt when the lock or the checked-out commit changes: the lock, HEAD, and the one
    // ref HEAD names (watching all of refs/ would rebuild on any branch's commit). Paths
    // that do not exist are not named (cargo would then rerun this script on every build).
    let git = root.join(".git");
    let mut watched = vec![lock_path, git.join("HEAD"), git.join("packed-refs")];
    if let Some(reference) = std::fs::read_to_string(git.join("HEAD"))
        .ok()
        .and_then(|head| head.trim().strip_prefix("ref: ").map(str::to_owned))
    {
        watched.push(git.join(reference));
    }
    for path in watched {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
