//! Concurrency and memory limits: each organization may have so many runs at once and so
//! much guest memory reserved (then 429), and the whole installation no more runs than the
//! runtime's instance pool holds and no more guest memory than its budget (then runs wait
//! their turn). One organization saturating its share cannot take another's.
//!
//! Memory is reserved by what a hook may use (`config.memory_size_mb`), not by what it
//! happens to use, before its run starts: the store limits stop a guest at its reservation,
//! so the guest memory of everything running never exceeds the budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::keyed::KeyedSemaphores;
use crate::model::hook::Hook;

/// Concurrent runs per organization unless configured.
pub const DEFAULT_RUNS_PER_ORGANIZATION: usize = 64;

/// The installation's guest memory when the machine's cannot be read.
const FALLBACK_MACHINE_MB: u64 = 4096;

/// An organization is at one of its limits.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum Busy {
    /// Its runs in progress.
    #[error("the organization has {limit} runs in progress, its limit; retry shortly")]
    Runs {
        /// The limit: on replicas sharing a database, this replica's share of it.
        limit: usize,
    },
    /// Its share of the installation's guest memory.
    #[error(
        "the organization's runs in progress have reserved its share of guest memory \
         ({share_mb} MiB; this call needs {wanted_mb} MiB more); retry shortly"
    )]
    Memory {
        /// The share.
        share_mb: u64,
        /// What the refused call would reserve.
        wanted_mb: u64,
    },
}

/// How much guest memory may be reserved at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// In the whole installation, MiB.
    pub total_mb: u64,
    /// By one organization, MiB.
    pub per_organization_mb: u64,
}

impl MemoryBudget {
    /// Three quarters of the machine's memory (or of the container's, when it has less)
    /// for guests, half of that for one organization; never below what one call may ask
    /// (`max_call_mb`), so every hook can run.
    ///
    /// Reservations are what hooks may use, not what they use, so the budget is generous:
    /// on a 24 GiB machine one organization may have 36 runs of the default 256 MiB at once.
    pub fn for_machine(max_call_mb: u64) -> Self {
        let total_mb = machine_memory_mb().unwrap_or(FALLBACK_MACHINE_MB) / 4 * 3;
        MemoryBudget {
            total_mb,
            per_organization_mb: total_mb / 2,
        }
        .at_least(max_call_mb)
    }

    /// This budget raised where it could not hold one call of `max_call_mb`.
    pub fn at_least(self, max_call_mb: u64) -> Self {
        let per_organization_mb = self.per_organization_mb.max(max_call_mb).max(1);
        MemoryBudget {
            total_mb: self.total_mb.max(per_organization_mb),
            per_organization_mb,
        }
    }
}

/// The memory this process may use in MiB: the machine's (`/proc/meminfo`), or its
/// control group's limit when lower (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`),
/// so that a container is not budgeted beyond what gets it killed.
pub fn machine_memory_mb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let machine_mb = kib / 1024;
    let cgroup_mb = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|path| std::fs::read_to_string(path).ok())
    .filter_map(|text| text.trim().parse::<u64>().ok())
    .map(|bytes| bytes / (1024 * 1024))
    .min();
    Some(cgroup_mb.map_or(machine_mb, |cgroup_mb| cgroup_mb.min(machine_mb)))
}

/// What a run of `hook` reserves: its memory bound when it runs a module, nothing for a
/// webhook (which runs nothing here).
pub fn reserved_mb(hook: &Hook) -> u64 {
    hook.spec
        .kind
        .function()
        .map_or(0, |function| function.limits().memory_size_mb)
}

/// Per-organization and installation-wide run slots and guest memory.
#[derive(Debug)]
pub struct RunLimits {
    per_organization: usize,
    /// Live replicas sharing the database, this one included (1 on SQLite): each takes an
    /// equal share of an organization's runs, so that together they hold its limit.
    replicas: AtomicUsize,
    budget: MemoryBudget,
    /// Each organization's run slots.
    runs: KeyedSemaphores<u64>,
    /// Each organization's share of guest memory, in MiB.
    shares: KeyedSemaphores<u64>,
    installation: Arc<Semaphore>,
    memory: Arc<Semaphore>,
}

/// The right to run: run slots and memory share taken from one organization by
/// [`RunLimits::try_acquire`], for one hook's run or one event's runs, released when
/// dropped. `Dispatcher::run`, `run_event` and `deliver_event` take one by value (a
/// delivery's later turn takes one itself), and its
/// fields are private, so nothing runs a hook without having passed the organization's
/// limits.
#[derive(Debug)]
pub struct RunPermit {
    organization_id: u64,
    _runs: OwnedSemaphorePermit,
    _memory: Option<OwnedSemaphorePermit>,
}

impl RunPermit {
    /// The organization whose slots and share it holds: the only one whose hooks it runs.
    pub fn organization_id(&self) -> u64 {
        self.organization_id
    }

    /// The run slots it holds: the most runs of its event that may be under way at once
    /// (an event of more hooks than the organization's share runs them that many at a
    /// time, never more than the share).
    pub fn runs(&self) -> usize {
        self._runs.num_permits().max(1)
    }
}

/// A run's place in the installation: an instance slot and its guest memory.
#[derive(Debug)]
pub struct InstanceSlot {
    _instance: Option<OwnedSemaphorePermit>,
    _memory: Option<OwnedSemaphorePermit>,
}

/// MiB as semaphore permits (which count in u32).
fn permits(mb: u64) -> u32 {
    u32::try_from(mb)
        .unwrap_or(u32::MAX)
        .min(Semaphore::MAX_PERMITS as u32)
}

impl RunLimits {
    /// Limits with `per_organization` runs each and `installation` in all, and `budget`
    /// of guest memory.
    pub fn new(per_organization: usize, installation: usize, budget: MemoryBudget) -> Self {
        let budget = budget.at_least(1);
        let runs = KeyedSemaphores::new(per_organization);
        RunLimits {
            per_organization: runs.capacity(),
            replicas: AtomicUsize::new(1),
            budget,
            runs,
            shares: KeyedSemaphores::new(permits(budget.per_organization_mb) as usize),
            installation: Arc::new(Semaphore::new(installation.max(1))),
            memory: Arc::new(Semaphore::new(permits(budget.total_mb) as usize)),
        }
    }

    /// The per-organization run limit.
    pub fn per_organization(&self) -> usize {
        self.per_organization
    }

    /// Records how many replicas share the database (from their heartbeats), this one
    /// included; at least one.
    pub fn set_replicas(&self, replicas: usize) {
        self.replicas.store(replicas.max(1), Ordering::Relaxed);
    }

    /// This replica's share of an organization's runs: the limit split evenly between the
    /// live replicas (rounded down, so that together they never exceed it), at least one
    /// run each.
    pub fn share(&self) -> usize {
        (self.per_organization / self.replicas.load(Ordering::Relaxed).max(1)).max(1)
    }

    /// The organizations holding all of this replica's share of their runs: no run of
    /// theirs can start here until one ends.
    pub fn saturated(&self) -> Vec<u64> {
        self.runs.holding_at_least(self.share())
    }

    /// The memory budget.
    pub fn budget(&self) -> MemoryBudget {
        self.budget
    }

    /// Takes `runs` of the organization's run slots and `memory_mb` of its memory share
    /// now, or says which is busy. More than the limits can ever give is clamped to them,
    /// so a large event waits for the whole share rather than never running. The permit
    /// is what the dispatcher's runs take.
    pub fn try_acquire(
        &self,
        organization_id: u64,
        runs: usize,
        memory_mb: u64,
    ) -> Result<RunPermit, Busy> {
        let share = self.share();
        let wanted = u32::try_from(runs.clamp(1, share)).unwrap_or(1);
        let runs = self
            .runs
            .try_acquire_many_within(organization_id, wanted, share)
            .map_err(|_| Busy::Runs { limit: share })?;
        let memory = match memory_mb.min(self.budget.per_organization_mb) {
            0 => None,
            wanted_mb => Some(
                self.shares
                    .try_acquire_many(organization_id, permits(wanted_mb))
                    .map_err(|_| Busy::Memory {
                        share_mb: self.budget.per_organization_mb,
                        wanted_mb,
                    })?,
            ),
        };
        Ok(RunPermit {
            organization_id,
            _runs: runs,
            _memory: memory,
        })
    }

    /// Takes what the runs of `hooks` need together from the organization: a run slot each
    /// and the memory each reserves ([`reserved_mb`]); see [`RunLimits::try_acquire`]. The
    /// one reckoning of a test's, an invocation's and an event's permit.
    pub fn try_acquire_for(
        &self,
        organization_id: u64,
        hooks: &[&Hook],
    ) -> Result<RunPermit, Busy> {
        let memory_mb: u64 = hooks.iter().map(|&hook| reserved_mb(hook)).sum();
        self.try_acquire(organization_id, hooks.len(), memory_mb)
    }

    /// Waits for an instance slot of the installation and `memory_mb` of its guest memory
    /// (first come, first served).
    pub async fn instance(&self, memory_mb: u64) -> InstanceSlot {
        let instance = Arc::clone(&self.installation).acquire_owned().await.ok();
        let memory = match memory_mb.min(self.budget.total_mb) {
            0 => None,
            wanted => Arc::clone(&self.memory)
                .acquire_many_owned(permits(wanted))
                .await
                .ok(),
        };
        InstanceSlot {
            _instance: instance,
            _memory: memory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(total_mb: u64, per_organization_mb: u64) -> MemoryBudget {
        MemoryBudget {
            total_mb,
            per_organization_mb,
        }
    }

    #[test]
    fn an_organization_holding_its_share_of_runs_is_saturated() {
        let limits = RunLimits::new(4, 256, budget(1024, 512));
        limits.set_replicas(2);
        let _first = limits.try_acquire(1, 1, 0).expect("room");
        let _other = limits.try_acquire(2, 1, 0).expect("room");
        assert!(limits.saturated().is_empty(), "one run of a share of two");
        let second = limits.try_acquire(1, 1, 0).expect("room");
        assert_eq!(limits.saturated(), vec![1]);
        drop(second);
        assert!(limits.saturated().is_empty(), "given back");
    }

    #[test]
    fn an_organizations_memory_share_is_its_own() {
        let limits = RunLimits::new(64, 256, budget(1024, 512));
        let first = limits.try_acquire(1, 1, 256).expect("room");
        let _second = limits.try_acquire(1, 1, 256).expect("room");
        assert!(matches!(
            limits.try_acquire(1, 1, 256),
            Err(Busy::Memory {
                share_mb: 512,
                wanted_mb: 256
            })
        ));
        assert!(
            limits.try_acquire(2, 1, 512).is_ok(),
            "another organization"
        );
        drop(first);
        assert!(limits.try_acquire(1, 1, 256).is_ok(), "given back");
    }

    #[test]
    fn replicas_split_an_organizations_runs_and_each_keeps_at_least_one() {
        let limits = RunLimits::new(4, 256, budget(1024, 512));
        limits.set_replicas(2);
        assert_eq!(limits.share(), 2);
        let _one = limits.try_acquire(1, 1, 0).expect("room");
        let _two = limits.try_acquire(1, 1, 0).expect("room");
        assert!(matches!(
            limits.try_acquire(1, 1, 0),
            Err(Busy::Runs { limit: 2 })
        ));
        // Another organization has its own share; an event of more runs than the share is
        // clamped to it, as to the limit on one replica.
        assert!(limits.try_acquire(2, 9, 0).is_ok(), "another organization");
        limits.set_replicas(3);
        assert_eq!(
            limits.share(),
            1,
            "rounded down, so together they hold the limit"
        );
        limits.set_replicas(9);
        assert_eq!(
            limits.share(),
            1,
            "never none: every replica serves every organization"
        );
        limits.set_replicas(0);
        assert_eq!(limits.share(), 4, "no count is one replica");
    }

    #[test]
    fn a_permit_names_its_organization() {
        let limits = RunLimits::new(64, 256, budget(1024, 512));
        let permit = limits.try_acquire(7, 1, 16).expect("room");
        assert_eq!(permit.organization_id(), 7);
    }

    #[test]
    fn runs_are_limited_and_webhooks_reserve_no_memory() {
        let limits = RunLimits::new(2, 256, budget(64, 32));
        let _one = limits.try_acquire(1, 1, 0).expect("room");
        let _two = limits.try_acquire(1, 1, 0).expect("room");
        assert!(matches!(
            limits.try_acquire(1, 1, 0),
            Err(Busy::Runs { limit: 2 })
        ));
    }

    #[test]
    fn an_event_of_no_hooks_still_takes_one_slot_and_no_memory() {
        let limits = RunLimits::new(1, 256, budget(64, 32));
        let permit = limits.try_acquire_for(1, &[]).expect("room");
        assert!(matches!(
            limits.try_acquire(1, 1, 0),
            Err(Busy::Runs { limit: 1 })
        ));
        drop(permit);
        assert!(
            limits.try_acquire(1, 1, 32).is_ok(),
            "its memory was never taken"
        );
    }

    #[test]
    fn an_event_larger_than_the_share_waits_for_all_of_it() {
        let limits = RunLimits::new(64, 256, budget(1024, 512));
        let all = limits
            .try_acquire(1, 5, 5 * 512)
            .expect("clamped to the share");
        assert!(limits.try_acquire(1, 1, 16).is_err());
        drop(all);
        assert!(limits.try_acquire(1, 1, 16).is_ok());
    }

    #[tokio::test]
    async fn the_installation_budget_makes_runs_wait() {
        let limits = Arc::new(RunLimits::new(64, 256, budget(512, 512)));
        let held = limits.instance(400).await;
        let waiting = {
            let limits = Arc::clone(&limits);
            tokio::spawn(async move { limits.instance(200).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "over the budget, it waits");
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("it runs once memory is given back")
            .expect("the task ends");
    }

    #[test]
    fn a_budget_holds_at_least_one_largest_call() {
        assert_eq!(budget(100, 10).at_least(512), budget(512, 512));
        let machine = MemoryBudget::for_machine(512);
        assert!(machine.per_organization_mb >= 512);
        assert!(machine.total_mb >= machine.per_organization_mb);
    }
}
