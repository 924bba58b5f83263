#!/usr/bin/env bash
# Builds the AssemblyScript examples as WASI commands (asc with @assemblyscript/wasi-shim;
# both installed from npm when missing, pinned by package-lock.json) and prints where each
# module is.
#   examples/assemblyscript/build.sh         all of them
#   examples/assemblyscript/build.sh hello   one
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../toolchains.sh"

node_modules="$(npm_packages assemblyscript)"
config="$(dirname "$node_modules")/asconfig.json"
cp "$here/asconfig.json" "$config"
out="$examples_out/assemblyscript"
mkdir -p "$out"
for example in $(examples_to_build "$here" index.ts "$@"); do
    # asconfig.json extends the WASI shim's (WASI imports for abort, console, process, ...)
    # from the node_modules beside it, so it is used from there; packages resolve from there.
    # asc resolves the extended config's library against the working directory.
    (cd "$(dirname "$config")" && node_modules/.bin/asc "$here/$example/index.ts" \
        --config asconfig.json --path node_modules --outFile "$out/$example.wasm")
    echo "$out/$example.wasm"
done
