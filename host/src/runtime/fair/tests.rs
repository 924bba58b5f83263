//! The fair scheduler's rules, driven by hand: who is served next, who preempts, and
//! what a guest that stops waiting or running gives back.

use super::*;
use std::time::Duration;

impl CpuSlot {
    /// Gives the slot back charging its group `used`, instead of the time since it was
    /// granted: the tests' clock, so that the order they check does not hang on how
    /// busy the machine is.
    fn release_charging(mut self, used: Duration) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.release(self.group, self.class, self.since, used, true);
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
    assert!(scheduler.contended(Class::Short));
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
    assert!(!scheduler.contended(Class::Short));
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
fn counting_preemptions(gap: Duration) -> (Arc<CpuScheduler>, Arc<std::sync::atomic::AtomicUsize>) {
    let kicks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&kicks);
    let scheduler = CpuScheduler::with_preemption(1, gap, move || {
        counted.fetch_add(1, Ordering::Relaxed);
    });
    (scheduler, kicks)
}

#[test]
fn only_the_first_waiter_of_a_group_without_a_slot_that_is_next_preempts() {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let (scheduler, kicks) = counting_preemptions(Duration::ZERO);
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

#[test]
fn holders_are_preempted_at_most_once_a_gap() {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let (scheduler, kicks) = counting_preemptions(Duration::from_secs(3600));
    let kicked = || kicks.load(Ordering::Relaxed);
    let held = scheduler.try_acquire(1).expect("the free slot");
    let mut waiters = vec![("2a", queue(&scheduler, 2, &mut cx))];
    assert_eq!(kicked(), 1, "a quiet group's first waiter preempts");
    // Group 2 is served and group 1 queues again, quiet now: within the gap, its
    // waiter waits for the holder's tick instead of preempting at once.
    held.release_charging(Duration::from_millis(1));
    let (name, slot) = next_served(&mut waiters, &mut cx);
    assert_eq!(name, "2a");
    waiters.push(("1b", queue(&scheduler, 1, &mut cx)));
    waiters.push(("3a", queue(&scheduler, 3, &mut cx)));
    assert_eq!(kicked(), 1, "no second preemption within the gap");
    slot.release_charging(Duration::ZERO);
    for waiter in waiters {
        drop(waiter);
    }
}

#[test]
fn a_guest_preempted_for_a_quiet_group_does_not_preempt_it_back() {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let (scheduler, kicks) = counting_preemptions(Duration::from_secs(3600));
    let kicked = || kicks.load(Ordering::Relaxed);
    let held = scheduler.try_acquire(1).expect("the free slot");
    let mut waiters = vec![("2a", queue(&scheduler, 2, &mut cx))];
    assert_eq!(kicked(), 1, "the quiet group preempts");
    // Group 1 yields, charged its 5 ms, and is forgotten: nothing of it waits or runs.
    held.release_charging(Duration::from_millis(5));
    let (name, slot) = next_served(&mut waiters, &mut cx);
    assert_eq!(name, "2a");
    // Its guest queues again at once. The gap aside (cleared here), it comes back where it
    // stood, 5 ms ahead of the holder, not level with it at the floor.
    scheduler.lock().last_preempt = None;
    waiters.push(("1b", queue(&scheduler, 1, &mut cx)));
    assert_eq!(kicked(), 1, "the preempted group does not preempt back");
    // A third group, idle until now, joins at the floor and preempts.
    scheduler.lock().last_preempt = None;
    waiters.push(("3a", queue(&scheduler, 3, &mut cx)));
    assert_eq!(kicked(), 2, "a group that was idle preempts");
    slot.release_charging(Duration::ZERO);
    let (name, slot) = next_served(&mut waiters, &mut cx);
    assert_eq!(name, "3a", "group 3 (0) before group 1 (5 ms)");
    slot.release_charging(Duration::ZERO);
    let (name, slot) = next_served(&mut waiters, &mut cx);
    assert_eq!(name, "1b");
    slot.release_charging(Duration::ZERO);
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

/// Long calls hold at most the cores' slots and never the last one, which is a short
/// call's; while a short call runs they hold one core fewer; alone, either class has as
/// many slots as there are cores, and no more.
#[test]
fn long_calls_never_hold_the_last_slot() {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let scheduler = CpuScheduler::new(2);
    // Short calls count only while they hold a slot or wait for one.
    scheduler.lock().short_recent = Duration::ZERO;
    let long_a = scheduler.try_acquire_as(1, Class::Long).expect("a core");
    let long_b = scheduler
        .try_acquire_as(1, Class::Long)
        .expect("the other core: no short call runs");
    assert!(
        scheduler.try_acquire_as(1, Class::Long).is_none(),
        "long calls hold every core already"
    );
    let mut waiters = vec![(
        "1c",
        Box::pin({
            let scheduler = Arc::clone(&scheduler);
            async move { scheduler.acquire_as(1, Class::Long).await }
        }) as Waiter,
    )];
    assert!(waiters[0].1.as_mut().poll(&mut cx).is_pending());
    assert!(scheduler.contended(Class::Long));
    assert!(
        !scheduler.contended(Class::Short),
        "a short holder's slot would not go to a long waiter at its limit"
    );
    // The third slot is free to a short call of any group, waiting long calls or not.
    let quiet = scheduler
        .try_acquire(2)
        .expect("the slot long calls may not hold");
    assert!(scheduler.try_acquire(2).is_none(), "every slot is held");
    // While it runs, long calls hold one core fewer: a long call's slot stays free of
    // the long waiter, for a second short call.
    drop(long_a);
    assert!(waiters[0].1.as_mut().poll(&mut cx).is_pending());
    let quiet_b = scheduler
        .try_acquire(2)
        .expect("the core long calls leave short calls");
    drop(quiet_b);
    assert!(waiters[0].1.as_mut().poll(&mut cx).is_pending());
    // The last short call done, the long waiter has the core back.
    drop(quiet);
    let (name, long_c) = next_served(&mut waiters, &mut cx);
    assert_eq!(name, "1c");
    assert!(scheduler.try_acquire_as(1, Class::Long).is_none());
    let short_a = scheduler
        .try_acquire(2)
        .expect("short calls alone have the cores");
    drop((long_b, long_c));
    let short_b = scheduler.try_acquire(2).expect("a second core");
    assert!(
        scheduler.try_acquire(2).is_none(),
        "short calls hold as many slots as there are cores, and no more"
    );
    assert!(scheduler.try_acquire_as(1, Class::Long).is_some());
    drop((short_a, short_b));
}

/// A short call that comes makes long calls holding every core give one up at their
/// next tick; they get it back only once no short call has run for the window, at the
/// next holder's tick, which hands the free slot out without giving up its own.
#[test]
fn long_calls_take_the_core_back_once_short_calls_stop() {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let scheduler = CpuScheduler::new(2);
    // The window never passes until the test says so.
    scheduler.lock().short_recent = Duration::MAX;
    let long_a = scheduler.try_acquire_as(1, Class::Long).expect("a core");
    let long_b = scheduler
        .try_acquire_as(1, Class::Long)
        .expect("no short call ran: the other core");
    assert!(
        !scheduler.contended(Class::Long),
        "alone, long calls keep every core at their ticks"
    );
    let quiet = scheduler
        .try_acquire(9)
        .expect("the slot long calls never hold");
    assert!(
        scheduler.contended(Class::Long),
        "with a short call running, a long holder gives its slot up at its tick"
    );
    drop(long_b);
    assert!(!scheduler.contended(Class::Long), "one core fewer, no more");
    drop(quiet);
    assert!(
        scheduler.try_acquire_as(1, Class::Long).is_none(),
        "within the window after a short call, long calls leave it a core"
    );
    let mut waiters: Vec<Waiter> = (0..2)
        .map(|_| {
            let scheduler = Arc::clone(&scheduler);
            Box::pin(async move { scheduler.acquire_as(1, Class::Long).await }) as Waiter
        })
        .collect();
    for waiter in &mut waiters {
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
    }
    // The window passes; at its next tick the long holder hands the free slot to the
    // first waiter and, with the second still waiting, gives its own up to it.
    scheduler.lock().short_recent = Duration::ZERO;
    assert!(scheduler.contended(Class::Long));
    let first = match waiters[0].as_mut().poll(&mut cx) {
        Poll::Ready(slot) => slot,
        Poll::Pending => panic!("a long waiter was left waiting beside a free core"),
    };
    assert!(waiters[1].as_mut().poll(&mut cx).is_pending());
    drop(long_a);
    let second = match waiters[1].as_mut().poll(&mut cx) {
        Poll::Ready(slot) => slot,
        Poll::Pending => panic!("the holder's slot went to nobody"),
    };
    assert_eq!(scheduler.lock().held, [0, 2]);
    assert!(
        !scheduler.contended(Class::Long),
        "nobody waits: the holders keep their slots"
    );
    drop((first, second));
    assert_eq!(scheduler.lock().free, 3);
}

/// A CPU-bound guest of `group` in its fair share: each poll runs a slice as long as a
/// short call may run in all, then yields at a tick.
fn spinning(scheduler: &Arc<CpuScheduler>, group: u64) -> Pin<Box<impl Future<Output = ()>>> {
    let tick = TickYield::default();
    let marking = tick.clone();
    Box::pin(FairShare::new(scheduler, group, tick, async move {
        loop {
            std::thread::sleep(DEMOTE_AFTER);
            marking.mark();
            tokio::task::yield_now().await;
        }
    }))
}

/// A call that runs past [`DEMOTE_AFTER`] gives its short slot up at its next tick and
/// holds a long one from then on, leaving the last slot to short calls.
#[test]
fn a_share_that_runs_long_moves_to_a_long_slot() {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let scheduler = CpuScheduler::new(1);
    let mut share = spinning(&scheduler, 1);
    assert!(share.as_mut().poll(&mut cx).is_pending());
    assert_eq!(scheduler.lock().held, [0, 0], "the short slot was given up");
    assert!(share.as_mut().poll(&mut cx).is_pending());
    assert_eq!(
        scheduler.lock().held,
        [0, 1],
        "a long slot, kept at its tick"
    );
    let quiet = scheduler
        .try_acquire(2)
        .expect("the slot long calls may not hold");
    assert!(scheduler.try_acquire_as(3, Class::Long).is_none());
    drop(quiet);
    drop(share);
    assert_eq!(
        scheduler.lock().held,
        [0, 0],
        "dropping the share gives its slot back"
    );
}

/// A call that becomes long gives its short slot up without starting the window in which
/// long calls leave short calls a core: alone, a loop joining another still gets the
/// second core as soon as it asks for a long slot.
#[test]
fn a_call_becoming_long_does_not_hold_long_calls_back() {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let scheduler = CpuScheduler::new(2);
    // A window that never passes: only a short call that really ran may open it.
    scheduler.lock().short_recent = Duration::MAX;
    let long_a = scheduler.try_acquire_as(1, Class::Long).expect("a core");
    let mut share = spinning(&scheduler, 2);
    assert!(share.as_mut().poll(&mut cx).is_pending());
    assert_eq!(scheduler.lock().held, [0, 1], "its short slot given up");
    assert!(share.as_mut().poll(&mut cx).is_pending());
    assert_eq!(
        scheduler.lock().held,
        [0, 2],
        "the second core, with no short call having run"
    );
    drop(share);
    // A short call that ran does open the window.
    drop(
        scheduler
            .try_acquire(3)
            .expect("the slot long calls never hold"),
    );
    assert!(scheduler.try_acquire_as(2, Class::Long).is_none());
    drop(long_a);
}
