//! Warm instances: the idle instances of hooks whose `config.reuse_instances` asks for them,
//! kept between calls as a Lambda-backed function keeps its environment.
//!
//! An instance is only ever handed back to the same hook of the same organization, at the
//! same version (its module, its memory limit, and a digest of its settings, secrets and
//! config that the caller computes): [`WarmKey`] holds all of them, so a changed hook or
//! module simply finds nothing and starts fresh. The pool keeps only instances whose last
//! call completed (the caller drops the rest), each for its hook's `idle_s` and
//! `max_calls`, at most [`WarmBounds::per_organization`] per organization and
//! [`WarmBounds::total`] in all, the oldest discarded first. Every instance holds a place
//! of the instance pool and its guest memory while idle, which is why the bounds are small.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::bindings::Extension;
use super::module::Digest;
use super::output::Capture;
use super::state::ComponentState;
use crate::metrics::metrics;

/// How many distinct secret values and tokens an instance may have been handed before it
/// retires. It remembers every one, so that a guest that kept an old token (still valid
/// for its hook's `token_lifetime_s`) in its memory cannot print it in a later call's
/// output; forgetting the oldest instead would let it out after enough calls. A token a
/// call, so an instance serves at most about this many calls whatever `max_calls` says.
const REMEMBERED_VALUES: usize = 256;

/// The pool's bounds unless configured (the server's `[limits]` defaults).
pub const DEFAULT_WARM_BOUNDS: WarmBounds = WarmBounds {
    total: 32,
    per_organization: 4,
    max_idle: Duration::from_secs(600),
    memory_bytes: 1024 * 1024 * 1024,
};

/// How many idle instances the pool keeps, and for how long at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmBounds {
    /// Idle instances in all; 0 keeps none (reuse is off).
    pub total: usize,
    /// Idle instances of one organization.
    pub per_organization: usize,
    /// The longest an instance waits idle, whatever its hook asks.
    pub max_idle: Duration,
    /// The guest memory idle instances may keep in all, each counted at its memory limit:
    /// memory outside every run's reservation, so bounded on its own.
    pub memory_bytes: u64,
}

/// Whose instance it is: one hook of one organization, at one version of its settings,
/// secrets and config (a digest the caller computes; any change starts a new instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WarmHook {
    /// The organization that owns the hook.
    pub organization: u64,
    /// The hook.
    pub hook: u64,
    /// A digest of what the instance was made for besides its module and memory limit.
    pub version: Digest,
}

/// How long and how often one instance may serve its hook (`config.reuse_instances`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusePolicy {
    /// Calls one instance serves before it is discarded.
    pub max_calls: u64,
    /// How long it waits idle for the next call before it is discarded.
    pub idle: Duration,
}

/// What a call asks of [`Runtime::call_reusing`](super::Runtime::call_reusing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// Whose instance.
    pub hook: WarmHook,
    /// Its bounds.
    pub policy: ReusePolicy,
}

/// The whole identity of a warm instance: the hook's, its module and its memory limit
/// (which the instance's limiter enforces and cannot change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WarmKey {
    pub(crate) hook: WarmHook,
    pub(crate) module: Digest,
    /// The module's tier: once its optimized code is swapped in, the instances of its
    /// quick code are no longer taken (they expire).
    pub(crate) code: super::CodeTier,
    pub(crate) memory_bytes: u64,
}

/// An instance with its store, between two calls of its hook.
pub(crate) struct WarmInstance {
    pub(crate) store: Store<ComponentState>,
    pub(crate) extension: Extension,
    /// The capture its WASI stdout and stderr write to: emptied after every call.
    pub(crate) output: Capture,
    calls: u64,
    /// Every secret value and token of its earlier calls, oldest first.
    remembered: VecDeque<String>,
}

impl WarmInstance {
    /// An instance just made, before its first call.
    pub(crate) fn new(store: Store<ComponentState>, extension: Extension, output: Capture) -> Self {
        WarmInstance {
            store,
            extension,
            output,
            calls: 0,
            remembered: VecDeque::new(),
        }
    }

    /// What earlier calls on this instance had to hide, for this call's redactor.
    pub(crate) fn remembered(&self) -> impl Iterator<Item = &str> {
        self.remembered.iter().map(String::as_str)
    }

    /// Counts a completed call and remembers the values it had to hide.
    pub(crate) fn finished<'a>(&mut self, hidden: impl Iterator<Item = &'a str>) {
        self.calls += 1;
        for value in hidden {
            if !self.remembered.iter().any(|known| known == value) {
                self.remembered.push_back(value.to_owned());
            }
        }
    }

    /// Whether it has been handed as many values as it may remember: it is not kept.
    pub(crate) fn retired(&self) -> bool {
        self.remembered.len() >= REMEMBERED_VALUES
    }
}

/// An instance waiting in the pool.
struct Idle {
    key: WarmKey,
    instance: WarmInstance,
    until: Instant,
}

/// The idle instances, oldest first.
pub(crate) struct WarmPool {
    bounds: WarmBounds,
    idle: Mutex<Vec<Idle>>,
}

impl std::fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool")
            .field("bounds", &self.bounds)
            .field("idle", &self.lock().len())
            .finish()
    }
}

impl WarmPool {
    pub(crate) fn new(bounds: WarmBounds) -> Self {
        WarmPool {
            bounds,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        // The list holds no invariant a panic could break halfway.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The newest idle instance of `key` that has not expired, taken out of the pool.
    pub(crate) fn take(&self, key: &WarmKey) -> Option<WarmInstance> {
        let (taken, expired) = {
            let mut idle = self.lock();
            let expired = drain_expired(&mut idle, Instant::now());
            let found = idle.iter().rposition(|entry| entry.key == *key);
            let taken = found.map(|index| idle.remove(index).instance);
            publish(idle.len());
            (taken, expired)
        };
        // Dropping a store frees its instance and memory: outside the lock.
        drop(expired);
        taken
    }

    /// Keeps `instance` for its hook's next call, unless it has served its calls; makes
    /// room by discarding the oldest of its organization, then the oldest of all.
    pub(crate) fn put(&self, key: WarmKey, instance: WarmInstance, policy: ReusePolicy) {
        if instance.calls >= policy.max_calls || self.bounds.total == 0 {
            return;
        }
        let until = Instant::now() + policy.idle.min(self.bounds.max_idle);
        let discarded = {
            let mut idle = self.lock();
            idle.push(Idle {
                key,
                instance,
                until,
            });
            let discarded = self.make_room(&mut idle, key.hook.organization);
            publish(idle.len());
            discarded
        };
        drop(discarded);
    }

    /// Discards instances idle past their time.
    pub(crate) fn sweep(&self) {
        let expired = {
            let mut idle = self.lock();
            let expired = drain_expired(&mut idle, Instant::now());
            publish(idle.len());
            expired
        };
        drop(expired);
    }

    /// Idle instances now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn make_room(&self, idle: &mut Vec<Idle>, organization: u64) -> Vec<Idle> {
        let held: Vec<(u64, u64)> = idle
            .iter()
            .map(|entry| (entry.key.hook.organization, entry.key.memory_bytes))
            .collect();
        let mut leaving = evictions(&held, organization, &self.bounds);
        // From the back, so that the positions before stay true.
        leaving.sort_unstable_by(|a, b| b.cmp(a));
        leaving
            .into_iter()
            .map(|index| idle.remove(index))
            .collect()
    }
}

/// Which of the idle instances `held` (each its organization and memory, oldest first) go
/// to make room after `organization` added the newest, by position: past the
/// organization's count, its oldest; past the total count, the oldest of all; past the
/// memory, the oldest of `organization` while it keeps more than a fair share of it (a
/// quarter), then the oldest of all. An organization whose hooks keep large instances
/// idle then makes room among its own before it takes another's.
fn evictions(held: &[(u64, u64)], organization: u64, bounds: &WarmBounds) -> Vec<usize> {
    let mut kept: Vec<bool> = vec![true; held.len()];
    // The instances still kept, of `of` (of everyone when none): position and bytes.
    let kept_of = |kept: &[bool], of: Option<u64>| {
        held.iter()
            .zip(kept)
            .enumerate()
            .filter(move |(_, ((owner, _), kept))| **kept && of.is_none_or(|of| of == *owner))
            .map(|(index, ((_, bytes), _))| (index, *bytes))
            .collect::<Vec<_>>()
    };
    let count = |kept: &[bool], of: Option<u64>| kept_of(kept, of).len();
    let oldest =
        |kept: &[bool], of: Option<u64>| kept_of(kept, of).first().map(|(index, _)| *index);
    let memory = |kept: &[bool], of: Option<u64>| -> u64 {
        kept_of(kept, of).iter().map(|(_, bytes)| bytes).sum()
    };
    while count(&kept, Some(organization)) > bounds.per_organization {
        let Some(index) = oldest(&kept, Some(organization)) else {
            break;
        };
        kept[index] = false;
    }
    while count(&kept, None) > bounds.total {
        let Some(index) = oldest(&kept, None) else {
            break;
        };
        kept[index] = false;
    }
    let share = bounds.memory_bytes / 4;
    while memory(&kept, None) > bounds.memory_bytes {
        let whose = if memory(&kept, Some(organization)) > share {
            Some(organization)
        } else {
            None
        };
        let Some(index) = oldest(&kept, whose) else {
            break;
        };
        kept[index] = false;
    }
    kept.iter()
        .enumerate()
        .filter(|(_, kept)| !**kept)
        .map(|(index, _)| index)
        .collect()
}

/// Takes the entries past their time out of `idle`.
fn drain_expired(idle: &mut Vec<Idle>, now: Instant) -> Vec<Idle> {
    let mut expired = Vec::new();
    let mut index = 0;
    while index < idle.len() {
        if idle[index].until <= now {
            expired.push(idle.remove(index));
        } else {
            index += 1;
        }
    }
    expired
}

/// Sets the `warm_instances` gauge.
fn publish(idle: usize) {
    if let Some(metrics) = metrics() {
        metrics
            .warm_instances
            .set(i64::try_from(idle).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(total: usize, per_organization: usize, memory_bytes: u64) -> WarmBounds {
        WarmBounds {
            total,
            per_organization,
            max_idle: Duration::from_secs(60),
            memory_bytes,
        }
    }

    #[test]
    fn an_organization_keeping_large_instances_makes_room_among_its_own() {
        // Organization 1 keeps three small instances; 2 adds large ones past the memory.
        let held = [(1, 100), (1, 100), (1, 100), (2, 400), (2, 400)];
        assert_eq!(evictions(&held, 2, &bounds(32, 4, 1000)), vec![3]);
        // Within its share, the oldest of all goes.
        let held = [(1, 300), (1, 300), (1, 300), (2, 200)];
        assert_eq!(evictions(&held, 2, &bounds(32, 4, 900)), vec![0]);
    }

    #[test]
    fn counts_are_bounded_per_organization_then_in_all() {
        let held = [(1, 1), (2, 1), (1, 1), (1, 1)];
        assert_eq!(evictions(&held, 1, &bounds(32, 2, 1000)), vec![0]);
        let held = [(1, 1), (2, 1), (3, 1)];
        assert_eq!(evictions(&held, 3, &bounds(2, 4, 1000)), vec![0]);
        assert!(evictions(&held, 3, &bounds(3, 4, 1000)).is_empty());
    }
}
