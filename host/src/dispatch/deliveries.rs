//! A non-interactive event's runs as durable deliveries (`store::deliveries`): the event and
//! one row per hook are committed first, the accepting replica then makes the first
//! attempts it can at once, and everything after (a retry, an async webhook's polling, a
//! run_after successor whose predecessor is retrying, a scheduled run) is a turn that any
//! replica's worker claims when it falls due. No request waits for a retry or a poll, and
//! a killed or restarted replica loses nothing: its leases expire and another takes its
//! deliveries over, logging an attempt it interrupted as failed so that every attempt has
//! its one run log.
//!
//! A turn is one step of one delivery: an attempt (a module's call or a webhook's first
//! request), or one poll of an accepted webhook call. Its end and the attempt's run log are
//! committed together, and only while this replica still holds the lease
//! (`Deliveries::finish`). When a delivery is done, the next layer of the event's plan is
//! promoted (run, or cancelled when an ancestor did not complete, as [`super::plan`]
//! says), and the promoted deliveries are leased to the replica that finished the layer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use super::dispatcher::{attempts, check_permit, AttemptEnd, Attempted, DispatchError, RunToken};
use super::event::{ANCESTOR_RESPONSE_BYTES, ANSWERED_RESPONSE_BYTES};
use super::limits::{reserved_mb, RunPermit};
use super::plan::{body_after, failed_predecessor, operations_only, EventPlan};
use super::webhook::{self, PollAnswer};
use super::writer::log_run;
use super::Dispatcher;
use crate::metrics::metrics;
use crate::model::hook::{Hook, HookKind};
use crate::model::{format_rfc3339, now_rfc3339, EventAction, EventFields, RunStatus};
use crate::store::deliveries::{
    Claimed, Delivery, DeliveryState, EventRow, GivenBack, Lease, NewDelivery, NewEvent, Next,
    Polled, Promotion, Turn,
};
use crate::store::run_logs::RunLogRow;
use crate::store::StoreError;
use crate::trace_context::TRACE;

/// An event and its deliveries, in plan order: what `POST /events` and
/// `GET /events/{id}` answer.
#[derive(Debug, Clone)]
pub struct EventProgress {
    /// The event.
    pub event: EventRow,
    /// One per hook it runs.
    pub deliveries: Vec<Delivery>,
}

impl EventProgress {
    /// Whether every delivery is done.
    pub fn finished(&self) -> bool {
        self.deliveries
            .iter()
            .all(|delivery| delivery.state == DeliveryState::Done)
    }
}

/// Where one delivery is, as its event's answer names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryPhase {
    /// Waiting for the hooks it runs after.
    Waiting,
    /// Due for its first attempt.
    Pending,
    /// An attempt is being made.
    Running,
    /// An attempt failed; the next one is due later.
    Retrying,
    /// Its webhook accepted the call; the result is being polled.
    Polling,
    /// Done: its status is final.
    Finished,
}

impl DeliveryPhase {
    /// The phase of `delivery`.
    pub fn of(delivery: &Delivery) -> Self {
        match (delivery.state, &delivery.poll) {
            (DeliveryState::Waiting, _) => DeliveryPhase::Waiting,
            (DeliveryState::Done, _) => DeliveryPhase::Finished,
            (_, Some(_)) => DeliveryPhase::Polling,
            (DeliveryState::Running, None) => DeliveryPhase::Running,
            (DeliveryState::Ready, None) if delivery.status.is_some() => DeliveryPhase::Retrying,
            (DeliveryState::Ready, None) => DeliveryPhase::Pending,
        }
    }

    /// Its name in an answer.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryPhase::Waiting => "waiting",
            DeliveryPhase::Pending => "pending",
            DeliveryPhase::Running => "running",
            DeliveryPhase::Retrying => "retrying",
            DeliveryPhase::Polling => "polling",
            DeliveryPhase::Finished => "finished",
        }
    }
}

/// Turns one replica takes at once; more due deliveries wait for the next claim.
const TURNS_AT_ONCE: usize = 64;
/// Deliveries claimed in one statement.
const CLAIMED_AT_ONCE: usize = 16;
/// The longest the worker sleeps without looking (other replicas' retries fall due
/// without telling it).
const IDLE_LOOK: Duration = Duration::from_secs(1);
/// The shortest: something due that another replica is claiming is not looked at in a
/// busy loop.
const BUSY_LOOK: Duration = Duration::from_millis(20);
/// How often the worker looks for events no delivery moves on.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// How long a delivery whose organization has no free run waits before it is claimed again.
const NO_TURN_WAIT_MS: i64 = 1_000;

/// Unix milliseconds now.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Dispatcher {
    /// A lease on deliveries for one claim of this replica, from now: its owner names the
    /// replica and the claim, so that a replica claiming its own expired row again cannot
    /// end it twice.
    fn lease(&self) -> Lease {
        Lease {
            owner: format!("{}/{}", self.replica, uuid::Uuid::new_v4()),
            until_ms: now_ms().saturating_add(millis(self.settings.lease)),
        }
    }

    /// Accepts a non-interactive event: records it with one delivery per hook that
    /// subscribes to it (and the queue, when given), in run_after order, then makes every
    /// first attempt it can at once under `permit` (the organization's, for as many runs as
    /// the plan has hooks). Answers the event as those attempts left it; none when no hook
    /// runs for it. What is left (retries, polling, successors of a retrying hook) is the
    /// workers'.
    pub async fn deliver_event(
        self: &Arc<Self>,
        permit: RunPermit,
        hooks: &[Hook],
        event: &EventAction,
        queue_id: Option<u64>,
        body: &EventFields,
        request_id: &str,
    ) -> Result<Option<EventProgress>, DispatchError> {
        let plan = EventPlan::new(hooks, event, queue_id);
        if plan.layers().is_empty() {
            return Ok(None);
        }
        let mut deliveries = Vec::new();
        for (layer, ids) in plan.layers().iter().enumerate() {
            for &id in ids {
                let hook = plan.hook(id);
                check_permit(&permit, hook);
                deliveries.push(NewDelivery {
                    hook_id: id,
                    layer: u32::try_from(layer).unwrap_or(u32::MAX),
                    ancestors: plan.ancestors(id),
                    max_attempts: attempts(hook, event),
                });
            }
        }
        let new = NewEvent {
            organization_id: permit.organization_id(),
            request_id: request_id.to_owned(),
            event: event.event().to_owned(),
            action: event.action().to_owned(),
            queue_id,
            body: body.to_json(),
            created_at: now_rfc3339(),
            deliveries,
        };
        let limit = self.settings.unfinished_per_organization;
        let (row, first) = self
            .store
            .deliveries()
            .enqueue(new, Some(self.lease()), now_ms(), limit)
            .await?
            .ok_or(DispatchError::Backlog { limit })?;
        let id = row.id;
        let claimed = first
            .into_iter()
            .map(|delivery| Claimed {
                delivery,
                event: row.clone(),
                interrupted: false,
            })
            .collect();
        // A task of its own: a client that goes away must not drop a turn in the middle
        // (its delivery would wait for its lease to run out, and count as interrupted).
        let dispatcher = Arc::clone(self);
        let since = crate::store::read_moment();
        let driving = tokio::spawn(crate::store::reads_since(since, async move {
            let at_once = permit.runs();
            dispatcher.drive(claimed, true, at_once).await;
            drop(permit);
        }));
        if let Err(error) = driving.await {
            tracing::error!("the first attempts of event {id} ended abnormally: {error}");
        }
        self.wake.notify_one();
        Ok(self.event_progress(id, None).await?)
    }

    /// Event `id` and its deliveries; only `organization`'s when given. Their responses
    /// are read up to [`ANSWERED_RESPONSE_BYTES`]; those past it are left out, marked
    /// (`Delivery::response_omitted`).
    pub async fn event_progress(
        &self,
        id: u64,
        organization: Option<u64>,
    ) -> Result<Option<EventProgress>, StoreError> {
        Ok(self
            .store
            .deliveries()
            .event(id, organization, ANSWERED_RESPONSE_BYTES)
            .await?
            .map(|(event, deliveries)| EventProgress { event, deliveries }))
    }

    /// Claims due deliveries and takes their turns, until the future is dropped: every
    /// replica runs one. It sleeps until the next delivery falls due (at most a second,
    /// since other replicas schedule without telling it), or until this replica schedules
    /// something itself.
    pub async fn work_deliveries(self: Arc<Self>) {
        let turns = Arc::new(Semaphore::new(TURNS_AT_ONCE));
        let busy = Busy::default();
        let mut swept = tokio::time::Instant::now();
        let mut seen_stalled = Vec::new();
        loop {
            if swept.elapsed() >= SWEEP_EVERY {
                swept = tokio::time::Instant::now();
                seen_stalled = self.sweep(&turns, &seen_stalled).await;
            }
            let free = turns.available_permits().min(CLAIMED_AT_ONCE);
            let mut claimed_all = false;
            // Left out: the organizations whose share of the turns is taken, and those with
            // no run free here (claimed, their deliveries would only be given back, a write
            // every second). A turn's end wakes the worker to look again.
            let mut skipped = busy.full();
            skipped.extend(self.limits.saturated());
            skipped.sort_unstable();
            skipped.dedup();
            if free > 0 {
                match self
                    .store
                    .deliveries()
                    .claim(self.lease(), now_ms(), free, skipped.clone())
                    .await
                {
                    Ok(claimed) => {
                        claimed_all = claimed.len() == free;
                        let mut untaken = Vec::new();
                        for one in claimed {
                            let organization = one.delivery.organization_id;
                            // An interrupted attempt is logged now whatever the cap: given
                            // back, it would be claimed as a fresh one and never logged.
                            let share = match busy.take(organization) {
                                Some(share) => share,
                                None if one.interrupted => busy.force(organization),
                                None => {
                                    untaken.push(GivenBack::from(&one));
                                    continue;
                                }
                            };
                            let Ok(turn) = Arc::clone(&turns).try_acquire_owned() else {
                                untaken.push(GivenBack::from(&one));
                                continue;
                            };
                            let dispatcher = Arc::clone(&self);
                            tokio::spawn(async move {
                                dispatcher.drive(vec![one], false, usize::MAX).await;
                                drop((turn, share));
                                // A turn or a run freed: what was skipped may be claimed.
                                dispatcher.wake.notify_one();
                            });
                        }
                        if !untaken.is_empty() {
                            self.give_back(untaken, NO_TURN_WAIT_MS).await;
                            // No claiming again at once: those it gives back would be
                            // claimed and given back in a loop.
                            claimed_all = false;
                        }
                    }
                    Err(error) => tracing::warn!("claiming deliveries failed: {error}"),
                }
            }
            if claimed_all {
                continue;
            }
            let wait = match self.store.deliveries().outlook(&skipped).await {
                Ok((next, pending)) => {
                    if let Some(metrics) = metrics() {
                        metrics
                            .deliveries_pending
                            .set(i64::try_from(pending).unwrap_or(i64::MAX));
                    }
                    next.map_or(IDLE_LOOK, |at| {
                        let until = Duration::from_millis(
                            u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0),
                        );
                        until.clamp(BUSY_LOOK, IDLE_LOOK)
                    })
                }
                Err(error) => {
                    tracing::warn!("looking at deliveries failed: {error}");
                    IDLE_LOOK
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// Gives claimed deliveries back untaken, ready again in `after_ms`, with nothing
    /// recorded and the attempt each claim counted taken back; one write for them all. One
    /// not given back keeps its lease, and is taken over when the lease runs out.
    async fn give_back(&self, untaken: Vec<GivenBack>, after_ms: i64) {
        let (count, first) = (untaken.len(), untaken.first().map_or(0, |one| one.id));
        let run_at_ms = now_ms().saturating_add(after_ms);
        if let Err(error) = self.store.deliveries().give_back(untaken, run_at_ms).await {
            tracing::warn!(
                "{count} deliveries (delivery {first} the first) could not be given back: {error}"
            );
        }
    }

    /// Advances the events no delivery moves on ([`Deliveries::stalled`]): the replica that
    /// finished a layer died before promoting the next, or before closing the event. The
    /// deliveries it promotes are this replica's to take.
    ///
    /// [`Deliveries::stalled`]: crate::store::deliveries::Deliveries::stalled
    ///
    /// An event is advanced only when the sweep before (2 s earlier) found it stalled too:
    /// the replica finishing a layer is, for a moment, between its end and its own
    /// promotion of the next, and that one is not to be taken from it. Answers this
    /// sweep's stalled events, for the next.
    async fn sweep(self: &Arc<Self>, turns: &Arc<Semaphore>, seen_before: &[u64]) -> Vec<u64> {
        let stalled = match self.store.deliveries().stalled(CLAIMED_AT_ONCE).await {
            Ok(stalled) => stalled,
            Err(error) => {
                tracing::warn!("looking for stalled events failed: {error}");
                return Vec::new();
            }
        };
        for &id in stalled.iter().filter(|id| seen_before.contains(id)) {
            match self.advance(id).await {
                Ok(promoted) if !promoted.is_empty() => {
                    // Leased already: taken at once, past the worker's bound if need be,
                    // rather than left to their lease.
                    let turn = Arc::clone(turns).try_acquire_owned().ok();
                    let dispatcher = Arc::clone(self);
                    tokio::spawn(async move {
                        dispatcher.drive(promoted, false, usize::MAX).await;
                        drop(turn);
                    });
                }
                Ok(_) => {}
                Err(error) => tracing::warn!("advancing stalled event {id} failed: {error}"),
            }
        }
        stalled
    }

    /// Extends the leases of the deliveries this replica's turns hold, every third of
    /// their length, until the future is dropped: a replica that stops (kill -9 included)
    /// stops extending, and so does one whose turn ended abnormally (its guard is gone),
    /// and those deliveries are taken over once the lease runs out.
    pub async fn keep_leases(self: Arc<Self>) {
        let every = self.settings.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            let held: Vec<(u64, String)> = self
                .held
                .lock()
                .map(|held| {
                    held.iter()
                        .map(|(id, owner)| (*id, owner.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if held.is_empty() {
                continue;
            }
            let until = self.lease().until_ms;
            if let Err(error) = self.store.deliveries().extend(held, until).await {
                tracing::warn!("extending the delivery leases failed: {error}");
            }
        }
    }

    /// Takes the turns of `claimed` (leased to this replica) at once, and of whatever
    /// each end leases to it (the next layer of its event) as soon as that end is
    /// committed, until none is left; at most `at_once` under way. `admitted`: the caller
    /// holds the organization's run permit for them all, and `at_once` is its slots, so
    /// that an event of more hooks than the organization's share never runs more than the
    /// share at once. Those beyond are given back at once (the attempt their claim counted
    /// taken back), rather than held leased here for as long as the others run: the
    /// workers take them, each under a permit of its own, once the organization has slots
    /// free.
    async fn drive(&self, claimed: Vec<Claimed>, admitted: bool, at_once: usize) {
        let at_once = at_once.max(1);
        let mut turns = FuturesUnordered::new();
        let mut next = claimed;
        loop {
            let room = at_once.saturating_sub(turns.len());
            let beyond = next.split_off(room.min(next.len()));
            for claimed in next {
                turns.push(self.turn(claimed, admitted));
            }
            if !beyond.is_empty() {
                self.give_back(beyond.iter().map(GivenBack::from).collect(), 0)
                    .await;
            }
            let Some(promoted) = turns.next().await else {
                break;
            };
            next = promoted;
        }
    }

    /// One turn of a claimed delivery; the deliveries its end leased to this replica. A
    /// turn that fails is logged as a failed attempt (retried as the hook allows, so that
    /// an error that repeats ends with the attempts), or, when even that cannot be done,
    /// given back for a later turn, so that no lease is renewed for a delivery nobody is
    /// taking.
    async fn turn(&self, claimed: Claimed, admitted: bool) -> Vec<Claimed> {
        let delivery = claimed.delivery.clone();
        let row = claimed.event.clone();
        let counted = claimed.counted();
        let _held = Held::new(
            &self.held,
            delivery.id,
            delivery.lease_owner.clone().unwrap_or_default(),
        );
        let error = match self.take_turn(claimed, admitted).await {
            Ok(next) => return next,
            Err(error) => error,
        };
        let id = delivery.id;
        tracing::warn!("delivery {id}: {error}");
        match self.fail_turn(&delivery, &row, &error).await {
            Ok(next) => next,
            Err(again) => {
                tracing::warn!("delivery {id} could not be logged ({again}); given back");
                let later = millis(self.settings.retry_delay_cap);
                self.give_back(vec![GivenBack::new(&delivery, counted)], later)
                    .await;
                Vec::new()
            }
        }
    }

    /// Ends a turn that failed with `error` as a failed attempt with its run log.
    async fn fail_turn(
        &self,
        delivery: &Delivery,
        row: &EventRow,
        error: &DispatchError,
    ) -> Result<Vec<Claimed>, DispatchError> {
        let hook = self
            .store
            .hook(delivery.hook_id)
            .await?
            .filter(|hook| hook.organization_id == delivery.organization_id);
        let event = stored_event(row)?;
        let Some(hook) = hook else {
            let done = hook_deleted();
            return self.end_turn(delivery, done, None).await;
        };
        let log = self
            .unrun_for(&hook, &event, &event_body(row), row)?
            .failed_log(&format!("failed: {error}"));
        let next = self.after_attempt(delivery, true, &log);
        self.end_turn(delivery, next, Some(&log)).await
    }

    #[tracing::instrument(
        target = TRACE,
        name = "hook run",
        skip_all,
        fields(
            hook = claimed.delivery.hook_id,
            organization = claimed.delivery.organization_id,
            delivery = claimed.delivery.id,
            attempt = claimed.delivery.attempt,
        ),
    )]
    async fn take_turn(
        &self,
        claimed: Claimed,
        admitted: bool,
    ) -> Result<Vec<Claimed>, DispatchError> {
        let Claimed {
            delivery,
            event: row,
            interrupted,
        } = claimed;
        let event = stored_event(&row)?;
        let hook = self
            .store
            .hook(delivery.hook_id)
            .await?
            .filter(|hook| hook.organization_id == delivery.organization_id);
        let Some(hook) = hook else {
            let done = hook_deleted();
            return self.end_turn(&delivery, done, None).await;
        };
        if interrupted {
            let body = self.body_of(&row, &delivery).await?;
            // An attempt is counted when it is claimed, so the replica may have stopped
            // before the extension ran as well as during it: which, nobody knows.
            let reason = "failed: the replica that took this attempt stopped before it \
                          ended; whether the extension ran, and how, is unknown";
            let log = self
                .unrun_for(&hook, &event, &body, &row)?
                .failed_log(reason);
            let next = self.after_attempt(&delivery, true, &log);
            return self.end_turn(&delivery, next, Some(&log)).await;
        }
        let _permit = if admitted {
            None
        } else {
            match self
                .limits
                .try_acquire(hook.organization_id, 1, reserved_mb(&hook))
            {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let later = Next::Later {
                        run_at_ms: now_ms().saturating_add(NO_TURN_WAIT_MS),
                        uncount: delivery.poll.is_none(),
                    };
                    return self.end_turn(&delivery, later, None).await;
                }
            }
        };
        // Read once the turn may run: its ancestors' responses are up to
        // ANCESTOR_RESPONSE_BYTES, and a turn put off for want of a slot (an organization
        // whose slots are full, claimed again and again) would read them at every claim.
        let body = self.body_of(&row, &delivery).await?;
        match &delivery.poll {
            Some(polled) => {
                self.poll_turn(&delivery, &hook, &event, &row, &body, polled)
                    .await
            }
            None => {
                self.attempt_turn(&delivery, &hook, &event, &row, &body)
                    .await
            }
        }
    }

    /// The payload keys a delivery runs on: its event's, with its ancestors' operations
    /// applied. Only its ancestors' responses are read, up to [`ANCESTOR_RESPONSE_BYTES`]
    /// in layer order (those past it are not applied, with a warning), and only their
    /// `operations` are parsed.
    async fn body_of(
        &self,
        row: &EventRow,
        delivery: &Delivery,
    ) -> Result<EventFields, DispatchError> {
        let body = event_body(row);
        if delivery.ancestors.is_empty() {
            return Ok(body);
        }
        let read = self
            .store
            .deliveries()
            .responses_of(row.id, delivery.ancestors.clone(), ANCESTOR_RESPONSE_BYTES)
            .await?;
        if let Some(first) = read.omitted.first() {
            tracing::warn!(
                "delivery {}: the responses of the hooks it runs after are over \
                 {ANCESTOR_RESPONSE_BYTES} bytes; those of {} of them (hook {first} the \
                 first) are not read, and their operations not applied to its payload",
                delivery.id,
                read.omitted.len()
            );
        }
        let responses: Vec<Map<String, Value>> = read
            .responses
            .iter()
            .filter_map(|(_, response)| operations_of(response))
            .collect();
        Ok(body_after(&body, &responses))
    }

    /// An attempt: the hook's module called, or its webhook's first request sent.
    async fn attempt_turn(
        &self,
        delivery: &Delivery,
        hook: &Hook,
        event: &EventAction,
        row: &EventRow,
        body: &EventFields,
    ) -> Result<Vec<Claimed>, DispatchError> {
        let prepared = match self
            .prepare(
                hook,
                event,
                body,
                row.queue_id,
                &row.request_id,
                RunToken::Mint,
            )
            .await
        {
            Ok(prepared) => prepared,
            Err(DispatchError::Module(error)) => {
                let reason = format!("not run: {error}");
                let log = self
                    .unrun_for(hook, event, body, row)?
                    .cancelled_log(&reason);
                let done = Next::Done {
                    status: RunStatus::Cancelled,
                    message: reason,
                    response: None,
                };
                return self.end_turn(delivery, done, Some(&log)).await;
            }
            Err(other) => return Err(other),
        };
        match self.attempt(hook, event, &prepared).await? {
            AttemptEnd::Ended(attempted) => {
                let Attempted { log, retryable, .. } = *attempted;
                let next = self.after_attempt(delivery, retryable, &log);
                let promoted = self.end_turn(delivery, next, Some(&log)).await;
                if let Err(error) = prepared.expire_token(&self.store).await {
                    // It expires on its own, at the attempt's worst case.
                    tracing::warn!("a run's token was not cut after its attempt: {error}");
                }
                promoted
            }
            AttemptEnd::Accepted(accepted) => {
                // The token stays valid for the polling: the webhook may still be using it.
                // It is kept sealed, so that whichever replica ends the polling redacts the
                // result of it and cuts it.
                let polled = Polled {
                    url: accepted.target.to_string(),
                    until_ms: now_ms().saturating_add(millis(accepted.bound)),
                    started_at: format_rfc3339(accepted.started_at),
                    sealed_token: prepared.sealed_token(&self.sealer, hook.organization_id),
                };
                let poll = Next::Poll {
                    polled,
                    run_at_ms: now_ms().saturating_add(millis(self.settings.polling.interval)),
                };
                self.end_turn(delivery, poll, None).await
            }
        }
    }

    /// One poll of an accepted webhook call: its result ends the attempt, no result yet
    /// schedules the next poll, and a passed bound fails it.
    async fn poll_turn(
        &self,
        delivery: &Delivery,
        hook: &Hook,
        event: &EventAction,
        row: &EventRow,
        body: &EventFields,
        polled: &Polled,
    ) -> Result<Vec<Claimed>, DispatchError> {
        let HookKind::Webhook(config) = &hook.spec.kind else {
            let reason = "failed: the hook is no longer a webhook, so its result is not polled";
            let log = self.unrun_for(hook, event, body, row)?.failed_log(reason);
            let next = self.after_attempt(delivery, false, &log);
            return self.end_turn(delivery, next, Some(&log)).await;
        };
        let started_at = chrono::DateTime::parse_from_rfc3339(&polled.started_at)
            .map_or_else(|_| SystemTime::now(), SystemTime::from);
        let target = reqwest::Url::parse(&polled.url);
        let answer = match &target {
            Ok(target) => webhook::poll_once(&self.outbound, hook, config, event, target).await,
            Err(_) => PollAnswer::Done(
                webhook::DeliveryOutcome::Failed("polling failed: not a URL".into()),
                None,
                false,
            ),
        };
        let (outcome, code, retryable) = match answer {
            PollAnswer::Done(outcome, code, retryable) => (outcome, code, retryable),
            PollAnswer::Pending => {
                let next_poll = now_ms().saturating_add(millis(self.settings.polling.interval));
                if next_poll <= polled.until_ms {
                    let later = Next::Later {
                        run_at_ms: next_poll,
                        uncount: false,
                    };
                    return self.end_turn(delivery, later, None).await;
                }
                webhook::polling_expired(config, webhook::polling_bound(config, event))
            }
        };
        let ended = webhook::delivered(outcome, code, retryable, started_at);
        let token = polled
            .sealed_token
            .as_deref()
            .and_then(|sealed| self.sealer.open(hook.organization_id, sealed).ok())
            .and_then(|token| String::from_utf8(token).ok());
        let prepared = self
            .prepare(
                hook,
                event,
                body,
                row.queue_id,
                &row.request_id,
                RunToken::Given(token),
            )
            .await?;
        let Attempted { log, retryable, .. } = prepared.webhook_attempted(&ended);
        let next = self.after_attempt(delivery, retryable, &log);
        let promoted = self.end_turn(delivery, next, Some(&log)).await;
        if let Err(error) = prepared.expire_token(&self.store).await {
            tracing::warn!("a polled run's token was not cut: {error}");
        }
        promoted
    }

    /// What follows an attempt that ended with `log`: another attempt after the retry
    /// delay while it may help and attempts are left, else done.
    fn after_attempt(
        &self,
        delivery: &Delivery,
        retryable: bool,
        log: &crate::model::RunLog,
    ) -> Next {
        if retryable && delivery.attempt < delivery.max_attempts {
            if let Some(metrics) = metrics() {
                metrics.run_retries.inc();
            }
            let delay = self.settings.retry_delay(delivery.attempt);
            Next::Retry {
                run_at_ms: now_ms().saturating_add(millis(delay)),
                status: log.status,
                message: log.message.clone(),
            }
        } else {
            Next::Done {
                status: log.status,
                message: log.message.clone(),
                response: log.response.as_ref().map(Value::to_string),
            }
        }
    }

    /// Ends this replica's turn with `delivery`: `next` and the attempt's run log
    /// committed together (nothing when the lease was lost), the run's line logged, and,
    /// when it is done, its event advanced.
    async fn end_turn(
        &self,
        delivery: &Delivery,
        next: Next,
        log: Option<&crate::model::RunLog>,
    ) -> Result<Vec<Claimed>, DispatchError> {
        let done = matches!(next, Next::Done { .. });
        let scheduled = matches!(
            next,
            Next::Retry { .. } | Next::Poll { .. } | Next::Later { .. }
        );
        let turn = Turn {
            id: delivery.id,
            owner: delivery.lease_owner.clone().unwrap_or_default(),
            next,
            log: log.map(RunLogRow::new).transpose()?,
        };
        if !self.store.deliveries().finish(turn).await? {
            tracing::warn!(
                "delivery {} was taken over by another replica; this turn's end is dropped",
                delivery.id
            );
            return Ok(Vec::new());
        }
        if let Some(log) = log {
            log_run(log);
        }
        if scheduled {
            self.wake.notify_one();
        }
        if done {
            return self.advance(delivery.event_id).await;
        }
        Ok(Vec::new())
    }

    /// After a delivery of event `id` is done: once every delivery of a layer is, the next
    /// layer's are run (leased to this replica) or cancelled when an ancestor did not
    /// complete; a layer all cancelled lets the one after it go too. The event is closed
    /// when nothing is left. Answers the deliveries leased to this replica.
    async fn advance(&self, id: u64) -> Result<Vec<Claimed>, DispatchError> {
        loop {
            let deliveries = self.store.deliveries().states(id).await?;
            if deliveries.is_empty() {
                return Ok(Vec::new());
            }
            let unfinished = deliveries
                .iter()
                .filter(|delivery| delivery.state != DeliveryState::Done);
            let Some(layer) = unfinished.clone().map(|delivery| delivery.layer).min() else {
                self.store
                    .deliveries()
                    .close_event(id, &now_rfc3339())
                    .await?;
                return Ok(Vec::new());
            };
            let next: Vec<&Delivery> = unfinished
                .filter(|delivery| delivery.layer == layer)
                .collect();
            if next
                .iter()
                .any(|delivery| delivery.state != DeliveryState::Waiting)
            {
                // That layer is still running; its last one to finish advances.
                return Ok(Vec::new());
            }
            let status = |hook_id: u64| {
                deliveries
                    .iter()
                    .find(|delivery| {
                        delivery.hook_id == hook_id && delivery.state == DeliveryState::Done
                    })
                    .and_then(|delivery| delivery.status)
            };
            let decided: Vec<(&Delivery, Option<u64>)> = next
                .into_iter()
                .map(|delivery| (delivery, failed_predecessor(&delivery.ancestors, status)))
                .collect();
            // The event's row (its body may be megabytes) only for cancelled deliveries'
            // logs.
            let read = if decided.iter().any(|(_, failed)| failed.is_some()) {
                let Some(row) = self.store.deliveries().event_row(id).await? else {
                    return Ok(Vec::new());
                };
                let event = stored_event(&row)?;
                let body = event_body(&row);
                Some((row, event, body))
            } else {
                None
            };
            let mut promotions = Vec::new();
            let mut runs = false;
            for (delivery, failed) in decided {
                let Some(predecessor) = failed else {
                    runs = true;
                    promotions.push(Promotion::Run { id: delivery.id });
                    continue;
                };
                let message = format!(
                    "not run: hook {predecessor}, which this hook runs after, did not complete"
                );
                let log = match (self.store.hook(delivery.hook_id).await?, &read) {
                    (Some(hook), Some((row, event, body))) => Some(Box::new(RunLogRow::new(
                        &self
                            .unrun_for(&hook, event, body, row)?
                            .cancelled_log(&message),
                    )?)),
                    _ => None,
                };
                promotions.push(Promotion::Cancel {
                    id: delivery.id,
                    message,
                    log,
                });
            }
            let leased = self
                .store
                .deliveries()
                .promote(promotions, Some(self.lease()), now_ms())
                .await?;
            if runs {
                return Ok(self.store.deliveries().claimed(leased).await?);
            }
        }
    }
}

/// Turns one organization may have at once in one replica's worker: the rest of the
/// worker stays free for the others, however many of its deliveries fall due.
const TURNS_PER_ORGANIZATION: usize = TURNS_AT_ONCE / 4;

/// The worker's turns under way per organization.
#[derive(Debug, Clone, Default)]
struct Busy(Arc<std::sync::Mutex<std::collections::HashMap<u64, usize>>>);

impl Busy {
    /// One more turn of `organization`, unless it has its share of the worker.
    fn take(&self, organization: u64) -> Option<Share> {
        let mut busy = self.0.lock().ok()?;
        let turns = busy.entry(organization).or_default();
        if *turns >= TURNS_PER_ORGANIZATION {
            return None;
        }
        *turns += 1;
        Some(Share {
            busy: self.clone(),
            organization,
        })
    }

    /// The organizations whose share is taken: the worker's next claim leaves their
    /// deliveries for later, rather than claiming them to give them back.
    fn full(&self) -> Vec<u64> {
        self.0
            .lock()
            .map(|busy| {
                busy.iter()
                    .filter(|(_, turns)| **turns >= TURNS_PER_ORGANIZATION)
                    .map(|(organization, _)| *organization)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One more turn of `organization` whatever its share.
    fn force(&self, organization: u64) -> Share {
        if let Ok(mut busy) = self.0.lock() {
            *busy.entry(organization).or_default() += 1;
        }
        Share {
            busy: self.clone(),
            organization,
        }
    }
}

/// One turn of an organization in the worker, given back when dropped.
struct Share {
    busy: Busy,
    organization: u64,
}

impl Drop for Share {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.busy.0.lock() {
            if let Some(turns) = busy.get_mut(&self.organization) {
                *turns = turns.saturating_sub(1);
                if *turns == 0 {
                    busy.remove(&self.organization);
                }
            }
        }
    }
}

/// The deliveries a replica's turns hold, each with the claim holding it.
type HeldSet = std::sync::Mutex<std::collections::HashMap<u64, String>>;

/// A delivery this replica is taking a turn with, in the set whose leases
/// [`Dispatcher::keep_leases`] renews, until the turn ends, however it ends (a panic or a
/// dropped future included). Keyed by the claim: a later claim of the same row is not
/// forgotten when an earlier turn ends.
struct Held<'a> {
    set: &'a HeldSet,
    id: u64,
    owner: String,
}

impl<'a> Held<'a> {
    fn new(set: &'a HeldSet, id: u64, owner: String) -> Self {
        if let Ok(mut held) = set.lock() {
            held.insert(id, owner.clone());
        }
        Held { set, id, owner }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Ok(mut held) = self.set.lock() {
            if held.get(&self.id) == Some(&self.owner) {
                held.remove(&self.id);
            }
        }
    }
}

/// The end of a delivery whose hook was deleted before its turn.
fn hook_deleted() -> Next {
    Next::Done {
        status: RunStatus::Cancelled,
        message: "not run: the hook was deleted".into(),
        response: None,
    }
}

/// A stored response (JSON text) with its `operations` alone, all [`body_after`] applies:
/// the rest of it (messages of up to a MiB, say) is read past, not made into values. None
/// when it is not a JSON object.
fn operations_of(response: &str) -> Option<Map<String, Value>> {
    /// The one key of a response a payload is built from.
    #[derive(serde::Deserialize)]
    struct Operations {
        #[serde(default)]
        operations: Value,
    }
    // serde reads a struct from an array too; a response is an object or nothing.
    if !response.trim_start().starts_with('{') {
        return None;
    }
    let Operations { operations } = serde_json::from_str(response).ok()?;
    Some(operations_only(operations))
}

/// The event of a stored row.
fn stored_event(row: &EventRow) -> Result<EventAction, DispatchError> {
    EventAction::new(&row.event, &row.action)
        .map_err(|error| DispatchError::Store(StoreError::Task(format!("a stored event: {error}"))))
}

/// The event's own keys, as stored (written from keys that were read as these are).
fn event_body(row: &EventRow) -> EventFields {
    EventFields::parse(row.body.as_bytes()).unwrap_or_default()
}

/// What a scheduled tick enqueues: an `invocation.scheduled` event of `hook` alone, its
/// delivery ready at once for any replica.
pub(super) fn scheduled_event(hook: &Hook, event: &EventAction) -> NewEvent {
    NewEvent {
        organization_id: hook.organization_id,
        // A tick is its own request: every attempt of its run shares this id.
        request_id: uuid::Uuid::now_v7().to_string(),
        event: event.event().to_owned(),
        action: event.action().to_owned(),
        queue_id: None,
        body: "{}".into(),
        created_at: now_rfc3339(),
        deliveries: vec![NewDelivery {
            hook_id: hook.id,
            layer: 0,
            ancestors: Vec::new(),
            max_attempts: attempts(hook, event),
        }],
    }
}

/// Unix milliseconds now, for the scheduler's enqueue.
pub(super) fn unix_ms() -> i64 {
    now_ms()
}
