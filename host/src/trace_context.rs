//! W3C trace context (`traceparent`, `tracestate`) in and out: a request that arrives with
//! one continues its caller's trace, and what wasmhook sends on (webhooks, guests'
//! `wasi:http` requests) carries the current span's.
//!
//! Both go through OpenTelemetry's global propagator, which stays a no-op unless traces are
//! exported (`cli/telemetry.rs` sets the W3C one then): without an exporter there is no
//! trace to continue, and nothing is added to outgoing requests.

use opentelemetry_http::{HeaderExtractor, HeaderInjector};

/// The target of the spans that exist for traces (request, event, hook run and its parts,
/// outbound request). The log's filter leaves them out (`wasmhook::trace=off`), so that a
/// log line carries only its request id, and without a trace exporter no layer wants them
/// and they cost nothing.
pub const TRACE: &str = "wasmhook::trace";
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` a child of the trace the request's headers carry, if they carry one.
pub fn continue_from(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // A context without a remote span leaves the span a root.
    let _ = span.set_parent(parent);
}

/// Adds the current span's trace context to an outgoing request's headers.
pub fn inject(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}
