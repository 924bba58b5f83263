//! The server's metrics, in Prometheus' exposition format at `GET /metrics`.
//!
//! One registry for the process, reached through [`metrics()`]: the places that count sit in
//! every layer (the runtime's scheduler, outbound requests, the store's connection, the
//! dispatcher, the API), and a handle threaded through each of their constructors would
//! widen every signature for nothing: a process serves one exposition, and the tests read
//! it through the real binary. This module imports nothing of the crate, so every layer
//! may record into it.
//!
//! Built on `prometheus-client` (the Prometheus project's own Rust client) rather than the
//! `metrics` facade: its label sets are typed structs, so a label can only take the values
//! its type allows and cardinality is bounded by the code (hook kinds, statuses, routes as
//! the router declares them, reasons as enums), with no global recorder to install.
//!
//! Bounded labels: no request id, hook id or hook name anywhere. The one label that grows
//! with the installation is `organization`, which `[metrics] organization_labels = false`
//! turns off (it is then empty, which Prometheus treats as absent).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of [`render`]'s text: OpenMetrics, which Prometheus negotiates and
/// parses.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether series are recorded at all.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns recording on or off for the process (from the configuration, at start): off, no
/// layer records anything and `/metrics` answers 404.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether organization ids label the per-organization series.
static ORGANIZATION_LABELS: AtomicBool = AtomicBool::new(true);

/// Turns the `organization` label on or off for the process (from the configuration, at
/// start, before anything is counted).
pub fn set_organization_labels(on: bool) {
    ORGANIZATION_LABELS.store(on, Ordering::Relaxed);
}

/// The `organization` label's value for `id`: none when organization labels are off.
pub fn organization(id: u64) -> Option<u64> {
    ORGANIZATION_LABELS.load(Ordering::Relaxed).then_some(id)
}

mod labels;

pub use labels::{
    BuildLabels, CacheLookup, CacheLookupLabels, Checkpoint, CheckpointLabels, CompileLabels,
    HttpLabels, InstanceKind, InstanceLabels, OrganizationLabels, OutboundLabels, Phase,
    PhaseLabels, ReasonLabels, RouteLabels, RunKindLabels, RunLabels, Stage, StageLabels,
    StatusLabels,
};

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets for latencies from 0.1 ms to about 26 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

/// Buckets for compile times from 10 ms to about 5 min.
fn compile_time() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// Every series the server keeps. Fields are public so each layer records where it knows
/// the value; `docs/operations.md` says what each is for and when to alert.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Runs that ended (one per run log), by organization, hook kind and status.
    pub runs: Family<RunLabels, Counter>,
    /// Run durations, end to end (the run log's duration), by hook kind.
    pub run_seconds: Histograms<RunKindLabels>,
    /// Time in each part of a run ([`Phase`]), to tell a slow guest from a slow load,
    /// instantiation, webhook or log write.
    pub run_phase_seconds: Histograms<PhaseLabels>,
    /// Time in each stage of a call of a module ([`Stage`]): the queue, the hand-over to a
    /// guest thread, CPU slots, the guest, the run log's commit. No organization label.
    pub call_stage_seconds: Histograms<StageLabels>,
    /// Attempts after a failed one (function and webhook retries of non-interactive events).
    pub run_retries: Counter,
    /// Attempts under way now, by organization (a delivery waiting to retry or polling is
    /// in `deliveries_pending` instead).
    pub runs_in_flight: Family<OrganizationLabels, Gauge>,
    /// Answers 429 (too many runs, memory share, compile budget, login throttle), by
    /// organization (empty when the caller had none).
    pub throttled: Family<OrganizationLabels, Counter>,
    /// Time a guest waited for a CPU slot of the fair scheduler.
    pub scheduler_wait_seconds: Histogram,
    /// Run logs the batching writer has committed to the database, one a run.
    pub run_logs_written: Counter,
    /// Run logs deleted before their retention because their organization was over its
    /// quota (`log_mb_per_organization`), by organization.
    pub run_logs_trimmed: Family<OrganizationLabels, Counter>,
    /// Finished events deleted before their retention because their organization was over
    /// its quota (`event_mb_per_organization`), by organization.
    pub events_trimmed: Family<OrganizationLabels, Counter>,
    /// Commit latency of one batch of run logs.
    pub run_log_batch_seconds: Histogram,
    /// Checkpoints of SQLite's write-ahead log, by mode: a restarting one holds up the run
    /// log writer, and every answer waiting on it, for as long as it takes.
    pub sqlite_checkpoint_seconds: Histograms<CheckpointLabels>,
    /// Frames (pages) in SQLite's write-ahead log at its last checkpoint: how much the
    /// writer appends between checkpoints, and whether the log is being started over.
    pub sqlite_log_frames: Gauge,
    /// Compiles under way now, those an upload waits for and those in the background.
    pub modules_compiling: Gauge,
    /// Compile times, by result.
    pub compile_seconds: Histograms<CompileLabels>,
    /// Modules whose optimized code replaced their quick code (tiered compilation).
    pub modules_optimized: Counter,
    /// Outbound requests (guests' `wasi:http` and webhooks), by result.
    pub outbound_requests: Family<OutboundLabels, Counter>,
    /// Outbound requests refused before sending, by reason.
    pub outbound_refusals: Family<ReasonLabels, Counter>,
    /// Webhook deliveries (one per attempt), by how they ended.
    pub webhook_deliveries: Family<StatusLabels, Counter>,
    /// Polls of asynchronous webhooks: one a request to the `Location` that a 202 named.
    pub webhook_polls: Counter,
    /// Deliveries of non-interactive events not yet done, across every replica sharing the
    /// database (waiting, due, retrying, polling, running), as this replica's delivery
    /// worker last counted them.
    pub deliveries_pending: Gauge,
    /// HTTP requests answered, by method, route and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP request latency, by route.
    pub http_request_seconds: Histograms<RouteLabels>,
    /// The database connections (SQLite: one) and those in use.
    pub db_connections: Gauge,
    /// 1 while a query holds the one SQLite connection, 0 between queries.
    pub db_connections_in_use: Gauge,
    /// Time waited for a database connection.
    pub db_wait_seconds: Histogram,
    /// 1, labelled with the build's version.
    pub build_info: Family<BuildLabels, Gauge>,
    /// Instances calls ran on, fresh or reused (`config.reuse_instances`).
    pub instances: Family<InstanceLabels, Counter>,
    /// Warm instances idle now, waiting for their hook's next call.
    pub warm_instances: Gauge,
    /// Lookups of the per-function compile cache, by what they found: its hit rate says
    /// whether the memory it is given pays (it is off unless configured).
    pub compile_cache_lookups: Family<CacheLookupLabels, Counter>,
    /// Log lines dropped because stderr did not take them as fast as they came (the
    /// process holds a bounded amount of them rather than make requests wait).
    pub log_lines_dropped: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("wasmhook"),
            runs: Family::default(),
            run_seconds: Family::new_with_constructor(latency),
            run_phase_seconds: Family::new_with_constructor(latency),
            call_stage_seconds: Family::new_with_constructor(latency),
            run_retries: Counter::default(),
            runs_in_flight: Family::default(),
            throttled: Family::default(),
            scheduler_wait_seconds: latency(),
            run_logs_written: Counter::default(),
            run_logs_trimmed: Family::default(),
            events_trimmed: Family::default(),
            run_log_batch_seconds: latency(),
            sqlite_checkpoint_seconds: Family::new_with_constructor(latency),
            sqlite_log_frames: Gauge::default(),
            modules_compiling: Gauge::default(),
            compile_seconds: Family::new_with_constructor(compile_time),
            modules_optimized: Counter::default(),
            outbound_requests: Family::default(),
            outbound_refusals: Family::default(),
            webhook_deliveries: Family::default(),
            webhook_polls: Counter::default(),
            deliveries_pending: Gauge::default(),
            http_requests: Family::default(),
            http_request_seconds: Family::new_with_constructor(latency),
            db_connections: Gauge::default(),
            db_connections_in_use: Gauge::default(),
            db_wait_seconds: latency(),
            build_info: Family::default(),
            instances: Family::default(),
            warm_instances: Gauge::default(),
            compile_cache_lookups: Family::default(),
            log_lines_dropped: Counter::default(),
        };
        // Series of fixed labels exist at 0 from the start, so that a rate over them is
        // defined before their first event.
        for status in ["completed", "failed", "timeout"] {
            let _ = metrics
                .webhook_deliveries
                .get_or_create(&StatusLabels { status });
        }
        let _ = metrics
            .throttled
            .get_or_create(&OrganizationLabels { organization: None });
        for kind in [InstanceKind::fresh, InstanceKind::reused] {
            let _ = metrics.instances.get_or_create(&InstanceLabels { kind });
        }
        for result in [CacheLookup::hit, CacheLookup::miss] {
            let _ = metrics
                .compile_cache_lookups
                .get_or_create(&CacheLookupLabels { result });
        }
        let registry = &mut metrics.registry;
        registry.register(
            "runs",
            "Runs that ended, one per run log",
            metrics.runs.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "Run durations, end to end",
            metrics.run_seconds.clone(),
        );
        registry.register(
            "run_phase_duration_seconds",
            "Parts of runs: load, instantiate, guest, webhook, log_write",
            metrics.run_phase_seconds.clone(),
        );
        registry.register(
            "call_stage_duration_seconds",
            "Stages of calls of modules: queue, handoff, cpu_slot, instantiate, guest, log_commit, total",
            metrics.call_stage_seconds.clone(),
        );
        registry.register(
            "run_retries",
            "Attempts after a failed one",
            metrics.run_retries.clone(),
        );
        registry.register(
            "runs_in_flight",
            "Runs in flight",
            metrics.runs_in_flight.clone(),
        );
        registry.register(
            "throttled_requests",
            "Requests answered 429",
            metrics.throttled.clone(),
        );
        registry.register(
            "scheduler_wait_seconds",
            "Time a guest waited for a CPU slot of the fair scheduler",
            metrics.scheduler_wait_seconds.clone(),
        );
        registry.register(
            "run_logs_written",
            "Run logs committed",
            metrics.run_logs_written.clone(),
        );
        registry.register(
            "run_logs_trimmed",
            "Run logs deleted before their retention: their organization was over its quota",
            metrics.run_logs_trimmed.clone(),
        );
        registry.register(
            "events_trimmed",
            "Finished events deleted before their retention: their organization was over its quota",
            metrics.events_trimmed.clone(),
        );
        registry.register(
            "run_log_batch_commit_seconds",
            "Commit latency of one batch of run logs",
            metrics.run_log_batch_seconds.clone(),
        );
        registry.register(
            "sqlite_checkpoint_seconds",
            "Checkpoints of SQLite's write-ahead log, by mode",
            metrics.sqlite_checkpoint_seconds.clone(),
        );
        registry.register(
            "sqlite_log_frames",
            "Frames in SQLite's write-ahead log at its last checkpoint",
            metrics.sqlite_log_frames.clone(),
        );
        registry.register(
            "modules_compiling",
            "Modules compiling now",
            metrics.modules_compiling.clone(),
        );
        registry.register(
            "module_compile_seconds",
            "Compile times of uploaded modules",
            metrics.compile_seconds.clone(),
        );
        registry.register(
            "modules_optimized",
            "Modules whose optimized code replaced their quick code (tiered compilation)",
            metrics.modules_optimized.clone(),
        );
        registry.register(
            "outbound_requests",
            "Outbound requests sent, by result",
            metrics.outbound_requests.clone(),
        );
        registry.register(
            "outbound_refusals",
            "Outbound requests refused before sending, by reason",
            metrics.outbound_refusals.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by how they ended",
            metrics.webhook_deliveries.clone(),
        );
        registry.register(
            "webhook_polls",
            "Polls of asynchronous webhooks",
            metrics.webhook_polls.clone(),
        );
        registry.register(
            "deliveries_pending",
            "Deliveries of non-interactive events not yet done, in the whole installation",
            metrics.deliveries_pending.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered",
            metrics.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            metrics.http_request_seconds.clone(),
        );
        registry.register(
            "db_connections",
            "Database connections",
            metrics.db_connections.clone(),
        );
        registry.register(
            "db_connections_in_use",
            "Database connections in use",
            metrics.db_connections_in_use.clone(),
        );
        registry.register(
            "db_wait_seconds",
            "Time waited for a database connection",
            metrics.db_wait_seconds.clone(),
        );
        registry.register(
            "build_info",
            "The running build",
            metrics.build_info.clone(),
        );
        registry.register(
            "instances",
            "Instances calls ran on, fresh or reused",
            metrics.instances.clone(),
        );
        registry.register(
            "warm_instances",
            "Warm instances idle, waiting for their hook's next call",
            metrics.warm_instances.clone(),
        );
        registry.register(
            "compile_cache_lookups",
            "Lookups of the per-function compile cache, hit or miss",
            metrics.compile_cache_lookups.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because stderr did not take them as fast as they came",
            metrics.log_lines_dropped.clone(),
        );
        metrics
    }

    /// Counts an answer 429 for `organization` (none when the caller had none).
    pub fn throttled(&self, organization: Option<u64>) {
        self.throttled
            .get_or_create(&OrganizationLabels {
                organization: organization.and_then(self::organization),
            })
            .inc();
    }

    /// Records how long a phase of a run took.
    pub fn phase(&self, phase: Phase, took: Duration) {
        self.run_phase_seconds
            .get_or_create(&PhaseLabels { phase })
            .observe(took.as_secs_f64());
    }
}

/// Records how long a phase of a run took, when metrics are on.
pub fn phase(phase: Phase, took: Duration) {
    if let Some(metrics) = metrics() {
        metrics.phase(phase, took);
    }
}

/// Records how long a stage of a call took, when metrics are on.
pub fn stage(stage: Stage, took: Duration) {
    if let Some(metrics) = metrics() {
        metrics
            .call_stage_seconds
            .get_or_create(&StageLabels { stage })
            .observe(took.as_secs_f64());
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics, unless they are turned off.
pub fn metrics() -> Option<&'static Metrics> {
    ENABLED.load(Ordering::Relaxed).then(|| &*METRICS)
}

/// Every series in the exposition format.
pub fn render() -> String {
    let mut text = String::new();
    // Writing to a String cannot fail; an encoder error would be a bug of a label's encoding.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &METRICS.registry) {
        tracing::error!("encoding the metrics failed: {error}");
    }
    text
}

/// A gauge held up by one while a value lives: in flight, compiling, pending.
#[derive(Debug)]
pub struct Held(Option<Gauge<i64, AtomicI64>>);

impl Held {
    /// Adds one to the gauge `which` picks until the returned value is dropped (nothing
    /// when metrics are off).
    pub fn on(which: impl FnOnce(&Metrics) -> Gauge<i64, AtomicI64>) -> Self {
        let gauge = metrics().map(which);
        if let Some(gauge) = &gauge {
            gauge.inc();
        }
        Held(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_in_the_exposition_with_its_prefix() {
        let metrics = metrics().expect("on by default");
        metrics
            .runs
            .get_or_create(&RunLabels {
                organization: organization(7),
                kind: "function",
                status: "completed",
            })
            .inc();
        metrics.phase(Phase::guest, Duration::from_millis(3));
        stage(Stage::cpu_slot, Duration::from_millis(1));
        let text = render();
        assert!(
            text.contains(
                "wasmhook_runs_total{organization=\"7\",kind=\"function\",status=\"completed\"}"
            ),
            "{text}"
        );
        assert!(
            text.contains("wasmhook_run_phase_duration_seconds_count{phase=\"guest\"}"),
            "{text}"
        );
        assert!(
            text.contains("wasmhook_call_stage_duration_seconds_count{stage=\"cpu_slot\"}"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
