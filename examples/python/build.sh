#!/usr/bin/env bash
# Builds the Python examples into components of the `extension` world with componentize-py
# (installed from PyPI when missing) and prints where each module is.
#   examples/python/build.sh                 all of them
#   examples/python/build.sh hello           one
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../toolchains.sh"

pip_package componentize-py "$COMPONENTIZE_PY_VERSION"
out="$examples_out/python"
mkdir -p "$out"
for example in $(examples_to_build "$here" app.py "$@"); do
    # The WIT world is the project's; `app` is the module holding the WitWorld class.
    "$toolchains/venv/bin/componentize-py" --wit-path "$root/wit" --world extension \
        componentize --python-path "$here/$example" app --output "$out/$example.wasm" >&2
    echo "$out/$example.wasm"
done
