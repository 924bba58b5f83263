//! Read-through caches for the rows every call reads (the caller's token, the hook, its
//! module), so that a call touches the database only to write its run log.
//!
//! They stay exact without any caller remembering to invalidate them: every change to a
//! table bumps the generation of its table's *domain*. On SQLite the connection's update
//! hook reports each row it inserts, updates or deletes; on PostgreSQL the store reports
//! the table each of its statements wrote once the operation is over, and other
//! replicas' writes arrive as notifications (`listen.rs`). A cached entry remembers the generation it was
//! read at and is used only while that generation is current. Entries are filled under
//! the connection's lock, which every write also holds, so a write either happened before
//! the read (and its bump is in the remembered generation) or after (and its bump makes
//! the entry stale). A rolled-back write bumps too: that only costs a re-read.
//!
//! The one change that does not bump is a new token: no cached entry can depend on a row
//! that did not exist, and minting happens on every run with a token owner. Negative
//! answers (no such token, no such hook) are never cached, so a new row is always found.
//!
//! On SQLite this process's connection is the only writer: one connection per data
//! directory. On PostgreSQL a write by another replica is seen once its notification
//! arrives, a moment after its commit (`listen.rs` says how long, and what happens when
//! the listening connection is lost).

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use lru::LruCache;
use tokio::sync::watch;

use super::db::Change;

/// A group of tables whose rows make up one kind of cached value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// `tokens`: a token deleted or cut short makes the cached sessions stale (a new one
    /// does not: see the module's notes).
    Tokens,
    /// `users`: a session carries its user's role and state, so a user's change makes the
    /// cached sessions stale too.
    Users,
    /// `hooks` and the tables of their relations.
    Hooks,
    /// `modules`: a module's row changes when its compile ends (`pending` to `ready` or
    /// `failed`).
    Modules,
}

impl Domain {
    const COUNT: usize = 4;

    /// The domain a table's rows belong to; none for tables nothing caches.
    fn of_table(table: &str) -> Option<Self> {
        match table {
            "tokens" => Some(Domain::Tokens),
            "users" => Some(Domain::Users),
            // A queue's deletion takes its `hook_queues` rows with it by cascade, which a
            // PostgreSQL statement of this process does not name: so a queue's change
            // counts as a change of the hooks (rare, and it costs only a re-read).
            "hooks" | "hook_queues" | "hook_run_after" | "queues" => Some(Domain::Hooks),
            "modules" => Some(Domain::Modules),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One counter per domain, bumped by every change to its tables, and whether changes are
/// being heard at all.
#[derive(Debug)]
pub struct Generations {
    counters: [AtomicU64; Domain::COUNT],
    /// Set while changes made elsewhere may go unreported (PostgreSQL's listening
    /// connection is down): no cached entry is used meanwhile.
    deaf: AtomicBool,
    /// The modules' generation, for whoever waits for a module to change (the module
    /// library, which compiles on each replica what another one accepted).
    modules: watch::Sender<u64>,
}

impl Default for Generations {
    fn default() -> Self {
        Generations {
            counters: Default::default(),
            deaf: AtomicBool::new(false),
            modules: watch::channel(0).0,
        }
    }
}

impl Generations {
    /// Records a change to `table` (from SQLite's update hook, a PostgreSQL statement of
    /// this process, or another replica's notification).
    pub fn changed(&self, change: Change, table: &str) {
        let Some(domain) = Domain::of_table(table) else {
            return;
        };
        if domain == Domain::Tokens && change == Change::Insert {
            return;
        }
        self.counters[domain.index()].fetch_add(1, Ordering::AcqRel);
        if domain == Domain::Modules {
            self.modules.send_modify(|generation| *generation += 1);
        }
    }

    /// A receiver that sees a new value whenever a module row changes (or every cache is
    /// made stale, which may hide one).
    pub fn module_changes(&self) -> watch::Receiver<u64> {
        self.modules.subscribe()
    }

    /// Makes every cached entry stale: after changes that may have gone unreported (the
    /// listening connection was lost and reopened).
    pub fn changed_all(&self) {
        for generation in &self.counters {
            generation.fetch_add(1, Ordering::AcqRel);
        }
        self.modules.send_modify(|generation| *generation += 1);
    }

    /// Says whether changes made elsewhere are being heard; while they are not, cached
    /// entries are not used.
    pub fn set_hearing(&self, hearing: bool) {
        self.deaf.store(!hearing, Ordering::Release);
    }

    /// Whether cached entries may be used: false while changes may go unreported.
    pub fn trusted(&self) -> bool {
        !self.deaf.load(Ordering::Acquire)
    }

    /// The combined generation of `domains`: it changes whenever any of them does.
    pub fn of(&self, domains: &[Domain]) -> u64 {
        domains
            .iter()
            .map(|domain| self.counters[domain.index()].load(Ordering::Acquire))
            .fold(0, u64::wrapping_add)
    }
}

/// A bounded map from a key to the value read for it at some generation of `domains`.
#[derive(Debug)]
pub struct ReadCache<K: Hash + Eq, V> {
    domains: &'static [Domain],
    entries: Mutex<LruCache<K, (u64, V)>>,
}

impl<K: Hash + Eq, V: Clone> ReadCache<K, V> {
    /// A cache of at most `capacity` entries whose values are read from `domains`.
    pub fn new(capacity: NonZeroUsize, domains: &'static [Domain]) -> Self {
        ReadCache {
            domains,
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The domains its values are read from.
    pub fn domains(&self) -> &'static [Domain] {
        self.domains
    }

    /// The value for `key`, if it was read at the `current` generation.
    pub fn get(&self, key: &K, current: u64) -> Option<V> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((generation, value)) if *generation == current => Some(value.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    /// Whether an entry for `key` is held, whatever its generation: when none is, a read
    /// goes to the database anyway, and need not first catch up with other replicas.
    pub fn holds(&self, key: &K) -> bool {
        self.lock().contains(key)
    }

    /// Remembers `value`, read for `key` at `generation`.
    pub fn put(&self, key: K, generation: u64, value: V) {
        self.lock().put(key, (generation, value));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<K, (u64, V)>> {
        // The map holds no invariant a panicking holder could break.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_to_a_domain_makes_its_entries_stale_and_no_other() {
        let generations = Generations::default();
        let hooks: ReadCache<u64, &str> = ReadCache::new(NonZeroUsize::MIN, &[Domain::Hooks]);
        hooks.put(1, generations.of(hooks.domains()), "first");
        assert_eq!(
            hooks.get(&1, generations.of(hooks.domains())),
            Some("first")
        );
        generations.changed(Change::Update, "modules");
        assert_eq!(
            hooks.get(&1, generations.of(hooks.domains())),
            Some("first")
        );
        generations.changed(Change::Delete, "hook_run_after");
        assert_eq!(hooks.get(&1, generations.of(hooks.domains())), None);
    }

    #[test]
    fn a_new_token_leaves_cached_sessions_valid_but_a_changed_one_does_not() {
        let generations = Generations::default();
        let domains = &[Domain::Tokens, Domain::Users];
        let at = generations.of(domains);
        generations.changed(Change::Insert, "tokens");
        assert_eq!(generations.of(domains), at);
        generations.changed(Change::Update, "tokens");
        assert_ne!(generations.of(domains), at);
        let at = generations.of(domains);
        generations.changed(Change::Insert, "users");
        assert_ne!(generations.of(domains), at);
    }
}
