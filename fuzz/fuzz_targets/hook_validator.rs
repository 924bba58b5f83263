//! Arbitrary bytes, read as a JSON object, through the hook validator: whatever a client
//! sends to `POST /hooks` (or lays over a stored hook with `PATCH`) is a draft or an error
//! naming a field, never a panic; and an error never quotes a secret value.
//!
//! Seeds: hook objects as JSON, one per file (corpus/hook_validator/).

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use wasmhook::model::hook::{parse_draft, HookBounds, HookDraft, HookError};

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let strict = validate(&input, &bounds(false));
    let lenient = validate(&input, &bounds(true));
    // Allowing plain-http webhooks only ever accepts more.
    assert!(
        strict.is_err() || lenient.is_ok(),
        "accepted with https only, refused with http allowed: {:?}",
        lenient.as_ref().err()
    );
    let secrets = distinctive_secrets(&input);
    for result in [strict, lenient] {
        match result {
            Ok(draft) => assert!(
                !draft.spec.kind.config().contains_key("secret"),
                "config.secret is kept only sealed, never in the stored config"
            ),
            Err(error) => {
                let text = error.to_string();
                assert!(text.starts_with(&error.field.to_string()), "{text}");
                for secret in &secrets {
                    assert!(
                        !text.contains(secret.as_str()),
                        "the error quotes the secret `{secret}`: {text}"
                    );
                }
            }
        }
    }
});

/// The one call of the validator's entry point: change it here if it is renamed.
fn validate(input: &Map<String, Value>, bounds: &HookBounds) -> Result<HookDraft, HookError> {
    parse_draft(input, bounds)
}

/// The server's default bounds (`[limits]` in the configuration).
fn bounds(allow_http_webhooks: bool) -> HookBounds {
    HookBounds {
        max_timeout_s: 60,
        min_timeout_s: 1,
        max_memory_mb: 512,
        min_memory_mb: 16,
        allow_http_webhooks,
        max_reuse_idle_s: 600,
    }
}

/// The secret values sent (`secrets` and `config.secret`) that no message could hold by
/// coincidence: at least 12 ASCII letters and digits, with both, and found nowhere else in
/// the input (not in a name, a key or a schema the message may quote).
fn distinctive_secrets(input: &Map<String, Value>) -> Vec<String> {
    let mut values = Vec::new();
    let mut rest = input.clone();
    if let Some(Value::Object(secrets)) = rest.get_mut("secrets") {
        for value in secrets.values_mut() {
            if let Value::String(text) = std::mem::take(value) {
                values.push(text);
            }
        }
    }
    if let Some(Value::Object(config)) = rest.get_mut("config") {
        if let Some(Value::String(text)) = config.get_mut("secret").map(std::mem::take) {
            values.push(text);
        }
    }
    let rest = Value::Object(rest).to_string();
    values.retain(|value| {
        value.len() >= 12
            && value.bytes().all(|byte| byte.is_ascii_alphanumeric())
            && value.bytes().any(|byte| byte.is_ascii_digit())
            && value.bytes().any(|byte| byte.is_ascii_alphabetic())
            && !rest.contains(value.as_str())
    });
    values
}
