//! Cranelift's incremental cache: machine code of single functions, kept by the hash of
//! what was compiled, so that an upload's functions compiled before (in any module) are not
//! compiled again.
//!
//! Modules built by one toolchain share most of their code: every Rust module carries the
//! same parts of `std`, `wit-bindgen` and the WASI adapter, and a module uploaded again with
//! one function changed differs in that one. The whole-module artifact cache (`cache`) only
//! helps the exact same bytes; this one helps each function, so an upload's compile is
//! mostly lookups once the installation has compiled a module of its toolchain
//! (BENCHMARKS.md, tiers). It is Wasmtime's own mechanism (`Config::enable_incremental_
//! compilation`, with Cranelift's `incremental-cache`, which wasmtime builds in anyway);
//! this is the store behind it: in memory, bounded in bytes, least recently used first out.
//!
//! Off unless configured (`[limits] compile_cache_mb`), because it is shared by every
//! organization. A key is a hash of the function's whole compiler input (its code, its
//! constants, its signature and the compiler's settings), so an entry is exactly the code
//! that input compiles to, whoever compiled it first, and one organization cannot put
//! code into another's module. But how quickly an upload compiles (and how much of its
//! compile budget it spends) tells its organization whether a function with exactly its
//! input was compiled before: a timing oracle on other organizations' code. That says
//! which libraries and versions others use, and could confirm a guessed constant compiled
//! into a guessed function (a PIN in a known template), so an installation whose
//! organizations do not trust each other leaves it off; one that serves its own teams, or
//! whose uploads come from its own templates, turns it on. Cranelift calls its incremental
//! cache experimental; its key covers the whole input, and Wasmtime's own tests run it.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

use crate::metrics::{metrics, CacheLookup, CacheLookupLabels};

/// The bytes the cache keeps when it is on and not given a size (`RuntimeConfig` has it
/// off by default: see the module's documentation).
pub const DEFAULT_FUNCTION_CACHE_BYTES: usize = 64 << 20;

/// What an entry costs beyond its key and code: the LRU's node and map slot, and the
/// buffers' headers, counted so that many tiny functions cannot take memory past the
/// bound.
const ENTRY_OVERHEAD: usize = 128;

/// The per-function cache the engines compile through: see the module's documentation.
#[derive(Debug)]
pub(crate) struct FunctionCache {
    entries: Mutex<Entries>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug)]
struct Entries {
    /// Code shared out by reference: a lookup copies it after the lock is let go.
    lru: LruCache<Box<[u8]>, Arc<[u8]>>,
    /// Keys, code and each entry's overhead, in bytes.
    bytes: usize,
}

/// What the cache has done so far: for the tests, the benchmarks and an operator's eyes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FunctionCacheStats {
    /// Functions whose code was found.
    pub hits: u64,
    /// Functions compiled because their code was not there.
    pub misses: u64,
    /// Functions held now.
    pub entries: usize,
    /// Bytes held now (keys, code and the entries' overhead).
    pub bytes: usize,
}

impl FunctionCache {
    /// A cache of at most `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        FunctionCache {
            entries: Mutex::new(Entries {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// What it has done so far.
    pub(crate) fn stats(&self) -> FunctionCacheStats {
        let entries = self.lock();
        FunctionCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: entries.lru.len(),
            bytes: entries.bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Every update leaves the entries consistent, so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        // The reference under the lock, the copy after it: compiling threads look up at once.
        let found = self.lock().lru.get(key).cloned();
        let (counter, result) = if found.is_some() {
            (&self.hits, CacheLookup::hit)
        } else {
            (&self.misses, CacheLookup::miss)
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = metrics() {
            metrics
                .compile_cache_lookups
                .get_or_create(&CacheLookupLabels { result })
                .inc();
        }
        found.map(|code| Cow::Owned(code.to_vec()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let size = entry_size(key, &value);
        // One function never takes more than an eighth: a huge one is not worth evicting
        // many for.
        if size > self.capacity / 8 {
            return false;
        }
        let (key, value): (Box<[u8]>, Arc<[u8]>) = (key.into(), value.into());
        let mut entries = self.lock();
        if let Some(old) = entries.lru.put(key.clone(), value) {
            entries.bytes -= entry_size(&key, &old);
        }
        entries.bytes += size;
        while entries.bytes > self.capacity {
            match entries.lru.pop_lru() {
                Some((old_key, old_value)) => entries.bytes -= entry_size(&old_key, &old_value),
                None => break,
            }
        }
        true
    }
}

/// What an entry of `key` and `code` counts for against the bound.
fn entry_size(key: &[u8], code: &[u8]) -> usize {
    key.len() + code.len() + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore;

    #[test]
    fn it_holds_what_fits_and_lets_the_least_recently_used_go() {
        // Entries of 1 + 71 + 128 = 200 bytes: eight fit in 1600, none of more than 200.
        let cache = FunctionCache::new(1600);
        assert!(cache.insert(b"a", vec![1; 71]));
        assert!(cache.insert(b"b", vec![2; 71]));
        assert!(!cache.insert(b"huge", vec![0; 100]), "more than an eighth");
        assert_eq!(cache.get(b"a").as_deref(), Some(&[1; 71][..]));
        for key in 0..7u8 {
            assert!(cache.insert(&[key], vec![key; 71]));
        }
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.bytes), (8, 1600), "{stats:?}");
        assert_eq!(cache.get(b"b"), None, "the least recently used went first");
        assert_eq!(cache.get(&[6]).as_deref(), Some(&[6; 71][..]));
        // Replacing an entry counts its size once.
        assert!(cache.insert(&[6], vec![6; 11]));
        let again = cache.stats();
        assert_eq!(again.bytes, stats.bytes - 60, "{again:?}");
        assert_eq!((again.hits, again.misses), (2, 1));
    }
}
