#!/usr/bin/env bash
# What metrics, access logs and run lines cost a call: three wasmhook servers side by side,
# one as shipped (metrics on, --log-level info: an access line and a run line per call,
# written to a file), one with metrics only (--log-level warn) and one with neither
# (WASMHOOK_METRICS_ENABLED=false, --log-level warn), each with the demo's hello hook. wrk (Debian's, installed when missing) calls each in turn,
# keep-alive, POST /api/v1/hooks/{id}/invoke, for ROUNDS interleaved rounds; the report is
# req/s and p99 of each, and the on/off ratio per round.
#   bench/observability.sh [--seconds 5] [--rounds 8] [--connections 16]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=5 rounds=8 connections=16
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
if ! command -v wrk >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y -qq wrk
fi
examples/rust/build.sh hello >/dev/null
cargo build --quiet --release -p wasmhook
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Starts a server named $1 with extra environment $2...; sets url_$1 and token_$1.
start() {
    local name=$1; shift
    env "$@" WASMHOOK_OPERATOR_TOKEN=bench-operator-token-0123456789 \
        target/release/wasmhook serve --demo --listen 127.0.0.1:0 --data-dir "$work/$name" \
        2>"$work/$name.log" &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q "curl -s -X POST" "$work/$name.log" 2>/dev/null && break
        sleep 0.1
    done
    local line
    line=$(grep "curl -s -X POST" "$work/$name.log") ||
        { echo "the '$name' server did not start:" >&2; cat "$work/$name.log" >&2; exit 1; }
    eval "url_$name=$(sed -E 's/.*POST ([^ ]+) .*/\1/' <<<"$line")"
    eval "token_$name=$(sed -E "s/.*Bearer ([^']+)'.*/\1/" <<<"$line")"
}
start on WASMHOOK_LOG_LEVEL=info
start metrics WASMHOOK_LOG_LEVEL=warn
start off WASMHOOK_LOG_LEVEL=warn WASMHOOK_METRICS_ENABLED=false

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"note": "hi"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
LUA

# Checks the answer, then measures: prints "req/s p99_ms".
measure() {
    local url=$1 token=$2
    local answer report
    answer=$(curl -sf -X POST "$url" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d '{"note": "hi"}') || true
    [[ $answer == *'"messages"'* ]] || { echo "bad answer from $url: $answer" >&2; exit 1; }
    report=$(TOKEN=$token wrk -t2 -c"$connections" -d"${seconds}s" --latency \
        -s "$work/post.lua" "$url")
    # A 429 or an error is not throughput.
    if grep -q "Non-2xx" <<<"$report"; then
        echo "wrk saw answers other than 200:" >&2
        echo "$report" >&2
        exit 1
    fi
    awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p=$2} END {
            if (p ~ /us$/) {sub(/us/, "", p); p = p / 1000} else if (p ~ /ms$/) {sub(/ms/, "", p)}
            else if (p ~ /s$/) {sub(/s/, "", p); p = p * 1000}
            print rps, p}' <<<"$report"
}

echo "wrk -t2 -c$connections -d${seconds}s, POST invoke of the demo hello hook; $(nproc) cores"
echo "on: metrics and info logs (to a file); metrics: metrics, warn logs; off: neither"
printf '%-6s %-28s %-28s %-28s %s\n' round on metrics off "on/off, metrics/off req/s"
for round in $(seq "$rounds"); do
    read -r on_rps on_p99 < <(measure "$url_on" "$token_on")
    read -r metrics_rps metrics_p99 < <(measure "$url_metrics" "$token_metrics")
    read -r off_rps off_p99 < <(measure "$url_off" "$token_off")
    ratios=$(awk -v a="$on_rps" -v m="$metrics_rps" -v b="$off_rps" \
        'BEGIN {printf "%.3f, %.3f", a / b, m / b}')
    printf '%-6s %-28s %-28s %-28s %s\n' "$round" "$on_rps req/s, p99 ${on_p99} ms" \
        "$metrics_rps req/s, p99 ${metrics_p99} ms" "$off_rps req/s, p99 ${off_p99} ms" "$ratios"
    echo "$on_rps $metrics_rps $off_rps" >>"$work/rounds"
done
# This machine's throughput moves by tens of percent from one 10 s window to the next
# (BENCHMARKS.md, Noise): the medians of the per-round ratios say more than any round.
sort -n <(awk '{print $1 / $3}' "$work/rounds") >"$work/ratios-on"
sort -n <(awk '{print $2 / $3}' "$work/rounds") >"$work/ratios-metrics"
median() { awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}' "$1"; }
printf 'median of %s rounds: on/off %.3f (from %.3f to %.3f), metrics/off %.3f (from %.3f to %.3f)\n' \
    "$rounds" "$(median "$work/ratios-on")" "$(head -1 "$work/ratios-on")" \
    "$(tail -1 "$work/ratios-on")" "$(median "$work/ratios-metrics")" \
    "$(head -1 "$work/ratios-metrics")" "$(tail -1 "$work/ratios-metrics")"
lines=$(wc -l <"$work/on.log")
echo "the 'on' server wrote $lines log lines ($(du -h "$work/on.log" | cut -f1))"
