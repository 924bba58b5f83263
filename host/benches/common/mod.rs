//! What the in-process benchmarks share: whether to measure at all, the runtime their calls
//! run on, the median of samples, how a time is printed, and the invocation every measured
//! call gets (`annotation_content.initialize`, no settings, secrets or token).

use std::time::Duration;

use serde_json::Map;
use wasmhook::dispatch::{HookCall, PreparedCall};
use wasmhook::model::{EventAction, EventFields};
use wasmhook::runtime::Invocation;

/// Whether this run is `cargo bench`, which passes `--bench`: `cargo test --benches` passes
/// nothing and must not spend minutes in a plain-harness benchmark.
pub fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// The single-threaded async runtime the plain-harness benchmarks call guests on.
pub fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// A time as the tables print it: seconds, milliseconds or microseconds.
pub fn time(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros >= 1e6 {
        format!("{:.2} s", micros / 1e6)
    } else if micros >= 1e3 {
        format!("{:.1} ms", micros / 1e3)
    } else {
        format!("{micros:.0} µs")
    }
}

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub fn invocation() -> Invocation {
    let event = EventAction::new("annotation_content", "initialize").expect("a known event");
    PreparedCall::new(&HookCall {
        request_id: "bench-request",
        queue_id: None,
        event: &event,
        hook_id: 1,
        hook_type: wasmhook::model::hook::HookType::Function,
        organization_id: 1,
        base_url: "http://localhost:8080",
        settings: &Map::new(),
        secrets: &[],
        token: None,
        body: &EventFields::default(),
        payload_logging: false,
    })
    .expect("the payload assembles")
    .invocation
}
