//! The planner's rules, one case each: cycles, diamonds, hooks that do not run for the
//! event, cancellation, queues.

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
                reuse_instances: None,
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
        hook_template: None,
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

/// [`body_after`] on keys parsed into a map, and its answer parsed back.
fn after<'r>(
    body: &Map<String, Value>,
    responses: impl IntoIterator<Item = &'r Map<String, Value>>,
) -> Map<String, Value> {
    body_after(&EventFields::from_map(body), responses).to_map()
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
    let after = after(&body, [&first, &second, &replacing(3, "z")]);
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
    assert_eq!(after(&body, [&empty]), body);
    assert_eq!(after(&body, [] as [&Map<String, Value>; 0]), body);
    let mut no_content = Map::new();
    no_content.insert("document".into(), json!({"id": 1}));
    assert_eq!(after(&no_content, [&replacing(2, "x")]), no_content);
}

#[test]
fn updated_datapoints_already_sent_are_kept_and_not_repeated() {
    let mut body = annotated();
    body.insert("updated_datapoints".into(), json!([3, 2]));
    let after = after(&body, [&replacing(2, "x")]);
    assert_eq!(after["updated_datapoints"], json!([3, 2]));
}

#[test]
fn the_subscribed_hooks_are_the_planned_ones_in_the_given_order() {
    let mut inactive = hook(2, &[]);
    inactive.spec.active = false;
    let mut elsewhere = hook(4, &[]);
    elsewhere.spec.queues = vec![QUEUE + 1];
    let hooks = [hook(5, &[1]), hook(1, &[]), inactive, elsewhere];
    let ids: Vec<u64> = subscribed(&hooks, &initialize(), Some(QUEUE))
        .iter()
        .map(|hook| hook.id)
        .collect();
    assert_eq!(ids, [5, 1], "in the order given, not run order");
    let planned: HashSet<u64> = layers(&hooks).into_iter().flatten().collect();
    assert_eq!(planned, ids.into_iter().collect::<HashSet<u64>>());
}
