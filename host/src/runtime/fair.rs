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
//! A guest that queues while every slot is held, when its group holds none and would be
//! served next (a quiet organization's call beside a noisy one), makes the holders reach
//! their next tick at once rather than within an epoch tick: the scheduler's *preemption*,
//! which the runtime wires to the engine's epoch (`Engine::increment_epoch`). Each holder's
//! deadline callback then yields, and the first to see the waiter hands it its slot. Only
//! such a waiter preempts: the calls of a group that already holds a slot wait for the
//! holders' ticks, so a group with many guests does not cut every slice short.

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
}

#[derive(Debug, Default)]
struct Group {
    /// CPU time charged to the group's slots. The waiting group with the least is served
    /// first.
    used: Duration,
    /// Slots the group's guests hold.
    held: usize,
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
        Self::build(slots, None)
    }

    /// A scheduler with `slots` slots (at least one) that calls `preempt` to make the
    /// holders yield at once when a waiter should not wait for their ticks.
    pub fn with_preemption(slots: usize, preempt: impl Fn() + Send + Sync + 'static) -> Arc<Self> {
        Self::build(slots, Some(Box::new(preempt)))
    }

    fn build(slots: usize, preempt: Option<Box<dyn Fn() + Send + Sync>>) -> Arc<Self> {
        Arc::new(CpuScheduler {
            state: Mutex::new(State {
                free: slots.max(1),
                waiting: 0,
                groups: HashMap::new(),
                floor: Duration::ZERO,
            }),
            preempt: Preempt(preempt),
        })
    }

    /// A slot for a guest of `group` now, if one is free (none is while anyone waits).
    pub fn try_acquire(self: &Arc<Self>, group: u64) -> Option<CpuSlot> {
        let mut state = self.lock();
        (state.free > 0).then(|| {
            state.free -= 1;
            state.grant(group);
            CpuSlot::of(self, group)
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
                    state.grant(group);
                    return CpuSlot::of(self, group);
                }
                let floor = state.floor;
                let entry = state.groups.entry(group).or_default();
                if entry.held == 0 && entry.waiters.is_empty() {
                    entry.used = entry.used.max(floor);
                }
                let (sender, granted) = oneshot::channel();
                entry.waiters.push_back(sender);
                state.waiting += 1;
                (granted, state.preempts(group))
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
    fn release(self: &Arc<Self>, group: u64, used: Duration) {
        let mut state = self.lock();
        state.charge(group, used);
        loop {
            let Some((next_group, sender)) = state.next_waiter() else {
                state.free += 1;
                return;
            };
            state.grant(next_group);
            match sender.send(CpuSlot::of(self, next_group)) {
                Ok(()) => return,
                // That guest stopped waiting (its call ended); try the next one.
                Err(mut unsent) => {
                    unsent.scheduler = None;
                    state.charge(next_group, Duration::ZERO);
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
    /// Counts a slot as `group`'s.
    fn grant(&mut self, group: u64) {
        self.groups.entry(group).or_default().held += 1;
    }

    /// Takes a slot back from `group`, charging it `used`; forgets the group if it is idle.
    fn charge(&mut self, group: u64, used: Duration) {
        let Some(entry) = self.groups.get_mut(&group) else {
            return;
        };
        entry.used += used;
        entry.held = entry.held.saturating_sub(1);
        if entry.held == 0 && entry.waiters.is_empty() {
            self.groups.remove(&group);
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
    /// once: its group holds no slot and had nobody waiting, and it is the next served.
    fn preempts(&self, group: u64) -> bool {
        self.groups.get(&group).is_some_and(|entry| {
            entry.held == 0 && entry.waiters.len() == 1 && self.first_waiting_group() == Some(group)
        })
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
    fn of(scheduler: &Arc<CpuScheduler>, group: u64) -> Self {
        CpuSlot {
            scheduler: Some(Arc::clone(scheduler)),
            group,
            since: Instant::now(),
        }
    }
}

impl Drop for CpuSlot {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.release(self.group, self.since.elapsed());
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
mod tests {
    use super::*;
    use std::time::Duration;

    impl CpuSlot {
        /// Gives the slot back charging its group `used`, instead of the time since it was
        /// granted: the tests' clock, so that the order they check does not hang on how
        /// busy the machine is.
        fn release_charging(mut self, used: Duration) {
            if let Some(scheduler) = self.scheduler.take() {
                scheduler.release(self.group, used);
            }
        }
    }

    /// A guest waiting for a slot: its `acquire`, queued by a first poll.
    type Waiter = Pin<Box<dyn Future<Output = CpuSlot>>>;

    /// A guest of `group` queued for a slot (none is free).
    fn queue(scheduler: &Arc<CpuScheduler>, group: u64, cx: &mut Context<'_>) -> Waiter {
        let scheduler = Arc::clone(scheduler);
        let mut waiter: Waiter = Box::pin(async move { scheduler.acquire(group).await });
        assert!(waiter.as_mut().poll(cx).is_pending(), "no slot is free");
        waiter
    }

    /// The waiter the freed slot went to, taken out of `waiters` with its slot; the others
    /// must still wait.
    fn next_served(
        waiters: &mut Vec<(&'static str, Waiter)>,
        cx: &mut Context<'_>,
    ) -> (&'static str, CpuSlot) {
        let mut granted = None;
        for (index, (name, waiter)) in waiters.iter_mut().enumerate() {
            if let Poll::Ready(slot) = waiter.as_mut().poll(cx) {
                assert!(granted.is_none(), "two waiters hold the one slot");
                granted = Some((index, *name, slot));
            }
        }
        let (index, name, slot) = granted.expect("the freed slot went to a waiter");
        drop(waiters.remove(index));
        (name, slot)
    }

    /// Fairness as a property of the charges, with no clock: every slot is given back
    /// charged an explicit time, and each freed slot must go to the first waiter of the
    /// waiting group charged the least so far, each group's waiters in order.
    #[test]
    fn the_group_that_used_least_goes_first() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let scheduler = CpuScheduler::new(1);
        let held = scheduler.try_acquire(1).expect("the free slot");
        // Group 1 queues two guests before group 2 queues two.
        let arrivals = [(1, "1a"), (1, "1b"), (2, "2a"), (2, "2b")];
        let mut waiters: Vec<(&'static str, Waiter)> = arrivals
            .into_iter()
            .map(|(group, name)| (name, queue(&scheduler, group, &mut cx)))
            .collect();
        assert!(scheduler.contended());
        // Group 1 has used 30 ms; group 2, idle until now, starts at the floor (0).
        held.release_charging(Duration::from_millis(30));
        // Each guest served, and the milliseconds it uses before giving the slot back:
        // 2a (0 < 30); then group 2 has used 40 and group 1 30: 1a; group 1 at 35 < 40:
        // 1b; then only group 2 waits: 2b. First come, first served would give 1a 1b 2a
        // 2b, and groups taking turns 2a 1a 2b 1b.
        let mut order = Vec::new();
        for (expected, used_ms) in [("2a", 40), ("1a", 5), ("1b", 10), ("2b", 1)] {
            let (name, slot) = next_served(&mut waiters, &mut cx);
            order.push(name);
            assert_eq!(name, expected, "served so far: {order:?}");
            slot.release_charging(Duration::from_millis(used_ms));
        }
        assert!(waiters.is_empty());
        assert!(!scheduler.contended());
        assert!(
            scheduler.lock().groups.is_empty(),
            "idle groups are forgotten"
        );
        assert!(scheduler.try_acquire(3).is_some());
    }

    #[test]
    fn a_group_back_from_idle_starts_level_with_the_group_served_last() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let scheduler = CpuScheduler::new(1);
        let held = scheduler.try_acquire(1).expect("the free slot");
        let mut waiters = vec![
            ("2a", queue(&scheduler, 2, &mut cx)),
            ("1b", queue(&scheduler, 1, &mut cx)),
        ];
        held.release_charging(Duration::from_millis(50));
        let (name, slot) = next_served(&mut waiters, &mut cx);
        assert_eq!(name, "2a", "group 2 (0) before group 1 (50)");
        // Group 2 then waits no more: it is forgotten, and 1b (group 1 at 50) is served.
        slot.release_charging(Duration::from_millis(100));
        let (name, slot) = next_served(&mut waiters, &mut cx);
        assert_eq!(name, "1b");
        // Group 3 arrives while group 1, served last at 50, runs: it starts at 50, not 0.
        waiters.push(("3a", queue(&scheduler, 3, &mut cx)));
        waiters.push(("3b", queue(&scheduler, 3, &mut cx)));
        waiters.push(("1c", queue(&scheduler, 1, &mut cx)));
        slot.release_charging(Duration::from_millis(5));
        let (name, slot) = next_served(&mut waiters, &mut cx);
        assert_eq!(name, "3a", "group 3 (50) before group 1 (55)");
        slot.release_charging(Duration::from_millis(10));
        // Group 3 is at 60 and group 1 at 55. Had group 3 started at 0 (credit for its
        // idle time), it would be at 10 and 3b would be served first.
        let (name, slot) = next_served(&mut waiters, &mut cx);
        assert_eq!(name, "1c", "idling earned group 3 no credit");
        slot.release_charging(Duration::ZERO);
        let (name, slot) = next_served(&mut waiters, &mut cx);
        assert_eq!(name, "3b");
        slot.release_charging(Duration::ZERO);
        assert!(scheduler.lock().groups.is_empty());
    }

    /// A scheduler of one slot that counts its preemptions.
    fn counting_preemptions() -> (Arc<CpuScheduler>, Arc<std::sync::atomic::AtomicUsize>) {
        let kicks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&kicks);
        let scheduler = CpuScheduler::with_preemption(1, move || {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        (scheduler, kicks)
    }

    #[test]
    fn only_the_first_waiter_of_a_group_without_a_slot_that_is_next_preempts() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let (scheduler, kicks) = counting_preemptions();
        let kicked = || kicks.load(Ordering::Relaxed);
        let held = scheduler.try_acquire(1).expect("the free slot");
        assert_eq!(kicked(), 0, "a free slot preempts nobody");
        // More guests of the group holding the slot wait for its tick.
        let mut waiters = vec![
            ("1b", queue(&scheduler, 1, &mut cx)),
            ("1c", queue(&scheduler, 1, &mut cx)),
        ];
        assert_eq!(kicked(), 0, "a group's own guests do not cut its slice");
        // Group 2 holds nothing and, idle until now, starts level: it preempts.
        waiters.push(("2a", queue(&scheduler, 2, &mut cx)));
        assert_eq!(kicked(), 1, "a quiet group's first waiter preempts");
        waiters.push(("2b", queue(&scheduler, 2, &mut cx)));
        assert_eq!(kicked(), 1, "its second waiter does not");
        // Group 3 also holds nothing, but group 2 (as little used, lower id) goes first.
        waiters.push(("3a", queue(&scheduler, 3, &mut cx)));
        assert_eq!(kicked(), 1, "a waiter that is not next does not preempt");
        // The preemption did not change the order: group 2 is served first.
        held.release_charging(Duration::from_millis(1));
        let (name, slot) = next_served(&mut waiters, &mut cx);
        assert_eq!(name, "2a");
        slot.release_charging(Duration::ZERO);
        for waiter in waiters {
            drop(waiter);
        }
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_does_not_keep_the_slot() {
        let scheduler = CpuScheduler::new(1);
        let held = scheduler.acquire(1).await;
        let gave_up = tokio::time::timeout(Duration::from_millis(5), scheduler.acquire(2)).await;
        assert!(gave_up.is_err());
        drop(held);
        let next = tokio::time::timeout(Duration::from_millis(100), scheduler.acquire(3)).await;
        assert!(next.is_ok(), "the slot went to a waiter that was gone");
    }

    #[tokio::test]
    async fn a_share_holds_its_slot_only_while_it_runs() {
        let scheduler = CpuScheduler::new(1);
        let (release, released) = oneshot::channel::<()>();
        let inner_scheduler = Arc::clone(&scheduler);
        let share = tokio::spawn(FairShare::new(
            &scheduler,
            1,
            TickYield::default(),
            async move {
                // Running: the one slot is this future's.
                let busy = inner_scheduler.try_acquire(9).is_none();
                // Stopped in a wait: the slot is free for another group meanwhile.
                let _ = released.await;
                busy
            },
        ));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let other = tokio::time::timeout(Duration::from_millis(100), scheduler.acquire(2))
            .await
            .expect("the stopped share's slot is free");
        let _ = release.send(());
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!share.is_finished(), "the share ran without a slot");
        drop(other);
        assert!(
            share.await.expect("the share finishes"),
            "it ran without its slot"
        );
        assert!(scheduler.try_acquire(9).is_some(), "the slot came back");
    }

    #[test]
    fn a_share_keeps_its_slot_at_a_tick_until_someone_waits() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let scheduler = CpuScheduler::new(1);
        let tick = TickYield::default();
        let marking = tick.clone();
        let mut share = Box::pin(FairShare::new(&scheduler, 1, tick, async move {
            for _ in 0..3 {
                marking.mark();
                tokio::task::yield_now().await;
            }
        }));
        assert!(share.as_mut().poll(&mut cx).is_pending());
        assert!(
            scheduler.try_acquire(9).is_none(),
            "the slot was given up at a tick"
        );
        let mut other = Box::pin(scheduler.acquire(2));
        assert!(other.as_mut().poll(&mut cx).is_pending());
        // At its next tick the share hands the slot to the waiting group and queues.
        assert!(share.as_mut().poll(&mut cx).is_pending());
        let Poll::Ready(other_slot) = other.as_mut().poll(&mut cx) else {
            panic!("the waiting group did not get the slot");
        };
        assert!(share.as_mut().poll(&mut cx).is_pending());
        drop(other_slot);
        assert!(share.as_mut().poll(&mut cx).is_pending());
        assert!(share.as_mut().poll(&mut cx).is_ready());
        assert!(scheduler.try_acquire(9).is_some(), "the slot came back");
    }
}
