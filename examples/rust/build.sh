#!/usr/bin/env bash
# Builds the Rust examples and prints where each module is.
#   examples/rust/build.sh            all of them
#   examples/rust/build.sh hello      one
# Components are cdylibs for wasm32-wasip2; the *-command examples are WASI commands
# (built for wasm32-wasip2 and, as core modules, for wasm32-wasip1).
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2 wasm32-wasip1 >/dev/null 2>&1 || true

out=target/examples
mkdir -p "$out"
packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(hello invoice-check hello-command invoice-check-command)

for package in "${packages[@]}"; do
    # One package per build: a command turns the SDK's `component` feature off, which
    # cargo would otherwise unify with the components' builds.
    cargo build --quiet --profile guest --target wasm32-wasip2 -p "$package" --target-dir target/guests
    file="${package//-/_}.wasm"
    case "$package" in *-command) file="$package.wasm" ;; esac
    cp "target/guests/wasm32-wasip2/guest/$file" "$out/$package.wasm"
    echo "$out/$package.wasm"
    if [[ "$package" == *-command ]]; then
        cargo build --quiet --profile guest --target wasm32-wasip1 -p "$package" --target-dir target/guests
        cp "target/guests/wasm32-wasip1/guest/$package.wasm" "$out/$package.core.wasm"
        echo "$out/$package.core.wasm"
    fi
done
