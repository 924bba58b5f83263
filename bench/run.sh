#!/usr/bin/env bash
# Runs every server benchmark and prints the report BENCHMARKS.md quotes:
#   bench/run.sh [--seconds 10] [--rounds 2] [--modules 1000]
# Installs wasmtime-cli 48 (the peer, `wasmtime serve`) into target/toolchains/ when it is
# missing (about 11 minutes here), builds the wasi:http invoice-check component, wasmhook
# and this tool in release mode, then runs `wasmhook-bench compare`.
set -euo pipefail
cd "$(dirname "$0")/.."
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
cargo build --quiet --release -p wasmhook -p wasmhook-bench
exec target/release/wasmhook-bench compare --wasmtime "$root/bin/wasmtime" \
    --http-component target/guests/wasm32-wasip2/guest/invoice_check_http.wasm "$@"
