//! What an operator watches: `/metrics` counted after known calls, on the API's listener
//! (operator's token) and on its own; the request id carried into run logs; the
//! configuration reference in `serve --help`; the dashboard querying only series that
//! exist; the span tree of one call exported over OTLP to a receiver on loopback.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook::metrics::Stage;
use wasmhook_tests::guests::{FETCHER, HELLO, HOSTILE};

use super::support::{http_client, series, wait_until, Server, Tenant, Upstream, OPERATOR_TOKEN};

fn scrape(url: &str, token: Option<&str>) -> (StatusCode, String, String) {
    let mut request = http_client().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().expect("the server answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().expect("a body"))
}

fn value(all: &HashMap<String, f64>, key: &str) -> f64 {
    all.get(key).copied().unwrap_or(0.0)
}

/// A server whose metrics are also served on a listener of their own, running one hook at a
/// time per organization (so that a call beside a running one is throttled).
fn metrics_server(dir: &Path) -> Server {
    Server::start_with(
        dir,
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_METRICS_LISTEN", "127.0.0.1:0"),
            ("WASMHOOK_RUNS_PER_ORGANIZATION", "1"),
        ],
        &[],
    )
}

/// `/metrics` on the API's listener, read with the operator's token: the text, and its
/// series.
fn scraped(server: &Server) -> (String, HashMap<String, f64>) {
    let (status, _, text) = scrape(&format!("{}/metrics", server.root()), Some(OPERATOR_TOKEN));
    assert_eq!(status, StatusCode::OK, "{text}");
    let all = series(&text);
    (text, all)
}

/// The hooks whose runs the metrics tests count, one for each way a run ends.
struct Hooks {
    /// Hello: completes.
    hello: Value,
    /// Its guest returns an error: the run fails.
    failing: Value,
    /// Completes after 1.5 s: the run beside which another is throttled.
    sleeping: Value,
    /// See [`refused_webhook`].
    webhook: Value,
}

fn hooks_of(acme: &Tenant) -> Hooks {
    let hello = acme.hook(&acme.upload(HELLO), json!({}));
    let hostile = acme.upload(HOSTILE);
    let failing = acme.hook(&hostile, json!({"settings": {"behavior": "guest_error"}}));
    let sleeping = acme.hook(
        &hostile,
        json!({"settings": {"behavior": "sleep", "ms": 1500}}),
    );
    Hooks {
        hello,
        failing,
        sleeping,
        webhook: refused_webhook(acme),
    }
}

/// A webhook to a private address: its delivery is refused before anything is sent.
fn refused_webhook(acme: &Tenant) -> Value {
    let (status, webhook) = acme.post(
        "/hooks",
        json!({
            "name": "to a private address", "type": "webhook", "events": ["invocation.manual"],
            "config": {"url": "https://127.0.0.1:9/hook"},
        }),
    );
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    webhook
}

/// Invokes the [`refused_webhook`]: a run without a response, answered 400 naming its
/// status and the refusal.
fn invoke_refused_webhook(acme: &Tenant, webhook: &Value) {
    let (status, answer) = acme.invoke(webhook, json!({}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["status"], "failed", "{answer}");
    assert!(
        answer["detail"].as_str().is_some_and(|detail| detail
            .starts_with("The hook did not return a response (failed): ")
            && detail.contains("non-public address")),
        "{answer}"
    );
}

/// Invokes hello three times (200), the failing hook twice and the webhook once (400 each,
/// naming why the run gave no response); how many invoke answers had each status.
fn invoke_each_outcome(acme: &Tenant, hooks: &Hooks) -> HashMap<u16, u64> {
    let mut invoke_statuses: HashMap<u16, u64> = HashMap::new();
    for _ in 0..3 {
        let (status, answer) = acme.invoke(&hooks.hello, json!({}));
        assert_eq!(status, StatusCode::OK, "{answer}");
        *invoke_statuses.entry(status.as_u16()).or_default() += 1;
    }
    // A run without a response is a 400 naming its status and its reason.
    for _ in 0..2 {
        let (status, answer) = acme.invoke(&hooks.failing, json!({}));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["status"], "failed", "{answer}");
        assert_eq!(
            answer["detail"],
            "The hook did not return a response (failed): the extension returned an error: \
             the hostile guest refuses this call",
            "{answer}"
        );
        *invoke_statuses.entry(status.as_u16()).or_default() += 1;
    }
    invoke_refused_webhook(acme, &hooks.webhook);
    *invoke_statuses.entry(400).or_default() += 1;
    invoke_statuses
}

/// Invokes hello while the sleeping hook runs: with one run at a time for acme, hello is
/// answered 429 naming the limit, and the sleeper completes (200). The in-flight gauge says
/// when the sleeper runs.
fn invoke_beside_a_running_hook(server: &Server, acme: &Tenant, hooks: &Hooks) {
    let acme_id = acme.organization_id();
    let (throttled, refusal) = std::thread::scope(|scope| {
        let sleeper = scope.spawn(|| acme.invoke(&hooks.sleeping, json!({})));
        assert!(
            wait_until(Instant::now() + Duration::from_secs(10), || {
                server.runs_in_flight(acme_id) >= 1.0
            }),
            "the sleeper never ran"
        );
        let refused = acme.invoke(&hooks.hello, json!({}));
        let (slept, answer) = sleeper.join().expect("the sleeper");
        assert_eq!(slept, StatusCode::OK, "{answer}");
        refused
    });
    assert_eq!(throttled, StatusCode::TOO_MANY_REQUESTS, "{refusal}");
    assert_eq!(
        refusal["detail"],
        "the organization has 1 runs in progress, its limit; retry shortly"
    );
}

#[test]
fn metrics_on_the_api_listener_are_the_operators_only() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = metrics_server(dir.path());
    let acme = Tenant::new(&server, "acme");
    let url = format!("{}/metrics", server.root());
    assert_eq!(scrape(&url, None).0, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(&url, Some(&acme.token)).0, StatusCode::FORBIDDEN);
    let (status, content_type, text) = scrape(&url, Some(OPERATOR_TOKEN));
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
}

/// Six function runs (hello three times, the failing hook twice, the sleeper once) and one
/// webhook run; the call throttled beside the sleeper is no run.
#[test]
fn runs_are_counted_by_organization_kind_and_status_with_their_phases_and_logs() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = metrics_server(dir.path());
    let acme = Tenant::new(&server, "acme");
    let acme_id = acme.organization_id();
    let hooks = hooks_of(&acme);
    invoke_each_outcome(&acme, &hooks);
    invoke_beside_a_running_hook(&server, &acme, &hooks);
    let (text, all) = scraped(&server);

    let runs = |kind: &str, status: &str| {
        value(
            &all,
            &format!(
                "wasmhook_runs_total{{organization=\"{acme_id}\",kind=\"{kind}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(runs("function", "completed"), 4.0, "{text}");
    assert_eq!(runs("function", "failed"), 2.0, "{text}");
    assert_eq!(runs("webhook", "failed"), 1.0, "{text}");
    assert_eq!(
        value(&all, "wasmhook_run_logs_written_total"),
        7.0,
        "{text}"
    );
    for phase in ["instantiate", "guest", "load"] {
        assert_eq!(
            value(
                &all,
                &format!("wasmhook_run_phase_duration_seconds_count{{phase=\"{phase}\"}}")
            ),
            6.0,
            "{phase}: {text}"
        );
    }
    assert_eq!(
        value(
            &all,
            "wasmhook_run_phase_duration_seconds_count{phase=\"log_write\"}"
        ),
        7.0,
        "{text}"
    );
    // Every stage of each of the six calls of a module, webhooks not.
    for stage in Stage::ALL.map(Stage::as_str) {
        assert_eq!(
            value(
                &all,
                &format!("wasmhook_call_stage_duration_seconds_count{{stage=\"{stage}\"}}")
            ),
            6.0,
            "{stage}: {text}"
        );
    }
    let in_flight = format!("wasmhook_runs_in_flight{{organization=\"{acme_id}\"}}");
    assert_eq!(all.get(&in_flight), Some(&0.0), "{text}");
}

#[test]
fn a_call_throttled_by_the_run_limit_is_counted_for_its_organization() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = metrics_server(dir.path());
    let acme = Tenant::new(&server, "acme");
    let acme_id = acme.organization_id();
    let hooks = hooks_of(&acme);
    invoke_beside_a_running_hook(&server, &acme, &hooks);
    let (text, all) = scraped(&server);
    assert_eq!(
        value(
            &all,
            &format!("wasmhook_throttled_requests_total{{organization=\"{acme_id}\"}}")
        ),
        1.0,
        "{text}"
    );
}

#[test]
fn a_webhook_refused_for_its_private_address_is_counted_as_a_refusal_and_a_failed_delivery() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = metrics_server(dir.path());
    let acme = Tenant::new(&server, "acme");
    let webhook = refused_webhook(&acme);
    invoke_refused_webhook(&acme, &webhook);
    let (text, all) = scraped(&server);
    assert_eq!(
        value(
            &all,
            "wasmhook_outbound_refusals_total{reason=\"private_address\"}"
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&all, "wasmhook_webhook_deliveries_total{status=\"failed\"}"),
        1.0,
        "{text}"
    );
}

#[test]
fn http_requests_are_counted_by_route_pattern_and_status() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = metrics_server(dir.path());
    let acme = Tenant::new(&server, "acme");
    let hooks = hooks_of(&acme);
    let mut invoke_statuses = invoke_each_outcome(&acme, &hooks);
    invoke_beside_a_running_hook(&server, &acme, &hooks);
    *invoke_statuses.entry(200).or_default() += 1;
    *invoke_statuses.entry(429).or_default() += 1;
    let (text, all) = scraped(&server);
    for (status, count) in &invoke_statuses {
        assert_eq!(
            value(
                &all,
                &format!(
                    "wasmhook_http_requests_total{{method=\"POST\",route=\"/api/v1/hooks/{{id}}/invoke\",status=\"{status}\"}}"
                )
            ),
            *count as f64,
            "{status}: {text}"
        );
    }
    // No hook's id in any series: routes are the router's patterns.
    for hook in [
        &hooks.hello,
        &hooks.failing,
        &hooks.sleeping,
        &hooks.webhook,
    ] {
        assert!(!text.contains(&format!("/hooks/{}/", hook["id"])), "{text}");
    }
}

#[test]
fn compiles_the_database_and_the_build_are_exposed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = metrics_server(dir.path());
    let acme = Tenant::new(&server, "acme");
    // Two modules compiled while their uploads waited; their optimized code is compiled in
    // the background (tiers, on by default), and counts as compiling until it is done.
    hooks_of(&acme);
    let optimized = wait_until(Instant::now() + Duration::from_secs(120), || {
        value(&scraped(&server).1, "wasmhook_modules_optimized_total") >= 2.0
    });
    let (text, all) = scraped(&server);
    assert!(optimized, "the background compiles never ended: {text}");
    assert_eq!(value(&all, "wasmhook_modules_compiling"), 0.0, "{text}");
    assert!(value(&all, "wasmhook_module_compile_seconds_count{result=\"ok\"}") >= 2.0);
    assert_eq!(value(&all, "wasmhook_db_connections"), 1.0);
    assert_eq!(value(&all, "wasmhook_db_connections_in_use"), 0.0);
    assert!(text.contains("wasmhook_build_info{version="), "{text}");
}

#[test]
fn the_metrics_listener_of_its_own_serves_the_series_without_a_token_and_nothing_else() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = metrics_server(dir.path());
    let acme = Tenant::new(&server, "acme");
    let acme_id = acme.organization_id();
    let hello = acme.hook(&acme.upload(HELLO), json!({}));
    let (status, answer) = acme.invoke(&hello, json!({}));
    assert_eq!(status, StatusCode::OK, "{answer}");

    let address = server
        .banner
        .lines()
        .find_map(|line| line.strip_prefix("wasmhook metrics on "))
        .expect("the metrics address is printed")
        .to_owned();
    let (status, _, open) = scrape(&address, None);
    assert_eq!(status, StatusCode::OK);
    assert!(
        open.contains(&format!(
            "wasmhook_runs_total{{organization=\"{acme_id}\",kind=\"function\",status=\"completed\"}} 1\n"
        )),
        "{open}"
    );
    // And nothing else there.
    let other = address.replace("/metrics", "/api/v1/organizations");
    assert_eq!(
        scrape(&other, Some(OPERATOR_TOKEN)).0,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn organization_labels_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_METRICS_ORGANIZATION_LABELS", "false")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let acme_id = acme.organization_id();
    let hello = acme.hook(&acme.upload(HELLO), json!({}));
    assert_eq!(acme.invoke(&hello, json!({})).0, StatusCode::OK);
    let root = server.root();
    let (_, _, text) = scrape(&format!("{root}/metrics"), Some(OPERATOR_TOKEN));
    assert!(
        text.contains(
            "wasmhook_runs_total{organization=\"\",kind=\"function\",status=\"completed\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        !text.contains(&format!("organization=\"{acme_id}\"")),
        "{text}"
    );
}

#[test]
fn metrics_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_METRICS_ENABLED", "false"),
            ("WASMHOOK_METRICS_LISTEN", "127.0.0.1:0"),
        ],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let hello = acme.hook(&acme.upload(HELLO), json!({}));
    assert_eq!(acme.invoke(&hello, json!({})).0, StatusCode::OK);
    let root = server.root();
    let (status, _, text) = scrape(&format!("{root}/metrics"), Some(OPERATOR_TOKEN));
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    // Off, the metrics listener is not opened either.
    assert!(
        !server.banner.contains("wasmhook metrics on"),
        "{}",
        server.banner
    );
}

#[test]
fn a_calls_request_id_is_echoed_and_names_its_run_log() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.hook(&acme.upload(HELLO), json!({}));
    let response = server
        .client
        .post(server.url(&format!("/hooks/{}/invoke", hello["id"])))
        .bearer_auth(&acme.token)
        .header("x-request-id", "trace-4711.a")
        .json(&json!({}))
        .send()
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "trace-4711.a");
    let (status, logs) = acme.get("/hooks/logs?request_id=trace-4711.a");
    assert_eq!(status, StatusCode::OK, "{logs}");
    let results = logs["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{logs}");
    assert_eq!(results[0]["hook_id"], hello["id"], "{logs}");
}

#[test]
fn an_events_runs_share_the_request_id_that_caused_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.hook(&acme.upload(HELLO), json!({}));
    let second = acme.hook(
        &acme.upload(HOSTILE),
        json!({"settings": {"behavior": "echo"}}),
    );
    let response = server
        .client
        .post(server.url("/events"))
        .bearer_auth(&acme.token)
        .header("x-request-id", "event-42")
        .json(&json!({"event": "invocation.manual", "payload": {}}))
        .send()
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let (_, logs) = acme.get("/hooks/logs?request_id=event-42");
    let hooks: Vec<&Value> = logs["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|log| &log["hook_id"])
        .collect();
    assert_eq!(hooks.len(), 2, "{logs}");
    assert!(hooks.contains(&&hello["id"]) && hooks.contains(&&second["id"]));
}

#[test]
fn serve_help_lists_every_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .args(["serve", "--help"])
        .output()
        .expect("the binary runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/configuration.md"
    ))
    .expect("the configuration page");
    // Every variable the page names is in the help, and the other way round.
    let variables = |text: &str| -> BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("WASMHOOK_") && word.len() > "WASMHOOK_".len())
            .map(str::to_owned)
            .collect()
    };
    let in_page = variables(&page);
    let in_help = variables(&help);
    assert!(in_page.len() > 40, "{in_page:?}");
    assert_eq!(in_page, in_help, "{help}");
    for section in ["[limits]", "[network]", "[connections]", "[metrics]"] {
        assert!(help.contains(section), "{section}: {help}");
    }
}

/// Every `wasmhook_` series the panels of `docs/grafana-dashboard.json` query.
fn dashboard_queries() -> BTreeSet<String> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/grafana-dashboard.json"
        ))
        .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expression = target["expr"].as_str().expect("an expression");
            let mut rest = expression;
            while let Some(start) = rest.find("wasmhook_") {
                let name: String = rest[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[start + name.len()..];
                queried.insert(name);
            }
        }
    }
    queried
}

/// `/metrics` of a fresh server after one run of hello: every series it declares.
fn metrics_after_a_run() -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let hello = acme.hook(&acme.upload(HELLO), json!({}));
    assert_eq!(acme.invoke(&hello, json!({})).0, StatusCode::OK);
    let (_, _, text) = scrape(&format!("{}/metrics", server.root()), Some(OPERATOR_TOKEN));
    text
}

#[test]
fn the_dashboard_queries_only_series_that_exist() {
    let queried = dashboard_queries();
    assert!(queried.len() >= 10, "{queried:?}");
    let text = metrics_after_a_run();
    let declared: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| {
            let (name, kind) = line.split_once(' ')?;
            Some(match kind {
                "counter" => vec![format!("{name}_total")],
                "histogram" => vec![
                    format!("{name}_bucket"),
                    format!("{name}_sum"),
                    format!("{name}_count"),
                ],
                _ => vec![name.to_owned()],
            })
        })
        .flatten()
        .collect();
    let missing: Vec<&String> = queried.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "queried but not exposed: {missing:?}\n{text}"
    );
}

#[test]
fn the_operations_page_describes_every_series_the_server_declares() {
    let text = metrics_after_a_run();
    let operations = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/operations.md"
    ))
    .expect("the operations page");
    let declared: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .collect();
    assert!(!declared.is_empty(), "{text}");
    for line in declared {
        let name = line.split(' ').next().unwrap_or_default();
        assert!(
            operations.contains(&format!("`{name}`"))
                || operations.contains(&format!("`{name}_total`")),
            "docs/operations.md does not describe {name}"
        );
    }
}

/// A span as the collector received it: (trace id, span id, parent span id, name), ids in
/// lower-case hex as OTLP/JSON writes them.
type Span = (String, String, String, String);

/// Every span the collector received.
fn collected_spans(collector: &Upstream) -> Vec<Span> {
    let mut spans = Vec::new();
    for request in collector.received("/v1/traces") {
        let body: Value = serde_json::from_slice(&request.body).expect("OTLP/JSON");
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            assert_eq!(
                resource["resource"]["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|attribute| attribute["key"] == "service.name")
                    .map(|attribute| attribute["value"]["stringValue"].clone()),
                Some(json!("wasmhook")),
                "{resource}"
            );
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let text = |key: &str| span[key].as_str().unwrap_or_default().to_lowercase();
                    spans.push((
                        text("traceId"),
                        text("spanId"),
                        text("parentSpanId"),
                        span["name"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }
    spans
}

/// The trace the caller of the traced tests started, and the caller's span in it.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// A server exporting its spans over OTLP/JSON to `collector`, its guests and webhooks
/// allowed to reach `receiver` on loopback.
struct Traced {
    /// Declared first, so that it stops before the directory and the receivers go.
    server: Server,
    _dir: tempfile::TempDir,
    receiver: Upstream,
    collector: Upstream,
}

fn traced_server() -> Traced {
    let collector = Upstream::start();
    let receiver = Upstream::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.base.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("WASMHOOK_ALLOW_HTTP_WEBHOOKS", "true"),
        ],
        &[],
    );
    Traced {
        server,
        _dir: dir,
        receiver,
        collector,
    }
}

/// Gives acme three hooks on `invocation.manual` (hello; a guest that makes a `wasi:http`
/// request of its own, to the receiver's `/from-guest`; a webhook to its `/hook`) and sends
/// the event with the caller's `traceparent`. The `traceparent` of the webhook's request.
fn send_traced_event(traced: &Traced) -> String {
    let (server, receiver) = (&traced.server, &traced.receiver);
    let acme = Tenant::new(server, "acme");
    acme.hook(&acme.upload(HELLO), json!({}));
    let fetcher = acme.upload(FETCHER);
    acme.hook(
        &fetcher,
        json!({
            "config": {
                "runtime": "wasm", "module": fetcher, "timeout_s": 10,
                "allowed_hosts": [receiver.authority],
            },
            "settings": {"requests": [
                {"method": "GET", "url": format!("{}/from-guest", receiver.base)},
            ]},
        }),
    );
    let (status, webhook) = acme.post(
        "/hooks",
        json!({
            "name": "a webhook", "type": "webhook", "events": ["invocation.manual"],
            "config": {"url": format!("{}/hook", receiver.base)},
        }),
    );
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    let response = server
        .client
        .post(server.url("/events"))
        .bearer_auth(&acme.token)
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"event": "invocation.manual", "payload": {}}))
        .send()
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let delivered = receiver.wait_for("/hook", 1, Duration::from_secs(10));
    delivered[0]
        .headers
        .get("traceparent")
        .cloned()
        .unwrap_or_default()
}

/// Waits for the event's whole span tree (the spans arrive in batches: its request, the
/// event, three runs and their phases, two outbound requests); every span collected.
fn event_spans(collector: &Upstream) -> Vec<Span> {
    let wanted = [
        "POST /api/v1/events",
        "event",
        "hook run",
        "load",
        "instantiate",
        "guest call",
        "log write",
        "outbound request",
    ];
    let mut spans: Vec<Span> = Vec::new();
    wait_until(Instant::now() + Duration::from_secs(20), || {
        spans = collected_spans(collector);
        let names: Vec<&str> = spans.iter().map(|span| span.3.as_str()).collect();
        wanted.iter().all(|name| names.contains(name))
            && names.iter().filter(|name| **name == "hook run").count() == 3
            && names
                .iter()
                .filter(|name| **name == "outbound request")
                .count()
                == 2
    });
    spans
}

/// The spans of the caller's trace.
fn in_trace(spans: &[Span]) -> Vec<&Span> {
    spans.iter().filter(|span| span.0 == TRACE).collect()
}

/// The spans of this name.
fn named<'a>(spans: &[&'a Span], name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .copied()
        .filter(|span| span.3 == name)
        .collect()
}

#[test]
fn a_webhooks_request_carries_the_callers_trace_on_from_its_outbound_request_span() {
    let traced = traced_server();
    let traceparent = send_traced_event(&traced);
    assert!(
        traceparent.starts_with(&format!("00-{TRACE}-")) && traceparent.ends_with("-01"),
        "{traceparent}"
    );
    let spans = event_spans(&traced.collector);
    let of_trace = in_trace(&spans);
    let outbound = named(&of_trace, "outbound request");
    assert_eq!(outbound.len(), 2, "{spans:#?}");
    assert!(
        outbound.iter().any(|span| traceparent.contains(&span.1)),
        "{traceparent}"
    );
}

#[test]
fn an_events_spans_hang_from_the_callers_span_through_the_event_to_each_runs_phases() {
    let traced = traced_server();
    send_traced_event(&traced);
    let spans = event_spans(&traced.collector);
    let of_trace = in_trace(&spans);
    let request = named(&of_trace, "POST /api/v1/events");
    assert_eq!(request.len(), 1, "{spans:#?}");
    assert_eq!(request[0].2, CALLER_SPAN, "the caller's span is the parent");
    let event = named(&of_trace, "event");
    assert_eq!(event.len(), 1, "{spans:#?}");
    assert_eq!(event[0].2, request[0].1);
    let runs = named(&of_trace, "hook run");
    assert_eq!(runs.len(), 3, "{spans:#?}");
    assert!(runs.iter().all(|run| run.2 == event[0].1));
    // The function's run holds its load, instantiate, guest call and log write; the
    // webhook's its outbound request and log write.
    let children = |run: &Span| -> Vec<String> {
        let mut names: Vec<String> = of_trace
            .iter()
            .filter(|span| span.2 == run.1)
            .map(|span| span.3.clone())
            .collect();
        names.sort();
        names
    };
    let mut trees: Vec<Vec<String>> = runs.iter().map(|run| children(run)).collect();
    trees.sort();
    assert_eq!(
        trees,
        vec![
            vec!["guest call", "instantiate", "load", "log write"],
            vec!["guest call", "instantiate", "load", "log write"],
            vec!["log write", "outbound request"],
        ],
        "{spans:#?}"
    );
}

#[test]
fn a_guests_request_carries_the_trace_on_from_a_span_under_its_guest_call() {
    let traced = traced_server();
    send_traced_event(&traced);
    let spans = event_spans(&traced.collector);
    let of_trace = in_trace(&spans);
    let outbound = named(&of_trace, "outbound request");
    let from_guest = traced
        .receiver
        .wait_for("/from-guest", 1, Duration::from_secs(5));
    let guest_traceparent = from_guest[0]
        .headers
        .get("traceparent")
        .cloned()
        .unwrap_or_default();
    let guest_request = outbound
        .iter()
        .find(|span| guest_traceparent.contains(&span.1))
        .unwrap_or_else(|| panic!("no span for {guest_traceparent}: {spans:#?}"));
    assert!(guest_traceparent.starts_with(&format!("00-{TRACE}-")));
    assert_eq!(
        named(&of_trace, "guest call")
            .iter()
            .filter(|call| call.1 == guest_request.2)
            .count(),
        1,
        "{spans:#?}"
    );
}

/// A call made after the probe is traced: once its span has arrived, a span of the probe
/// (ended before it) would have too.
#[test]
fn probes_make_no_traces() {
    let traced = traced_server();
    let server = &traced.server;
    let (status, _, _) = scrape(&format!("{}/readyz", server.root()), None);
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(status, StatusCode::OK);
    assert!(
        wait_until(Instant::now() + Duration::from_secs(20), || {
            collected_spans(&traced.collector)
                .iter()
                .any(|span| span.3 == "GET /api/v1/organizations")
        }),
        "the call after the probe was never traced"
    );
    assert!(
        !collected_spans(&traced.collector)
            .iter()
            .any(|span| span.3.contains("readyz")),
        "a probe was traced"
    );
}
