//! Traces exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: every `tracing` span of wasmhook at info
//! (the HTTP request, the event, each hook run with its compile, instantiate, guest call and
//! log write, each outbound request) becomes an OpenTelemetry span, batched on the SDK's own
//! thread and sent over HTTP, protobuf by default or JSON with
//! `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`. The SDK reads the other `OTEL_*` variables
//! (`OTEL_SERVICE_NAME`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`, ...) itself.

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::{Layer, Registry};

/// The variables that turn tracing on and shape it, for the configuration reference (the
/// SDK reads the other `OTEL_*` variables of the OpenTelemetry specification as well).
pub const VARIABLES: [(&str, &str); 4] = [
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "Export traces to this OTLP/HTTP collector (`http://collector:4318`; `/v1/traces` is \
         appended). Unset: no traces, and no `traceparent` is read or sent.",
    ),
    (
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "The full URL traces are posted to, instead of the one above.",
    ),
    (
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "`http/protobuf` (the default) or `http/json`.",
    ),
    (
        "OTEL_SERVICE_NAME",
        "The traces' `service.name` (default `wasmhook`).",
    ),
];

/// The exporter of a process that exports traces; flushed and stopped when dropped, so the
/// spans of the last requests reach the collector before the process ends.
#[derive(Debug)]
pub struct Exporting(SdkTracerProvider);

impl Drop for Exporting {
    fn drop(&mut self) {
        if let Err(error) = self.0.shutdown() {
            eprintln!("warning: the last traces were not all exported: {error}");
        }
    }
}

/// Whether traces are to be exported.
fn endpoint_set() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|value| !value.is_empty()))
}

/// A layer of the process's one subscriber.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The layer that exports wasmhook's spans, and its exporter; none when no endpoint is set.
pub fn layer() -> anyhow::Result<Option<(BoxedLayer, Exporting)>> {
    if !endpoint_set() {
        return Ok(None);
    }
    let protocol = match std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_default()
        .as_str()
    {
        "" | "http/protobuf" => Protocol::HttpBinary,
        "http/json" => Protocol::HttpJson,
        other => anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL `{other}` is not supported: use http/protobuf or http/json"
        ),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .context("cannot set up the OTLP exporter")?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("wasmhook");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("wasmhook");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // The access span is for log lines; the route's span stands for the request.
        .with_filter(
            Targets::new()
                .with_target("wasmhook", tracing::Level::INFO)
                .with_target(
                    "wasmhook::access",
                    tracing_subscriber::filter::LevelFilter::OFF,
                ),
        )
        .boxed();
    Ok(Some((layer, Exporting(provider))))
}
