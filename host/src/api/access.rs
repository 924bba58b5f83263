//! One access log line per request, and the request's id.
//!
//! Every request gets an id: the client's `X-Request-Id` when it sends a sane one (up to 128
//! letters, digits, `-`, `_`, `.`), else a new UUID. It is returned in the answer's
//! `X-Request-Id`, and every log line written while the request is handled carries it (the
//! handler runs inside a span holding it), so an operator can follow one request through
//! the access line and the lines about its runs.
//!
//! The access line has the method, the path (never the query, which may carry a token or
//! search text), the status, the latency, the caller's organization when it authenticated,
//! and the request id: never a header, a body or a token.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

use crate::metrics::{metrics, HttpLabels, RouteLabels};
use crate::trace_context::TRACE;

/// Where a client may send its own request id, and where every answer carries the id back:
/// the same id is in the request's log lines and in the run logs of the runs it started.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest client-sent request id kept; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// The id of the request being handled, for whoever needs it (a request extension).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Where the caller's organization is noted once it is known (a request extension the
/// authentication fills), for the access line.
#[derive(Debug, Clone, Default)]
pub struct OrganizationSlot(pub Arc<OnceLock<u64>>);

/// Where the route that matched is noted (by [`note_route`], which runs after routing),
/// for the request metrics: the route as declared, so that ids in paths do not become
/// series.
#[derive(Debug, Clone, Default)]
pub(super) struct RouteSlot(Arc<OnceLock<String>>);

/// Notes the matched route in the request's [`RouteSlot`], and runs the handler in the
/// request's trace span, named after the route (`POST /api/v1/hooks/{id}/invoke`) and
/// continuing the caller's trace when it sent a `traceparent`. A route layer: it runs only
/// for a request that matched, so paths nobody serves make no traces.
pub(super) async fn note_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    if let Some(slot) = request.extensions().get::<RouteSlot>() {
        let _ = slot.0.set(route.clone());
    }
    // Probes and scrapes, every few seconds from machines, would drown the traces of calls.
    if UNTRACED_ROUTES.contains(&route.as_str()) {
        return next.run(request).await;
    }
    let span = tracing::info_span!(
        target: TRACE,
        "http request",
        otel.name = %format_args!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    crate::trace_context::continue_from(&span, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// Routes that make no trace.
const UNTRACED_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// A method as a metric label: the standard ones, else `other`.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The client's request id when it is one we can log and echo as is.
fn sane(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= MAX_REQUEST_ID
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    ok.then(|| text.to_owned())
}

/// The status logged and counted for a request whose client went away before its answer
/// (nginx's code for it): the handler was dropped, but the request still happened.
const CLIENT_CLOSED: u16 = 499;

/// The most bytes of a request's path its access line keeps: a path is the client's to
/// choose, up to hyper's header limit (hundreds of KiB), and every line is written twice
/// over (field and message) to a log every organization's lines share. No path the API
/// serves comes near it.
const MAX_LOGGED_PATH: usize = 4096;

/// `path` as its access line shows it: cut at [`MAX_LOGGED_PATH`] bytes (on a character's
/// boundary), the cut said by a trailing `...`.
fn logged_path(path: &str) -> String {
    if path.len() <= MAX_LOGGED_PATH {
        return path.to_owned();
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end])
}

/// The middleware: names the request, runs it inside a span with its id, logs its line.
pub(super) async fn access_log(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(sane)
        // Version 7 (time first): a run log's `request_id` is indexed, and ids that grow
        // with time are appended to that index rather than scattered over it.
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let line = AccessLine {
        started: Instant::now(),
        method: request.method().clone(),
        path: logged_path(request.uri().path()),
        id: id.clone(),
        organization: OrganizationSlot::default(),
        route: RouteSlot::default(),
        written: false,
    };
    request.extensions_mut().insert(RequestId(id.clone()));
    request.extensions_mut().insert(line.organization.clone());
    request.extensions_mut().insert(line.route.clone());
    // For the log lines only: traces get the route's span (`note_route`), which is named
    // once the route is known.
    let span = tracing::info_span!(target: "wasmhook::access", "request", request_id = %id);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    line.write(response.status().as_u16());
    response
}

/// A request's access line and metrics, written once: with the answer's status, or with
/// [`CLIENT_CLOSED`] when the request is dropped unanswered.
struct AccessLine {
    started: Instant,
    method: http::Method,
    path: String,
    id: String,
    organization: OrganizationSlot,
    route: RouteSlot,
    written: bool,
}

impl AccessLine {
    fn write(mut self, status: u16) {
        self.record(status);
        self.written = true;
    }

    fn record(&self, status: u16) {
        let latency = self.started.elapsed();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let route = self.route.0.get().map_or("unmatched", String::as_str);
        let organization = self.organization.0.get().copied();
        if let Some(metrics) = metrics() {
            metrics
                .http_requests
                .get_or_create(&HttpLabels {
                    method: method_label(&self.method),
                    route: route.to_owned(),
                    status,
                })
                .inc();
            metrics
                .http_request_seconds
                .get_or_create(&RouteLabels {
                    route: route.to_owned(),
                })
                .observe(latency.as_secs_f64());
            if status == 429 {
                metrics.throttled(organization);
            }
        }
        let (method, path, id) = (&self.method, &self.path, &self.id);
        match organization {
            Some(organization) => tracing::info!(
                target: "wasmhook::access",
                %method, %path, status, latency_ms, organization, request_id = %id,
                "{method} {path} {status}"
            ),
            None => tracing::info!(
                target: "wasmhook::access",
                %method, %path, status, latency_ms, request_id = %id,
                "{method} {path} {status}"
            ),
        }
    }
}

impl Drop for AccessLine {
    fn drop(&mut self) {
        if !self.written {
            self.record(CLIENT_CLOSED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_path_is_cut_in_its_line_and_a_short_one_kept_whole() {
        assert_eq!(logged_path("/api/v1/hooks/7"), "/api/v1/hooks/7");
        let long = format!("/{}", "a".repeat(64 * 1024));
        let logged = logged_path(&long);
        assert_eq!(logged.len(), MAX_LOGGED_PATH + 3);
        assert!(logged.ends_with("..."), "{logged}");
        // A cut never splits a character: `é` is two bytes, the 256th byte mid-character.
        let accented = format!("/{}", "é".repeat(2100));
        let logged = logged_path(&accented);
        assert!(logged.len() <= MAX_LOGGED_PATH + 3, "{}", logged.len());
        assert!(logged
            .trim_end_matches("...")
            .chars()
            .all(|c| c == '/' || c == 'é'));
    }

    #[test]
    fn only_a_sane_request_id_is_kept() {
        let sane_text = |text: &str| sane(&HeaderValue::from_str(text).expect("a header value"));
        assert_eq!(sane_text("abc-123_x.y"), Some("abc-123_x.y".into()));
        assert_eq!(sane_text("has space"), None);
        assert_eq!(sane(&HeaderValue::from_static("semi;colon")), None);
        assert_eq!(sane_text(""), None);
        assert_eq!(sane_text(&"a".repeat(129)), None);
        assert_eq!(sane_text(&"a".repeat(128)).map(|id| id.len()), Some(128));
    }
}
