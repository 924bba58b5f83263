//! Running hooks: one hook for a test or an invocation, or every matching hook of an
//! event in run_after order. Each run opens the hook's secrets, mints its owner's token,
//! takes a slot, calls the runtime with the hook's limits, and writes its run log before
//! returning.
//!
//! What is decided elsewhere, so that this file only runs: which hooks an event runs and in
//! what order ([`super::plan`]), the organization's right to run ([`RunPermit`], which every
//! run takes), secrets' format ([`HookSecrets`]) and tokens' ([`crate::tokens`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::event::EventRun;
use super::limits::{RunLimits, RunPermit};
use super::reuse::reuse_for;
use super::sideloads::with_sideloads;
use super::webhook::{self, Polling};
use super::writer::{RunLogWriter, WriteError};
use super::{HookCall, PreparedCall};
use crate::metrics::{
    metrics, organization, phase, stage, Held, Metrics, OrganizationLabels, Phase, Stage,
};
use crate::model::hook::{FunctionConfig, Hook, HookKind, WebhookConfig};
use crate::model::{EventAction, PayloadError, RunLog, RunStatus};
use crate::modules::{ModuleError, ModuleLibrary};
use crate::outbound::Outbound;
use crate::runtime::{CallLimits, LoadedModule, NetworkGrant};
use crate::sealing::{HookSecrets, Sealer, SealingError};
use crate::store::{Store, StoreError};
use crate::tokens::{self, Grant};
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

/// What one run produced, for whoever waits on it (the API answers a test or an
/// invocation with it); its run log is committed by then.
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

/// How retries wait and webhooks poll: settings rather than constants, so that the
/// server's configuration (and tests) can shorten them.
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

/// The parts a dispatcher runs hooks with, made by the server at start: one named value
/// for [`Dispatcher::new`] rather than eight arguments.
#[derive(Debug)]
pub struct DispatcherParts {
    /// The store: a run reads its module's row and its `queues` sideload there, and mints
    /// and expires its token.
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

/// Runs hooks: the one way a hook is run (tests, invocations, events, schedules), so that
/// every run opens its secrets, mints its token, waits for its instance and records its run
/// log alike.
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
    /// A dispatcher over these parts (one per server).
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

    /// The run limits: every run takes a [`RunPermit`] from them
    /// ([`RunLimits::try_acquire`]) first, which the API answers 429 for and the scheduler
    /// waits for.
    pub fn limits(&self) -> &RunLimits {
        &self.limits
    }

    /// Runs one hook once for `event` with the event's own keys, and records it: a test or
    /// an invocation, where someone waits for this one answer. `permit` (the hook's
    /// organization's) is held until the run is recorded.
    pub async fn run(
        &self,
        permit: RunPermit,
        hook: &Hook,
        event: &EventAction,
        body: &Map<String, Value>,
        queue_id: Option<u64>,
        request_id: &str,
    ) -> Result<RunResult, DispatchError> {
        check_permit(&permit, hook);
        let result = self
            .attempt_runs(hook, event, body, queue_id, request_id, 1)
            .await;
        drop(permit);
        result
    }

    /// Runs one hook for an event, retrying a failed or timed-out run of a non-interactive
    /// event up to the hook's `retry_count` times, as Rossum does (a scheduled run). Each
    /// attempt has its own run log, all with the same request id; the last attempt's result
    /// is returned. `permit` is held until the last attempt is recorded.
    pub async fn run_retrying(
        &self,
        permit: RunPermit,
        hook: &Hook,
        event: &EventAction,
        body: &Map<String, Value>,
        queue_id: Option<u64>,
        request_id: &str,
    ) -> Result<RunResult, DispatchError> {
        check_permit(&permit, hook);
        let attempts = attempts(hook, event);
        let result = self
            .attempt_runs(hook, event, body, queue_id, request_id, attempts)
            .await;
        drop(permit);
        result
    }

    // One span for the hook's run, its attempts inside: the module is loaded once for all
    // of them.
    #[tracing::instrument(
        target = TRACE,
        name = "hook run",
        skip_all,
        fields(hook = hook.id, organization = hook.organization_id, kind = %hook.spec.kind.hook_type()),
    )]
    pub(super) async fn attempt_runs(
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
        let secrets = HookSecrets::open(
            &self.sealer,
            hook.organization_id,
            hook.sealed_secrets.as_deref(),
        )?;
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
            Some(owner) => {
                let grant = Grant::Run {
                    owner,
                    hook_id: hook.id,
                    run_time: worst_case,
                    lifetime_s: hook.spec.token_lifetime_s(),
                };
                Some(tokens::mint(&self.store, grant).await?)
            }
            None => None,
        };
        let body = with_sideloads(&self.store, &self.base_url, hook, body, queue_id).await?;
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
            payload_logging: hook.spec.kind.payload_logging_enabled(),
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
            tokens::expire_after_run(&self.store, token, hook.spec.token_lifetime_s()).await?;
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
        // Only a hook that asks reuses instances; the rest take the fresh path unchanged.
        let secrets = &prepared.invocation.secrets;
        let reuse = function
            .reuse()
            .and_then(|reuse| reuse_for(hook, reuse, secrets));
        let called = Instant::now();
        let report = {
            let _instance = self.limits.instance(limits.memory_size_mb).await;
            stage(Stage::queue, called.elapsed());
            let runtime = self.library.runtime();
            match &reuse {
                Some(reuse) => {
                    runtime
                        .call_reusing(loaded, &prepared.invocation, &call_limits, reuse)
                        .await
                }
                None => {
                    runtime
                        .call(loaded, &prepared.invocation, &call_limits)
                        .await
                }
            }
        };
        let log = prepared.clone().run_log(&report);
        let committing = Instant::now();
        self.writer.record(&log).await?;
        stage(Stage::log_commit, committing.elapsed());
        stage(Stage::total, called.elapsed());
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
        self.writer.record(&log).await?;
        Ok((RunResult::of(log, String::new()), delivery.retryable))
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
            payload_logging: hook.spec.kind.payload_logging_enabled(),
        })?;
        let log = prepared.cancelled_log(reason);
        self.writer.record(&log).await?;
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

/// How many times a run of `hook` for `event` may be attempted: once for an interactive
/// event (someone waits), else once plus the hook's `retry_count`.
pub(super) fn attempts(hook: &Hook, event: &EventAction) -> u64 {
    if event.is_interactive() {
        1
    } else {
        1 + hook.spec.kind.retry_policy().retry_count
    }
}

/// A permit runs only its own organization's hooks: the callers take it for the hooks
/// they pass, and a debug build says so when one does not.
pub(super) fn check_permit(permit: &RunPermit, hook: &Hook) {
    debug_assert_eq!(
        permit.organization_id(),
        hook.organization_id,
        "a run permit of one organization used for hook {} of another",
        hook.id
    );
}
