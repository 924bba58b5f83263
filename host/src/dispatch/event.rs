//! Running an event: walking its [`EventPlan`] layer by layer, the hooks of a layer at
//! once, each run or cancelled as [`EventPlan::step`] says, and recorded. The rules (which
//! hooks, what order, who is cancelled) are the plan's; this is only the walk, with the
//! dispatcher's runs.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::dispatcher::{attempts, check_permit, DispatchError, Dispatcher, RunResult};
use super::limits::RunPermit;
use super::plan::{body_after, EventPlan, Step};
use crate::model::hook::Hook;
use crate::model::{EventAction, RunStatus};
use crate::trace_context::TRACE;

/// One hook's part in an event: what `POST /events` answers for each hook, and what the
/// hooks after it are decided by.
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

impl Dispatcher {
    /// Runs every hook of `hooks` (an organization's) that subscribes to the event (and the
    /// queue, when given), in run_after order ([`EventPlan`]), and records each; a hook
    /// after one that did not complete is cancelled. `permit` (the organization's, for as
    /// many runs as the plan has hooks) is held until the last run is recorded.
    #[tracing::instrument(
        target = TRACE,
        name = "event",
        skip_all,
        fields(event = %format_args!("{}.{}", event.event(), event.action())),
    )]
    pub async fn run_event(
        &self,
        permit: RunPermit,
        hooks: &[Hook],
        event: &EventAction,
        queue_id: Option<u64>,
        body: &Map<String, Value>,
        request_id: &str,
    ) -> Result<Vec<EventRun>, DispatchError> {
        let plan = EventPlan::new(hooks, event, queue_id);
        let mut finished: HashMap<u64, EventRun> = HashMap::new();
        let mut order = Vec::new();
        for layer in plan.layers() {
            let runs = layer.iter().map(|&id| {
                let hook = plan.hook(id);
                check_permit(&permit, hook);
                let step = plan.step(id, |other| finished.get(&other).map(|run| run.status));
                let body = match &step {
                    Step::Cancel { .. } => body.clone(),
                    Step::Run { ancestors } => {
                        let responses = ancestors
                            .iter()
                            .filter_map(|ancestor| finished.get(ancestor)?.response.as_ref());
                        body_after(body, responses)
                    }
                };
                async move {
                    self.take_step(hook, &step, event, &body, queue_id, request_id)
                        .await
                }
            });
            for run in futures::future::join_all(runs).await {
                let run = run?;
                order.push(run.hook_id);
                finished.insert(run.hook_id, run);
            }
        }
        drop(permit);
        Ok(order
            .into_iter()
            .filter_map(|id| finished.remove(&id))
            .collect())
    }

    /// One hook's step of an event, recorded: its run (retried as the event allows), or
    /// its cancellation when a predecessor did not complete or its module cannot run.
    async fn take_step(
        &self,
        hook: &Hook,
        step: &Step,
        event: &EventAction,
        body: &Map<String, Value>,
        queue_id: Option<u64>,
        request_id: &str,
    ) -> Result<EventRun, DispatchError> {
        let reason = match step {
            Step::Cancel { predecessor } => {
                format!("not run: hook {predecessor}, which this hook runs after, did not complete")
            }
            Step::Run { .. } => {
                let attempts = attempts(hook, event);
                let run = self.attempt_runs(hook, event, body, queue_id, request_id, attempts);
                match run.await {
                    Ok(result) => return Ok(EventRun::from_result(hook, result)),
                    Err(DispatchError::Module(error)) => format!("not run: {error}"),
                    Err(other) => return Err(other),
                }
            }
        };
        self.cancel(hook, event, body, queue_id, request_id, &reason)
            .await
    }
}
