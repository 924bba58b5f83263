//! Semaphores per key: each key (to the server, an organization) gets its own semaphore of
//! the same capacity, made at the key's first use, so that one key holding all of its
//! permits cannot take another's.
//!
//! One type for the per-organization limits that need it, outbound requests in flight
//! (`outbound/client.rs`), runs with their memory share (`dispatch/limits.rs`), uploads
//! under way (`api/modules.rs`) and reads that may scan (`store/readers.rs`), so that the
//! map, its lock and its capacity rule are written once. It imports nothing of the crate:
//! each of those uses it without importing the others.
//!
//! Entries are never removed: a key's semaphore lives as long as the map, as in the two
//! maps it replaces. Keys are organizations, which the store bounds, and an idle entry is
//! a semaphore of a few words; removing one while a permit of it is out would let the key
//! take its capacity twice.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// A semaphore of `capacity` permits for every key: the per-organization limits' one map.
#[derive(Debug)]
pub struct KeyedSemaphores<K> {
    capacity: usize,
    semaphores: Mutex<HashMap<K, Arc<Semaphore>>>,
}

impl<K: Eq + Hash> KeyedSemaphores<K> {
    /// Semaphores of `capacity` permits each: at least one, so that every key can be
    /// served, and at most [`Semaphore::MAX_PERMITS`], the most a semaphore holds.
    pub fn new(capacity: usize) -> Self {
        KeyedSemaphores {
            capacity: capacity.clamp(1, Semaphore::MAX_PERMITS),
            semaphores: Mutex::new(HashMap::new()),
        }
    }

    /// The permits of each key's semaphore.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Waits for one of `key`'s permits (first come, first served among the key's
    /// waiters); it is given back when dropped. Fails only if the semaphore was closed,
    /// which nothing here does.
    pub async fn acquire(&self, key: K) -> Result<OwnedSemaphorePermit, AcquireError> {
        self.of(key).acquire_owned().await
    }

    /// Takes `permits` of `key`'s permits now, or says that there are not that many free
    /// ([`TryAcquireError::NoPermits`]); they are given back when dropped.
    pub fn try_acquire_many(
        &self,
        key: K,
        permits: u32,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.of(key).try_acquire_many_owned(permits)
    }

    /// As [`KeyedSemaphores::try_acquire_many`], but only while `key` would then hold at
    /// most `limit` permits (a limit below the capacity: this process's share of a limit
    /// several processes split). The count and the take happen under the map's lock, so
    /// two callers cannot both pass the check with one place left.
    pub fn try_acquire_many_within(
        &self,
        key: K,
        permits: u32,
        limit: usize,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        let mut semaphores = self.lock();
        let semaphore = Arc::clone(
            semaphores
                .entry(key)
                .or_insert_with(|| Arc::new(Semaphore::new(self.capacity))),
        );
        if self.held(&semaphore) + permits as usize > limit {
            return Err(TryAcquireError::NoPermits);
        }
        let taken = semaphore.try_acquire_many_owned(permits);
        drop(semaphores);
        taken
    }

    /// The keys holding `limit` permits or more: those a caller holding keys to
    /// [`KeyedSemaphores::try_acquire_many_within`] that limit need not try now.
    pub fn holding_at_least(&self, limit: usize) -> Vec<K>
    where
        K: Copy,
    {
        self.lock()
            .iter()
            .filter(|(_, semaphore)| self.held(semaphore) >= limit)
            .map(|(key, _)| *key)
            .collect()
    }

    /// The permits of a key's `semaphore` that are taken.
    fn held(&self, semaphore: &Semaphore) -> usize {
        self.capacity - semaphore.available_permits()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<Semaphore>>> {
        // Every update leaves the map consistent, so a poisoned lock is still usable.
        self.semaphores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The semaphore of `key`, made full on its first use.
    fn of(&self, key: K) -> Arc<Semaphore> {
        let mut semaphores = self.lock();
        Arc::clone(
            semaphores
                .entry(key)
                .or_insert_with(|| Arc::new(Semaphore::new(self.capacity))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use futures::FutureExt;

    #[test]
    fn a_key_gets_its_capacity_and_no_more() {
        let keyed = KeyedSemaphores::new(2);
        let _one = keyed.try_acquire_many(1_u64, 1).expect("a first permit");
        let _two = keyed.try_acquire_many(1, 1).expect("a second permit");
        assert!(matches!(
            keyed.try_acquire_many(1, 1),
            Err(TryAcquireError::NoPermits)
        ));
    }

    #[test]
    fn a_dropped_permit_is_given_back() {
        let keyed = KeyedSemaphores::new(2);
        let all = keyed
            .try_acquire_many(1_u64, 2)
            .expect("the whole capacity");
        assert!(keyed.try_acquire_many(1, 1).is_err(), "all taken");
        drop(all);
        let _again = keyed.try_acquire_many(1, 2).expect("given back whole");
    }

    #[test]
    fn keys_are_independent() {
        let keyed = KeyedSemaphores::new(1);
        let _first = keyed.try_acquire_many(1_u64, 1).expect("key 1's permit");
        let second = keyed.try_acquire_many(2, 1).expect("key 2 is not key 1");
        assert!(keyed.try_acquire_many(1, 1).is_err(), "key 1 is still full");
        drop(second);
        assert!(
            keyed.try_acquire_many(1, 1).is_err(),
            "key 2's permit is not key 1's"
        );
    }

    #[test]
    fn more_than_the_capacity_at_once_is_refused_and_takes_nothing() {
        let keyed = KeyedSemaphores::new(3);
        assert!(keyed.try_acquire_many(1_u64, 4).is_err());
        let _all = keyed
            .try_acquire_many(1, 3)
            .expect("the refusal took nothing");
    }

    #[test]
    fn the_keys_at_a_limit_are_listed() {
        let semaphores = KeyedSemaphores::new(4);
        let _one = semaphores.try_acquire_many(1, 1).expect("free");
        let _two = semaphores.try_acquire_many(2, 2).expect("free");
        assert_eq!(semaphores.holding_at_least(2), vec![2]);
        let mut both = semaphores.holding_at_least(1);
        both.sort_unstable();
        assert_eq!(both, vec![1, 2]);
    }

    #[test]
    fn the_capacity_is_at_least_one() {
        let keyed = KeyedSemaphores::new(0);
        assert_eq!(keyed.capacity(), 1);
        let _only = keyed.try_acquire_many(1_u64, 1).expect("one permit");
        assert!(keyed.try_acquire_many(1, 1).is_err());
        assert_eq!(
            KeyedSemaphores::<u64>::new(usize::MAX).capacity(),
            Semaphore::MAX_PERMITS
        );
    }

    #[tokio::test]
    async fn a_waiter_gets_the_permit_given_back() {
        let keyed = Arc::new(KeyedSemaphores::new(1));
        let held = keyed.acquire(1_u64).await.expect("the permit");
        assert!(
            keyed.acquire(1).now_or_never().is_none(),
            "nothing free: it waits"
        );
        let waiter = {
            let keyed = Arc::clone(&keyed);
            tokio::spawn(async move { keyed.acquire(1).await.map(drop) })
        };
        drop(held);
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter is served once the permit is back")
            .expect("the task ends")
            .expect("the semaphore is open");
    }
}
