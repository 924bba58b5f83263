//! Running an event: walking its [`EventPlan`] layer by layer, the hooks of a layer at
//! once, each run or cancelled as [`EventPlan::step`] says, and recorded. The rules (which
//! hooks, what order, who is cancelled) are the plan's; this is only the walk, with the
//! dispatcher's runs.

use std::collections::HashMap;

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{Map, Value};

use super::dispatcher::{check_permit, DispatchError, Dispatcher, RunResult};
use super::limits::RunPermit;
use super::plan::{body_after, EventPlan, Step};
use crate::model::hook::Hook;
use crate::model::{EventAction, EventFields, RunStatus};
use crate::trace_context::TRACE;

/// One hook's part in an event: what `POST /events` answers for each hook, and what the
/// hooks after it are decided by.
#[derive(Debug, Clone)]
pub struct EventRun {
    /// The hook, by which those that run after it find how it ended.
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

/// What an event's runs say together, as Rossum folds its hooks' answers: every run's
/// messages, operations and automation blockers in run order, and how many did not complete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventAnswer {
    /// The runs' `messages`, concatenated.
    pub messages: Vec<Value>,
    /// The runs' `operations`, concatenated.
    pub operations: Vec<Value>,
    /// The runs' `automation_blockers`, concatenated.
    pub automation_blockers: Vec<Value>,
    /// Runs that did not complete (failed, timed out, cancelled).
    pub failed: usize,
}

impl EventAnswer {
    /// Folds the runs' responses in order.
    pub fn fold(runs: &[EventRun]) -> Self {
        let mut answer = EventAnswer::default();
        for run in runs {
            if run.status != RunStatus::Completed {
                answer.failed += 1;
            }
            let Some(response) = &run.response else {
                continue;
            };
            for (key, into) in [
                ("messages", &mut answer.messages),
                ("operations", &mut answer.operations),
                ("automation_blockers", &mut answer.automation_blockers),
            ] {
                if let Some(items) = response.get(key).and_then(Value::as_array) {
                    into.extend(items.iter().cloned());
                }
            }
        }
        answer
    }
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
    /// Runs every hook of `hooks` (an organization's) that subscribes to an interactive
    /// event (and the queue, when given), once each, in run_after order ([`EventPlan`]),
    /// and records each; a hook after one that did not complete is cancelled. `permit`
    /// (the organization's, for as many runs as the plan has hooks) is held until the last
    /// run is recorded. A non-interactive event is delivered instead
    /// (`Dispatcher::deliver_event`): its retries and polling outlive the request.
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
        body: &EventFields,
        request_id: &str,
    ) -> Result<Vec<EventRun>, DispatchError> {
        let plan = EventPlan::new(hooks, event, queue_id);
        let mut finished: HashMap<u64, EventRun> = HashMap::new();
        let mut order = Vec::new();
        for layer in plan.layers() {
            let runs: Vec<_> = layer
                .iter()
                .map(|&id| {
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
                })
                .collect();
            // As many at once as the permit holds slots: a layer of more hooks than the
            // organization's share takes turns within it, the next starting as soon as any
            // ends; the results are then put back in the layer's order.
            let at_once = permit.runs();
            let mut waiting = runs.into_iter().enumerate();
            let mut running = FuturesUnordered::new();
            let mut ended = Vec::with_capacity(layer.len());
            loop {
                while running.len() < at_once {
                    let Some((index, run)) = waiting.next() else {
                        break;
                    };
                    running.push(async move { (index, run.await) });
                }
                let Some(run) = running.next().await else {
                    break;
                };
                ended.push(run);
            }
            ended.sort_by_key(|(index, _)| *index);
            for (_, run) in ended {
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

    /// One hook's step of an event, recorded: its run, or its cancellation when a predecessor did not complete or its module cannot run.
    async fn take_step(
        &self,
        hook: &Hook,
        step: &Step,
        event: &EventAction,
        body: &EventFields,
        queue_id: Option<u64>,
        request_id: &str,
    ) -> Result<EventRun, DispatchError> {
        let reason = match step {
            Step::Cancel { predecessor } => {
                format!("not run: hook {predecessor}, which this hook runs after, did not complete")
            }
            Step::Run { .. } => {
                let run = self.run_once(hook, event, body, queue_id, request_id);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(status: RunStatus, response: Option<Value>) -> EventRun {
        EventRun {
            hook_id: 1,
            status,
            message: String::new(),
            response: response.and_then(|value| value.as_object().cloned()),
            request_id: "r".into(),
        }
    }

    #[test]
    fn answers_fold_in_run_order_and_count_what_did_not_complete() {
        let runs = [
            run(
                RunStatus::Completed,
                Some(json!({"messages": [{"content": "a"}], "operations": [1]})),
            ),
            run(RunStatus::Failed, None),
            run(
                RunStatus::Completed,
                Some(json!({"messages": [{"content": "b"}], "automation_blockers": ["x"]})),
            ),
            run(RunStatus::Cancelled, None),
        ];
        let answer = EventAnswer::fold(&runs);
        assert_eq!(
            answer.messages,
            vec![json!({"content": "a"}), json!({"content": "b"})]
        );
        assert_eq!(answer.operations, vec![json!(1)]);
        assert_eq!(answer.automation_blockers, vec![json!("x")]);
        assert_eq!(answer.failed, 2);
    }
}
