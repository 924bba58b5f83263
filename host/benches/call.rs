//! One call of hello and of invoice-check (on the `invoice-problems` conformance case):
//! warm (pre-instantiated module cached), from the on-disk artifact, and compiling from
//! bytes; and calls per second on one and two threads.
//!
//! `cargo bench -p wasmhook --bench call`; figures and analysis in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{Map, Value};
use wasmhook::dispatch::{HookCall, PreparedCall};
use wasmhook::model::{EventAction, EventFields};
use wasmhook::runtime::{CallLimits, Digest, Invocation, LoadedModule, Runtime, RuntimeConfig};
use wasmhook_tests::conformance::cases;
use wasmhook_tests::guests::{HELLO, INVOICE_CHECK};

/// A guest and the call it is benchmarked with.
struct Subject {
    name: &'static str,
    bytes: Vec<u8>,
    invocation: Invocation,
}

fn subjects() -> Vec<Subject> {
    let problems = cases()
        .into_iter()
        .find(|case| case.name == "invoice-problems")
        .expect("the invoice-problems case exists");
    let hello_event = EventAction::new("annotation_content", "initialize").expect("known");
    let invoice_event = EventAction::new(&problems.event, &problems.action).expect("known");
    let prepare = |event: &EventAction,
                   settings: &Map<String, Value>,
                   secrets: &[(String, String)],
                   body: &Map<String, Value>| {
        PreparedCall::new(&HookCall {
            request_id: "bench-request",
            queue_id: None,
            event,
            hook_id: 1,
            hook_type: wasmhook::model::hook::HookType::Function,
            organization_id: 1,
            base_url: "http://localhost:8080",
            settings,
            secrets,
            token: None,
            body: &EventFields::from_map(body),
            payload_logging: false,
        })
        .expect("assembles")
        .invocation
    };
    vec![
        Subject {
            name: "hello",
            bytes: std::fs::read(HELLO).expect("built"),
            invocation: prepare(&hello_event, &Map::new(), &[], &Map::new()),
        },
        Subject {
            name: "invoice-check",
            bytes: std::fs::read(INVOICE_CHECK).expect("built"),
            invocation: prepare(
                &invoice_event,
                &problems.settings,
                &problems.secret_pairs(),
                &problems.body,
            ),
        },
    ]
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

fn call(
    tokio: &tokio::runtime::Runtime,
    runtime: &Runtime,
    module: &LoadedModule,
    invocation: &Invocation,
) {
    let report = tokio.block_on(runtime.call(module, invocation, &CallLimits::default()));
    assert!(report.outcome.is_completed(), "{:?}", report.outcome);
}

fn single_calls(c: &mut Criterion) {
    let tokio = tokio();
    let cache = tempfile::tempdir().expect("a temporary directory");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .expect("starts");
    let mut group = c.benchmark_group("call");
    for subject in subjects() {
        let digest = Digest::of(&subject.bytes);
        let module = runtime.load(&subject.bytes).expect("loads");
        group.bench_function(BenchmarkId::new("warm", subject.name), |b| {
            b.iter(|| call(&tokio, &runtime, &module, &subject.invocation));
        });
        group.bench_function(BenchmarkId::new("from-artifact", subject.name), |b| {
            b.iter(|| {
                runtime.evict(&digest);
                let module = runtime
                    .load_compiled(&digest)
                    .expect("the artifact is on disk");
                call(&tokio, &runtime, &module, &subject.invocation);
            });
        });
    }
    group.sample_size(10);
    for subject in subjects() {
        // A runtime without a disk cache: every load compiles.
        let uncached = Runtime::new(RuntimeConfig::default()).expect("starts");
        let digest = Digest::of(&subject.bytes);
        group.bench_function(BenchmarkId::new("compile", subject.name), |b| {
            b.iter(|| {
                uncached.evict(&digest);
                let module = uncached.load(&subject.bytes).expect("loads");
                call(&tokio, &uncached, &module, &subject.invocation);
            });
        });
    }
    group.finish();
}

/// Calls per second with `threads` OS threads, each driving its own current-thread tokio
/// runtime over one shared `Runtime`, as a server's worker threads would.
fn throughput(c: &mut Criterion) {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).expect("starts"));
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(1));
    for subject in subjects() {
        let module = runtime.load(&subject.bytes).expect("loads");
        let invocation = Arc::new(subject.invocation);
        for threads in [1u64, 2] {
            group.bench_function(
                BenchmarkId::new(subject.name, format!("{threads}-threads")),
                |b| {
                    b.iter_custom(|iters| {
                        let per_thread = iters.div_ceil(threads);
                        let start = Instant::now();
                        let workers: Vec<_> = (0..threads)
                            .map(|_| {
                                let (runtime, module, invocation) =
                                    (runtime.clone(), module.clone(), invocation.clone());
                                std::thread::spawn(move || {
                                    let tokio = tokio();
                                    for _ in 0..per_thread {
                                        call(&tokio, &runtime, &module, &invocation);
                                    }
                                })
                            })
                            .collect();
                        for worker in workers {
                            worker.join().expect("a worker finishes");
                        }
                        // Time per call, all threads together.
                        start
                            .elapsed()
                            .mul_f64(iters as f64 / (per_thread * threads) as f64)
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = single_calls, throughput
}
criterion_main!(benches);
