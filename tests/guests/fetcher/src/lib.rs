//! A guest that makes the outgoing HTTP requests `settings.requests` lists, through the
//! SDK's `http` module (the host's `wasi:http`), and answers with what each got:
//! `{"results": [{"status", "body"} or {"error"}]}`.
//!
//! Each request is `{"method", "url", "body"?, "with_token"?}`. In `url`, `{base_url}` and
//! `{hook_id}` are replaced with the call's; `with_token` sends the minted API token as
//! `Authorization: Bearer`, so a test can check that the token works on the installation's
//! own API while the run lasts.

use wasmhook_sdk::http::Request;
use wasmhook_sdk::{json, log, Call, Error, Extension, Response, Value};

struct Fetcher;

impl Extension for Fetcher {
    fn handle(call: &Call) -> Result<Response, Error> {
        let wanted = call
            .setting("requests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut results = Vec::new();
        for wanted in wanted {
            let method = wanted
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or("GET");
            let url = wanted
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .replace("{base_url}", call.base_url())
                .replace("{hook_id}", &call.hook_id().to_string());
            let mut request = Request::new(method, url.as_str());
            if wanted.get("with_token").and_then(Value::as_bool) == Some(true) {
                if let Some(token) = call.token() {
                    request = request.bearer(token);
                }
            }
            if let Some(body) = wanted.get("body") {
                request = request.json(body);
            }
            let result = match request.send() {
                Ok(response) => json!({"status": response.status, "body": response.text()}),
                Err(error) => {
                    log::warning(error.to_string());
                    json!({"error": error.to_string()})
                }
            };
            results.push(result);
        }
        Ok(Response::new().with("results", Value::Array(results)))
    }
}

wasmhook_sdk::export!(Fetcher);
