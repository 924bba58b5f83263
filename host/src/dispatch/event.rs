//! Running an event: walking its [`EventPlan`] layer by layer, the hooks of a layer at
//! once, each run or cancelled as [`EventPlan::step`] says, and recorded. The rules (which
//! hooks, what order, who is cancelled) are the plan's; this is only the walk, with the
//! dispatcher's runs, and what it keeps of them: within budgets of bytes, the responses
//! its answer holds and the operations its later hooks' payloads are built from. Those
//! budgets, and the fold of an answer ([`EventAnswer`]), are a non-interactive event's too.

use std::borrow::Cow;
use std::collections::HashMap;

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{Map, Value};

use super::dispatcher::{check_permit, DispatchError, Dispatcher, RunResult};
use super::limits::RunPermit;
use super::plan::{body_after, operations_only, EventPlan, Step};
use crate::model::hook::{json_bytes, Hook};
use crate::model::{EventAction, EventFields, RunStatus};
use crate::trace_context::TRACE;

/// Bytes of an event's responses one answer about it holds (`POST /events`,
/// `GET /events/{id}`), in plan order: eight of the largest responses a hook may give
/// (1 MiB). An event may run `hooks_per_organization` (500) hooks: whole, an answer would
/// hold, parse and send up to 500 MiB, and a non-interactive event's may be asked for as
/// often as a member likes. A non-interactive event's answers read its deliveries'
/// responses up to it, the texts past it never read; an interactive event's walk
/// ([`Dispatcher::run_event`]) keeps its runs' responses up to it, each past it dropped as
/// soon as its run ends. Either way each response left out says so (`response_omitted`; its
/// run log holds it), and the answer's folded `messages`, `operations` and
/// `automation_blockers` are those of the responses held. An answer holds each response
/// twice at most: in its result, and its lists once more in the fold.
pub const ANSWERED_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// Bytes of its ancestors' responses a hook's payload is built from, in layer order:
/// eight of the largest responses a hook may give (1 MiB), which is also about what
/// [`MAX_OPERATIONS`] operations of a hundred bytes each take. Each turn of a
/// non-interactive delivery reads them, and one at the end of a run_after chain of 500
/// hooks would otherwise read up to 499 MiB at each turn, 500 times over the chain (on
/// SQLite through the connection every write waits for); an interactive event's walk would
/// keep them all in memory until its last hook's payload is built. Past it, the responses
/// left are not read (a delivery's) or not kept (an interactive run's), and their
/// operations not applied, with a warning, as past [`MAX_OPERATIONS`] operations. Of those
/// within it, only the `operations` are parsed (a delivery's) or kept once the answer no
/// longer holds the response (an interactive run's).
///
/// [`MAX_OPERATIONS`]: crate::model::content::MAX_OPERATIONS
pub const ANCESTOR_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// Characters of each run's message (its response's messages joined, up to a MiB) an
/// answer about an event holds: its first ones, or 500 messages would be as much as 500
/// responses. Its run log keeps it whole. A non-interactive event's answers cut it in the
/// statement that reads it (`substr(message, 1, 1024)` in `store/deliveries.rs`), an
/// interactive event's walk as each run ends (`cut_message`).
pub const ANSWERED_MESSAGE_CHARS: usize = 1024;

/// Cuts `message` to its first [`ANSWERED_MESSAGE_CHARS`] characters (at a character's
/// boundary), giving back the memory of the rest: what an answer holds of a run's message.
pub(crate) fn cut_message(message: &mut String) {
    if let Some((end, _)) = message.char_indices().nth(ANSWERED_MESSAGE_CHARS) {
        message.truncate(end);
        message.shrink_to_fit();
    }
}

/// One hook's part in an event: what `POST /events` answers for each hook, and what the
/// hooks after it are decided by.
#[derive(Debug, Clone)]
pub struct EventRun {
    /// The hook, by which those that run after it find how it ended.
    pub hook_id: u64,
    /// How its run ended.
    pub status: RunStatus,
    /// Its run log's message; in an answer, its first [`ANSWERED_MESSAGE_CHARS`]
    /// characters (the run log keeps it whole).
    pub message: String,
    /// Its response, when it completed and the answer holds it.
    pub response: Option<Map<String, Value>>,
    /// Whether it completed with a response that the answer does not hold: it came past
    /// [`ANSWERED_RESPONSE_BYTES`] in plan order. Its run log holds it; the answer says
    /// so, so that a client can tell a response left out from none.
    pub response_omitted: bool,
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
        EventAnswer::fold_ended(runs.iter().map(|run| (run.status, run.response.as_ref())))
    }

    /// Folds how runs ended and their responses, in order: for runs not held as
    /// [`EventRun`]s (a non-interactive event's deliveries, their responses parsed once).
    pub fn fold_ended<'r>(
        ended: impl IntoIterator<Item = (RunStatus, Option<&'r Map<String, Value>>)>,
    ) -> Self {
        let mut answer = EventAnswer::default();
        for (status, response) in ended {
            if status != RunStatus::Completed {
                answer.failed += 1;
            }
            let Some(response) = response else {
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
            response_omitted: false,
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
    ///
    /// The runs come back in plan order, each message cut to [`ANSWERED_MESSAGE_CHARS`]
    /// characters, and their responses up to [`ANSWERED_RESPONSE_BYTES`]: each past it is
    /// dropped as soon as its run ends, its run marked `response_omitted`. A hook's payload
    /// is built from its ancestors' operations up to [`ANCESTOR_RESPONSE_BYTES`] of their
    /// responses, in layer order, as a non-interactive delivery's is (see `Walk`).
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
        let mut walk = Walk::new(
            plan.layers()
                .iter()
                .flatten()
                .map(|&id| (id, plan.ancestors(id))),
            Budgets::SHARED,
        );
        for layer in plan.layers() {
            let steps: Vec<_> = layer
                .iter()
                .map(|&id| {
                    let hook = plan.hook(id);
                    check_permit(&permit, hook);
                    (id, hook, plan.step(id, |other| walk.status(other)))
                })
                .collect();
            // As many at once as the permit holds slots: a layer of more hooks than the
            // organization's share takes turns within it, the next starting as soon as any
            // ends. Each run is kept in its place in the layer as it ends, its response
            // dropped at once when it is past the answer's budget. A payload is built when
            // its run starts, not the layer's all at once: each may be a copy of the
            // event's keys, and a layer may hold hundreds of hooks.
            let at_once = permit.runs();
            let mut waiting = steps.into_iter().enumerate();
            let mut running = FuturesUnordered::new();
            let mut ending = walk.layer(layer);
            // The first error in the layer's order, answered once every run has ended.
            let mut failed: Option<(usize, DispatchError)> = None;
            loop {
                while running.len() < at_once {
                    let Some((place, (id, hook, step))) = waiting.next() else {
                        break;
                    };
                    let payload = match &step {
                        Step::Cancel { .. } => Cow::Borrowed(body),
                        Step::Run { .. } => walk.body_of(id, body),
                    };
                    walk.built(&[id]);
                    running.push(async move {
                        let run = self
                            .take_step(hook, &step, event, &payload, queue_id, request_id)
                            .await;
                        (place, run)
                    });
                }
                let Some((place, run)) = running.next().await else {
                    break;
                };
                match run {
                    Ok(run) => walk.ended(&mut ending, place, run),
                    Err(error) => {
                        if failed.as_ref().is_none_or(|(first, _)| place < *first) {
                            failed = Some((place, error));
                        }
                    }
                }
            }
            if let Some((_, error)) = failed {
                return Err(error);
            }
            walk.finish_layer(ending);
        }
        drop(permit);
        Ok(walk.results)
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

/// The budgets of bytes a [`Walk`] keeps responses within: [`Budgets::SHARED`], a
/// non-interactive event's too, or a test's smaller ones.
#[derive(Debug, Clone, Copy)]
struct Budgets {
    /// Bytes of responses the answer holds, in plan order.
    answer: u64,
    /// Bytes of its ancestors' responses a payload is built from, in layer order.
    ancestors: u64,
}

impl Budgets {
    /// [`ANSWERED_RESPONSE_BYTES`] and [`ANCESTOR_RESPONSE_BYTES`].
    const SHARED: Budgets = Budgets {
        answer: ANSWERED_RESPONSE_BYTES,
        ancestors: ANCESTOR_RESPONSE_BYTES,
    };
}

/// What an interactive event's walk keeps of its runs as they end, within [`Budgets`] of
/// bytes, by the rules a non-interactive event's answers and deliveries read its responses
/// by. The answer's results, in plan order, hold the responses up to the answer's budget: a
/// response found past it (the bytes of the responses before it in plan order and its own
/// over it) is dropped as soon as its run ends, or as soon as a run before it in its layer
/// ends and puts it past, not when the event ends. Each hook still to run is built from the
/// operations of its ancestors' responses up to the ancestors' budget, in layer order, as
/// a delivery is: of a response the answer dropped, the operations alone are kept, and
/// only while a payload still to build takes them. Before, every response was kept whole
/// until the last hook had run, each payload was built from its ancestors' whole
/// responses, and every one was answered: up to 500 hooks of 1 MiB each, parsed, per event.
///
/// A run's place in plan order within its layer is known when it starts, but its layer's
/// runs end in any order: one that has not ended counts for no bytes, so that the total
/// before a response only grows as more runs end, and one found past a budget stays past.
#[derive(Debug)]
struct Walk {
    budgets: Budgets,
    /// The runs of the layers that have ended, in plan order: the answer's results.
    results: Vec<EventRun>,
    /// Each of those runs' place in `results`.
    at: HashMap<u64, usize>,
    /// Bytes of the responses of the layers that have ended, those dropped included: the
    /// answer's budget spent.
    spent: u64,
    /// Each planned hook with ancestors whose payload is not built yet, and what it will
    /// be built from.
    payloads: HashMap<u64, Payload>,
    /// The operations of ended runs whose responses the answer dropped, while a payload
    /// still to build takes them.
    operations: HashMap<u64, Kept>,
    /// The bytes of all of `operations`: at most the ancestors' budget for the whole walk,
    /// since each payload's budget alone would let hundreds of hooks each keep a different
    /// ancestor's megabyte.
    kept_bytes: u64,
    /// The ended runs whose operations a payload took within its budget, but which were
    /// not kept: the walk's operations were at the budget. Their payloads warn.
    lost: std::collections::HashSet<u64>,
    /// How many payloads still to build take each ended run's operations.
    takers: HashMap<u64, usize>,
}

/// A dropped response's operations, kept for the payloads that take them.
#[derive(Debug)]
struct Kept {
    /// A map of that key alone, as [`body_after`] reads a response.
    operations: Map<String, Value>,
    /// Its JSON text's bytes.
    bytes: u64,
}

/// What the payload of a hook still to run is built from, gathered as its ancestors'
/// layers end.
#[derive(Debug, Default)]
struct Payload {
    /// The hooks it runs after, in layer order.
    ancestors: Vec<u64>,
    /// How many of `ancestors` are in the layers that have begun: those after are in the
    /// layers to come.
    begun: usize,
    /// Bytes of the responses of its ancestors whose layers have ended, in layer order,
    /// those past the budget included.
    spent: u64,
    /// The ancestors whose operations it takes, in layer order: those whose responses came
    /// within the budget.
    takes: Vec<u64>,
    /// How many of its ancestors' responses came past the budget.
    omitted: usize,
    /// The first of them.
    first_omitted: Option<u64>,
}

/// One layer's runs while they end, in any order, each in its place in the layer.
#[derive(Debug)]
struct LayerRuns {
    /// The layer's hooks, in plan order.
    ids: Vec<u64>,
    /// Each hook's run, once it has ended.
    runs: Vec<Option<EventRun>>,
    /// Each ended run's response's bytes (of its JSON text), when it gave one.
    bytes: Vec<Option<u64>>,
    /// Each hook still to run after some of this layer's: that hook, and the places in this
    /// layer of its ancestors, in order.
    later: Vec<(u64, Vec<usize>)>,
    /// The bytes of the operations of each ended run whose response the answer dropped.
    dropped: Vec<Option<u64>>,
    /// The bytes of operations this layer's runs may keep for the payloads still to build:
    /// what the ancestors' budget left when the layer began. Fixed then, so that which are
    /// kept depends on the places of the runs, not on the order they end in.
    allowance: u64,
}

impl Walk {
    /// The walk of a plan whose hooks are `planned`, each with its ancestors in layer order
    /// ([`EventPlan::ancestors`]), keeping responses within `budgets`.
    fn new(planned: impl IntoIterator<Item = (u64, Vec<u64>)>, budgets: Budgets) -> Self {
        let payloads = planned
            .into_iter()
            .filter(|(_, ancestors)| !ancestors.is_empty())
            .map(|(id, ancestors)| {
                let payload = Payload {
                    ancestors,
                    ..Payload::default()
                };
                (id, payload)
            })
            .collect();
        Walk {
            budgets,
            results: Vec::new(),
            at: HashMap::new(),
            spent: 0,
            payloads,
            operations: HashMap::new(),
            kept_bytes: 0,
            lost: std::collections::HashSet::new(),
            takers: HashMap::new(),
        }
    }

    /// Keeps run `id`'s operations (of `bytes`) for the payloads that take them, counted
    /// against the ancestors' budget ([`Walk::drop_past_budgets`] decides which may be).
    fn keep(&mut self, id: u64, operations: Map<String, Value>, bytes: u64) {
        self.forget(id);
        self.kept_bytes = self.kept_bytes.saturating_add(bytes);
        self.operations.insert(id, Kept { operations, bytes });
    }

    /// Drops run `id`'s kept operations, which no payload still to build takes.
    fn forget(&mut self, id: u64) {
        if let Some(kept) = self.operations.remove(&id) {
            self.kept_bytes = self.kept_bytes.saturating_sub(kept.bytes);
        }
    }

    /// Hook `id`'s run, once its layer has ended.
    fn run(&self, id: u64) -> Option<&EventRun> {
        self.results.get(*self.at.get(&id)?)
    }

    /// How hook `id`'s run ended, once its layer has: what [`EventPlan::step`] decides by.
    fn status(&self, id: u64) -> Option<RunStatus> {
        self.run(id).map(|run| run.status)
    }

    /// The payload keys of hook `id`, about to run: `body` with the operations of its
    /// ancestors' responses within the budget applied ([`body_after`]), and a warning
    /// naming those past it.
    ///
    /// A hook that takes nothing borrows `body`: a layer of hundreds of hooks would
    /// otherwise copy the event's keys (up to the 2 MiB of a request's body) for each.
    fn body_of<'b>(&self, id: u64, body: &'b EventFields) -> Cow<'b, EventFields> {
        let Some(payload) = self.payloads.get(&id) else {
            return Cow::Borrowed(body);
        };
        if let Some(first) = payload.first_omitted {
            tracing::warn!(
                "hook {id}: the responses of the hooks it runs after are over {} bytes; \
                 those of {} of them (hook {first} the first) are not kept, and their \
                 operations not applied to its payload",
                self.budgets.ancestors,
                payload.omitted
            );
        }
        let lost = payload
            .takes
            .iter()
            .filter(|ancestor| self.lost.contains(ancestor))
            .count();
        if lost > 0 {
            tracing::warn!(
                "hook {id}: the operations of {lost} of the hooks it runs after are not \
                 applied to its payload: the event's hooks still to run keep over {} bytes \
                 of operations",
                self.budgets.ancestors
            );
        }
        if payload.takes.is_empty() {
            return Cow::Borrowed(body);
        }
        let responses = payload.takes.iter().filter_map(|ancestor| {
            self.operations
                .get(ancestor)
                .map(|kept| &kept.operations)
                .or_else(|| self.run(*ancestor)?.response.as_ref())
        });
        Cow::Owned(body_after(body, responses))
    }

    /// The payloads of `layer`'s hooks are built: what they took is given back, and the
    /// operations no payload still to build takes are dropped.
    fn built(&mut self, layer: &[u64]) {
        for id in layer {
            let Some(payload) = self.payloads.remove(id) else {
                continue;
            };
            for ancestor in payload.takes {
                let left = match self.takers.get_mut(&ancestor) {
                    Some(takers) => {
                        *takers = takers.saturating_sub(1);
                        *takers
                    }
                    None => 0,
                };
                if left == 0 {
                    self.takers.remove(&ancestor);
                    self.forget(ancestor);
                }
            }
        }
    }

    /// `layer`'s runs, about to begin, to be kept as they end: each hook still to run after
    /// some of them finds their places.
    fn layer(&mut self, layer: &[u64]) -> LayerRuns {
        let places: HashMap<u64, usize> = layer
            .iter()
            .enumerate()
            .map(|(place, &id)| (id, place))
            .collect();
        let mut later = Vec::new();
        for (&id, payload) in &mut self.payloads {
            // Its ancestors are in layer order, and those of the layers before are behind
            // `begun`: this layer's, if any, come next.
            let mut mine = Vec::new();
            while let Some(place) = payload
                .ancestors
                .get(payload.begun)
                .and_then(|ancestor| places.get(ancestor).copied())
            {
                mine.push(place);
                payload.begun += 1;
            }
            if !mine.is_empty() {
                later.push((id, mine));
            }
        }
        LayerRuns {
            ids: layer.to_vec(),
            runs: layer.iter().map(|_| None).collect(),
            bytes: vec![None; layer.len()],
            later,
            dropped: vec![None; layer.len()],
            allowance: self.budgets.ancestors.saturating_sub(self.kept_bytes),
        }
    }

    /// The run at `place` in `layer` has ended: its message cut to what an answer holds,
    /// its response's bytes measured, and whatever is now past a budget dropped.
    fn ended(&mut self, layer: &mut LayerRuns, place: usize, mut run: EventRun) {
        cut_message(&mut run.message);
        let bytes = run
            .response
            .as_ref()
            .map(|response| u64::try_from(json_bytes(response)).unwrap_or(u64::MAX));
        if let (Some(slot), Some(size)) = (layer.runs.get_mut(place), layer.bytes.get_mut(place)) {
            *slot = Some(run);
            *size = bytes;
        }
        self.drop_past_budgets(layer);
    }

    /// Drops the responses of `layer`'s ended runs that are past the answer's budget, and
    /// the operations of those no payload still to build may take within its own.
    fn drop_past_budgets(&mut self, layer: &mut LayerRuns) {
        // The answer's: the responses of the layers ended, then this layer's, in plan order.
        let mut spent = self.spent;
        let mut dropped: Vec<(usize, Value)> = Vec::new();
        for (place, (run, bytes)) in layer.runs.iter_mut().zip(&layer.bytes).enumerate() {
            let (Some(run), Some(bytes)) = (run.as_mut(), *bytes) else {
                continue;
            };
            spent = spent.saturating_add(bytes);
            if spent <= self.budgets.answer {
                continue;
            }
            if let Some(mut response) = run.response.take() {
                run.response_omitted = true;
                if let Some(operations) = response.remove("operations") {
                    dropped.push((place, operations));
                }
            }
        }
        // Each payload's: its ancestors' responses of the layers ended, then this layer's,
        // in layer order. A response within one payload's budget may be taken.
        let mut taken = vec![false; layer.ids.len()];
        for (id, places) in &layer.later {
            let mut spent = self.payloads.get(id).map_or(0, |payload| payload.spent);
            for &place in places {
                let Some(bytes) = layer.bytes.get(place).copied().flatten() else {
                    continue;
                };
                spent = spent.saturating_add(bytes);
                if spent > self.budgets.ancestors {
                    break;
                }
                if let Some(slot) = taken.get_mut(place) {
                    *slot = true;
                }
            }
        }
        let mut newly: HashMap<usize, (Map<String, Value>, u64)> = HashMap::new();
        for (place, operations) in dropped {
            let only = operations_only(operations);
            let bytes = u64::try_from(json_bytes(&only)).unwrap_or(u64::MAX);
            if let Some(slot) = layer.dropped.get_mut(place) {
                *slot = Some(bytes);
            }
            newly.insert(place, (only, bytes));
        }
        // Kept: a run taken whose operations, with those of every dropped run before it in
        // the layer (taken or not), are within the layer's allowance. As runs end, what is
        // before a place only grows and what is taken only shrinks, so a run refused stays
        // refused and the runs kept at the end are those of the plan's order, whatever order
        // they ended in.
        let mut before = 0u64;
        for place in 0..layer.ids.len() {
            let (Some(&id), Some(&taken)) = (layer.ids.get(place), taken.get(place)) else {
                continue;
            };
            let Some(bytes) = layer.dropped.get(place).copied().flatten() else {
                continue;
            };
            before = before.saturating_add(bytes);
            let within = before <= layer.allowance;
            match newly.remove(&place) {
                Some((operations, bytes)) if taken && within => self.keep(id, operations, bytes),
                _ if taken && within => {}
                _ => {
                    if taken || self.operations.contains_key(&id) {
                        self.lost.insert(id);
                    }
                    self.forget(id);
                }
            }
        }
    }

    /// Every run of `layer` has ended: each payload still to build takes the operations of
    /// its ancestors' responses among them within its budget, and the runs join the
    /// answer's results.
    fn finish_layer(&mut self, layer: LayerRuns) {
        for (id, places) in &layer.later {
            let Some(payload) = self.payloads.get_mut(id) else {
                continue;
            };
            for &place in places {
                let (Some(bytes), Some(&ancestor)) = (
                    layer.bytes.get(place).copied().flatten(),
                    layer.ids.get(place),
                ) else {
                    continue;
                };
                payload.spent = payload.spent.saturating_add(bytes);
                if payload.spent <= self.budgets.ancestors {
                    payload.takes.push(ancestor);
                    *self.takers.entry(ancestor).or_insert(0) += 1;
                } else {
                    payload.omitted += 1;
                    payload.first_omitted = payload.first_omitted.or(Some(ancestor));
                }
            }
        }
        self.spent = layer
            .bytes
            .iter()
            .flatten()
            .fold(self.spent, |spent, bytes| spent.saturating_add(*bytes));
        for run in layer.runs.into_iter().flatten() {
            self.at.insert(run.hook_id, self.results.len());
            self.results.push(run);
        }
        let untaken: Vec<u64> = self
            .operations
            .keys()
            .filter(|id| !self.takers.contains_key(id))
            .copied()
            .collect();
        for id in untaken {
            self.forget(id);
        }
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
            response_omitted: false,
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

    /// Hook `id`'s completed run with run log message `message`, whose response sets
    /// datapoint `id` to "set": as many bytes for every id of one digit.
    fn setting(id: u64, message: &str) -> EventRun {
        let response = json!({
            "messages": [{"type": "info", "content": "m"}],
            "operations": [{"op": "replace", "id": id, "value": {"content": {"value": "set"}}}],
        });
        EventRun {
            hook_id: id,
            message: message.to_owned(),
            ..run(RunStatus::Completed, Some(response))
        }
    }

    /// An event's keys: an annotation whose content is one section of datapoints 1 to
    /// `count`, each of value "0".
    fn datapoints_event(count: u64) -> EventFields {
        let content: Vec<Value> = (1..=count)
            .map(|id| json!({"id": id, "category": "datapoint", "content": {"value": "0"}}))
            .collect();
        let keys = json!({"annotation": {"id": 7, "content": [
            {"id": 100, "category": "section", "children": content}
        ]}});
        EventFields::from_map(keys.as_object().unwrap_or(&Map::new()))
    }

    /// The bytes of [`setting`]'s response for an id of one digit.
    fn one_response() -> u64 {
        let bytes = setting(1, "m")
            .response
            .map_or(0, |response| json_bytes(&response));
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }

    /// Which of `layer`'s ended runs' responses are held now, in its order.
    fn held(layer: &LayerRuns) -> Vec<bool> {
        layer
            .runs
            .iter()
            .map(|run| run.as_ref().is_some_and(|run| run.response.is_some()))
            .collect()
    }

    #[test]
    fn a_message_is_cut_to_its_first_characters_at_a_boundary() {
        let mut message = "é".repeat(ANSWERED_MESSAGE_CHARS + 10);
        cut_message(&mut message);
        assert_eq!(message.chars().count(), ANSWERED_MESSAGE_CHARS);
        assert_eq!(message.len(), 2 * ANSWERED_MESSAGE_CHARS, "two bytes each");
        let mut short = "short".to_owned();
        cut_message(&mut short);
        assert_eq!(short, "short");
    }

    /// The answer holds its responses in plan order up to its budget, whatever order a
    /// layer's runs end in: a response is dropped as soon as the runs before it that have
    /// ended put it past, and stays dropped; each marked, the fold of those held.
    #[test]
    fn responses_past_the_answers_budget_are_dropped_as_runs_end_in_any_order() {
        let size = one_response();
        let budgets = Budgets {
            answer: 2 * size,
            ancestors: 2 * size,
        };
        let mut walk = Walk::new([(1, Vec::new()), (2, Vec::new()), (3, Vec::new())], budgets);
        walk.built(&[1, 2, 3]);
        let mut layer = walk.layer(&[1, 2, 3]);
        let long = "é".repeat(ANSWERED_MESSAGE_CHARS + 1);
        walk.ended(&mut layer, 2, setting(3, "c"));
        assert_eq!(held(&layer), [false, false, true]);
        walk.ended(&mut layer, 0, setting(1, &long));
        assert_eq!(held(&layer), [true, false, true], "two within the budget");
        walk.ended(&mut layer, 1, setting(2, "b"));
        assert_eq!(
            held(&layer),
            [true, true, false],
            "the second put the third past it"
        );
        walk.finish_layer(layer);
        let results = walk.results;
        let ids: Vec<u64> = results.iter().map(|run| run.hook_id).collect();
        assert_eq!(ids, [1, 2, 3], "in plan order");
        let omitted: Vec<bool> = results.iter().map(|run| run.response_omitted).collect();
        assert_eq!(omitted, [false, false, true]);
        assert_eq!(
            results[0].message.chars().count(),
            ANSWERED_MESSAGE_CHARS,
            "cut"
        );
        let folded = EventAnswer::fold(&results);
        assert_eq!(folded.operations.len(), 2, "the fold is of those held");
        assert_eq!(folded.messages.len(), 2);
        assert!(walk.operations.is_empty(), "no hook runs after them");
    }

    /// A hook's payload takes the operations of its ancestors' responses within its
    /// budget, in layer order; of a response the answer dropped, only the operations are
    /// kept, and only while a payload still to build takes them.
    #[test]
    fn a_payload_takes_its_ancestors_operations_within_its_budget() {
        let size = one_response();
        let budgets = Budgets {
            answer: size,
            ancestors: 2 * size,
        };
        let planned = [
            (1, Vec::new()),
            (2, Vec::new()),
            (3, Vec::new()),
            (4, vec![1, 2, 3]),
        ];
        let mut walk = Walk::new(planned, budgets);
        walk.built(&[1, 2, 3]);
        let mut layer = walk.layer(&[1, 2, 3]);
        walk.ended(&mut layer, 2, setting(3, "c"));
        assert!(walk.operations.is_empty(), "the answer holds the third's");
        walk.ended(&mut layer, 0, setting(1, "a"));
        assert_eq!(held(&layer), [true, false, false]);
        assert_eq!(
            walk.operations.keys().copied().collect::<Vec<u64>>(),
            [3],
            "dropped from the answer, still within the fourth's budget"
        );
        walk.ended(&mut layer, 1, setting(2, "b"));
        assert_eq!(
            walk.operations.keys().copied().collect::<Vec<u64>>(),
            [2],
            "the third's is past the fourth's budget now"
        );
        walk.finish_layer(layer);

        let body = datapoints_event(3);
        let built = Value::Object(walk.body_of(4, &body).to_map());
        let values: Vec<Value> = (0..3)
            .map(|index| {
                built["annotation"]["content"][0]["children"][index]["content"]["value"].clone()
            })
            .collect();
        assert_eq!(values, [json!("set"), json!("set"), json!("0")]);
        assert_eq!(built["updated_datapoints"], json!([1, 2]));
        walk.built(&[4]);
        assert!(walk.operations.is_empty(), "no payload left to take them");
        assert!(walk.takers.is_empty());

        // The fourth's own response is past the answer's budget too, however small.
        let mut layer = walk.layer(&[4]);
        let small = EventRun {
            hook_id: 4,
            ..run(RunStatus::Completed, Some(json!({})))
        };
        walk.ended(&mut layer, 0, small);
        walk.finish_layer(layer);
        let omitted: Vec<bool> = walk
            .results
            .iter()
            .map(|run| run.response_omitted)
            .collect();
        assert_eq!(omitted, [false, true, true, true]);
    }

    /// Three layers: hook 1, then hook 2 after it, then hook 3 after both. The answer holds
    /// no response (its budget is none), so an ancestor's operations are kept alone, and
    /// only while a payload still to build takes them: hook 1's until hook 3's payload is
    /// built, though hook 2's (which took them too) was built a layer before.
    #[test]
    fn an_ancestors_operations_are_kept_until_the_last_payload_taking_them_is_built() {
        let budgets = Budgets {
            answer: 0,
            ancestors: 10 * one_response(),
        };
        let planned = [(1, Vec::new()), (2, vec![1]), (3, vec![1, 2])];
        let mut walk = Walk::new(planned, budgets);
        let body = datapoints_event(2);
        let values = |built: &EventFields| -> Vec<Value> {
            let built = Value::Object(built.to_map());
            (0..2)
                .map(|index| {
                    built["annotation"]["content"][0]["children"][index]["content"]["value"].clone()
                })
                .collect()
        };

        assert!(
            matches!(walk.body_of(1, &body), Cow::Borrowed(_)),
            "it takes nothing"
        );
        walk.built(&[1]);
        let mut layer = walk.layer(&[1]);
        walk.ended(&mut layer, 0, setting(1, "a"));
        assert_eq!(held(&layer), [false], "past the answer's budget of none");
        walk.finish_layer(layer);
        assert_eq!(walk.takers.get(&1), Some(&2), "hooks 2 and 3 take hook 1's");

        let second = walk.body_of(2, &body);
        assert_eq!(values(&second), [json!("set"), json!("0")]);
        walk.built(&[2]);
        assert_eq!(walk.takers.get(&1), Some(&1));
        assert!(walk.operations.contains_key(&1), "hook 3 still takes them");
        let mut layer = walk.layer(&[2]);
        walk.ended(&mut layer, 0, setting(2, "b"));
        walk.finish_layer(layer);

        let third = walk.body_of(3, &body);
        assert_eq!(values(&third), [json!("set"), json!("set")]);
        walk.built(&[3]);
        assert!(walk.operations.is_empty(), "no payload left to take them");
        assert!(walk.takers.is_empty());
        let omitted: Vec<bool> = walk
            .results
            .iter()
            .map(|run| run.response_omitted)
            .collect();
        assert_eq!(omitted, [true, true]);
    }

    /// Two hooks each after a hook of its own, in the layer before: each payload's budget
    /// takes its one ancestor, but the walk keeps operations up to the ancestors' budget in
    /// all, so the second ancestor's, past it, are lost, and its payload is built without
    /// them (with a warning) rather than every payload's ancestors kept at once.
    #[test]
    fn the_walks_kept_operations_are_held_to_the_ancestors_budget_in_all() {
        let size = one_response();
        // A response's operations alone are more than half of it: two are past it.
        let budgets = Budgets {
            answer: 0,
            ancestors: size,
        };
        let planned = [(1, Vec::new()), (2, Vec::new()), (3, vec![1]), (4, vec![2])];
        let mut walk = Walk::new(planned, budgets);
        walk.built(&[1, 2]);
        let mut layer = walk.layer(&[1, 2]);
        walk.ended(&mut layer, 0, setting(1, "a"));
        walk.ended(&mut layer, 1, setting(2, "b"));
        assert_eq!(walk.operations.keys().copied().collect::<Vec<u64>>(), [1]);
        assert!(walk.lost.contains(&2), "past the budget in all");
        assert!(walk.kept_bytes <= budgets.ancestors);
        walk.finish_layer(layer);

        let body = datapoints_event(2);
        let value = |built: &EventFields, index: usize| {
            Value::Object(built.to_map())["annotation"]["content"][0]["children"][index]["content"]
                ["value"]
                .clone()
        };
        let third = walk.body_of(3, &body);
        assert_eq!(value(&third, 0), json!("set"), "hook 1's, kept");
        let fourth = walk.body_of(4, &body);
        assert_eq!(value(&fourth, 1), json!("0"), "hook 2's, lost");
        walk.built(&[3, 4]);
        assert!(walk.operations.is_empty());
        assert_eq!(walk.kept_bytes, 0, "given back with them");

        // The same runs ending the other way round keep the same: hook 2's, kept while it
        // was the only one ended, is lost once hook 1's, before it in the layer, ends.
        let mut walk = Walk::new(
            [(1, Vec::new()), (2, Vec::new()), (3, vec![1]), (4, vec![2])],
            budgets,
        );
        walk.built(&[1, 2]);
        let mut layer = walk.layer(&[1, 2]);
        walk.ended(&mut layer, 1, setting(2, "b"));
        assert_eq!(walk.operations.keys().copied().collect::<Vec<u64>>(), [2]);
        walk.ended(&mut layer, 0, setting(1, "a"));
        assert_eq!(walk.operations.keys().copied().collect::<Vec<u64>>(), [1]);
        assert!(walk.lost.contains(&2));
        assert!(walk.kept_bytes <= budgets.ancestors);
    }
}
