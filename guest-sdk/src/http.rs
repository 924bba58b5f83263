//! Outgoing HTTP from an extension (feature `http`), through the host's `wasi:http`.
//!
//! The host lets a call reach the installation's own API (where the hook's token works, see
//! [`Call::api`](crate::Call::api)) and the hosts the hook's `config.allowed_hosts` lists;
//! any other request fails with the host's reason (`HttpRequestDenied`, ...), and the run
//! log's output says why.
//!
//! ```no_run
//! use wasmhook_sdk::{http, Call, Error, Response};
//!
//! fn handle(call: &Call) -> Result<Response, Error> {
//!     // The hook itself, read through the API with the token minted for this call.
//!     let hook = call.api("GET", &format!("/hooks/{}", call.hook_id())).send()?.json()?;
//!     let rates = http::Request::get("https://rates.example.com/eur").send()?;
//!     Ok(Response::new().info(format!("{} sees {} bytes of rates", hook["name"], rates.body.len())))
//! }
//! ```

use std::fmt;

use serde_json::Value;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Bytes read from a response body at a time.
const READ_CHUNK: u64 = 64 * 1024;

/// Why a request got no response: refused by the host, or failed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    message: String,
}

impl HttpError {
    fn new(message: impl Into<String>) -> Self {
        HttpError {
            message: message.into(),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code; any status is a response, not an [`HttpError`] (see
    /// [`HttpResponse::is_success`]).
    pub status: u16,
    /// The whole body, as bytes (see [`HttpResponse::text`] and [`HttpResponse::json`]).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; the error names the status when it is not JSON.
    pub fn json(&self) -> Result<Value, HttpError> {
        serde_json::from_slice(&self.body).map_err(|error| {
            HttpError::new(format!(
                "the response ({}) is not JSON: {error}",
                self.status
            ))
        })
    }
}

/// An outgoing request, built then sent.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl Request {
    /// A request with this method (`GET`, `POST`, ...) to an absolute URL.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Request {
            method: method.to_ascii_uppercase(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// A GET of an absolute URL, without headers or body until they are added.
    pub fn get(url: impl Into<String>) -> Self {
        Request::new("GET", url)
    }

    /// A POST to an absolute URL, without headers or body until they are added.
    pub fn post(url: impl Into<String>) -> Self {
        Request::new("POST", url)
    }

    /// Adds a header, its name lower-cased; a name added twice is sent twice.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Sends `value` as a JSON body.
    pub fn json(self, value: &Value) -> Self {
        let mut request = self.header("content-type", "application/json");
        request.body = Some(value.to_string().into_bytes());
        request
    }

    /// Sends these bytes as the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sends it and reads the whole response; blocks the call until then (the call's time
    /// limit applies).
    pub fn send(self) -> Result<HttpResponse, HttpError> {
        let described = |error: &dyn fmt::Debug| {
            HttpError::new(format!("{} {}: {error:?}", self.method, self.url))
        };
        let (scheme, rest) = self
            .url
            .split_once("://")
            .ok_or_else(|| HttpError::new(format!("`{}` is not an absolute URL", self.url)))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let fields = Fields::from_list(&self.headers).map_err(|error| described(&error))?;
        let outgoing = OutgoingRequest::new(fields);
        let method = match self.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            other => Method::Other(other.to_owned()),
        };
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.to_owned()),
        };
        let refused =
            |what: &str| HttpError::new(format!("{} {}: bad {what}", self.method, self.url));
        outgoing
            .set_method(&method)
            .map_err(|()| refused("method"))?;
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| refused("scheme"))?;
        outgoing
            .set_authority(Some(authority))
            .map_err(|()| refused("authority"))?;
        outgoing
            .set_path_with_query(Some(path))
            .map_err(|()| refused("path"))?;
        let outgoing_body = outgoing.body().map_err(|()| refused("body"))?;
        if let Some(body) = &self.body {
            let stream = outgoing_body.write().map_err(|()| refused("body"))?;
            for chunk in body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|error| described(&error))?;
            }
        }
        OutgoingBody::finish(outgoing_body, None).map_err(|error| described(&error))?;
        let pending =
            outgoing_handler::handle(outgoing, None).map_err(|error| described(&error))?;
        pending.subscribe().block();
        let response = pending
            .get()
            .ok_or_else(|| HttpError::new("no response"))?
            .map_err(|()| HttpError::new("the response was taken already"))?
            .map_err(|error| described(&error))?;
        let status = response.status();
        let incoming = response.consume().map_err(|()| refused("response body"))?;
        let mut body = Vec::new();
        {
            let stream = incoming.stream().map_err(|()| refused("response body"))?;
            loop {
                match stream.blocking_read(READ_CHUNK) {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(error) => return Err(described(&error)),
                }
            }
        }
        Ok(HttpResponse { status, body })
    }
}
