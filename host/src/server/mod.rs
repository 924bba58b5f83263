//! `wasmhook serve`: opens the data directory, makes sure the operator can log in, and
//! serves the API until told to stop, finishing in-flight requests (and writing their run
//! logs) first.

pub mod config;
mod demo;
mod listener;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use std::path::Path;

use tokio::net::TcpListener;

use crate::api::{self, App, AppState, Quotas};
use crate::dispatch::limits::RunLimits;
use crate::dispatch::scheduler::{run_schedules, Clock};
use crate::dispatch::webhook::Polling;
use crate::dispatch::writer::RunLogWriter;
use crate::dispatch::{DispatchSettings, Dispatcher, DispatcherParts};
use crate::model::hook::HookBounds;
use crate::model::now_rfc3339;
use crate::modules::ModuleLibrary;
use crate::outbound::Outbound;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::sealing::Sealer;
use crate::store::usage::Stored;
use crate::store::{Expired, Store};
pub use config::ServerConfig;
use config::{DatabaseChoice, StoredQuota};

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "wasmhook.db";
/// Uploaded modules, one file per sha256.
pub const MODULES_DIR: &str = "modules";
/// Compiled code, one file per module digest and engine fingerprint, mapped at load so that
/// a restart compiles nothing; a missing or corrupt file is compiled again.
pub const ARTIFACTS_DIR: &str = "artifacts";
/// Held locked by a serving process, so that a second server, or `wasmhook operator
/// rotate-token`, cannot work on the same data directory behind its back.
pub const LOCK_FILE: &str = "server.lock";
/// How often expired run logs and tokens are deleted.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);
/// How often the organizations whose run logs or events are over their quota are
/// trimmed: the most an organization can write past its quota is what its calls store in
/// this time.
const STORED_TRIM_EVERY: Duration = Duration::from_secs(1);
/// How often idle warm instances past their `idle_s` are discarded: a second of the
/// shortest idle time a hook may ask.
const WARM_SWEEP_EVERY: Duration = Duration::from_secs(1);

const MIB: u64 = 1024 * 1024;

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let data_dir = &config.data_dir;
    start_metrics(&config.metrics);
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    // Held until the process ends (the kernel releases it even at a kill -9).
    let _lock = lock_data_dir(data_dir)?;
    let store = open_store(&config.database, data_dir).await?;
    let sealer = Sealer::open_or_create(data_dir, config.secrets_key.as_deref())
        .context("cannot set up the secrets key")?;
    let limits = &config.limits;
    let runtime_config = RuntimeConfig {
        cache_dir: Some(data_dir.join(ARTIFACTS_DIR)),
        max_memory_bytes: limits.max_memory_mb.saturating_mul(MIB),
        module_cache_capacity: limits.loaded_modules,
        guest_nice: limits.guest_nice(),
        epoch_tick: limits.guest_slice(),
        tiered: limits.tiered_compile,
        function_cache_bytes: limits.compile_cache_bytes(),
        ..RuntimeConfig::default()
    };
    // Idle warm instances hold places of the pool (at most half of it): running calls get
    // the rest, so that an instantiation never finds the pool empty.
    let pool = runtime_config.max_instances as usize;
    let runtime_config = RuntimeConfig {
        warm: limits.warm_bounds(pool / 2),
        ..runtime_config
    };
    let running_instances = pool.saturating_sub(runtime_config.warm.total).max(1);
    let runtime = Arc::new(Runtime::new(runtime_config).context("cannot start the runtime")?);
    let library = ModuleLibrary::open(
        data_dir.join(MODULES_DIR),
        Arc::clone(&runtime),
        store.clone(),
        limits.compile_policy(),
    )
    .context("cannot open the module directory")?;
    library
        .resume()
        .await
        .context("cannot resume pending compiles")?;

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr().context("no local address")?;
    // Bound now, with the API's: a failed bind must fail the start before a token is shown.
    let metrics_listener = match config.metrics.listen {
        Some(metrics_address) if config.metrics.enabled => Some(
            TcpListener::bind(metrics_address)
                .await
                .with_context(|| format!("cannot listen for metrics on {metrics_address}"))?,
        ),
        _ => None,
    };
    let base_url = config
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"))
        .trim_end_matches('/')
        .to_owned();
    let writer = RunLogWriter::new(store.clone());
    // Replicas sharing the database count each other, for their shares of the limits, and
    // lease deliveries under this id.
    let replica = uuid::Uuid::new_v4().to_string();
    if !store.is_shared() {
        // One process: every delivery lease found at start is a dead process's.
        store
            .deliveries()
            .abandon_leases()
            .await
            .context("cannot take over the deliveries of the last run")?;
    }
    let network = &config.network;
    let outbound = Outbound::new(network.outbound(), Some(&base_url))
        .context("cannot set up outgoing HTTP")?;
    let dispatcher = Arc::new(Dispatcher::new(DispatcherParts {
        store: store.clone(),
        library: Arc::clone(&library),
        sealer: sealer.clone(),
        writer: writer.clone(),
        limits: RunLimits::new(
            limits.runs_per_organization,
            running_instances,
            limits.memory_budget(),
        ),
        base_url: base_url.clone(),
        outbound: Arc::new(outbound),
        settings: DispatchSettings {
            retry_delay: Duration::from_millis(network.retry_delay_ms),
            polling: Polling {
                interval: Duration::from_millis(network.webhook_poll_interval_ms),
            },
            lease: Duration::from_millis(network.delivery_lease_ms),
            unfinished_per_organization: limits.unfinished_deliveries_per_organization,
            ..DispatchSettings::default()
        },
        replica: replica.clone(),
    }));
    let clock = match &network.test_clock_file {
        Some(path) => Clock::File(path.clone()),
        None => Clock::System,
    };
    let schedules = tokio::spawn(run_schedules(Arc::clone(&dispatcher), clock));
    let deliveries = tokio::spawn(Arc::clone(&dispatcher).work_deliveries());
    let leases = tokio::spawn(Arc::clone(&dispatcher).keep_leases());
    let (stop_beating, stopping) = tokio::sync::watch::channel(false);
    let heartbeat = store.is_shared().then(|| {
        tokio::spawn(heartbeat(
            store.clone(),
            Arc::clone(&dispatcher),
            replica.clone(),
            stopping,
        ))
    });
    let draining = Arc::new(AtomicBool::new(false));
    let state = AppState(Arc::new(App {
        store: store.clone(),
        base_url,
        dispatcher,
        sealer,
        library,
        bounds: HookBounds {
            min_timeout_s: 1,
            max_timeout_s: limits.max_timeout_s,
            min_memory_mb: 16,
            max_memory_mb: limits.max_memory_mb,
            allow_http_webhooks: network.allow_http_webhooks,
            max_reuse_idle_s: limits.max_reuse_idle_s,
        },
        quotas: Quotas {
            modules: limits.modules_per_organization,
            module_bytes: limits.module_bytes_per_organization,
            hooks: limits.hooks_per_organization,
            queues: limits.queues_per_organization,
        },
        log_query_deadline: Duration::from_millis(limits.log_query_ms),
        draining: Arc::clone(&draining),
        event_answers: Default::default(),
    }));
    let demo = match &config.demo {
        Some(module) => Some(
            demo::create(&state, module)
                .await
                .context("cannot create the demo")?,
        ),
        None => None,
    };
    // Last, once nothing can fail any more: a token shown once must not be shown by a start
    // that then fails, or it is lost with it.
    ensure_operator(&store, config.operator_token.clone()).await?;
    if let Some(demo) = &demo {
        demo.print();
    }
    let metrics_listener = match metrics_listener {
        Some(metrics_listener) => {
            if let Ok(metrics_address) = metrics_listener.local_addr() {
                eprintln!("wasmhook metrics on http://{metrics_address}/metrics");
            }
            let connections = config.connections.clone();
            Some(tokio::spawn(async move {
                listener::serve(
                    metrics_listener,
                    api::metrics_router(),
                    &connections,
                    std::future::pending(),
                )
                .await;
            }))
        }
        None => None,
    };
    let store_for_leaving = store.clone();
    let quotas = limits.stored_quotas();
    let trimmer = (!quotas.is_empty()).then(|| tokio::spawn(trim_stored(store.clone(), quotas)));
    let housekeeping = tokio::spawn(housekeeping(store, limits.log_retention_days));
    let warm_sweeper = tokio::spawn(sweep_warm_instances(Arc::clone(&runtime)));
    // Tests and scripts read this line to find the port when listening on port 0.
    eprintln!("wasmhook listening on http://{address}");
    // Our own accept loop: timeouts, connection caps and a file reserve (listener/).
    listener::serve(
        listener,
        api::router(state),
        &config.connections,
        drain(draining, config.connections.drain_delay_ms),
    )
    .await;
    housekeeping.abort();
    warm_sweeper.abort();
    if let Some(trimmer) = trimmer {
        trimmer.abort();
    }
    if let Some(heartbeat) = heartbeat {
        // Stopped rather than aborted, and awaited: a beat under way finishes first, so
        // that none writes this replica's row again after it has left.
        let _ = stop_beating.send(true);
        let _ = heartbeat.await;
        // The others take this replica's share at their next beat.
        if let Err(error) = store_for_leaving.replicas().leave(&replica).await {
            tracing::warn!("could not say this replica is leaving: {error}");
        }
    }
    if let Some(metrics_listener) = metrics_listener {
        metrics_listener.abort();
    }
    schedules.abort();
    let _ = schedules.await;
    // Turns under way end with the process; their leases run out and another replica (or
    // this one's next start) takes them over, logging an interrupted attempt once.
    deliveries.abort();
    leases.abort();
    let _ = deliveries.await;
    // Every handler has returned, so every run log of an answered call is committed; a
    // round on the blocking pool may still be writing the log of a run whose caller left.
    let _ = tokio::time::timeout(Duration::from_secs(10), writer.idle()).await;
    Ok(())
}

/// How often a replica sharing the database says it is alive, and how long one may stay
/// silent before the others stop counting it: a replica killed without leaving gives its
/// share back within the window.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
const HEARTBEAT_WINDOW_S: i64 = 10;

/// Beats for this replica, and sets its share of the limits from how many are alive, until
/// `stopping` says the replica is leaving.
async fn heartbeat(
    store: Store,
    dispatcher: Arc<Dispatcher>,
    replica: String,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopping.changed() => return,
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            });
        match store
            .replicas()
            .beat(&replica, now, HEARTBEAT_WINDOW_S)
            .await
        {
            Ok(alive) => dispatcher.limits().set_replicas(alive),
            Err(error) => tracing::warn!("the replica heartbeat failed: {error}"),
        }
    }
}

/// Sets up the process's metrics before anything is counted: the organization label as
/// configured, the build, the database's one connection.
fn start_metrics(config: &config::Metrics) {
    crate::metrics::set_enabled(config.enabled);
    crate::metrics::set_organization_labels(config.organization_labels);
    let Some(metrics) = crate::metrics::metrics() else {
        return;
    };
    metrics
        .build_info
        .get_or_create(&crate::metrics::BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            commit: env!("WASMHOOK_GIT_COMMIT"),
            wasmtime: env!("WASMHOOK_WASMTIME_VERSION"),
        })
        .set(1);
    // SQLite: one connection, shared by every caller (`Store`).
    metrics.db_connections.set(1);
}

/// Deletes run logs past their retention and expired tokens, now and then every hour.
async fn housekeeping(store: Store, retention_days: u64) {
    loop {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(Duration::from_secs(retention_days.saturating_mul(86_400)))
            .unwrap_or(std::time::UNIX_EPOCH);
        let cutoff = crate::model::format_rfc3339(cutoff);
        let now = crate::model::unix_now();
        match store.delete_expired(&cutoff, now).await {
            Ok(Expired { run_logs: 0, .. }) => {}
            Ok(Expired { run_logs, .. }) => {
                tracing::info!("deleted {run_logs} run logs past their retention");
            }
            Err(error) => tracing::warn!("housekeeping failed: {error}"),
        }
        tokio::time::sleep(HOUSEKEEPING_EVERY).await;
    }
}

/// Deletes the oldest run logs and finished events of the organizations over their
/// quotas, every [`STORED_TRIM_EVERY`]: one organization's rows cannot fill the disk the
/// others' are on. Each replica does it on PostgreSQL; their deletes take turns (a lock of
/// the database's, `store/usage.rs`).
async fn trim_stored(store: Store, quotas: Vec<(Stored, StoredQuota)>) {
    loop {
        tokio::time::sleep(STORED_TRIM_EVERY).await;
        for &(kind, quota) in &quotas {
            match store
                .usage()
                .trim_over(kind, quota.bytes, quota.trimmed_to)
                .await
            {
                Ok(trimmed) => {
                    for organization in trimmed {
                        let what = match kind {
                            Stored::RunLogs => "run logs",
                            Stored::Events => "finished events",
                        };
                        tracing::info!(
                            organization = organization.organization,
                            "deleted the {} oldest {what} of an organization over its quota \
                             ({} bytes of {})",
                            organization.rows,
                            organization.before,
                            quota.bytes
                        );
                        if let Some(metrics) = crate::metrics::metrics() {
                            let counter = match kind {
                                Stored::RunLogs => &metrics.run_logs_trimmed,
                                Stored::Events => &metrics.events_trimmed,
                            };
                            counter
                                .get_or_create(&crate::metrics::OrganizationLabels {
                                    organization: crate::metrics::organization(
                                        organization.organization,
                                    ),
                                })
                                .inc_by(organization.rows as u64);
                        }
                    }
                }
                Err(error) => tracing::warn!("trimming rows over their quota failed: {error}"),
            }
        }
    }
}

/// Discards warm instances idle past their time, so that an instance nobody calls again
/// gives its memory back within a sweep of its expiry (a call finds none expired anyway).
async fn sweep_warm_instances(runtime: Arc<Runtime>) {
    loop {
        tokio::time::sleep(WARM_SWEEP_EVERY).await;
        runtime.sweep_warm_instances();
    }
}

/// Gives the operator a token: the configured one, or a generated one printed once. Called
/// when the server is about to listen, so that no later failure of the start can lose a
/// token that was shown once; a start that failed earlier wrote no token, and the next
/// start generates and shows one.
async fn ensure_operator(store: &Store, configured: Option<String>) -> anyhow::Result<()> {
    let generated = store
        .tokens()
        .ensure_operator(configured, &now_rfc3339())
        .await?;
    if let Some(token) = generated {
        // Printed once: only its hash is stored.
        eprintln!("operator token (shown once, keep it): {token}");
        eprintln!(
            "  (lost it? `wasmhook operator rotate-token --data-dir DIR` makes a new one, or \
             set WASMHOOK_OPERATOR_TOKEN)"
        );
    }
    Ok(())
}

/// Locks the data directory for this process, or says that another holds it.
fn lock_data_dir(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another wasmhook process is using the data directory {} (stop it first)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Replaces the operator's token in the data directory's database with a new one, and
/// returns it: the way back for an operator who lost a generated token. Refused while a
/// server runs on the directory (it would go on accepting the old token it has cached) and
/// while `WASMHOOK_OPERATOR_TOKEN` is set (the variable replaces the token at every start).
pub fn rotate_operator_token(data_dir: &Path) -> anyhow::Result<String> {
    if std::env::var_os("WASMHOOK_OPERATOR_TOKEN").is_some_and(|token| !token.is_empty()) {
        anyhow::bail!(
            "WASMHOOK_OPERATOR_TOKEN is set, and it becomes the operator's token at every \
             start: change the variable instead"
        );
    }
    let database = data_dir.join(DATABASE_FILE);
    if !database.exists() {
        anyhow::bail!(
            "no database at {}: start the server on this data directory first",
            database.display()
        );
    }
    let _lock = lock_data_dir(data_dir)?;
    let store = Store::open(&database).context("cannot open the database")?;
    let token = store.tokens().rotate_operator_blocking(&now_rfc3339())?;
    Ok(token)
}

/// Replaces the operator's token in the PostgreSQL database at `url` (replicas may be
/// running: their caches hear the old token's deletion); the new token.
pub fn rotate_operator_token_in(url: &str) -> anyhow::Result<String> {
    if std::env::var_os("WASMHOOK_OPERATOR_TOKEN").is_some_and(|token| !token.is_empty()) {
        anyhow::bail!(
            "WASMHOOK_OPERATOR_TOKEN is set, and it becomes the operator's token at every \
             start: change the variable instead"
        );
    }
    let url: crate::store::db::postgres::PostgresUrl = url.parse()?;
    let store = Store::open_postgres_blocking(&url, 1)
        .with_context(|| format!("cannot open the database at {url}"))?;
    Ok(store.tokens().rotate_operator_blocking(&now_rfc3339())?)
}

/// The database the configuration names: SQLite in the data directory, or PostgreSQL
/// (whose URL is logged without its password).
async fn open_store(database: &DatabaseChoice, data_dir: &Path) -> anyhow::Result<Store> {
    match database {
        DatabaseChoice::Sqlite => {
            Store::open(&data_dir.join(DATABASE_FILE)).context("cannot open the database")
        }
        DatabaseChoice::Postgres { url, pool_size } => {
            tracing::info!(database = %url, pool_size, "the rows are in PostgreSQL");
            Store::open_postgres(url, *pool_size)
                .await
                .with_context(|| format!("cannot open the database at {url}"))
        }
    }
}

/// Completes when the listener should close: at SIGINT or SIGTERM, after marking the server
/// as draining (`/readyz` answers 503) and waiting `delay_ms` while still serving.
async fn drain(draining: Arc<AtomicBool>, delay_ms: u64) {
    shutdown_signal().await;
    draining.store(true, Ordering::Relaxed);
    if delay_ms > 0 {
        tracing::info!("draining: /readyz answers 503; closing the listener in {delay_ms} ms");
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
