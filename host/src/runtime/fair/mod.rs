//! Fair shares of the CPU between *fairness groups* (to the server, organizations).
//!
//! Guests run on the async runtime's worker threads (the guest threads, see `threads`) and
//! give them up at every epoch tick.
//! Left to itself the async runtime puts a yielding guest straight back in its run queue,
//! first come, first served, so a group with 64 spinning guests gets 64 turns for every
//! turn of a group with one: a noisy neighbour. Here a call's future is polled only while
//! it holds one of a few *slots* (as many as there are cores for each class of call, one
//! more in all: see below), so hardly more guests are runnable than can run. A guest keeps its slot across a tick's yield while nobody waits
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
//!
//! Slots come in two [`Class`]es. A call that has run [`DEMOTE_AFTER`] inside its polls
//! (a CPU-bound guest; the same rule that moves it to the long calls' threads, see
//! `threads`) is *long*, every other call *short*, and each class may hold at most as many
//! slots as there are cores, out of one more than that in all. So long calls never hold
//! the last slot: a short call beside any number of loops finds one free (or the one a
//! short call is about to give back) instead of waiting for a loop, which at its lower
//! priority reaches its yield late (a priority inversion: the noisy neighbour's
//! `cpu_slot` stage, BENCHMARKS.md). And while short calls run or wait, or ran within
//! the last [`SHORT_RECENT`], long calls hold one core fewer (never less than one): a
//! short call then runs on a core no loop shares, whose caches it finds warm, rather than
//! beside loops that, idle priority or not, take the core's shared caches and its sibling
//! hyper-thread (measured: the quiet organization's p99 beside loops from 2.1x-2.3x of
//! alone to 1.1x-2.6x, under 2x in nine ratios of fifteen, BENCHMARKS.md). The window
//! bridges the gaps between one client's calls. Alone, long calls still have every core:
//! they take the core back at the first of their ticks after the window.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::threads::DEMOTE_AFTER;

/// How long after a short call gave its slot back long calls still leave it a core of its
/// own (see the module's documentation): long enough to bridge the gap between the calls
/// of a client calling in a loop (a round trip and a request's parsing, well under a
/// millisecond here), short enough that long calls alone lose little. Each short call
/// (a call's first [`DEMOTE_AFTER`] included, but not its move to a long slot) keeps a
/// core from the long calls while it runs and for this long after; calls that follow
/// each other closer than that keep it all along. That is the trade, and its price is
/// paid by calls that already run past [`DEMOTE_AFTER`].
pub const SHORT_RECENT: Duration = Duration::from_millis(3);

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

/// Which slots a call may hold: see the module's documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A call that has not yet run [`DEMOTE_AFTER`]: a hello, an invoice check.
    Short,
    /// A call that has: a CPU-bound guest, which may not hold the last slot.
    Long,
}

impl Class {
    fn index(self) -> usize {
        match self {
            Class::Short => 0,
            Class::Long => 1,
        }
    }

    fn other(self) -> Class {
        match self {
            Class::Short => Class::Long,
            Class::Long => Class::Short,
        }
    }
}

#[derive(Debug)]
struct State {
    /// Slots nobody holds, of the per-class limit plus one. A slot is free while somebody
    /// waits only if that waiter's class holds its limit (or more, just after it shrank), or
    /// did until long calls' limit grew back (short calls stopped): the next long
    /// holder's tick hands it out.
    free: usize,
    /// The most slots one class holds: the cores.
    per_class: usize,
    /// Slots held, by class.
    held: [usize; 2],
    /// Guests waiting, in all groups, by class.
    waiting: [usize; 2],
    /// When a short call last gave its slot back, and how long long calls leave short
    /// calls a core after that ([`SHORT_RECENT`]; the tests set it).
    short_released: Option<Instant>,
    short_recent: Duration,
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
    /// The group's waiting guests, in order, with the class each waits as.
    waiters: VecDeque<(Class, oneshot::Sender<CpuSlot>)>,
    /// How many of them wait as each class: which group may be served is read from these,
    /// not from every waiter.
    waiting: [usize; 2],
}

/// The right to run wasm on a core; given back, and its time charged to its group, when
/// dropped.
#[derive(Debug)]
pub struct CpuSlot {
    scheduler: Option<Arc<CpuScheduler>>,
    group: u64,
    class: Class,
    since: Instant,
}

impl CpuScheduler {
    /// A scheduler with `slots` slots per class (at least one), whose holders yield at
    /// their ticks.
    #[cfg(test)]
    pub fn new(slots: usize) -> Arc<Self> {
        Self::build(slots, Duration::ZERO, None)
    }

    /// A scheduler with `slots` slots per class (at least one; one more in all, see the
    /// module's documentation) whose holders yield at every `tick`
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
        let per_class = slots.max(1);
        Arc::new(CpuScheduler {
            state: Mutex::new(State {
                free: per_class + 1,
                per_class,
                held: [0; 2],
                waiting: [0; 2],
                short_released: None,
                short_recent: SHORT_RECENT,
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

    /// A slot for a short guest of `group` now, if one is free to it.
    #[cfg(test)]
    pub fn try_acquire(self: &Arc<Self>, group: u64) -> Option<CpuSlot> {
        self.try_acquire_as(group, Class::Short)
    }

    /// A slot of `class` for a guest of `group` now, if one is free to it (none is while a
    /// guest of that class waits).
    pub fn try_acquire_as(self: &Arc<Self>, group: u64, class: Class) -> Option<CpuSlot> {
        let mut state = self.lock();
        state.may_take(class).then(|| {
            let since = state.grant(group, class);
            CpuSlot::of(self, group, class, since)
        })
    }

    /// A slot for a short guest of `group`, once it is this group's turn.
    #[cfg(test)]
    pub async fn acquire(self: &Arc<Self>, group: u64) -> CpuSlot {
        self.acquire_as(group, Class::Short).await
    }

    /// A slot of `class` for a guest of `group`, once it is this group's turn.
    pub async fn acquire_as(self: &Arc<Self>, group: u64, class: Class) -> CpuSlot {
        let asked = Instant::now();
        loop {
            let (granted, preempt) = {
                let mut state = self.lock();
                if state.may_take(class) {
                    let since = state.grant(group, class);
                    return CpuSlot::of(self, group, class, since);
                }
                let entry = state.join(group, Instant::now());
                let (sender, granted) = oneshot::channel();
                entry.waiters.push_back((class, sender));
                entry.waiting[class.index()] += 1;
                state.waiting[class.index()] += 1;
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

    /// Whether a guest waits that could take the slot a holder of `class` gave back.
    /// A long holder is also told to give its slot up while its class holds more than its
    /// limit, which shrinks when short calls come (see the module's documentation). Asked
    /// at every tick; slots that are free to waiters (long calls' limit grew back since
    /// short calls stopped) go to them first, so that the holder keeps its own.
    pub fn contended(self: &Arc<Self>, class: Class) -> bool {
        let mut state = self.lock();
        if state.free > 0 && state.waiting != [0, 0] {
            self.grant_waiting(&mut state);
        }
        let now = Instant::now();
        let other = class.other();
        state.waiting[class.index()] > 0
            || state.held[class.index()] > state.limit(class, now)
            || (state.waiting[other.index()] > 0
                && state.held[other.index()] < state.limit(other, now))
    }

    /// Charges a slot's time to its group and hands free slots to the next waiting guests
    /// that may take them, or keeps them free. Usually that is the one slot given back;
    /// more when long calls' limit has grown back since short calls stopped.
    /// `as_short` says whether a short call gave the slot up as one: not when the call
    /// has just become long (see [`CpuSlot::give_up_demoted`]).
    fn release(
        self: &Arc<Self>,
        group: u64,
        class: Class,
        since: Instant,
        used: Duration,
        as_short: bool,
    ) {
        let mut state = self.lock();
        state.charge(group, class, since, used, as_short);
        self.grant_waiting(&mut state);
    }

    /// Hands free slots to the next waiting guests that may take them, in turn.
    fn grant_waiting(self: &Arc<Self>, state: &mut State) {
        while let Some((next_group, next_class, sender)) = state.next_waiter() {
            let since = state.grant(next_group, next_class);
            if let Err(mut unsent) = sender.send(CpuSlot::of(self, next_group, next_class, since)) {
                // That guest stopped waiting (its call ended); the slot is free again.
                unsent.scheduler = None;
                state.charge(next_group, next_class, since, Duration::ZERO, false);
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

    /// Whether a guest of `class` may take a slot now: one is free, its class holds less
    /// than its limit, and no guest of its class waits (who would be first).
    fn may_take(&self, class: Class) -> bool {
        self.class_has_room(class, Instant::now()) && self.waiting[class.index()] == 0
    }

    /// Counts a free slot as `group`'s, of `class`, from now, which it returns (the slot's
    /// grant time).
    fn grant(&mut self, group: u64, class: Class) -> Instant {
        let now = Instant::now();
        self.free -= 1;
        self.held[class.index()] += 1;
        self.join(group, now).holding.push(now);
        now
    }

    /// Takes the slot of `class` granted at `since` back from `group`, charging it `used`;
    /// forgets the group if it is idle. A short call that ran on it (`as_short`) starts
    /// the window in which long calls leave short calls a core; a call that gave its short
    /// slot up because it has just become long, or a slot its waiter never took, does not:
    /// otherwise every loop's own first 10 ms would keep a core from the loops alone.
    fn charge(&mut self, group: u64, class: Class, since: Instant, used: Duration, as_short: bool) {
        self.free += 1;
        self.held[class.index()] -= 1;
        if class == Class::Short && as_short {
            self.short_released = Some(Instant::now());
        }
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

    /// Whether a waiting guest of `class` may be given a slot that is free at `now`.
    fn class_has_room(&self, class: Class, now: Instant) -> bool {
        self.free > 0 && self.held[class.index()] < self.limit(class, now)
    }

    /// The most slots `class` may hold at `now`: the cores, one fewer for long calls while
    /// short calls run, wait, or ran within the window (see the module's documentation).
    fn limit(&self, class: Class, now: Instant) -> usize {
        match class {
            Class::Short => self.per_class,
            Class::Long if self.shorts_recent(now) => (self.per_class - 1).max(1),
            Class::Long => self.per_class,
        }
    }

    fn shorts_recent(&self, now: Instant) -> bool {
        self.held[Class::Short.index()] > 0
            || self.waiting[Class::Short.index()] > 0
            || self
                .short_released
                .is_some_and(|released| now.saturating_duration_since(released) < self.short_recent)
    }

    /// The waiting group that has used the least CPU among those with a guest that may
    /// take a slot now: the next served.
    fn first_waiting_group(&self, room: [bool; 2]) -> Option<u64> {
        self.groups
            .iter()
            .filter(|(_, entry)| {
                [Class::Short, Class::Long]
                    .iter()
                    .any(|class| entry.waiting[class.index()] > 0 && room[class.index()])
            })
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

    /// The first waiter that may take a slot now of the waiting group that has used the
    /// least CPU, with its class.
    fn next_waiter(&mut self) -> Option<(u64, Class, oneshot::Sender<CpuSlot>)> {
        let now = Instant::now();
        let room = [Class::Short, Class::Long].map(|class| self.class_has_room(class, now));
        let group = self.first_waiting_group(room)?;
        let entry = self.groups.get_mut(&group)?;
        let index = entry
            .waiters
            .iter()
            .position(|(class, _)| room[class.index()])?;
        let (class, waiter) = entry.waiters.remove(index)?;
        entry.waiting[class.index()] -= 1;
        self.floor = entry.used;
        self.waiting[class.index()] -= 1;
        Some((group, class, waiter))
    }
}

impl CpuSlot {
    fn of(scheduler: &Arc<CpuScheduler>, group: u64, class: Class, since: Instant) -> Self {
        CpuSlot {
            scheduler: Some(Arc::clone(scheduler)),
            group,
            class,
            since,
        }
    }

    /// Gives up the short slot of a call that has just become long, to ask again as one:
    /// as a drop, but not counted as a short call having run (see `State::charge`).
    fn give_up_demoted(mut self) {
        self.give_back(false);
    }

    /// Gives the slot back, charging its time since the grant, once.
    fn give_back(&mut self, as_short: bool) {
        if let Some(scheduler) = self.scheduler.take() {
            let used = self.since.elapsed();
            scheduler.release(self.group, self.class, self.since, used, as_short);
        }
    }
}

impl Drop for CpuSlot {
    fn drop(&mut self) {
        self.give_back(true);
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
    /// The time spent inside the inner future's polls: past [`DEMOTE_AFTER`], the call is
    /// [`Class::Long`].
    ran: Duration,
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
            ran: Duration::ZERO,
            inner: Box::pin(inner),
        }
    }

    /// The slots this call may hold now.
    fn class(&self) -> Class {
        if self.ran >= DEMOTE_AFTER {
            Class::Long
        } else {
            Class::Short
        }
    }
}

impl<F: Future> Future for FairShare<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let class = this.class();
        if this.slot.is_none() && this.waiting.is_none() {
            this.slot = this.scheduler.try_acquire_as(this.group, class);
        }
        if this.slot.is_none() {
            this.asked.get_or_insert_with(Instant::now);
            let waiting = this.waiting.get_or_insert_with(|| {
                let scheduler = Arc::clone(&this.scheduler);
                let group = this.group;
                Box::pin(async move { scheduler.acquire_as(group, class).await })
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
        let started = Instant::now();
        let polled = this.inner.as_mut().poll(cx);
        this.ran += started.elapsed();
        // A short call that has just become long gives its slot up, to ask again as one.
        let class_held = this.slot.as_ref().map_or(class, |slot| slot.class);
        let demoted = class_held != this.class();
        let keep = polled.is_pending()
            && this.tick.take()
            && !demoted
            && !this.scheduler.contended(class_held);
        if !keep {
            if let Some(slot) = this.slot.take() {
                if demoted {
                    slot.give_up_demoted();
                }
            }
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
