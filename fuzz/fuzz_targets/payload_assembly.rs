//! Arbitrary text through the payload a hook receives and the redaction of what leaves a
//! call: never a panic; the event's keys come through unless they take a key the host sets;
//! and once redacted, no secret value or token is left, in text or in any JSON string.
//!
//! The input is lines (seeds in corpus/payload_assembly/):
//!
//! ```text
//! annotation_content.initialize      the event and action (another pair if not a known one)
//! {"annotation": {"id": 7}}          the event's own keys: a JSON object (else none), read
//!                                    as an invocation's body is
//! {"region": "eu"}                   the hook's settings: a JSON object (else none)
//! tok3n0123456789                    the minted token (an empty line: none)
//! api_key=s3cr3t-value               secrets, one `name=value` a line, to the end
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use wasmhook::model::{
    assemble_payload, payload_text, EventAction, EventFields, PayloadParts, RESERVED_KEYS,
};
use wasmhook::runtime::Redactor;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let event = lines
        .next()
        .and_then(|line| line.split_once('.'))
        .and_then(|(event, action)| EventAction::new(event, action).ok())
        .or_else(|| EventAction::new("annotation_content", "initialize").ok());
    let Some(event) = event else {
        return;
    };
    // As an invocation's body is read: its values kept as the text they came as.
    let body = lines
        .next()
        .and_then(|line| EventFields::parse(line.as_bytes()).ok())
        .unwrap_or_default();
    let settings = object(lines.next());
    let token = lines.next().filter(|token| !token.is_empty());
    let secrets: Vec<(String, String)> = lines
        .map(|line| match line.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => (line.to_owned(), String::new()),
        })
        .collect();

    let parts = PayloadParts {
        request_id: "5f0c9a4e-1b7d-4c35-9a63-2f1e8d0b7c11",
        timestamp: "2026-01-01T00:00:00.000000Z",
        hook_url: "http://localhost:8080/api/v1/hooks/7",
        event: &event,
        token,
        base_url: "http://localhost:8080",
        settings: &settings,
        secrets: &secrets,
        body: &body,
    };
    let assembled = assemble_payload(&parts);
    // The text a call sends is JSON that parses to the assembled payload, or the same
    // refusal.
    match (&assembled, payload_text(&parts)) {
        (Ok(payload), Ok(text)) => assert_eq!(
            serde_json::from_str::<Value>(&text).ok(),
            Some(Value::Object(payload.clone())),
            "the payload's text"
        ),
        (Err(refused), Err(also)) => assert_eq!(refused, &also),
        (assembled, text) => panic!("{assembled:?} but {text:?}"),
    }
    let reserved = body.keys().any(|key| RESERVED_KEYS.contains(&key));
    let payload = match assembled {
        Ok(payload) => payload,
        Err(error) => {
            assert!(reserved, "refused without a reserved key: {error}");
            return;
        }
    };
    assert!(!reserved, "a reserved key of the event's was accepted");
    for (key, value) in &body.to_map() {
        assert_eq!(payload.get(key), Some(value), "the event's `{key}`");
    }
    assert_eq!(
        payload.get("settings"),
        Some(&Value::Object(settings.clone()))
    );

    // What the runtime redacts: every secret value and the token.
    let redactor = Redactor::new(secrets.iter().map(|(_, value)| value.as_str()).chain(token));
    let needles: Vec<&str> = secrets
        .iter()
        .map(|(_, value)| value.as_str())
        .chain(token)
        .filter(|needle| distinctive(needle))
        .collect();
    let Ok(text) = serde_json::to_string(&payload) else {
        panic!("a map of JSON values is always JSON text");
    };
    let redacted = redactor.redact(&text);
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let truncated = redactor.redact_truncated(&text[..cut]);
    let json = redactor.redact_json(Value::Object(payload));
    for needle in needles {
        assert!(!redacted.contains(needle), "`{needle}` is left in the text");
        assert!(
            !truncated.contains(needle),
            "`{needle}` is left in the cut text"
        );
        assert!(!holds(&json, needle), "`{needle}` is left in a JSON string");
    }
});

/// A line as a JSON object; anything else is an empty one.
fn object(line: Option<&str>) -> Map<String, Value> {
    line.and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_default()
}

/// A value the redactor replaces (long enough for it) whose replacement cannot bring it
/// back: letters and digits only, with a digit, so that it can neither sit inside the
/// `[redacted...]` marker nor straddle its brackets.
fn distinctive(value: &str) -> bool {
    !Redactor::new([value]).is_empty()
        && value.bytes().all(|byte| byte.is_ascii_alphanumeric())
        && value.bytes().any(|byte| byte.is_ascii_digit())
}

/// Whether a string or a key anywhere in `value` contains `needle`.
fn holds(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(text) => text.contains(needle),
        Value::Array(items) => items.iter().any(|item| holds(item, needle)),
        Value::Object(map) => map
            .iter()
            .any(|(key, item)| key.contains(needle) || holds(item, needle)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}
