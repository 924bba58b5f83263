//! What the in-process benchmarks share: the median of samples, and the invocation every
//! measured call gets (`annotation_content.initialize`, no settings, secrets or token).

use std::time::Duration;

use serde_json::Map;
use wasmhook::dispatch::{HookCall, PreparedCall};
use wasmhook::model::{EventAction, EventFields};
use wasmhook::runtime::Invocation;

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
