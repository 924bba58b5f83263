//! A guest that keeps state between calls in its own memory, so that the host's reuse of
//! warm instances can be tested: a fresh instance starts at 1, a reused one goes on
//! counting. It speaks the raw WIT interface (no SDK), as `hostile` does.
//!
//! Every call counts itself, then:
//!
//! | payload | what it does | what the host must report |
//! | --- | --- | --- |
//! | `"trap": true` | panics (a trap) | failed; the instance is not reused |
//! | anything else | answers `{"count": n, "previous_token": ..., "messages": [...]}` and prints the token of the call before it | completed |
//!
//! `previous_token` is the token an earlier call on this instance received (null for the
//! first): a guest that kept it must not be able to hand it out, so the host redacts it.

// The generated export glue is unsafe by nature.
#![allow(unsafe_code)]
// Printing to stdout is how it shows the host what it kept.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

wit_bindgen::generate!({
    path: "../../../wit/extension.wit",
    world: "extension",
});

/// Calls this instance has served, this one included.
static CALLS: AtomicU64 = AtomicU64::new(0);
/// The token of the last call that had one.
static LAST_TOKEN: Mutex<Option<String>> = Mutex::new(None);

struct Counter;

impl Guest for Counter {
    fn handle(request: Request) -> Result<String, String> {
        let count = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let payload: Value = serde_json::from_str(&request.payload).map_err(|e| e.to_string())?;
        if payload.get("trap").and_then(Value::as_bool) == Some(true) {
            panic!("the counter traps on purpose at call {count}");
        }
        let mut last = LAST_TOKEN.lock().map_err(|_| "poisoned".to_owned())?;
        let previous = last.clone();
        if let Some(previous) = &previous {
            println!("the previous call's token was {previous}");
        }
        if let Some(token) = request.authorization_token {
            *last = Some(token);
        }
        Ok(json!({
            "count": count,
            "previous_token": previous,
            "messages": [{"type": "info", "content": format!("call {count}")}],
        })
        .to_string())
    }
}

export!(Counter);
