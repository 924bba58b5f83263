//! The failures remembered per key, in an LRU map bounded by the policy's capacity, and
//! the lockout rule that reads them: forgotten after a quiet period, charged one per
//! attempt, locked out beyond the free ones, refunded by a success. Generic over the key,
//! so that usernames, accounts and addresses share it; apart from the throttle because it
//! is the state of one kind of key, knowing nothing of logins.

use std::hash::Hash;
use std::time::{Duration, Instant};

use lru::LruCache;

use super::policy::Policy;

/// What is remembered of one key.
#[derive(Debug, Clone, Copy)]
pub(super) struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// The failure counters of one kind of key.
#[derive(Debug)]
pub(super) struct Counters<K: Hash + Eq> {
    policy: Policy,
    /// Read by the throttle's tests, to check that the map stays bounded.
    pub(super) entries: LruCache<K, Failures>,
}

impl<K: Hash + Eq> Counters<K> {
    pub(super) fn new(policy: Policy) -> Self {
        Counters {
            policy,
            entries: LruCache::new(policy.capacity),
        }
    }

    /// The failures of `key` still remembered at `now`.
    fn current(&mut self, key: &K, now: Instant) -> Option<Failures> {
        let failures = *self.entries.get(key)?;
        if now.saturating_duration_since(failures.last) >= self.policy.forget_after {
            self.entries.pop(key);
            return None;
        }
        Some(failures)
    }

    /// How long `key` must still wait at `now`, when it is locked out.
    pub(super) fn wait(&mut self, key: &K, now: Instant) -> Option<Duration> {
        let until = self.current(key, now)?.locked_until?;
        until
            .checked_duration_since(now)
            .filter(|wait| !wait.is_zero())
    }

    /// Counts a failure of `key` at `now`, locking it out when it is beyond the free ones.
    pub(super) fn charge(&mut self, key: K, now: Instant) {
        let count = self
            .current(&key, now)
            .map_or(0, |failures| failures.count)
            .saturating_add(1);
        let locked_until = self
            .policy
            .lockout(count)
            .and_then(|lockout| now.checked_add(lockout));
        self.entries.put(
            key,
            Failures {
                count,
                last: now,
                locked_until,
            },
        );
    }

    /// Takes back one failure of `key` (an attempt that turned out to succeed), and the
    /// lockout it started, if it did.
    pub(super) fn refund(&mut self, key: &K) {
        let policy = self.policy;
        if let Some(failures) = self.entries.peek_mut(key) {
            failures.count = failures.count.saturating_sub(1);
            if policy.lockout(failures.count).is_none() {
                failures.locked_until = None;
            }
        }
    }

    /// Forgets `key` (a username that logged in).
    pub(super) fn clear(&mut self, key: &K) {
        self.entries.pop(key);
    }
}
