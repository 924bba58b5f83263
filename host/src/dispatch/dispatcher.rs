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
use crate::metrics::{organization, phase, stage, Held, Metrics, OrganizationLabels, Phase, Stage};
use crate::model::hook::{FunctionConfig, Hook, HookKind, WebhookConfig};
use crate::model::{EventAction, EventFields, PayloadError, RunLog, RunStatus};
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
    /// The organization's deliveries not yet done are at their bound: a new
    /// non-interactive event is refused until some finish.
    #[error(
        "the organization has {limit} deliveries of earlier events not yet finished, its \
         limit; retry once some have finished"
    )]
    Backlog {
        /// The bound (`[limits] unfinished_deliveries_per_organization`).
        limit: u64,
    },
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
    /// How long a replica holds a delivery it claimed without saying it is still alive: a
    /// killed replica's deliveries are taken over this long after its last word.
    pub lease: Duration,
    /// The most deliveries not yet done one organization may have; a non-interactive event
    /// beyond it is refused (429).
    pub unfinished_per_organization: u64,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            retry_delay: Duration::from_secs(1),
            retry_delay_cap: Duration::from_secs(30),
            polling: Polling {
                interval: Duration::from_secs(30),
            },
            lease: Duration::from_secs(30),
            unfinished_per_organization: 1000,
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
    /// This replica's id (the owner of the deliveries it leases), as in its heartbeat.
    pub replica: String,
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
    pub(super) store: Store,
    library: Arc<ModuleLibrary>,
    pub(super) sealer: Sealer,
    writer: RunLogWriter,
    pub(super) limits: RunLimits,
    base_url: String,
    pub(super) outbound: Arc<Outbound>,
    pub(super) settings: DispatchSettings,
    pub(super) replica: String,
    /// Wakes this replica's delivery worker when something falls due sooner than it
    /// expected (a retry or a poll it scheduled itself).
    pub(super) wake: tokio::sync::Notify,
    /// The deliveries this replica's turns hold now, each with the claim holding it,
    /// whose leases it renews.
    pub(super) held: std::sync::Mutex<std::collections::HashMap<u64, String>>,
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
            replica: parts.replica,
            wake: tokio::sync::Notify::new(),
            held: std::sync::Mutex::default(),
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
        body: &EventFields,
        queue_id: Option<u64>,
        request_id: &str,
    ) -> Result<RunResult, DispatchError> {
        check_permit(&permit, hook);
        let result = self.run_once(hook, event, body, queue_id, request_id).await;
        drop(permit);
        result
    }

    /// One attempt of a hook's run, recorded through the batching writer, where someone
    /// waits for it: a test, an invocation, a hook of an interactive event. A webhook that
    /// accepts the call for later is polled in place.
    #[tracing::instrument(
        target = TRACE,
        name = "hook run",
        skip_all,
        fields(hook = hook.id, organization = hook.organization_id, kind = %hook.spec.kind.hook_type()),
    )]
    pub(super) async fn run_once(
        &self,
        hook: &Hook,
        event: &EventAction,
        body: &EventFields,
        queue_id: Option<u64>,
        request_id: &str,
    ) -> Result<RunResult, DispatchError> {
        let prepared = self
            .prepare(hook, event, body, queue_id, request_id, RunToken::Mint)
            .await?;
        let attempted = match self.attempt(hook, event, &prepared).await? {
            AttemptEnd::Ended(attempted) => *attempted,
            AttemptEnd::Accepted(accepted) => {
                let Target::Webhook(config) = &prepared.target else {
                    return Err(DispatchError::NoModule);
                };
                let delivery = webhook::poll_in_place(
                    &self.outbound,
                    hook,
                    config,
                    event,
                    accepted,
                    self.settings.polling,
                )
                .await;
                prepared.webhook_attempted(&delivery)
            }
        };
        let committing = Instant::now();
        self.writer.record(&attempted.log).await?;
        if attempted.module_call {
            stage(Stage::log_commit, committing.elapsed());
            stage(Stage::total, attempted.called.elapsed());
        }
        prepared.expire_token(&self.store).await?;
        Ok(RunResult::of(attempted.log, attempted.output))
    }

    /// Makes a hook's run ready: its module loaded (or its URL), its secrets opened, a
    /// token for its owner as `token` says (a minted one is valid for one attempt's worst case),
    /// its sideloads added and its payload assembled.
    pub(super) async fn prepare<'h>(
        &self,
        hook: &'h Hook,
        event: &EventAction,
        body: &EventFields,
        queue_id: Option<u64>,
        request_id: &str,
        token: RunToken,
    ) -> Result<Prepared<'h>, DispatchError> {
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
        // Valid until the attempt could end (a webhook's polling included); cut to the
        // hook's lifetime once it has.
        let worst_case = match &target {
            Target::Module(_, function) => Duration::from_secs(function.limits().timeout_s),
            Target::Webhook(webhook) => {
                let options = webhook.options();
                Duration::from_secs(options.timeout_s.max(webhook::INTERACTIVE_TIMEOUT_S))
                    + Duration::from_secs(options.max_polling_time_s)
            }
        };
        let token = match (hook.spec.token_owner, token) {
            (Some(owner), RunToken::Mint) => {
                let grant = Grant::Run {
                    owner,
                    hook_id: hook.id,
                    run_time: worst_case,
                    lifetime_s: hook.spec.token_lifetime_s(),
                };
                Some(tokens::mint(&self.store, grant).await?)
            }
            (_, RunToken::Given(given)) => given,
            (None, RunToken::Mint) => None,
        };
        let body = with_sideloads(&self.store, &self.base_url, hook, body, queue_id).await?;
        let call = PreparedCall::new(&HookCall {
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
        Ok(Prepared {
            target,
            call,
            config_secret: secrets.config_secret,
            token,
            lifetime_s: hook.spec.token_lifetime_s(),
        })
    }

    /// One attempt of a prepared run, not yet recorded: a module's call, or a webhook's
    /// first request (which may accept the call for polling).
    pub(super) async fn attempt(
        &self,
        hook: &Hook,
        event: &EventAction,
        prepared: &Prepared<'_>,
    ) -> Result<AttemptEnd, DispatchError> {
        let running = Held::on(|metrics: &Metrics| {
            metrics
                .runs_in_flight
                .get_or_create(&OrganizationLabels {
                    organization: organization(hook.organization_id),
                })
                .clone()
        });
        let end = match &prepared.target {
            Target::Module(loaded, function) => AttemptEnd::Ended(Box::new(
                self.call_module(hook, function, loaded, &prepared.call)
                    .await,
            )),
            Target::Webhook(config) => {
                let sent = webhook::send(
                    &self.outbound,
                    hook,
                    config,
                    prepared.config_secret.as_deref(),
                    event,
                    &prepared.call.invocation.payload,
                )
                .await;
                match sent {
                    webhook::Sent::Answered(delivery) => {
                        AttemptEnd::Ended(Box::new(prepared.webhook_attempted(&delivery)))
                    }
                    webhook::Sent::Accepted(accepted) => AttemptEnd::Accepted(accepted),
                }
            }
        };
        drop(running);
        Ok(end)
    }

    /// One call of a hook's module, its run log made (not written); whether it is worth
    /// another attempt.
    async fn call_module(
        &self,
        hook: &Hook,
        function: &FunctionConfig,
        loaded: &LoadedModule,
        prepared: &PreparedCall,
    ) -> Attempted {
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
        let log = prepared.run_log(&report);
        let retryable = log.status != RunStatus::Completed;
        Attempted {
            log,
            output: report.output,
            retryable,
            called,
            module_call: true,
        }
    }

    /// The call of `hook` for an event as a run log of it sees it when it was not run (no
    /// secrets, no token): what a cancellation's or an interrupted attempt's log is made of.
    pub(super) fn unrun_call(
        &self,
        hook: &Hook,
        event: &EventAction,
        body: &EventFields,
        queue_id: Option<u64>,
        request_id: &str,
    ) -> Result<PreparedCall, DispatchError> {
        Ok(PreparedCall::new(&HookCall {
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
        })?)
    }

    /// [`Dispatcher::unrun_call`] for a delivery of the stored event `row`.
    pub(super) fn unrun_for(
        &self,
        hook: &Hook,
        event: &EventAction,
        body: &EventFields,
        row: &crate::store::deliveries::EventRow,
    ) -> Result<PreparedCall, DispatchError> {
        self.unrun_call(hook, event, body, row.queue_id, &row.request_id)
    }

    /// Records that `hook` was not run for `event`, and why (a `cancelled` run log).
    pub(crate) async fn cancel(
        &self,
        hook: &Hook,
        event: &EventAction,
        body: &EventFields,
        queue_id: Option<u64>,
        request_id: &str,
        reason: &str,
    ) -> Result<EventRun, DispatchError> {
        let prepared = self.unrun_call(hook, event, body, queue_id, request_id)?;
        let log = prepared.cancelled_log(reason);
        self.writer.record(&log).await?;
        Ok(EventRun {
            hook_id: hook.id,
            status: RunStatus::Cancelled,
            message: log.message,
            response: None,
            response_omitted: false,
            request_id: log.request_id,
        })
    }
}

/// What one hook's run calls: its module, loaded, or its URL.
pub(super) enum Target<'a> {
    Module(Arc<LoadedModule>, &'a FunctionConfig),
    Webhook(&'a WebhookConfig),
}

/// The token a prepared run carries.
pub(super) enum RunToken {
    /// A fresh one for the hook's `token_owner`, if it has one.
    Mint,
    /// The one minted for the attempt before (a webhook's polled result is redacted of
    /// it), or none.
    Given(Option<String>),
}

/// A hook's run made ready ([`Dispatcher::prepare`]).
pub(super) struct Prepared<'a> {
    pub(super) target: Target<'a>,
    pub(super) call: PreparedCall,
    config_secret: Option<String>,
    token: Option<String>,
    lifetime_s: u64,
}

impl Prepared<'_> {
    /// The attempt a webhook call that ended makes.
    pub(super) fn webhook_attempted(&self, delivery: &webhook::Delivery) -> Attempted {
        phase(Phase::webhook, delivery.duration);
        Attempted {
            log: self.call.webhook_log(delivery),
            output: String::new(),
            retryable: delivery.retryable,
            called: Instant::now(),
            module_call: false,
        }
    }

    /// The run's token sealed for its organization, to be kept while its webhook is
    /// polled (none when it has no token, or it cannot be sealed: then it is not redacted
    /// by name from the result, only expired on its own).
    pub(super) fn sealed_token(&self, sealer: &Sealer, organization_id: u64) -> Option<Vec<u8>> {
        let token = self.token.as_ref()?;
        sealer.seal(organization_id, token.as_bytes()).ok()
    }

    /// Cuts the run's token to the hook's lifetime, now that the attempt has ended.
    pub(super) async fn expire_token(&self, store: &Store) -> Result<(), DispatchError> {
        if let Some(token) = &self.token {
            tokens::expire_after_run(store, token, self.lifetime_s).await?;
        }
        Ok(())
    }
}

/// How an attempt ended.
pub(super) enum AttemptEnd {
    /// With this run log (not yet written).
    Ended(Box<Attempted>),
    /// Its webhook accepted the call; the result is to be polled.
    Accepted(webhook::Accepted),
}

/// One ended attempt, its run log not yet written.
pub(super) struct Attempted {
    pub(super) log: RunLog,
    pub(super) output: String,
    /// Whether another attempt may help.
    pub(super) retryable: bool,
    /// When the module call began (for the stage timings).
    called: Instant,
    module_call: bool,
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
