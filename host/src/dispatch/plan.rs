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

use crate::model::content::apply_operations;
use crate::model::hook::Hook;
use crate::model::{EventAction, RunStatus};

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

/// The payload keys of a hook whose predecessors have run: `annotation.content` with the
/// operations of `responses` (its ancestors' responses, in layer order) applied, and
/// `updated_datapoints` with what they changed. The event's keys as sent when there is no
/// operation or no content.
pub fn body_after<'r>(
    body: &Map<String, Value>,
    responses: impl IntoIterator<Item = &'r Map<String, Value>>,
) -> Map<String, Value> {
    let mut body = body.clone();
    let operations: Vec<Value> = responses
        .into_iter()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hook::{
        AllowedHosts, CommonConfig, FunctionConfig, HookDocument, HookKind, HookSpec, Runtime,
    };
    use serde_json::json;

    const QUEUE: u64 = 10;

    /// An active function hook of organization 1 on queue 10, subscribed to
    /// `annotation_content`, running after `run_after`.
    fn hook(id: u64, run_after: &[u64]) -> Hook {
        Hook {
            id,
            organization_id: 1,
            spec: HookSpec {
                name: format!("hook {id}"),
                kind: HookKind::Function(FunctionConfig {
                    module_id: 7,
                    runtime: Runtime::Wasm,
                    timeout_s: None,
                    memory_size_mb: None,
                    retry_count: None,
                    allowed_hosts: AllowedHosts::default(),
                    common: CommonConfig::default(),
                }),
                active: true,
                queues: vec![QUEUE],
                run_after: run_after.to_vec(),
                token_owner: None,
                document: HookDocument {
                    events: vec!["annotation_content".into()],
                    sideload: Vec::new(),
                    metadata: Map::new(),
                    settings: Map::new(),
                    settings_schema: None,
                    secrets_schema: json!({"type": "object"}),
                    test: Map::new(),
                    description: None,
                    guide: None,
                    read_more_url: None,
                    extension_image_url: None,
                    extension_source: "custom".into(),
                    token_lifetime_s: None,
                },
            },
            secrets_keys: Vec::new(),
            sealed_secrets: None,
            created_at: String::new(),
            created_by: None,
            modified_at: String::new(),
            modified_by: None,
        }
    }

    fn initialize() -> EventAction {
        EventAction::new("annotation_content", "initialize").expect("a known event")
    }

    fn layers(hooks: &[Hook]) -> Vec<Vec<u64>> {
        EventPlan::new(hooks, &initialize(), Some(QUEUE))
            .layers()
            .to_vec()
    }

    /// Walks `plan` as the dispatcher does, each hook that runs ending as `ends` says
    /// (completed when not listed): every planned hook with how it ended, in run order.
    fn walk(plan: &EventPlan<'_>, ends: &[(u64, RunStatus)]) -> Vec<(u64, RunStatus)> {
        let mut finished: HashMap<u64, RunStatus> = HashMap::new();
        let mut order = Vec::new();
        for layer in plan.layers() {
            // A layer's steps are decided before any of its hooks finishes.
            let steps: Vec<(u64, Step)> = layer
                .iter()
                .map(|&id| (id, plan.step(id, |other| finished.get(&other).copied())))
                .collect();
            for (id, step) in steps {
                let status = match step {
                    Step::Cancel { .. } => RunStatus::Cancelled,
                    Step::Run { .. } => ends
                        .iter()
                        .find(|(hook, _)| *hook == id)
                        .map_or(RunStatus::Completed, |(_, status)| *status),
                };
                finished.insert(id, status);
                order.push((id, status));
            }
        }
        order
    }

    #[test]
    fn hooks_without_run_after_run_together_in_id_order() {
        let hooks = [hook(3, &[]), hook(1, &[]), hook(2, &[])];
        assert_eq!(layers(&hooks), [vec![1, 2, 3]]);
    }

    #[test]
    fn no_hook_no_layer() {
        assert!(layers(&[]).is_empty());
    }

    #[test]
    fn a_chain_runs_one_layer_per_hook() {
        let hooks = [hook(1, &[2]), hook(2, &[3]), hook(3, &[])];
        assert_eq!(layers(&hooks), [vec![3], vec![2], vec![1]]);
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(plan.ancestors(1), [3, 2], "in layer order");
        assert_eq!(plan.hook(2).id, 2);
    }

    #[test]
    fn a_diamond_runs_its_sides_together() {
        // A(1) → B(2), A → C(3), B → D(4), C → D.
        let hooks = [hook(1, &[]), hook(2, &[1]), hook(3, &[1]), hook(4, &[2, 3])];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(plan.layers(), [vec![1], vec![2, 3], vec![4]]);
        assert_eq!(plan.ancestors(4), [1, 2, 3]);
        assert_eq!(plan.ancestors(2), [1]);
        assert!(plan.ancestors(1).is_empty());
        assert_eq!(
            walk(&plan, &[]),
            [
                (1, RunStatus::Completed),
                (2, RunStatus::Completed),
                (3, RunStatus::Completed),
                (4, RunStatus::Completed),
            ]
        );
    }

    #[test]
    fn a_failed_side_of_a_diamond_cancels_its_bottom_only() {
        let hooks = [hook(1, &[]), hook(2, &[1]), hook(3, &[1]), hook(4, &[2, 3])];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(
            walk(&plan, &[(3, RunStatus::Timeout)]),
            [
                (1, RunStatus::Completed),
                (2, RunStatus::Completed),
                (3, RunStatus::Timeout),
                (4, RunStatus::Cancelled),
            ]
        );
        let statuses: HashMap<u64, RunStatus> = HashMap::from([
            (1, RunStatus::Completed),
            (2, RunStatus::Completed),
            (3, RunStatus::Timeout),
        ]);
        assert_eq!(
            plan.step(4, |id| statuses.get(&id).copied()),
            Step::Cancel { predecessor: 3 }
        );
    }

    #[test]
    fn the_first_failed_ancestor_in_layer_order_is_named() {
        let hooks = [hook(1, &[]), hook(2, &[1]), hook(3, &[1]), hook(4, &[2, 3])];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        let statuses: HashMap<u64, RunStatus> = HashMap::from([
            (1, RunStatus::Completed),
            (2, RunStatus::Failed),
            (3, RunStatus::Failed),
        ]);
        assert_eq!(
            plan.step(4, |id| statuses.get(&id).copied()),
            Step::Cancel { predecessor: 2 }
        );
    }

    #[test]
    fn a_failure_cancels_every_hook_after_it_transitively() {
        // 1 → 2 → 3 → 4, and 5 beside them.
        let hooks = [
            hook(1, &[]),
            hook(2, &[1]),
            hook(3, &[2]),
            hook(4, &[3]),
            hook(5, &[]),
        ];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(plan.layers(), [vec![1, 5], vec![2], vec![3], vec![4]]);
        assert_eq!(
            walk(&plan, &[(2, RunStatus::Failed)]),
            [
                (1, RunStatus::Completed),
                (5, RunStatus::Completed),
                (2, RunStatus::Failed),
                (3, RunStatus::Cancelled),
                (4, RunStatus::Cancelled),
            ]
        );
        // 4 names the first of its ancestors that did not complete: 2, not 3.
        let statuses: HashMap<u64, RunStatus> = HashMap::from([
            (1, RunStatus::Completed),
            (2, RunStatus::Failed),
            (3, RunStatus::Cancelled),
        ]);
        assert_eq!(
            plan.step(4, |id| statuses.get(&id).copied()),
            Step::Cancel { predecessor: 2 }
        );
    }

    #[test]
    fn a_completed_ancestry_runs_with_its_ancestors_in_layer_order() {
        let hooks = [hook(1, &[]), hook(2, &[1]), hook(3, &[2])];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        let statuses: HashMap<u64, RunStatus> =
            HashMap::from([(1, RunStatus::Completed), (2, RunStatus::Completed)]);
        assert_eq!(
            plan.step(3, |id| statuses.get(&id).copied()),
            Step::Run {
                ancestors: vec![1, 2]
            }
        );
    }

    #[test]
    fn a_chain_through_a_hook_that_does_not_run_keeps_its_order() {
        // 3 runs after 2, which runs after 1; 2 does not run for this event.
        let mut other_event = hook(2, &[1]);
        other_event.spec.document.events = vec!["upload".into()];
        let hooks = [hook(1, &[]), other_event, hook(3, &[2])];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(plan.layers(), [vec![1], vec![3]]);
        assert_eq!(plan.ancestors(3), [1]);
        assert_eq!(
            walk(&plan, &[(1, RunStatus::Failed)]),
            [(1, RunStatus::Failed), (3, RunStatus::Cancelled)]
        );
    }

    #[test]
    fn a_chain_through_several_inactive_hooks_keeps_its_order() {
        let mut two = hook(2, &[1]);
        two.spec.active = false;
        let mut three = hook(3, &[2]);
        three.spec.active = false;
        let hooks = [hook(4, &[3]), three, two, hook(1, &[])];
        assert_eq!(layers(&hooks), [vec![1], vec![4]]);
    }

    #[test]
    fn run_after_naming_an_unknown_hook_is_ignored() {
        // A deleted hook, or another organization's: not among the hooks given.
        let hooks = [hook(1, &[99]), hook(2, &[1, 98])];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(plan.layers(), [vec![1], vec![2]]);
        assert_eq!(plan.ancestors(2), [1]);
    }

    #[test]
    fn inactive_hooks_are_not_planned() {
        let mut inactive = hook(2, &[]);
        inactive.spec.active = false;
        let hooks = [hook(1, &[]), inactive, hook(3, &[2])];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(plan.layers(), [vec![1, 3]]);
        assert!(plan.ancestors(3).is_empty());
    }

    #[test]
    fn a_hook_not_on_the_events_queue_is_skipped() {
        let mut elsewhere = hook(2, &[]);
        elsewhere.spec.queues = vec![QUEUE + 1];
        let hooks = [hook(1, &[]), elsewhere];
        assert_eq!(layers(&hooks), [vec![1]]);
        // An event on no queue runs every subscribed hook, whatever its queues.
        let plan = EventPlan::new(&hooks, &initialize(), None);
        assert_eq!(plan.layers(), [vec![1, 2]]);
        // An event on the other queue runs only the hook on it.
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE + 1));
        assert_eq!(plan.layers(), [vec![2]]);
    }

    #[test]
    fn a_hook_on_no_queue_runs_only_for_events_on_no_queue() {
        let mut nowhere = hook(2, &[]);
        nowhere.spec.queues.clear();
        let hooks = [hook(1, &[]), nowhere];
        assert_eq!(layers(&hooks), [vec![1]]);
        let plan = EventPlan::new(&hooks, &initialize(), None);
        assert_eq!(plan.layers(), [vec![1, 2]]);
    }

    #[test]
    fn hooks_of_other_events_are_skipped() {
        let mut uploads = hook(2, &[]);
        uploads.spec.document.events = vec!["upload.created".into()];
        let mut other_action = hook(3, &[]);
        other_action.spec.document.events = vec!["annotation_content.export".into()];
        let mut this_action = hook(4, &[]);
        this_action.spec.document.events = vec!["annotation_content.initialize".into()];
        let hooks = [hook(1, &[]), uploads, other_action, this_action];
        assert_eq!(layers(&hooks), [vec![1, 4]]);
        let upload = EventAction::new("upload", "created").expect("a known event");
        let plan = EventPlan::new(&hooks, &upload, Some(QUEUE));
        assert_eq!(plan.layers(), [vec![2]]);
    }

    #[test]
    fn a_cycle_runs_its_hooks_one_at_a_time_in_id_order() {
        // 1 ↔ 2 (slipped past validation), 3 free, 4 after 1.
        let hooks = [hook(1, &[2]), hook(2, &[1]), hook(3, &[]), hook(4, &[1])];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(plan.layers(), [vec![3], vec![1], vec![2], vec![4]]);
        // Each hook of the cycle is its own ancestor.
        assert_eq!(plan.ancestors(1), [1, 2]);
        assert_eq!(plan.ancestors(2), [1, 2]);
        assert_eq!(plan.ancestors(4), [1, 2]);
        // Nothing has finished: the first of the cycle runs.
        assert_eq!(
            plan.step(1, |_| None),
            Step::Run {
                ancestors: vec![1, 2]
            }
        );
        assert_eq!(
            walk(&plan, &[]),
            [
                (3, RunStatus::Completed),
                (1, RunStatus::Completed),
                (2, RunStatus::Completed),
                (4, RunStatus::Completed),
            ]
        );
        // The first failing cancels the rest of the cycle and what comes after it.
        assert_eq!(
            walk(&plan, &[(1, RunStatus::Failed)]),
            [
                (3, RunStatus::Completed),
                (1, RunStatus::Failed),
                (2, RunStatus::Cancelled),
                (4, RunStatus::Cancelled),
            ]
        );
    }

    #[test]
    fn a_hook_after_itself_runs_once() {
        let hooks = [hook(1, &[1])];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(plan.layers(), [vec![1]]);
        assert_eq!(plan.ancestors(1), [1]);
        assert_eq!(walk(&plan, &[]), [(1, RunStatus::Completed)]);
    }

    #[test]
    fn a_cycle_through_a_hook_that_does_not_run_does_not_hang() {
        // 1 runs after 2, which does not run and runs after 1.
        let mut two = hook(2, &[1]);
        two.spec.active = false;
        let hooks = [hook(1, &[2]), two, hook(3, &[])];
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(plan.layers(), [vec![3], vec![1]]);
        assert_eq!(plan.ancestors(1), [1]);
    }

    #[test]
    fn a_large_cycle_is_planned() {
        let count = 200;
        let hooks: Vec<Hook> = (1..=count)
            .map(|id| hook(id, &[if id == count { 1 } else { id + 1 }]))
            .collect();
        let plan = EventPlan::new(&hooks, &initialize(), Some(QUEUE));
        assert_eq!(plan.layers().len(), 200);
        assert_eq!(plan.ancestors(1).len(), 200);
    }

    #[test]
    fn an_ancestor_not_finished_cancels_nothing() {
        assert_eq!(failed_predecessor(&[1, 2], |_| None), None);
        assert_eq!(
            failed_predecessor(&[1, 2], |id| (id == 2).then_some(RunStatus::Failed)),
            Some(2)
        );
        assert_eq!(
            failed_predecessor(&[1, 2], |_| Some(RunStatus::Completed)),
            None
        );
        assert_eq!(failed_predecessor(&[], |_| Some(RunStatus::Failed)), None);
    }

    fn annotated() -> Map<String, Value> {
        let body = json!({
            "annotation": {
                "id": 5,
                "content": [{
                    "id": 1,
                    "category": "section",
                    "children": [
                        {"id": 2, "category": "datapoint", "content": {"value": "a"}},
                        {"id": 3, "category": "datapoint", "content": {"value": "b"}},
                    ],
                }],
            },
        });
        body.as_object().cloned().unwrap_or_default()
    }

    fn replacing(id: u64, value: &str) -> Map<String, Value> {
        let response = json!({
            "operations": [{"op": "replace", "id": id, "value": {"content": {"value": value}}}],
        });
        response.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_hook_sees_its_predecessors_operations_in_order() {
        let body = annotated();
        let (first, second) = (replacing(2, "x"), replacing(2, "y"));
        let after = body_after(&body, [&first, &second, &replacing(3, "z")]);
        assert_eq!(
            after["annotation"]["content"][0]["children"][0]["content"]["value"],
            "y"
        );
        assert_eq!(
            after["annotation"]["content"][0]["children"][1]["content"]["value"],
            "z"
        );
        assert_eq!(after["updated_datapoints"], json!([2, 3]));
    }

    #[test]
    fn without_operations_or_content_the_keys_are_as_sent() {
        let body = annotated();
        let empty = Map::new();
        assert_eq!(body_after(&body, [&empty]), body);
        assert_eq!(body_after(&body, [] as [&Map<String, Value>; 0]), body);
        let mut no_content = Map::new();
        no_content.insert("document".into(), json!({"id": 1}));
        assert_eq!(body_after(&no_content, [&replacing(2, "x")]), no_content);
    }

    #[test]
    fn updated_datapoints_already_sent_are_kept_and_not_repeated() {
        let mut body = annotated();
        body.insert("updated_datapoints".into(), json!([3, 2]));
        let after = body_after(&body, [&replacing(2, "x")]);
        assert_eq!(after["updated_datapoints"], json!([3, 2]));
    }
}
