//! invoice-check as a `wasi:http/proxy` component, so that `wasmtime serve` does the same
//! work as a wasmhook hook: read the JSON payload from the request body, run the same
//! handler (`examples/rust/invoice-check`), answer its response as JSON.

// The generated export glue is unsafe by nature.
#![allow(unsafe_code)]
// Only a wasm build has a wasi:http host to link against.
#![cfg(target_family = "wasm")]

use std::io::{Read, Write};

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasmhook_sdk::{Call, Extension};

struct Proxy;

impl wasip2::exports::http::incoming_handler::Guest for Proxy {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let (status, body) = match answer(request) {
            Ok(body) => (200, body),
            Err(message) => (400, serde_json::json!({"detail": message}).to_string()),
        };
        let headers = Fields::new();
        // A header name and value this short and plain are always accepted.
        let _ = headers.set("content-type", &[b"application/json".to_vec()]);
        let response = OutgoingResponse::new(headers);
        let _ = response.set_status_code(status);
        let Ok(outgoing) = response.body() else {
            return;
        };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(mut stream) = outgoing.write() {
            let _ = stream.write_all(body.as_bytes());
            let _ = stream.flush();
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
}

/// Reads the payload, runs invoice-check, and returns the response's JSON text.
fn answer(request: IncomingRequest) -> Result<String, String> {
    let incoming = request
        .consume()
        .map_err(|()| "the request has no body".to_owned())?;
    let mut text = Vec::new();
    {
        let mut stream = incoming
            .stream()
            .map_err(|()| "the body cannot be read".to_owned())?;
        stream
            .read_to_end(&mut text)
            .map_err(|error| format!("cannot read the body: {error}"))?;
    }
    let payload = serde_json::from_slice(&text).map_err(|error| format!("not JSON: {error}"))?;
    let call = Call::from_payload(payload).map_err(|error| error.to_string())?;
    invoice_check::InvoiceCheck::handle(&call)
        .map(|response| response.to_json())
        .map_err(|error| error.to_string())
}

wasip2::http::proxy::export!(Proxy);
