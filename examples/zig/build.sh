#!/usr/bin/env bash
# Builds the Zig examples as WASI commands (wasm32-wasi) with the Zig toolchain from PyPI's
# ziglang (installed when missing) and prints where each module is.
#   examples/zig/build.sh                    all of them
#   examples/zig/build.sh hello              one
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../toolchains.sh"

pip_package ziglang "$ZIGLANG_VERSION"
zig="$(python_package_dir ziglang)/zig"
out="$examples_out/zig"
mkdir -p "$out"
for example in $(examples_to_build "$here" main.zig "$@"); do
    "$zig" build-exe "$here/$example/main.zig" -target wasm32-wasi -O ReleaseSmall \
        --name "$example" --cache-dir "$toolchains/zig-cache" \
        --global-cache-dir "$toolchains/zig-cache" -femit-bin="$out/$example.wasm"
    echo "$out/$example.wasm"
done
