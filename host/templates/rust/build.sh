#!/usr/bin/env bash
# Builds {{name}} into a WebAssembly component and prints where it is.
set -euo pipefail
cd "$(dirname "$0")"
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --quiet --release --target wasm32-wasip2
echo "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{crate}}.wasm"
