-- wrk script of wasmhook-bench: POSTs one body again and again and prints one JSON line of
-- results that the bench parses (wrk's own report is for people, not for parsing).
-- The body is read from the file named by WASMHOOK_BENCH_BODY; WASMHOOK_BENCH_AUTHORIZATION,
-- when set, is sent as the Authorization header.
local file = assert(io.open(os.getenv("WASMHOOK_BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
local authorization = os.getenv("WASMHOOK_BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
    wrk.headers["Authorization"] = authorization
end

done = function(summary, latency, requests)
    local errors = summary.errors
    io.write(string.format(
        '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
        '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
        summary.requests, summary.duration, errors.connect, errors.read, errors.write,
        errors.status, errors.timeout, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9), latency.max))
end
