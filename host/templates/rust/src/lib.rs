//! {{name}}: a wasmhook extension. It answers every event with a greeting; change
//! `handle` to do your work. `wasmhook run` calls it locally as a hook would.

use serde_json::{json, Value};

wit_bindgen::generate!({
    path: "wit/extension.wit",
    world: "extension",
});

use wasmhook::extension::host::{log, Level};

struct Extension;

impl Guest for Extension {
    /// One hook call: `request.payload` is the whole payload as JSON text (Rossum's shape),
    /// `request.settings` the hook's settings. Ok is the response as JSON text; Err fails
    /// the call with that message.
    fn handle(request: Request) -> Result<String, String> {
        let settings: Value = serde_json::from_str(&request.settings)
            .map_err(|error| format!("the settings are not JSON: {error}"))?;
        let greeting = settings
            .get("greeting")
            .and_then(Value::as_str)
            .unwrap_or("Hello");
        log(Level::Info, greeting);
        let content = format!("{greeting}, {}.{}!", request.event, request.action);
        Ok(json!({
            "messages": [{"type": "info", "content": content}],
            "operations": [],
        })
        .to_string())
    }
}

export!(Extension);
