//! Fair shares of the CPU between *fairness groups* (to the server, organizations).
//!
//! Guests run on the async runtime's worker threads (the guest threads, see `threads`) and
//! give them up at every epoch tick.
//! Left to itself the async runtime puts a yielding guest straight back in its run queue,
//! first come, first served, so a group with 64 spinning guests gets 64 turns for every
//! turn of a group with one: a noisy neighbour. Here a call's future is polled only while
//! it holds one of a few *slots* (as many as there are cores), so no more guests are
//! runnable than can run. A guest keeps its slot across a tick's yield while nobody waits
//! for one, and hands it over at its next tick when somebody does; it gives it up at once
//! when it stops for any other reason (a sleep or another wait in a host call, which must
//! not hold a core it does not use). A freed slot goes straight to the next waiting call:
//! the first of the waiting group that has used the least CPU time (so a group calling a
//! short guest now and then is served before one that keeps long guests spinning), each
//! group's calls in order. A group that was idle starts level with the group served last,
//! so idling earns no credit to spend in a burst.
//!
//! A guest that queues while every slot is held, when its group holds none, would be served
//! next, and has used no more CPU than any holding group (counting the holders' running
//! slices: a quiet organization's call beside a noisy one), makes the holders reach their
//! next tick at once rather than within an epoch tick: the scheduler's *preemption*, which
//! the runtime wires to the engine's epoch (`Engine::increment_epoch`). Each holder's
//! deadline callback then yields, and the first to see the waiter hands it its slot. Only
//! such a waiter preempts: the calls of a group that already holds a slot wait for the
//! holders' ticks, so a group with many guests does not cut every slice short; and a group
//! that was just preempted is ahead of the one it made way for (its slice is charged), so
//! two groups with long guests do not preempt each other back and forth. Preemptions are
//! also at least a *gap* apart (a fraction of the tick), which bounds what many quiet
//! organizations arriving at once can cost the holders.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The slots and the guests waiting for one.
#[derive(Debug)]
pub struct CpuScheduler {
    state: Mutex<State>,
    preempt: Preempt,
}

/// What makes the slots' holders yield at once (see the module's documentation).
struct Preempt(Option<Box<dyn Fn() + Send + Sync>>);

impl std::fmt::Debug for Preempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Preempt(on)"
        } else {
            "Preempt(off)"
        })
    }
}

#[derive(Debug)]
struct State {
    /// Slots nobody holds. Never more than zero while anyone waits.
    free: usize,
    /// Guests waiting, in all groups.
    waiting: usize,
    /// Groups that hold a slot or wait for one; an idle group is forgotten.
    groups: HashMap<u64, Group>,
    /// The CPU time of the group last served: where a group that was idle starts, so that
    /// idling earns no credit to spend later in a burst.
    floor: Duration,
    /// Groups that went idle ahead of the floor within the last tick, with the CPU time
    /// they had: one that comes back meanwhile starts there, not at the floor. A guest
    /// preempted for a quiet group gives its slot up and queues again at once; had its
    /// group been forgotten in between, it would come back level with the quiet group
    /// and preempt it in turn, shrinking both slices to a switch.
    recent: VecDeque<(u64, Duration, Instant)>,
    /// When the holders were last made to yield, and the least time between two such
    /// preemptions: many quiet groups queueing at once preempt the holders at most once a
    /// gap.
    last_preempt: Option<Instant>,
    preempt_gap: Duration,
    /// The epoch tick: how long `recent` remembers a group.
    tick: Duration,
}

/// The most groups [`State::recent`] remembers, whatever their age.
const MOST_RECENT: usize = 1024;

#[derive(Debug, Default)]
struct Group {
    /// CPU time charged to the group's slots. The waiting group with the least is served
    /// first.
    used: Duration,
    /// When each slot the group's guests hold was granted: how many they hold, and the
    /// running slices not yet charged to `used`.
    holding: Vec<Instant>,
    /// The group's waiting guests, in order.
    waiters: VecDeque<oneshot::Sender<CpuSlot>>,
}

/// The right to run wasm on a core; given back, and its time charged to its group, when
/// dropped.
#[derive(Debug)]
pub struct CpuSlot {
    scheduler: Option<Arc<CpuScheduler>>,
    group: u64,
    since: Instant,
}

impl CpuScheduler {
    /// A scheduler with `slots` slots (at least one), whose holders yield at their ticks.
    #[cfg(test)]
    pub fn new(slots: usize) -> Arc<Self> {
        Self::build(slots, Duration::ZERO, None)
    }

    /// A scheduler with `slots` slots (at least one) whose holders yield at every `tick`
    /// (the epoch tick), and that calls `preempt` to make them yield at once when a waiter
    /// should not wait for their ticks, at most once every quarter of a tick.
    pub fn with_preemption(
        slots: usize,
        tick: Duration,
        preempt: impl Fn() + Send + Sync + 'static,
    ) -> Arc<Self> {
        Self::build(slots, tick, Some(Box::new(preempt)))
    }

    fn build(
        slots: usize,
        tick: Duration,
        preempt: Option<Box<dyn Fn() + Send + Sync>>,
    ) -> Arc<Self> {
        Arc::new(CpuScheduler {
            state: Mutex::new(State {
                free: slots.max(1),
                waiting: 0,
                groups: HashMap::new(),
                floor: Duration::ZERO,
                recent: VecDeque::new(),
                last_preempt: None,
                preempt_gap: tick / 4,
                tick,
            }),
            preempt: Preempt(preempt),
        })
    }

    /// A slot for a guest of `group` now, if one is free (none is while anyone waits).
    pub fn try_acquire(self: &Arc<Self>, group: u64) -> Option<CpuSlot> {
        let mut state = self.lock();
        (state.free > 0).then(|| {
            state.free -= 1;
            CpuSlot::of(self, group, state.grant(group))
        })
    }

    /// A slot for a guest of `group`, once it is this group's turn.
    pub async fn acquire(self: &Arc<Self>, group: u64) -> CpuSlot {
        let asked = Instant::now();
        loop {
            let (granted, preempt) = {
                let mut state = self.lock();
                if state.free > 0 {
                    state.free -= 1;
                    return CpuSlot::of(self, group, state.grant(group));
                }
                let entry = state.join(group, Instant::now());
                let (sender, granted) = oneshot::channel();
                entry.waiters.push_back(sender);
                state.waiting += 1;
                (granted, state.preempts(group, Instant::now()))
            };
            if preempt {
                if let Some(preempt) = &self.preempt.0 {
                    preempt();
                }
            }
            // A sender is dropped unsent only if the scheduler is; then ask again.
            if let Ok(slot) = granted.await {
                if let Some(metrics) = crate::metrics::metrics() {
                    metrics
                        .scheduler_wait_seconds
                        .observe(asked.elapsed().as_secs_f64());
                }
                return slot;
            }
        }
    }

    /// Whether any guest is waiting for a slot.
    pub fn contended(&self) -> bool {
        self.lock().waiting > 0
    }

    /// Charges a slot's time to its group and hands the slot to the next waiting guest,
    /// or keeps it free.
    fn release(self: &Arc<Self>, group: u64, since: Instant, used: Duration) {
        let mut state = self.lock();
        state.charge(group, since, used);
        loop {
            let Some((next_group, sender)) = state.next_waiter() else {
                state.free += 1;
                return;
            };
            let since = state.grant(next_group);
            match sender.send(CpuSlot::of(self, next_group, since)) {
                Ok(()) => return,
                // That guest stopped waiting (its call ended); try the next one.
                Err(mut unsent) => {
                    unsent.scheduler = None;
                    state.charge(next_group, since, Duration::ZERO);
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// `group`'s entry. A group that was idle joins level with the floor, or where it stood
    /// if it went idle ahead of the floor within the last tick (see `recent`).
    fn join(&mut self, group: u64, now: Instant) -> &mut Group {
        // Only a group that is not active looks at `recent` (and ages it): a slot granted
        // to a group already holding or waiting costs no more than the map lookup.
        let (recent, floor, tick) = (&mut self.recent, self.floor, self.tick);
        self.groups.entry(group).or_insert_with(|| {
            recent.retain(|(_, _, idle)| now.saturating_duration_since(*idle) < tick);
            let stood = recent
                .iter()
                .position(|(id, _, _)| *id == group)
                .and_then(|index| recent.remove(index))
                .map_or(Duration::ZERO, |(_, used, _)| used);
            Group {
                used: stood.max(floor),
                ..Group::default()
            }
        })
    }

    /// Counts a slot as `group`'s from now, which it returns (the slot's grant time).
    fn grant(&mut self, group: u64) -> Instant {
        let now = Instant::now();
        self.join(group, now).holding.push(now);
        now
    }

    /// Takes the slot granted at `since` back from `group`, charging it `used`; forgets
    /// the group if it is idle.
    fn charge(&mut self, group: u64, since: Instant, used: Duration) {
        let Some(entry) = self.groups.get_mut(&group) else {
            return;
        };
        entry.used += used;
        if let Some(index) = entry.holding.iter().position(|granted| *granted == since) {
            entry.holding.swap_remove(index);
        }
        if entry.holding.is_empty() && entry.waiters.is_empty() {
            let used = entry.used;
            self.groups.remove(&group);
            if used > self.floor {
                if self.recent.len() == MOST_RECENT {
                    self.recent.pop_front();
                }
                self.recent.push_back((group, used, Instant::now()));
            }
        }
    }

    /// The waiting group that has used the least CPU: the next served.
    fn first_waiting_group(&self) -> Option<u64> {
        self.groups
            .iter()
            .filter(|(_, entry)| !entry.waiters.is_empty())
            .min_by_key(|(&group, entry)| (entry.used, group))
            .map(|(&group, _)| group)
    }

    /// Whether the guest of `group` that just queued should make the holders yield at
    /// once (noting when it does): its group holds no slot and had nobody waiting; it is
    /// the first of the waiting groups that hold none; it has used no more than any group
    /// holding a slot, counting the holders' running slices (a tie goes to the quiet
    /// group); and the last preemption is at least the gap ago.
    fn preempts(&mut self, group: u64, now: Instant) -> bool {
        let Some(entry) = self.groups.get(&group) else {
            return false;
        };
        if !entry.holding.is_empty() || entry.waiters.len() != 1 {
            return false;
        }
        let first_without_slot = self
            .groups
            .iter()
            .filter(|(_, other)| other.holding.is_empty() && !other.waiters.is_empty())
            .min_by_key(|(&id, other)| (other.used, id))
            .map(|(&id, _)| id);
        let a_holder_used_less = self.groups.values().any(|other| {
            let running: Duration = other
                .holding
                .iter()
                .map(|granted| now.saturating_duration_since(*granted))
                .sum();
            !other.holding.is_empty() && other.used + running < entry.used
        });
        let gap_passed = self
            .last_preempt
            .is_none_or(|last| now.duration_since(last) >= self.preempt_gap);
        let preempts = first_without_slot == Some(group) && !a_holder_used_less && gap_passed;
        if preempts {
            self.last_preempt = Some(now);
        }
        preempts
    }

    /// The first waiter of the waiting group that has used the least CPU.
    fn next_waiter(&mut self) -> Option<(u64, oneshot::Sender<CpuSlot>)> {
        let group = self.first_waiting_group()?;
        let entry = self.groups.get_mut(&group)?;
        let waiter = entry.waiters.pop_front()?;
        self.floor = entry.used;
        self.waiting -= 1;
        Some((group, waiter))
    }
}

impl CpuSlot {
    fn of(scheduler: &Arc<CpuScheduler>, group: u64, since: Instant) -> Self {
        CpuSlot {
            scheduler: Some(Arc::clone(scheduler)),
            group,
            since,
        }
    }
}

impl Drop for CpuSlot {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.release(self.group, self.since, self.since.elapsed());
        }
    }
}

/// Marked by the epoch callback just before the guest yields at a tick, so that its share
/// can tell a tick (keep the slot unless others wait) from a wait in a host call (give it
/// up).
#[derive(Debug, Clone, Default)]
pub(crate) struct TickYield(Arc<AtomicBool>);

impl TickYield {
    /// The guest is about to yield at a tick.
    pub(crate) fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// A future that is polled only while it holds a slot of its group's share: see the
/// module's documentation.
pub(crate) struct FairShare<F> {
    scheduler: Arc<CpuScheduler>,
    group: u64,
    tick: TickYield,
    slot: Option<CpuSlot>,
    waiting: Option<Pin<Box<dyn Future<Output = CpuSlot> + Send>>>,
    /// When the current wait for a slot began, and the time waited before it.
    asked: Option<Instant>,
    waited: Duration,
    inner: Pin<Box<F>>,
}

impl<F: Future> FairShare<F> {
    /// `inner`, run in `group`'s share of `scheduler`'s slots; `tick` is marked by its
    /// epoch callback.
    pub(crate) fn new(
        scheduler: &Arc<CpuScheduler>,
        group: u64,
        tick: TickYield,
        inner: F,
    ) -> Self {
        FairShare {
            scheduler: Arc::clone(scheduler),
            group,
            tick,
            slot: None,
            waiting: None,
            asked: None,
            waited: Duration::ZERO,
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for FairShare<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if this.slot.is_none() && this.waiting.is_none() {
            this.slot = this.scheduler.try_acquire(this.group);
        }
        if this.slot.is_none() {
            this.asked.get_or_insert_with(Instant::now);
            let waiting = this.waiting.get_or_insert_with(|| {
                let scheduler = Arc::clone(&this.scheduler);
                let group = this.group;
                Box::pin(async move { scheduler.acquire(group).await })
            });
            match waiting.as_mut().poll(cx) {
                Poll::Ready(slot) => {
                    this.waiting = None;
                    this.slot = Some(slot);
                    if let Some(asked) = this.asked.take() {
                        this.waited += asked.elapsed();
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        this.tick.take();
        let polled = this.inner.as_mut().poll(cx);
        let keep = polled.is_pending() && this.tick.take() && !this.scheduler.contended();
        if !keep {
            this.slot = None;
        }
        polled
    }
}

impl<F> Drop for FairShare<F> {
    fn drop(&mut self) {
        let waiting = self.asked.map_or(Duration::ZERO, |asked| asked.elapsed());
        crate::metrics::stage(crate::metrics::Stage::cpu_slot, self.waited + waiting);
    }
}

#[cfg(test)]
mod tests;
