#!/usr/bin/env bash
# Installs the Python packages a test suite drives (Rossum's client, schemathesis), as the
# requirements file pins them, from PyPI into a virtual environment of their own,
# target/toolchains/NAME/, unless it is there already; prints that environment's bin folder.
# The way examples/toolchains.sh installs the PyPI toolchains (python3 -m venv and pip,
# nothing system-wide); needs python3 (3.10 or later, with its venv module) and PyPI.
#   host/tests/python/venv.sh rossum-api host/tests/rossum_client/requirements.txt
#   host/tests/python/venv.sh schemathesis host/tests/contract/requirements.txt
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../../examples/toolchains.sh"

name="$1"
requirements="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
venv="$toolchains/$name"
mkdir -p "$toolchains"

# One install at a time: test processes started together wait for the first one's.
if command -v flock >/dev/null; then
    exec 9>"$toolchains/.$name.lock"
    flock 9
fi

# The environment keeps a copy of the requirements it was made from, written last: an
# install cut short, or changed requirements, start again from an empty environment.
if ! cmp -s "$requirements" "$venv/requirements.txt" || [ ! -x "$venv/bin/python" ]; then
    command -v python3 >/dev/null || { say "python3 is missing: $name needs Python 3.10 or later"; exit 1; }
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        { say "$name needs Python 3.10 or later; python3 is $(python3 --version 2>&1)"; exit 1; }
    say "installing $name from PyPI into $venv"
    python3 -m venv --clear "$venv" >&2 ||
        { say "python3 -m venv failed: install Python's venv module (Debian: python3-venv)"; exit 1; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements" >&2
    cp "$requirements" "$venv/requirements.txt"
fi
echo "$venv/bin"
