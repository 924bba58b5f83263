#!/usr/bin/env bash
# Runs a command against one server while `wasmhook-bench compare` measures it: waits for
# the Nth wrk run to start (the order in a round is a, b when --wasmtime is given, c, w,
# e, d), 2 s more, then runs the command with PID set to the newest process whose command
# line matches PATTERN. For the profiles and counts BENCHMARKS.md quotes:
#   bench/during.sh 3 'wasmhook serve' perf stat -e context-switches -p PID -- sleep 5 &
#   target/release/wasmhook-bench compare --only throughput --seconds 10 --rounds 1 --connections 16
# (the literal argument PID is replaced by the process id). With --baseline both wasmhook
# servers run all along, and the newest match is the baseline's: name the binary in the
# pattern ('release/wasmhook serve', or the baseline's file name).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 N PATTERN COMMAND..." >&2; exit 2; }
n=$1 pattern=$2
shift 2
# Gives up after ten minutes, so that a comparison that failed leaves no script waiting.
last="" count=0 deadline=$((SECONDS + 600))
while [ "$count" -lt "$n" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "wrk run $n never started" >&2; exit 1; }
    wrk=$(pgrep -nx wrk || true)
    if [ -n "$wrk" ] && [ "$wrk" != "$last" ]; then
        last=$wrk
        count=$((count + 1))
    fi
    sleep 0.2
done
sleep 2
# Not this script, whose own command line holds the pattern too.
pid=""
for candidate in $(pgrep -f "$pattern"); do
    [ "$candidate" = "$$" ] || pid=$candidate
done
[ -n "$pid" ] || { echo "no process matches $pattern" >&2; exit 1; }
args=()
for arg in "$@"; do
    args+=("${arg//PID/$pid}")
done
exec "${args[@]}"
