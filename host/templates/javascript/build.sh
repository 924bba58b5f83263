#!/usr/bin/env bash
# Builds {{name}} into a WebAssembly component with componentize-js (installed with npm
# when missing) and prints where it is.
set -euo pipefail
cd "$(dirname "$0")"
[ -x node_modules/.bin/componentize-js ] || npm install --no-audit --no-fund --loglevel=error >&2
mkdir -p build
# `-d http -d fetch-event`: the world imports no wasi:http, so neither may the component.
node_modules/.bin/componentize-js app.js --wit wit --world-name extension \
    -d http -d fetch-event --out build/{{name}}.wasm >&2
echo "$PWD/build/{{name}}.wasm"
