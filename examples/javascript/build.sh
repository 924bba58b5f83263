#!/usr/bin/env bash
# Builds the JavaScript examples into components of the `extension` world with
# componentize-js (installed from npm when missing, pinned by package-lock.json) and prints
# where each module is.
#   examples/javascript/build.sh             all of them
#   examples/javascript/build.sh hello       one
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../toolchains.sh"

node_modules="$(npm_packages javascript)"
out="$examples_out/javascript"
mkdir -p "$out"
for example in $(examples_to_build "$here" app.js "$@"); do
    # `-d http -d fetch-event`: the world imports no wasi:http, so neither may the component.
    "$node_modules/.bin/componentize-js" "$here/$example/app.js" --wit "$root/wit" \
        --world-name extension -d http -d fetch-event --out "$out/$example.wasm" >&2
    echo "$out/$example.wasm"
done
