//! Which hooks of an organization an event runs, in what order, and what becomes of a hook
//! whose predecessor did not complete: the run_after rules, kept apart from running so that
//! they can be read and tested without a store, a runtime or a clock.
//!
//! Everything here is pure: no async, no store, no I/O. The dispatcher walks an
//! [`EventPlan`] layer by layer (`Dispatcher::run_event`), running each layer's hooks at
//! once, and asks [`EventPlan::step`] for each hook whether it runs, and after whom.
//!
//! The rules, as Rossum has them:
//!
//! - an event runs the organization's active hooks that subscribe to it and, when the event
//!   concerns a queue, are on that queue (`HookSpec::runs_for`);
//! - a hook runs after every hook it names in `run_after`, directly or through hooks that
//!   do not run for this event (a chain A → X → C where X does not run still puts C after
//!   A);
//! - a hook whose predecessor (directly or not) did not complete is not run: it is
//!   cancelled, and so, in turn, are the hooks after it;
//! - a hook sees the event's `annotation.content` with its predecessors' operations applied.
//!
//! A run_after cycle is refused when hooks are saved; one that slipped past (or was written
//! by hand) must neither hang nor panic here: its hooks run one at a time, in id order.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::model::content::{apply_operations, MAX_OPERATIONS};
use crate::model::hook::Hook;
use crate::model::{EventAction, EventFields, RunStatus};

/// The hooks an event runs, and their order: layers of hooks whose predecessors are all in
/// earlier layers, so that the hooks of one layer may run at once. It exists so that the
/// order is decided once, from the hooks alone, before anything runs.
#[derive(Debug)]
pub struct EventPlan<'a> {
    hooks: HashMap<u64, &'a Hook>,
    /// Each planned hook's planned predecessors, found through unplanned hooks too.
    predecessors: HashMap<u64, Vec<u64>>,
    layers: Vec<Vec<u64>>,
}

/// What becomes of one planned hook once the layers before it have finished: the answer
/// the dispatcher acts on, so that the cancellation rule lives here and not in the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// It runs, on the event's keys with the operations of these ancestors (every planned
    /// hook it runs after, directly or not, in layer order) applied: see [`body_after`].
    Run {
        /// Its ancestors, in layer order.
        ancestors: Vec<u64>,
    },
    /// It is not run: `predecessor`, which it runs after (directly or not), did not
    /// complete.
    Cancel {
        /// The first of its ancestors, in layer order, that did not complete.
        predecessor: u64,
    },
}

impl<'a> EventPlan<'a> {
    /// The plan of `event` (on `queue_id`, when it concerns one) over `all`, an
    /// organization's hooks: those that run for it ([`HookSpec::runs_for`]), layered by
    /// run_after. Within a layer hooks are in id order; a cycle leaves its hooks, and those
    /// after them, one per layer in id order.
    ///
    /// [`HookSpec::runs_for`]: crate::model::hook::HookSpec::runs_for
    pub fn new(all: &'a [Hook], event: &EventAction, queue_id: Option<u64>) -> Self {
        let by_id: HashMap<u64, &Hook> = all.iter().map(|hook| (hook.id, hook)).collect();
        let hooks: HashMap<u64, &Hook> = subscribed(all, event, queue_id)
            .into_iter()
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

    /// The planned hooks' ids, layer by layer: every hook of a layer may run once the
    /// layers before it have finished.
    pub fn layers(&self) -> &[Vec<u64>] {
        &self.layers
    }

    /// The planned hook `id` (one of [`EventPlan::layers`]'s ids; panics on any other).
    pub fn hook(&self, id: u64) -> &'a Hook {
        self.hooks[&id]
    }

    /// Every planned hook `id` runs after, directly or not, in layer order. (In a cycle,
    /// a hook is among its own ancestors.)
    pub fn ancestors(&self, id: u64) -> Vec<u64> {
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

    /// Whether planned hook `id` runs, given how the hooks that have finished ended
    /// (`status` answers for a finished hook, none for one not finished): cancelled when
    /// one of its ancestors did not complete (see [`failed_predecessor`]).
    pub fn step(&self, id: u64, status: impl Fn(u64) -> Option<RunStatus>) -> Step {
        let ancestors = self.ancestors(id);
        match failed_predecessor(&ancestors, status) {
            Some(predecessor) => Step::Cancel { predecessor },
            None => Step::Run { ancestors },
        }
    }
}

/// The hooks of `all` (an organization's) that `event` runs, on `queue_id` when it concerns
/// one ([`HookSpec::runs_for`]), in `all`'s order: the hooks an [`EventPlan`] plans, for
/// the checks made before it runs (a member's right to run them, the organization's run
/// slots and memory they take).
///
/// [`HookSpec::runs_for`]: crate::model::hook::HookSpec::runs_for
pub fn subscribed<'a>(
    all: &'a [Hook],
    event: &EventAction,
    queue_id: Option<u64>,
) -> Vec<&'a Hook> {
    all.iter()
        .filter(|hook| hook.spec.runs_for(event, queue_id))
        .collect()
}

/// The first of `ancestors` (in their order) that finished without completing (failed,
/// timed out, or was itself cancelled, which makes cancellation transitive): a hook that
/// runs after it is not run. An ancestor that has not finished cancels nothing (only in a
/// cycle can one still be to run).
pub fn failed_predecessor(
    ancestors: &[u64],
    status: impl Fn(u64) -> Option<RunStatus>,
) -> Option<u64> {
    ancestors
        .iter()
        .copied()
        .find(|&ancestor| status(ancestor).is_some_and(|status| status != RunStatus::Completed))
}

/// A response made of its `operations` alone: all of a response [`body_after`] applies, and
/// all that is kept of one whose whole is not (past a budget of bytes).
pub fn operations_only(operations: Value) -> Map<String, Value> {
    let mut only = Map::new();
    only.insert("operations".to_owned(), operations);
    only
}

/// The payload keys of a hook whose predecessors have run: `annotation.content` with the
/// operations of `responses` (its ancestors' responses, in layer order) applied, and
/// `updated_datapoints` with what they changed. The event's keys as sent when there is no
/// operation or no content. Only the values it changes are parsed.
pub fn body_after<'r>(
    body: &EventFields,
    responses: impl IntoIterator<Item = &'r Map<String, Value>>,
) -> EventFields {
    let mut operations: Vec<Value> = responses
        .into_iter()
        .filter_map(|response| response.get("operations").and_then(Value::as_array))
        .flatten()
        .take(MAX_OPERATIONS + 1)
        .cloned()
        .collect();
    if operations.len() > MAX_OPERATIONS {
        operations.truncate(MAX_OPERATIONS);
        tracing::warn!(
            "the hooks before this one answered over {MAX_OPERATIONS} operations; those past \
             it are not applied to its payload"
        );
    }
    if operations.is_empty() {
        return body.clone();
    }
    let Some(mut annotation) = body.value("annotation") else {
        return body.clone();
    };
    let Some(content) = annotation.get_mut("content") else {
        return body.clone();
    };
    let changed = apply_operations(content, &operations);
    let mut updated = body
        .value("updated_datapoints")
        .unwrap_or_else(|| Value::Array(Vec::new()));
    if let Some(updated) = updated.as_array_mut() {
        let mut listed: HashSet<u64> = updated.iter().filter_map(Value::as_u64).collect();
        for id in changed {
            if listed.insert(id) {
                updated.push(id.into());
            }
        }
    }
    let mut body = body.clone();
    body.insert("annotation".into(), &annotation);
    body.insert("updated_datapoints".into(), &updated);
    body
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
