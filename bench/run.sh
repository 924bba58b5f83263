#!/usr/bin/env bash
# Runs every server benchmark and prints the report BENCHMARKS.md quotes:
#   bench/run.sh [--seconds 10] [--rounds 2] [--connections 16,64] [--modules 1000]
#                [--only throughput,noisy,cold] [--baseline-commit REV]
#                [--noisy-calls 2,8,64] [--noisy-timeout-s 20] [--backends sqlite,postgres]
#   bench/run.sh noisy        # one part alone: the same as --only noisy (also throughput, cold)
#   bench/run.sh --smoke      # CI: a few seconds of each load part, debug build, no peer
#   bench/run.sh throughput --backends sqlite,postgres
#                             # (e): wasmhook on PostgreSQL (WASMHOOK_TEST_POSTGRES) beside
#                             # SQLite, interleaved, and PostgreSQL's work per call
# The load comes from wrk (Debian's package, installed when missing). The full run installs
# wasmtime-cli 48 (the peer, `wasmtime serve`) into target/toolchains/ when it is missing
# (about 11 minutes here), builds the wasi:http invoice-check component, wasmhook and this
# tool in release mode, then runs `wasmhook-bench compare`. --baseline-commit builds that
# commit's wasmhook too (same target directory, so only the workspace's crates compile again)
# and measures it interleaved with this one, for a before/after ratio.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=false
baseline_commit=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke=true ;;
        --baseline-commit) baseline_commit="$2"; shift ;;
        --only) args+=("$1" "$2"); shift ;;
        throughput|noisy|cold) args+=(--only "$1") ;;
        *) args+=("$1") ;;
    esac
    shift
done

if ! command -v wrk >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk
fi

if $smoke; then
    # The debug build `cargo test` already made: this proves the tool, the servers' answers
    # and wrk's output still fit together; its figures mean nothing.
    cargo build --quiet --locked -p wasmhook -p wasmhook-bench
    # The noisy neighbour with N = 2 only, each loop ending after 1 s.
    exec target/debug/wasmhook-bench compare --seconds 2 --rounds 1 --connections 16 \
        --only throughput,noisy --noisy-calls 2 --noisy-timeout-s 1 --backends sqlite,postgres \
        "${args[@]}"
fi

if [ -n "$baseline_commit" ]; then
    revision=$(git rev-parse --short "$baseline_commit")
    baseline="target/bench-baseline/wasmhook-$revision"
    if [ ! -x "$baseline" ]; then
        tree=$(mktemp -d)
        git worktree add --quiet --detach "$tree" "$revision"
        (cd "$tree" && CARGO_TARGET_DIR="$OLDPWD/target" cargo build --quiet --release --locked -p wasmhook)
        git worktree remove --force "$tree"
        mkdir -p target/bench-baseline
        cp target/release/wasmhook "$baseline"
    fi
    args+=(--baseline "$baseline")
fi

WASMTIME_VERSION=48.0.8
root="target/toolchains/wasmtime-cli-$WASMTIME_VERSION"
if [ ! -x "$root/bin/wasmtime" ]; then
    echo "installing wasmtime-cli $WASMTIME_VERSION into $root" >&2
    cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked --root "$root" \
        --no-default-features \
        --features run,serve,cranelift,parallel-compilation,pooling-allocator,cache,component-model,component-model-async
fi
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --quiet --profile guest --target wasm32-wasip2 -p invoice-check-http \
    --target-dir target/guests
cargo build --quiet --release --locked -p wasmhook -p wasmhook-bench
exec target/release/wasmhook-bench compare --wasmtime "$root/bin/wasmtime" \
    --http-component target/guests/wasm32-wasip2/guest/invoice_check_http.wasm "${args[@]}"
