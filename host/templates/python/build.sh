#!/usr/bin/env bash
# Builds {{name}} into a WebAssembly component with componentize-py (installed into .venv
# when missing) and prints where it is.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/componentize-py ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check componentize-py=={{componentize_py}} >&2
fi
mkdir -p build
.venv/bin/componentize-py --wit-path wit --world extension componentize app \
    --output build/{{name}}.wasm >&2
echo "$PWD/build/{{name}}.wasm"
