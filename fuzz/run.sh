#!/usr/bin/env bash
# Fuzzes every target (or those named) for SECONDS each, from a temporary copy of its
# committed corpus, and exits non-zero if any target crashed, printing each failing input.
#
#   fuzz/run.sh                      20 s per target, as CI does
#   fuzz/run.sh 1800                 half an hour per target, by hand
#   fuzz/run.sh 600 allow_list       one target
#
# Installs cargo-fuzz (the version pinned below) when it is missing. Builds all targets
# once, into fuzz/target, which they share: optimized, with debug assertions and overflow
# checks on, and no sanitizer (the code under test is safe Rust; a sanitizer would lengthen
# the build and find nothing a panic does not). New corpus entries stay in the temporary
# copy, so the tree stays clean; failing inputs are kept in fuzz/artifacts/<target>/.
#
# Environment: FUZZ_TOOLCHAIN (default: nightly if installed, else the toolchain
# rust-toolchain.toml pins: with no sanitizer cargo-fuzz passes no nightly-only flag),
# FUZZ_CODEGEN_UNITS (default 16: a much shorter build than cargo-fuzz's 1, for somewhat
# fewer runs a second; set 1 for long runs).
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.1
ALL_TARGETS=(hook_validator allow_list module_precheck payload_assembly)

seconds="${1:-20}"
if [ $# -gt 0 ]; then shift; fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
case "$seconds" in
    '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
    if rustup toolchain list | grep '^nightly' >/dev/null; then
        toolchain=nightly
    else
        toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' ../rust-toolchain.toml)
    fi
fi

if ! cargo fuzz --version 2>/dev/null | grep " $CARGO_FUZZ_VERSION\$" >/dev/null; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# The same versions of every crate the server is built and tested with; cargo adds
# libFuzzer's (fuzz/Cargo.lock is not tracked).
cp ../Cargo.lock Cargo.lock

flags=(-O --debug-assertions --sanitizer none --codegen-units "${FUZZ_CODEGEN_UNITS:-16}")
echo "building the fuzz targets with $toolchain" >&2
cargo "+$toolchain" fuzz build "${flags[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    mkdir -p "$corpus"
    if [ -d "corpus/$target" ]; then
        cp -R "corpus/$target/." "$corpus/"
    fi
    touch "$work/$target.started"
    echo "fuzzing $target for ${seconds} s" >&2
    if cargo "+$toolchain" fuzz run "${flags[@]}" "$target" "$corpus" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1; then
        continue
    fi
    failed+=("$target")
    # The CI clone is thrown away: print each new failing input so it can be rebuilt with
    # `base64 -d > crash` and replayed, in fuzz/, with
    # `cargo +nightly fuzz run -O -a -s none --codegen-units 16 TARGET crash`.
    while read -r artifact; do
        echo "failing input of $target, $artifact, as base64:" >&2
        base64 -w0 "$artifact" >&2
        echo >&2
    done < <(find "artifacts/$target" -type f -newer "$work/$target.started" 2>/dev/null || true)
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found failures in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzed ${targets[*]} for ${seconds} s each: no failure" >&2
