//! What going through wasmhook's outbound rules costs, against a receiver on loopback that
//! answers `{}`:
//!
//! - `direct`: a plain reqwest POST of a 2 KB JSON body (the baseline);
//! - `outbound`: the same POST through `Outbound` (the route check, the organization's turn,
//!   the checking resolver's client, the capped read), signed as a webhook is;
//! - `guest/no-request` and `guest/one-request`: the fetcher guest called with no request
//!   and with one GET to the receiver through `wasi:http`: the difference is what one
//!   guest request costs.
//!
//! `cargo bench -p wasmhook --bench outbound`; figures in BENCHMARKS.md.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};
use wasmhook::dispatch::webhook::signature;
use wasmhook::dispatch::{HookCall, PreparedCall};
use wasmhook::model::{EventAction, EventFields};
use wasmhook::outbound::{AllowList, Outbound, OutboundConfig, OutboundRequest, Route};
use wasmhook::runtime::{CallLimits, NetworkGrant, Outcome, Runtime, RuntimeConfig};
use wasmhook_tests::guests::FETCHER;

/// A receiver on loopback that answers every request with `{}`; its address.
fn receiver(tokio: &tokio::runtime::Runtime) -> String {
    tokio.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("an address");
        let app = axum::Router::new().fallback(|| async { axum::Json(json!({})) });
        tokio::spawn(async move { axum::serve(listener, app).await });
        address.to_string()
    })
}

fn payload() -> Bytes {
    let annotation: Vec<Value> = (0..40)
        .map(|id| json!({"id": id, "schema_id": "amount", "content": {"value": "12.50"}}))
        .collect();
    Bytes::from(
        json!({"event": "annotation_content", "annotation": {"content": annotation}}).to_string(),
    )
}

fn bench(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let address = receiver(&tokio);
    let url = reqwest::Url::parse(&format!("http://{address}/hook")).expect("a URL");
    let body = payload();
    assert!(body.len() > 1500, "the payload is about 2 KB");

    wasmhook::outbound::install_crypto_provider();
    let direct = reqwest::Client::new();
    let outbound = Arc::new(
        Outbound::new(
            OutboundConfig {
                allow_private_addresses: true,
                allow_http_webhooks: true,
                ..OutboundConfig::default()
            },
            None,
        )
        .expect("a client"),
    );

    let mut group = c.benchmark_group("outbound");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("direct", |b| {
        b.to_async(&tokio).iter(|| async {
            let answer = direct
                .post(url.clone())
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("an answer");
            answer.bytes().await.expect("a body")
        });
    });
    group.bench_function("outbound", |b| {
        b.to_async(&tokio).iter(|| async {
            let route = outbound.webhook_route(&url).expect("allowed");
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "x-rossum-signature-sha256",
                http::HeaderValue::from_str(&signature("secret", &body)).expect("a header"),
            );
            let request = OutboundRequest {
                method: http::Method::POST,
                url: url.clone(),
                headers,
                body: body.clone(),
                first_byte_timeout: None,
                insecure_tls: false,
            };
            assert_eq!(route, Route::Public);
            outbound
                .send(1, route, request)
                .await
                .expect("an answer")
                .bytes()
                .await
                .expect("a body")
        });
    });
    group.finish();

    let runtime = Runtime::new(RuntimeConfig::default()).expect("the runtime starts");
    let fetcher = runtime
        .load(&std::fs::read(FETCHER).expect("built"))
        .expect("loads");
    let event = EventAction::new("annotation_content", "initialize").expect("known");
    let prepare = |requests: Value| {
        let settings: Map<String, Value> = match json!({ "requests": requests }) {
            Value::Object(settings) => settings,
            _ => Map::new(),
        };
        PreparedCall::new(&HookCall {
            request_id: "bench-request",
            queue_id: None,
            event: &event,
            hook_id: 1,
            hook_type: wasmhook::model::hook::HookType::Function,
            organization_id: 1,
            base_url: "http://localhost:8080",
            settings: &settings,
            secrets: &[],
            token: None,
            body: &EventFields::default(),
            payload_logging: false,
        })
        .expect("assembles")
        .invocation
    };
    let limits = CallLimits {
        network: Some(NetworkGrant {
            outbound: Arc::clone(&outbound),
            allowed: AllowList::parse([address.as_str()]).expect("a pattern"),
            organization: 1,
        }),
        ..CallLimits::default()
    };
    let mut group = c.benchmark_group("guest");
    group.measurement_time(Duration::from_secs(5));
    for (name, requests) in [
        ("no-request", json!([])),
        (
            "one-request",
            json!([{"method": "GET", "url": format!("http://{address}/guest")}]),
        ),
    ] {
        let invocation = prepare(requests);
        group.bench_function(name, |b| {
            b.to_async(&tokio).iter(|| async {
                let report = runtime.call(&fetcher, &invocation, &limits).await;
                match &report.outcome {
                    Outcome::Completed { response } => {
                        let text = Value::Object(response.clone()).to_string();
                        assert!(!text.contains("error"), "{text}");
                    }
                    other => panic!("{}", other.message()),
                }
                report
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
