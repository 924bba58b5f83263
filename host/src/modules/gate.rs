//! Who may compile now: a host-wide bound on compiles at once, a per-organization bound,
//! and a per-organization budget of compile time and of refused uploads over a window.
//!
//! Compiling is CPU and memory no other tenant can use meanwhile. The structural precheck
//! bounds one compile; this bounds how many run together and how much one organization may
//! spend, so an organization uploading in a loop (valid modules or broken ones) is slowed
//! to a trickle with 429 and `Retry-After` while others upload as usual.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What compiling may cost: places at once in the installation, and for each
/// organization its modules waiting, its compile time and its refused uploads per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileBudget {
    /// Compiles at once in the whole installation. At most one of them is a background
    /// compile (a large module, seconds long), so a small upload never waits behind one.
    pub concurrent: usize,
    /// Large modules of one organization waiting for or in their background compile; more
    /// uploads of large modules get 429 until one is done. (Small ones compile while their
    /// upload waits, one at a time per organization.) Organizations take turns in the
    /// background, so a long queue of one delays another's by one compile at most.
    pub pending_per_organization: usize,
    /// Compile time one organization may spend per window.
    pub seconds_per_window: u64,
    /// Uploads of one organization refused per window (malformed, beyond the bounds,
    /// failing to compile) before further uploads get 429: refusing costs little, but a
    /// loop of them should not cost anything at all.
    pub refusals_per_window: u64,
    /// How long an organization's spending counts: both budgets start again from zero
    /// once this much time has passed since its window began.
    pub window: Duration,
}

impl Default for CompileBudget {
    fn default() -> Self {
        CompileBudget {
            // Cranelift spreads one compile over every core already; a second place keeps
            // a small upload from waiting behind a large one.
            concurrent: 2,
            pending_per_organization: 10,
            seconds_per_window: 300,
            refusals_per_window: 50,
            window: Duration::from_secs(600),
        }
    }
}

/// Why an organization may not compile now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompileRefused {
    /// Another upload of the organization is compiling while it waits.
    #[error("another module of this organization is compiling; retry when it is done")]
    Busy,
    /// It has as many large modules waiting for their compile as it may.
    #[error("this organization has {0} modules waiting to compile, its limit; retry when they are ready")]
    Pending(usize),
    /// It spent its compile time for now.
    #[error("this organization spent its compile time ({seconds} s per {window_s} s); retry in {retry_after_s} s")]
    TimeSpent {
        /// Compile seconds the organization may spend per window.
        seconds: u64,
        /// The window's length in seconds.
        window_s: u64,
        /// Until the window turns.
        retry_after_s: u64,
    },
    /// Too many of its uploads were refused lately.
    #[error("{count} uploads of this organization were refused in the last {window_s} s; retry in {retry_after_s} s")]
    TooManyRefused {
        /// Refusals in the window.
        count: u64,
        /// The window's length in seconds.
        window_s: u64,
        /// Until the window turns.
        retry_after_s: u64,
    },
}

impl CompileRefused {
    /// Seconds after which a retry may succeed.
    pub fn retry_after_s(&self) -> u64 {
        match self {
            CompileRefused::Busy => 2,
            CompileRefused::Pending(_) => 10,
            CompileRefused::TimeSpent { retry_after_s, .. }
            | CompileRefused::TooManyRefused { retry_after_s, .. } => *retry_after_s,
        }
    }
}

/// One organization's spending in the current window.
#[derive(Debug)]
struct Spending {
    since: Instant,
    compile_time: Duration,
    refusals: u64,
    foreground: Arc<Semaphore>,
    /// The organization's one place in line for the installation's background place: it
    /// makes organizations take turns there instead of queueing behind each other.
    background: Arc<Semaphore>,
    pending: usize,
}

/// The gate every compile passes.
#[derive(Debug)]
pub struct CompileGate {
    budget: CompileBudget,
    installation: Arc<Semaphore>,
    background: Arc<Semaphore>,
    organizations: Mutex<HashMap<u64, Spending>>,
}

/// The right to compile, held for the compile's length; its time is charged (and a
/// background place given back) when dropped.
#[derive(Debug)]
pub struct CompilePermit {
    gate: Arc<CompileGate>,
    organization: u64,
    started: Instant,
    _queued: Option<Queued>,
    _slots: Vec<OwnedSemaphorePermit>,
}

impl Drop for CompilePermit {
    fn drop(&mut self) {
        let spent = self.started.elapsed();
        self.gate
            .with_spending(self.organization, |spending| spending.compile_time += spent);
    }
}

/// A large module's place in the background queue, taken when its upload is accepted and
/// given back when dropped (after its compile, or if it is never compiled).
#[derive(Debug)]
pub struct Queued {
    gate: Arc<CompileGate>,
    organization: u64,
}

impl Queued {
    /// Whose compile it is.
    pub fn organization(&self) -> u64 {
        self.organization
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.gate.with_spending(self.organization, |spending| {
            spending.pending = spending.pending.saturating_sub(1);
        });
    }
}

impl CompileGate {
    /// A gate with this budget.
    pub fn new(budget: CompileBudget) -> Arc<Self> {
        Arc::new(CompileGate {
            budget,
            installation: Arc::new(Semaphore::new(budget.concurrent.max(1))),
            background: Arc::new(Semaphore::new(1)),
            organizations: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `f` on the organization's spending, its window turned first when over.
    fn with_spending<T>(&self, organization: u64, f: impl FnOnce(&mut Spending) -> T) -> T {
        let mut organizations = self
            .organizations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let spending = organizations
            .entry(organization)
            .or_insert_with(|| Spending {
                since: Instant::now(),
                compile_time: Duration::ZERO,
                refusals: 0,
                foreground: Arc::new(Semaphore::new(1)),
                background: Arc::new(Semaphore::new(1)),
                pending: 0,
            });
        if spending.since.elapsed() >= self.budget.window {
            spending.since = Instant::now();
            spending.compile_time = Duration::ZERO;
            spending.refusals = 0;
        }
        f(spending)
    }

    /// Whether the organization may upload now: neither its refusals nor its compile time
    /// are spent. Checked before anything of the upload is looked at.
    pub fn admit(&self, organization: u64) -> Result<(), CompileRefused> {
        let budget = self.budget;
        self.with_spending(organization, |spending| {
            let retry_after_s = budget
                .window
                .saturating_sub(spending.since.elapsed())
                .as_secs()
                .max(1);
            let window_s = budget.window.as_secs();
            if spending.refusals >= budget.refusals_per_window {
                return Err(CompileRefused::TooManyRefused {
                    count: spending.refusals,
                    window_s,
                    retry_after_s,
                });
            }
            if spending.compile_time.as_secs() >= budget.seconds_per_window {
                return Err(CompileRefused::TimeSpent {
                    seconds: budget.seconds_per_window,
                    window_s,
                    retry_after_s,
                });
            }
            Ok(())
        })
    }

    /// Counts a refused upload against the organization.
    pub fn refused(&self, organization: u64) {
        self.with_spending(organization, |spending| spending.refusals += 1);
    }

    /// The right to compile now for an upload that waits: the organization's one
    /// foreground place at once or [`CompileRefused::Busy`], then the installation's when
    /// one frees (within about a second: foreground compiles are small).
    pub async fn foreground(
        self: &Arc<Self>,
        organization: u64,
    ) -> Result<CompilePermit, CompileRefused> {
        let place = self.with_spending(organization, |spending| Arc::clone(&spending.foreground));
        let place = place
            .try_acquire_owned()
            .map_err(|_| CompileRefused::Busy)?;
        let installation = acquire(&self.installation).await;
        Ok(self.permit(organization, None, vec![place, installation]))
    }

    /// A place in the background queue for a large module of `organization`, or
    /// [`CompileRefused::Pending`] when it has its share queued already. The installation's
    /// own recompiles (`account` 0) are never refused.
    pub fn queue(self: &Arc<Self>, organization: u64) -> Result<Queued, CompileRefused> {
        let cap = self.budget.pending_per_organization.max(1);
        self.with_spending(organization, |spending| {
            if organization != 0 && spending.pending >= cap {
                return Err(CompileRefused::Pending(cap));
            }
            spending.pending += 1;
            Ok(())
        })?;
        Ok(Queued {
            gate: Arc::clone(self),
            organization,
        })
    }

    /// The right to compile a queued module in the background: waits for the
    /// organization's turn, then the one background place and an installation place.
    pub async fn background(self: &Arc<Self>, queued: Queued) -> CompilePermit {
        let turn = self.with_spending(queued.organization, |spending| {
            Arc::clone(&spending.background)
        });
        let turn = acquire(&turn).await;
        let background = acquire(&self.background).await;
        let installation = acquire(&self.installation).await;
        self.permit(
            queued.organization,
            Some(queued),
            vec![turn, background, installation],
        )
    }

    fn permit(
        self: &Arc<Self>,
        organization: u64,
        queued: Option<Queued>,
        slots: Vec<OwnedSemaphorePermit>,
    ) -> CompilePermit {
        CompilePermit {
            gate: Arc::clone(self),
            organization,
            started: Instant::now(),
            _queued: queued,
            _slots: slots,
        }
    }
}

/// A permit of a semaphore that is never closed.
async fn acquire(semaphore: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    loop {
        // Never closed; should it be, try again rather than fail a compile.
        if let Ok(permit) = Arc::clone(semaphore).acquire_owned().await {
            return permit;
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> CompileBudget {
        CompileBudget {
            concurrent: 1,
            pending_per_organization: 1,
            seconds_per_window: 1,
            refusals_per_window: 3,
            window: Duration::from_secs(600),
        }
    }

    #[test]
    fn refusals_are_counted_per_organization() {
        let gate = CompileGate::new(budget());
        for _ in 0..3 {
            assert_eq!(gate.admit(1), Ok(()));
            gate.refused(1);
        }
        match gate.admit(1) {
            Err(CompileRefused::TooManyRefused {
                count,
                retry_after_s,
                ..
            }) => {
                assert_eq!(count, 3);
                assert!(retry_after_s > 590, "{retry_after_s}");
            }
            other => panic!("expected too many refusals, got {other:?}"),
        }
        assert_eq!(gate.admit(2), Ok(()), "another organization is not slowed");
    }

    #[tokio::test]
    async fn one_organization_compiles_once_at_a_time_and_pays_for_its_time() {
        let gate = CompileGate::new(budget());
        let permit = gate
            .foreground(1)
            .await
            .expect("the first compile may start");
        assert_eq!(gate.foreground(1).await.err(), Some(CompileRefused::Busy));
        std::thread::sleep(Duration::from_millis(1100));
        drop(permit);
        assert!(matches!(
            gate.admit(1),
            Err(CompileRefused::TimeSpent { .. })
        ));
        assert_eq!(gate.admit(2), Ok(()));
    }

    #[tokio::test]
    async fn an_organization_queues_few_large_modules_and_gets_its_place_back() {
        let gate = CompileGate::new(budget());
        let queued = gate.queue(1).expect("room in the queue");
        assert_eq!(gate.queue(1).err(), Some(CompileRefused::Pending(1)));
        assert!(gate.queue(2).is_ok(), "another organization queues its own");
        assert!(
            gate.queue(0).is_ok() && gate.queue(0).is_ok(),
            "never the installation"
        );
        drop(gate.background(queued).await);
        assert!(gate.queue(1).is_ok(), "given back when compiled");
    }

    #[tokio::test]
    async fn organizations_take_turns_in_the_background() {
        let gate = CompileGate::new(CompileBudget {
            pending_per_organization: 10,
            ..budget()
        });
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = gate.background(gate.queue(1).expect("room")).await;
        let mut waiting = Vec::new();
        for organization in [1, 1, 1, 2] {
            let queued = gate.queue(organization).expect("room");
            let (gate, order) = (Arc::clone(&gate), Arc::clone(&order));
            waiting.push(tokio::spawn(async move {
                let permit = gate.background(queued).await;
                order
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(organization);
                drop(permit);
            }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(first);
        for task in waiting {
            task.await.expect("the task ends");
        }
        let order = order
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Organization 1's three waited behind its own running compile; organization 2's
        // one was next in line for the installation's place.
        assert_eq!(*order, [2, 1, 1, 1]);
    }

    #[test]
    fn a_window_turns() {
        let gate = CompileGate::new(CompileBudget {
            window: Duration::from_millis(50),
            ..budget()
        });
        for _ in 0..3 {
            gate.refused(1);
        }
        assert!(gate.admit(1).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(gate.admit(1), Ok(()));
    }
}
