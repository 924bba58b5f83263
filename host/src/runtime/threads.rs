//! The threads guests run on, apart from the server's, once they have run a slice.
//!
//! A call's guest starts on the thread that asked for it, a server worker, and a short call
//! (a hello, an invoice check: a tenth of a millisecond) ends there: it costs no hand-off to
//! another thread and back, the kernel's task switches and the cross-thread frees of every
//! call's memory that the profile of the server under `wrk` found (BENCHMARKS.md), which is
//! how `wasmtime serve` runs its guests too. A job that has spent [`INLINE_FOR`] inside its
//! polls (one epoch tick) moves at its next yield to the guest threads below, so a guest
//! holds a server worker for at most a slice or two, once. What does not yield cannot be
//! moved (an instantiation), so a module's [`StartHint`] remembers whether its last job
//! ended within [`INLINE_FOR`]: one that did not (a Python or JavaScript guest, whose
//! instantiation alone takes longer; a loop) starts on the guest threads, until one of its
//! jobs there ends that quickly again. With epoch ticks longer than [`INLINE_FOR`]
//! (`[limits] guest_slice_us`) nothing starts on the server's threads: a slice would hold
//! one too long.
//!
//! A guest's wasm runs inside the poll of its call's future, on whatever thread polls it.
//! On the server's async workers, a CPU-bound guest competed for the cores with the
//! threads that accept and parse requests, answer them and commit run logs, at the same OS
//! priority: a quiet organization's call, its guest done in a fraction of a millisecond,
//! then waited for the kernel to give those threads a time slice (BENCHMARKS.md, noisy
//! neighbour). So the guest part of every call that runs past its first slice
//! (instantiation and the guest's work, inside its fair share, see `fair`) runs here
//! instead: an async runtime of its own, with one
//! worker thread more than the fair scheduler has CPU slots, each lowered by
//! [`RuntimeConfig::guest_nice`](super::RuntimeConfig::guest_nice) below the server's own
//! priority. The kernel then runs the server's threads first whenever they have work, and
//! gives the guests every cycle they leave.
//!
//! The thread beyond the cores: a guest without a slot waits for one as a parked task,
//! not on a thread, and each class of call holds at most as many slots as there are cores
//! (`fair`), so at most that many of a pool's threads run guests and the one more is
//! free whenever they are all busy. A job that arrives then is picked up at once, asks for
//! its slot and (a quiet organization's call beside a noisy one) preempts the holders;
//! with no thread free it waited for a busy one to reach its next tick first.
//!
//! The priority is the thread's nice value, set by `setpriority(PRIO_PROCESS, tid)`, which
//! on Linux applies to one thread (rustix, already a dependency, wraps it without unsafe
//! code). A nice of 10 gives a guest thread about a tenth of the weight of a server thread
//! when both want a core; the long calls' threads below are also `SCHED_IDLE`, set through
//! the C library (`sched_setscheduler`, which rustix does not wrap). An unprivileged
//! process may lower its priority but not raise it again, which is why guests need threads
//! of their own rather than a server thread lowered while it polls a guest.
//!
//! Long calls move to slower threads still. A job that has spent [`DEMOTE_AFTER`] inside
//! its polls (a CPU-bound guest, an endless loop until its time limit) is handed, at its
//! next yield, to a second pool of as many threads at the lowest priority
//! ([`MAX_NICE`], or [`LONG_NICE_STEP`] below the first pool's when that is lower), where
//! it runs to its end. These threads are also `SCHED_IDLE`: a nice value only weighs a
//! thread's share of the cores, and a loop at nice 19 still kept server threads that woke
//! up (then the run log writer's thread, a worker with an answer to send) waiting for a core, on each hop
//! of a quiet organization's call; a `SCHED_IDLE` thread gives the core up to any other
//! thread that wants it (the noisy neighbour's p99, BENCHMARKS.md). It gets every cycle the
//! server leaves, as before. A short call (a hello takes a tenth of a millisecond) never moves
//! off the server's worker, so beside a neighbour's loops its instantiation and its guest
//! run on a thread the kernel prefers to the loops' (nice 0 against 19) instead of
//! splitting a core with them: the noisy neighbour's `instantiate` and `handoff` stages
//! (BENCHMARKS.md). It is a three-level feedback queue, as an OS scheduler keeps one; the
//! fair scheduler still decides who holds the CPU slots (a long call never the last one,
//! see `fair`), this only who the kernel runs first. A job moves as the boxed future it
//! is: whatever it waits on is polled again from its new task, which registers the new
//! task's waker (a waker of the finished first task wakes nothing).
//!
//! A job is `'static`: it owns its store and everything the call needs, and comes back
//! through its task's handle. A call that is abandoned (its time limit, its caller gone)
//! aborts its job, which drops the store where the job is; a job that panics fails its
//! call (caught where it runs, the server's worker included) and leaves the pools running.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::metrics::{stage, Stage};

/// How much lower than the server's the guest threads' priority is when not configured:
/// the nice value added to the server's own.
pub const DEFAULT_GUEST_NICE: u8 = 10;
/// The highest nice value, the lowest priority, the kernel gives a normal thread.
pub const MAX_NICE: u8 = 19;

/// How long a job runs on the thread that asked for it (the time inside its polls) before
/// it moves to the first pool's threads at its next yield: several times a short call's
/// whole guest part (a Rust or C hello, an invoice check), one epoch tick of a CPU-bound
/// one.
pub const INLINE_FOR: Duration = Duration::from_millis(1);

/// Whether the next job of a module (fresh instances and warm ones apart) starts on the
/// thread that asks for it: its last job ended within [`INLINE_FOR`] of poll time. Kept by
/// the module, read and set by [`GuestThreads::run`].
#[derive(Debug)]
pub(crate) struct StartHint(AtomicBool);

impl StartHint {
    /// A module not called yet: its first job starts where it is asked for.
    pub(crate) fn new() -> Self {
        StartHint(AtomicBool::new(true))
    }

    fn inline(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// What a job that spent `used` in its polls says of the next.
    fn ended_after(&self, used: Duration) {
        self.0.store(used < INLINE_FOR, Ordering::Relaxed);
    }
}

/// How long a job runs in all (the time inside its polls) before it moves to the long
/// calls' pool at its next yield: many times a short call's whole guest part, a few epoch
/// ticks of a CPU-bound one.
pub const DEMOTE_AFTER: Duration = Duration::from_millis(10);

/// How much lower the long calls' threads are than the first pool's, at most (their nice
/// value is capped at [`MAX_NICE`]).
pub const LONG_NICE_STEP: u8 = 9;

/// The guest threads: see the module's documentation.
pub(crate) struct GuestThreads {
    /// Where a job goes when it does not start, or stay, on the thread that asks for it.
    /// Taken only when dropped (see `Drop`).
    tokio: Option<tokio::runtime::Runtime>,
    /// Where a job that ran past [`DEMOTE_AFTER`] continues.
    long: Option<tokio::runtime::Runtime>,
    /// The nice value each first-pool thread sets itself to.
    nice: i32,
    /// The nice value of the long calls' threads.
    long_nice: i32,
    /// Whether any job may start on the thread that asks for it: the epoch tick, by which
    /// a guest yields, is at most [`INLINE_FOR`].
    inline: bool,
}

impl std::fmt::Debug for GuestThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestThreads")
            .field("nice", &self.nice)
            .field("long_nice", &self.long_nice)
            .finish_non_exhaustive()
    }
}

/// Why a job gave no result.
#[derive(Debug, thiserror::Error)]
#[error("the guest's thread lost the call: {0}")]
pub(crate) struct Lost(String);

impl GuestThreads {
    /// `threads` guest threads (at least one), `nice` below the priority of the thread
    /// calling this (the nice value is capped at [`MAX_NICE`]), for guests that yield every
    /// `tick`.
    pub(crate) fn start(threads: usize, nice: u8, tick: Duration) -> std::io::Result<Self> {
        let own = thread_nice().unwrap_or(0);
        let target = own.saturating_add(i32::from(nice)).min(i32::from(MAX_NICE));
        let long_nice = target
            .saturating_add(i32::from(LONG_NICE_STEP))
            .min(i32::from(MAX_NICE));
        Ok(GuestThreads {
            tokio: Some(pool(threads, "wasmhook-guest", target, Policy::Normal)?),
            long: Some(pool(threads, "wasmhook-long", long_nice, Policy::Idle)?),
            nice: target,
            long_nice,
            inline: tick <= INLINE_FOR,
        })
    }

    /// Runs `job`, first on the calling thread when `hint` says so and past [`INLINE_FOR`]
    /// on a guest thread, in the caller's tracing span; dropping the returned future aborts
    /// the job. The time from a move to the job's first poll on a guest thread, and from its
    /// end there to the caller's, is recorded as the `handoff` stage (zero for a job that
    /// ended where it started).
    pub(crate) async fn run<F>(&self, job: F, hint: &StartHint) -> Result<F::Output, Lost>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (Some(tokio), Some(long)) = (&self.tokio, &self.long) else {
            return Err(Lost("the guest threads have stopped".into()));
        };
        let job = Box::pin(job);
        let moved = if self.inline && hint.inline() {
            let inline = Demoting::new(job, Duration::ZERO, INLINE_FOR);
            // A panic in the job fails its call, not the request's task that polled it.
            match AssertUnwindSafe(inline).catch_unwind().await {
                Ok(Ok((output, used))) => {
                    hint.ended_after(used);
                    stage(Stage::handoff, Duration::ZERO);
                    return Ok(output);
                }
                Ok(Err(moved)) => moved,
                Err(panic) => return Err(panicked(panic)),
            }
        } else {
            Moving {
                job,
                used: Duration::ZERO,
            }
        };
        let span = tracing::Span::current();
        let submitted = Instant::now();
        // Past DEMOTE_AFTER already (a loop that started inline under a long instantiation):
        // straight to the long calls' threads.
        let (pool, until) = if moved.used >= DEMOTE_AFTER {
            (long, Duration::MAX)
        } else {
            (tokio, DEMOTE_AFTER)
        };
        let first = Demoting::new(moved.job, moved.used, until);
        let first = async move {
            let reached = submitted.elapsed();
            let ended = first.await;
            (ended, reached, Instant::now())
        }
        .instrument(span.clone());
        let (ended, reached, finished) = joined(AbortOnDropHandle::new(pool.spawn(first))).await?;
        let (output, finished) = match ended {
            Ok((output, used)) => {
                hint.ended_after(used);
                (output, finished)
            }
            // It ran long: the rest of it on the long calls' threads (the hop between the
            // pools is not a handoff the caller waits for; its own turn there is).
            Err(moved) => {
                hint.ended_after(moved.used);
                let job = moved.job;
                let rest = async move {
                    let output = job.await;
                    (output, Instant::now())
                }
                .instrument(span);
                joined(AbortOnDropHandle::new(long.spawn(rest))).await?
            }
        };
        stage(Stage::handoff, reached + finished.elapsed());
        Ok(output)
    }

    /// The nice value of the guest threads.
    #[cfg(test)]
    pub(crate) fn nice(&self) -> i32 {
        self.nice
    }

    /// The nice value of the long calls' threads.
    #[cfg(test)]
    pub(crate) fn long_nice(&self) -> i32 {
        self.long_nice
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        // Dropping a tokio runtime waits for its threads, which an async caller (a test
        // dropping its `Runtime`) may not do; the threads end on their own once their jobs
        // are gone.
        for pool in [self.tokio.take(), self.long.take()].into_iter().flatten() {
            pool.shutdown_background();
        }
    }
}

/// The kernel's scheduling policy of a pool's threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    /// `SCHED_OTHER`, the server's own: the nice value weighs the thread's share.
    Normal,
    /// `SCHED_IDLE`: the smallest share of all, and preempted by any normal thread that
    /// wakes up (see the module's documentation).
    Idle,
}

/// One pool of guest threads, each at `nice` and `policy`.
fn pool(
    threads: usize,
    name: &str,
    nice: i32,
    policy: Policy,
) -> std::io::Result<tokio::runtime::Runtime> {
    // Every thread of this runtime sets the same value, its blocking threads (a guest's
    // file and clock calls) too, which a thread started by a guest thread inherits anyway.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        // A job arrives from outside this runtime, in its global queue, which a worker busy
        // with a spinning guest (a task that wakes itself at every tick) would otherwise
        // look at only every 61 ticks: a quiet organization's call would wait there tens of
        // milliseconds before it can even ask for a CPU slot (and make the holders yield).
        // Looking at every tick costs one lock of an empty queue.
        .global_queue_interval(1)
        .on_thread_start(move || {
            set_thread_nice(nice);
            if policy == Policy::Idle {
                set_thread_idle();
            }
        })
        .enable_all()
        .build()
}

/// A task's result, or why there is none; the task is aborted if this is dropped (an
/// abandoned call stops its guest).
async fn joined<T>(task: AbortOnDropHandle<T>) -> Result<T, Lost> {
    match task.await {
        Ok(value) => Ok(value),
        Err(error) if error.is_panic() => Err(panicked(error.into_panic())),
        Err(_cancelled) => Err(Lost("it was cancelled".into())),
    }
}

/// A job running where it started: its output, or the job itself once it has spent its
/// time there (`until`, counting what it used before) and yielded, to go on elsewhere.
struct Demoting<F> {
    /// Taken when it ends or moves.
    job: Option<Pin<Box<F>>>,
    /// The time spent inside the job's polls so far, here and before.
    used: Duration,
    /// When `used` reaches this, the job moves at its next yield.
    until: Duration,
}

/// A job that moves on, with the time it has spent inside its polls so far.
struct Moving<F> {
    job: Pin<Box<F>>,
    used: Duration,
}

impl<F> Demoting<F> {
    fn new(job: Pin<Box<F>>, used: Duration, until: Duration) -> Self {
        Demoting {
            job: Some(job),
            used,
            until,
        }
    }
}

impl<F: Future> Future for Demoting<F> {
    /// Its output and the time it spent in its polls in all, or it moving on.
    type Output = Result<(F::Output, Duration), Moving<F>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(job) = self.job.as_mut() else {
            // Polled after it ended: nothing more comes.
            return Poll::Pending;
        };
        let started = Instant::now();
        let polled = job.as_mut().poll(cx);
        self.used += started.elapsed();
        match polled {
            Poll::Ready(output) => {
                self.job = None;
                Poll::Ready(Ok((output, self.used)))
            }
            Poll::Pending if self.used >= self.until => match self.job.take() {
                Some(job) => Poll::Ready(Err(Moving {
                    job,
                    used: self.used,
                })),
                None => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The calling thread's nice value.
fn thread_nice() -> std::io::Result<i32> {
    Ok(rustix::process::getpriority_process(Some(
        rustix::thread::gettid(),
    ))?)
}

/// Sets the calling thread's nice value (on Linux `PRIO_PROCESS` with a thread id names
/// that one thread).
fn set_thread_nice(nice: i32) {
    let result = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice);
    if let Err(error) = result {
        // Lowering one's own priority is always allowed; if it still fails, guests run at
        // the server's priority, as they did before, rather than not at all.
        tracing::warn!("could not lower a guest thread's priority to nice {nice}: {error}");
    }
}

/// Makes the calling thread `SCHED_IDLE` (on Linux `sched_setscheduler` with pid 0 names
/// the calling thread alone). Lowering one's own policy needs no privilege.
#[allow(unsafe_code)]
fn set_thread_idle() {
    let parameters = libc::sched_param { sched_priority: 0 };
    // SAFETY: `parameters` is a valid `sched_param` that outlives the call, which only
    // reads it; pid 0 is the calling thread.
    let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &parameters) };
    if result != 0 {
        // As with the nice value: guests then run at the nice value alone, rather than not at all.
        let error = std::io::Error::last_os_error();
        tracing::warn!("could not make a long calls' thread SCHED_IDLE: {error}");
    }
}

/// Why a job that panicked gave no result, logged.
fn panicked(payload: Box<dyn std::any::Any + Send>) -> Lost {
    let message = panic_payload(payload);
    tracing::error!("a guest job panicked: {message}");
    Lost(format!("it panicked: {message}"))
}

/// A panic's message, when it has one.
fn panic_payload(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "(no message)".to_owned(),
            |message| (*message).to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Spins for `time` without yielding: a guest's slice of CPU work.
    fn spin(time: Duration) {
        let until = Instant::now() + time;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    /// Whether the calling thread is `SCHED_IDLE`, as the kernel reports it: the 41st field
    /// of `/proc/thread-self/stat` (`policy`), counted after the parenthesised name, which
    /// may hold spaces.
    fn thread_is_idle() -> bool {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("readable");
        let (_, after_name) = stat.rsplit_once(')').expect("a name in parentheses");
        // Field 3 (the state) is the first after the name.
        let policy = after_name
            .split_whitespace()
            .nth(41 - 3)
            .and_then(|field| field.parse::<i32>().ok())
            .expect("a policy field");
        policy == libc::SCHED_IDLE
    }

    /// The calling thread's name, or its id when it has none.
    fn thread_label() -> String {
        let thread = std::thread::current();
        thread
            .name()
            .map_or_else(|| format!("{:?}", thread.id()), str::to_owned)
    }

    #[tokio::test]
    async fn a_short_job_ends_where_it_was_asked_for_and_a_longer_one_on_a_guest_thread() {
        let own = thread_nice().expect("getpriority");
        let threads = GuestThreads::start(2, 5, INLINE_FOR).expect("starts");
        let expected = (own + 5).min(i32::from(MAX_NICE));
        assert_eq!(threads.nice(), expected);
        let caller = thread_label();
        let short = threads
            .run(
                async { (thread_label(), thread_nice().expect("getpriority")) },
                &StartHint::new(),
            )
            .await
            .expect("the job runs");
        assert_eq!(
            short,
            (caller, own),
            "a short job stays on the caller's thread"
        );
        // A slice past INLINE_FOR, then a yield: the rest runs on a guest thread.
        let (name, nice) = threads
            .run(
                async {
                    spin(INLINE_FOR * 2);
                    tokio::task::yield_now().await;
                    (thread_label(), thread_nice().expect("getpriority"))
                },
                &StartHint::new(),
            )
            .await
            .expect("the job runs");
        assert_eq!(name, "wasmhook-guest");
        assert_eq!(nice, expected, "the guest thread's nice value, read back");
        assert_eq!(
            thread_nice().expect("getpriority"),
            own,
            "the caller's thread keeps its priority"
        );
    }

    #[tokio::test]
    async fn a_long_job_moves_to_the_long_calls_threads_and_ends_there() {
        let own = thread_nice().expect("getpriority");
        let threads = GuestThreads::start(1, 5, INLINE_FOR).expect("starts");
        let long = (own + 5 + i32::from(LONG_NICE_STEP)).min(i32::from(MAX_NICE));
        assert_eq!(threads.long_nice(), long);
        let caller = thread_label();
        // Spins a millisecond a poll, yielding between, for several times DEMOTE_AFTER and
        // then until it has reached the long calls' threads (a loaded machine may be slow
        // to move it), noting where each poll ran.
        let hint = StartHint::new();
        let places = threads
            .run(
                async {
                    let mut places: Vec<(String, i32, bool)> = Vec::new();
                    let started = Instant::now();
                    let reached = |places: &[(String, i32, bool)]| {
                        places
                            .last()
                            .is_some_and(|(name, _, _)| name == "wasmhook-long")
                    };
                    while started.elapsed() < DEMOTE_AFTER * 4
                        || (!reached(&places) && started.elapsed() < Duration::from_secs(10))
                    {
                        let here = (
                            thread_label(),
                            thread_nice().expect("getpriority"),
                            thread_is_idle(),
                        );
                        if places.last() != Some(&here) {
                            places.push(here);
                        }
                        spin(Duration::from_millis(1));
                        tokio::task::yield_now().await;
                    }
                    places
                },
                &hint,
            )
            .await
            .expect("the job ends");
        assert_eq!(
            places,
            [
                (caller, own, false),
                ("wasmhook-guest".to_owned(), threads.nice(), false),
                ("wasmhook-long".to_owned(), long, true)
            ],
            "where it ran, in order, at what nice value, and whether SCHED_IDLE"
        );
        // The module's next job starts on the guest threads; once one has ended quickly
        // there, the one after starts where it is asked for again.
        for expected in [threads.nice(), own] {
            let short = threads
                .run(async { thread_nice().expect("getpriority") }, &hint)
                .await;
            assert_eq!(short.expect("runs"), expected);
        }
        // With slices longer than INLINE_FOR, nothing starts on the caller's thread.
        let coarse = GuestThreads::start(1, 5, INLINE_FOR * 10).expect("starts");
        let nice = coarse
            .run(
                async { thread_nice().expect("getpriority") },
                &StartHint::new(),
            )
            .await;
        assert_eq!(nice.expect("runs"), coarse.nice());
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_pool_runs_on() {
        let threads = GuestThreads::start(1, 0, INLINE_FOR).expect("starts");
        // One panics where it was asked for, one on a guest thread.
        for slice in [Duration::ZERO, INLINE_FOR * 2] {
            let lost = threads
                .run(
                    async move {
                        spin(slice);
                        tokio::task::yield_now().await;
                        panic!("a guest job that panics");
                    },
                    &StartHint::new(),
                )
                .await;
            let Err(Lost(why)) = lost else {
                panic!("a panicking job gave a result");
            };
            assert!(why.contains("a guest job that panics"), "{why}");
        }
        for round in 0..4 {
            let answer = threads
                .run(
                    async move {
                        spin(INLINE_FOR * 2);
                        tokio::task::yield_now().await;
                        round * 2
                    },
                    &StartHint::new(),
                )
                .await;
            assert_eq!(answer.expect("the pool still runs jobs"), round * 2);
        }
    }

    #[tokio::test]
    async fn an_abandoned_job_is_aborted() {
        let threads = GuestThreads::start(1, 0, INLINE_FOR).expect("starts");
        let (dropped, was_dropped) = tokio::sync::oneshot::channel::<()>();
        // Holds `dropped` until the job is dropped: its receiver then sees the sender gone.
        let job = async move {
            let _held = dropped;
            std::future::pending::<()>().await;
        };
        let abandoned = tokio::time::timeout(
            Duration::from_millis(1),
            threads.run(job, &StartHint::new()),
        )
        .await;
        assert!(abandoned.is_err(), "a pending job ended");
        assert!(
            was_dropped.await.is_err(),
            "the job was dropped, not left pending"
        );
    }
}
