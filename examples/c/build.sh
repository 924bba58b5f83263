#!/usr/bin/env bash
# Builds the C examples as WASI commands (wasm32-wasi core modules) with clang, lld and
# wasi-libc from Debian (installed with apt-get when missing and this runs as root) and
# prints where each module is.
#   examples/c/build.sh                      all of them
#   examples/c/build.sh hello                one
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../toolchains.sh"

if ! command -v clang >/dev/null || ! command -v wasm-ld >/dev/null ||
    [ ! -e /usr/lib/wasm32-wasi/libc.a ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing ${DEBIAN_C_PACKAGES[*]} from Debian"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${DEBIAN_C_PACKAGES[@]}" >&2
    else
        say "the C examples need Debian's ${DEBIAN_C_PACKAGES[*]}: apt-get install them"
        exit 1
    fi
fi
out="$examples_out/c"
mkdir -p "$out"
for example in $(examples_to_build "$here" build.txt "$@"); do
    # build.txt lists the example's sources; common/ holds the JSON reader and the I/O.
    mapfile -t sources < <(sed "s|^|$here/$example/|" "$here/$example/build.txt")
    clang --target=wasm32-wasi -O2 -Wall -Wextra -Werror -I"$here/common" -Wl,--strip-all \
        -o "$out/$example.wasm" "${sources[@]}" "$here/common/json.c" "$here/common/io.c"
    echo "$out/$example.wasm"
done
