//! Running hooks: one hook for a test or an invocation, or every matching hook of an
//! event in run_after order. Each run opens the hook's secrets, mints its owner's token,
//! takes a slot, calls the runtime with the hook's limits, and writes its run log before
//! returning.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tracing::Instrument;

use super::limits::RunLimits;
use super::webhook::{self, Polling};
use super::writer::{RunLogWriter, WriteError};
use super::{HookCall, PreparedCall};
use crate::metrics::{
    metrics, organization, phase, Held, Metrics, OrganizationLabels, Phase, RunKindLabels,
    RunLabels,
};
use crate::model::content::apply_operations;
use crate::model::hook::{FunctionConfig, Hook, HookKind, WebhookConfig};
use crate::model::{EventAction, PayloadError, RunLog, RunStatus};
use crate::modules::{ModuleError, ModuleLibrary};
use crate::outbound::Outbound;
use crate::runtime::{CallLimits, LoadedModule, NetworkGrant};
use crate::sealing::{Sealer, SealingError};
use crate::store::{tokens, Store, StoreError};
use crate::trace_context::TRACE;

const MIB: u64 = 1024 * 1024;

/// Why a hook could not be run (a run that fails is not an error: it has a run log).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The module is not ready, or failed, or is gone.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The hook has no module.
    #[error("the hook has no module")]
    NoModule,
    /// The secrets do not open.
    #[error(transparent)]
    Secrets(#[from] SealingError),
    /// The event's keys are not a valid payload.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run log could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A hook's write-only values, opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HookSecrets {
    /// `secrets`, in the order written.
    pub secrets: Vec<(String, String)>,
    /// `config.secret` (signed invocations are checked with it).
    pub config_secret: Option<String>,
}

/// What one run produced; its run log is committed.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// How it ended.
    pub status: RunStatus,
    /// Its run log's message.
    pub message: String,
    /// Its request id, as in its run log.
    pub request_id: String,
    /// The hook's response, when it completed.
    pub response: Option<Map<String, Value>>,
    /// Captured output, redacted.
    pub output: String,
}

/// How retries wait and webhooks poll.
#[derive(Debug, Clone, Copy)]
pub struct DispatchSettings {
    /// The wait before the first retry; each next one waits twice as long, up to the cap.
    pub retry_delay: Duration,
    /// The longest wait between two attempts (Rossum retries "within 30 s").
    pub retry_delay_cap: Duration,
    /// How the async webhook protocol polls.
    pub polling: Polling,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            retry_delay: Duration::from_secs(1),
            retry_delay_cap: Duration::from_secs(30),
            polling: Polling {
                interval: Duration::from_secs(30),
            },
        }
    }
}

impl DispatchSettings {
    /// The wait after failed attempt number `attempt` (from 1).
    pub fn retry_delay(&self, attempt: u64) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.retry_delay
            .saturating_mul(factor)
            .min(self.retry_delay_cap)
    }
}

/// The parts a dispatcher runs hooks with.
#[derive(Debug)]
pub struct DispatcherParts {
    /// The database.
    pub store: Store,
    /// Modules, loaded.
    pub library: Arc<ModuleLibrary>,
    /// Opens secrets.
    pub sealer: Sealer,
    /// Makes run logs durable.
    pub writer: RunLogWriter,
    /// Concurrent runs.
    pub limits: RunLimits,
    /// The installation's base URL.
    pub base_url: String,
    /// Outgoing HTTP: webhooks and guests' requests.
    pub outbound: Arc<Outbound>,
    /// Retries and polling.
    pub settings: DispatchSettings,
}

impl RunResult {
    /// The result of a run whose log is `log`. Its response is the log's: redacted of the
    /// hook's secret values and minted token, so that a guest that echoes its payload (by
    /// design or by a bug) hands neither to whoever called it.
    fn of(log: RunLog, output: String) -> Self {
        let response = match log.response {
            Some(Value::Object(response)) => Some(response),
            _ => None,
        };
        RunResult {
            status: log.status,
            message: log.message,
            request_id: log.request_id,
            response,
            output,
        }
    }
}

/// Runs hooks.
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    library: Arc<ModuleLibrary>,
    sealer: Sealer,
    writer: RunLogWriter,
    limits: RunLimits,
    base_url: String,
    outbound: Arc<Outbound>,
    settings: DispatchSettings,
}

impl Dispatcher {
    /// A dispatcher over these parts.
    pub fn new(parts: DispatcherParts) -> Self {
        Dispatcher {
            store: parts.store,
            library: parts.library,
            sealer: parts.sealer,
            writer: parts.writer,
            limits: parts.limits,
            base_url: parts.base_url,
            outbound: parts.outbound,
            settings: parts.settings,
        }
    }

    /// The database (the scheduler reads hooks and claims ticks through it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The run limits (the API takes an organization's slots before running).
    pub fn limits(&self) -> &RunLimits {
        &self.limits
    }

    /// Opens a hook's sealed secrets.
    pub fn open_secrets(&self, hook: &Hook) -> Result<HookSecrets, SealingError> {
        match &hook.sealed_secrets {
            None => Ok(HookSecrets::default()),
            Some(sealed) => {
                let plain = self.sealer.open(hook.organization_id, sealed)?;
                serde_json::from_slice(&plain).map_err(|_| SealingError::Open)
            }
        }
    }

    /// Seals a hook's secrets for storage; none when there are none.
    pub fn seal_secrets(
        &self,
        organization_id: u64,
        secrets: &HookSecrets,
    ) -> Result<Option<Vec<u8>>, SealingError> {
        if secrets.secrets.is_empty() && secrets.config_secret.is_none() {
            return Ok(None);
        }
        let plain = serde_json::to_vec(secrets).map_err(|_| SealingError::Open)?;
        self.sealer.seal(organization_id, &plain).map(Some)
    }

    /// Runs one hook once for `event` with the event's own keys, and records it: a test or
    /// an invocation, where someone waits for this one answer.
    pub async fn run(
        &self,
        hook: &Hook,
        event: &EventAction,
        body: &Map<String, Value>,
        queue_id: Option<u64>,
        request_id: &str,
    ) -> Result<RunResult, DispatchError> {
        self.attempt_runs(hook, event, body, queue_id, request_id, 1)
            .await
    }

    /// Runs one hook for an event, retrying a failed or timed-out run of a non-interactive
    /// event up to the hook's `retry_count` times, as Rossum does. Each attempt has its own
    /// run log, all with the same request id; the last attempt's result is returned.
    pub async fn run_retrying(
        &self,
        hook: &Hook,
        event: &EventAction,
        body: &Map<String, Value>,
        queue_id: Option<u64>,
        request_id: &str,
    ) -> Result<RunResult, DispatchError> {
        let attempts = if event.is_interactive() {
            1
        } else {
            1 + hook.spec.kind.retry_policy().retry_count
        };
        self.attempt_runs(hook, event, body, queue_id, request_id, attempts)
            .await
    }

    // One span for the hook's run, its attempts inside: the module is loaded once for all
    // of them.
    #[tracing::instrument(
        target = TRACE,
        name = "hook run",
        skip_all,
        fields(hook = hook.id, organization = hook.organization_id, kind = %hook.spec.kind.hook_type()),
    )]
    async fn attempt_runs(
        &self,
        hook: &Hook,
        event: &EventAction,
        body: &Map<String, Value>,
        queue_id: Option<u64>,
        request_id: &str,
        attempts: u64,
    ) -> Result<RunResult, DispatchError> {
        let target = match &hook.spec.kind {
            HookKind::Function(function) | HookKind::Job(function) => {
                let module = self
                    .store
                    .module(function.module_id)
                    .await?
                    .ok_or(DispatchError::NoModule)?;
                let started = Instant::now();
                let loaded =
                    tracing::info_span!(target: TRACE, "load", module = function.module_id)
                        .in_scope(|| self.library.loaded(&module))?;
                phase(Phase::load, started.elapsed());
                Target::Module(loaded, function)
            }
            HookKind::Webhook(webhook) => Target::Webhook(webhook),
        };
        let secrets = self.open_secrets(hook)?;
        // One token for every attempt, valid until the last could end; cut to the hook's
        // lifetime once it has.
        let per_attempt = match &target {
            Target::Module(_, function) => Duration::from_secs(function.limits().timeout_s),
            Target::Webhook(webhook) => {
                let options = webhook.options();
                Duration::from_secs(options.timeout_s.max(webhook::INTERACTIVE_TIMEOUT_S))
                    + Duration::from_secs(options.max_polling_time_s)
            }
        };
        let worst_case = (per_attempt + self.settings.retry_delay_cap)
            .saturating_mul(u32::try_from(attempts).unwrap_or(u32::MAX));
        let token = match hook.spec.token_owner {
            Some(owner) => Some(
                self.mint_token(owner, hook.id, worst_case, hook.spec.token_lifetime_s())
                    .await?,
            ),
            None => None,
        };
        let body = self.with_sideloads(hook, body, queue_id).await?;
        let prepared = PreparedCall::new(&HookCall {
            event,
            hook_id: hook.id,
            hook_type: hook.spec.kind.hook_type(),
            organization_id: hook.organization_id,
            base_url: &self.base_url,
            settings: &hook.spec.document.settings,
            secrets: &secrets.secrets,
            token: token.as_deref(),
            body: &body,
            queue_id,
            request_id,
        })?;
        let in_flight = |metrics: &Metrics| {
            metrics
                .runs_in_flight
                .get_or_create(&OrganizationLabels {
                    organization: organization(hook.organization_id),
                })
                .clone()
        };
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let running = Held::on(in_flight);
            let (result, retryable) = match &target {
                Target::Module(loaded, function) => {
                    self.call_module(hook, function, loaded, &prepared).await?
                }
                Target::Webhook(config) => {
                    let secret = secrets.config_secret.as_deref();
                    self.call_webhook(hook, config, event, &prepared, secret)
                        .await?
                }
            };
            drop(running);
            if !retryable || attempt >= attempts {
                break result;
            }
            if let Some(metrics) = metrics() {
                metrics.run_retries.inc();
            }
            let _pending = Held::on(|metrics| metrics.deliveries_pending.clone());
            tokio::time::sleep(self.settings.retry_delay(attempt)).await;
        };
        if let Some(token) = &token {
            self.expire_token(token, hook.spec.token_lifetime_s())
                .await?;
        }
        Ok(result)
    }

    /// One run of a hook's module, recorded; whether it is worth another attempt.
    async fn call_module(
        &self,
        hook: &Hook,
        function: &FunctionConfig,
        loaded: &LoadedModule,
        prepared: &PreparedCall,
    ) -> Result<(RunResult, bool), DispatchError> {
        let limits = function.limits();
        let call_limits = CallLimits {
            timeout: Duration::from_secs(limits.timeout_s),
            memory_bytes: limits.memory_size_mb.saturating_mul(MIB),
            fairness_group: hook.organization_id,
            network: Some(NetworkGrant {
                outbound: Arc::clone(&self.outbound),
                allowed: function.allowed_hosts.allow_list().clone(),
                organization: hook.organization_id,
            }),
            ..CallLimits::default()
        };
        let report = {
            let _instance = self.limits.instance(limits.memory_size_mb).await;
            self.library
                .runtime()
                .call(loaded, &prepared.invocation, &call_limits)
                .await
        };
        let log = prepared.clone().run_log(&report);
        self.record(&log).await?;
        let retryable = log.status != RunStatus::Completed;
        Ok((RunResult::of(log, report.output), retryable))
    }

    /// One call of a webhook, recorded; whether it is worth another attempt.
    async fn call_webhook(
        &self,
        hook: &Hook,
        config: &WebhookConfig,
        event: &EventAction,
        prepared: &PreparedCall,
        secret: Option<&str>,
    ) -> Result<(RunResult, bool), DispatchError> {
        let delivery = webhook::deliver(
            &self.outbound,
            hook,
            config,
            secret,
            event,
            &prepared.payload,
            self.settings.polling,
        )
        .await;
        phase(Phase::webhook, delivery.duration);
        let log = prepared.clone().webhook_log(&delivery);
        self.record(&log).await?;
        Ok((RunResult::of(log, String::new()), delivery.retryable))
    }

    /// Writes a run's log and returns once it is committed; then logs its line and counts it.
    async fn record(&self, log: &RunLog) -> Result<(), DispatchError> {
        let started = Instant::now();
        self.writer
            .write(log)
            .instrument(tracing::info_span!(target: TRACE, "log write"))
            .await?;
        phase(Phase::log_write, started.elapsed());
        log_run(log);
        Ok(())
    }

    /// The event's keys followed by the sideloads the hook asks for that this installation
    /// holds: `queues` (the event's queue, or the hook's queues when the call names none).
    /// A key the event already carries is left as sent.
    async fn with_sideloads(
        &self,
        hook: &Hook,
        body: &Map<String, Value>,
        queue_id: Option<u64>,
    ) -> Result<Map<String, Value>, StoreError> {
        let mut body = body.clone();
        if !hook
            .spec
            .document
            .sideload
            .iter()
            .any(|name| name == "queues")
            || body.contains_key("queues")
        {
            return Ok(body);
        }
        let wanted: Vec<u64> = match queue_id {
            Some(queue) => vec![queue],
            None => hook.spec.queues.clone(),
        };
        let found = self.store.queues().by_ids(&wanted).await?;
        let url = |collection: &str, id: u64| format!("{}/api/v1/{collection}/{id}", self.base_url);
        let rendered: Vec<Value> = found
            .iter()
            .map(|queue| {
                serde_json::json!({
                    "id": queue.id,
                    "url": url("queues", queue.id),
                    "name": queue.name,
                    "organization": url("organizations", queue.organization_id),
                    "hooks": queue.hooks.iter().map(|id| url("hooks", *id)).collect::<Vec<_>>(),
                    "metadata": queue.metadata,
                })
            })
            .collect();
        body.insert("queues".into(), Value::Array(rendered));
        Ok(body)
    }

    /// A token for `owner`, scoped to what hook `hook_id`'s extension may do, valid during
    /// the run and its lifetime after (extended or cut when the run ends).
    async fn mint_token(
        &self,
        owner: u64,
        hook_id: u64,
        timeout: Duration,
        lifetime_s: u64,
    ) -> Result<String, StoreError> {
        let token = tokens::generate()?;
        let expires_at = crate::model::unix_now()
            .saturating_add(i64::try_from(timeout.as_secs() + lifetime_s + 1).unwrap_or(i64::MAX));
        let created_at = crate::model::now_rfc3339();
        self.store
            .tokens()
            .insert_for_hook(&token, owner, hook_id, expires_at, &created_at)
            .await?;
        Ok(token)
    }

    async fn expire_token(&self, token: &str, lifetime_s: u64) -> Result<(), StoreError> {
        let expires_at =
            crate::model::unix_now().saturating_add(i64::try_from(lifetime_s).unwrap_or(i64::MAX));
        self.store.tokens().set_expiry(token, expires_at).await
    }

    /// Runs every hook of `hooks` (an organization's) that subscribes to the event (and the
    /// queue, when given), in run_after order, and records each.
    #[tracing::instrument(
        target = TRACE,
        name = "event",
        skip_all,
        fields(event = %format_args!("{}.{}", event.event(), event.action())),
    )]
    pub async fn run_event(
        &self,
        hooks: &[Hook],
        event: &EventAction,
        queue_id: Option<u64>,
        body: &Map<String, Value>,
        request_id: &str,
    ) -> Result<Vec<EventRun>, DispatchError> {
        let plan = EventPlan::new(hooks, event, queue_id);
        let mut finished: HashMap<u64, EventRun> = HashMap::new();
        let mut order = Vec::new();
        for layer in &plan.layers {
            let runs = layer.iter().map(|&id| {
                let hook = plan.hook(id);
                let ancestors = plan.ancestors(id);
                let failed = ancestors
                    .iter()
                    .find(|ancestor| {
                        finished
                            .get(ancestor)
                            .is_some_and(|run| run.status != RunStatus::Completed)
                    })
                    .copied();
                let body = match failed {
                    Some(_) => body.clone(),
                    None => body_after(body, &ancestors, &finished),
                };
                async move {
                    match failed {
                        Some(predecessor) => {
                            let reason = format!(
                                "not run: hook {predecessor}, which this hook runs after, did not complete"
                            );
                            self.cancel(hook, event, &body, queue_id, request_id, &reason)
                                .await
                        }
                        None => match self.run_retrying(hook, event, &body, queue_id, request_id).await {
                            Ok(result) => Ok(EventRun::from_result(hook, result)),
                            Err(DispatchError::Module(error)) => {
                                let reason = format!("not run: {error}");
                                self.cancel(hook, event, &body, queue_id, request_id, &reason)
                                .await
                            }
                            Err(other) => Err(other),
                        },
                    }
                }
            });
            for run in futures::future::join_all(runs).await {
                let run = run?;
                order.push(run.hook_id);
                finished.insert(run.hook_id, run);
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|id| finished.remove(&id))
            .collect())
    }

    /// Records that `hook` was not run for `event`, and why (a `cancelled` run log).
    pub(crate) async fn cancel(
        &self,
        hook: &Hook,
        event: &EventAction,
        body: &Map<String, Value>,
        queue_id: Option<u64>,
        request_id: &str,
        reason: &str,
    ) -> Result<EventRun, DispatchError> {
        let prepared = PreparedCall::new(&HookCall {
            event,
            hook_id: hook.id,
            hook_type: hook.spec.kind.hook_type(),
            organization_id: hook.organization_id,
            base_url: &self.base_url,
            settings: &hook.spec.document.settings,
            secrets: &[],
            token: None,
            body,
            queue_id,
            request_id,
        })?;
        let log = prepared.cancelled_log(reason);
        self.record(&log).await?;
        Ok(EventRun {
            hook_id: hook.id,
            status: RunStatus::Cancelled,
            message: log.message,
            response: None,
            request_id: log.request_id,
        })
    }
}

/// What one hook's attempts call: its module, loaded once for all of them, or its URL.
enum Target<'a> {
    Module(Arc<LoadedModule>, &'a FunctionConfig),
    Webhook(&'a WebhookConfig),
}

/// One line per run, once its run log is written: which hook, how it ended, how long it
/// took. Never its payload, response or output (they hold the tenant's data).
fn log_run(log: &RunLog) {
    if let Some(metrics) = metrics() {
        let kind = match log.hook_type.as_str() {
            "webhook" => "webhook",
            _ => "function",
        };
        metrics
            .runs
            .get_or_create(&RunLabels {
                organization: organization(log.organization_id),
                kind,
                status: log.status.as_str(),
            })
            .inc();
        metrics
            .run_seconds
            .get_or_create(&RunKindLabels { kind })
            .observe(log.duration_ms / 1000.0);
    }
    tracing::info!(
        target: "wasmhook::run",
        hook = log.hook_id,
        organization = log.organization_id,
        kind = %log.hook_type,
        event = %format_args!("{}.{}", log.event, log.action),
        status = log.status.as_str(),
        duration_ms = log.duration_ms,
        run_request_id = %log.request_id,
        "hook {} {}",
        log.hook_id,
        log.status.as_str()
    );
}

/// One hook's part in an event.
#[derive(Debug, Clone)]
pub struct EventRun {
    /// The hook.
    pub hook_id: u64,
    /// How its run ended.
    pub status: RunStatus,
    /// Its run log's message.
    pub message: String,
    /// Its response, when it completed.
    pub response: Option<Map<String, Value>>,
    /// Its run's request id.
    pub request_id: String,
}

impl EventRun {
    fn from_result(hook: &Hook, result: RunResult) -> Self {
        EventRun {
            hook_id: hook.id,
            status: result.status,
            message: result.message,
            response: result.response,
            request_id: result.request_id,
        }
    }
}

/// The payload keys of a hook whose predecessors have run: `annotation.content` with their
/// operations applied, `updated_datapoints` with what they changed.
fn body_after(
    body: &Map<String, Value>,
    ancestors: &[u64],
    finished: &HashMap<u64, EventRun>,
) -> Map<String, Value> {
    let mut body = body.clone();
    let operations: Vec<Value> = ancestors
        .iter()
        .filter_map(|id| finished.get(id))
        .filter_map(|run| run.response.as_ref())
        .filter_map(|response| response.get("operations").and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    if operations.is_empty() {
        return body;
    }
    let Some(content) = body
        .get_mut("annotation")
        .and_then(|annotation| annotation.get_mut("content"))
    else {
        return body;
    };
    let changed = apply_operations(content, &operations);
    let updated = body
        .entry("updated_datapoints")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(updated) = updated.as_array_mut() {
        for id in changed {
            if !updated.iter().any(|existing| existing.as_u64() == Some(id)) {
                updated.push(id.into());
            }
        }
    }
    body
}

/// The hooks an event runs, and their order: layers of hooks whose predecessors are all in
/// earlier layers.
struct EventPlan<'a> {
    hooks: HashMap<u64, &'a Hook>,
    /// Each matching hook's matching predecessors, through non-matching hooks too.
    predecessors: HashMap<u64, Vec<u64>>,
    layers: Vec<Vec<u64>>,
}

impl<'a> EventPlan<'a> {
    fn new(all: &'a [Hook], event: &EventAction, queue_id: Option<u64>) -> Self {
        let by_id: HashMap<u64, &Hook> = all.iter().map(|hook| (hook.id, hook)).collect();
        let hooks: HashMap<u64, &Hook> = all
            .iter()
            .filter(|hook| hook.spec.runs_for(event, queue_id))
            .map(|hook| (hook.id, hook))
            .collect();
        let predecessors: HashMap<u64, Vec<u64>> = hooks
            .keys()
            .map(|&id| {
                let mut found = Vec::new();
                let mut seen = HashSet::new();
                let mut stack: Vec<u64> = by_id
                    .get(&id)
                    .map(|hook| hook.spec.run_after.clone())
                    .unwrap_or_default();
                while let Some(next) = stack.pop() {
                    if !seen.insert(next) {
                        continue;
                    }
                    if hooks.contains_key(&next) {
                        found.push(next);
                    } else if let Some(hook) = by_id.get(&next) {
                        stack.extend(hook.spec.run_after.iter().copied());
                    }
                }
                (id, found)
            })
            .collect();
        let mut layers = Vec::new();
        let mut placed: HashSet<u64> = HashSet::new();
        let mut ids: Vec<u64> = hooks.keys().copied().collect();
        ids.sort_unstable();
        while placed.len() < ids.len() {
            let layer: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| !placed.contains(id))
                .filter(|id| {
                    predecessors
                        .get(id)
                        .is_none_or(|preds| preds.iter().all(|p| placed.contains(p)))
                })
                .collect();
            if layer.is_empty() {
                // A cycle slipped past validation: run the rest one by one rather than never.
                layers.extend(
                    ids.iter()
                        .filter(|id| !placed.contains(id))
                        .map(|id| vec![*id]),
                );
                break;
            }
            placed.extend(layer.iter().copied());
            layers.push(layer);
        }
        EventPlan {
            hooks,
            predecessors,
            layers,
        }
    }

    fn hook(&self, id: u64) -> &'a Hook {
        self.hooks[&id]
    }

    /// Every matching hook this one runs after, directly or not, in layer order.
    fn ancestors(&self, id: u64) -> Vec<u64> {
        let mut seen = HashSet::new();
        let mut stack = self.predecessors.get(&id).cloned().unwrap_or_default();
        while let Some(next) = stack.pop() {
            if seen.insert(next) {
                stack.extend(self.predecessors.get(&next).into_iter().flatten().copied());
            }
        }
        self.layers
            .iter()
            .flatten()
            .copied()
            .filter(|id| seen.contains(id))
            .collect()
    }
}
