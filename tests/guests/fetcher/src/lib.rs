//! A guest that makes the outgoing HTTP requests `settings.requests` lists, through
//! `wasi:http`, and answers with what each got: `{"results": [{"status", "body"} or
//! {"error"}]}`.
//!
//! Each request is `{"method", "url", "body"?, "with_token"?}`. In `url`, `{base_url}` and
//! `{hook_id}` are replaced with the call's; `with_token` sends the minted API token as
//! `Authorization: Bearer`, so a test can check that the token works on the installation's
//! own API while the run lasts.

// The generated export glue is unsafe by nature.
#![allow(unsafe_code)]

use serde_json::{json, Value};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

wit_bindgen::generate!({
    path: "../../../wit/extension.wit",
    world: "extension",
});

use wasmhook::extension::host::log;
use wasmhook::extension::types::Level;

struct Fetcher;

impl Guest for Fetcher {
    fn handle(request: Request) -> Result<String, String> {
        let settings: Value =
            serde_json::from_str(&request.settings).map_err(|error| error.to_string())?;
        let wanted = settings
            .get("requests")
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
                .replace("{base_url}", &request.base_url)
                .replace("{hook_id}", &request.hook_id.to_string());
            let mut headers = vec![("content-type".to_owned(), b"application/json".to_vec())];
            if wanted.get("with_token").and_then(Value::as_bool) == Some(true) {
                if let Some(token) = &request.authorization_token {
                    headers.push((
                        "authorization".to_owned(),
                        format!("Bearer {token}").into_bytes(),
                    ));
                }
            }
            let body = wanted.get("body").map(Value::to_string);
            let result = match fetch(method, &url, &headers, body.as_deref()) {
                Ok((status, body)) => json!({"status": status, "body": body}),
                Err(error) => {
                    log(Level::Warning, &format!("{method} {url}: {error}"));
                    json!({"error": error})
                }
            };
            results.push(result);
        }
        Ok(json!({"results": results}).to_string())
    }
}

/// One request, blocking until its whole answer is in.
fn fetch(
    method: &str,
    url: &str,
    headers: &[(String, Vec<u8>)],
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not an absolute URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let fields = Fields::from_list(headers).map_err(|error| format!("{error:?}"))?;
    let outgoing = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_owned()),
    };
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    outgoing
        .set_method(&method)
        .map_err(|()| "bad method".to_owned())?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme".to_owned())?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|()| "bad authority".to_owned())?;
    outgoing
        .set_path_with_query(Some(path))
        .map_err(|()| "bad path".to_owned())?;
    let outgoing_body = outgoing.body().map_err(|()| "no body".to_owned())?;
    if let Some(body) = body {
        let stream = outgoing_body
            .write()
            .map_err(|()| "no body stream".to_owned())?;
        stream
            .blocking_write_and_flush(body.as_bytes())
            .map_err(|error| format!("{error:?}"))?;
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|error| format!("{error:?}"))?;
    let future = outgoing_handler::handle(outgoing, None).map_err(|error| format!("{error:?}"))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or("no response")?
        .map_err(|()| "the response was taken already".to_owned())?
        .map_err(|error| format!("{error:?}"))?;
    let status = response.status();
    let incoming = response.consume().map_err(|()| "no body".to_owned())?;
    let mut bytes = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| "no body stream".to_owned())?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(error) => return Err(format!("{error:?}")),
            }
        }
    }
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

export!(Fetcher);
