//! A call that may run on a warm instance of its hook ([`super::warm`]), and leaves its
//! instance there when it completed.
//!
//! Kept apart from `call.rs` so that a call without reuse takes exactly the path it took
//! before. What is per call is set again on a warm store before each call: the deadline
//! and its epoch callback, the instruction budget, the `wasi:http` grant with its output,
//! and the redactor, which also hides what earlier calls on the instance had to hide. The
//! payload, settings, secrets and token arrive in the call's own request; the output
//! capture is emptied after every call. An instance is kept only after a completed call
//! whose output was not cut: a trap poisons it, a timeout or an interrupt leaves it
//! mid-call, and after any other failure nothing says what state the guest is in.

use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};
use wasmtime::Store;

use super::bindings::ExtensionPre;
use super::call::{
    classify, finish_output, guest_call, instantiating, ready, Execution, GuestJob, Returned,
};
use super::config::CallLimits;
use super::fair::{FairShare, TickYield};
use super::http::GuestHttp;
use super::invocation::Invocation;
use super::limiter::CallLimiter;
use super::outcome::{Failure, Outcome, RunReport};
use super::output::Capture;
use super::redact::Redactor;
use super::state::{sandbox, CallState, ComponentState};
use super::warm::{Reuse, WarmInstance, WarmKey};
use super::{LoadedModule, Prepared, Runtime};
use crate::metrics::{metrics, InstanceKind, InstanceLabels};

impl Runtime {
    /// Calls a module as [`Runtime::call`] does, but on an idle instance of the same hook
    /// and version when the pool has one, and keeps the instance for the hook's next call
    /// when this one completed. A command always gets a fresh instance: it runs to its end
    /// and has nothing to be called again.
    pub async fn call_reusing(
        &self,
        module: &LoadedModule,
        invocation: &Invocation,
        limits: &CallLimits,
        reuse: &Reuse,
    ) -> RunReport {
        let Prepared::Extension(pre) = &module.prepared else {
            return self.call(module, invocation, limits).await;
        };
        let key = WarmKey {
            hook: reuse.hook,
            module: module.digest,
            code: module.code,
            memory_bytes: limits.memory_bytes,
        };
        let warm = self.warm.take(&key);
        let warm_call = warm.is_some();
        count_instance(if warm_call {
            InstanceKind::reused
        } else {
            InstanceKind::fresh
        });
        let started_at = SystemTime::now();
        let start = Instant::now();
        let deadline = start + limits.timeout;
        let output = warm.as_ref().map_or_else(
            || Capture::new(limits.output_bytes),
            |warm| warm.output.clone(),
        );
        let redactor =
            Redactor::new(hidden(invocation).chain(warm.iter().flat_map(|warm| warm.remembered())));
        let tick = TickYield::default();
        let job = self.execution_warm(pre, warm, invocation, limits, deadline, &output, &tick);
        // As in `call`: waiting for the group's turn counts against the call's time, and the
        // guest runs on a guest thread; a warm instance's store goes there with the job and
        // comes back with its result.
        let execution = tokio::time::timeout(
            limits.timeout,
            self.guests.run(
                FairShare::new(&self.cpu, limits.fairness_group, tick.clone(), job),
                if warm_call {
                    module.warm_start()
                } else {
                    module.fresh_start()
                },
            ),
        )
        .await;
        let duration = start.elapsed();
        let captured = output.take();
        let (outcome, instance) = match execution {
            Ok(Ok((execution, instance))) => {
                // A guest that met its memory limit and still answered is not kept: any
                // limit met discards the instance.
                let instance = instance.filter(|_| !execution.memory_exceeded);
                let outcome = classify(execution, limits, &captured, &redactor);
                (redact_response(outcome, &redactor), instance)
            }
            // The job panicked: the instance went with it.
            Ok(Err(lost)) => (Outcome::Failed(Failure::Host(lost.to_string())), None),
            // Blocked in a host call past the deadline: the instance went with the future.
            Err(_elapsed) => (
                Outcome::Timeout {
                    limit: limits.timeout,
                },
                None,
            ),
        };
        let (output, output_truncated) = finish_output(&captured, &redactor);
        if let Some(mut instance) = instance {
            // A request of the call still running (or a body the guest kept) could write
            // into the next call's output: such an instance is not kept.
            if outcome.is_completed() && !output_truncated && instance.store.data().http_quiet() {
                instance.finished(hidden(invocation));
                if !instance.retired() {
                    self.warm.put(key, instance, reuse.policy);
                }
            }
        }
        RunReport {
            outcome,
            output,
            output_truncated,
            started_at,
            duration,
        }
    }

    /// Discards warm instances idle past their hook's `idle_s` (the server calls this
    /// now and then, so that an instance nobody calls again gives its memory back).
    pub fn sweep_warm_instances(&self) {
        self.warm.sweep();
    }

    /// How many warm instances are idle now.
    pub fn warm_instances(&self) -> usize {
        self.warm.len()
    }

    /// The guest's work on `warm`, set up for this call, or on a fresh instance, as a job
    /// for a guest thread that owns the instance; the instance comes back unless it could
    /// not be made.
    #[allow(clippy::too_many_arguments)]
    fn execution_warm(
        &self,
        pre: &ExtensionPre<ComponentState>,
        warm: Option<WarmInstance>,
        invocation: &Invocation,
        limits: &CallLimits,
        deadline: Instant,
        output: &Capture,
        tick: &TickYield,
    ) -> GuestJob<(Execution, Option<WarmInstance>)> {
        let http = GuestHttp::new(limits.network.clone(), output.clone());
        let ready_to_call = match warm {
            Some(mut instance) => {
                instance.store.data_mut().renew(http);
                if let Err(error) = self.arm(&mut instance.store, limits, deadline, tick) {
                    return ready((Execution::failed(error), None));
                }
                Instance::Warm(instance)
            }
            None => {
                let call = CallState {
                    limiter: CallLimiter::new(
                        usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                    ),
                    deadline,
                    output: output.clone(),
                };
                let state = ComponentState::new(sandbox(output).build(), call, http);
                // The engine that compiled the module (there are two when tiered).
                match self.store(pre.engine(), state, limits, deadline, tick) {
                    Ok(store) => Instance::Fresh(store, pre.clone(), output.clone()),
                    Err(error) => return ready((Execution::failed(error), None)),
                }
            }
        };
        let request = invocation.to_request();
        Box::pin(async move {
            let mut instance = match ready_to_call {
                Instance::Warm(instance) => instance,
                Instance::Fresh(mut store, pre, output) => {
                    match instantiating(pre.instantiate_async(&mut store)).await {
                        Ok(extension) => WarmInstance::new(store, extension, output),
                        Err(error) => return (Execution::of(&mut store, Err(error)), None),
                    }
                }
            };
            let result = guest_call(
                instance
                    .extension
                    .call_handle(&mut instance.store, &request),
            )
            .await;
            let execution = Execution::of(&mut instance.store, result.map(Returned::Response));
            (execution, Some(instance))
        })
    }
}

/// What a call's job starts from: a warm instance set up for the call, or a fresh store
/// with what instantiating it takes.
enum Instance {
    Warm(WarmInstance),
    Fresh(Store<ComponentState>, ExtensionPre<ComponentState>, Capture),
}

/// The values a call hides: its secret values and its token.
fn hidden(invocation: &Invocation) -> impl Iterator<Item = &str> {
    invocation
        .secrets
        .iter()
        .map(|(_, value)| value.as_str())
        .chain(invocation.authorization_token.as_deref())
}

/// A completed call's response with what the instance's earlier calls hid hidden too (the
/// caller redacts this call's own values again, which changes nothing).
fn redact_response(outcome: Outcome, redactor: &Redactor) -> Outcome {
    match outcome {
        Outcome::Completed { response } => {
            let response = match redactor.redact_json(Value::Object(response)) {
                Value::Object(response) => response,
                // Redaction rewrites strings inside; an object stays an object.
                _ => Map::new(),
            };
            Outcome::Completed { response }
        }
        other => other,
    }
}

/// Counts an instance a call ran on.
pub(super) fn count_instance(kind: InstanceKind) {
    if let Some(metrics) = metrics() {
        metrics
            .instances
            .get_or_create(&InstanceLabels { kind })
            .inc();
    }
}
